"""GCP checks: each passes on the sandbox's simulated Google endpoints and fails for its own fault."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance.clients.gcp import KeyFileError, validate_key
from tests.conftest import REPO, SuiteRun, write_profile

MODULE = "conformance/components/test_gcp.py"


@pytest.fixture(scope="module")
def sandbox_key(sandbox_env: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(sandbox_env["SANDBOX_GCP_KEY_FILE"]).read_text())
    return data


def _profile(directory: Path, gcp_yaml: str, name: str = "profile.yaml") -> Path:
    base = REPO / "profiles" / "sandbox-gcp.yaml"
    return write_profile(directory, f"extends: {base}\ngcp:\n{gcp_yaml}", name)


def _no_key_material(run: SuiteRun, key: dict[str, Any]) -> None:
    """The canary: neither the private key (any line of its body) nor its id appears anywhere."""
    body = [line for line in key["private_key"].splitlines() if "-----" not in line and len(line) > 20]
    texts = {"output": run.output, **run.artifact_texts()}
    for name, text in texts.items():
        assert key["private_key_id"] not in text, name
        assert not any(line in text for line in body), name


def _write_key(path: Path, key: dict[str, Any], **changes: Any) -> Path:
    data = {**key, **changes}
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------- unit


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"type": "authorized_user"}, "field 'type' is 'authorized_user', not 'service_account'"),
        ({"client_email": None}, "field 'client_email' is missing or empty"),
        ({"private_key": "not a key"}, "field 'private_key' is not a PEM private key"),
        ({"token_uri": "http://x/token"}, "field 'token_uri' is not an https:// URL"),
    ],
)
def test_malformed_keys_name_the_field(
    tmp_path: Path, sandbox_key: dict[str, Any], changes: dict[str, Any], words: str
) -> None:
    path = _write_key(tmp_path / "key.json", sandbox_key, **changes)
    with pytest.raises(KeyFileError) as caught:
        validate_key(path, "test")
    assert str(caught.value).startswith(f"{path}: {words}")
    assert sandbox_key["private_key_id"] not in str(caught.value)


def test_unreadable_key_files(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"type": "service_account",')
    with pytest.raises(KeyFileError, match=r"broken.json: service-account key is not valid JSON \(line 1"):
        validate_key(tmp_path / "broken.json", "test")
    with pytest.raises(KeyFileError, match=r"missing.json: service-account key does not exist"):
        validate_key(tmp_path / "missing.json", "test")


# --------------------------------------------------------------------------- against the sandbox


def test_sandbox_gcp_passes(suite: Any, sandbox_env: dict[str, str], sandbox_key: dict[str, Any]) -> None:
    """gcloud's active account (simulated CLI), the key, and a real JWT-bearer grant to the simulated APIs."""
    run = suite(MODULE, profile="sandbox-gcp")
    credentials = run.check("GCP-001")
    assert credentials["outcome"] == "passed", credentials
    assert credentials["evidence"]["used"] == f"gcloud active account {sandbox_env['SANDBOX_GCP_ACCOUNT']}"
    key = run.check("GCP-002")
    assert key["outcome"] == "passed", key
    assert key["evidence"]["client_email"] == sandbox_env["SANDBOX_GCP_ACCOUNT"]
    project = run.check("GCP-003")
    assert project["outcome"] == "passed", project
    assert project["evidence"]["lifecycle_state"] == "ACTIVE"
    assert project["evidence"]["credentials"].startswith("service-account key ")
    expiry = run.check("GCP-004")
    assert expiry["outcome"] == "passed", expiry
    assert expiry["evidence"]["expires"] == "no expiry (validBeforeTime 9999-12-31: no key expiry policy)"
    assert (expiry["evidence"]["key_type"], expiry["evidence"]["disabled"]) == ("USER_MANAGED", False)
    assert "warning" not in expiry["evidence"]
    _no_key_material(run, sandbox_key)


