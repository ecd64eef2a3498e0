"""The embedded platform: real services on free loopback ports.

``pytest --profile sandbox`` starts it before the profile is loaded (the
sandbox profiles take their ports and credentials from the ``SANDBOX_*``
variables it sets) and stops it when the run ends, also on Ctrl-C, SIGTERM
and failure. ``python -m conformance sandbox up`` keeps one running and
prints the variables, so several runs (or a debugger) can share it.

Everything lives in one temporary folder, including a HOME of its own; the
user's HOME is never read or written.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from conformance.components import COMPONENTS

# The servers and the CA are imported when a sandbox starts, not when a run only attaches to one.

STATE_VAR = "CONFORMANCE_SANDBOX_STATE"
# The components simulated by a module of this package (one named after it, with start(sandbox)), in their order.
SERVICES = tuple(name for name in COMPONENTS if Path(__file__).with_name(f"{name}.py").is_file())


class Service(Protocol):
    def stop(self) -> None: ...


class Sandbox:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="conformance-sandbox-"))
        self.home = self.dir / "home"
        self.home.mkdir(mode=0o700)
        self.services: list[Service] = []
        self.env: dict[str, str] = {"SANDBOX_DIR": str(self.dir), "SANDBOX_HOME": str(self.home)}
        self.simulated: list[str] = []
        # The CA every sandbox TLS server's certificate comes from; the sandbox profiles trust only it.
        self.pki_dir = self.dir / "pki"
        self.pki_dir.mkdir()
        from conformance.sandbox.pki import Authority  # noqa: PLC0415 - see the note at the imports

        self.ca = Authority.create("conformance sandbox CA")
        self.ca_bundle = self.pki_dir / "ca-bundle.pem"
        self.ca_bundle.write_bytes(self.ca.pem())

    def add(self, service: Any) -> Any:
        """Own ``service`` (anything with ``stop()``): stopped with the sandbox, in reverse order."""
        self.services.append(service)
        return service

    def start(self, services: tuple[str, ...] = SERVICES) -> Sandbox:
        """Start the web endpoints, then each service module's ``start(sandbox)``."""
        try:
            self._start_web()
            for name in services:
                importlib.import_module(f"conformance.sandbox.{name}").start(self)
        except BaseException:
            self.stop()
            raise
        self.env["SANDBOX_SIMULATED"] = ",".join(self.simulated)
        state = self.dir / "sandbox-env.json"
        self.env[STATE_VAR] = str(state)
        state.write_text(json.dumps(self.env, indent=2))
        return self

    def _start_web(self) -> None:
        pki = self.pki_dir
        ca = self.ca
        bundle = self.ca_bundle
        from conformance.sandbox.pki import Authority  # noqa: PLC0415 - see the note at the imports
        from conformance.sandbox.web import HungPort, WebServer, free_port  # noqa: PLC0415 - same

        stranger = Authority.create("an authority nobody trusts")
        good = ca.issue(pki, "server")
        web = [
            ("SANDBOX_HTTPS_URL", WebServer(200, good)),
            ("SANDBOX_HTTP_URL", WebServer(200)),
            ("SANDBOX_FAULT_UNKNOWN_CA_URL", WebServer(200, stranger.issue(pki, "stranger"))),
            ("SANDBOX_FAULT_EXPIRED_URL", WebServer(200, ca.issue(pki, "expired", valid_from_days=-30, valid_days=-1))),
            ("SANDBOX_FAULT_EXPIRING_URL", WebServer(200, ca.issue(pki, "expiring", valid_days=3))),
            ("SANDBOX_FAULT_503_URL", WebServer(503, good)),
        ]
        for name, server in web:
            self.add(server)
            self.env[name] = server.url
        hung = self.add(HungPort())
        self.env["SANDBOX_CA_BUNDLE"] = str(bundle)
        self.env["SANDBOX_FAULT_HUNG_URL"] = f"https://localhost:{hung.port}/"
        self.env["SANDBOX_FAULT_REFUSED_URL"] = f"https://localhost:{free_port()}/"

    def stop(self) -> None:
        while self.services:
            service = self.services.pop()
            try:
                service.stop()
            except Exception:  # noqa: BLE001, S112 - stop the others even if one fails to stop cleanly
                continue
        shutil.rmtree(self.dir, ignore_errors=True)


def attached() -> dict[str, str] | None:
    """The variables of a sandbox already running (``sandbox up``, or an xdist controller's)."""
    state = os.environ.get(STATE_VAR)
    if not state or not Path(state).is_file():
        return None
    data = json.loads(Path(state).read_text())
    return {str(k): str(v) for k, v in data.items()}


def ensure_running(add_cleanup: Callable[[Callable[[], None]], None]) -> dict[str, str]:
    """Attach to a running sandbox, or start one that stops with the caller."""
    running = attached()
    if running is not None:
        return running
    sandbox = Sandbox().start()
    add_cleanup(sandbox.stop)
    return sandbox.env
