"""RAI checks against the sandbox's simulated runai CLIs (both generations) and API server.

Every variant the sandbox installs is run: the guide's kubeconfig CLI and Run:ai's new CLI pass
everything when they behave; each fault (not logged in, another default project, a job that
fails, an old CLI) is reported by its own check with the cause in the message.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from conformance.clients import runai
from conformance.sandbox import runai as simulated
from conformance.session import open_profile
from tests.conftest import write_profile

# RAI checks only: other checks apply to every orchestrator (not noorch) or are other runai-scoped components
RAI_ONLY = "runai and not noorch and not (kubernetes or gitlab or workspace)"
RAI_SELECT = ("-m", RAI_ONLY)


def runai_profile(
    directory: Path,
    *,
    kubeconfig: str = "${SANDBOX_KUBECONFIG}",
    cli: str = "${SANDBOX_RUNAI_KUBECONFIG_CLI}",
    name: str = "rai.yaml",
    image: str = "${SANDBOX_K8S_SMOKE_IMAGE}",
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
  smoke_image: '{image}'
"""
    return write_profile(directory, text, name)


def message(run: Any, check_id: str) -> str:
    return str(run.check(check_id)["message"])


def test_all_pass_and_no_token_leaks(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    run = suite(*RAI_SELECT, profile=runai_profile(tmp_path))
    for check_id in ("RAI-001", "RAI-002", "RAI-003", "RAI-004", "RAI-005"):
        assert run.check(check_id)["outcome"] == "passed", (check_id, message(run, check_id), run.output[-3000:])
    assert run.check("RAI-002")["evidence"]["version"] == "2.13.49"
    assert run.check("RAI-002")["evidence"]["generation"] == "kubeconfig"
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
    missing = runai_profile(tmp_path, cli=str(tmp_path / "no" / "runai"), name="missing.yaml")
    run = suite("-m", f"{RAI_ONLY} and not writes", profile=missing)
    assert run.check("RAI-001")["outcome"] == "failed"
    assert "is not found or not executable" in message(run, "RAI-001")
    for check_id in ("RAI-002", "RAI-003", "RAI-004"):  # without a CLI, not even its generation is known
        assert run.check(check_id)["blocked_by"] == "RAI-001"
    expired = runai_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_EXPIRED}", name="expired.yaml")
    run = suite("-m", f"{RAI_ONLY} and not writes", profile=expired)
    assert run.check("RAI-003")["outcome"] == "failed"
    assert "the id-token expired on" in message(run, "RAI-003")
    assert "runai login" in message(run, "RAI-003")


def test_cli_v1_and_wrong_project(suite: Any, tmp_path: Path) -> None:
    profile = runai_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_OTHER_PROJECT}", cli="${SANDBOX_RUNAI_V1_CLI}")
    run = suite("-m", f"{RAI_ONLY} and not writes", profile=profile)
    assert run.check("RAI-002")["outcome"] == "failed"
    assert "runai version 1.4.2" in message(run, "RAI-002")
    assert run.check("RAI-004")["outcome"] == "failed"
    assert "the default project is other" in message(run, "RAI-004")
    assert "runai config project conformance" in message(run, "RAI-004")


def test_login_expiring_within_the_horizon_fails_and_beyond_it_warns_and_a_failed_job(
    suite: Any, tmp_path: Path
) -> None:
    profile = runai_profile(  # the login expires in 1 day
        tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_EXPIRING}", image="${SANDBOX_RUNAI_FAILING_IMAGE}"
    )
    run = suite(*RAI_SELECT, profile=profile)
    record = run.check("RAI-003")
    assert record["outcome"] == "failed"
    assert "the Run:ai login expires on" in record["message"]
    assert "expiry horizon (7 days" in record["message"]
    assert run.check("RAI-004")["outcome"] == "passed"  # it still works today: nothing is blocked by it
    assert run.check("RAI-005")["outcome"] == "failed"
    assert "the job ended with status Failed" in message(run, "RAI-005")
    assert "-rai -p conformance` and the job's log" in message(run, "RAI-005")  # runai describe job NAME -p P
    profile.write_text(profile.read_text() + "expiry_horizon_days: 0.6\n")
    run = suite("-m", f"{RAI_ONLY} and not writes", profile=profile)
    record = run.check("RAI-003")
    assert record["outcome"] == "passed"
    assert record["evidence"]["warning"].startswith("the Run:ai login expires on")


