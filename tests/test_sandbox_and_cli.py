"""The sandbox starts and stops cleanly (no orphans); the ``python -m conformance`` commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conformance.checks import Deadline
from conformance.sandbox import Sandbox
from tests.conftest import REPO, write_profile


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (children the sandbox started with its folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = Deadline.after(timeout)
    pause = __import__("threading").Event()
    while not predicate():
        if deadline.left() <= 0:
            return False
        pause.wait(0.05)
    return True


def test_sandbox_stops_everything_it_started(sandbox_env: dict[str, str]) -> None:
    sandbox = Sandbox().start(services=())
    url = sandbox.env["SANDBOX_HTTP_URL"]
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback sandbox URL
        assert response.status == 200
    sandbox.stop()
    assert not sandbox.dir.exists()
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback sandbox URL


def test_sandbox_never_touches_the_real_home(sandbox_env: dict[str, str]) -> None:
    home = Path(sandbox_env["SANDBOX_HOME"])
    assert home.is_relative_to(Path(sandbox_env["SANDBOX_DIR"]))
    assert not home.is_relative_to(Path.home())


def test_sandbox_up_runs_until_interrupted_and_leaves_nothing(tmp_path: Path) -> None:
    env_file = tmp_path / "sandbox.env"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "CONFORMANCE_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "sandbox", "up", "--env-file", str(env_file)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert wait_until(env_file.exists, 90), "sandbox up did not write its env file"
        values = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines() if line)
        sandbox_dir = values["SANDBOX_DIR"].strip("'")
        children = processes_mentioning(sandbox_dir)
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert not Path(sandbox_dir).exists()
    assert wait_until(lambda: not processes_mentioning(sandbox_dir), 10), f"orphans of {children}"


def test_suite_run_on_sandbox_profile_starts_and_stops_its_own_sandbox(tmp_path: Path) -> None:
    from tests.conftest import run_suite

    # Its own TMPDIR puts this run's sandbox folder (named in every server's command line) where only
    # this test looks, so sandboxes of concurrent runs cannot confuse the orphan check.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "CONFORMANCE_"))}
    env["TMPDIR"] = str(private_tmp)
    run = run_suite("-m", "network", "-x", profile="sandbox", reports=tmp_path / "reports", env=env)
    assert run.rc == 0, run.output
    assert wait_until(lambda: not processes_mentioning(str(private_tmp)), 10), processes_mentioning(str(private_tmp))
    assert not any(private_tmp.iterdir())  # the sandbox folder is gone too


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args], cwd=REPO, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_profile_check_accepts_a_template() -> None:
    proc = run_cli("profile", "check", "onprem-runai")
    assert proc.returncode == 0
    assert "profiles/onprem-runai.yaml: OK (onprem + runai, guide v0.5.2)" in proc.stdout
    assert "endpoint gitlab-ssh: ssh://gitlab.aisingapore.net:2222" in proc.stdout


def test_profile_check_reports_every_problem_and_exits_4(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "platform: moon\norchestrator: runai\ncolour: red\n")
    proc = run_cli("profile", "check", str(path))
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(str(path)) for line in lines)
    assert "Traceback" not in proc.stderr


def test_profile_check_of_a_sandbox_profile_uses_the_running_sandbox(sandbox_env: dict[str, str]) -> None:
    proc = run_cli("profile", "check", "sandbox", env=sandbox_env)
    assert proc.returncode == 0, proc.stderr
    assert "endpoint web-https: https://localhost:" in proc.stdout


def test_every_command_has_help() -> None:
    for args in (["--help"], ["profile", "check", "--help"], ["sandbox", "up", "--help"]):
        proc = run_cli(*args)
        assert proc.returncode == 0
        assert "usage: python -m conformance" in proc.stdout
