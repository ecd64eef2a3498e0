"""K8S checks against the sandbox's simulated API server: each passes, and fails for its own fault."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from conformance import credentials
from conformance.clients import kubernetes as kube
from conformance.profile import TLS, Kubernetes, Timeouts
from conformance.sandbox.kube_api import simulate_run
from conformance.sandbox.kubernetes import id_token
from conformance.sandbox.oidc import jwt, refresh_jwt
from tests.conftest import write_profile

K8S_IDS = [f"K8S-{n:03d}" for n in range(1, 12)]


def kube_profile(
    directory: Path,
    *,
    kubeconfig: str = "${SANDBOX_KUBECONFIG}",
    context: str | None = None,
    namespace: str = "${SANDBOX_K8S_NAMESPACE}",
    pvc: str = "${SANDBOX_K8S_PVC}",
    secrets: str = "[s3-credentials, harbor-credentials]",
    name: str = "k8s.yaml",
    more: tuple[str, ...] = (),
) -> Path:
    lines = [
        "platform: onprem",
        "orchestrator: runai",
        "timeouts: {connect: 2, request: 5, check: 20}",
        "tls: {ca_bundle: '${SANDBOX_CA_BUNDLE}'}",
        "kubernetes:",
        f"  kubeconfig: '{kubeconfig}'",
        f"  namespace: '{namespace}'",
        f"  pvc: '{pvc}'",
        f"  expected_secrets: {secrets}",
    ]
    if context:
        lines.append(f"  context: {context}")
    return write_profile(directory, "\n".join([*lines, *more]) + "\n", name)


def credentials_of(kubeconfig_path: str) -> list[str]:
    data = yaml.safe_load(Path(kubeconfig_path).read_text())
    found = []
    for entry in data["users"]:
        user = entry["user"]
        found += [user[k] for k in ("token",) if k in user]
        config = (user.get("auth-provider") or {}).get("config") or {}
        found += [config[k] for k in ("id-token", "refresh-token") if k in config]
    return found


def message(run: Any, check_id: str) -> str:
    return str(run.check(check_id)["message"])


# --------------------------------------------------------------------------- through the suite


def test_all_pass_and_no_credential_leaks(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    run = suite("-m", "kubernetes", profile=kube_profile(tmp_path))
    for check_id in K8S_IDS:
        assert run.check(check_id)["outcome"] == "passed", (
            check_id,
            run.check(check_id)["message"],
            run.output[-3000:],
        )
    evidence = run.check("K8S-006")["evidence"]
    assert evidence["server_version"] == "v1.29.4"
    assert "certificate-authority-data" in evidence["tls_trust"]
    assert run.check("K8S-011")["evidence"]["log"].startswith("conformance-")
    assert run.check("K8S-010")["evidence"]["present"] == ["s3-credentials", "harbor-credentials"]
    # Canary: no token, id-token or refresh-token of the kubeconfig in any artifact or the output.
    values = credentials_of(sandbox_env["SANDBOX_KUBECONFIG"])
    assert len(values) == 3
    texts = [run.output, *run.artifact_texts().values()]
    for value in values:
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert not any(form in text for text in texts)


def test_rbac_pvc_and_secret_faults(suite: Any, tmp_path: Path) -> None:
    profile = kube_profile(
        tmp_path,
        kubeconfig="${SANDBOX_KUBECONFIG_READONLY}",
        pvc="${SANDBOX_K8S_PVC_PENDING}",
        secrets="[s3-credentials, gitlab-ro-credentials]",
    )
    run = suite("-m", "kubernetes", profile=profile)
    assert run.check("K8S-006")["outcome"] == "passed"
    permissions = message(run, "K8S-008")
    assert run.check("K8S-008")["outcome"] == "failed"
    assert "denied: create pods, create jobs.batch" in permissions
    assert "get pods/log" not in permissions.split("denied:")[1]
    assert run.check("K8S-009")["outcome"] == "failed"
    assert "is Pending (storage class nfs-client)" in message(run, "K8S-009")
    assert run.check("K8S-010")["outcome"] == "failed"
    assert "missing: gitlab-ro-credentials" in message(run, "K8S-010")
    assert run.check("K8S-011")["outcome"] == "failed"
    assert "HTTP 403" in message(run, "K8S-011")
    assert "cannot create resource" in message(run, "K8S-011")


def test_mode_and_rwo_faults(suite: Any, tmp_path: Path) -> None:
    profile = kube_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_MODE644}", pvc="${SANDBOX_K8S_PVC_RWO}")
    run = suite("-m", "kubernetes and not writes", profile=profile)
    assert run.check("K8S-003")["outcome"] == "failed"
    assert "mode 0644" in message(run, "K8S-003")
    assert run.check("K8S-009")["outcome"] == "failed"
    assert "access modes ReadWriteOnce" in message(run, "K8S-009")


def test_insecure_tls_and_missing_namespace(suite: Any, tmp_path: Path) -> None:
    profile = kube_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_INSECURE}", namespace="runai-missing")
    run = suite("-m", "kubernetes and not writes", profile=profile)
    assert run.check("K8S-004")["outcome"] == "failed"
    assert "insecure-skip-tls-verify: true" in message(run, "K8S-004")
    assert run.check("K8S-006")["outcome"] == "passed"  # honoured like kubectl does, and flagged by K8S-004
    assert "verification disabled" in run.check("K8S-006")["evidence"]["tls_trust"]
    assert run.check("K8S-007")["outcome"] == "failed"
    assert 'namespaces "runai-missing" not found' in message(run, "K8S-007")


def test_context_missing(suite: Any, tmp_path: Path) -> None:
    run = suite("-m", "kubernetes and not writes", profile=kube_profile(tmp_path, context="nope"))
    assert run.check("K8S-002")["outcome"] == "failed"
    assert "context 'nope' is not in the kubeconfig" in message(run, "K8S-002")
    assert run.check("K8S-006")["outcome"] == "error"
    assert run.check("K8S-006")["blocked_by"] == "K8S-002"


def test_malformed_kubeconfig_is_one_line(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    run = suite(
        "-m", "kubernetes and not writes", profile=kube_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_MALFORMED}")
    )
    text = message(run, "K8S-001")
    assert run.check("K8S-001")["outcome"] == "failed"
    assert sandbox_env["SANDBOX_KUBECONFIG_MALFORMED"] in text
    assert "YAML syntax error" in text
    assert "line 6, column 1" in text
    assert run.check("K8S-003")["outcome"] == "passed"  # the file exists; only its content is broken
    assert run.check("K8S-002")["blocked_by"] == "K8S-001"
    assert "Traceback" not in run.output


def test_exec_plugin_missing_then_present(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    profile = kube_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_EXEC}")
    empty = tmp_path / "bin"  # this machine has the real plugin in /usr/bin: keep it out of PATH
    empty.mkdir()
    missing = suite("-m", "kubernetes and not writes", profile=profile, env={"PATH": str(empty)})
    assert missing.check("K8S-005")["outcome"] == "failed"
    assert "'gke-gcloud-auth-plugin'" in message(missing, "K8S-005")
    assert "not on PATH" in message(missing, "K8S-005")
    assert "cluster-access-for-kubectl" in message(missing, "K8S-005")  # the kubeconfig's installHint
    assert missing.check("K8S-006")["blocked_by"] == "K8S-005"
    present = suite(
        "-m",
        "kubernetes and not writes",
        profile=profile,
        env={"PATH": f"{sandbox_env['SANDBOX_K8S_PLUGIN_DIR']}:{empty}"},
    )
    assert present.check("K8S-005")["outcome"] == "passed"
    assert present.check("K8S-006")["outcome"] == "passed"  # the plugin's token was accepted


def test_bad_token_is_401(suite: Any, tmp_path: Path) -> None:
    run = suite(
        "-m", "kubernetes and not writes", profile=kube_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_BADTOKEN}")
    )
    assert run.check("K8S-006")["outcome"] == "failed"
    assert "HTTP 401 Unauthorized" in message(run, "K8S-006")
    assert run.check("K8S-007")["blocked_by"] == "K8S-006"


def test_expired_oidc_login_is_renewed_and_written_back(
    suite: Any, tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """An expired id-token with a valid refresh-token: renewed as kubectl does, stored in the same file."""
    copy = tmp_path / "kubeconfig"
    shutil.copy(sandbox_env["SANDBOX_KUBECONFIG_REFRESHABLE"], copy)
    copy.chmod(0o600)
    before = credentials_of(str(copy))
    run = suite("-m", "kubernetes", profile=kube_profile(tmp_path, kubeconfig=str(copy)))
    for check_id in K8S_IDS:
        assert run.check(check_id)["outcome"] == "passed", (check_id, run.check(check_id)["message"])
    evidence = run.check("K8S-005")["evidence"]
    assert evidence["obtained"].startswith(f"renewed with the refresh-token and written back to {copy}")
    after = credentials_of(str(copy))
    assert not set(after) & set(before)  # a new id-token and the issuer's new refresh-token, both stored
    claims = kube.jwt_claims(after[0])
    assert claims is not None
    assert claims["exp"] > dt.datetime.now(dt.UTC).timestamp()
    assert copy.stat().st_mode & 0o777 == 0o600
    assert not copy.with_name("kubeconfig.lock").exists()
    texts = [run.output, *run.artifact_texts().values()]
    for value in after:
        assert not any(value in text for text in texts)


def test_refused_refresh_token_fails_k8s005(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    copy = tmp_path / "kubeconfig"
    shutil.copy(sandbox_env["SANDBOX_KUBECONFIG_EXPIRED"], copy)
    before = copy.read_text()
    run = suite("-m", "kubernetes and not writes", profile=kube_profile(tmp_path, kubeconfig=str(copy)))
    assert run.check("K8S-005")["outcome"] == "failed"
    text = message(run, "K8S-005")
    assert "the id-token expired on" in text
    assert (
        f"the issuer {sandbox_env['SANDBOX_OIDC_ISSUER']} refused to renew it: invalid_grant: Token is not active"
        in text
    )
    assert "runai login" in text
    assert run.check("K8S-006")["blocked_by"] == "K8S-005"
    assert copy.read_text() == before  # nothing written when the issuer refuses


def test_exec_plugin_output_not_an_execcredential(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    """A plugin that prints a prompt and exits 0: refused as client-go refuses it, not blamed on RBAC."""
    run = suite("-m", "kubernetes", profile=kube_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_EXEC_GARBAGE}"))
    assert run.check("K8S-005")["outcome"] == "failed"
    text = message(run, "K8S-005")
    assert "getting credentials: decoding stdout: not an ExecCredential" in text
    assert "gke-gcloud-auth-plugin" in text
    for check_id in ("K8S-006", "K8S-007", "K8S-008", "K8S-010", "K8S-011"):
        assert run.check(check_id)["blocked_by"] == "K8S-005", check_id
        assert "RoleBinding" not in message(run, check_id)


@pytest.mark.parametrize(
    "fault",
    [
        (
            "SANDBOX_K8S_QUOTA_NAMESPACE",
            "exceeded quota: compute-resources, requested: limits.cpu=100m",
            "ResourceQuota",
        ),
        ("SANDBOX_K8S_RESTRICTED_NAMESPACE", 'violates PodSecurity "restricted:latest"', "Pod Security level"),
    ],
)
def test_job_accepted_but_pods_refused(suite: Any, tmp_path: Path, fault: tuple[str, str, str]) -> None:
    namespace, quoted, hint = fault
    profile = kube_profile(tmp_path, namespace=f"${{{namespace}}}")  # K8S-011 only: the Secrets are not looked at
    run = suite("-m", "kubernetes", "-k", "smoke_job", profile=profile)
    record = run.check("K8S-011")
    assert record["outcome"] == "failed"
    text = str(record["message"])
    assert "FailedCreate event from job-controller: Error creating: pods" in text
    assert quoted in text
    assert hint in text
    assert "none yet" in text  # no pod: the admission message says why
    assert "cannot be pulled" not in text


# --------------------------------------------------------------------------- units


def test_jwt_claims_and_oidc_expiry() -> None:
    expires = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    token = id_token("https://issuer.example", "me", expires)
    assert kube.jwt_claims(token)["exp"] == int(expires.timestamp())  # type: ignore[index] # a dict here
    assert kube.jwt_claims("not-a-jwt") is None
    kc = kube.Kubeconfig(path=None, source="test")
    kc.user = {"auth-provider": {"name": "oidc", "config": {"id-token": token}}}
    found = kube.credential(kc)
    assert found.problem is not None
    assert "expired on" in found.problem
    kc.user = {"auth-provider": {"name": "gcp", "config": {}}}
    assert "removed" in (kube.credential(kc).problem or "")


def test_parse_and_lookup_order(tmp_path: Path) -> None:
    data, problem = kube.parse("clusters: [")
    assert data is None
    assert problem is not None
    assert "YAML syntax error" in problem
    assert kube.parse("- a\n- b\n")[1] == "top level is list, not a kubeconfig mapping"
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(
        json.dumps({"clusters": [{"name": "c", "cluster": {"server": "https://x"}}]})
    )
    assert kube.find_kubeconfig(None, {}, home).source == "~/.kube/config"
    env_file = tmp_path / "env-kubeconfig"
    # client-go: with $KUBECONFIG set, only its files count (missing ones skipped); no fallback.
    found = kube.find_kubeconfig(None, {"KUBECONFIG": str(env_file)}, home)
    assert found.source == "$KUBECONFIG"
    assert found.problem == f"no kubeconfig found ($KUBECONFIG: the file does not exist: {env_file})"
    env_file.write_text((home / ".kube" / "config").read_text())
    assert kube.find_kubeconfig(None, {"KUBECONFIG": str(env_file)}, home).files == [env_file]


def _kubeconfig_file(path: Path, users: dict[str, dict[str, Any]], current: str | None, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "clusters": [{"name": "c", "cluster": {"server": f"https://{path.stem}", **extra}}],
        "users": [{"name": name, "user": user} for name, user in users.items()],
        "contexts": [{"name": f"ctx-{name}", "context": {"cluster": "c", "user": name}} for name in users],
    }
    if current:
        data["current-context"] = current
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


def test_kubeconfig_list_is_merged_as_client_go_merges_it(tmp_path: Path) -> None:
    """clientcmd/loader.go: first file wins each name whole; current-context from the first that sets one."""
    (tmp_path / "certs").mkdir()
    first = _kubeconfig_file(
        tmp_path / "first", {"alice": {"token": "first-token"}}, None, **{"certificate-authority": "certs/ca.pem"}
    )
    second = _kubeconfig_file(
        tmp_path / "second",
        {"alice": {"token": "second-token", "username": "x"}, "bob": {"token": "bob-token"}},
        "ctx-alice",
    )
    env = {"KUBECONFIG": f"{first}:{tmp_path / 'missing'}:{second}"}
    found = kube.find_kubeconfig(None, env, tmp_path)
    assert found.problem is None
    assert found.files == [first, second]
    assert found.context_name == "ctx-alice"  # only the second file sets current-context
    assert found.user == {"token": "first-token"}  # the first file's alice, whole: no username from the second
    assert found.server == "https://first"
    assert found.cluster["certificate-authority"] == str(tmp_path / "certs" / "ca.pem")  # relative to its file
    assert found.user_file() == first
    assert kube.find_kubeconfig(Kubernetes(namespace="x", context="ctx-bob"), env, tmp_path).user_file() == second
    # The secret index reads the same files: the second file's tokens are redacted too.
    profile = SimpleNamespace(
        registry=None, object_storage=None, gcp=None, kubernetes=Kubernetes(namespace="x", kubeconfig=None)
    )
    values = {secret.reveal() for _, secret, _ in credentials.held_outside(profile, {**env, "HOME": str(tmp_path)})}  # type: ignore[arg-type] # a stand-in profile
    assert {"first-token", "second-token", "bob-token"} <= values
    # An explicit kubernetes.kubeconfig is read alone (kubectl --kubeconfig).
    alone = kube.find_kubeconfig(Kubernetes(namespace="x", kubeconfig=str(second)), env, tmp_path)
    assert alone.files == [second]
    assert alone.user == {"token": "second-token", "username": "x"}


def test_access_attributes_and_mode() -> None:
    assert kube.access_attributes("create jobs.batch") == ("create", "jobs", "batch", "")
    assert kube.access_attributes("get pods/log") == ("get", "pods", "", "log")
    assert kube.is_private(0o600)
    assert not kube.is_private(0o644)
    assert not kube.is_private(None)


@pytest.mark.parametrize(
    ("image", "command", "ok", "log"),
    [
        ("alpine:3.20", ["/bin/sh", "-c", "echo conformance-1"], True, "conformance-1\n"),
        ("alpine:3.20", ["/bin/bash", "-c", "echo hi"], False, ""),  # Alpine has no bash
        ("busybox", ["sleep", "5"], False, ""),
    ],
)
def test_simulated_pod(image: str, command: list[str], ok: bool, log: str) -> None:
    assert simulate_run(image, command)[:2] == (ok, log)


API_V1 = "client.authentication.k8s.io/v1"


def _plugin(directory: Path, body: str) -> Path:
    script = directory / "plugin"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o700)
    return script


@pytest.mark.parametrize(
    ("api_version", "body", "refusal"),
    [
        (
            "client.authentication.k8s.io/v1",
            "echo '"
            + json.dumps({"kind": "ExecCredential", "apiVersion": API_V1, "status": {"clientCertificateData": "x"}})
            + "'",
            "exec plugin returned only certificate or key, not both",
        ),
        (
            "client.authentication.k8s.io/v1",
            "echo 'token expired' >&2; exit 3",
            "failed with exit code 3: token expired",
        ),
        ("client.authentication.k8s.io/v1alpha1", "echo '{}'", "is not one of client.authentication.k8s.io/v1,"),
    ],
)
def test_exec_plugin_refusals(tmp_path: Path, api_version: str, body: str, refusal: str) -> None:
    plugin = _plugin(tmp_path, body)
    kc = kube.Kubeconfig(path=None, source="test")
    kc.user_name = "u"
    kc.user = {"exec": {"apiVersion": api_version, "command": str(plugin)}}
    found = kube.obtain(kc, kube.credential(kc), TLS(), Timeouts(connect=1, request=2))
    assert found.problem is not None
    assert found.problem.startswith("getting credentials: ")
    assert refusal in found.problem
    assert found.entry is None


def test_exec_plugin_gets_client_go_environment(tmp_path: Path) -> None:
    """KUBERNETES_EXEC_INFO and the entry's env reach the plugin; its token becomes the client's."""
    plugin = _plugin(
        tmp_path,
        'echo "{\\"kind\\":\\"ExecCredential\\",\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",'
        '\\"status\\":{\\"token\\":\\"$MY_TOKEN\\"}}" ; echo "$KUBERNETES_EXEC_INFO" > ' + str(tmp_path / "info"),
    )
    kc = kube.Kubeconfig(path=None, source="test")
    kc.user_name = "u"
    kc.cluster = {"server": "https://api.example:6443"}
    kc.user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "env": [{"name": "MY_TOKEN", "value": "from-env"}],
            "provideClusterInfo": True,
        }
    }
    found = kube.obtain(kc, kube.credential(kc), TLS(), Timeouts(connect=1, request=2))
    assert found.problem is None
    assert found.entry == {"token": "from-env"}
    info = json.loads((tmp_path / "info").read_text())
    assert info["kind"] == "ExecCredential"
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == "https://api.example:6443"


def test_kubeconfig_lock_held_by_another_writer(tmp_path: Path) -> None:
    expired = id_token("https://issuer.example", "me", dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    config = {"id-token": expired, "refresh-token": "r", "idp-issuer-url": "https://issuer.example", "client-id": "c"}
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump({"users": [{"name": "u", "user": {"auth-provider": {"name": "oidc", "config": config}}}]})
    )
    (tmp_path / "config.lock").write_text("")
    kc = kube.Kubeconfig(path=path, source="test", files=[path])
    kc.user_name = "u"
    kc.user = {"auth-provider": {"name": "oidc", "config": config}}
    found = kube.obtain(kc, kube.credential(kc), TLS(), Timeouts(connect=1, request=0.3))
    assert found.unavailable
    assert found.problem == f"{tmp_path / 'config.lock'} exists: another kubectl or runai is writing the kubeconfig"
    assert "delete the .lock file" in (found.hint or "")


def test_child_processes_get_the_same_file_list(tmp_path: Path) -> None:
    first = _kubeconfig_file(tmp_path / "a", {"u": {"token": "t"}}, "ctx-u")
    second = _kubeconfig_file(tmp_path / "b", {"v": {"token": "s"}}, None)
    found = kube.find_kubeconfig(None, {"KUBECONFIG": f"{first}:{tmp_path / 'gone'}:{second}"}, tmp_path)
    assert found.environment_value == f"{first}:{second}"


@pytest.mark.parametrize(
    ("refresh", "end", "source"),
    [
        ("jwt-in-3-days", 3.0, "the refresh-token's exp"),  # Keycloak: the refresh-token ends with the session
        ("opaque", None, "unknown: the refresh-token carries no expiry"),
        ("offline-exp-0", None, "unknown: the refresh-token carries no expiry"),
        (None, 0.5, "the id-token's exp"),  # no refresh-token: the login ends with the id-token
    ],
)
def test_login_end_is_the_refresh_tokens_not_the_id_tokens(refresh: str | None, end: float | None, source: str) -> None:
    """An id-token lives minutes to hours and is renewed: the login the user must act on ends with its refresh-token."""
    now = dt.datetime.now(dt.UTC)
    tokens = {
        "jwt-in-3-days": refresh_jwt("https://idp.example/auth/realms/r", now + dt.timedelta(days=3)),
        "opaque": "d2Vsb3ZlLXRva2Vucy1tYWRlLW9mLXJhbmRvbS1ieXRlcw",
        "offline-exp-0": jwt({"exp": 0, "typ": "Offline"}),
    }
    config = {"id-token": id_token("https://idp.example/auth/realms/r", "me", now + dt.timedelta(hours=12))}
    config["idp-issuer-url"] = "https://idp.example/auth/realms/r"
    if refresh is not None:
        config["refresh-token"] = tokens[refresh]
    found = kube.credential_of({"auth-provider": {"name": "oidc", "config": config}}, "me")
    assert found.problem is None
    assert found.login_end.startswith(source)
    if end is None:
        assert found.login_expires is None
    else:
        assert found.login_expires is not None
        assert abs((found.login_expires - now).total_seconds() / 86400 - end) < 0.01


def test_kubeconfig_objects_never_show_credentials_in_a_repr() -> None:
    """``-l`` prints the locals of a failing frame: the loaded kubeconfig, the user entry, a renewal's answer."""
    canary = "canary-token-5f1d8e"
    kc = kube.Kubeconfig(path=None, source="test")
    kc.user = {"token": canary}
    kc.data = {"users": [{"name": "u", "user": {"token": canary}}]}
    found = kube.Credential("static token", entry={"token": canary})
    answer = kube.TokenAnswer(id_token=canary, refresh_token=canary)
    for shown in (kc, found, answer):
        assert canary not in repr(shown)


