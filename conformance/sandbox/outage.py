"""A whole-network outage in front of a running sandbox, for the hung-network tests and benchmark.

:func:`outage` gives the variables of a copy of the sandbox's HOME (kubeconfig, ssh config and
known_hosts, docker config, the git checkout) in which every endpoint of the sandbox is moved to
where one of three outages is, the services themselves left running for other runs:

* ``hung``: a :class:`HungPort` per endpoint: TCP is accepted (the kernel's backlog) and nothing
  ever answers, like a half-up VPN or a firewall that holds connections;
* ``refused``: a free loopback port per endpoint: nothing listens, the connection is refused;
* ``nodns``: every host becomes a name under ``.invalid`` (RFC 2606), which never resolves.

Everything that is only read locally (file modes, tokens, keys) stays as it was, so every check
that does not touch the network still passes: what changes is only where the network leads.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from conformance.sandbox import STATE_VAR
from conformance.sandbox.web import HungPort, free_port

MODES = ("hung", "refused", "nodns")
INVALID_HOST = "sandbox-outage.invalid"
_HOST_PORT = re.compile(r"((?:localhost|127\.0\.0\.1)\]?:)(\d+)")
_HOST = re.compile(r"\b(?:localhost|127\.0\.0\.1)\b")
_SSH_PORT = re.compile(r"^(\s*Port\s+)(\d+)\s*$", re.MULTILINE)
MAX_TEXT = 1_000_000  # bytes: larger files in HOME are data, not settings


def outage(env: dict[str, str], mode: str) -> tuple[dict[str, str], Callable[[], None]]:
    """The sandbox variables with every endpoint behind ``mode``, and a function that undoes it."""
    if mode not in MODES:
        raise ValueError(f"outage mode {mode!r} is not one of {', '.join(MODES)}")
    home = env["SANDBOX_HOME"]
    root = Path(tempfile.mkdtemp(prefix=f"conformance-outage-{mode}-"))
    new_home = str(root / "home")
    shutil.copytree(home, new_home, symlinks=True)
    ports = {int(p) for value in env.values() for _, p in _HOST_PORT.findall(value)}
    if env.get("SANDBOX_SSH_PORT"):
        ports.add(int(env["SANDBOX_SSH_PORT"]))
    hung: list[HungPort] = []
    moved: dict[int, int] = {}
    for port in sorted(ports):
        if mode == "hung":
            hung.append(HungPort())
            moved[port] = hung[-1].port
        elif mode == "refused":
            moved[port] = free_port()

    def rewrite(text: str) -> str:
        text = text.replace(home, new_home)
        if mode == "nodns":
            return _HOST.sub(INVALID_HOST, text)
        text = _HOST_PORT.sub(lambda m: m[1] + str(moved.get(int(m[2]), m[2])), text)
        return _SSH_PORT.sub(lambda m: m[1] + str(moved.get(int(m[2]), m[2])), text)

    for path in Path(new_home).rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_TEXT:
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # keys, git objects: nothing of the network in them
            changed = rewrite(text)
            if changed != text:
                path.write_text(changed, encoding="utf-8")  # the file keeps its mode
    variables = {key: rewrite(value) for key, value in env.items()}
    if env.get("SANDBOX_SSH_PORT"):
        port = int(env["SANDBOX_SSH_PORT"])
        variables["SANDBOX_SSH_PORT"] = str(moved.get(port, port))
    state = root / "sandbox-env.json"  # what a run attaches to (conformance.sandbox.attached)
    variables[STATE_VAR] = str(state)
    state.write_text(json.dumps(variables, indent=2))

    def undo() -> None:
        for port in hung:
            port.stop()
        shutil.rmtree(root, ignore_errors=True)

    return variables, undo
