"""Reach an endpoint layer by layer: DNS, TCP, TLS, then the service's greeting. Reports; never asserts.

Every endpoint any check will contact (:func:`endpoints_of`: the profile's, plus the API server
of the kubeconfig, the OpenID issuer its login renews at, the GCP key's token and IAM endpoints, and
the artifact store MLflow's S3 client is pointed at) is probed once, all at
the same time, and the result is cached for the session. A probe climbs to the highest layer
testable without credentials: DNS, TCP, TLS, then the application's own greeting (the HTTP
status, the SSH banner, the API server's ``/version``, an OpenID issuer's discovery document with
its ``issuer``). It never takes longer than
``connect + request`` seconds, whatever hangs.

Each failed layer says how it failed (:data:`MODES`); when every private endpoint fails the
same network way (no DNS, refused, dropped, or accepted and silent), the VPN is probably down.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import files, locate, transport
from conformance.checks import Deadline
from conformance.graph import GCP_IAM, GCP_OAUTH, KUBERNETES_API, MLFLOW_ARTIFACTS, OIDC_ISSUER
from conformance.profile import GCP_IAM as GOOGLE_IAM
from conformance.profile import TLS, Endpoint, Profile, Timeouts

LAYERS = ("dns", "tcp", "tls", "app")
DISCOVERY = "/.well-known/openid-configuration"  # OpenID Connect Discovery 1.0, section 4: the issuer's greeting
GOOGLE_OAUTH = "https://oauth2.googleapis.com/"  # Google's own token endpoint: public, no VPN
USER_AGENT = "conformance-suite"
# How a layer failed. The first five are the network's (what a VPN that is down looks like);
# "tls" (a certificate refused) and "status" (a 5xx) are answers from the service itself.
MODES = {
    "dns": "no DNS",
    "refused": "refused",
    "dropped": "connect timed out",
    "unreachable": "no route",
    "silent": "accepted and silent",
    "tls": "certificate refused",
    "status": "service failing",
}
NETWORK_MODES = ("dns", "refused", "dropped", "unreachable", "silent")


@dataclass
class Layer:
    name: str
    ok: bool | None = None  # None: not attempted (an earlier layer failed) or not applicable
    detail: str = ""
    duration_s: float = 0.0
    mode: str | None = None  # how it failed (a key of MODES); None when it did not


@dataclass
class Probe:
    endpoint: Endpoint
    layers: dict[str, Layer] = field(default_factory=lambda: {n: Layer(n) for n in LAYERS})
    addresses: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def failure(self) -> Layer | None:
        """The first layer that failed, if any."""
        return next((layer for layer in self.layers.values() if layer.ok is False), None)

    @property
    def network_failure(self) -> Layer | None:
        """The failed layer, when the network (not the service) failed."""
        failed = self.failure()
        return failed if failed is not None and failed.mode in NETWORK_MODES else None


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """getaddrinfo bounded by ``timeout`` (it has no timeout of its own)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"dns-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"lookup timed out after {timeout:g} s")
    if "error" in box:
        exc = box["error"]
        reason = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc)
        raise LookupError(f"{host} does not resolve ({reason})")
    # IPv4 first: most VPN set-ups route only IPv4.
    addrs = [str(info[4][0]) for info in box["infos"]]
    return sorted(dict.fromkeys(addrs), key=lambda a: ":" in a)


def _tls_failure(exc: ssl.SSLError, host: str) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        message = exc.verify_message or str(exc)
        if code in (2, 19, 20, 21):  # unable to get issuer / self-signed chain / local issuer / leaf
            return f"certificate signed by an unknown authority ({message})"
        if code == 10:
            return "certificate has expired"
        if code == 9:
            return "certificate is not yet valid"
        if code == 62 or "hostname" in message.lower() or "ip address mismatch" in message.lower():
            return f"certificate is not valid for {host} ({message})"
        return f"certificate verification failed ({message})"
    return f"handshake failed ({exc.reason or exc})"