def test_not_logged_in(suite: Any, tmp_path: Path) -> None:
    run = suite(
        "-m",
        f"{RAI_ONLY} and not writes",
        profile=runai_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_NOLOGIN}"),
    )
    assert run.check("RAI-003")["outcome"] == "failed"
    assert "no id-token" in message(run, "RAI-003")
    assert run.check("RAI-004")["outcome"] == "error"  # blocked by the login, not failing again on its own
    assert run.check("RAI-004")["blocked_by"] == "RAI-003"
    assert "no id-token" in message(run, "RAI-004")


def test_new_cli_all_pass(suite: Any, tmp_path: Path) -> None:
    """Run:ai's new CLI: login and project under its ~/.runai/, `runai training ...`; the kubeconfig is no login."""
    profile = runai_profile(tmp_path, cli="${SANDBOX_RUNAI_NEW_CLI}", kubeconfig="${SANDBOX_KUBECONFIG_NOLOGIN}")
    run = suite(*RAI_SELECT, profile=profile)
    for check_id in ("RAI-001", "RAI-002", "RAI-003", "RAI-004", "RAI-005"):
        assert run.check(check_id)["outcome"] == "passed", (check_id, message(run, check_id), run.output[-3000:])
    assert run.check("RAI-002")["evidence"]["generation"] == "new"
    assert run.check("RAI-002")["evidence"]["version"] == "2.19.31"
    assert run.check("RAI-003")["evidence"]["whoami"] == "User: researcher@conformance.example"
    assert run.check("RAI-004")["evidence"]["default_project"] == "conformance"
    assert run.check("RAI-005")["evidence"]["status"] == "Completed"


def test_new_cli_not_logged_in(suite: Any, tmp_path: Path) -> None:
    profile = runai_profile(tmp_path, cli="${SANDBOX_RUNAI_NEW_CLI_NOLOGIN}")
    run = suite(*RAI_SELECT, profile=profile)
    assert run.check("RAI-002")["outcome"] == "passed"
    assert run.check("RAI-003")["outcome"] == "failed"
    assert "you are not logged in" in message(run, "RAI-003")
    assert "run `runai login`" in message(run, "RAI-003")
    for check_id in ("RAI-004", "RAI-005"):  # one root cause: blocked by the login, not failing again
        assert run.check(check_id)["outcome"] == "error"
        assert run.check(check_id)["blocked_by"] == "RAI-003"
        assert "you are not logged in" in message(run, check_id)


def test_new_cli_other_project_and_a_failed_job(suite: Any, tmp_path: Path) -> None:
    profile = runai_profile(
        tmp_path, cli="${SANDBOX_RUNAI_NEW_CLI_OTHER_PROJECT}", image="${SANDBOX_RUNAI_FAILING_IMAGE}"
    )
    run = suite(*RAI_SELECT, profile=profile)
    assert run.check("RAI-003")["outcome"] == "passed"
    assert run.check("RAI-004")["outcome"] == "failed"
    assert "the default project is other" in message(run, "RAI-004")
    assert "runai project set conformance" in message(run, "RAI-004")
    assert run.check("RAI-005")["outcome"] == "failed"
    assert "the job ended with status Failed" in message(run, "RAI-005")
    assert "-rai --project conformance` and the job's log" in message(run, "RAI-005")  # runai training describe


def test_sandbox_chooses_the_generation(tmp_path: Path, sandbox_env: dict[str, str], monkeypatch: Any) -> None:
    """SANDBOX_RUNAI_CLI_GENERATION picks which CLI the sandbox profiles get (kubeconfig by default)."""

    def fake() -> Any:  # only dir, env and simulated are used
        return SimpleNamespace(
            dir=tmp_path, env={"SANDBOX_KUBECONFIG": sandbox_env["SANDBOX_KUBECONFIG"]}, simulated=[]
        )

    assert sandbox_env["SANDBOX_RUNAI_CLI"] == sandbox_env["SANDBOX_RUNAI_KUBECONFIG_CLI"]
    monkeypatch.setenv(simulated.GENERATION_VAR, "new")
    sandbox = fake()
    simulated.start(sandbox)
    assert sandbox.env["SANDBOX_RUNAI_CLI"] == sandbox.env["SANDBOX_RUNAI_NEW_CLI"]
    monkeypatch.setenv(simulated.GENERATION_VAR, "v3")
    with pytest.raises(ValueError, match="SANDBOX_RUNAI_CLI_GENERATION='v3': one of kubeconfig, new"):
        simulated.start(fake())