def test_exec_plugin_runs_once_per_run_so_every_token_sent_is_one_the_redaction_knows(tmp_path: Path) -> None:
    """A plugin minting a new token per call (aws eks get-token, kubelogin): the client reuses the first."""
    counter = tmp_path / "calls"
    plugin = _plugin(
        tmp_path,
        f'echo x >> {counter}; n=$(wc -l < {counter}); echo "{{\\"kind\\":\\"ExecCredential\\",'
        '\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"status\\":{\\"token\\":\\"minted-$n\\"}}"',
    )
    kc = kube.Kubeconfig(path=None, source="test")
    kc.user_name = "u"
    kc.user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}}
    first = kube.obtain(kc, kube.credential(kc), TLS(), Timeouts(connect=1, request=2))
    again = kube.obtain(kc, kube.credential(kc), TLS(), Timeouts(connect=1, request=2))  # the client's connect
    assert first.entry == again.entry == {"token": "minted-1"}
    assert counter.read_text().count("x") == 1


def test_oidc_renewal_takes_the_runs_trust_and_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """client-go renews through HTTPS_PROXY (NO_PROXY exempting) and with the trust the rest of the run has."""
    import urllib3

    issuer = "https://idp.example/auth/realms/r"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    pool = kube._issuer_pool({}, TLS(insecure=True), issuer)
    assert isinstance(pool, urllib3.ProxyManager)
    assert pool.proxy is not None
    assert pool.proxy.host == "proxy.example"
    assert pool.connection_pool_kw["cert_reqs"] == "CERT_NONE"
    monkeypatch.setenv("NO_PROXY", ".example")
    direct = kube._issuer_pool({}, TLS(), issuer)
    assert not isinstance(direct, urllib3.ProxyManager)
    assert direct.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"


def test_a_client_certificate_login_ends_on_its_not_after(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "u")])
    cert = (
        x509.CertificateBuilder(name, name, key.public_key(), x509.random_serial_number(), now, now + dt.timedelta(3))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    inline = kube.credential_of({"client-certificate-data": base64.b64encode(cert).decode()}, "u")
    (tmp_path / "u.crt").write_bytes(cert)
    on_disk = kube.credential_of({"client-certificate": str(tmp_path / "u.crt")}, "u")
    for found in (inline, on_disk):
        assert found.kind == "client certificate"
        assert found.login_expires == now + dt.timedelta(days=3)
        assert found.login_end == "the client certificate's notAfter"
    garbage = kube.credential_of({"client-certificate-data": "bm90IGEgY2VydA=="}, "u")
    assert garbage.login_expires is None
    assert garbage.login_end.startswith("unknown")
