"""Harness for the suite's own tests: a shared sandbox and a way to run the suite as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.sandbox import Sandbox

REPO = Path(__file__).resolve().parent.parent
# Variables this machine (and many CI runners) set globally; the suite must not depend on them.
CA_VARIABLES = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "AWS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "HTTPLIB2_CA_CERTS",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "NODE_EXTRA_CA_CERTS",
)


@pytest.fixture(scope="session")
def sandbox_env() -> Iterator[dict[str, str]]:
    """One sandbox for the whole test session (every service, every fault endpoint)."""
    sandbox = Sandbox().start()
    try:
        yield dict(sandbox.env)
    finally:
        sandbox.stop()


@dataclass
class SuiteRun:
    rc: int
    output: str
    seconds: float
    reports: Path
    results: dict[str, Any] = field(default_factory=dict)

    def check(self, check_id: str, param: str | None = None) -> dict[str, Any]:
        """The one JSON record of ``check_id`` (for ``param``, when parametrised)."""
        found = [
            c
            for c in self.results.get("checks", [])
            if c["id"] == check_id and (param is None or c["nodeid"].endswith(f"[{param}]"))
        ]
        assert len(found) == 1, f"{check_id}[{param}]: {len(found)} records in {[c['nodeid'] for c in found]}"
        record: dict[str, Any] = found[0]
        return record

    def expect(self, check_id: str, outcome: str, *words: str) -> None:
        """``check_id`` ended with ``outcome`` and its message says each of ``words``."""
        record = self.check(check_id)
        assert record["outcome"] == outcome, (check_id, record["outcome"], record["message"])
        for word in words:
            assert word in record["message"], (check_id, word, record["message"])

    def artifact_texts(self) -> dict[str, str]:
        return {p.name: p.read_text(errors="replace") for p in self.reports.iterdir() if p.is_file()}


def run_suite(
    *args: str,
    profile: str | Path,
    reports: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> SuiteRun:
    """Run ``python -m pytest`` in the repository the way a user does, reports into ``reports``."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTEST_ADDOPTS", None)
    full_env.pop("CONFORMANCE_PROFILE", None)
    full_env.pop("CONFORMANCE_RUN_ID", None)
    # --opt=value keeps pytest from taking a path outside the repository as its rootdir.
    command = [sys.executable, "-m", "pytest", f"--profile={profile}", f"--reports-dir={reports}", *args]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - started
    run = SuiteRun(proc.returncode, proc.stdout + proc.stderr, seconds, reports)
    found = sorted(reports.glob("*.json")) if reports.is_dir() else []
    if found:
        run.results = json.loads(found[-1].read_text())
    return run


@pytest.fixture
def suite(tmp_path: Path, sandbox_env: dict[str, str]) -> Any:
    """``suite(*args, profile=..., env=...)``: run the suite attached to the shared sandbox."""
    counter = iter(range(1000))

    def run(*args: str, profile: str | Path, env: Mapping[str, str] | None = None, timeout: float = 300) -> SuiteRun:
        reports = tmp_path / f"reports-{next(counter)}"
        return run_suite(*args, profile=profile, reports=reports, env={**sandbox_env, **(env or {})}, timeout=timeout)

    return run


def write_profile(directory: Path, text: str, name: str = "profile.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def ssh_config(env: dict[str, str], directory: Path, name: str, **changes: str | None) -> str:
    """An ssh config like the sandbox's, with ``changes`` (None drops a keyword); returns its path."""
    keywords: dict[str, str | None] = {
        "Port": env["SANDBOX_SSH_PORT"],
        "User": env["SANDBOX_SSH_USER"],
        "IdentityFile": env["SANDBOX_SSH_KEY"],
        "IdentitiesOnly": "yes",
        "UserKnownHostsFile": env["SANDBOX_SSH_KNOWN_HOSTS"],
    }
    keywords.update(changes)
    lines = [f"Host {env['SANDBOX_SSH_HOST']}"] + [f"    {k} {v}" for k, v in keywords.items() if v is not None]
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)
