"""Reach an endpoint layer by layer: DNS, TCP, TLS, HTTP. Reports; never asserts.

Every endpoint of a profile is probed once, all at the same time, and the
result is cached for the session. A probe never takes longer than
``connect + request`` seconds, whatever hangs.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.checks import Deadline
from conformance.profile import TLS, Endpoint, Timeouts

LAYERS = ("dns", "tcp", "tls", "http")
USER_AGENT = "conformance-suite"


@dataclass
class Layer:
    name: str
    ok: bool | None = None  # None: not attempted (an earlier layer failed) or not applicable
    detail: str = ""
    duration_s: float = 0.0


@dataclass
class Probe:
    endpoint: Endpoint
    layers: dict[str, Layer] = field(default_factory=lambda: {n: Layer(n) for n in LAYERS})
    addresses: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def failure(self) -> Layer | None:
        """The first layer that failed, if any."""
        return next((layer for layer in self.layers.values() if layer.ok is False), None)


def tls_context(tls: TLS) -> ssl.SSLContext:
    """The one TLS trust of a run: the profile's CA bundle, else the system store."""
    if tls.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if tls.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(tls.ca_bundle))
    return ssl.create_default_context()


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
    if not endpoint.uses_http:
        layers["http"].detail = f"not applicable: {endpoint.scheme}:// is not HTTP"

    def timed(layer: Layer, started: float, ok: bool, detail: str) -> None:
        layer.ok, layer.detail, layer.duration_s = ok, detail, round(time.monotonic() - started, 4)

    # DNS
    started = time.monotonic()
    try:
        result.addresses = _resolve(host, port, deadline.left(timeouts.connect))
    except (TimeoutError, LookupError) as exc:
        timed(layers["dns"], started, False, f"DNS: {exc}")
        return result
    timed(layers["dns"], started, True, f"{host} -> {', '.join(result.addresses)}")

    # TCP
    address = result.addresses[0]
    started = time.monotonic()
    connect_timeout = deadline.left(timeouts.connect)
    try:
        sock = socket.create_connection((address, port), timeout=connect_timeout)
    except TimeoutError:
        timed(layers["tcp"], started, False, f"TCP: connect to {address}:{port} timed out after {connect_timeout:g} s")
        return result
    except ConnectionRefusedError:
        timed(layers["tcp"], started, False, f"TCP: connection to {address}:{port} refused")
        return result
    except OSError as exc:
        timed(layers["tcp"], started, False, f"TCP: connect to {address}:{port} failed ({exc.strerror or exc})")
        return result
    timed(layers["tcp"], started, True, f"connected to {address}:{port}")

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
                timed(layers["tls"], started, False, detail)
                return result
            except ssl.SSLError as exc:
                timed(layers["tls"], started, False, f"TLS: {_tls_failure(exc, host)}")
                return result
            except OSError as exc:
                timed(layers["tls"], started, False, f"TLS: connection closed during handshake ({exc.strerror or exc})")
                return result
            conn_sock = tls_sock
            cert = tls_sock.getpeercert() or {}
            detail = f"{tls_sock.version()}"
            if "notAfter" in cert:
                days = int((ssl.cert_time_to_seconds(str(cert["notAfter"])) - time.time()) // 86400)
                result.evidence["certificate_days_left"] = days
                result.evidence["certificate_not_after"] = cert["notAfter"]
                detail += f", certificate valid for {days} more days"
            if ctx.verify_mode == ssl.CERT_NONE:
                detail += ", NOT VERIFIED (tls.insecure)"
            result.evidence["tls_version"] = tls_sock.version()
            timed(layers["tls"], started, True, detail)

        if endpoint.uses_http:
            started = time.monotonic()
            http_timeout = deadline.left(timeouts.request)
            conn_sock.settimeout(http_timeout)
            conn = http.client.HTTPConnection(host, port, timeout=http_timeout)
            conn.sock = conn_sock
            path = endpoint.path
            try:
                conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Connection": "close"})
                response = conn.getresponse()
                response.read(4096)
            except TimeoutError:
                timed(layers["http"], started, False, f"HTTP: no answer to GET {path} within {http_timeout:g} s")
                return result
            except (http.client.HTTPException, OSError) as exc:
                timed(layers["http"], started, False, f"HTTP: GET {path} failed ({type(exc).__name__}: {exc})")
                return result
            status = f"{response.status} {response.reason}".strip()
            result.evidence["http_status"] = response.status
            server = response.getheader("Server")
            if server:
                result.evidence["server"] = server[:80]
            timed(layers["http"], started, response.status < 500, f"HTTP: GET {path} answered {status}")
    finally:
        sock.close()
    return result


def probe_all(endpoints: Iterable[Endpoint], timeouts: Timeouts, tls: TLS) -> dict[str, Probe]:
    """Probe every endpoint at once; returns when the slowest is done or timed out."""
    endpoints = list(endpoints)
    ctx = tls_context(tls)
    results: dict[str, Probe] = {}
    lock = threading.Lock()

    def run(endpoint: Endpoint) -> None:
        outcome = probe(endpoint, timeouts, ctx)
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
            stuck.layers["dns"] = Layer("dns", False, "probe did not finish within its time bound")
            results[endpoint.name] = stuck
    return results
