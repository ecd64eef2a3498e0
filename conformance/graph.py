"""Which check stands on which: the declared dependency graph the plugin enforces.

``PREREQUISITES[check]`` names the checks whose failure makes ``check`` meaningless: when one of
them failed or errored in this session, ``check`` is not run but reports, at once,
``blocked by <ROOT> (<what ROOT found>)``, ROOT being the first check down the chain that failed
on its own. One root cause gives one failure; the rest point at it.

``ENDPOINTS[check]`` names the endpoints (``Profile.endpoints()`` names, plus the kubeconfig's
API server, ``kubernetes``) a check contacts. Their reachability probes run once, at session
start; a check whose endpoint failed a layer is ``blocked by`` the NET check of that layer.

An edge is declared only where the dependent's own result would repeat its prerequisite's
finding or cannot be had without it (a wrong SSH port makes the host-key lookup look in the
wrong place; refused S3 keys refuse every bucket call). A prerequisite that fails with a finding
its dependents do not share says so with ``expect(..., blocks=False)`` (an empty bucket listing
does not make the named bucket unusable). ``DUPLICATES`` folds a check that would repeat another
component's finding under it, whatever that finding.

Under pytest-xdist a worker only knows the outcomes of the checks it ran: the plugin marks the
checks of one connected part of this graph with the same ``xdist_group``, so that
``--dist loadgroup`` runs each part in one worker, in order. With another ``--dist`` mode a
prerequisite may run in another worker, and its dependent then runs and reports on its own (the
component fixtures still block on what they see): nothing is hidden, some causes show twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from conformance.profile import GCP_API_ENDPOINT, Profile

PREREQUISITES: dict[str, tuple[str, ...]] = {
    # GitLab: the token first; SSH settings before ssh itself; SSH greeting before git over SSH.
    # GIT-002 first: an expired token fails both, and "expired" is the more telling of the two.
    "GIT-003": ("GIT-002", "GIT-001"),
    "GIT-004": ("GIT-002", "GIT-001"),
    "GIT-005": ("GIT-002", "GIT-001"),
    "GIT-007": ("GIT-006",),
    "GIT-008": ("GIT-006",),  # the host-key lookup uses the port ssh_config gives
    "GIT-009": ("GIT-006", "GIT-007", "GIT-008"),
    "GIT-010": ("GIT-009",),
    "GIT-013": ("GIT-004",),
    "GIT-014": ("GIT-004",),
    "GIT-015": ("GIT-004",),
    # Kubernetes: the kubeconfig, its context, its credential, the API server, the namespace.
    "K8S-002": ("K8S-001",),
    "K8S-004": ("K8S-002",),
    "K8S-005": ("K8S-002",),
    "K8S-006": ("K8S-005",),
    "K8S-007": ("K8S-006",),
    "K8S-008": ("K8S-007",),
    "K8S-009": ("K8S-007",),
    "K8S-010": ("K8S-007",),
    "K8S-011": ("K8S-007",),
    # Run:ai: the CLI, its generation, the login (the kubeconfig's OIDC user, K8S-005).
    "RAI-002": ("RAI-001",),
    "RAI-003": ("K8S-005",),
    "RAI-004": ("RAI-001", "RAI-003"),  # not RAI-002: an old CLI still lists projects and submits
    "RAI-005": ("RAI-001", "RAI-003"),
    # Container registry: credentials, login, push, pull.
    "REG-002": ("REG-001",),
    "REG-003": ("REG-002",),
    "REG-004": ("REG-003",),
    "REG-005": ("REG-002",),
    # Object storage: the keys, a call they are accepted for, the bucket, the probe object.
    "OBJ-002": ("OBJ-001",),
    "OBJ-003": ("OBJ-002",),
    "OBJ-004": ("OBJ-003",),
    "OBJ-005": ("OBJ-004",),
    # MLflow: the server, the login, the experiment, then runs and artifacts.
    "MLF-003": ("MLF-002",),
    "MLF-004": ("MLF-003",),
    "MLF-005": ("MLF-003",),
    # Workspace: the PVC before writing to it.
    "WSP-003": ("WSP-002",),
    "WSP-004": ("WSP-002",),
    # GCP: a well-formed key before the project (GCP-001 and GCP-002 both judge the key file).
    "GCP-003": ("GCP-002",),
    # Cluster vantage: the job, then its results, then what they say (proven in tests/test_cluster.py).
    "CLU-002": ("CLU-001",),
    "CLU-003": ("CLU-002",),
    "CLU-004": ("CLU-002",),
    "CLU-005": ("CLU-002",),
}

# ``DUPLICATES[check]``: checks whose failure ``check`` would repeat (the same file judged twice). Any
# failure of one of them folds ``check`` under it, also one that does not block (``blocks=False``).
DUPLICATES: dict[str, tuple[str, ...]] = {
    "WSP-007": ("OBJ-001", "GIT-007"),  # ~/.aws/credentials and the SSH key are among the files WSP-007 reads
}

# Checks that wait for something the run started earlier (the cluster vantage's job, submitted by CLU-001):
# they run after every other selected check, so that the job runs while those do.
LAST: tuple[str, ...] = ("CLU-002", "CLU-003", "CLU-004", "CLU-005")

KUBERNETES_API = "kubernetes"  # the endpoint name of the kubeconfig's API server
MLFLOW_ARTIFACTS = "mlflow-artifacts"  # the endpoint name of MLflow's S3 artifact store, when one is set
GCP_OAUTH = "gcp-oauth"  # the endpoint name of the service-account key's token_uri

_GITLAB_API = ("GIT-001", "GIT-002", "GIT-003", "GIT-004", "GIT-013", "GIT-014", "GIT-015")
_K8S_API = ("K8S-006", "K8S-007", "K8S-008", "K8S-009", "K8S-010", "K8S-011")

ENDPOINTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_GITLAB_API, ("gitlab",)),
    "GIT-005": ("gitlab", "gitlab-git"),
    "GIT-009": ("gitlab-ssh",),
    "GIT-010": ("gitlab-ssh",),
    **dict.fromkeys(_K8S_API, (KUBERNETES_API,)),
    # The Run:ai CLI talks to the kubeconfig's server: RAI-003 lets it read once (runai list projects).
    **dict.fromkeys(("RAI-003", "RAI-004", "RAI-005"), (KUBERNETES_API,)),
    **dict.fromkeys(("REG-002", "REG-003", "REG-004", "REG-005"), ("registry",)),
    **dict.fromkeys(("OBJ-002", "OBJ-003", "OBJ-004", "OBJ-005"), ("object_storage",)),
    **dict.fromkeys(("MLF-001", "MLF-002", "MLF-003", "MLF-004", "MLF-006"), ("mlflow",)),
    "MLF-005": ("mlflow", MLFLOW_ARTIFACTS),
    "GCP-003": (GCP_OAUTH, GCP_API_ENDPOINT),
    "CLU-001": (KUBERNETES_API,),
    **dict.fromkeys(("CLU-004", "CLU-005"), ("mlflow",)),
}


_WITH_EDGES = sorted({*PREREQUISITES, *DUPLICATES})


def endpoints_for(check_id: str, profile: Profile) -> tuple[str, ...]:
    """The endpoints ``check_id`` contacts with this profile (the workspace checks, through a pod: the API server)."""
    found = ENDPOINTS.get(check_id, ())
    if check_id.startswith("WSP-") and profile.workspace is not None and profile.workspace.pod:
        found = (*found, KUBERNETES_API)  # kubectl exec into the pod
    return found


def prerequisites(check_id: str) -> tuple[str, ...]:
    """What ``check_id`` needs or repeats: the checks that must run before it."""
    return PREREQUISITES.get(check_id, ()) + DUPLICATES.get(check_id, ())


def dependents(check_id: str) -> list[str]:
    """Every check that is blocked, directly or through others, when ``check_id`` fails."""
    found: list[str] = []
    frontier = [check_id]
    while frontier:
        current = frontier.pop(0)
        for dependent in _WITH_EDGES:
            if current in prerequisites(dependent) and dependent not in found:
                found.append(dependent)
                frontier.append(dependent)
    return found


def group_of(check_id: str) -> str:
    """The connected part of the graph ``check_id`` belongs to, named by its smallest check id."""
    seen = {check_id}
    frontier = [check_id]
    while frontier:
        current = frontier.pop()
        neighbours = [*prerequisites(current), *(d for d in _WITH_EDGES if current in prerequisites(d))]
        for other in neighbours:
            if other not in seen:
                seen.add(other)
                frontier.append(other)
    return min(seen)


def order(check_ids: Iterable[str]) -> list[str]:
    """``check_ids`` with every prerequisite before its dependents, otherwise in the order given."""
    ids = list(dict.fromkeys(check_ids))
    position = {c: i for i, c in enumerate(ids)}
    placed: list[str] = []
    done: set[str] = set()

    def place(check_id: str, path: tuple[str, ...]) -> None:
        if check_id in done:
            return
        if check_id in path:
            raise ValueError(f"dependency cycle: {' -> '.join((*path, check_id))}")
        for needed in sorted(prerequisites(check_id), key=lambda c: position.get(c, -1)):
            if needed in position:
                place(needed, (*path, check_id))
        done.add(check_id)
        placed.append(check_id)

    for check_id in ids:
        place(check_id, ())
    return placed


def column(check_id: str) -> str:
    """The catalogue's "blocked by" cell: checks first, then the endpoints' NET probes."""
    parts = list(PREREQUISITES.get(check_id, ()))
    parts += [f"{other} (same finding)" for other in DUPLICATES.get(check_id, ())]
    endpoints = ENDPOINTS.get(check_id, ())
    if endpoints:
        parts.append(f"NET ({', '.join(endpoints)})")
    elif check_id.startswith("WSP-"):
        parts.append(f"NET ({KUBERNETES_API}) with workspace.pod")
    if check_id in ("NET-002", "NET-003", "NET-004"):
        parts.append("the lower NET layers of the same endpoint; NET-005 when the VPN is down")
    elif check_id == "NET-001":
        parts.append("NET-005 when the VPN is down")
    return ", ".join(parts)
