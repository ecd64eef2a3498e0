"""Attach to a sandbox started on another root file system of this host (the suite's container image).

``scripts/test-image.sh`` starts the sandbox on the host and runs the suite inside the image, with
the host's network (the servers are on loopback) and the sandbox folder mounted at the same path,
so every ``SANDBOX_*`` path still names the right file. What does not carry over are the programs
the sandbox chose for the machine that started it: the simulated ``runai`` is a script for that
machine's Python and checkout, and kubectl and the AWS CLI are that machine's (or stand-ins for
them). ``python -m conformance.sandbox.relocate`` rewrites those for the machine it runs on, exactly
as the sandbox would have made them there, and updates the state file that ``--profile sandbox``
attaches to (``CONFORMANCE_SANDBOX_STATE``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from conformance.sandbox import STATE_VAR, runai, workspace


def relocate(state: Path) -> dict[str, str]:
    """Rewrite the machine-specific programs of the sandbox whose state file is ``state``; return its variables."""
    env: dict[str, str] = json.loads(state.read_text())
    directory = Path(env["SANDBOX_DIR"])
    generation = env.get(runai.GENERATION_VAR) or "kubeconfig"
    env.update(runai.install_all(directory / "runai", Path(env["SANDBOX_KUBECONFIG"]), generation))
    env.update(workspace.machine_tools(Path(env["SANDBOX_WORKSPACE_TOOLS"])))
    state.write_text(json.dumps(env, indent=2))
    return env


def main() -> int:
    state = os.environ.get(STATE_VAR)
    if not state or not Path(state).is_file():
        print(f"relocate: {STATE_VAR} does not name a sandbox state file: {state!r}", file=sys.stderr)
        return 4
    env = relocate(Path(state))
    print(f"relocate: {state}: runai {env['SANDBOX_RUNAI_CLI']}, kubectl {env['SANDBOX_WORKSPACE_KUBECTL']},"
          f" aws {env['SANDBOX_WORKSPACE_AWS']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
