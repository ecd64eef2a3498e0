"""Which check stands on which: the declared dependency graph the plugin enforces.

``PREREQUISITES[check]`` names the checks whose failure makes ``check`` meaningless: when one of
them failed or errored in this session, ``check`` is not run but reports, at once,
``blocked by <ROOT> (<what ROOT found>)``, ROOT being the first check down the chain that failed
on its own. One root cause gives one failure; the rest point at it.

``ENDPOINTS[check]`` names the endpoints (``Profile.endpoints()`` names, plus the kubeconfig's
API server, ``kubernetes``) a check contacts. Their reachability probes run once, at session
start; a check whose endpoint failed a layer is ``blocked by`` the NET check of that layer for
that endpoint (``NET-002[kubernetes]``).

An edge that holds only for some workspaces is declared with its condition (``CONDITIONAL``,
``CONDITIONAL_ENDPOINTS``: a :class:`When` over facts such as which Run:ai CLI is installed), never
special-cased where it is used. A fact is read (``FACTS``) only when such an edge would block.

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

from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
    # Continuous X: GitLab's API must accept the token and show the project (the CI checks read it).
    "CI-001": ("GIT-004",),
    "CI-002": ("GIT-004",),
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
    # Serving: the namespace answers (K8S-007, after K8S-006); the app must run before it can answer.
    "SRV-001": ("K8S-007",),
    "SRV-002": ("SRV-001",),
    "SRV-003": ("K8S-007",),  # removing runs even when the Deployment never became available
    # Run:ai: the CLI, its generation; the login (RAI-003) stands on K8S-005 only with the kubeconfig CLI (CONDITIONAL).
    "RAI-002": ("RAI-001",),
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
    "GCP-004": ("GCP-002",),  # IAM's record of the key the file names
    # Cluster vantage: the job, then its results, then what they say (proven in tests/test_cluster.py).
    "CLU-002": ("CLU-001",),
    "CLU-003": ("CLU-002",),
    "CLU-004": ("CLU-002",),
    "CLU-005": ("CLU-002",),
}


@dataclass(frozen=True)
class When:
    """What must hold of this workspace for an edge to hold: each ``(fact, value)``, a fact read by :data:`FACTS`."""

    conditions: tuple[tuple[str, str], ...]

    def holds(self, fact: Callable[[str], str | None]) -> bool:
        """Whether every condition reads its value; ``fact`` is asked only as far as needed (it may run a CLI)."""
        return all(fact(name) == value for name, value in self.conditions)

    def __str__(self) -> str:
        return " and ".join(DESCRIBE.get((name, value), f"{name} {value}") for name, value in self.conditions)


RUNAI_CLI = "runai-cli"  # the Run:ai CLI's generation: kubeconfig (the guide's) or new (clusters 2.18+)
KUBECONFIG_LOGIN = "kubeconfig-login"  # renews: the kubeconfig's oidc id-token must be renewed at its issuer first
DESCRIBE = {
    (RUNAI_CLI, "kubeconfig"): "with the kubeconfig CLI",
    (RUNAI_CLI, "new"): "with the new CLI",
    (KUBECONFIG_LOGIN, "renews"): "when the login is renewed",
}
WITH_KUBECONFIG_CLI = When(((RUNAI_CLI, "kubeconfig"),))

# ``CONDITIONAL[check]``: prerequisites that hold only where a fact of this workspace says so. The guide's
# kubeconfig CLI logs in through the kubeconfig (K8S-005's oidc user); Run:ai's new CLI keeps its own login
# under ~/.runai/, so an expired kubeconfig login says nothing about it.
CONDITIONAL: dict[str, tuple[tuple[str, When], ...]] = {
    "RAI-003": (("K8S-005", WITH_KUBECONFIG_CLI),),
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
GCP_IAM = "gcp-iam"  # the endpoint name of the IAM API (gcp.iam_url), asked about a configured key
OIDC_ISSUER = "oidc-issuer"  # the kubeconfig login's issuer: idp-issuer-url, or an exec plugin's --oidc-issuer-url

_GITLAB_API = ("GIT-001", "GIT-002", "GIT-003", "GIT-004", "GIT-013", "GIT-014", "GIT-015")
_K8S_API = ("K8S-006", "K8S-007", "K8S-008", "K8S-009", "K8S-010", "K8S-011")

ENDPOINTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_GITLAB_API, ("gitlab",)),
    "GIT-005": ("gitlab", "gitlab-git"),
    "GIT-009": ("gitlab-ssh",),
    "GIT-010": ("gitlab-ssh",),
    **dict.fromkeys(_K8S_API, (KUBERNETES_API,)),
    **dict.fromkeys(("SRV-001", "SRV-002", "SRV-003"), (KUBERNETES_API,)),
    # The Run:ai CLI talks to the kubeconfig's server: RAI-003 lets it read once (runai list projects).
    **dict.fromkeys(("RAI-003", "RAI-004", "RAI-005"), (KUBERNETES_API,)),
    **dict.fromkeys(("REG-002", "REG-003", "REG-004", "REG-005"), ("registry",)),
    **dict.fromkeys(("OBJ-002", "OBJ-003", "OBJ-004", "OBJ-005"), ("object_storage",)),
    **dict.fromkeys(("MLF-001", "MLF-002", "MLF-003", "MLF-004", "MLF-006"), ("mlflow",)),
    "MLF-005": ("mlflow", MLFLOW_ARTIFACTS),
    "GCP-003": (GCP_OAUTH, GCP_API_ENDPOINT),
    **dict.fromkeys(("CI-001", "CI-002"), ("gitlab",)),
    "GCP-004": (GCP_OAUTH, GCP_IAM),
    "CLU-001": (KUBERNETES_API,),
    **dict.fromkeys(("CLU-004", "CLU-005"), ("mlflow",)),
}

_RENEWS = When(((KUBECONFIG_LOGIN, "renews"),))

# ``CONDITIONAL_ENDPOINTS[check]``: endpoints a check contacts only where a fact says so. A kubeconfig login
# whose id-token has expired is renewed at its issuer before the first request (client-go's oidc
# auth-provider): K8S-005 does that, and RAI-003 with the kubeconfig CLI (runai list projects) too.
CONDITIONAL_ENDPOINTS: dict[str, tuple[tuple[str, When], ...]] = {
    "K8S-005": ((OIDC_ISSUER, _RENEWS),),
    "RAI-003": ((OIDC_ISSUER, When((*_RENEWS.conditions, *WITH_KUBECONFIG_CLI.conditions))),),  # cheaper fact first
}


def _runai_generation(profile: Profile) -> str | None:
    """Which Run:ai CLI the profile's ``runai`` is (runs ``runai version``); None when none can be told."""
    if profile.runai is None:
        return None
    from conformance.clients import runai  # noqa: PLC0415 - only when an edge needs the fact

    if not runai.find_cli(profile.runai).found:
        return None
    return runai.connect(profile, "graph").detected.generation


