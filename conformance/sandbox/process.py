"""Sandbox services that are real server programs, run as child processes.

Each child runs in its own process group and is told by the kernel to die
with its parent (``PR_SET_PDEATHSIG``), so even a ``kill -9`` of pytest
leaves no orphan behind. Stopping sends SIGTERM to the whole group, then
SIGKILL after a bounded wait. Output goes to a log file in the sandbox folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from conformance.checks import Deadline

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ServiceError(RuntimeError):
    """A sandbox service did not start; the message names it and quotes its log's tail."""


class Process:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(  # argv is built by the sandbox, never from input
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - needed for PDEATHSIG; no threads touch fork here
            )
        self.pid = self.popen.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        """Poll ``ready`` until it holds; fail with the log's tail if the process dies or time runs out."""
        deadline = Deadline.after(timeout)
        while True:
            if self.popen.poll() is not None:
                raise ServiceError(
                    f"sandbox service {self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            if ready():
                return
            if deadline.left() <= 0:
                raise ServiceError(f"sandbox service {self.name} not ready after {timeout:g} s:\n{self.log_tail()}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(deadline.left(0.05))

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)
        with contextlib.suppress(ProcessLookupError):  # children that ignored SIGTERM (fcgiwrap's) go too
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(grace)


def port_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False

    return check


def http_ok(url: str, context: ssl.SSLContext | None = None) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as response:  # noqa: S310 - loopback URL built by the sandbox
                return int(response.status) < 500
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except OSError:
            return False

    return check
