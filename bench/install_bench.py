"""P6: clone to first report in a workspace, without root.

    .venv/bin/python bench/install_bench.py                 # clone + scripts/install-workspace.sh
    eval "$(cat sandbox.env)"; .venv/bin/python bench/install_bench.py   # ... + a run on that sandbox

Clones this checkout's HEAD into a temporary folder, runs the README's workspace command there
(``bash scripts/install-workspace.sh``: requirements-client.lock, then the suite), measures its time
and the installed size of ``.venv``, then, when a sandbox is attached (``python -m conformance
sandbox up`` in another shell, its variables exported here), times ``conformance run --profile
sandbox`` from another folder until the HTML report is written. Run it as the workspace user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 90.0


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.monotonic() - started
    if proc.returncode not in (0, 1):  # 1: the run found problems, and still wrote its report
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return seconds


def size_mb(path: Path) -> float:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_symlink()) / 1e6


def main() -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTEST_ADDOPTS")}
    work = Path(tempfile.mkdtemp(prefix="bench-install-"))
    try:
        clone = timed(["git", "clone", "-q", str(REPO), str(work / "suite")], work, env)
        install = timed(["bash", "scripts/install-workspace.sh"], work / "suite", env)
        venv_mb = size_mb(work / "suite" / ".venv")
        rows = [
            ("P6", "git clone of this checkout", f"{clone:.1f} s"),
            ("P6", "`bash scripts/install-workspace.sh` (client lock + the suite, no root)", f"{install:.1f} s"),
            ("P6", "installed size of .venv", f"{venv_mb:.0f} MB"),
        ]
        total = clone + install
        if os.environ.get("CONFORMANCE_SANDBOX_STATE"):
            (work / "tickets").mkdir()
            command = [str(work / "suite/.venv/bin/conformance"), "run", "--profile", "sandbox", "-q"]
            first = timed(command, work / "tickets", env)
            if not list((work / "tickets/reports").glob("*.html")):
                raise SystemExit("the run wrote no HTML report")
            what = "`conformance run --profile sandbox` from another folder, to the HTML report"
            rows.append(("P6", what, f"{first:.1f} s"))
            total += first
            verdict = "met" if total <= TARGET_S else "**not met**"
            rows.append(("P6", "clone to first report", f"{total:.1f} s (target <= {TARGET_S:.0f} s): {verdict}"))
        print(f"\nMachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, user id {os.getuid()}\n")
        print("| goal | what | measured |\n|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
