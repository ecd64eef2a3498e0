"""MLF checks against the sandbox's real MLflow server: each passes, and each fails for its own fault."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from conformance import transport
from conformance.clients import mlflow as client
from conformance.profile import TLS, MLflow, Timeouts
from conformance.secrets import Secret
from tests.conftest import SuiteRun, write_profile

MLF_IDS = ("MLF-001", "MLF-002", "MLF-003", "MLF-004", "MLF-005", "MLF-006")
GUIDE_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_S3_ENDPOINT_URL")
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")


def mlflow_profile(directory: Path, section: str, name: str = "mlflow.yaml") -> Path:
    """A profile with only the network basics and the given mlflow section."""
    text = (
        "platform: onprem\norchestrator: runai\n"
        "timeouts: {connect: 2, request: 5, check: 60}\n"
        "tls: {ca_bundle: '${SANDBOX_CA_BUNDLE}'}\n"
        "mlflow:\n" + "".join(f"  {line}\n" for line in section.strip().splitlines())
    )
    return write_profile(directory, text, name)


GOOD = """
tracking_uri: ${SANDBOX_MLFLOW_URI}
username: ${SANDBOX_MLFLOW_USER}
password: env:SANDBOX_MLFLOW_PASSWORD
experiment: ${SANDBOX_MLFLOW_EXPERIMENT}
"""


@pytest.fixture(autouse=True)
def _no_guide_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's subprocesses inherit os.environ: no MLflow or AWS credentials from this machine."""
    for name in (*GUIDE_VARIABLES, *AWS_VARIABLES):
        monkeypatch.delenv(name, raising=False)


def outcome(run: SuiteRun, check_id: str) -> tuple[str, str, Any]:
    record = run.check(check_id)
    return record["outcome"], record["message"], record["blocked_by"]


# --------------------------------------------------------------------------- against the sandbox


def test_all_pass_and_clean_up(suite: Any, sandbox_env: dict[str, str], tmp_path: Path) -> None:
    # A CA variable pointing at the system store must not matter: trust comes from the profile only.
    run = suite(
        "-m",
        "mlflow",
        profile=mlflow_profile(tmp_path, GOOD),
        env={"REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt", "AWS_CA_BUNDLE": "/nonexistent.pem"},
    )
    for check_id in MLF_IDS:
        assert run.check(check_id)["outcome"] == "passed", (
            check_id,
            run.check(check_id)["message"],
            run.output[-3000:],
        )
    smoke = run.check("MLF-004")["evidence"]
    assert smoke["artifact_uri"].startswith("mlflow-artifacts:/")
    assert smoke["mlflow_run_id"]
    assert smoke["experiment_id"]
    assert "log_metric" in smoke["seconds"]
    assert "download_artifacts" in smoke["seconds"]
    assert run.check("MLF-005")["evidence"]["store"] == "proxied"
    versions = run.check("MLF-006")["evidence"]
    assert versions["server"] == versions["client"].split()[-1]
    assert run.check("MLF-003")["evidence"]["created_by_this_run"] is False
    # Teardown deleted exactly the runs this run created.
    run_id = run.results["run_id"]
    runs = _runs_tagged(sandbox_env, run_id)
    assert len(runs) == 3, runs  # probe, smoke, artifact
    assert {stage for _, stage in runs} == {"deleted"}
    # Canary: the password, and the Basic header made of it, appear nowhere.
    password = sandbox_env["SANDBOX_MLFLOW_PASSWORD"]
    basic = base64.b64encode(f"{sandbox_env['SANDBOX_MLFLOW_USER']}:{password}".encode()).decode()
    for text in [run.output, *run.artifact_texts().values()]:
        assert password not in text
        assert basic not in text


