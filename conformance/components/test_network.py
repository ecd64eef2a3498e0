"""NET: can this workspace reach every endpoint the profile names?

Each endpoint is probed once, layer by layer (DNS, TCP, TLS, HTTP), at the
start of the run; the checks below read that cache. A layer whose
predecessor failed reports ``blocked by`` it, so one root cause is one
failure. The checks are parametrised per endpoint by the plugin.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from conformance.checks import ConformanceWarning, check, expect
from conformance.clients.network import Probe
from conformance.fixtures import Reachability
from conformance.profile import Endpoint, Profile

CERT_WARN_DAYS = 14


def _probe_at(layer: str) -> Any:
    """A fixture giving the probe of ``endpoint``, blocked if a layer below ``layer`` failed."""

    @pytest.fixture
    def fixture(network: Reachability, endpoint: Endpoint, evidence: dict[str, Any]) -> Probe:
        if layer == "tls" and not endpoint.uses_tls:
            pytest.skip(f"not applicable: endpoint {endpoint.name} is {endpoint.scheme}://, without TLS")
        if layer == "http" and not endpoint.uses_http:
            pytest.skip(f"not applicable: endpoint {endpoint.name} is {endpoint.scheme}://, not HTTP")
        network.require(endpoint.name, before=layer)
        probe = network.probe(endpoint.name)
        result = probe.layers[layer]
        evidence.update({"endpoint": endpoint.url, layer: result.detail, f"{layer}_seconds": result.duration_s})
        evidence.update(probe.evidence)
        return probe

    return fixture


dns_probe = _probe_at("dns")
tcp_probe = _probe_at("tcp")
tls_probe = _probe_at("tls")
http_probe = _probe_at("http")


@check(
    "NET-001",
    """
    Check the host name in the profile. On-prem hosts (*.aisingapore.net, necs.nus.edu.sg) resolve only
    with the VPN connected; connect it and retry. If it still fails, check /etc/resolv.conf.
    """,
)
def test_dns_resolves(dns_probe: Probe, endpoint: Endpoint) -> None:
    layer = dns_probe.layers["dns"]
    expect(
        layer.ok,
        expected=f"{endpoint.host} resolves to an address",
        actual=layer.detail,
        hint="the VPN is not connected, or the host name is misspelt in the profile",
    )


@check(
    "NET-002",
    """
    The host resolves but does not accept connections on this port. Connect the VPN; if you are on it,
    ask the platform team whether a firewall or proxy blocks the port (e.g. GitLab SSH uses 2222, not 22).
    """,
)
def test_tcp_connects(tcp_probe: Probe, endpoint: Endpoint) -> None:
    layer = tcp_probe.layers["tcp"]
    expect(
        layer.ok,
        expected=f"TCP connect to {endpoint.host}:{endpoint.port} succeeds",
        actual=layer.detail,
        hint="refused: nothing listens on that port; timed out: a firewall drops the traffic or the VPN is down",
    )


@check(
    "NET-003",
    """
    Point the profile's tls.ca_bundle at the CA that signed the server's certificate (on-prem: the
    organisation's root CA bundle). An expired or mismatched certificate is for the platform team to renew.
    Never work around it with tls.insecure outside a throw-away test.
    """,
)
def test_tls_handshake(tls_probe: Probe, endpoint: Endpoint, evidence: dict[str, Any]) -> None:
    layer = tls_probe.layers["tls"]
    expect(
        layer.ok,
        expected=f"TLS handshake with {endpoint.host}:{endpoint.port} verifies against the profile's trust",
        actual=layer.detail,
        hint="the server's CA is not in tls.ca_bundle, or its certificate is expired or for another name",
    )
    days = tls_probe.evidence.get("certificate_days_left")
    if isinstance(days, int) and days < CERT_WARN_DAYS:
        evidence["warning"] = f"certificate of {endpoint.host} expires in {days} days"
        warnings.warn(ConformanceWarning(f"NET-003: {evidence['warning']}"), stacklevel=1)


@check(
    "NET-004",
    """
    The server is reachable but failing (HTTP 5xx) or not answering. This is on the platform side:
    send this report to the team that runs the service.
    """,
)
def test_http_answers(http_probe: Probe, endpoint: Endpoint) -> None:
    layer = http_probe.layers["http"]
    expect(
        layer.ok,
        expected=f"GET {endpoint.url} answers with a status below 500",
        actual=layer.detail,
        hint="the service or its ingress is down, or a proxy in between cannot reach it",
    )


@check(
    "NET-005",
    """
    No private endpoint is reachable and they all fail the same way: connect the VPN (on-prem: NUS VPN
    through Pulse Secure) and run again. This is a heuristic; if the VPN is up, read the other NET failures.
    """,
)
def test_private_network_reachable(network: Reachability, profile: Profile, evidence: dict[str, Any]) -> None:
    private = [e for e in profile.endpoints() if e.private]
    if not private:
        pytest.skip("not applicable: the profile marks no endpoint as private")
    reached = [e.name for e in private if network.probe(e.name).layers["tcp"].ok]
    failures = {e.name: network.probe(e.name).failure() for e in private if e.name not in reached}
    layers = sorted({f.name.upper() for f in failures.values() if f is not None})
    evidence.update({"private_endpoints": len(private), "reached": reached, "failing_layers": layers})
    if len(layers) == 1:
        hint = f"every private endpoint fails at {layers[0]}: {profile.network.vpn} is probably down (a heuristic)"
    else:
        hint = f"private endpoints fail at different layers ({', '.join(layers)}), so probably not only the VPN"
    expect(
        reached,
        expected=f"at least one of the {len(private)} private endpoints accepts a TCP connection",
        actual=f"none of {', '.join(e.name for e in private)} does",
        hint=hint,
    )
