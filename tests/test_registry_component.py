"""REG checks against the sandbox registry (real Distribution + simulated token realm), and the client's parsers."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from conformance import locate
from conformance.clients import registry as client
from conformance.profile import Profile
from tests.conftest import SuiteRun
from tests.test_cleanup import run_cleanup

PROJECT = "mlops/kapitan-hull-sandbox"


def b64(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def write_profile(
    directory: Path,
    prefix: str,
    credentials: str,
    *,
    project: str = PROJECT,
    platform: str = "onprem",
    host: str | None = None,
) -> Path:
    where = host or f"${{{prefix}_HOST}}"
    url = f"https://{host}" if host else f"${{{prefix}_URL}}"
    path = directory / f"{prefix.lower()}-{abs(hash(credentials)) % 10_000}.yaml"
    path.write_text(
        f"platform: {platform}\norchestrator: runai\ntimeouts: {{connect: 2, request: 5, check: 60}}\n"
        "tls: {ca_bundle: '${SANDBOX_CA_BUNDLE}'}\n"
        f"registry:\n  url: '{url}'\n  project_path: '{where}/{project}'\n{credentials}"
    )
    return path


def outcomes(run: SuiteRun) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in run.results["checks"] if c["id"].startswith("REG")}


def assert_no_leak(run: SuiteRun, *needles: str) -> None:
    texts = {"output": run.output, **run.artifact_texts()}
    for needle in needles:
        for name, text in texts.items():
            assert needle not in text, f"a credential appears in {name}"


# --------------------------------------------------------------------------- suite runs against the sandbox


@pytest.mark.parametrize(("profile", "scheme"), [("sandbox", "basic"), ("sandbox-gcp", "bearer")])
def test_sandbox_profiles_push_and_pull(suite: Any, sandbox_env: dict[str, str], profile: str, scheme: str) -> None:
    run = suite("-m", "registry", profile=profile)
    assert outcomes(run) == {
        "REG-001": "passed",
        "REG-002": "passed",
        "REG-003": "passed",
        "REG-004": "passed",
        "REG-005": "skipped",
        "REG-006": "skipped",
    }, run.output
    assert run.check("REG-005")["message"] == "not applicable: no Docker daemon reachable (workspaces have none)"
    assert "not applicable" in run.check("REG-006")["message"]
    auth = run.check("REG-002")["evidence"]
    assert auth["scheme"] == scheme
    assert auth["api_version"] == "registry/2.0"
    push = run.check("REG-003")["evidence"]
    assert push["manifest_digest"].startswith("sha256:")
    assert push["image_size_bytes"] > 0
    assert f"/{PROJECT}/conformance:{run.results['run_id']}" in push["reference"]
    assert "PUT manifest" in push["timings"]
    pulled = run.check("REG-004")["evidence"]
    assert pulled["cleanup"] == "manifest deleted by digest"
    user, password = sandbox_env["SANDBOX_REGISTRY_USER"], sandbox_env["SANDBOX_REGISTRY_PASSWORD"]
    boss, boss_password = (
        sandbox_env["SANDBOX_REGISTRY_MAINTAINER_USER"],
        sandbox_env["SANDBOX_REGISTRY_MAINTAINER_PASSWORD"],
    )
    assert_no_leak(run, password, b64(user, password), boss_password, b64(boss, boss_password))


def test_wrong_password_is_401_and_blocks_the_push(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    canary = "canary-Wrong-Passw0rd-for-REG"
    user = sandbox_env["SANDBOX_REGISTRY_USER"]
    path = write_profile(tmp_path, "SANDBOX_REGISTRY_TOKEN", f"  username: {user}\n  password: env:REG_TEST_PW\n")
    run = suite("-m", "registry", profile=path, env={"REG_TEST_PW": canary})
    assert run.check("REG-001")["outcome"] == "passed"
    failed = run.check("REG-002")
    assert failed["outcome"] == "failed"
    assert "HTTP 401" in failed["message"]
    assert "token realm" in failed["message"]
    assert "refused the credentials" in failed["message"]
    for blocked in ("REG-003", "REG-004"):
        assert run.check(blocked)["outcome"] == "error"
        assert run.check(blocked)["blocked_by"] == "REG-002"
    assert_no_leak(run, canary, b64(user, canary))


# The two generations of token authentication: Harbor 2.x's v2auth (a 401 that names the action, and a
# Basic challenge once credentials were sent) and Distribution's token controller (Harbor 1.x:
# insufficient_scope); what each says when the role is missing.
GENERATIONS = {
    "SANDBOX_REGISTRY_TOKEN": (
        "HTTP 401 UNAUTHORIZED: unauthorized to access repository: {repository}, action: {action}"
    ),
    "SANDBOX_REGISTRY_DISTRIBUTION": "HTTP 401 UNAUTHORIZED: authentication required",
}


@pytest.mark.parametrize("front", sorted(GENERATIONS))
def test_guest_role_is_a_missing_role_not_a_wrong_password(
    suite: Any, tmp_path: Path, sandbox_env: dict[str, str], front: str
) -> None:
    path = write_profile(
        tmp_path,
        front,
        "  username: ${SANDBOX_REGISTRY_GUEST_USER}\n  password: env:SANDBOX_REGISTRY_GUEST_PASSWORD\n",
    )
    run = suite("-m", "registry", profile=path)
    assert run.check("REG-002")["outcome"] == "passed"
    failed = run.check("REG-003")
    assert failed["outcome"] == "failed"
    assert "push of a 1-layer image to" in failed["message"]
    said = GENERATIONS[front].format(repository=f"{PROJECT}/conformance", action="push")
    assert said in failed["message"]
    assert "the login worked, but your user is not a member of project 'mlops' with role Developer" in failed["message"]
    assert "only after their first web UI login" in failed["message"]
    assert "password" not in failed["message"]
    assert run.check("REG-004")["blocked_by"] == "REG-003"
    password = sandbox_env["SANDBOX_REGISTRY_GUEST_PASSWORD"]
    assert_no_leak(run, password, b64(sandbox_env["SANDBOX_REGISTRY_GUEST_USER"], password))


def test_unknown_project_is_name_unknown(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    path = write_profile(
        tmp_path, "SANDBOX_REGISTRY_TOKEN", "  docker_config: ${SANDBOX_DOCKER_CONFIG}\n", project="nosuchproject/app"
    )
    run = suite("-m", "registry", "-k", "push_accepted or authentication", profile=path)
    assert run.check("REG-002")["outcome"] == "passed"
    failed = run.check("REG-003")
    assert failed["outcome"] == "failed"
    assert "HTTP 401 UNAUTHORIZED: project nosuchproject not found" in failed["message"]
    assert "project 'nosuchproject' does not exist" in failed["message"]


def test_malformed_files_fail_reg001_in_one_line(suite: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"auths": {"x": {"auth": "abc"}},}')
    robot = tmp_path / "robot.json"
    robot.write_text(json.dumps({"name": "harbor-robot", "secret": "s3cret-value-x"}))
    path = write_profile(tmp_path, "SANDBOX_REGISTRY", f"  docker_config: {config}\n  robot_creds_json: {robot}\n")
    run = suite("-m", "registry", profile=path)
    failed = run.check("REG-001")
    assert failed["outcome"] == "failed"
    assert f"{config}: docker config is not valid JSON (line 1" in failed["message"]
    assert f"{robot}: robot account name 'harbor-robot' does not start with 'robot$'" in failed["message"]
    assert run.check("REG-002")["blocked_by"] == "REG-001"
    assert run.check("REG-003")["blocked_by"] == "REG-001"
    assert "Traceback" not in run.output


def test_robot_account_and_a_registry_that_forbids_deletion(suite: Any, tmp_path: Path) -> None:
    path = write_profile(
        tmp_path, "SANDBOX_FAULT_REGISTRY_NODELETE", "  robot_creds_json: ${SANDBOX_REGISTRY_ROBOT_JSON}\n"
    )
    run = suite("-m", "registry", profile=path)
    assert outcomes(run)["REG-004"] == "passed", run.output
    assert run.check("REG-001")["evidence"]["username"] == "robot$mlops+conformance"
    assert run.check("REG-001")["evidence"]["credential_source"].startswith("robot account ")
    evidence = run.check("REG-004")["evidence"]
    assert evidence["cleanup"].startswith("NOT deleted: the registry forbids deletion (405 / UNSUPPORTED)")
    assert evidence["cleanup_timings"]["DELETE manifest"].startswith("405")


@pytest.mark.parametrize("front", sorted(GENERATIONS))
def test_a_developer_pushes_but_cannot_delete_and_is_told_who_can(
    suite: Any, tmp_path: Path, sandbox_env: dict[str, str], front: str
) -> None:
    """Harbor's Developer role has push but no delete: never reported as a clean teardown; cleanup says why."""
    path = write_profile(
        tmp_path,
        front,
        "  username: ${SANDBOX_REGISTRY_USER}\n  password: env:SANDBOX_REGISTRY_PASSWORD\n",
    )
    run = suite("-m", "registry", profile=path)
    assert outcomes(run)["REG-003"] == "passed", run.output
    assert outcomes(run)["REG-004"] == "passed", run.output
    evidence = run.check("REG-004")["evidence"]
    repository = f"{PROJECT}/conformance"
    said = GENERATIONS[front].format(repository=repository, action="delete")
    assert evidence["cleanup"].startswith(f"NOT deleted: your role may not delete it ({said})"), evidence
    assert "only a project Maintainer or ProjectAdmin" in evidence["cleanup"]
    assert evidence["left_behind"].endswith(f"/{repository}@{run.check('REG-003')['evidence']['manifest_digest']}")
    assert "was left in the registry" in run.output  # the warning, in the terminal summary
    if front != "SANDBOX_REGISTRY_TOKEN":
        return
    # `cleanup` as the same Developer: says who may delete, and exits 1 because the probe is still there.
    code, output = run_cleanup(sandbox_env, "--older-than", "0s", profile=path)
    assert code == 1, output
    assert "could not delete" in output, output
    assert "(your role may not delete" in output, output
    assert f"{sandbox_env['SANDBOX_REGISTRY_USER']} may not delete in mlops" in output, output
    assert "Maintainer or ProjectAdmin" in output, output
    # A Maintainer sweeps it.
    boss = write_profile(
        tmp_path,
        "SANDBOX_REGISTRY_TOKEN",
        "  username: ${SANDBOX_REGISTRY_MAINTAINER_USER}\n  password: env:SANDBOX_REGISTRY_MAINTAINER_PASSWORD\n",
    )
    code, output = run_cleanup(sandbox_env, "--older-than", "0s", profile=boss)
    assert code == 0, output
    assert f":{run.results['run_id']}" in output, output


