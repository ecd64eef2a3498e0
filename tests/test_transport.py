"""One trust and one proxy decision for the clients (conformance/transport.py).

Unit tests of the rules, then the registry client through a real CONNECT proxy on loopback: the
request goes through it when HTTPS_PROXY says so and straight past it when NO_PROXY names the host.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import transport
from conformance.checks import CannotEvaluate
from conformance.clients import registry
from conformance.profile import TLS, Profile, Timeouts
from conformance.sandbox.web import HungPort, WebServer, free_port


@pytest.mark.parametrize("name", transport.CA_VARIABLES)
def test_trust_never_comes_from_the_environment(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    planted = tmp_path / "planted.pem"
    planted.write_text("x")
    monkeypatch.setenv(name, str(planted))
    assert transport.verify(TLS()) == (transport.system_store() or True)
    assert str(planted) != transport.system_store()
    bundle = tmp_path / "profile.pem"
    bundle.write_text("x")
    assert transport.verify(TLS(ca_bundle=bundle)) == str(bundle)
    assert transport.verify(TLS(insecure=True)) is False


PROXY = "http://proxy.corp:3128"


@pytest.mark.parametrize(
    ("url", "environ", "expected"),
    [
        ("https://harbor.example/v2/", {"HTTPS_PROXY": PROXY}, {"https": PROXY}),
        ("https://harbor.example/v2/", {"https_proxy": PROXY, "HTTPS_PROXY": "http://other:1"}, {"https": PROXY}),
        ("https://harbor.example/v2/", {"HTTPS_PROXY": "proxy.corp:3128"}, {"https": PROXY}),
        ("http://harbor.example/v2/", {"HTTPS_PROXY": PROXY}, {}),  # http URLs use HTTP_PROXY
        ("http://harbor.example/v2/", {"HTTP_PROXY": PROXY}, {"http": PROXY}),
        (
            "https://harbor.example/v2/",
            {"HTTPS_PROXY": PROXY, "NO_PROXY": "ample"},
            {"https": PROXY},
        ),  # whole labels only
        ("https://harbor.example/v2/", {"HTTPS_PROXY": PROXY, "NO_PROXY": "example.com, harbor.example"}, {}),
        ("https://a.harbor.example/", {"HTTPS_PROXY": PROXY, "no_proxy": ".harbor.example"}, {}),
        ("https://a.harbor.example/", {"HTTPS_PROXY": PROXY, "no_proxy": "harbor.example"}, {}),
        ("https://a.harbor.example/", {"HTTPS_PROXY": PROXY, "no_proxy": "*.harbor.example"}, {}),
        ("https://harbor.example/", {"HTTPS_PROXY": PROXY, "NO_PROXY": "harbor.example:443"}, {}),
        ("https://harbor.example:8443/", {"HTTPS_PROXY": PROXY, "NO_PROXY": "harbor.example:443"}, {"https": PROXY}),
        ("https://10.1.2.3/", {"HTTPS_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8"}, {}),
        ("https://192.168.1.1/", {"HTTPS_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8"}, {"https": PROXY}),
        ("https://anything/", {"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, {}),
        ("https://localhost:5000/", {"HTTPS_PROXY": PROXY}, {}),  # as Go's httpproxy: never for loopback
        ("https://127.0.0.1:5000/", {"HTTPS_PROXY": PROXY}, {}),
        ("https://[::1]:5000/", {"HTTPS_PROXY": PROXY}, {}),
        ("https://harbor.example/", {}, {}),
    ],
)
def test_proxy_rules(url: str, environ: dict[str, str], expected: dict[str, str]) -> None:
    assert transport.proxies_for(url, environ) == expected


# --------------------------------------------------------------------------- a real proxy


class _Tunnel(socketserver.BaseRequestHandler):
    """HTTP CONNECT, as corporate proxies do; any host name is connected to on loopback."""

    server: _Proxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target = head.split(b" ", 2)[:2]
        host, _, port = target.decode().rpartition(":")
        self.server.seen.append(f"{method.decode()} {host}:{port}")
        upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        sockets = [self.request, upstream]
        while True:
            ready, _, _ = select.select(sockets, [], [], 10)
            if not ready:
                break
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if sock is self.request else self.request).sendall(data)


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.seen: list[str] = []


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client(sandbox_env: dict[str, str], host: str) -> registry.RegistryClient:
    """A registry client for the sandbox's token front, under a host name only the proxy resolves."""
    port = sandbox_env["SANDBOX_REGISTRY_TOKEN_HOST"].rpartition(":")[2]
    profile = Profile.model_validate(
        {
            "platform": "onprem",
            "orchestrator": "runai",
            "timeouts": {"connect": 2, "request": 5},
            "tls": {"insecure": True},  # the sandbox's certificate names localhost, not the proxy-only name
            "registry": {"url": f"https://{host}:{port}", "project_path": f"{host}:{port}/mlops/x"},
        }
    )
    assert profile.registry is not None
    return registry.RegistryClient(profile.registry, profile, "run", registry.Credentials(host))


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_the_registry_client_goes_through_https_proxy(
    proxy: _Proxy, sandbox_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    login = _client(sandbox_env, "registry.proxy-only.test").login()
    assert login.replies[0].status == 401  # the front's challenge came back, through the tunnel
    port = sandbox_env["SANDBOX_REGISTRY_TOKEN_HOST"].rpartition(":")[2]
    assert proxy.seen[0] == f"CONNECT registry.proxy-only.test:{port}"


def test_no_proxy_sends_the_registry_client_direct(
    proxy: _Proxy, sandbox_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "proxy-only.test")
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(CannotEvaluate, match=r"no answer to GET /v2/ from registry.proxy-only.test:\d+ \(dns: "):
        _client(sandbox_env, "registry.proxy-only.test").login()  # direct: the name does not resolve
    assert proxy.seen == []


def test_pinned_sessions_take_trust_and_proxies_from_transport(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What requests would take from REQUESTS_CA_BUNDLE and its own proxy rules is replaced, per URL."""
    import requests

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/planted.pem")
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", "internal.example")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    session = transport.pinned_session(requests.Session, TLS(ca_bundle=bundle))()
    outside = session.merge_environment_settings("https://gitlab.example/api/v4/user", {}, False, True, None)
    assert (outside["verify"], outside["proxies"]) == (str(bundle), {"https": PROXY})
    inside = session.merge_environment_settings("https://git.internal.example/", {}, False, None, None)
    assert (inside["verify"], inside["proxies"]) == (str(bundle), {})
    local = session.merge_environment_settings("https://localhost:8443/", {}, False, True, None)
    assert local["proxies"] == {}  # requests itself would proxy localhost


# ---- one Answer, one no-answer rule (loopback servers)

FAST = Timeouts(connect=1, request=1)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[Path, Path]]:
    from conformance.sandbox.pki import Authority

    ca, folder = Authority.create("transport-test CA"), tmp_path_factory.mktemp("pki")
    (folder / "ca.pem").write_bytes(ca.pem())
    return folder / "ca.pem", ca.issue(folder, "server")


def test_an_answer_is_an_answer_whatever_its_status(authority: tuple[Path, tuple[Path, Path]]) -> None:
    bundle, cert = authority
    server = WebServer(503, cert)
    try:
        answer = transport.request(
            "GET", f"https://user:pw@localhost:{server.port}/x?token=s", TLS(ca_bundle=bundle), FAST
        )
    finally:
        server.stop()
    assert (answer.status, answer.headers["content-type"], answer.body) == (503, "text/plain", "service unavailable\n")
    assert answer.url == f"https://localhost:{server.port}/x"  # no user, no query: nothing secret
    assert 0 < answer.elapsed < 1
    assert transport.Answer(200, {}, b'{"a": [1]}', "u", 0).body == {"a": [1]}


def _no_answer(url: str) -> str:
    with pytest.raises(CannotEvaluate) as raised:
        transport.request("GET", url, TLS(), FAST)
    assert raised.value.hint == "the NET checks test this endpoint layer by layer"
    return raised.value.reason


def test_refused_is_no_answer_at_the_tcp_layer() -> None:
    port = free_port()
    message = _no_answer(f"http://127.0.0.1:{port}/v2/")
    assert message == f"no answer to GET /v2/ from 127.0.0.1:{port} (tcp: connection refused; timeout 1 s)"


def test_silence_past_the_timeout_is_no_answer_at_the_http_layer() -> None:
    hung = HungPort()
    try:
        message = _no_answer(f"http://127.0.0.1:{hung.port}/health")
    finally:
        hung.stop()
    assert message == f"no answer to GET /health from 127.0.0.1:{hung.port} (http: no response in time; timeout 1 s)"


def test_an_unknown_name_is_no_answer_at_the_dns_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "nowhere.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)  # no resolver on loopback can be made to say "no such name"
    message = _no_answer("https://nowhere.test/api")
    assert message == "no answer to GET /api from nowhere.test:443 (dns: the name does not resolve; timeout 1 s)"


def test_an_untrusted_certificate_is_no_answer_at_the_tls_layer(authority: tuple[Path, tuple[Path, Path]]) -> None:
    server = WebServer(200, authority[1])
    try:
        message = _no_answer(f"https://localhost:{server.port}/")  # the system store does not know the test CA
    finally:
        server.stop()
    assert message.startswith(
        f"no answer to GET / from localhost:{server.port} (tls: unable to get local issuer certificate"
    )
    assert message.endswith("; timeout 1 s)")


def test_sdk_exceptions_map_to_the_same_layers() -> None:
    """What boto3, python-gitlab, kubernetes and google-auth raise wraps the same socket errors."""
    import botocore.exceptions  # type: ignore[import-untyped] # botocore ships no stubs
    import urllib3.exceptions

    refused = urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(None, "refused"))  # type: ignore[arg-type] # urllib3 wants a pool, any object does
    refused.reason.__cause__ = ConnectionRefusedError(111, "Connection refused")  # type: ignore[union-attr] # set just above
    assert transport.layer(refused) == ("tcp", "connection refused")
    assert transport.layer(botocore.exceptions.ConnectTimeoutError(endpoint_url="https://s3.test")) == (
        "tcp",
        "connect timed out",
    )
    assert transport.layer(botocore.exceptions.ReadTimeoutError(endpoint_url="https://s3.test"))[0] == "http"
    assert transport.quote("x" * 500) == "x" * (transport.QUOTE - 3) + "..."


def _every_client(port: int, tmp_path: Path) -> dict[str, Any]:
    """One call of each client's that asks a server, every server at a refused loopback port."""
    from conformance.clients import gcp, gitlab, kubernetes, mlflow, object_storage
    from conformance.secrets import Secret

    url = f"http://127.0.0.1:{port}"
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = a\naws_secret_access_key = b\n")
    (tmp_path / "credentials").chmod(0o600)
    kubeconfig = tmp_path / "kubeconfig"
    cluster = {"name": "c", "cluster": {"server": url}}
    kubeconfig.write_text(
        f"apiVersion: v1\nkind: Config\nclusters: [{cluster}]\nusers: [{{name: u, user: {{token: t}}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    profile = Profile.model_validate(
        {
            "platform": "onprem",
            "orchestrator": "runai",
            "timeouts": {"connect": 1, "request": 1},
            "gitlab": {"url": url, "project": "g/p"},
            "object_storage": {
                "kind": "s3",
                "endpoint_url": url,
                "bucket": "bucket",
                "credentials_file": str(tmp_path / "credentials"),
            },
            "mlflow": {"tracking_uri": url, "experiment": "e"},
            "gcp": {"project": "my-project", "resource_manager_url": url},
            "kubernetes": {"kubeconfig": str(kubeconfig), "namespace": "n"},
        }
    )
    project = gcp.connect(profile, "run")
    project._token = lambda: (Secret("t", "test"), "test")  # type: ignore[method-assign] # no token grant
    lab = gitlab.connect(profile, "run")
    lab.token = Secret("t", "test")
    assert profile.object_storage is not None
    return {
        "GET /v1/projects/my-project": lambda: project.get_project("my-project"),
        "GET /api/v4/user": lab.current_user,
        "ListBuckets": object_storage.open_store(profile.object_storage, profile.timeouts, profile.tls).list_buckets,
        "GET /health": mlflow.connect(profile, "run").health,
        "get_code": lambda: kubernetes.connect(profile, "run").version(),
    }


@pytest.mark.parametrize(
    "what", ["GET /v1/projects/my-project", "GET /api/v4/user", "ListBuckets", "GET /health", "get_code"]
)
def test_every_client_raises_the_same_no_answer(what: str, tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(CannotEvaluate) as raised:
        _every_client(port, tmp_path)[what]()
    assert raised.value.reason == f"no answer to {what} from 127.0.0.1:{port} (tcp: connection refused; timeout 1 s)"