def probe(endpoint: Endpoint, timeouts: Timeouts, ctx: ssl.SSLContext) -> Probe:
    """Walk the layers in order; stop at the first that fails."""
    result = Probe(endpoint)
    layers = result.layers
    deadline = Deadline.after(timeouts.connect + timeouts.request)
    host, port = endpoint.host, endpoint.port
    if not endpoint.uses_tls:
        layers["tls"].detail = f"not applicable: {endpoint.scheme}:// has no TLS"
    if endpoint.scheme == "tcp":
        layers["app"].detail = "not applicable: tcp:// is a bare port with no service protocol to greet"

    # DNS
    started = time.monotonic()
    try:
        result.addresses = _resolve(host, port, deadline.left(timeouts.connect))
    except (TimeoutError, LookupError) as exc:
        _set(layers["dns"], started, False, f"DNS: {exc}", "dns")
        return result
    _set(layers["dns"], started, True, f"{host} -> {', '.join(result.addresses)}")

    # TCP
    address = result.addresses[0]
    started = time.monotonic()
    connect_timeout = deadline.left(timeouts.connect)
    try:
        sock = socket.create_connection((address, port), timeout=connect_timeout)
    except TimeoutError:
        detail = f"TCP: connect to {address}:{port} timed out after {connect_timeout:g} s"
        _set(layers["tcp"], started, False, detail, "dropped")
        return result
    except ConnectionRefusedError:
        _set(layers["tcp"], started, False, f"TCP: connection to {address}:{port} refused", "refused")
        return result
    except OSError as exc:
        detail = f"TCP: connect to {address}:{port} failed ({exc.strerror or exc})"
        _set(layers["tcp"], started, False, detail, "unreachable")
        return result
    _set(layers["tcp"], started, True, f"connected to {address}:{port}")

    try:
        conn_sock: socket.socket = sock
        if endpoint.uses_tls:
            started = time.monotonic()
            tls_timeout = deadline.left(timeouts.request)
            sock.settimeout(tls_timeout)
            try:
                tls_sock = ctx.wrap_socket(sock, server_hostname=host)
            except TimeoutError:
                detail = f"TLS: no handshake answer from {host}:{port} within {tls_timeout:g} s"
                _set(layers["tls"], started, False, detail, "silent")
                return result
            except ssl.SSLError as exc:
                _set(layers["tls"], started, False, f"TLS: {_tls_failure(exc, host)}", "tls")
                return result
            except OSError as exc:
                detail = f"TLS: connection closed during handshake ({exc.strerror or exc})"
                _set(layers["tls"], started, False, detail, "tls")
                return result
            conn_sock = tls_sock
            cert = tls_sock.getpeercert() or {}
            detail = f"{tls_sock.version()}"
            if "notAfter" in cert:
                seconds_left = ssl.cert_time_to_seconds(str(cert["notAfter"])) - time.time()
                days = int(seconds_left // 86400)
                result.evidence["certificate_days_left"] = days
                result.evidence["certificate_not_after"] = cert["notAfter"]
                detail += f", certificate valid for {days} more days"
            if ctx.verify_mode == ssl.CERT_NONE:
                detail += ", NOT VERIFIED (tls.insecure)"
            result.evidence["tls_version"] = tls_sock.version()
            _set(layers["tls"], started, True, detail)

        if endpoint.uses_http:
            _greet_http(endpoint, conn_sock, deadline.left(timeouts.request), result)
        elif endpoint.scheme == "ssh":
            _greet_ssh(endpoint, conn_sock, deadline.left(timeouts.request), result)
    finally:
        sock.close()
    return result


def _greet_http(endpoint: Endpoint, conn_sock: socket.socket, timeout: float, result: Probe) -> None:
    """GET the endpoint's path: any status below 500 is the service answering."""
    layer, started, path = result.layers["app"], time.monotonic(), endpoint.path
    conn_sock.settimeout(timeout)
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)
    conn.sock = conn_sock
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Connection": "close"})
        response = conn.getresponse()
        body = response.read(DISCOVERY_LIMIT if endpoint.path.endswith(DISCOVERY) else 4096)
    except TimeoutError:
        _set(layer, started, False, f"HTTP: no answer to GET {path} within {timeout:g} s", "silent")
        return
    except (http.client.HTTPException, OSError) as exc:
        _set(layer, started, False, f"HTTP: GET {path} failed ({type(exc).__name__}: {transport.quote(exc)})", "status")
        return
    status = f"{response.status} {response.reason}".strip()
    result.evidence["http_status"] = response.status
    server = response.getheader("Server")
    if server:
        result.evidence["server"] = server[:80]
    if endpoint.path.endswith(DISCOVERY) and response.status < 500:
        problem = discovery_problem(endpoint, response.status, body)
        if problem is not None:
            _set(layer, started, False, f"OIDC: GET {path} answered {status}, {problem}", "status")
            return
        result.evidence["oidc_issuer"] = endpoint.url.removesuffix(DISCOVERY)
    _set(layer, started, response.status < 500, f"HTTP: GET {path} answered {status}", "status")


