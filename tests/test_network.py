"""NET checks against the sandbox: each passes on a healthy endpoint and fails for its own fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CA_VARIABLES, REPO, SuiteRun, write_profile

FAULTS_PROFILE = """
platform: onprem
orchestrator: runai
timeouts: {connect: 1, request: 1.5}
tls: {ca_bundle: "${SANDBOX_CA_BUNDLE}"}
network:
  endpoints:
    - {name: healthy, url: "${SANDBOX_HTTPS_URL}"}
    - {name: plain, url: "${SANDBOX_HTTP_URL}"}
    - {name: unknown-host, url: "https://no-such-host.invalid/"}
    - {name: refused, url: "${SANDBOX_FAULT_REFUSED_URL}"}
    - {name: hung, url: "${SANDBOX_FAULT_HUNG_URL}"}
    - {name: unknown-ca, url: "${SANDBOX_FAULT_UNKNOWN_CA_URL}"}
    - {name: expired, url: "${SANDBOX_FAULT_EXPIRED_URL}"}
    - {name: expiring, url: "${SANDBOX_FAULT_EXPIRING_URL}"}
    - {name: http-503, url: "${SANDBOX_FAULT_503_URL}"}
    - {name: unknown-host-again, url: "https://no-such-host.invalid:8443/"}
    - {name: ssh, url: "ssh://localhost:${SANDBOX_SSH_PORT}"}
"""

# (check id, endpoint): the check passes there.
PASSES = [
    ("NET-001", "healthy"),
    ("NET-002", "healthy"),
    ("NET-003", "healthy"),
    ("NET-004", "healthy"),
    ("NET-004", "plain"),
    ("NET-004", "ssh"),
    ("NET-005", None),
]
# (check id, endpoint, outcome, words of the message): the check fails for this fault.
FAILS = [
    ("NET-001", "unknown-host", "failed", "actual:   DNS: no-such-host.invalid does not resolve"),
    ("NET-002", "refused", "failed", "TCP: connection to 127.0.0.1:"),
    (
        "NET-002",
        "unknown-host",
        "error",
        "blocked by NET-001[unknown-host] (DNS: no-such-host.invalid does not resolve",
    ),
    ("NET-003", "unknown-ca", "failed", "TLS: certificate signed by an unknown authority"),
    ("NET-003", "expired", "failed", "TLS: certificate has expired"),
    ("NET-003", "hung", "failed", "TLS: no handshake answer from localhost:"),
    ("NET-004", "http-503", "failed", "HTTP: GET / answered 503 Service Unavailable"),
    ("NET-004", "refused", "error", "blocked by NET-002[refused] (localhost: TCP: connection to 127.0.0.1:"),
    ("NET-004", "hung-ssh", "failed", "SSH: no banner from localhost:"),
    (
        "NET-001",
        "unknown-host-again",
        "error",
        "blocked by NET-001[unknown-host] (as endpoint unknown-host on the same host: DNS:",
    ),
    ("NET-005", None, "failed", "endpoint (2) fails the same way at DNS: no DNS; the VPN is probably down"),
    ("NET-001", "a", "error", "blocked by NET-005 (every private endpoint (2) fails the same way at DNS"),
]


@pytest.fixture(scope="module")
def faults_run(tmp_path_factory: pytest.TempPathFactory, sandbox_env: dict[str, str]) -> SuiteRun:
    from tests.conftest import run_suite

    directory = tmp_path_factory.mktemp("net-faults")
    hung_port = sandbox_env["SANDBOX_FAULT_HUNG_URL"].rstrip("/").rsplit(":", 1)[1]
    text = FAULTS_PROFILE + f'    - {{name: hung-ssh, url: "ssh://localhost:{hung_port}"}}\n'
    profile = write_profile(directory, text)
    return run_suite("-m", "network", profile=profile, reports=directory / "reports", env=sandbox_env)


@pytest.fixture(scope="module")
def vpn_down_run(tmp_path_factory: pytest.TempPathFactory, sandbox_env: dict[str, str]) -> SuiteRun:
    from tests.conftest import run_suite

    directory = tmp_path_factory.mktemp("net-vpn")
    profile = write_profile(
        directory,
        """
platform: onprem
orchestrator: runai
timeouts: {connect: 1, request: 1}
network:
  vpn: the VPN
  endpoints:
    - {name: a, url: "https://gitlab.example.invalid/"}
    - {name: b, url: "ssh://gitlab.example.invalid:2222"}
    - {name: public, url: "https://public.example.invalid/", private: false}
