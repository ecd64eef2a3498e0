"""OBJ checks against the sandbox's S3 (moto, keys enforced) and GCS emulator.

Each check passes on the sandbox profile of its platform and fails (or errors) for its own fault:
a credentials file readable by others, a missing profile section, a wrong key id, a wrong secret,
a read-only key, a missing bucket, an account whose listing is empty, a malformed service-account key.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conformance import transport
from conformance.clients import object_storage as client
from conformance.profile import TLS, ObjectStorage, ProfileError, Timeouts
from conformance.session import open_profile
from tests.conftest import CA_VARIABLES, REPO, SuiteRun, run_suite, write_profile

OBJ_IDS = ("OBJ-001", "OBJ-002", "OBJ-003", "OBJ-004", "OBJ-005")

S3_PROFILE = """
platform: onprem
orchestrator: runai
timeouts: {{connect: 2, request: 5}}
tls: {{ca_bundle: "${{SANDBOX_CA_BUNDLE}}"}}
object_storage:
  kind: s3
  endpoint_url: ${{SANDBOX_S3_ENDPOINT_URL}}
  bucket: {bucket}
  prefix: conformance/tests
  credentials_file: {credentials}
  aws_profile: {section}
"""

GCS_PROFILE = """
platform: gcp
orchestrator: runai
timeouts: {{connect: 2, request: 5}}
object_storage:
  kind: gcs
  endpoint_url: ${{SANDBOX_GCS_ENDPOINT_URL}}
  bucket: {bucket}
  prefix: conformance/tests
  gcp_project: ${{SANDBOX_GCS_PROJECT}}
  credentials_file: {credentials}
  anonymous: {anonymous}
