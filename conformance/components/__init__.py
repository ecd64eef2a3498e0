"""What conformant means: one test module per guide component.

Each component is spelt one way everywhere: the profile section, the client
module ``conformance/clients/<name>.py``, the fixture ``<name>``, the test
module ``test_<name>.py`` and the pytest marker. ``tests/test_registry.py``
keeps the five in step with this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    name: str
    prefix: str  # check-id prefix
    title: str
    owner: str  # who usually fixes it, per the guide's support split


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component("network", "NET", "Network and VPN reach", "platform team (network)"),
        Component("registry", "REG", "Container registry (Harbor / Artifact Registry)", "MLOps team"),
        Component("object_storage", "OBJ", "Object storage (ECS over S3 / GCS)", "DataOps team"),
        Component("mlflow", "MLF", "MLflow tracking server", "MLOps team"),
        Component("gitlab", "GIT", "GitLab and git (HTTPS, SSH on 2222, CI)", "MLOps team"),
        Component("kubernetes", "K8S", "Kubernetes (Rancher / GKE)", "platform team"),
        Component("runai", "RAI", "Run:ai CLI and login", "platform team"),
        Component("workspace", "WSP", "Developer workspace", "MLOps team"),
        Component("gcp", "GCP", "GCP access (gcloud, ADC, project)", "platform team (GCP)"),
    )
}

BY_PREFIX: dict[str, Component] = {c.prefix: c for c in COMPONENTS.values()}

PLATFORMS = ("onprem", "gcp")
ORCHESTRATORS = ("runai", "noorch", "polyaxon")


def component_of_check(check_id: str) -> Component | None:
    return BY_PREFIX.get(check_id.split("-", 1)[0])
