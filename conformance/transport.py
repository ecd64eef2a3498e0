"""Trust and proxies: one decision for every client that speaks HTTP(S). Standard library only.

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
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import Any

from conformance.profile import TLS

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