"""

# Ambient settings a workspace may carry; none of them may change which keys or trust the suite uses.
AMBIENT = {
    "AWS_ACCESS_KEY_ID": "AKIAAMBIENTAMBIENT00",
    "AWS_SECRET_ACCESS_KEY": "ambient-secret-that-must-not-be-used",
    "AWS_PROFILE": "no-such-ambient-profile",
    "AWS_DEFAULT_PROFILE": "no-such-ambient-profile",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_ENDPOINT_URL": "https://127.0.0.1:9/",
    **dict.fromkeys(CA_VARIABLES, "/nonexistent/ca.pem"),
}


def _run(directory: Path, profile_text: str, env: dict[str, str]) -> SuiteRun:
    profile = write_profile(directory, profile_text)
    return run_suite("-m", "object_storage", profile=profile, reports=directory / "reports", env=env)


def _s3_run(
    directory: Path,
    env: dict[str, str],
    *,
    section: str = "conformance",
    bucket: str = "${SANDBOX_S3_BUCKET}",
    credentials: str = "${SANDBOX_AWS_CREDENTIALS_FILE}",
    extra_env: dict[str, str] | None = None,
) -> SuiteRun:
    text = S3_PROFILE.format(bucket=bucket, credentials=credentials, section=section)
    return _run(directory, text, {**env, **(extra_env or {})})


def _gcs_run(
    directory: Path,
    env: dict[str, str],
    *,
    bucket: str = "${SANDBOX_GCS_BUCKET}",
    credentials: str = "${SANDBOX_GCS_CREDENTIALS_FILE}",
    anonymous: bool = True,
    extra_env: dict[str, str] | None = None,
) -> SuiteRun:
    text = GCS_PROFILE.format(bucket=bucket, credentials=credentials, anonymous=str(anonymous).lower())
    return _run(directory, text, {**env, **(extra_env or {})})


def _credentials_copy(directory: Path, env: dict[str, str], mode: int, text: str | None = None) -> Path:
    path = directory / "credentials"
    path.write_text(text if text is not None else Path(env["SANDBOX_AWS_CREDENTIALS_FILE"]).read_text())
    path.chmod(mode)
    return path


def assert_outcome(run: SuiteRun, check_id: str, outcome: str, *words: str) -> dict[str, Any]:
    record = run.check(check_id)
    assert record["outcome"] == outcome, f"{check_id}: {record['outcome']}: {record['message']}\n{run.output[-3000:]}"
    for word in words:
        assert word in record["message"], f"{check_id}: {word!r} not in {record['message']!r}"
    return record


# --------------------------------------------------------------------------- passing runs


@pytest.fixture(scope="module")
def s3_pass(tmp_path_factory: pytest.TempPathFactory, sandbox_env: dict[str, str]) -> SuiteRun:
    return _s3_run(tmp_path_factory.mktemp("obj-s3-pass"), sandbox_env, extra_env=AMBIENT)


@pytest.fixture(scope="module")
def gcs_pass(tmp_path_factory: pytest.TempPathFactory, sandbox_env: dict[str, str]) -> SuiteRun:
    return _gcs_run(tmp_path_factory.mktemp("obj-gcs-pass"), sandbox_env, extra_env=AMBIENT)


@pytest.mark.parametrize("check_id", OBJ_IDS)
def test_s3_checks_pass_despite_ambient_aws_variables(s3_pass: SuiteRun, check_id: str) -> None:
    assert_outcome(s3_pass, check_id, "passed")


def test_s3_evidence_names_the_file_credentials_and_the_probe(s3_pass: SuiteRun, sandbox_env: dict[str, str]) -> None:
    assert s3_pass.rc == 0, s3_pass.output[-3000:]
    listing = s3_pass.check("OBJ-002")["evidence"]
    assert listing["credential_source"].startswith("shared-credentials-file: [conformance] in ")
    assert listing["endpoint"] == sandbox_env["SANDBOX_S3_ENDPOINT_URL"]
    assert listing["bucket_count"] >= 1
    assert sandbox_env["SANDBOX_S3_BUCKET"] in listing["buckets"]
    assert s3_pass.check("OBJ-001")["evidence"]["mode"] == "600"
    written = s3_pass.check("OBJ-004")["evidence"]
    assert written["key"] == f"conformance/tests/conformance-{s3_pass.results['run_id']}"
    assert written["size"] > 4096
    assert written["sha256"] == written["read_sha256"]
    assert {"put_s", "get_s"} <= set(written)
    assert written["s3_checksums"] == client.S3Client.checksums  # named: an S3-compatible store may refuse others
    assert "AWS_REQUEST_CHECKSUM_CALCULATION=when_required" in written["s3_checksums_note"]
    deleted = s3_pass.check("OBJ-005")["evidence"]
    assert deleted["left_over"] is False
    assert "delete_s" in deleted


def test_s3_canary_secret_in_no_artifact(s3_pass: SuiteRun, sandbox_env: dict[str, str]) -> None:
    secret = sandbox_env["SANDBOX_S3_ADMIN_SECRET_ACCESS_KEY"]
    for name, text in s3_pass.artifact_texts().items():
        assert secret not in text, f"the S3 secret key leaked into {name}"
    assert secret not in s3_pass.output


@pytest.mark.parametrize("check_id", OBJ_IDS)
def test_gcs_checks_pass(gcs_pass: SuiteRun, check_id: str) -> None:
    assert_outcome(gcs_pass, check_id, "passed")


def test_gcs_evidence(gcs_pass: SuiteRun) -> None:
    assert gcs_pass.check("OBJ-001")["evidence"]["type"] == "service_account"
    assert gcs_pass.check("OBJ-002")["evidence"]["credential_source"].startswith("anonymous")
    assert gcs_pass.check("OBJ-005")["evidence"]["left_over"] is False
    key_text = Path(gcs_pass.check("OBJ-001")["evidence"]["credentials_file"]).read_text()
    private_key = json.loads(key_text)["private_key"].splitlines()[1]
    assert all(private_key not in text for text in gcs_pass.artifact_texts().values())


# --------------------------------------------------------------------------- S3 faults


def test_readonly_key_in_a_world_readable_file(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    credentials = _credentials_copy(tmp_path, sandbox_env, 0o644)
    run = _s3_run(tmp_path, sandbox_env, section="readonly", credentials=str(credentials))
    assert_outcome(run, "OBJ-001", "failed", "mode 644", "readable by its owner only (mode 600)", "chmod 600")
    assert_outcome(run, "OBJ-002", "passed")
    assert_outcome(run, "OBJ-003", "passed")
    assert_outcome(run, "OBJ-004", "failed", "AccessDenied", "HTTP 403", "no write permission", "[readonly]")
    record = assert_outcome(run, "OBJ-005", "error", "blocked by OBJ-004")
    assert record["blocked_by"] == "OBJ-004"


def test_missing_section_is_named(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    run = _s3_run(tmp_path, sandbox_env, section="nosuch")
    assert_outcome(run, "OBJ-001", "failed", "has no section [nosuch]", "[conformance], [readonly]")
    for check_id in OBJ_IDS[1:]:  # one failure for one cause: the rest are blocked by it (conformance/graph.py)
        assert_outcome(run, check_id, "error", "blocked by OBJ-001", "no section [nosuch]")
        assert run.check(check_id)["blocked_by"] == "OBJ-001"


@pytest.mark.parametrize(
    ("section", "code", "meaning"),
    [
        ("wrong-id", "InvalidAccessKeyId", "the access key id is wrong"),
        ("wrong-secret", "SignatureDoesNotMatch", "the secret access key is wrong"),
    ],
)
def test_wrong_keys_are_named(
    tmp_path: Path, sandbox_env: dict[str, str], section: str, code: str, meaning: str
) -> None:
    key_id = "AKIANOSUCHKEYNOSUCH0" if section == "wrong-id" else sandbox_env["SANDBOX_S3_ADMIN_ACCESS_KEY_ID"]
    text = f"[{section}]\naws_access_key_id = {key_id}\naws_secret_access_key = {'w' * 40}\n"
    credentials = _credentials_copy(tmp_path, sandbox_env, 0o600, text)
    run = _s3_run(tmp_path, sandbox_env, section=section, credentials=str(credentials))
    assert_outcome(run, "OBJ-001", "passed")
    assert_outcome(run, "OBJ-002", "error", "refused the credentials", code, meaning, f"[{section}]")
    for check_id in OBJ_IDS[2:]:  # the same refusal once, not four times
        assert_outcome(run, check_id, "error", "blocked by OBJ-002", code)
        assert run.check(check_id)["blocked_by"] == "OBJ-002"


def test_missing_bucket_is_named(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    run = _s3_run(tmp_path, sandbox_env, bucket="conformance-no-such-bucket")
    assert_outcome(run, "OBJ-002", "passed")
    assert_outcome(run, "OBJ-003", "failed", "NoSuchBucket", "conformance-no-such-bucket", "does not exist")
    for check_id in ("OBJ-004", "OBJ-005"):
        assert run.check(check_id)["blocked_by"] == "OBJ-003"
        assert_outcome(run, check_id, "error", "blocked by OBJ-003", "NoSuchBucket")


def test_hidden_bucket_is_usable_and_an_empty_listing_fails(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    # [unlisted] belongs to an account that owns no bucket: ListBuckets is empty, the bucket still works.
    run = _s3_run(tmp_path, sandbox_env, section="unlisted")
    assert_outcome(run, "OBJ-002", "failed", "shows at least one bucket", "the listing is empty")
    usable = assert_outcome(run, "OBJ-003", "passed")
    assert usable["evidence"]["in_bucket_listing"] is False
    assert "ECS may hide buckets" in usable["evidence"]["note"]
    assert_outcome(run, "OBJ-004", "passed")
    assert_outcome(run, "OBJ-005", "passed")


# --------------------------------------------------------------------------- GCS faults


def test_gcs_malformed_key_from_environment(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    bad = tmp_path / "sa-key.json"
    bad.write_text('{"type": "service_account", "project_id": ')
    from_env = {"GOOGLE_APPLICATION_CREDENTIALS": str(bad)}
    run = _gcs_run(tmp_path, sandbox_env, credentials="null", anonymous=False, extra_env=from_env)
    first = assert_outcome(run, "OBJ-001", "failed", f"{bad} is not JSON (line 1")
    assert first["evidence"]["chosen_by"] == "GOOGLE_APPLICATION_CREDENTIALS"
    for check_id in OBJ_IDS[1:]:
        assert_outcome(run, check_id, "error", "blocked by OBJ-001", f"{bad} is not JSON")


def test_gcs_missing_bucket_is_named(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    run = _gcs_run(tmp_path, sandbox_env, bucket="conformance-no-such-gcs-bucket")
    assert_outcome(run, "OBJ-003", "failed", "NotFound", "HTTP 404", "conformance-no-such-gcs-bucket")
    assert_outcome(run, "OBJ-004", "error", "blocked by OBJ-003")


# --------------------------------------------------------------------------- units


def test_sandbox_exports_and_files(sandbox_env: dict[str, str]) -> None:
    for name in ("SANDBOX_S3_ENDPOINT_URL", "SANDBOX_S3_ADMIN_ACCESS_KEY_ID", "SANDBOX_S3_ADMIN_SECRET_ACCESS_KEY"):
        assert sandbox_env[name]
    credentials = Path(sandbox_env["SANDBOX_AWS_CREDENTIALS_FILE"])
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert credentials.parent.parent == Path(sandbox_env["SANDBOX_HOME"])
    trust = ssl.create_default_context(cafile=sandbox_env["SANDBOX_CA_BUNDLE"])
    # Unsigned requests get 403 AccessDenied, as from S3/ECS (moto alone answers 500).
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(sandbox_env["SANDBOX_S3_ENDPOINT_URL"] + "/", timeout=5, context=trust)  # noqa: S310 - loopback
    assert answer.value.code == 403
    assert b"AccessDenied" in answer.value.read()


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("{kind: s3, bucket: b-1}", "object_storage: endpoint_url: required for kind s3"),
        ("{kind: gcs, bucket: b-1, aws_profile: x}", "object_storage: aws_profile: only for kind s3"),
        ("{kind: s3, bucket: b-1, endpoint_url: 'https://e', anonymous: true}", "anonymous: only for a GCS emulator"),
        ("{kind: gcs, bucket: b-1, anonymous: true}", "anonymous: only for a GCS emulator"),
        ("{kind: gcs, bucket: 'gs://b'}", "object_storage.bucket: string should match pattern"),
    ],
)
def test_profile_rejects(tmp_path: Path, section: str, line: str) -> None:
    path = write_profile(tmp_path, f"platform: onprem\norchestrator: runai\nobject_storage: {section}\n")
    with pytest.raises(ProfileError) as error:
        open_profile(path, environ={})
    assert any(line in problem for problem in error.value.lines), error.value.lines


def test_profile_paths_and_endpoints(tmp_path: Path) -> None:
    storage = ObjectStorage.model_validate(
        {"kind": "gcs", "bucket": "b-1", "prefix": "/a/b/", "credentials_file": "key.json"},
        context={"base_dir": tmp_path},
    )
    assert storage.prefix == "a/b"
    assert storage.credentials_file == str(tmp_path / "key.json")
    (endpoint,) = storage.endpoints()
    assert endpoint.url == "https://storage.googleapis.com/"
    assert not endpoint.private
    assert client.object_key(storage, "x") == "a/b/x"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[conformance\n", "is not an INI file"),
        ("[other]\naws_access_key_id = a\n", "has no section [default] (sections: [other])"),
        ("[default]\naws_access_key_id = a\n", "section [default] lacks aws_secret_access_key"),
        ("[default]\naws_access_key_id = a\naws_secret_access_key = b\n", None),
    ],
)
def test_aws_credentials_facts(tmp_path: Path, content: str, problem: str | None) -> None:
    path = tmp_path / "credentials"
    path.write_text(content)
    storage = ObjectStorage(kind="s3", bucket="b-1", endpoint_url="https://e", credentials_file=str(path))
    facts = client.credential_facts(storage)
    if problem is None:
        assert facts.problem is None
    else:
        assert problem in str(facts.problem)
        assert str(path) in str(facts.problem)
    assert facts.owner_only_expected


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[]", "is not a JSON object"),
        ('{"type": "authorized_user"}', "is not a service-account key (type is 'authorized_user'"),
        ('{"type": "service_account", "project_id": "p"}', "lacks client_email, private_key"),
        ('{"type": "service_account", "project_id": "p", "client_email": "e", "private_key": "k"}', "not a PEM"),
    ],
)
def test_service_account_key_parsing(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)
    info, found = client.parse_key_file(path, service_account=True)
    assert info is None
    assert problem in str(found)
    assert str(path) in str(found)


def test_missing_gcs_key_and_no_adc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    facts = client.credential_facts(ObjectStorage(kind="gcs", bucket="b-1"))
    assert not facts.exists
    assert "GOOGLE_APPLICATION_CREDENTIALS are unset" in str(facts.problem)


def test_tls_verify_ignores_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CA_VARIABLES:
        monkeypatch.setenv(name, "/nonexistent/ca.pem")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    assert transport.verify(TLS(ca_bundle=bundle)) == str(bundle)
    assert transport.verify(TLS(insecure=True)) is False
    assert transport.verify(TLS()) != "/nonexistent/ca.pem"


def test_storage_error_summary() -> None:
    error = client.StorageError("PutObject s3://b/k", "AccessDenied", 403, "Access   Denied\n more")
    assert str(error) == "PutObject s3://b/k: AccessDenied (HTTP 403): Access Denied more"
    assert str(client.StorageError("ListBuckets", "ConnectTimeoutError")) == "ListBuckets: ConnectTimeoutError"


def test_collection_does_not_import_the_sdks() -> None:
    import subprocess
    import sys

    code = (
        "import sys, conformance.components.test_object_storage as m;"
        "print(any(n.split('.')[0] in ('boto3', 'botocore') or n.startswith('google.cloud') for n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _Sent(Exception):
    """Raised by the send hook: the request was built and signed, and goes no further."""


def _captured_put_headers(s3: Any) -> dict[str, str]:
    """The headers of one PutObject as botocore would send them (stopped before the network)."""
    seen: dict[str, str] = {}

    def stop(request: Any, **kwargs: Any) -> None:
        seen.update({k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()})
        raise _Sent

    s3.meta.events.register("before-send.s3.PutObject", stop)
    with pytest.raises(_Sent):
        s3.put_object(Bucket="b-1", Key="conformance/x", Body=b"probe")
    return seen


def _checksum_headers(sent: dict[str, str]) -> dict[str, str]:
    """What botocore's flexible checksums add to an upload: the algorithm, a trailer, aws-chunked encoding."""
    names = ("x-amz-sdk-checksum-algorithm", "x-amz-trailer", "x-amz-decoded-content-length")
    return {
        h: v
        for h, v in sent.items()
        if h.startswith("x-amz-checksum-") or h in names or (h == "content-encoding" and "aws-chunked" in v)
    }