def test_parsers() -> None:
    assert runai.parse_version("Version: 2.13.49\nBuildDate: x\n") == "2.13.49"
    assert runai.parse_version("runai version v2.18.3") == "2.18.3"
    assert runai.parse_version("v2.20.15\n") == "2.20.15"
    assert runai.parse_version("garbage") is None
    listing = "PROJECT            DEPARTMENT\nalpha              default\nbeta (default)     default\n"
    assert runai.parse_projects(listing) == (["alpha", "beta"], "beta")
    assert runai.parse_projects("PROJECT  DEPARTMENT\nalpha  default\n") == (["alpha"], None)
    assert runai.parse_status("Name: x\nStatus: Succeeded\n") == "Succeeded"
    assert runai.parse_status("NAME: x\nSTATUS: RUNNING\n") == "RUNNING"
    assert runai.outcome("SUCCEEDED") == "succeeded"
    assert runai.outcome("Error") == "failed"
    assert runai.outcome("ImagePullBackOff") is None  # not final: RAI-005 waits, then names it
    assert runai.parse_status('{"general": {"status": "Completed"}, "pods": [{"status": "Running"}]}') == "Completed"
    assert runai.parse_status("{}") is None


def test_new_cli_cleanup_sweeps_old_jobs(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    """`conformance cleanup` lists and deletes a run's leftover jobs with the new CLI's own verbs."""
    from tests.test_cleanup import environ, stamp

    env = environ(sandbox_env)
    profile = open_profile(runai_profile(tmp_path, cli="${SANDBOX_RUNAI_NEW_CLI}"), env).profile
    cli = runai.connect(profile, "plant")
    old = f"conformance-{stamp(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))}-rai"
    young = f"conformance-{stamp(dt.datetime.now(dt.UTC))}-rai"
    for name in (old, young):
        assert cli.submit(name, ["/bin/sh", "-c", "echo planted"]).ok
    swept = runai.sweep(profile, dt.datetime.now(dt.UTC) - dt.timedelta(days=1), dry_run=False)
    assert swept.items == [f"job {old} (project conformance)"]
    assert not swept.failures
    remaining = cli.list_jobs()[1]
    assert young in remaining
    assert old not in remaining
    assert cli.delete(young).ok


def test_the_login_stands_on_the_kubeconfig_only_with_the_kubeconfig_cli(suite: Any, tmp_path: Path) -> None:
    """An expired kubeconfig login (K8S-005 fails): the guide's CLI logs in through it, so RAI-003 is blocked by
    K8S-005; Run:ai's new CLI keeps its own login under ~/.runai/, so RAI-003 runs, and passes, on its own."""
    selection = ("conformance/components/test_kubernetes.py", "conformance/components/test_runai.py")
    kubeconfig_cli = runai_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_EXPIRED}", name="old.yaml")
    run = suite(*selection, "-m", "not writes", profile=kubeconfig_cli)
    assert run.check("K8S-005")["outcome"] == "failed"
    assert run.check("RAI-003")["blocked_by"] == "K8S-005"
    assert message(run, "RAI-003").startswith("blocked by K8S-005 (the id-token expired on ")
    new_cli = runai_profile(
        tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_EXPIRED}", cli="${SANDBOX_RUNAI_NEW_CLI}", name="new.yaml"
    )
    run = suite(*selection, "-m", "not writes", profile=new_cli)
    assert run.check("K8S-005")["outcome"] == "failed"
    login = run.check("RAI-003")
    assert login["outcome"] == "passed", login["message"]
    assert login["blocked_by"] is None
    assert login["evidence"]["generation"] == "new"
