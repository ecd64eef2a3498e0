"""Session fixtures, one per component, built from the profile.

A fixture that cannot reach or authenticate raises ``CannotEvaluate`` (or
``Blocked`` when a network check already failed), so every check that needs
it shows as an error with the cause, once per check, without waiting again.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.checks import Blocked
from conformance.clients import network as network_client
from conformance.profile import LoadedProfile, Profile
from conformance.state import EVIDENCE_KEY, PROFILE_KEY, RUN_ID_KEY

LAYER_CHECK = {"dns": "NET-001", "tcp": "NET-002", "tls": "NET-003", "app": "NET-004"}
VPN_CHECK = "NET-005"
REACHABILITY_KEY = pytest.StashKey["Reachability"]()


@dataclass
class Reachability:
    """The result of probing every endpoint once, at the start of the run."""

    probes: dict[str, network_client.Probe]
    vpn: str = "the VPN"

    def probe(self, name: str) -> network_client.Probe:
        return self.probes[name]

    @property
    def private(self) -> list[network_client.Probe]:
        return [p for p in self.probes.values() if p.endpoint.private]

    def vpn_down(self) -> str | None:
        """Why the VPN is probably down: every private endpoint fails the same network way (else None)."""
        private = self.private
        failures = [p.network_failure for p in private]
        if len(private) < 2 or any(f is None for f in failures):  # one endpoint alone is no pattern
            return None
        modes = {f.mode for f in failures if f is not None}
        if len(modes) != 1:
            return None
        layers = "/".join(sorted({f.name.upper() for f in failures if f is not None}))
        return (
            f"every private endpoint ({len(private)}) fails the same way at {layers}: "
            f"{network_client.MODES[str(modes.pop())]}; {self.vpn} is probably down"
        )

    def require(self, name: str, *, before: str | None = None) -> None:
        """Raise :class:`Blocked` if a layer of ``name`` failed (up to, not including, ``before``).

        When the VPN is probably down, a private endpoint's failure is folded under NET-005.
        """
        probe = self.probes.get(name)
        if probe is None:
            return
        for layer in probe.layers.values():
            if layer.name == before:
                return
            if layer.ok is False:
                self.fold(name)
                raise Blocked(LAYER_CHECK[layer.name], self.reason(probe, layer))

    def fold(self, name: str) -> None:
        """Blocked by NET-005 when ``name`` is private and the VPN is probably down."""
        probe = self.probes.get(name)
        if probe is not None and probe.endpoint.private and probe.failure() is not None:
            verdict = self.vpn_down()
            if verdict:
                raise Blocked(VPN_CHECK, verdict)

    def same_cause(self, name: str, layer: str) -> network_client.Probe | None:
        """An endpoint before ``name`` that failed ``layer`` the same way on the same host (DNS) or host and port.

        One NET failure per host and layer, not per URL: the API and git over HTTPS of one GitLab share it.
        """
        probe = self.probes[name]
        failed = probe.failure()
        if failed is None or failed.name != layer:
            return None

        def where(p: network_client.Probe) -> tuple[str, int | None]:
            return (p.endpoint.host, None if layer == "dns" else p.endpoint.port)

        for other_name in sorted(self.probes):
            if other_name == name:
                return None
            other = self.probes[other_name]
            other_failed = other.failure()
            if (
                where(other) == where(probe)
                and other_failed is not None
                and (other_failed.name, other_failed.mode) == (failed.name, failed.mode)
            ):
                return other
        return None

    @staticmethod
    def reason(probe: network_client.Probe, layer: network_client.Layer) -> str:
        host = probe.endpoint.host
        return layer.detail if host in layer.detail else f"{host}: {layer.detail}"


def reachability_of(config: pytest.Config) -> Reachability:
    """The session's probes of every endpoint any check contacts: run once, on first need, all at once."""
    found = config.stash.get(REACHABILITY_KEY, None)
    if found is None:
        profile = config.stash[PROFILE_KEY].profile
        endpoints, contexts = network_client.endpoints_of(profile)
        probes = network_client.probe_all(endpoints, profile.timeouts, profile.tls, contexts)
        found = config.stash[REACHABILITY_KEY] = Reachability(probes, profile.network.vpn)
    return found


@pytest.fixture(scope="session")
def loaded_profile(request: pytest.FixtureRequest) -> LoadedProfile:
    return request.config.stash[PROFILE_KEY]


@pytest.fixture(scope="session")
def profile(loaded_profile: LoadedProfile) -> Profile:
    return loaded_profile.profile


@pytest.fixture(scope="session")
def run_id(request: pytest.FixtureRequest) -> str:
    """Names everything a run writes: ``conformance-<run_id>``."""
    return request.config.stash[RUN_ID_KEY]


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> dict[str, Any]:
    """What a check observed; shown (redacted, bounded) in every report."""
    found: dict[str, Any] = request.node.stash.setdefault(EVIDENCE_KEY, {})
    return found


@pytest.fixture(scope="session")
def reachability(request: pytest.FixtureRequest) -> Reachability:
    return reachability_of(request.config)


@pytest.fixture(scope="session")
def network(reachability: Reachability) -> Reachability:
    """The network component's client is the reachability cache itself."""
    return reachability


def connect(component: str, profile: Profile, reachability: Reachability, run_id: str) -> Any:
    """Build ``conformance.clients.<component>``'s client, once its endpoint is known to answer.

    The SDK behind it is imported here, when the component first runs, never at collection.
    """
    reachability.require(component)
    module = importlib.import_module(f"conformance.clients.{component}")
    return module.connect(profile, run_id)


def _component_fixture(component: str) -> Any:
    """The session fixture ``<component>``: its client, built by :func:`connect` once per run."""

    def fixture(profile: Profile, reachability: Reachability, run_id: str) -> Any:
        return connect(component, profile, reachability, run_id)

    fixture.__doc__ = f"The {component} client (conformance.clients.{component}), connected once per run."
    return pytest.fixture(scope="session", name=component)(fixture)


registry = _component_fixture("registry")
object_storage = _component_fixture("object_storage")
mlflow = _component_fixture("mlflow")
gitlab = _component_fixture("gitlab")
kubernetes = _component_fixture("kubernetes")
runai = _component_fixture("runai")
workspace = _component_fixture("workspace")
gcp = _component_fixture("gcp")
cluster = _component_fixture("cluster")
