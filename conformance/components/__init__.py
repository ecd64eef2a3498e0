"""What conformant means: one test module per guide component.

Each component is spelt one way everywhere: the profile section, the client
module ``conformance/clients/<name>.py``, the fixture ``<name>``, the test
module ``test_<name>.py`` and the pytest marker. ``tests/test_registry.py``
keeps the five in step with this table.
"""

from __future__ import annotations

from dataclasses import dataclass

PLATFORMS = ("onprem", "gcp")
ORCHESTRATORS = ("runai", "noorch", "polyaxon")


@dataclass(frozen=True)
class Component:
    """A guide component. It applies by platform and orchestrator (its scope), never by what a profile holds:
    a profile for a platform and orchestrator in scope must describe it (``profile.requirements``)."""

    name: str
    prefix: str  # check-id prefix
    title: str
    owner: str  # who usually fixes it, per the guide's support split
    platforms: tuple[str, ...] = PLATFORMS  # where its checks apply unless a check's markers narrow it
    orchestrators: tuple[str, ...] = ORCHESTRATORS

    def applies(self, platform: str, orchestrator: str) -> bool:
        return platform in self.platforms and orchestrator in self.orchestrators

    @property
    def scope(self) -> str:
        """Why a profile needs this component: ``orchestrator runai``, ``platform gcp``, ``every platform``."""
        parts = []
        if self.platforms != PLATFORMS:
            parts.append(f"platform {' or '.join(self.platforms)}")
        if self.orchestrators != ORCHESTRATORS:
            parts.append(f"orchestrator {' or '.join(self.orchestrators)}")
        return " and ".join(parts) or "every platform"


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component("network", "NET", "Network and VPN reach", "platform team (network)"),
        Component("registry", "REG", "Container registry (Harbor / Artifact Registry)", "MLOps team"),
        Component("object_storage", "OBJ", "Object storage (ECS over S3 / GCS)", "DataOps team"),
        Component("mlflow", "MLF", "MLflow tracking server", "MLOps team"),
        Component("gitlab", "GIT", "GitLab and git (HTTPS, SSH on 2222, CI)", "MLOps team"),
        # The guide reaches Kubernetes through Run:ai's kubeconfig or GKE for Polyaxon; without an
        # orchestrator (local Docker) there is no cluster.
        Component(
            "kubernetes", "K8S", "Kubernetes (Rancher / GKE)", "platform team", orchestrators=("runai", "polyaxon")
        ),
        Component("runai", "RAI", "Run:ai CLI and login", "platform team", orchestrators=("runai",)),
        Component("workspace", "WSP", "Developer workspace", "MLOps team"),
        Component("gcp", "GCP", "GCP access (gcloud, ADC, project)", "platform team (GCP)", platforms=("gcp",)),
        # The suite's own image as the orchestrator's job: the data preparation and training path, seen from
        # inside the cluster (bucket, MLflow, registry pull, tuning), merged into the report as a second vantage.
        Component(
            "cluster",
            "CLU",
            "Cluster vantage: the suite as a job (data preparation, training, tuning)",
            "platform team",
            orchestrators=("runai", "polyaxon"),
        ),
    )
}

BY_PREFIX: dict[str, Component] = {c.prefix: c for c in COMPONENTS.values()}


def component_of_check(check_id: str) -> Component | None:
    return BY_PREFIX.get(check_id.split("-", 1)[0])
