"""Trust, proxies, answers: one rule for every client that speaks HTTP(S). Standard library at import.

Trust (what a server certificate is checked against):

* ``tls.insecure: true`` in the profile: nothing (the report flags it);
* else the profile's ``tls.ca_bundle`` when it names one;
* else the system store as OpenSSL was built with it (``ssl.get_default_verify_paths().openssl_cafile``,
  then ``openssl_capath``; on Debian ``/usr/lib/ssl/cert.pem`` -> ``/etc/ssl/certs/ca-certificates.crt``);
  only where neither exists, the HTTP library's own default (certifi for ``requests``).

``SSL_CERT_FILE``, ``SSL_CERT_DIR``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` and ``AWS_CA_BUNDLE`` never
count: a run trusts what its profile says, so two machines with the same profile check the same thing,
and a variable one tool honours and another ignores cannot make one component pass and the next fail.

Proxies (where a request goes), as docker, kubectl, crane and the cloud SDKs do (Go's
``golang.org/x/net/http/httpproxy``): ``HTTPS_PROXY`` for https URLs, ``HTTP_PROXY`` for http URLs
(lower case wins over upper case, as curl has it), both bypassed for hosts ``NO_PROXY`` names: ``*``, a
host (``example.com`` also matches its subdomains, as does ``.example.com``), a ``host:port``, or an IP
range in CIDR form. ``localhost`` and loopback addresses never go through a proxy.

Answers: any status is an :class:`Answer`; no answer (DNS, TCP, TLS, silence) raises :func:`no_answer`'s
CannotEvaluate, ``no answer to <what> from <host:port> (<layer>: <detail>; timeout <s> s)``: :func:`request`
for requests-based clients, SDK-based clients map their SDK's exceptions through it. Quotes: :data:`QUOTE`.
"""

from __future__ import annotations

import http
import ipaddress
import json
import os
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.checks import CannotEvaluate
from conformance.profile import TLS, Timeouts

CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE")


def system_store() -> str | None:
    """The system trust store as OpenSSL was built with it (never the CA variables), or None."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.openssl_cafile, paths.openssl_capath):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def verify(tls: TLS) -> bool | str:
    """``verify=`` for requests-based clients: False, the profile's bundle, the system store, or True."""
    if tls.insecure:
        return False
    if tls.ca_bundle is not None:
        return str(tls.ca_bundle)
    return system_store() or True


def ssl_context(tls: TLS) -> ssl.SSLContext:
    """The same trust for code that opens TLS sockets itself: the profile's bundle, else the system store."""
    if tls.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if tls.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(tls.ca_bundle))
    store = system_store()
    if store is not None and os.path.isdir(store):
        return ssl.create_default_context(capath=store)
    return ssl.create_default_context(cafile=store)  # None: no system store found, OpenSSL's defaults


def _variable(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name.lower()) or environ.get(name.upper()) or "").strip()


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (or the loopback rule) sends a request for ``host:port`` direct."""
    host = host.lower().strip("[]")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        return True
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry and address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and (not entry_port.isdigit() or int(entry_port) != port):
            continue
        name = name.removeprefix("*").removeprefix(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def proxies_for(url: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``proxies=`` for requests: the proxy ``url`` goes through, or {} to go direct."""
    env = os.environ if environ is None else environ
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    proxy = _variable(env, f"{scheme}_proxy") if scheme in ("http", "https") else ""
    port = parts.port or (443 if scheme == "https" else 80)
    if not proxy or _bypassed(parts.hostname or "", port, _variable(env, "no_proxy")):
        return {}
    return {scheme: proxy if "://" in proxy else f"http://{proxy}"}