DISCOVERY_LIMIT = 256 * 1024  # a Keycloak realm's discovery document is some 6 KB


def discovery_problem(endpoint: Endpoint, status: int, body: bytes) -> str | None:
    """What is wrong with an issuer's discovery answer (OpenID Connect Discovery 1.0, 4.2-4.3), or None.

    It must be 200 with a JSON object whose ``issuer`` is the issuer the URL was built from (a trailing slash
    aside): that is what a client renewing a login reads first.
    """
    if status != 200:
        return "not the discovery document (200)"
    try:
        document = json.loads(body)
    except ValueError:
        return "not JSON" if len(body) < DISCOVERY_LIMIT else f"more than {DISCOVERY_LIMIT} bytes"
    issuer = document.get("issuer") if isinstance(document, dict) else None
    if not isinstance(issuer, str) or not issuer:
        return "a document without an issuer"
    expected = endpoint.url.removesuffix(DISCOVERY)
    if issuer.rstrip("/") != expected.rstrip("/"):
        return f"issuer {issuer[:120]!r}, not {expected!r}"
    return None


def _greet_ssh(endpoint: Endpoint, conn_sock: socket.socket, timeout: float, result: Probe) -> None:
    """Read the server's identification line (RFC 4253 4.2: it sends ``SSH-2.0-...`` first)."""
    layer, started = result.layers["app"], time.monotonic()
    deadline = Deadline.after(timeout)
    received = b""
    try:
        while b"\n" not in received and len(received) < 1024:
            conn_sock.settimeout(max(deadline.left(), 0.001))
            chunk = conn_sock.recv(256)
            if not chunk:
                break
            received += chunk
    except TimeoutError:
        if not received:
            _set(
                layer,
                started,
                False,
                f"SSH: no banner from {endpoint.host}:{endpoint.port} within {timeout:g} s",
                "silent",
            )
            return
    except OSError as exc:
        _set(layer, started, False, f"SSH: connection closed before the banner ({exc.strerror or exc})", "status")
        return
    lines = received.decode("latin-1").splitlines()
    banner = next((line.strip() for line in lines if line.startswith("SSH-")), None)
    if banner is None:
        shown = received[:60].decode("latin-1", errors="replace").strip() or "nothing"
        _set(
            layer,
            started,
            False,
            f"SSH: {endpoint.host}:{endpoint.port} answered {shown!r}, not an SSH banner",
            "status",
        )
        return
    result.evidence["ssh_banner"] = banner[:80]
    _set(layer, started, True, f"SSH: banner {banner[:80]}")


def _set(layer: Layer, started: float, ok: bool, detail: str, mode: str | None = None) -> None:
    layer.ok, layer.detail, layer.duration_s = ok, detail, round(time.monotonic() - started, 4)
    layer.mode = None if ok else mode