""",
    )
    return run_suite("-m", "network", profile=profile, reports=directory / "reports", env=sandbox_env)


@pytest.mark.parametrize(("check_id", "endpoint"), PASSES)
def test_check_passes_on_a_healthy_endpoint(faults_run: SuiteRun, check_id: str, endpoint: str | None) -> None:
    record = faults_run.check(check_id, endpoint)  # NET-005: at least one private endpoint (healthy) answers
    assert record["outcome"] == "passed", record["message"]


@pytest.fixture
def runs(faults_run: SuiteRun, vpn_down_run: SuiteRun) -> dict[str, SuiteRun]:
    return {"faults": faults_run, "vpn-down": vpn_down_run}


@pytest.mark.parametrize(("check_id", "endpoint", "outcome", "words"), FAILS)
def test_check_fails_for_its_own_fault(
    runs: dict[str, SuiteRun], check_id: str, endpoint: str | None, outcome: str, words: str
) -> None:
    run = runs["vpn-down" if check_id == "NET-005" or endpoint == "a" else "faults"]
    record = run.check(check_id, endpoint)
    assert record["outcome"] == outcome
    assert words in record["message"]
    if outcome == "error":
        assert record["blocked_by"] == words.split()[2]
    else:
        assert record["remediation"]


def test_evidence_names_layers_timings_and_certificate(faults_run: SuiteRun) -> None:
    evidence: dict[str, Any] = faults_run.check("NET-003", "healthy")["evidence"]
    assert evidence["tls"].startswith("TLS")
    assert 80 <= evidence["certificate_days_left"] <= 90
    assert faults_run.check("NET-004", "healthy")["evidence"]["http_status"] == 200


def test_certificate_expiring_within_the_horizon_fails_with_its_date(faults_run: SuiteRun) -> None:
    record = faults_run.check("NET-003", "expiring")  # valid for 3 more days; the default horizon is 7
    assert record["outcome"] == "failed"
    assert "the certificate of localhost:" in record["message"]
    assert "expires on 20" in record["message"]
    assert "expiry horizon (7 days, expiry_horizon_days)" in record["message"]
    assert faults_run.check("NET-004", "expiring")["outcome"] == "passed"  # it still works today


def test_certificate_expiring_beyond_the_horizon_passes_with_a_warning(suite: Any, tmp_path: Path) -> None:
    profile = write_profile(
        tmp_path,
        """
platform: onprem
orchestrator: runai
expiry_horizon_days: 2
timeouts: {connect: 1, request: 2}
tls: {ca_bundle: "${SANDBOX_CA_BUNDLE}"}
network: {endpoints: [{name: expiring, url: "${SANDBOX_FAULT_EXPIRING_URL}"}]}
""",
    )
    run = suite("-m", "network", "-k", "tls", profile=profile)
    record = run.check("NET-003", "expiring")
    assert record["outcome"] == "passed"
    assert record["evidence"]["warning"].startswith("the certificate of localhost:")
    assert 2 < record["evidence"]["days_left"] <= 3
    assert "NET-003: the certificate of localhost:" in run.output


def test_a_hung_endpoint_costs_one_timeout_not_one_per_check(faults_run: SuiteRun) -> None:
    hung = [c for c in faults_run.results["checks"] if c["nodeid"].endswith("[hung]")]
    assert sum(c["duration_s"] for c in hung) < 2.5  # the probe ran once, bounded by connect + request
    assert faults_run.results["duration_s"] < 1 + 1.5 + 2


def test_vpn_heuristic_ignores_public_endpoints_and_says_it_is_a_heuristic(vpn_down_run: SuiteRun) -> None:
    record = vpn_down_run.check("NET-005")
    assert "at least one of the 2 private endpoints answers on the network" in record["message"]
    assert "none of a, b does" in record["message"]
    assert "(a heuristic)" in record["message"]
    assert "folded under this one" in record["message"]
    # the private endpoints' failures are folded under it; the public one still fails on its own
    for endpoint in ("a", "b"):
        assert vpn_down_run.check("NET-001", endpoint)["blocked_by"] == "NET-005"
    public = vpn_down_run.check("NET-001", "public")
    assert public["outcome"] == "failed"
    assert "public.example.invalid does not resolve" in public["message"]


def test_ssh_endpoint_is_greeted_with_its_banner(faults_run: SuiteRun) -> None:
    evidence = faults_run.check("NET-004", "ssh")["evidence"]
    assert evidence["ssh_banner"].startswith("SSH-2.0-")
    assert faults_run.check("NET-003", "ssh")["outcome"] == "skipped"


def test_insecure_profile_accepts_an_unknown_ca_and_says_so(suite: Any, tmp_path: Path) -> None:
    profile = write_profile(
        tmp_path,
        """
