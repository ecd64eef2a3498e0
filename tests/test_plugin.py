"""The plugin end to end on synthetic checks: selection, outcomes, reports, leaks, usage errors."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import REPO, SuiteRun, write_profile

SYNTHETIC = """
import pytest
from conformance.checks import CannotEvaluate, check, expect

@check("NET-901", "Fix the frobnicator.")
def test_any_platform(evidence):
    evidence["frobs_seen"] = 3

@pytest.mark.onprem
@check("NET-902", "r")
def test_onprem_only():
    pass

@pytest.mark.gcp
@check("NET-903", "r")
def test_gcp_only():
    pass

@pytest.mark.noorch
@check("NET-904", "r")
def test_noorch_only():
    pass

@check("MLF-905", "Ask the MLOps team.")
def test_needs_mlflow():
    pass

@check("NET-906", "Restart the frobnicator.")
def test_fails():
    expect(False, expected="frob is 1", actual="frob is 2", hint="frob drifted")

@pytest.fixture
def broken():
    raise CannotEvaluate("frobnicator unreachable", "connect the VPN")

@check("NET-907", "r")
def test_cannot(broken):
    pass
"""

BARE = "platform: onprem\norchestrator: runai\n"
ONPREM = BARE + "mlflow: {tracking_uri: 'https://mlflow.example'}\n"  # MLF-905's component


def run_synthetic(
    tmp_path: Path, source: str, profile_text: str, *args: str, env: dict[str, str] | None = None
) -> SuiteRun:
    (tmp_path / "test_synthetic.py").write_text(source)
    profile = write_profile(tmp_path, profile_text, "synthetic.yaml")
    reports = tmp_path / "reports"
    command = [
        sys.executable, "-m", "pytest", "-p", "conformance.plugin", "-p", "no:cacheprovider",
        "--profile", str(profile), "--reports-dir", str(reports), "test_synthetic.py", *args,
    ]  # fmt: skip
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("CONFORMANCE_PROFILE", None)
    proc = subprocess.run(command, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=120, check=False)
    run = SuiteRun(proc.returncode, proc.stdout + proc.stderr, 0.0, reports)
    found = sorted(reports.glob("*.json")) if reports.is_dir() else []
    if found:
        run.results = json.loads(found[0].read_text())
    return run


def outcomes(run: SuiteRun) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in run.results["checks"]}


def test_marker_expression_selects_what_applies_to_the_platform(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM, "-m", "onprem and runai")
    assert outcomes(run) == {
        "NET-901": "passed",
        "NET-902": "passed",
        "MLF-905": "passed",
        "NET-906": "failed",
        "NET-907": "error",
    }
    assert run.rc == 1


def test_a_selected_component_the_profile_leaves_out_stops_the_run_instead_of_skipping(tmp_path: Path) -> None:
    """Whether a component applies depends on platform and orchestrator, never on its section being there."""
    run = run_synthetic(tmp_path, SYNTHETIC, BARE, "-m", "onprem and runai")
    assert run.rc == 4
    errors = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
    assert errors == ["ERROR: synthetic.yaml: mlflow: required for every platform (set mlflow.tracking_uri)"]
    assert "Traceback" not in run.output
    assert run.results.get("checks", []) == []  # stopped before any check ran
    deselected = run_synthetic(tmp_path, SYNTHETIC, BARE, "-m", "onprem and runai and not mlflow")
    assert deselected.rc == 1  # the run does not use mlflow: nothing is missing
    assert "MLF-905" not in outcomes(deselected)


def test_checks_that_do_not_apply_are_skipped_with_a_reason_naming_the_profile(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM)
    assert run.check("NET-903")["message"] == (
        "not applicable: profile synthetic is platform onprem; this check applies to gcp"
    )
    assert run.check("NET-904")["message"] == (
        "not applicable: profile synthetic has orchestrator runai; this check applies to noorch"
    )


def test_failure_shows_message_and_remediation_in_every_output(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM)
    message = "expected: frob is 1\nactual:   frob is 2\nhint:     frob drifted"
    assert message in run.output
    assert "Remediation [NET-906]" in run.output
    assert "Restart the frobnicator." in run.output
    assert "Traceback" not in run.output
    assert "cannot evaluate: frobnicator unreachable" in run.output

    record = run.check("NET-906")
    assert record["message"] == message
    assert record["remediation"] == "Restart the frobnicator."
    assert record["component"] == "network"
    assert run.check("NET-901")["evidence"] == {"frobs_seen": 3}

    junit = ET.parse(next(run.reports.glob("*.xml")))  # noqa: S314 - our own report, written by this run
    properties = {
        (case.get("name"), prop.get("name")): prop.get("value")
        for case in junit.iter("testcase")
        for prop in case.iter("property")
    }
    assert properties[("test_fails", "check_id")] == "NET-906"
    assert properties[("test_fails", "component")] == "network"

    html = next(run.reports.glob("*.html")).read_text()
    for text in ("Remediation", "Restart the frobnicator.", "NET-906", "Component", "NET-901 evidence"):
        assert text in html


def test_json_results_follow_the_schema(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM)
    doc = run.results
    assert doc["schema"] == "conformance-results/1"
    assert (doc["profile"], doc["platform"], doc["orchestrator"]) == ("synthetic", "onprem", "runai")
    assert set(doc["vantage"]) == {"hostname", "in_cluster"}
    assert doc["summary"] == {"passed": 3, "failed": 1, "error": 1, "skipped": 2, "xfailed": 0, "xpassed": 0}
    keys = {"id", "component", "nodeid", "outcome", "duration_s", "message", "remediation", "blocked_by", "evidence"}
    assert all(set(c) == keys for c in doc["checks"])


CANARY = "Canary-7f3a/9+Qz=&x"
LEAKY = """
import logging, sys
from conformance.checks import check

