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

LAYER_CHECK = {"dns": "NET-001", "tcp": "NET-002", "tls": "NET-003", "http": "NET-004"}


@dataclass
class Reachability:
    """The result of probing every endpoint once, at the start of the run."""

    probes: dict[str, network_client.Probe]

    def probe(self, name: str) -> network_client.Probe:
        return self.probes[name]

    def require(self, name: str, *, before: str | None = None) -> None:
        """Raise :class:`Blocked` if a layer of ``name`` failed (up to, not including, ``before``)."""
        probe = self.probes.get(name)
        if probe is None:
            return
        for layer in probe.layers.values():
            if layer.name == before:
                return
            if layer.ok is False:
                host = probe.endpoint.host
                reason = layer.detail if host in layer.detail else f"{host}: {layer.detail}"
                raise Blocked(LAYER_CHECK[layer.name], reason)


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
def reachability(profile: Profile) -> Reachability:
    return Reachability(network_client.probe_all(profile.endpoints(), profile.timeouts, profile.tls))


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