def pinned_session(base: type[Any], tls: TLS) -> type[Any]:
    """``base`` (``requests.Session`` or a subclass such as google-auth's ``AuthorizedSession``) with this
    module's trust and proxies on every request, whatever the environment or a caller's ``verify=`` says.

    requests reads ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` and its own proxy rules in
    ``merge_environment_settings``; the subclass overrides what comes out of it.
    """
    trust = verify(tls)

    class Pinned(base):  # type: ignore[misc] # base is a requests.Session subclass chosen at run time
        def merge_environment_settings(self, url: str | None, *args: Any, **kwargs: Any) -> dict[str, Any]:
            settings: dict[str, Any] = super().merge_environment_settings(url, *args, **kwargs)
            settings["verify"] = trust
            settings["proxies"] = proxies_for(url or "")
            return settings

    Pinned.__name__ = f"Pinned{base.__name__}"
    return Pinned


QUOTE = 160  # the most characters of a server's own text (an error message, a body) any message quotes


def quote(text: object) -> str:
    """A server's text on one line, at most :data:`QUOTE` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= QUOTE else line[: QUOTE - 3] + "..."


@dataclass(frozen=True)
class Answer:
    """A server's answer, whatever its status."""

    status: int
    headers: Mapping[str, str]  # case-insensitive when it comes from requests
    content: bytes
    url: str  # without user information or query: never a secret
    elapsed: float  # seconds

    @property
    def reason(self) -> str:  # the status's standard phrase (Not Found), "" for a code HTTP does not define
        return {s.value: s.phrase for s in http.HTTPStatus}.get(self.status, "")

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def body(self) -> Any:
        """The parsed JSON body, else the text."""
        try:
            return json.loads(self.content)
        except ValueError:
            return self.text


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (cause, context, urllib3's ``reason``, arguments)."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop(0)
        if id(current) not in seen:
            seen.add(id(current))
            yield current
            wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
            todo.extend(inner for inner in wrapped if isinstance(inner, BaseException))


def layer(exc: BaseException) -> tuple[str, str]:
    """(layer, detail) where a request got no answer: dns, tcp, tls or http."""
    found = list(chain(exc))
    names = " ".join(type(e).__name__ for e in found)
    for e in found:
        if isinstance(e, socket.gaierror):
            return "dns", "the name does not resolve"
        if isinstance(e, ssl.SSLError):
            return "tls", quote(getattr(e, "verify_message", None) or e.reason or e)
        if isinstance(e, ConnectionRefusedError):
            return "tcp", "connection refused"
    if "ConnectTimeout" in names:
        return "tcp", "connect timed out"
    if "ReadTimeout" in names or any(isinstance(e, TimeoutError) for e in found):
        return "http", "no response in time"
    return "http", f"{type(exc).__name__}: {quote(exc)}" if str(exc) else type(exc).__name__


def no_answer(what: str, url: str, exc: BaseException, timeouts: Timeouts, hint: str | None = None) -> CannotEvaluate:
    """The one CannotEvaluate for a request ``what`` to ``url`` that got no answer (``exc``)."""
    where, detail = layer(exc)
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
    seconds = timeouts.request if where == "http" else timeouts.connect
    return CannotEvaluate(
        f"no answer to {what} from {parts.hostname}:{port} ({where}: {detail}; timeout {seconds:g} s)",
        hint or "the NET checks test this endpoint layer by layer",
    )


def request(method: str, url: str, tls: TLS, timeouts: Timeouts, session: Any = None, **kwargs: Any) -> Answer:
    """One HTTP request with the profile's trust, proxies and timeouts: an :class:`Answer`, or no_answer."""
    import requests  # noqa: PLC0415 - this module stays standard library at import

    sender = session if session is not None else pinned_session(requests.Session, tls)()
    started, parts = time.monotonic(), urllib.parse.urlsplit(url)
    try:
        got = sender.request(method, url, timeout=(timeouts.connect, timeouts.request), verify=verify(tls), **kwargs)
    except requests.RequestException as exc:
        raise no_answer(f"{method} {parts.path or '/'}", url, exc, timeouts) from None
    shown = urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    return Answer(got.status_code, got.headers, got.content, shown, round(time.monotonic() - started, 4))