@check("MLF-950", "r")
def test_leaky(profile):
    password = profile.mlflow.password.reveal()
    logging.getLogger("leaky").debug("password is %s", password)
    print("stdout has", password)
    sys.stderr.write("stderr has " + password + "\\n")
    assert password == "wrong", f"mismatch {password}"
"""
MLFLOW_PROFILE = BARE + "mlflow: {tracking_uri: 'http://127.0.0.1:9', username: alice, password: env:CANARY_PW}\n"


def encodings(secret: str, user: str) -> list[str]:
    return [secret, urllib.parse.quote(secret, safe=""), base64.b64encode(f"{user}:{secret}".encode()).decode()]


def test_canary_secret_appears_nowhere_even_when_a_failing_check_holds_it(tmp_path: Path) -> None:
    run = run_synthetic(
        tmp_path, LEAKY, MLFLOW_PROFILE, "-vv", "-l", "--log-cli-level=DEBUG", "-rA", env={"CANARY_PW": CANARY}
    )
    assert run.rc == 1
    assert "mismatch ********" in run.output  # scrubbed, not dropped: the failure still reads
    texts = {"terminal": run.output, **run.artifact_texts()}
    assert len(texts) == 4
    for name, text in texts.items():
        for needle in encodings(CANARY, "alice"):
            assert needle not in text, f"{name} holds an encoding of the canary"
    assert "LEAK" not in run.output


TERMINAL_LEAK = """
from conformance.checks import check

@check("MLF-951", "r")
def test_prints_to_terminal(profile, request):
    request.config.get_terminal_writer().line("token " + profile.mlflow.password.reveal())
"""


def test_secret_written_straight_to_the_terminal_is_redacted_and_fails_the_run(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, TERMINAL_LEAK, MLFLOW_PROFILE, "-s", env={"CANARY_PW": CANARY})
    assert CANARY not in run.output
    assert "token ********" in run.output
    assert "LEAK: terminal output contained the value of mlflow.password; it was redacted before printing" in run.output
    assert run.rc == 1


ARTIFACT_LEAK = """
from conformance.checks import check