def probe_all(
    endpoints: Iterable[Endpoint], timeouts: Timeouts, tls: TLS, contexts: Mapping[str, ssl.SSLContext] | None = None
) -> dict[str, Probe]:
    """Probe every endpoint at once; returns when the slowest is done or timed out.

    ``contexts`` gives an endpoint its own TLS trust (the API server: the kubeconfig's CA).
    """
    endpoints = list(endpoints)
    ctx = transport.ssl_context(tls)
    own = contexts or {}
    results: dict[str, Probe] = {}
    lock = threading.Lock()

    def run(endpoint: Endpoint) -> None:
        outcome = probe(endpoint, timeouts, own.get(endpoint.name, ctx))
        with lock:
            results[endpoint.name] = outcome

    workers = [threading.Thread(target=run, args=(e,), name=f"probe-{e.name}", daemon=True) for e in endpoints]
    for worker in workers:
        worker.start()
    # Each probe bounds itself; the extra second covers thread start-up.
    deadline = Deadline.after(timeouts.connect + timeouts.request + 1.0)
    for worker in workers:
        worker.join(deadline.left())
    for endpoint in endpoints:
        if endpoint.name not in results:
            stuck = Probe(endpoint)
            stuck.layers["dns"] = Layer("dns", False, "probe did not finish within its time bound", mode="silent")
            results[endpoint.name] = stuck
    return {e.name: results[e.name] for e in endpoints}  # in the profile's order, whichever finished first


# --------------------------------------------------------------------------- what to probe


def _kubeconfig(profile: Profile) -> Any:
    """The kubeconfig the kubernetes section selects, when it names a usable server (else None)."""
    if profile.kubernetes is None:
        return None
    from conformance.clients import kubernetes  # noqa: PLC0415 - reads YAML only; no SDK is imported

    found = kubernetes.find_kubeconfig(profile.kubernetes)
    if not found.usable or not found.server.startswith(("https://", "http://")):
        return None  # K8S-001/002 say why
    return found


def _kubernetes_endpoint(profile: Profile, kc: Any) -> Endpoint | None:
    try:
        return Endpoint(
            name=KUBERNETES_API, url=kc.server.rstrip("/") + "/version", private=profile.platform == "onprem"
        )
    except ValueError:  # a server URL the Endpoint type refuses: K8S-006 reports what the client makes of it
        return None


def _kubernetes_context(kc: Any, tls: TLS) -> ssl.SSLContext | None:
    """The trust kubectl would use for the API server: the kubeconfig's own CA, else the profile's."""
    if kc.insecure:
        return transport.ssl_context(TLS(insecure=True))
    data = kc.cluster.get("certificate-authority-data")
    try:
        if isinstance(data, str) and data:
            return ssl.create_default_context(cadata=base64.b64decode(data).decode("ascii"))
        path = kc.cluster.get("certificate-authority")
        if isinstance(path, str) and path:
            return ssl.create_default_context(cadata=files.read_text(Path(path), "certificate-authority"))
    except (ValueError, OSError, ssl.SSLError):  # unusable CA data: the probe then fails TLS with the profile's trust
        return None
    return None


def _gcp_token_endpoint(profile: Profile) -> Endpoint | None:
    """The token endpoint (``token_uri``) of the service-account key the GCP client signs in with."""
    if profile.gcp is None:
        return None
    key = locate.google_key(profile.gcp.key_file, "gcp.key_file", os.environ)  # the GCP client's key
    try:
        data = files.read_json_object(key[0], "service-account key") if key else None
        uri = data.get("token_uri") if isinstance(data, dict) else None
        if not isinstance(uri, str) or not uri.startswith("https://"):
            return None  # no key, or a malformed one: GCP-001/002 say why
        return Endpoint(name=GCP_OAUTH, url=uri, private=not uri.startswith(GOOGLE_OAUTH))
    except (OSError, ValueError):  # files.FileProblem is a ValueError: GCP-001/002 name the file's problem
        return None


def _gcp_iam_endpoint(profile: Profile) -> Endpoint | None:
    """The IAM API GCP-004 asks about the service-account key: only where a key is configured (GCP-004 skips else)."""
    if profile.gcp is None or _gcp_token_endpoint(profile) is None:
        return None
    url = profile.gcp.iam_url
    return Endpoint(name=GCP_IAM, url=url, private=url.rstrip("/") != GOOGLE_IAM)