platform: onprem
orchestrator: runai
timeouts: {connect: 1, request: 2}
tls: {insecure: true}
network: {endpoints: [{name: unknown-ca, url: "${SANDBOX_FAULT_UNKNOWN_CA_URL}"}]}
""",
    )
    run = suite("-m", "network", "-k", "tls", profile=profile)
    record = run.check("NET-003", "unknown-ca")
    assert record["outcome"] == "passed"
    assert "NOT VERIFIED (tls.insecure)" in record["evidence"]["tls"]


def test_trust_comes_from_the_profile_not_from_ca_variables(suite: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    run = suite("-m", "network", profile="sandbox", env=dict.fromkeys(CA_VARIABLES, str(empty)))
    assert run.rc == 0, run.output
    assert run.check("NET-003", "web-https")["outcome"] == "passed"


def test_onprem_template_with_unreachable_hosts_finishes_within_connect_plus_3s(suite: Any, tmp_path: Path) -> None:
    text = (REPO / "profiles" / "onprem-runai.yaml").read_text()
    for real in ("aisingapore.net", "nus.edu.sg", "run.ai"):
        text = text.replace(real, f"{real.split('.')[0]}.invalid")
    profile = write_profile(tmp_path, text)
    run = suite("-m", "onprem and runai", profile=profile)
    assert run.rc == 1
    assert run.seconds < 5 + 3
    assert "Traceback" not in run.output
    checks = run.results["checks"]
    vpn = run.check("NET-005")
    assert vpn["outcome"] == "failed"
    assert "fails the same way at DNS: no DNS" in vpn["message"]
    dns = [c for c in checks if c["id"] == "NET-001"]
    assert len(dns) >= 8  # every endpoint the profile names, and more (the kubeconfig's server when it has one)
    # one root cause, one failure: every private endpoint's DNS failure is folded under NET-005
    assert all(c["blocked_by"] == "NET-005" or c["blocked_by"].startswith("NET-001[") for c in dns if c["blocked_by"])
    assert not [c["nodeid"] for c in dns if c["outcome"] == "failed" and "private" in c["message"]]
    later = [c for c in checks if c["id"] in ("NET-002", "NET-003", "NET-004")]
    assert {c["outcome"] for c in later} <= {"error", "skipped"}  # blocked, or not TLS/HTTP
    assert all(str(c["blocked_by"]).startswith("NET-") for c in later if c["outcome"] == "error")


def test_a_check_blocked_by_its_endpoint_names_that_endpoints_net_check_and_the_verdict_folds_it_there(
    tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """MLF-001 talks to MLflow only: blocked by NET-002[mlflow], not by any NET-002, and folded under it."""
    from tests.conftest import run_suite
    from tests.test_graph import variant

    env = variant(sandbox_env, {"SANDBOX_MLFLOW_URI": sandbox_env["SANDBOX_FAULT_REFUSED_URL"]}, tmp_path)
    run = run_suite(
        "conformance/components/test_network.py",
        "conformance/components/test_mlflow.py",
        profile="sandbox",
        reports=tmp_path / "reports",
        env=env,
    )
    refused = run.check("NET-002", "mlflow")
    assert refused["outcome"] == "failed"
    assert "TCP: connection to 127.0.0.1:" in refused["message"]
    server = run.check("MLF-001")
    assert server["outcome"] == "error"
    assert server["blocked_by"] == "NET-002[mlflow]"
    assert server["message"].startswith("blocked by NET-002[mlflow] (localhost: TCP: connection to 127.0.0.1:")
    assert run.check("NET-002", "gitlab")["outcome"] == "passed"  # the other endpoints' NET-002 are not its cause
    assert "root cause 1: NET-002[mlflow]" in run.output


# --------------------------------------------------------------------------- the OpenID issuer a login renews at


def test_the_issuer_is_read_from_the_oidc_auth_provider_or_an_exec_plugins_argument() -> None:
    from conformance.clients.network import oidc_issuer

    issuer = "https://sso.example/auth/realms/runai"
    assert oidc_issuer({"auth-provider": {"name": "oidc", "config": {"idp-issuer-url": issuer}}}) == issuer
    kubelogin = {"exec": {"command": "kubectl", "args": ["oidc-login", "get-token", f"--oidc-issuer-url={issuer}"]}}
    assert oidc_issuer(kubelogin) == issuer
    assert oidc_issuer(
        {"exec": {"command": "runai", "args": ["kubeconfig", "token", "--oidc-issuer-url", issuer]}}
    ) == (issuer)
    assert oidc_issuer({"auth-provider": {"name": "oidc", "config": {"idp-issuer-url": "http://sso.example"}}}) is None
    assert oidc_issuer({"token": "t"}) is None


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (200, b'{"issuer": "https://sso.example/auth/realms/runai", "token_endpoint": "x"}', None),
        (200, b'{"issuer": "https://sso.example/auth/realms/runai/"}', None),  # a trailing slash aside
        (404, b"{}", "not the discovery document (200)"),
        (200, b"<html>login</html>", "not JSON"),
        (200, b'{"token_endpoint": "x"}', "a document without an issuer"),
        (
            200,
            b'{"issuer": "https://other.example/realms/x"}',
            "issuer 'https://other.example/realms/x', not 'https://sso.example/auth/realms/runai'",
        ),
    ],
)
def test_the_issuers_greeting_is_its_discovery_document_naming_itself(
    status: int, body: bytes, problem: str | None
) -> None:
    from conformance.clients.network import DISCOVERY, discovery_problem
    from conformance.profile import Endpoint

    endpoint = Endpoint(name="oidc-issuer", url=f"https://sso.example/auth/realms/runai{DISCOVERY}")
    assert discovery_problem(endpoint, status, body) == problem


def _issuer_refused(sandbox_env: dict[str, str], kubeconfig: str, directory: Path) -> dict[str, str]:
    """A copy of ``kubeconfig`` whose oidc issuer is a port where nothing listens."""
    import yaml

    from conformance.clients.network import oidc_issuer
    from tests.test_graph import variant

    text = Path(sandbox_env[kubeconfig]).read_text()
    users = yaml.safe_load(text)["users"]
    issuer = next(i for u in users if (i := oidc_issuer(u["user"])))
    refused = sandbox_env["SANDBOX_FAULT_REFUSED_URL"].rstrip("/")
    moved = directory / "kubeconfig"
    moved.write_text(text.replace(issuer.split("/auth/")[0], refused))
    moved.chmod(0o600)
    return variant(sandbox_env, {"SANDBOX_KUBECONFIG": str(moved)}, directory)


def test_a_login_that_must_be_renewed_is_blocked_by_its_issuers_probe(
    tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """The id-token has expired: K8S-005 would ask the issuer first, which refuses connections. One failure,
    NET-002[oidc-issuer]; K8S-005 and what stands on it are blocked by it."""
    from tests.conftest import run_suite

    env = _issuer_refused(sandbox_env, "SANDBOX_KUBECONFIG_REFRESHABLE", tmp_path)
    run = run_suite(
        "conformance/components/test_network.py",
        "conformance/components/test_kubernetes.py",
        "-m",
        "not writes",
        profile="sandbox",
        reports=tmp_path / "reports",
        env=env,
    )
    issuer = run.check("NET-002", "oidc-issuer")
    assert issuer["outcome"] == "failed"
    assert "TCP: connection to 127.0.0.1:" in issuer["message"]
    credential = run.check("K8S-005")
    assert credential["blocked_by"] == "NET-002[oidc-issuer]"
    assert credential["message"].startswith("blocked by NET-002[oidc-issuer] (localhost: TCP: connection to")
    assert run.check("K8S-006")["blocked_by"] == "NET-002[oidc-issuer]"
    assert "root cause 1: NET-002[oidc-issuer]" in run.output


def test_a_login_still_valid_does_not_wait_on_its_issuer(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    """The same issuer down, but the id-token is valid for 20 days: nothing renews, K8S-005 and K8S-006 pass."""
    from tests.conftest import run_suite

    env = _issuer_refused(sandbox_env, "SANDBOX_KUBECONFIG", tmp_path)
    run = run_suite(
        "conformance/components/test_network.py",
        "conformance/components/test_kubernetes.py",
        "-m",
        "not writes",
        profile="sandbox",
        reports=tmp_path / "reports",
        env=env,
    )
    assert run.check("NET-002", "oidc-issuer")["outcome"] == "failed"
    assert run.check("K8S-005")["outcome"] == "passed", run.check("K8S-005")["message"]
    assert run.check("K8S-006")["outcome"] == "passed"


def test_the_sandbox_issuer_answers_its_discovery_document(sandbox_env: dict[str, str]) -> None:
    from conformance.clients.network import endpoints_of, probe_all
    from conformance.session import open_profile

    loaded = open_profile(REPO / "profiles" / "sandbox.yaml", dict(sandbox_env))
    endpoints, contexts = endpoints_of(loaded.profile)
    issuer = next(e for e in endpoints if e.name == "oidc-issuer")
    assert issuer.url.endswith("/.well-known/openid-configuration")
    found = probe_all([issuer], loaded.profile.timeouts, loaded.profile.tls, contexts)["oidc-issuer"]
    assert found.layers["app"].ok, found.layers["app"].detail
    assert found.evidence["oidc_issuer"] == issuer.url.removesuffix("/.well-known/openid-configuration")