@check("MLF-952", "r")
def test_records_property(profile, record_property):
    record_property("oops", profile.mlflow.password.reveal())
"""


def test_artifact_holding_a_secret_is_withheld_and_fails_the_run(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, ARTIFACT_LEAK, MLFLOW_PROFILE, env={"CANARY_PW": CANARY})
    xml_path = next(run.reports.glob("*.xml"))
    assert f"LEAK: reports/{xml_path.name} contained the value of mlflow.password; it was withheld" in run.output
    text = xml_path.read_text()
    assert CANARY not in text
    assert "withheld by the conformance suite's leak scan" in text
    assert "mlflow.password" in text
    assert run.rc == 1


def test_ci_variables_with_personal_data_stay_out_of_the_report(tmp_path: Path) -> None:
    env = {"GITLAB_USER_EMAIL": "jane.doe@example.org", "CI_REGISTRY_USER": "ci-user-x1", "CI_JOB_ID": "987654"}
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM, env=env)
    html = next(run.reports.glob("*.html")).read_text()
    for value in env.values():
        assert value not in html
    assert "Guide version" in html
    assert "Simulated components" in html


def test_insecure_tls_is_flagged_in_red(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM + "tls: {insecure: true}\n")
    assert "WARNING: tls.insecure is set" in run.output
    html = next(run.reports.glob("*.html")).read_text()
    assert "TLS verification was DISABLED" in html
    assert run.results["tls_insecure"] is True


def test_no_profile_is_a_usage_error_listing_profiles() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CONFORMANCE_PROFILE"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 4
    assert "ERROR: no profile given: use --profile NAME|PATH" in proc.stderr
    assert "onprem-runai" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_broken_profile_exits_4_with_one_line_per_problem(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, SYNTHETIC, "platform: mars\norchestrator: runai\nmlflow: {password: env:NOPE_X}\n")
    assert run.rc == 4
    where = "synthetic.yaml"  # shown relative to the working directory
    assert f"ERROR: {where}: platform: input should be 'onprem' or 'gcp'" in run.output
    assert f"ERROR: {where}: mlflow.tracking_uri: required field is missing" in run.output
    assert f"ERROR: {where}: mlflow.password: environment variable NOPE_X is not set" in run.output
    assert "Traceback" not in run.output


def test_profile_from_environment_variable(tmp_path: Path) -> None:
    (tmp_path / "test_synthetic.py").write_text(SYNTHETIC)
    profile = write_profile(tmp_path, ONPREM, "from-env.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO), "CONFORMANCE_PROFILE": str(profile)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conformance.plugin", "-p", "no:cacheprovider", "--no-reports",
         "-k", "any_platform", "test_synthetic.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert "profile: from-env (onprem + runai" in proc.stdout


def waivers_file(tmp_path: Path, check: str, expires: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        f"- check: {check}\n  justification: accepted until the frobnicator is replaced (OPS-1)\n"
        f"  owner: platform-team\n  expires: {expires}\n"
    )
    return path


def test_waived_failure_shows_as_xfailed_until_its_date(tmp_path: Path) -> None:
    waivers = waivers_file(tmp_path, "NET-906", "2999-12-31")
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM, "-k", "fails or any_platform", f"--waivers={waivers}")
    record = run.check("NET-906")
    assert record["outcome"] == "xfailed"
    assert "waived until 2999-12-31 by platform-team" in record["message"]
    assert run.results["waivers"][0]["status"] == "used"
    assert run.rc == 0


def test_expired_waiver_no_longer_excuses_and_is_listed(tmp_path: Path) -> None:
    waivers = waivers_file(tmp_path, "NET-906", "2020-01-31")
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM + f"waivers: {waivers}\n", "-k", "fails")
    assert run.check("NET-906")["outcome"] == "failed"
    assert run.results["waivers"][0]["status"] == "expired"
    assert "waiver NET-906 (platform-team, 2020-01-31): expired" in run.output
    assert "Waivers to review" in next(run.reports.glob("*.html")).read_text()
    assert run.rc == 1


def test_waiver_on_a_passing_check_is_reported_unused(tmp_path: Path) -> None:
    waivers = waivers_file(tmp_path, "NET-901", "2999-12-31")
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM, "-k", "any_platform", f"--waivers={waivers}")
    assert run.check("NET-901")["outcome"] == "xpassed"
    assert run.results["waivers"][0]["status"] == "unused"


def test_malformed_waivers_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "waivers.yaml"
    bad.write_text("- check: NET-906\n  owner: x\n")
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM, f"--waivers={bad}")
    assert run.rc == 4
    assert "waivers.yaml: 0.justification: required field is missing" in run.output
    assert "waivers.yaml: 0.expires: required field is missing" in run.output
    assert "Traceback" not in run.output


def test_spent_budget_records_the_rest_as_not_run_and_still_writes_reports(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM, "--budget=0")
    assert {c["outcome"] for c in run.results["checks"]} == {"skipped"}
    assert run.check("NET-906")["message"].startswith("not run (budget): the run's budget of 0 s was spent")
    assert len(list(run.reports.iterdir())) == 3
    assert run.rc == 0


SLOW = """
import pathlib, threading, pytest
from conformance.checks import check

