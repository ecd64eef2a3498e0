"""RAI checks against the sandbox's simulated runai CLI and API server: each passes, and fails for its own fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from conformance.clients import runai
from tests.conftest import write_profile

RAI_SELECT = ("-m", "runai and not noorch")  # RAI checks only: unmarked checks apply to every orchestrator


def runai_profile(
    directory: Path,
    *,
    kubeconfig: str = "${SANDBOX_KUBECONFIG}",
    cli: str = "${SANDBOX_RUNAI_CLI}",
    name: str = "rai.yaml",
) -> Path:
    text = f"""\
platform: onprem
orchestrator: runai
timeouts: {{connect: 2, request: 5, check: 20}}
tls: {{ca_bundle: '${{SANDBOX_CA_BUNDLE}}'}}
kubernetes:
  kubeconfig: '{kubeconfig}'
  namespace: '${{SANDBOX_K8S_NAMESPACE}}'
runai:
  project: '${{SANDBOX_RUNAI_PROJECT}}'
  cli: '{cli}'
"""
    return write_profile(directory, text, name)


def message(run: Any, check_id: str) -> str:
    return str(run.check(check_id)["message"])


def test_all_pass_and_no_token_leaks(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    run = suite(*RAI_SELECT, profile=runai_profile(tmp_path))
    for check_id in ("RAI-001", "RAI-002", "RAI-003", "RAI-004", "RAI-005"):
        assert run.check(check_id)["outcome"] == "passed", (check_id, message(run, check_id), run.output[-3000:])
    assert run.check("RAI-002")["evidence"]["version"] == "2.13.49"
    assert run.check("RAI-003")["evidence"]["days_left"] > 19
    assert run.check("RAI-004")["evidence"]["default_project"] == "conformance"
    assert run.check("RAI-005")["evidence"]["status"] == "Succeeded"
    # Canary: neither the id-token nor the refresh-token appears anywhere.
    config = yaml.safe_load(Path(sandbox_env["SANDBOX_KUBECONFIG"]).read_text())
    oidc = next(u["user"]["auth-provider"]["config"] for u in config["users"] if "auth-provider" in u["user"])
    texts = [run.output, *run.artifact_texts().values()]
    for value in (oidc["id-token"], oidc["refresh-token"], oidc["id-token"].split(".")[1]):
        assert not any(value in text for text in texts)


def test_cli_missing_and_login_expired(suite: Any, tmp_path: Path) -> None:
    profile = runai_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_EXPIRED}", cli=str(tmp_path / "no" / "runai"))
    run = suite(*RAI_SELECT, profile=profile)
    assert run.check("RAI-001")["outcome"] == "failed"
    assert "is not found or not executable" in message(run, "RAI-001")
    assert run.check("RAI-002")["blocked_by"] == "RAI-001"
    assert run.check("RAI-004")["blocked_by"] == "RAI-001"
    assert run.check("RAI-003")["outcome"] == "failed"
    assert "the id-token expired on" in message(run, "RAI-003")
    assert "runai login" in message(run, "RAI-003")


def test_cli_v1_and_wrong_project(suite: Any, tmp_path: Path) -> None:
    profile = runai_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_OTHER_PROJECT}", cli="${SANDBOX_RUNAI_V1_CLI}")
    run = suite("-m", "runai and not noorch and not writes", profile=profile)
    assert run.check("RAI-002")["outcome"] == "failed"
    assert "runai version 1.4.2" in message(run, "RAI-002")
    assert run.check("RAI-004")["outcome"] == "failed"
    assert "the default project is other" in message(run, "RAI-004")
    assert "runai config project conformance" in message(run, "RAI-004")


def test_login_expiring_within_the_horizon_fails_and_beyond_it_warns(suite: Any, tmp_path: Path) -> None:
    profile = runai_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_EXPIRING}")  # expires in 1 day
    run = suite("-m", "runai and not noorch and not writes", profile=profile)
    record = run.check("RAI-003")
    assert record["outcome"] == "failed"
    assert "the Run:ai login expires on" in record["message"]
    assert "expiry horizon (7 days" in record["message"]
    assert run.check("RAI-004")["outcome"] == "passed"  # it still works today: nothing is blocked by it
    profile.write_text(profile.read_text() + "expiry_horizon_days: 0.6\n")
    run = suite("-m", "runai and not noorch and not writes", profile=profile)
    record = run.check("RAI-003")
    assert record["outcome"] == "passed"
    assert record["evidence"]["warning"].startswith("the Run:ai login expires on")


def test_not_logged_in(suite: Any, tmp_path: Path) -> None:
    run = suite(
        "-m",
        "runai and not noorch and not writes",
        profile=runai_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_NOLOGIN}"),
    )
    assert run.check("RAI-003")["outcome"] == "failed"
    assert "no id-token" in message(run, "RAI-003")
    assert run.check("RAI-004")["outcome"] == "error"  # blocked by the login, not failing again on its own
    assert run.check("RAI-004")["blocked_by"] == "RAI-003"
    assert "no id-token" in message(run, "RAI-004")


def test_parsers() -> None:
    assert runai.parse_version("Version: 2.13.49\nBuildDate: x\n") == "2.13.49"
    assert runai.parse_version("runai version v2.18.3") == "2.18.3"
    assert runai.parse_version("garbage") is None
    listing = "PROJECT            DEPARTMENT\nalpha              default\nbeta (default)     default\n"
    assert runai.parse_projects(listing) == (["alpha", "beta"], "beta")
    assert runai.parse_projects("PROJECT  DEPARTMENT\nalpha  default\n") == (["alpha"], None)
    assert runai.parse_status("Name: x\nStatus: Succeeded\n") == "Succeeded"
