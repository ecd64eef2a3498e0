"""NET: can this workspace reach every endpoint any check will contact?

Each endpoint (the profile's, the kubeconfig's API server, the GitLab SSH port, ...) is probed
once, layer by layer (DNS, TCP, TLS, then the service's greeting: HTTP status, SSH banner), at
the start of the run; the checks below read that cache. One root cause is one failure: a layer
whose predecessor failed reports ``blocked by`` it; an endpoint on a host whose other endpoint
already failed the same layer the same way is ``blocked by`` that failure; and when every
private endpoint fails the same network way, NET-005 says the VPN is probably down and the
private endpoints' failures are folded under it. The checks are parametrised per endpoint by
the plugin.
"""

from __future__ import annotations

import datetime as dt
import ssl
from typing import Any

import pytest

from conformance.checks import Blocked, check, expect, expires_in_time
from conformance.clients.network import LAYERS, MODES, Probe
from conformance.fixtures import Reachability, net_check
from conformance.profile import Endpoint, Profile


def _probe_at(layer: str) -> Any:
    """A fixture giving the probe of ``endpoint``, blocked if a layer below ``layer`` failed."""

    @pytest.fixture
    def fixture(network: Reachability, endpoint: Endpoint, evidence: dict[str, Any]) -> Probe:
        if layer == "tls" and not endpoint.uses_tls:
            pytest.skip(f"not applicable: endpoint {endpoint.name} is {endpoint.scheme}://, without TLS")
        if layer == "app" and endpoint.scheme == "tcp":
            pytest.skip(
                f"not applicable: endpoint {endpoint.name} is tcp://, a bare port with no service protocol to greet"
            )
        probe = network.probe(endpoint.name)
        failed = probe.failure()
        if failed is not None and LAYERS.index(failed.name) <= LAYERS.index(layer):
            network.fold(endpoint.name)
        network.require(endpoint.name, before=layer)
        same = network.same_cause(endpoint.name, layer)
        if same is not None and failed is not None:
            reason = f"as endpoint {same.endpoint.name} on the same host: {network.reason(probe, failed)}"
            raise Blocked(net_check(layer, same.endpoint.name), reason)
        result = probe.layers[layer]
        evidence.update({"endpoint": endpoint.url, layer: result.detail, f"{layer}_seconds": result.duration_s})
        evidence.update(probe.evidence)
        return probe

    return fixture


dns_probe = _probe_at("dns")
tcp_probe = _probe_at("tcp")
tls_probe = _probe_at("tls")
app_probe = _probe_at("app")


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
    Never work around it with tls.insecure outside a throw-away test. A certificate that expires within the
    profile's expiry_horizon_days (default 7) fails with its date: ask for it to be renewed now.
    """,
)
def test_tls_handshake(tls_probe: Probe, endpoint: Endpoint, profile: Profile, evidence: dict[str, Any]) -> None:
    layer = tls_probe.layers["tls"]
    expect(
        layer.ok,
        expected=f"TLS handshake with {endpoint.host}:{endpoint.port} verifies against the profile's trust",
        actual=layer.detail,
        hint="the server's CA is not in tls.ca_bundle, or its certificate is expired or for another name",
    )
    not_after = tls_probe.evidence.get("certificate_not_after")
    if isinstance(not_after, str):
        expires_in_time(
            f"the certificate of {endpoint.host}:{endpoint.port}",
            dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC),
            horizon_days=profile.expiry_horizon_days,
            check_id="NET-003",
            evidence=evidence,
            remedy="ask the team that runs the service to renew the certificate before it expires",
        )


@check(
    "NET-004",
    """
    The server is reachable but its service is failing (HTTP 5xx, no SSH banner) or not answering. This is
    on the platform side: send this report to the team that runs the service.
    """,
)
def test_service_answers(app_probe: Probe, endpoint: Endpoint) -> None:
    layer = app_probe.layers["app"]
    greeting = "an SSH banner (SSH-2.0-...)" if endpoint.scheme == "ssh" else "a status below 500"
    expect(
        layer.ok,
        expected=f"{endpoint.url} answers with {greeting}",
        actual=layer.detail,
        hint="the service or its ingress is down, or a proxy or firewall in between holds the connection",
    )


@check(
    "NET-005",
    """
    No private endpoint is reachable and they all fail the same way: connect the VPN (on-prem: NUS VPN
    through Pulse Secure) and run again. This is a heuristic; if the VPN is up, read the other NET failures.
    """,
)
def test_private_network_reachable(network: Reachability, evidence: dict[str, Any]) -> None:
    private = network.private
    if not private:
        pytest.skip("not applicable: no endpoint of the profile is private")
    reached = [p.endpoint.name for p in private if p.network_failure is None]
    failures = {p.endpoint.name: p.network_failure for p in private if p.endpoint.name not in reached}
    ways = sorted({MODES[str(f.mode)] for f in failures.values() if f is not None})
    evidence.update({"private_endpoints": len(private), "reached": reached, "failing": ways})
    verdict = network.vpn_down()
    if verdict:
        hint = f"{verdict} (a heuristic); the per-endpoint NET failures are folded under this one"
    elif len(private) < 2:
        hint = "only one private endpoint: read its NET failure (one endpoint is no pattern for a VPN)"
    else:
        hint = f"private endpoints fail in different ways ({', '.join(ways)}), so probably not only the VPN"
    expect(
        reached,
        expected=f"at least one of the {len(private)} private endpoints answers on the network",
        actual=f"none of {', '.join(p.endpoint.name for p in private)} does",
        hint=hint,
    )