def _kubeconfig_login(profile: Profile) -> str | None:
    """``renews`` when the kubeconfig's oidc id-token must first be renewed at its issuer (no network here).

    An exec plugin (kubelogin) keeps its tokens in its own cache and renews on its own: that cannot be told
    from here, so it reads ``valid`` and its issuer's failed probe is reported by NET without blocking it.
    """
    from conformance.clients import kubernetes  # noqa: PLC0415 - only when an edge needs the fact

    kc = kubernetes.find_kubeconfig(profile.kubernetes)
    if not kc.usable:
        return None
    return "renews" if kubernetes.credential(kc).refresh else "valid"


# How each fact is read, once per run, only when an edge that depends on it would block.
FACTS: dict[str, Callable[[Profile], str | None]] = {
    RUNAI_CLI: _runai_generation,
    KUBECONFIG_LOGIN: _kubeconfig_login,
}

_WITH_EDGES = sorted({*PREREQUISITES, *DUPLICATES, *CONDITIONAL})


def endpoints_for(check_id: str, profile: Profile) -> tuple[str, ...]:
    """The endpoints ``check_id`` contacts with this profile (the workspace checks, through a pod: the API server)."""
    found = ENDPOINTS.get(check_id, ())
    if check_id.startswith("WSP-") and profile.workspace is not None and profile.workspace.pod:
        found = (*found, KUBERNETES_API)  # kubectl exec into the pod
    return found


def prerequisites(check_id: str) -> tuple[str, ...]:
    """What ``check_id`` needs or repeats (conditional edges too): the checks that must run before it."""
    conditional = tuple(needed for needed, _ in CONDITIONAL.get(check_id, ()))
    return PREREQUISITES.get(check_id, ()) + conditional + DUPLICATES.get(check_id, ())


def blocking(check_id: str) -> tuple[tuple[str, When | None], ...]:
    """The checks whose (blocking) failure blocks ``check_id``, each with the condition it needs (None: always)."""
    always: tuple[tuple[str, When | None], ...] = tuple((needed, None) for needed in PREREQUISITES.get(check_id, ()))
    return always + CONDITIONAL.get(check_id, ())


def contacts(check_id: str, profile: Profile) -> tuple[tuple[str, When | None], ...]:
    """The endpoints ``check_id`` contacts with this profile, each with the condition it needs (None: always)."""
    always: tuple[tuple[str, When | None], ...] = tuple((name, None) for name in endpoints_for(check_id, profile))
    return always + CONDITIONAL_ENDPOINTS.get(check_id, ())


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
    parts += [f"{needed} ({when})" for needed, when in CONDITIONAL.get(check_id, ())]
    parts += [f"{other} (same finding)" for other in DUPLICATES.get(check_id, ())]
    endpoints = list(ENDPOINTS.get(check_id, ()))
    endpoints += [f"{name} {when}" for name, when in CONDITIONAL_ENDPOINTS.get(check_id, ())]
    if endpoints:
        parts.append(f"NET ({', '.join(endpoints)})")
    elif check_id.startswith("WSP-"):
        parts.append(f"NET ({KUBERNETES_API}) with workspace.pod")
    if check_id in ("NET-002", "NET-003", "NET-004"):
        parts.append("the lower NET layers of the same endpoint; NET-005 when the VPN is down")
    elif check_id == "NET-001":
        parts.append("NET-005 when the VPN is down")
    return ", ".join(parts)