def test_altered_bytes_fail_reg004(suite: Any, tmp_path: Path) -> None:
    path = write_profile(tmp_path, "SANDBOX_FAULT_REGISTRY_CORRUPT", "  docker_config: ${SANDBOX_DOCKER_CONFIG}\n")
    run = suite("-m", "registry", profile=path)
    assert run.check("REG-003")["outcome"] == "passed"
    failed = run.check("REG-004")
    assert failed["outcome"] == "failed"
    assert "returns the manifest and blobs byte for byte" in failed["message"]
    assert "different bytes: blob sha256:" in failed["message"]


AR_HOST = "asia-southeast1-docker.pkg.dev"


def fake_gcloud_helper(directory: Path, secret: str) -> str:
    """A docker-credential-gcloud on a PATH of its own, answering like the real one."""
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-gcloud"
    answer = json.dumps({"ServerURL": AR_HOST, "Username": "_dcgcloud_token", "Secret": secret})
    helper.write_text(f"#!/bin/sh\ncat >/dev/null\necho '{answer}'\n")
    helper.chmod(stat.S_IRWXU)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def test_artifact_registry_cred_helper_configured(suite: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {AR_HOST: "gcloud"}}))
    path = write_profile(tmp_path, "AR", f"  docker_config: {config}\n", platform="gcp", host=AR_HOST)
    token = "ya29.canary-access-token-value"  # noqa: S105 - a canary, looked for in every artifact
    run = suite(
        "-m",
        "registry",
        "-k",
        "credentials_found or artifact_registry_helper",
        profile=path,
        env={"PATH": fake_gcloud_helper(tmp_path, token)},
    )
    assert run.check("REG-006")["outcome"] == "passed", run.output
    found = run.check("REG-001")
    assert found["outcome"] == "passed"
    assert found["evidence"]["credential_source"].endswith("(credHelpers: gcloud)")
    assert found["evidence"]["username"] == "_dcgcloud_token"
    assert_no_leak(run, token)