def oidc_issuer(user: Any) -> str | None:
    """The OpenID issuer a kubeconfig user entry renews its login at: the oidc auth-provider's ``idp-issuer-url``,
    or an exec plugin's ``--oidc-issuer-url`` argument (kubelogin's ``get-token``, ``runai`` as exec plugin)."""
    if not isinstance(user, dict):
        return None
    provider = user.get("auth-provider")
    if isinstance(provider, dict) and provider.get("name") == "oidc" and isinstance(provider.get("config"), dict):
        found = provider["config"].get("idp-issuer-url")
        return found if isinstance(found, str) and found.startswith("https://") else None
    spec = user.get("exec")
    args = [str(a) for a in spec.get("args") or []] if isinstance(spec, dict) else []
    for i, arg in enumerate(args):
        value = arg.split("=", 1)[1] if arg.startswith("--oidc-issuer-url=") else None
        if arg == "--oidc-issuer-url" and i + 1 < len(args):
            value = args[i + 1]
        if value and value.startswith("https://"):
            return value
    return None


def _oidc_issuer_endpoint(profile: Profile, kc: Any) -> tuple[Endpoint, ssl.SSLContext | None] | None:
    """The issuer's discovery document, and the trust client-go gives it (the entry's idp-certificate-authority)."""
    issuer = oidc_issuer(kc.user)
    if issuer is None:
        return None
    try:
        endpoint = Endpoint(name=OIDC_ISSUER, url=issuer.rstrip("/") + DISCOVERY, private=profile.platform == "onprem")
    except ValueError:  # an issuer URL the Endpoint type refuses: K8S-005 says what renewing makes of it
        return None
    provider = kc.user.get("auth-provider")
    config = provider.get("config") if isinstance(provider, dict) else None
    config = config if isinstance(config, dict) else {}
    data, path = config.get("idp-certificate-authority-data"), config.get("idp-certificate-authority")
    try:
        if isinstance(data, str) and data:
            return endpoint, ssl.create_default_context(cadata=base64.b64decode(data).decode("ascii"))
        if isinstance(path, str) and path:
            return endpoint, ssl.create_default_context(cadata=files.read_text(Path(path), "idp-certificate-authority"))
    except (ValueError, OSError, ssl.SSLError):  # unusable CA data: the probe then fails TLS with the profile's trust
        return endpoint, None
    return endpoint, None


def endpoints_of(profile: Profile) -> tuple[list[Endpoint], dict[str, ssl.SSLContext]]:
    """Every endpoint any check will contact, and the TLS trust of those that bring their own."""
    found = list(profile.endpoints())
    contexts: dict[str, ssl.SSLContext] = {}
    names = {e.name for e in found}
    kc = _kubeconfig(profile)
    if kc is not None and KUBERNETES_API not in names:
        endpoint = _kubernetes_endpoint(profile, kc)
        if endpoint is not None:
            found.append(endpoint)
            context = _kubernetes_context(kc, profile.tls)
            if context is not None:
                contexts[KUBERNETES_API] = context
    issuer = _oidc_issuer_endpoint(profile, kc) if kc is not None and OIDC_ISSUER not in names else None
    if issuer is not None:
        found.append(issuer[0])
        if issuer[1] is not None:
            contexts[OIDC_ISSUER] = issuer[1]
    token = _gcp_token_endpoint(profile)
    if token is not None and GCP_OAUTH not in names:
        found.append(token)
    iam = _gcp_iam_endpoint(profile)
    if iam is not None and GCP_IAM not in names:
        found.append(iam)
    artifacts = os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    if profile.mlflow is not None and artifacts and MLFLOW_ARTIFACTS not in names:
        # The S3 endpoint MLflow's client uploads s3:// artifacts to; not a URL: MLF-005 says what is wrong.
        with contextlib.suppress(ValueError):
            found.append(Endpoint(name=MLFLOW_ARTIFACTS, url=artifacts))
    return found, contexts
