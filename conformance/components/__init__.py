"""What conformant means: one test module per guide component, each declared once, in ``COMPONENTS``.

A component is spelt one way, its name: profile section, client ``clients/<name>.py`` (``connect``;
``sweep`` if it writes), fixture, checks ``test_<name>.py``, marker and simulator ``sandbox/<name>.py``.
The check-id pattern, catalogue, markers, fixtures, report libraries, cleanup and sandbox derive from it;
the sandbox starts components in this order, cleanup sweeps in reverse (README: "Adding a component").
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
    libraries: tuple[str, ...] = ()  # distributions its client uses (their versions go in the report)
    writes: bool = False  # its checks write probes, which its client's sweep() removes (cleanup)
    reaches: str = ""  # the NET endpoint its client needs, when not its own name (CI talks to GitLab's API)

    @property
    def endpoint(self) -> str:
        return self.reaches or self.name

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


# fmt: off
COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component("network", "NET", "Network and VPN reach", "platform team (network)"),
        Component("registry", "REG", "Container registry (Harbor / Artifact Registry)", "MLOps team",
                  libraries=("requests", "docker"), writes=True),
        Component("object_storage", "OBJ", "Object storage (ECS over S3 / GCS)", "DataOps team",
                  libraries=("boto3", "google-cloud-storage"), writes=True),
        Component("mlflow", "MLF", "MLflow tracking server", "MLOps team", libraries=("mlflow-skinny",), writes=True),
        Component("gitlab", "GIT", "GitLab and git (HTTPS, SSH on 2222, CI)", "MLOps team",
                  libraries=("python-gitlab",)),
        # The guide reaches Kubernetes through Run:ai's kubeconfig or GKE for Polyaxon; without an
        # orchestrator (local Docker) there is no cluster.
        Component("kubernetes", "K8S", "Kubernetes (Rancher / GKE)", "platform team",
                  orchestrators=("runai", "polyaxon"), libraries=("kubernetes",), writes=True),
        Component("runai", "RAI", "Run:ai CLI and login", "platform team", orchestrators=("runai",), writes=True),
        Component("workspace", "WSP", "Developer workspace", "MLOps team", libraries=("pytest-testinfra",),
                  writes=True),
        # The guide's Model Serving stage, on the cluster the kubernetes section names: same scope.
        Component("serving", "SRV", "Model serving (Deployment, Service, service proxy)", "MLOps team",
                  orchestrators=("runai", "polyaxon"), writes=True, reaches="kubernetes"),
        Component("gcp", "GCP", "GCP access (gcloud, ADC, project)", "platform team (GCP)", platforms=("gcp",)),
        # Continuous X: the project's CI on GitLab (runners with the platform's tags, CI lint), read with the
        # gitlab section's token; CI/CD variables and schedules stay GIT-013/014.
        Component("ci", "CI", "Continuous X (GitLab CI/CD: runners and CI lint)", "MLOps team", reaches="gitlab"),
        # The suite's own image as the orchestrator's job: the data preparation and training path, seen from
        # inside the cluster (bucket, MLflow, registry pull, tuning), merged into the report as a second vantage.
        Component("cluster", "CLU", "Cluster vantage: the suite as a job (data preparation, training, tuning)",
                  "platform team", orchestrators=("runai", "polyaxon"), writes=True, reaches="kubernetes"),
    )
}
# fmt: on

BY_PREFIX: dict[str, Component] = {c.prefix: c for c in COMPONENTS.values()}
CHECK_ID = rf"(?:{'|'.join(BY_PREFIX)})-\d{{3}}"  # a check id: a declared prefix and three digits


def component_of_check(check_id: str) -> Component | None:
    return BY_PREFIX.get(check_id.split("-", 1)[0])