def test_artifact_registry_without_cred_helper_fails_reg006(suite: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {AR_HOST: {"auth": b64("oauth2accesstoken", "stale-token-xyz")}}}))
    path = write_profile(tmp_path, "AR", f"  docker_config: {config}\n", platform="gcp", host=AR_HOST)
    run = suite("-m", "registry", profile=path)
    assert run.check("REG-001")["outcome"] == "passed"
    failed = run.check("REG-006")
    assert failed["outcome"] == "failed"
    assert f'credHelpers["{AR_HOST}"] is "gcloud"' in failed["message"]
    assert f"helper for {AR_HOST}: none" in failed["message"]
    assert f"gcloud auth configure-docker {AR_HOST} was not run" in failed["message"]
    # No network here: the registry checks are blocked by NET, not timed out one by one.
    assert run.check("REG-002")["outcome"] == "error"
    assert str(run.check("REG-002")["blocked_by"]).startswith("NET-")


# --------------------------------------------------------------------------- the client's parts, directly


def test_parse_challenge_bearer_and_basic() -> None:
    header = 'Bearer realm="https://h/service/token",service="harbor-registry",scope="repository:p/r:pull,push"'
    assert client.parse_challenge(header) == (
        "bearer",
        {"realm": "https://h/service/token", "service": "harbor-registry", "scope": "repository:p/r:pull,push"},
    )
    assert client.parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})
    assert client.parse_challenge("") is None


