"""GIT checks against the sandbox's GitLab: each passes there and fails (or is blocked) for its own fault.

Faults are profiles in tmp_path: another token of the simulated API (wrong, expired, expiring,
read-only, git-only, Reporter), another project (unknown, misconfigured CI), and ssh configs made
from the sandbox's own files (no Port, a key others can read, an empty known_hosts, a line ssh cannot
parse, a key GitLab does not know). Several independent faults share one run.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.clients import gitlab as client
from conformance.sandbox import gitlab_api
from conformance.sandbox.gitlab import TOKEN_KINDS
from tests.conftest import SuiteRun, ssh_config

WRONG_TOKEN = "glpat-WrongCanary0123456789"  # noqa: S105 - a canary the server must refuse, no credential
URL_PASSWORD = "UrlCanaryPassw0rd"  # noqa: S105 - a canary that must never be shown
FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
ALL_IDS = ["GIT-001", "GIT-002", "GIT-003", "GIT-004", "GIT-005", "GIT-006", "GIT-007", "GIT-008", "GIT-009",
           "GIT-010", "GIT-011", "GIT-012", "GIT-013", "GIT-014", "GIT-015"]  # fmt: skip


def _checkout(directory: Path, origin: str) -> str:
    subprocess.run(["git", "init", "-q", str(directory)], check=True)
    subprocess.run(["git", "-C", str(directory), "remote", "add", "origin", origin], check=True)
    return str(directory)


def _profile(directory: Path, env: dict[str, str], gitlab: dict[str, Any], pvc: Path | None = None) -> Path:
    section = {
        "url": "${SANDBOX_GITLAB_URL}",
        "project": "${SANDBOX_GITLAB_PROJECT}",
        "username": "${SANDBOX_GITLAB_USER}",
        "token": "env:TEST_GITLAB_TOKEN",
        "https_remote": "${SANDBOX_GIT_HTTPS_URL}",
        "ssh_host": "${SANDBOX_SSH_HOST}",
        "ssh_port": int(env["SANDBOX_SSH_PORT"]),
        "ssh_user": "${SANDBOX_SSH_USER}",
        "ssh_config": "${SANDBOX_SSH_CONFIG}",
        "known_hosts": "${SANDBOX_SSH_KNOWN_HOSTS}",
        "checkout": "${SANDBOX_GIT_CHECKOUT}",
        **gitlab,
    }
    data: dict[str, Any] = {
        "platform": "onprem",
        "orchestrator": "runai",
        "timeouts": {"connect": 2, "request": 5},
        "tls": {"ca_bundle": "${SANDBOX_CA_BUNDLE}"},
        "gitlab": section,
    }
    if pvc is not None:
        data["workspace"] = {"pvc_mount": str(pvc)}
    path = directory / "profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def run_gitlab(suite: Any, sandbox_env: dict[str, str], tmp_path: Path) -> Callable[..., SuiteRun]:
    """``run_gitlab(token kind or value, gitlab overrides, pvc=None)``: the GIT checks on a variant profile."""

    def run(kind: str, gitlab: dict[str, Any], pvc: Path | None = None) -> SuiteRun:
        variable = "SANDBOX_GITLAB_TOKEN" if kind == "good" else f"SANDBOX_GITLAB_{kind.upper()}_TOKEN"
        value = sandbox_env.get(variable, kind)
        profile = _profile(tmp_path, sandbox_env, gitlab, pvc)
        result: SuiteRun = suite(
            "-m", "gitlab", "-p", "no:cacheprovider", profile=profile, env={"TEST_GITLAB_TOKEN": value}
        )
        assert "Traceback" not in result.output, result.output[-3000:]
        return result

    return run


def _assert_no_leak(run: SuiteRun, *values: str) -> None:
    needles = set(values) | {base64.b64encode(f"conformance:{v}".encode()).decode() for v in values}
    needles |= {base64.b64encode(v.encode()).decode() for v in values}
    texts = {"output": run.output, **run.artifact_texts()}
    for name, text in texts.items():
        for needle in needles:
            assert needle not in text, f"a secret leaked into {name}"


# --------------------------------------------------------------------------- passing


@pytest.mark.parametrize("profile", ["sandbox", "sandbox-gcp"])
def test_every_check_passes_on_the_sandbox(suite: Any, sandbox_env: dict[str, str], profile: str) -> None:
    run = suite("-m", "gitlab", "-p", "no:cacheprovider", profile=profile)
    for check_id in ALL_IDS:
        run.expect(check_id, "passed")
    assert run.rc == 0, run.output[-3000:]
    _assert_no_leak(run, sandbox_env["SANDBOX_GITLAB_TOKEN"])
    assert "gitlab-api" in sandbox_env["SANDBOX_SIMULATED"].split(",")
    assert "gitlab-api" in json.dumps(run.results)  # the report marks the API as simulated
    wanted = "GCP_SERVICE_ACCOUNT_KEY" if profile == "sandbox-gcp" else "HARBOR_ROBOT_CREDS_JSON"
    assert run.check("GIT-013")["evidence"]["types"] == {wanted: "file"}
    # The Harbor robot file is a File variable of the project's group; the GCP key is set on the project.
    where = "project mlops/kapitan-hull-sandbox" if profile == "sandbox-gcp" else "group mlops"
    assert run.check("GIT-013")["evidence"]["set_on"] == {wanted: where}
    assert run.check("GIT-013")["evidence"]["levels_unread"] == [
        "instance (HTTP 403 403 Forbidden: listing needs an administrator)"
    ]
    assert run.check("GIT-009")["evidence"]["gitlab_user"] == "conformance"
    assert run.check("GIT-015")["evidence"]["status"] == "success"


# --------------------------------------------------------------------------- failing


def test_wrong_token_no_port_ssh_remote_and_key_on_pvc(
    run_gitlab: Callable[..., SuiteRun], sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    pvc = tmp_path / "pvc"
    (pvc / "workspaces" / "alice" / ".ssh").mkdir(parents=True)
    (pvc / "workspaces" / "alice" / ".ssh" / "id_ed25519").write_text(FAKE_KEY)
    (pvc / "workspaces" / "alice" / "notes.txt").write_text("not a key\n")
    config = ssh_config(sandbox_env, tmp_path, "no-port", Port=None)
    checkout = _checkout(tmp_path / "ssh-checkout", sandbox_env["SANDBOX_GIT_SSH_URL"])
    run = run_gitlab(WRONG_TOKEN, {"ssh_config": config, "checkout": checkout}, pvc=pvc)
    run.expect("GIT-001", "failed", "HTTP 401 401 Unauthorized", "the token is wrong")
    run.expect("GIT-002", "error", "blocked by GIT-001")
    run.expect("GIT-003", "error", "blocked by GIT-001")
    run.expect("GIT-005", "error", "blocked by GIT-001")
    run.expect("GIT-006", "failed", f"{config} gives port 22 for host localhost, not", "without `Port 2222`")
    run.expect("GIT-009", "error", "blocked by GIT-006")
    run.expect("GIT-010", "error", "blocked by GIT-006")
    run.expect("GIT-011", "failed", "origin is root@localhost:", "use HTTPS")
    run.expect("GIT-012", "failed", "1 found: workspaces/alice/.ssh/id_ed25519", "the whole team can read")
    _assert_no_leak(run, WRONG_TOKEN)


def test_git_https_refuses_a_wrong_password(sandbox_env: dict[str, str]) -> None:
    """GIT-005's own fault: the API accepts the token but git's password is wrong (the client, direct)."""
    from conformance.session import open_profile
    from tests.conftest import REPO

    loaded = open_profile(REPO / "profiles" / "sandbox.yaml", {**sandbox_env})
    gitlab = client.connect(loaded.profile, "test")
    result = gitlab.ls_remote_https("someone-else")
    assert result.rc == 128
    assert "Authentication failed for 'https://localhost:" in result.message
    assert sandbox_env["SANDBOX_GITLAB_TOKEN"] not in result.message + result.stdout


def test_expired_token_loose_key_and_credentials_in_remote(
    run_gitlab: Callable[..., SuiteRun], sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    key = tmp_path / "id_loose"
    shutil.copy(sandbox_env["SANDBOX_SSH_KEY"], key)
    key.chmod(0o644)
    config = ssh_config(sandbox_env, tmp_path, "loose-key", IdentityFile=str(key))
    origin = sandbox_env["SANDBOX_GIT_HTTPS_URL"].replace("https://", f"https://conformance:{URL_PASSWORD}@")
    checkout = _checkout(tmp_path / "leaky-checkout", origin)
    run = run_gitlab("expired", {"ssh_config": config, "checkout": checkout})
    run.expect("GIT-001", "failed", "invalid_token: Token is expired", "revoked or has expired")
    run.expect("GIT-002", "failed", "the token is active and not expired", "Token is expired")
    run.expect("GIT-004", "error", "blocked by GIT-002")
    run.expect("GIT-007", "failed", f"{key} has mode 644", "mode 600 or 400")
    run.expect("GIT-009", "error", "blocked by GIT-007")
    run.expect("GIT-011", "failed", "origin holds no credentials", "shown here without them")
    _assert_no_leak(run, sandbox_env["SANDBOX_GITLAB_EXPIRED_TOKEN"], URL_PASSWORD)


def test_expiring_token_unknown_host_key_and_broken_ci(
    run_gitlab: Callable[..., SuiteRun], sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = ssh_config(sandbox_env, tmp_path, "unknown-host", UserKnownHostsFile=str(empty))
    gitlab = {"ssh_config": config, "known_hosts": str(empty), "project": "${SANDBOX_GITLAB_BROKEN_PROJECT}"}
    run = run_gitlab("expiring", gitlab)
    run.expect("GIT-001", "passed")
    # within the profile's expiry horizon (default 7 days): a failure with the date, which blocks nothing
    run.expect("GIT-002", "failed", "the GitLab token expires on", "expiry horizon (7 days")
    assert run.check("GIT-002")["evidence"]["days_left"] <= 5
    run.expect("GIT-008", "failed", f"a host key for [localhost]:{sandbox_env['SANDBOX_SSH_PORT']}", str(empty))
    run.expect("GIT-009", "error", "blocked by GIT-008")
    run.expect("GIT-013", "failed", "HARBOR_ROBOT_CREDS_JSON is of type env_var", "with type Variable, `cat $VAR`")
    run.expect("GIT-014", "failed", "1 schedule(s), none active")
    run.expect("GIT-015", "failed", "on main: failed")


def test_read_only_token_unknown_project_and_malformedssh_config(
    run_gitlab: Callable[..., SuiteRun], tmp_path: Path
) -> None:
    config = tmp_path / "malformed"
    config.write_text("Host localhost\n    Pork 2222\n")
    run = run_gitlab("read_only", {"ssh_config": str(config), "project": "mlops/no-such-project"})
    run.expect("GIT-003", "failed", "lacks write_repository or api", "scopes read_api, read_repository")
    run.expect("GIT-004", "failed", "HTTP 404 404 Project Not Found")
    run.expect("GIT-013", "error", "blocked by GIT-004")
    message = run.check("GIT-006")["message"]
    run.expect("GIT-006", "failed", f"{config}: line 2: Bad configuration option: pork")
    assert "Traceback" not in message
    run.expect("GIT-007", "error", "blocked by GIT-006")
    run.expect("GIT-008", "error", "blocked by GIT-006")


def test_reporter_and_a_key_gitlab_does_not_know(
    run_gitlab: Callable[..., SuiteRun], sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    key = tmp_path / "id_stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = ssh_config(sandbox_env, tmp_path, "stranger", IdentityFile=str(key))
    run = run_gitlab("reporter", {"ssh_config": config})
    run.expect("GIT-004", "failed", "role Developer (30) or higher", "role Reporter (20)")
    run.expect("GIT-013", "error", "needs the Maintainer role")
    run.expect("GIT-007", "passed")
    run.expect("GIT-009", "failed", "Permission denied (publickey)")
    run.expect("GIT-010", "error", "blocked by GIT-009", "Permission denied (publickey)")  # one cause, once


API_CHECKS = "token_authenticates or project_access or ci_file_variables or token_not_expired or token_scopes"


def _api_run(suite: Any, sandbox_env: dict[str, str], tmp_path: Path, kind: str, **gitlab: Any) -> SuiteRun:
    """The API checks only (git over HTTPS knows the good token alone) with the token of ``kind``."""
    value = sandbox_env["SANDBOX_GITLAB_TOKEN" if kind == "good" else f"SANDBOX_GITLAB_{kind.upper()}_TOKEN"]
    profile = _profile(tmp_path, sandbox_env, gitlab)
    run: SuiteRun = suite("-m", "gitlab", "-k", API_CHECKS, profile=profile, env={"TEST_GITLAB_TOKEN": value})
    assert "Traceback" not in run.output, run.output[-3000:]
    return run


def test_developer_through_the_group_pushes_but_cannot_list_variables_anywhere(
    suite: Any, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    run = _api_run(suite, sandbox_env, tmp_path, "developer")
    run.expect("GIT-004", "passed")
    assert run.check("GIT-004")["evidence"]["role"] == "Developer (30)"
    assert run.check("GIT-004")["evidence"]["role_from"] == "permissions.group_access"
    run.expect(
        "GIT-013",
        "error",
        "HARBOR_ROBOT_CREDS_JSON not found on the levels this token may list (none)",
        "project mlops/kapitan-hull-sandbox (HTTP 403 403 Forbidden: listing needs the Maintainer role on the project)",
        "group mlops (HTTP 403 403 Forbidden: listing needs the Owner role of group mlops)",
        "instance (HTTP 403 403 Forbidden: listing needs an administrator)",
    )


def test_access_through_a_shared_group_is_found_in_members_all(
    suite: Any, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    """permissions are both null for a user who reaches the project through a group it is shared with."""
    run = _api_run(suite, sandbox_env, tmp_path, "shared")
    run.expect("GIT-004", "passed")
    evidence = run.check("GIT-004")["evidence"]
    assert evidence["role"] == "Developer (30)"  # Maintainer of the partner group, capped at the share's Developer
    assert evidence["role_from"] == "members/all (inherited or invited membership)"


def test_an_administrator_without_membership_and_every_variable_level(
    suite: Any, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    run = _api_run(suite, sandbox_env, tmp_path, "admin")
    run.expect("GIT-004", "passed")
    assert run.check("GIT-004")["evidence"]["role"] == "Administrator (is_admin)"
    run.expect("GIT-013", "passed")
    evidence = run.check("GIT-013")["evidence"]
    assert evidence["levels_read"] == ["project mlops/kapitan-hull-sandbox", "group mlops", "instance"]
    assert evidence["set_on"] == {"HARBOR_ROBOT_CREDS_JSON": "group mlops"}
    assert "levels_unread" not in evidence


def test_gitlab_before_15_5_has_no_token_self_endpoint(suite: Any, sandbox_env: dict[str, str], tmp_path: Path) -> None:
    run = _api_run(suite, sandbox_env, tmp_path, "good", url="${SANDBOX_GITLAB_OLD_URL}")
    run.expect("GIT-001", "passed")
    run.expect("GIT-002", "passed")
    evidence = run.check("GIT-002")["evidence"]
    assert evidence["expires_at"] == "unknown (GitLab before 15.5)"
    assert "personal_access_tokens/self answered HTTP 404 404 Not Found" in evidence["note"]
    run.expect("GIT-003", "error", "does not tell a token its scopes", "GIT-004 proves read_api")
    run.expect("GIT-004", "passed")
    run.expect("GIT-013", "passed")


def test_an_expired_token_on_gitlab_before_15_5_still_fails_git002(
    suite: Any, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    run = _api_run(suite, sandbox_env, tmp_path, "expired", url="${SANDBOX_GITLAB_OLD_URL}")
    run.expect("GIT-002", "failed", "Token is expired")


def test_git_only_token_and_a_wrong_ssh_path(run_gitlab: Callable[..., SuiteRun], sandbox_env: dict[str, str]) -> None:
    remote = f"{sandbox_env['SANDBOX_SSH_USER']}@localhost:mlops/no-such-project.git"
    run = run_gitlab("git_only", {"ssh_remote": remote})
    run.expect("GIT-001", "passed")
    run.expect("GIT-003", "failed", "lacks read_api or api")
    run.expect("GIT-004", "error", "blocked by GIT-003", "insufficient_scope")
    run.expect("GIT-009", "passed")
    run.expect("GIT-010", "failed", "could not be found")


def test_https_only_profile_and_a_missing_repository(
    run_gitlab: Callable[..., SuiteRun], sandbox_env: dict[str, str]
) -> None:
    missing = sandbox_env["SANDBOX_GIT_HTTPS_URL"].replace("kapitan-hull-sandbox", "no-such-project")
    run = run_gitlab("good", {"ssh": False, "https_remote": missing})
    for check_id in ("GIT-006", "GIT-007", "GIT-008", "GIT-009", "GIT-010"):
        run.expect(check_id, "skipped", "gitlab.ssh is false")
    run.expect("GIT-001", "passed")
    run.expect("GIT-005", "failed", "exit 128", "no-such-project.git/' not found")
    _assert_no_leak(run, sandbox_env["SANDBOX_GITLAB_TOKEN"])


# --------------------------------------------------------------------------- units


def test_profile_section_endpoints_and_defaults() -> None:
    from conformance.profile import GitLab

    section = GitLab(url="https://gitlab.example/", project="grp/proj")
    assert [(e.name, e.url) for e in section.endpoints()] == [
        ("gitlab", "https://gitlab.example"),
        ("gitlab-ssh", "ssh://gitlab.example:2222"),
    ]
    assert section.clone_url == "https://gitlab.example/grp/proj.git"
    assert section.ssh_clone_url == "git@gitlab.example:grp/proj.git"
    apart = GitLab(url="https://localhost:1", project="g/p", https_remote="https://localhost:2/g/p.git", ssh=False)
    assert [e.name for e in apart.endpoints()] == ["gitlab", "gitlab-git"]


def test_credentials_in_a_remote_are_refused_without_echoing_them(tmp_path: Path) -> None:
    from conformance.profile import ProfileError
    from conformance.session import open_profile

    path = tmp_path / "p.yaml"
    remote = "https://me:Sekr1t@gitlab.example/g/p.git"
    section = {"url": "https://gitlab.example", "project": "g/p", "https_remote": remote}
    path.write_text(yaml.safe_dump({"platform": "onprem", "orchestrator": "runai", "gitlab": section}))
    with pytest.raises(ProfileError) as info:
        open_profile(path, {})
    (line,) = info.value.lines
    assert "gitlab.https_remote: must not hold credentials" in line
    assert "Sekr1t" not in line


def _api(state_tokens: dict[str, str]) -> gitlab_api._Api:
    state = gitlab_api.default_state(state_tokens, "g/p", "g/broken")
    return gitlab_api._Api(state, "https://localhost:1")


def test_simulated_api_answers_like_gitlab() -> None:
    tokens = {kind: gitlab_api.new_token() for kind in TOKEN_KINDS}
    api = _api(tokens)
    assert api.answer("/api/v4/user", {}, None) == (401, {"message": "401 Unauthorized"})
    status, body = api.answer("/api/v4/user", {}, tokens["revoked"])
    assert (status, body["error"]) == (401, "invalid_token")
    assert "revoked" in body["error_description"]
    status, body = api.answer("/api/v4/projects/g%2Fp", {}, tokens["git_only"])
    assert (status, body["error"]) == (403, "insufficient_scope")
    assert api.answer("/api/v4/projects/g%2Fnope", {}, tokens["good"]) == (404, {"message": "404 Project Not Found"})
    assert api.answer("/api/v4/projects/g%2Fp/variables", {}, tokens["reporter"]) == (403, {"message": "403 Forbidden"})
    status, body = api.answer("/api/v4/projects/7", {}, tokens["good"])
    assert body["permissions"]["project_access"]["access_level"] == 40
    assert body["path_with_namespace"] == "g/p"
    status, body = api.answer("/api/v4/projects/g%2Fbroken/pipelines", {"ref": "main", "per_page": "1"}, tokens["good"])
    assert [p["status"] for p in body] == ["failed"]
    status, body = api.answer("/api/v4/personal_access_tokens/self", {}, tokens["read_only"])
    assert body["scopes"] == ["read_api", "read_repository"]
    assert body["active"] is True
    assert len(str(body["expires_at"])) == len("2025-01-31")
    assert len(gitlab_api.new_token()) == len("glpat-") + 20


def test_reply_and_error_parsing() -> None:
    expired = json.dumps(gitlab_api.EXPIRED).encode()
    assert client._error_text(expired).startswith("invalid_token: Token is expired")
    assert client._error_text(b'{"message": "404 Project Not Found"}') == "404 Project Not Found"
    assert client._error_text(b"<html>") == "answer is not JSON"
    state = client.Reply(401, error=client._error_text(expired)).token_state
    assert state == "expired"
    assert client.Reply(401, error="401 Unauthorized").token_state is None
    assert client.Reply(403, error="insufficient_scope: needs api").insufficient_scope


def test_redact_url_and_days_until() -> None:
    assert client.redact_url("https://me:s3cret@host/g/p.git") == ("https://host/g/p.git", True)
    assert client.redact_url("https://me@host/g/p.git") == ("https://host/g/p.git", False)
    assert client.redact_url("git@host:g/p.git") == ("git@host:g/p.git", False)
    today = dt.date(2025, 1, 10)
    assert client.days_until("2025-01-24", today) == 14
    assert client.days_until("2025-01-09T00:00:00Z", today) == -1


def test_meaningful_line_skips_boilerplate() -> None:
    stderr = (
        "ssh: connect to host localhost port 22: Connection refused\r\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\nand the repository exists.\n"
    )
    assert client._meaningful_line(stderr) == "ssh: connect to host localhost port 22: Connection refused"
    changed = "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@\nHost key verification failed.\n"
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in client._meaningful_line(changed)


def test_find_private_keys_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "id_rsa").write_text(FAKE_KEY.replace("OPENSSH", "RSA"))
    (tmp_path / "a" / "key.pub").write_text("ssh-ed25519 AAAA user\n")
    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    scan = client.find_private_keys(tmp_path, seconds=5)
    assert scan.keys == ["a/b/id_rsa"]
    assert (scan.complete, scan.scanned) == (True, 3)
    assert client.find_private_keys(tmp_path, seconds=5, max_depth=0).keys == []
    assert not client.find_private_keys(tmp_path, seconds=5, max_files=1).complete


def test_scrub_hides_the_token_in_every_form(sandbox_env: dict[str, str]) -> None:
    from conformance.session import open_profile
    from tests.conftest import REPO

    gitlab = client.connect(open_profile(REPO / "profiles" / "sandbox.yaml", {**sandbox_env}).profile, "test")
    token = sandbox_env["SANDBOX_GITLAB_TOKEN"]
    text = gitlab.scrub(f"a {token} b {base64.b64encode(token.encode()).decode()} Authorization: Basic Zm9vOmJhcg==")
    assert token not in text
    assert "Zm9vOmJhcg==" not in text
    assert text.count("********") == 3


def test_variables_are_read_from_every_page_and_their_values_dropped() -> None:
    """GitLab lists at most 100 variables a page: a File variable on page 2 still counts."""
    pages = {
        1: [{"key": f"V{i}", "value": "value-kept-secret", "variable_type": "env_var"} for i in range(100)],
        2: [{"key": "HARBOR_ROBOT_CREDS_JSON", "value": "value-kept-secret", "variable_type": "file"}],
    }
    asked: list[dict[str, Any]] = []

    def get(path: str, **query: Any) -> client.Reply:
        asked.append(query)
        return client.Reply(200, pages.get(query.get("page", 1), []))

    api = object.__new__(client.GitLabClient)
    api.get = get  # type: ignore[method-assign] # the API stand-in: two pages
    reply = api._variables("/projects/1/variables")
    assert asked == [{"per_page": 100}, {"per_page": 100, "page": 2}]
    assert len(reply.data) == 101
    assert reply.data[-1] == {"key": "HARBOR_ROBOT_CREDS_JSON", "variable_type": "file"}
    assert "value-kept-secret" not in json.dumps(reply.data)
