"""The user's path: ``conformance run`` from any folder, the workspace install."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conformance.runner import RunError, child_env, pytest_argv, suite_root
from tests.conftest import REPO

REFUSED = """\
platform: onprem
orchestrator: runai
guide_version: v0.5.2
network:
  endpoints:
    - {name: refused, url: "https://127.0.0.1:9/"}
"""


def test_console_command_is_declared_and_points_at_main() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["conformance"].partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def test_paths_are_taken_from_where_the_user_stands(tmp_path: Path) -> None:
    argv = pytest_argv(
        ["--profile", "../p.yaml", "-m", "onprem and runai", "--waivers=w.yaml", "--html", "out/r.html"], tmp_path, REPO
    )
    assert argv[:2] == ["-c", str(REPO / "pyproject.toml")]
    assert f"--rootdir={REPO}" in argv
    assert f"--profile={(tmp_path.parent / 'p.yaml').resolve()}" in argv
    assert f"--waivers={(tmp_path / 'w.yaml').resolve()}" in argv
    assert f"--html={(tmp_path / 'out/r.html').resolve()}" in argv
    assert argv[argv.index("-m") : argv.index("-m") + 2] == ["-m", "onprem and runai"]
    assert not any(a.startswith("--reports-dir") for a in argv)  # --html says where reports go


def test_profile_names_stay_names_and_reports_default_to_the_current_folder(tmp_path: Path) -> None:
    argv = pytest_argv(["--profile", "sandbox"], tmp_path, REPO)
    assert "--profile=sandbox" in argv
    assert f"--reports-dir={tmp_path / 'reports'}" in argv


def test_test_paths_are_the_suites_unless_they_exist_here(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "test_x.py").write_text("")
    argv = pytest_argv(["conformance/components/test_network.py::test_dns_resolves", "mine/test_x.py"], tmp_path, REPO)
    assert "conformance/components/test_network.py::test_dns_resolves" in argv
    assert str(tmp_path / "mine" / "test_x.py") in argv


def test_an_option_without_its_value_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="--profile needs a value"):
        pytest_argv(["--profile"], tmp_path, REPO)


def test_profile_path_in_the_environment_is_made_absolute(tmp_path: Path) -> None:
    env = child_env({"CONFORMANCE_PROFILE": "x/p.yaml", "HOME": "/h"}, tmp_path)
    assert env["CONFORMANCE_PROFILE"] == str(tmp_path / "x" / "p.yaml")
    assert child_env({"CONFORMANCE_PROFILE": "sandbox"}, tmp_path)["CONFORMANCE_PROFILE"] == "sandbox"


def test_a_package_without_its_checkout_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"pip install --no-deps -e \."):
        suite_root(tmp_path)


def _conformance(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The console command as installed: the package importable, started in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("PYTEST_ADDOPTS", "CONFORMANCE_PROFILE", "CONFORMANCE_RUN_ID"):
        env.pop(name, None)
    command = [sys.executable, "-c", "import sys; from conformance.__main__ import main; sys.exit(main())", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False)


def test_run_from_another_folder_with_a_relative_profile(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(REFUSED)
    here = tmp_path / "work"
    here.mkdir()
    proc = _conformance("run", "--profile", "../p.yaml", "-m", "network", "-p", "no:cacheprovider", cwd=here)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output  # the refused endpoint fails; the run itself worked
    assert "no tests ran" not in output
    assert f"rootdir: {REPO}" in output  # the suite's ini: its plugin, markers and testpaths
    (results,) = (here / "reports").glob("p-*.json")
    outcomes = {c["id"]: c["outcome"] for c in json.loads(results.read_text())["checks"]}
    assert outcomes["NET-001"] == "passed"
    assert outcomes["NET-002"] == "failed"
    collected = re.search(r"collected (\d+) items / (\d+) deselected", output)
    assert collected, output  # every component was collected, not only the cwd's; -m kept NET
    assert int(collected[2]) > 40
    assert f"HTML report: {here / 'reports'}/p-" in output


def test_other_commands_work_from_another_folder(tmp_path: Path) -> None:
    shutil.copy(REPO / "profiles" / "onprem-runai.yaml", tmp_path / "p.yaml")  # every section the platform needs
    proc = _conformance("profile", "check", "p.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("p.yaml: OK (onprem + runai")


def _shim(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_setup_as_a_user_names_the_packages_to_ask_for_and_never_calls_sudo(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _shim(bin_dir, "id", "echo 2222")
    _shim(bin_dir, "dpkg-query", "exit 1")  # nothing installed
    for tool in ("sudo", "apt-get"):
        _shim(bin_dir, tool, f"echo {tool} called >> {tmp_path}/called; exit 1")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", str(REPO / "scripts/setup.sh")], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    assert not (tmp_path / "called").exists()
    assert "apt-get install --no-install-recommends python3-venv docker-registry" in proc.stderr
    assert "chromium chromium-driver" in proc.stderr
    assert "scripts/install-workspace.sh" in proc.stderr


def test_workspace_install_refuses_a_python_older_than_3_11_naming_it(tmp_path: Path) -> None:
    _shim(tmp_path, "python-old", 'case "$1" in --version) echo "Python 3.9.2";; *) exit 1;; esac')
    env = {**os.environ, "PYTHON": str(tmp_path / "python-old")}
    proc = subprocess.run(
        ["bash", str(REPO / "scripts/install-workspace.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert f"{tmp_path / 'python-old'} is not Python 3.11 or newer (Python 3.9.2)" in proc.stderr