def _runs_tagged(sandbox_env: dict[str, str], run_id: str) -> list[tuple[str, str]]:
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    values: dict[str, str | None] = {
        "MLFLOW_TRACKING_USERNAME": sandbox_env["SANDBOX_MLFLOW_USER"],
        "MLFLOW_TRACKING_PASSWORD": sandbox_env["SANDBOX_MLFLOW_PASSWORD"],
        "MLFLOW_TRACKING_SERVER_CERT_PATH": sandbox_env["SANDBOX_CA_BUNDLE"],
    }
    with client.scoped_environ(values):
        mlflow = MlflowClient(tracking_uri=sandbox_env["SANDBOX_MLFLOW_URI"])
        experiment = mlflow.get_experiment_by_name(sandbox_env["SANDBOX_MLFLOW_EXPERIMENT"])
        assert experiment is not None
        found = mlflow.search_runs(
            [experiment.experiment_id], f"tags.conformance = '{run_id}'", run_view_type=ViewType.ALL
        )
    return [(r.info.run_id, r.info.lifecycle_stage) for r in found]


def test_wrong_password_fails_auth_and_blocks_the_rest(suite: Any, tmp_path: Path) -> None:
    section = GOOD.replace("env:SANDBOX_MLFLOW_PASSWORD", "env:MLF_WRONG_PASSWORD")
    run = suite("-m", "mlflow", profile=mlflow_profile(tmp_path, section), env={"MLF_WRONG_PASSWORD": "not-it-123"})
    assert run.check("MLF-001")["outcome"] == "passed"
    state, message, _ = outcome(run, "MLF-002")
    assert state == "failed"
    assert "bad credentials" in message
    assert "401" in message
    assert "UNAUTHENTICATED" in message
    for check_id in ("MLF-003", "MLF-004", "MLF-005"):
        assert outcome(run, check_id)[0] == "error"
        assert outcome(run, check_id)[2] == "MLF-002"
    assert "not-it-123" not in run.output


def test_missing_credentials_and_wrong_path(suite: Any, tmp_path: Path) -> None:
    # No username/password in the profile, none in the environment; the URI has a wrong path.
    section = "tracking_uri: ${SANDBOX_MLFLOW_URI}/wrong-prefix\nexperiment: ${SANDBOX_MLFLOW_EXPERIMENT}"
    run = suite("-m", "mlflow", profile=mlflow_profile(tmp_path, section))
    state, message, _ = outcome(run, "MLF-001")
    assert state == "failed"
    assert "404" in message
    assert "wrong path" in message
    state, message, _ = outcome(run, "MLF-002")
    assert state == "failed"
    assert "MLFLOW_TRACKING_USERNAME is not set in the environment" in message
    assert "MLFLOW_TRACKING_PASSWORD is not set" in message
    assert "$Env:MLFLOW_TRACKING_USERNAME" in message  # the PowerShell hint
    # Without /version the server version is unknown: a warning, not a failure.
    record = run.check("MLF-006")
    assert record["outcome"] == "passed"
    assert "unknown" in record["evidence"]["server"]


def test_readonly_user_has_no_permission_on_the_experiment(suite: Any, tmp_path: Path) -> None:
    section = GOOD.replace("SANDBOX_MLFLOW_USER", "SANDBOX_MLFLOW_READONLY_USER").replace(
        "SANDBOX_MLFLOW_PASSWORD", "SANDBOX_MLFLOW_READONLY_PASSWORD"
    )
    run = suite("-m", "mlflow", profile=mlflow_profile(tmp_path, section))
    assert run.check("MLF-002")["outcome"] == "passed"
    state, message, _ = outcome(run, "MLF-003")
    assert state == "failed"
    assert "no permission on the experiment" in message
    assert "PERMISSION_DENIED" in message
    assert "403" in message
    assert "NO_PERMISSIONS" in message  # the not-granted hint
    for check_id in ("MLF-004", "MLF-005"):
        assert outcome(run, check_id)[0] == "error"
        assert outcome(run, check_id)[2] == "MLF-003"


BROKEN = """
tracking_uri: ${SANDBOX_MLFLOW_URI}
experiment: ${SANDBOX_MLFLOW_BROKEN_ARTIFACTS_EXPERIMENT}
"""