def test_sandbox_onprem_has_no_gcp_checks(suite: Any) -> None:
    run = suite(MODULE, profile="sandbox")
    assert run.check("GCP-001")["outcome"] == "skipped"
    assert "platform onprem" in run.check("GCP-001")["message"]


def test_key_from_environment_without_gcloud_and_a_denied_project(
    suite: Any, tmp_path: Path, sandbox_env: dict[str, str], sandbox_key: dict[str, Any]
) -> None:
    """gcloud absent is fine with GOOGLE_APPLICATION_CREDENTIALS; the project answers 403 PERMISSION_DENIED."""
    (tmp_path / "gcloud-config").mkdir()
    profile = _profile(
        tmp_path,
        f"""  project: ${{SANDBOX_GCP_DENIED_PROJECT}}
  key_file: null
  gcloud: {tmp_path}/no-gcloud/gcloud
  config_dir: {tmp_path}/gcloud-config
""",
    )
    run = suite(MODULE, profile=profile, env={"GOOGLE_APPLICATION_CREDENTIALS": sandbox_env["SANDBOX_GCP_KEY_FILE"]})
    credentials = run.check("GCP-001")
    assert credentials["outcome"] == "passed", credentials
    assert credentials["evidence"]["used"].endswith("(GOOGLE_APPLICATION_CREDENTIALS)")
    assert credentials["evidence"]["gcloud"] is None
    assert run.check("GCP-002")["evidence"]["origin"] == "GOOGLE_APPLICATION_CREDENTIALS"
    project = run.check("GCP-003")
    assert project["outcome"] == "failed"
    assert "actual:   HTTP 403 PERMISSION_DENIED The caller does not have permission" in project["message"]
    assert "hint:     PERMISSION_DENIED: these credentials have no role on the project" in project["message"]
    _no_key_material(run, sandbox_key)


def test_missing_key_and_no_credentials(suite: Any, tmp_path: Path, sandbox_key: dict[str, Any]) -> None:
    """No gcloud, no ADC, and a key_file that does not exist: GCP-001 and GCP-002 fail, GCP-003 is blocked."""
    (tmp_path / "gcloud-config").mkdir()
    profile = _profile(
        tmp_path,
        f"""  key_file: {tmp_path}/missing.json
  gcloud: {tmp_path}/no-gcloud/gcloud
  config_dir: {tmp_path}/gcloud-config
""",
    )
    run = suite(MODULE, profile=profile, env={"GOOGLE_APPLICATION_CREDENTIALS": ""})
    credentials = run.check("GCP-001")
    assert credentials["outcome"] == "failed"
    assert f"gcloud: {tmp_path}/no-gcloud/gcloud not on PATH" in credentials["message"]
    assert f"key: {tmp_path}/missing.json (gcp.key_file) does not exist" in credentials["message"]
    assert f"ADC: no {tmp_path}/gcloud-config/application_default_credentials.json" in credentials["message"]
    key = run.check("GCP-002")
    assert key["outcome"] == "failed"
    assert f"actual:   {tmp_path}/missing.json: service-account key does not exist" in key["message"]
    project = run.check("GCP-003")
    assert project["outcome"] == "error"
    assert project["blocked_by"] == "GCP-002"


def test_malformed_key_blocks_the_project_check(suite: Any, tmp_path: Path, sandbox_key: dict[str, Any]) -> None:
    key_file = _write_key(tmp_path / "key.json", sandbox_key, private_key=None)
    profile = _profile(tmp_path, f"  key_file: {key_file}\n")
    run = suite(MODULE, profile=profile)
    key = run.check("GCP-002")
    assert key["outcome"] == "failed"
    assert f"actual:   {key_file}: field 'private_key' is missing or empty" in key["message"]
    project = run.check("GCP-003")
    assert project["outcome"] == "error"
    assert project["blocked_by"] == "GCP-002"
    _no_key_material(run, sandbox_key)