def test_s3_uploads_carry_no_crc32_checksum_that_ecs_refuses(tmp_path: Path) -> None:
    """botocore 1.36+ adds x-amz-checksum-crc32 to every upload (boto/botocore#3352); the suite does not."""
    import boto3  # type: ignore[import-untyped] # no stubs for boto3

    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = example-secret\n")
    credentials.chmod(0o600)
    storage = ObjectStorage(
        kind="s3", bucket="b-1", endpoint_url="https://ecs.example", credentials_file=str(credentials)
    )
    store = client.S3Client(storage, Timeouts(connect=1, request=1), TLS())
    assert _checksum_headers(_captured_put_headers(store._s3)) == {}
    assert store.checksums == "request_checksum_calculation=when_required, response_checksum_validation=when_required"
    # The control: the same SDK with its own defaults sends the CRC32 header such stores refuse.
    plain = boto3.client(
        "s3",
        endpoint_url="https://ecs.example",
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="example-secret",  # noqa: S106 - a made-up key; the request never leaves
    )
    sent = _checksum_headers(_captured_put_headers(plain))
    assert sent["x-amz-sdk-checksum-algorithm"] == "CRC32"
    assert sent["x-amz-trailer"] == "x-amz-checksum-crc32"  # a trailer in an aws-chunked body
    assert sent["content-encoding"] == "aws-chunked"