def test_artifact_store_down_while_tracking_works(suite: Any, sandbox_env: dict[str, str], tmp_path: Path) -> None:
    # Credentials from the guide's environment variables; the experiment's artifact location is an
    # s3:// bucket that does not exist on the sandbox's S3 server, which the client has keys for.
    env = {
        "MLFLOW_TRACKING_USERNAME": sandbox_env["SANDBOX_MLFLOW_USER"],
        "MLFLOW_TRACKING_PASSWORD": sandbox_env["SANDBOX_MLFLOW_PASSWORD"],
        "MLFLOW_S3_ENDPOINT_URL": sandbox_env["SANDBOX_S3_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": sandbox_env["SANDBOX_S3_ADMIN_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": sandbox_env["SANDBOX_S3_ADMIN_SECRET_ACCESS_KEY"],
        "HOME": str(tmp_path),
    }
    run = suite("-m", "mlflow", profile=mlflow_profile(tmp_path, BROKEN), env=env)
    record = run.check("MLF-002")
    assert record["outcome"] == "passed"
    assert record["evidence"]["password_from"] == "environment variable MLFLOW_TRACKING_PASSWORD"  # noqa: S105 - a source, not a password
    assert run.check("MLF-003")["outcome"] == "passed"
    state, message, _ = outcome(run, "MLF-005")
    assert state == "failed"
    assert "tracking works" in message
    assert "artifact upload fails" in message
    assert "NoSuchBucket" in message
    state, message, _ = outcome(run, "MLF-004")
    assert state == "failed"
    assert "tracking works, artifact upload fails" in message
    assert sandbox_env["SANDBOX_MLFLOW_PASSWORD"] not in run.output


def test_direct_bucket_location_names_the_missing_pieces(
    suite: Any, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        "MLFLOW_TRACKING_USERNAME": sandbox_env["SANDBOX_MLFLOW_USER"],
        "MLFLOW_TRACKING_PASSWORD": sandbox_env["SANDBOX_MLFLOW_PASSWORD"],
        "HOME": str(tmp_path),  # no ~/.aws/credentials either
    }
    run = suite("-k", "artifact_store", "-m", "mlflow", profile=mlflow_profile(tmp_path, BROKEN), env=env)
    state, message, _ = outcome(run, "MLF-005")
    assert state == "failed"
    assert "s3 artifact location" in message
    assert "MLFLOW_S3_ENDPOINT_URL" in message
    assert "AWS_ACCESS_KEY_ID" in message


def test_not_an_mlflow_server(suite: Any, tmp_path: Path) -> None:
    # Something that answers every GET with 200 "ok": /health passes, /version is no version.
    section = GOOD.replace("${SANDBOX_MLFLOW_URI}", "${SANDBOX_HTTPS_URL}")
    run = suite("-k", "health or versions", "-m", "mlflow", profile=mlflow_profile(tmp_path, section))
    assert run.check("MLF-001")["outcome"] == "passed"
    state, message, _ = outcome(run, "MLF-006")
    assert state == "failed"
    assert "not an MLflow server" in message
    assert "'ok'" in message


# --------------------------------------------------------------------------- units


def test_scoped_environ_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLF_KEEP", "before")
    monkeypatch.delenv("MLF_NEW", raising=False)
    with client.scoped_environ({"MLF_KEEP": None, "MLF_NEW": "during"}):
        assert "MLF_KEEP" not in os.environ
        assert os.environ["MLF_NEW"] == "during"
    assert os.environ["MLF_KEEP"] == "before"
    assert "MLF_NEW" not in os.environ


def test_client_environment_pins_trust_timeouts_and_retries(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    values = client.client_environment(Timeouts(connect=2, request=4.2), TLS(ca_bundle=bundle))
    assert values["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
    assert values["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    for name in ("MLFLOW_TRACKING_SERVER_CERT_PATH", "REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE"):
        assert values[name] == str(bundle)
    insecure = client.client_environment(Timeouts(), TLS(insecure=True))
    assert insecure["MLFLOW_TRACKING_INSECURE_TLS"] == "true"
    assert insecure["MLFLOW_TRACKING_SERVER_CERT_PATH"] is None  # mlflow refuses both at once
    system = client.client_environment(Timeouts(), TLS())["REQUESTS_CA_BUNDLE"]  # the system store, by path
    assert system is None or os.path.exists(str(system))


def test_credentials_fall_back_to_environment() -> None:
    section = MLflow(tracking_uri="https://mlflow.example")
    creds = client.resolve_credentials(section, {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "pw"})
    assert creds.complete
    assert creds.username == "alice"
    assert creds.password_from.endswith("MLFLOW_TRACKING_PASSWORD")
    assert "pw" not in repr(creds)
    missing = client.resolve_credentials(section, {"MLFLOW_TRACKING_USERNAME": ""})
    assert not missing.complete
    assert missing.problems == (
        "MLFLOW_TRACKING_USERNAME is set but empty",
        "MLFLOW_TRACKING_PASSWORD is not set in the environment (and the profile has no mlflow.password)",
    )
    profile_first = MLflow(tracking_uri="https://m", username="bob", password=Secret("secret-1", "env:X"))
    assert client.resolve_credentials(profile_first, {"MLFLOW_TRACKING_USERNAME": "alice"}).username == "bob"


def test_artifact_store_classification(tmp_path: Path) -> None:
    assert client.artifact_store("mlflow-artifacts:/3", {}).missing == ()
    s3 = client.artifact_store("s3://bucket/path", {"HOME": str(tmp_path), "AWS_SHARED_CREDENTIALS_FILE": "/none"})
    assert s3.kind == "s3"
    assert any("MLFLOW_S3_ENDPOINT_URL" in m for m in s3.missing)
    full = {"MLFLOW_S3_ENDPOINT_URL": "https://ecs", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    assert client.artifact_store("s3://bucket/path", full).missing == ()
    gs = client.artifact_store("gs://bucket/x", {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json")})
    assert gs.kind == "gcs"
    assert any("GOOGLE_APPLICATION_CREDENTIALS" in m for m in gs.missing)
    local = client.artifact_store("/mlflow/artifacts/1", {})
    assert local.kind == "server-local"
    assert "--serve-artifacts" in local.missing[0]
    assert client.artifact_store("wasbs://c@a/x", {}).kind == "unknown"


def test_versions() -> None:
    assert client.version_tuple("2.15.1") == (2, 15, 1)
    assert client.version_tuple("ok") is None
    assert client.client_newer("3.17.2", "2.15.1")
    assert not client.client_newer("2.15.3", "2.15.1")  # same major.minor
    assert not client.client_newer("2.9.2", "2.15.1")


def test_classify_mlflow_and_transport_errors() -> None:
    from mlflow.exceptions import MlflowException, RestException

    rest = RestException({"error_code": "PERMISSION_DENIED", "message": "Permission denied"})  # type: ignore[no-untyped-call] # mlflow's own signature is untyped
    failure = client.classify("create_run", rest)
    assert failure.forbidden
    assert failure.code == "PERMISSION_DENIED"
    assert failure.status == 403
    try:
        try:
            raise requests.exceptions.ConnectTimeout("timed out")
        except Exception as inner:
            raise MlflowException("API request failed") from inner
    except MlflowException as exc:
        wrapped = exc
    assert client.unanswered(wrapped)  # MlflowClient.call raises transport's no-answer CannotEvaluate for it
    assert not client.unanswered(rest)
    no_answer = transport.no_answer("search_experiments", "https://mlflow.test", wrapped, Timeouts(connect=3))
    assert (
        no_answer.reason == "no answer to search_experiments from mlflow.test:443 (tcp: connect timed out; timeout 3 s)"
    )