def test_adc_credentials_and_a_project_being_deleted(suite: Any, tmp_path: Path, sandbox_key: dict[str, Any]) -> None:
    """Only gcloud's application default credentials (a service-account file there): the project is not ACTIVE."""
    config = tmp_path / "gcloud-config"
    config.mkdir()
    _write_key(config / "application_default_credentials.json", sandbox_key)
    profile = _profile(
        tmp_path,
        f"""  project: ${{SANDBOX_GCP_DELETED_PROJECT}}
  key_file: null
  gcloud: {tmp_path}/no-gcloud/gcloud
  config_dir: {config}
""",
    )
    run = suite(MODULE, profile=profile, env={"GOOGLE_APPLICATION_CREDENTIALS": ""})
    credentials = run.check("GCP-001")
    assert credentials["outcome"] == "passed"
    assert (
        credentials["evidence"]["used"]
        == f"application default credentials {config}/application_default_credentials.json"
    )
    assert run.check("GCP-002")["outcome"] == "skipped"
    project = run.check("GCP-003")
    assert project["outcome"] == "failed"
    assert "actual:   HTTP 200, project conformance-deleted is DELETE_REQUESTED" in project["message"]
    assert project["evidence"]["credentials"].startswith("application default credentials ")
    _no_key_material(run, sandbox_key)


def test_a_key_the_token_endpoint_does_not_know_cannot_evaluate(
    suite: Any, tmp_path: Path, sandbox_key: dict[str, Any]
) -> None:
    """A well-formed key signed by another RSA key (a deleted or rotated key): the grant is refused."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = _write_key(tmp_path / "rotated.json", sandbox_key, private_key=pem)
    run = suite(MODULE, "-k", "project", profile=_profile(tmp_path, f"  key_file: {key_file}\n"))
    project = run.check("GCP-003")
    assert project["outcome"] == "error"
    assert "the token endpoint refused the credentials" in project["message"]
    assert "invalid_grant: Invalid JWT Signature." in project["message"]
    assert pem.splitlines()[1] not in run.output


def test_a_key_from_a_project_with_the_api_disabled_is_not_a_role_problem(
    suite: Any, tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """The call is charged to the key's own project; SERVICE_DISABLED there is a warning, never a role hint."""
    (tmp_path / "gcloud-config").mkdir()
    profile = _profile(
        tmp_path,
        f"""  key_file: ${{SANDBOX_GCP_API_DISABLED_KEY_FILE}}
  gcloud: {tmp_path}/no-gcloud/gcloud
  config_dir: {tmp_path}/gcloud-config
""",
    )
    run = suite(MODULE, profile=profile, env={"GOOGLE_APPLICATION_CREDENTIALS": ""})
    project = run.check("GCP-003")
    assert project["outcome"] == "passed", project
    evidence = project["evidence"]
    assert evidence["reason"] == "SERVICE_DISABLED"
    assert evidence["consumer"] == "projects/210987654321"
    assert "cloudresourcemanager.googleapis.com is disabled in project 210987654321" in evidence["warning"]
    assert "gcloud services enable cloudresourcemanager.googleapis.com --project 210987654321" in evidence["warning"]
    assert "no role" not in evidence["warning"]
    assert "GCP-003: cloudresourcemanager.googleapis.com is disabled" in run.output  # the warning summary


# --------------------------------------------------------------------------- GCP-004: the key's expiry


def _key_profile(tmp_path: Path, key_variable: str) -> Path:
    (tmp_path / "gcloud-config").mkdir()
    return _profile(
        tmp_path,
        f"""  key_file: ${{{key_variable}}}
  gcloud: {tmp_path}/no-gcloud/gcloud
  config_dir: {tmp_path}/gcloud-config
""",
    )