def test_decode_basic_pair() -> None:
    assert locate.basic_pair(b64("robot$p+ci", "a:b")) == ("robot$p+ci", "a:b")
    for bad in ("not base64!", base64.b64encode(b"nocolon").decode(), 42, b64("", "x")):
        assert locate.basic_pair(bad) is None


def found_for(host: str = "reg.example:5000") -> client.Credentials:
    return client.Credentials(host)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "not valid JSON"),
        ("[1]", "must be a JSON object, not list"),
        ('{"auths": {"reg.example:5000": {"auth": "%%%"}}}', "auths['reg.example:5000'].auth is not base64"),
        ('{"auths": []}', "'auths' must be an object"),
        ('{"auths": {"other.example": {"auth": "' + b64("u", "p") + '"}}}', "has no credentials for reg.example:5000"),
        ('{"credHelpers": {"reg.example:5000": "nosuchhelper"}}', "docker-credential-nosuchhelper is not on PATH"),
    ],
)
def test_docker_config_problems_are_one_line_naming_the_file(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(client.CredentialError) as info:
        client.read_docker_config(path, "reg.example:5000", 2, found_for())
    assert str(info.value).startswith(str(path))
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_docker_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(client.CredentialError, match="docker config does not exist"):
        client.read_docker_config(tmp_path / "absent.json", "h", 2, found_for())


def test_docker_config_auths_entry(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"https://reg.example:5000": {"auth": b64("alice", "pw-123456")}}}))
    credential = client.read_docker_config(path, "reg.example:5000", 2, found_for())
    assert credential.username == "alice"
    assert credential.password.reveal() == "pw-123456"
    assert "pw-123456" not in repr(credential)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"name": "robot$p+ci", "secret": "tok", "expires_at": 1_000_000}, "expired on 1970-01-12"),
        ({"name": "ci", "secret": "tok"}, "does not start with 'robot$'"),
        ({"id": 3}, "not a Harbor robot-account JSON"),
        ({"auths": {"other": {"auth": b64("robot$x", "y")}}}, "has no auths['reg.example:5000'].auth"),
    ],
)
def test_robot_account_problems(tmp_path: Path, data: dict[str, Any], words: str) -> None:
    path = tmp_path / "robot.json"
    path.write_text(json.dumps(data))
    with pytest.raises(client.CredentialError) as info:
        client.read_robot_account(path, "reg.example:5000")
    assert words in str(info.value)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize(
    "data",
    [
        {"name": "robot$p+ci", "secret": "tok-123456", "expires_at": -1},
        {"auths": {"reg.example:5000": {"auth": b64("robot$p+ci", "tok-123456")}}},
    ],
)
def test_robot_account_shapes(tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "robot.json"
    path.write_text(json.dumps(data))
    credential = client.read_robot_account(path, "reg.example:5000")
    assert (credential.username, credential.password.reveal()) == ("robot$p+ci", "tok-123456")


def test_generated_image_is_consistent() -> None:
    image = client.build_image("20260101-abc")
    manifest = json.loads(image.manifest)
    assert manifest["mediaType"] == client.OCI_MANIFEST
    assert manifest["config"]["digest"] in image.blobs
    assert manifest["layers"][0]["digest"] in image.blobs
    assert image.size == len(image.layer) + len(image.config) + len(image.manifest)
    assert client.build_image("20260101-abc").digest != image.digest  # a nonce: parallel workers never collide


def test_trust_ignores_ca_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry client takes its trust from transport: the profile's bundle, else the system store."""
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, "/nonexistent/bundle.pem")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    profile = Profile.model_validate(
        {"platform": "onprem", "orchestrator": "runai", "tls": {"ca_bundle": str(bundle)},
         "registry": {"url": "https://r.example", "project_path": "r.example/p/q"}}
    )  # fmt: skip
    assert profile.registry is not None
    made = client.RegistryClient(profile.registry, profile, "run", client.Credentials("r.example"))
    settings = made.http.merge_environment_settings("https://r.example/v2/", {}, False, True, None)
    assert settings["verify"] == str(bundle)
    assert made.http.trust_env is False  # requests would otherwise read REQUESTS_CA_BUNDLE and ~/.netrc