@pytest.fixture
def resource():
    yield "x"
    pathlib.Path("teardown-ran").write_text("yes")

@check("NET-990", "r")
def test_slow(resource):
    pathlib.Path("started").write_text("yes")
    threading.Event().wait(60)
"""


def test_sigterm_runs_teardown_writes_reports_and_exits_2(tmp_path: Path) -> None:
    import signal
    import threading

    (tmp_path / "test_slow.py").write_text(SLOW)
    profile = write_profile(tmp_path, ONPREM, "p.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "conformance.plugin", "-p", "no:cacheprovider",
         "--profile", str(profile), "--reports-dir", "rep", "test_slow.py"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    pause = threading.Event()
    for _ in range(300):
        if (tmp_path / "started").exists():
            break
        pause.wait(0.05)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, output
    assert (tmp_path / "teardown-ran").read_text() == "yes"
    assert len(list((tmp_path / "rep").glob("*.json"))) == 1


EXEC_LEAK = """
from conformance.checks import check, expect
from conformance.clients import kubernetes as kube

@check("K8S-950", "r")
def test_sends_the_plugin_token(profile):
    kc = kube.find_kubeconfig(profile.kubernetes)
    found = kube.obtain(kc, kube.credential(kc), profile.tls, profile.timeouts)  # what the client would send
    expect(False, expected="nothing sent", actual=f"sent {found.entry['token']}")
"""


def test_a_token_minted_by_an_exec_plugin_is_known_to_the_controllers_leak_scan(tmp_path: Path) -> None:
    """The plugin mints a token per call: it runs once, at open, and the xdist workers send that token."""
    calls = tmp_path / "calls"
    plugin = tmp_path / "mint"
    plugin.write_text(
        f'#!/bin/sh\necho x >> {calls}; n=$(wc -l < {calls}); echo "{{\\"kind\\":\\"ExecCredential\\",'
        '\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"status\\":{\\"token\\":\\"minted-token-$n\\"}}"\n'
    )
    plugin.chmod(0o700)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
        f"users: [{{name: u, user: {{exec: {{apiVersion: client.authentication.k8s.io/v1, command: {plugin}}}}}}}]\n"
    )
    kubeconfig.chmod(0o600)
    profile = BARE + f"kubernetes: {{kubeconfig: '{kubeconfig}', namespace: ns, pvc: data}}\n"
    run = run_synthetic(tmp_path, EXEC_LEAK, profile, "-n", "2")
    assert run.results["checks"][0]["outcome"] == "failed"
    assert "sent ********" in run.results["checks"][0]["message"]
    assert calls.read_text() == "x\n"  # once, in the controller: the workers reuse its token
    texts = {"terminal": run.output, **run.artifact_texts()}
    for name, text in texts.items():
        assert "minted-token" not in text, f"{name} holds the plugin's token"