def test_a_key_ending_within_the_horizon_fails_with_its_date(
    suite: Any, tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """IAM's validBeforeTime, 3 days away (an expiry policy): within the default 7-day horizon, a failure."""
    key = json.loads(Path(sandbox_env["SANDBOX_GCP_EXPIRING_KEY_FILE"]).read_text())
    run = suite(MODULE, profile=_key_profile(tmp_path, "SANDBOX_GCP_EXPIRING_KEY_FILE"))
    expiry = run.check("GCP-004")
    assert expiry["outcome"] == "failed", expiry
    account = key["client_email"]
    assert f"actual:   the service-account key of {account} expires on 20" in expiry["message"]
    assert re.search(r"expires on \d{4}-\d\d-\d\d \d\d:\d\d UTC, in 3\.0 days", expiry["message"])
    assert "hint:     make a new key for the service account" in expiry["message"]
    assert expiry["evidence"]["days_left"] == 3.0
    assert run.check("GCP-003")["outcome"] == "passed"  # the key works today
    _no_key_material(run, key)


def test_a_key_whose_record_cannot_be_read_passes_with_a_warning_never_a_failure(
    suite: Any, tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """No iam.serviceAccountKeys.get: IAM answers 403 IAM_PERMISSION_DENIED; the expiry is unknown, not wrong."""
    key = json.loads(Path(sandbox_env["SANDBOX_GCP_KEYS_DENIED_KEY_FILE"]).read_text())
    run = suite(MODULE, profile=_key_profile(tmp_path, "SANDBOX_GCP_KEYS_DENIED_KEY_FILE"))
    expiry = run.check("GCP-004")
    assert expiry["outcome"] == "passed", expiry
    assert expiry["evidence"]["warning"] == (
        f"the expiry of the service-account key of {key['client_email']} could not be read: IAM keys.get answered "
        "HTTP 403 PERMISSION_DENIED (IAM_PERMISSION_DENIED) Permission 'iam.serviceAccountKeys.get' denied on "
        "resource (or it may not exist).; to have it checked, grant the service account "
        "roles/iam.serviceAccountViewer on itself (iam.serviceAccountKeys.get)"
    )
    assert expiry["evidence"]["permission"] == "iam.serviceAccountKeys.get"
    assert "GCP-004: the expiry of the service-account key" in run.output  # the warning summary
    _no_key_material(run, key)


def test_a_disabled_key_fails(tmp_path: Path) -> None:
    """IAM's record says disabled (keys.disable): the check fails naming it (a real token endpoint refuses such a
    key soon after, so this is replayed from the transcript, not served by the sandbox)."""
    from conformance.checks import NonConformance
    from conformance.clients.gcp import ServiceAccountKey, parse_key_record
    from conformance.components.test_gcp import test_key_not_expiring
    from conformance.profile import Profile
    from conformance.sandbox import contracts
    from conformance.secrets import Secret

    transcript = contracts.get("gcp", "service-account-key-disabled")
    assert transcript.http is not None
    body = transcript.render(
        transcript.http.body, project="p", email="sa@p.iam.gserviceaccount.com", key_id="k",
        valid_after="2026-01-01T00:00:00Z", valid_before="9999-12-31T23:59:59Z",
    )  # fmt: skip
    record = parse_key_record(transcript.http.status, json.loads(body))
    key = ServiceAccountKey(tmp_path, "test", "p", "sa@p.iam.gserviceaccount.com", "https://t/token", Secret("{}", "t"))
    profile = Profile.model_validate({"platform": "gcp", "orchestrator": "runai", "gcp": {"project": "my-project"}})
    evidence: dict[str, Any] = {}
    with pytest.raises(NonConformance) as caught:
        test_key_not_expiring((key, record), profile, evidence)
    assert str(caught.value) == (
        "expected: the service-account key of sa@p.iam.gserviceaccount.com is enabled\n"
        "actual:   IAM says the key is disabled (HTTP 200, USER_MANAGED disabled, valid until no expiry)\n"
        "hint:     someone disabled the key, or Google did on finding it exposed: make a new key for the service "
        "account (IAM > Service accounts > Keys > Add key) and point gcp.key_file or GOOGLE_APPLICATION_CREDENTIALS "
        "at it before the old one ends"
    )
    assert evidence["disabled"] is True