def test_artifact_registry_hosts() -> None:
    assert client.is_artifact_registry("asia-southeast1-docker.pkg.dev")
    assert not client.is_artifact_registry("registry.aisingapore.net")
    assert not client.is_artifact_registry("localhost:5000")


class FakeImages:
    def __init__(self, stream: list[dict[str, Any]]) -> None:
        self.stream = stream
        self.removed: list[str] = []

    def load(self, data: bytes) -> None:
        assert data

    def push(self, repository: str, **kwargs: Any) -> list[dict[str, Any]]:
        assert kwargs["auth_config"]["username"] == "alice"
        return self.stream

    def remove(self, reference: str, force: bool) -> None:
        self.removed.append(reference)


class FakeDaemon:
    def __init__(self, stream: list[dict[str, Any]]) -> None:
        self.images = FakeImages(stream)


def test_push_with_daemon_reads_the_stream() -> None:
    from conformance.profile import Profile
    from conformance.secrets import Secret

    profile = Profile.model_validate(
        {
            "platform": "onprem",
            "orchestrator": "runai",
            "registry": {"url": "https://r.example", "project_path": "r.example/p/q"},
        }
    )
    assert profile.registry is not None
    found = client.Credentials("r.example", client.Credential("alice", Secret("pw-123456", "test"), "test"))
    registry = client.RegistryClient(profile.registry, profile, "run1", found)
    image = client.build_image("run1")
    denied = FakeDaemon([{"status": "Preparing"}, {"error": "denied: requested access to the resource is denied"}])
    assert client.push_with_daemon(denied, registry, image) == (
        None,
        "denied: requested access to the resource is denied",
    )
    assert denied.images.removed == ["r.example/p/q/conformance:run1-daemon"]
    ok = FakeDaemon([{"status": "Pushed"}, {"aux": {"Tag": "run1-daemon", "Digest": "sha256:abc", "Size": 1}}])
    assert client.push_with_daemon(ok, registry, image) == ("sha256:abc", "")


def test_profile_validates_project_path_and_expands_paths(tmp_path: Path) -> None:
    from conformance.profile import Registry

    section = Registry.model_validate(
        {
            "url": "https://r.example",
            "project_path": "r.example:443/p/q",
            "docker_config": "~/.docker/config.json",
            "robot_creds_json": "robot.json",
        },
        context={"base_dir": tmp_path},
    )
    assert section.docker_config == os.path.expanduser("~/.docker/config.json")
    assert section.robot_creds_json == str(tmp_path / "robot.json")
    assert (section.host, section.repository) == ("r.example:443", "p/q")
    for bad in ("https://r.example/p", "r.example/p/", "r.example", "r.example/P/q", "r.example/p:tag"):
        with pytest.raises(ValueError, match="is not host"):
            Registry.model_validate({"url": "https://r.example", "project_path": bad})


def test_a_robot_account_ending_within_the_horizon_fails_reg001_with_the_date(
    suite: Any, tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """Harbor robot accounts end on a date: a nightly run says so days before, without blocking what still works."""
    robot = json.loads(Path(sandbox_env["SANDBOX_REGISTRY_ROBOT_JSON"]).read_text())
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    copy = tmp_path / "robot.json"
    copy.write_text(json.dumps({**robot, "expires_at": int(ends.timestamp())}))
    copy.chmod(0o600)
    path = write_profile(tmp_path, "SANDBOX_FAULT_REGISTRY_NODELETE", f"  robot_creds_json: {copy}\n")
    run = suite("-m", "registry and not writes", profile=path)
    failed = run.check("REG-001")
    assert failed["outcome"] == "failed"
    assert f"robot account robot$mlops+conformance expires on {ends:%Y-%m-%d}" in failed["message"]
    assert run.check("REG-002")["outcome"] == "passed"  # it still works today: nothing is blocked
    path.write_text(path.read_text() + "expiry_horizon_days: 1\n")
    run = suite("-m", "registry and not writes", profile=path)
    assert run.check("REG-001")["outcome"] == "passed"
    assert run.check("REG-001")["evidence"]["warning"].startswith("robot account robot$mlops+conformance expires on")
