"""K8S: can this workspace use the project's Kubernetes namespace the way the guide does?

K8S-001..004 read the kubeconfig only (no network): it exists (every file of ``$KUBECONFIG``,
merged as kubectl merges them: conformance/kubeconfig.py), parses, has the context, is private,
verifies TLS. K8S-005 gets the credential as kubectl would: runs the exec plugin and refuses an
output that is not an ExecCredential, renews an expired OIDC id-token with its refresh-token and
writes it back as kubectl does (see conformance/clients/kubernetes.py, "obtaining the credential").
K8S-006..011 talk to the API server through the ``kubernetes`` client (loaded when these checks
run, never at collection): version, namespace, the permissions the guide's workflows need, the
project's PVC, the platform's Secrets (by name only), and a tiny Job (``writes``) whose log is read
back, or whose admission message (a FailedCreate event, a Failed condition) is reported.
``kubectl`` is not needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance.checks import Blocked, CannotEvaluate, check, expect, expires_in_time, wait_for
from conformance.clients import kubernetes as kube_client  # its SDK loads when the fixture connects
from conformance.clients.kubernetes import Credential, Failure, Kubeconfig, KubernetesClient
from conformance.profile import Kubernetes, LoadedProfile, Profile

RBAC_HINT = "your user has no RoleBinding in this namespace for it; ask the platform team (Run:ai: project membership)"


def _section(profile: Profile) -> Kubernetes:
    if profile.kubernetes is None:  # the plugin skips K8S checks first; this is for direct callers
        raise CannotEvaluate("the profile has no kubernetes section")
    return profile.kubernetes


@pytest.fixture(scope="session")
def kubeconfig(profile: Profile, loaded_profile: LoadedProfile) -> Kubeconfig:
    """The kubeconfig, read without the network when the profile was opened (conformance/session.py)."""
    _section(profile)
    found: Kubeconfig = loaded_profile.logins["kubernetes"][0]
    return found


@pytest.fixture(scope="session")
def kube_credential(kubeconfig: Kubeconfig, loaded_profile: LoadedProfile) -> Credential:
    """The user's credential as kubectl would get it (exec plugin run, expired oidc id-token renewed) at open."""
    if kubeconfig.problem:
        raise Blocked("K8S-001", kubeconfig.problem)
    if kubeconfig.context_problem:
        raise Blocked("K8S-002", kubeconfig.context_problem)
    found: Credential = loaded_profile.logins["kubernetes"][1]
    return found


@pytest.fixture(scope="session")
def kube(kube_credential: Credential, request: pytest.FixtureRequest) -> KubernetesClient:
    """The API client, once the kubeconfig is known to be usable (else blocked by the check that says why)."""
    if kube_credential.problem:
        raise Blocked("K8S-005", kube_credential.problem)
    kube: KubernetesClient = request.getfixturevalue("kubernetes")
    return kube


@pytest.fixture(scope="session")
def kube_version(kube: KubernetesClient) -> tuple[Any, Failure | None]:
    """The API server's /version, fetched once with the user's credentials; an error when nothing answers."""
    return kube.version()  # no answer raises CannotEvaluate


@pytest.fixture(scope="session")
def api(kube: KubernetesClient, kube_version: tuple[Any, Failure | None]) -> KubernetesClient:
    """The client once the API server answered and accepted the credentials."""
    _, failure = kube_version
    if failure is not None:
        raise Blocked("K8S-006", failure.summary())
    return kube


# --------------------------------------------------------------------------- kubeconfig (no network)


@check(
    "K8S-001",
    """
    Put the kubeconfig the platform team gave you (Rancher: cluster > Download KubeConfig; GKE:
    `gcloud container clusters get-credentials`; Run:ai: the provided file) at ~/.kube/config, or point
    KUBECONFIG or kubernetes.kubeconfig at it. A file named as malformed was truncated or edited by hand:
    download it again.
    """,
)
def test_kubeconfig_found(kubeconfig: Kubeconfig, evidence: dict[str, Any]) -> None:
    evidence.update({"kubeconfig": str(kubeconfig.path) if kubeconfig.path else None, "source": kubeconfig.source})
    evidence.update({"consulted": kubeconfig.consulted, "merged": [str(path) for path in kubeconfig.files]})
    expect(
        kubeconfig.problem is None,
        expected="a kubeconfig that parses as YAML with clusters, users and contexts",
        actual=kubeconfig.problem or "",
        hint="KUBECONFIG is not exported in this shell, or the file was never copied here",
    )


@check(
    "K8S-002",
    """
    Set kubernetes.context in the profile to a context the kubeconfig defines, or select one with
    `kubectl config use-context <name>`; a context must name a cluster (with a server) and a user that
    the file defines.
    """,
)
def test_context_complete(kubeconfig: Kubeconfig, evidence: dict[str, Any]) -> None:
    if kubeconfig.problem:
        raise Blocked("K8S-001", kubeconfig.problem)
    evidence.update({"context": kubeconfig.context_name, "server": kubeconfig.server or None})
    evidence.update({"user": kubeconfig.user_name, "context_namespace": kubeconfig.namespace})
    expect(
        kubeconfig.context_problem is None,
        expected="the context the profile names (else current-context) exists with its cluster and user",
        actual=kubeconfig.context_problem or "",
        hint="the kubeconfig was replaced by one for another cluster, or the profile's context is misspelt",
    )


@check(
    "K8S-003",
    """
    The kubeconfig holds your credentials: make it readable by you only with `chmod 600 <kubeconfig>`.
    """,
)
def test_kubeconfig_private(kubeconfig: Kubeconfig, evidence: dict[str, Any]) -> None:
    if kubeconfig.path is None or kubeconfig.mode is None:
        raise Blocked("K8S-001", kubeconfig.problem or "no kubeconfig")
    evidence.update({"kubeconfig": str(kubeconfig.path), "mode": f"{kubeconfig.mode:04o}"})
    evidence["modes"] = {str(path): f"{mode:04o}" for path, mode in kubeconfig.modes.items()}
    exposed = kubeconfig.exposed
    expect(
        not exposed,
        expected=f"{', '.join(str(p) for p in kubeconfig.files)}: mode 600 (no access for group or others)",
        actual=f"group or others may read the credentials in {', '.join(exposed)}",
        hint="copied with a default umask; on a shared PVC everyone in the project could read it",
    )


@check(
    "K8S-004",
    """
    Remove `insecure-skip-tls-verify: true` from the cluster entry and add the cluster's CA as
    `certificate-authority-data` (ask the platform team for it, or download a fresh kubeconfig from Rancher).
    The guide's sample kubeconfig has the flag; it lets anyone on the path read your token.
    """,
)
def test_tls_verified(kubeconfig: Kubeconfig, profile: Profile, evidence: dict[str, Any]) -> None:
    if kubeconfig.problem:
        raise Blocked("K8S-001", kubeconfig.problem)
    if kubeconfig.context_problem:
        raise Blocked("K8S-002", kubeconfig.context_problem)
    trust = kubeconfig.trust(profile.tls)
    evidence.update({"server": kubeconfig.server, "tls_trust": trust})
    expect(
        not kubeconfig.insecure and kubeconfig.server.startswith("https://"),
        expected=f"the API server {kubeconfig.server} is reached over verified TLS",
        actual=f"cluster {kubeconfig.context.get('cluster')!r} sets insecure-skip-tls-verify: true"
        if kubeconfig.insecure
        else f"the server URL is not https: {kubeconfig.server}",
        hint="the kubeconfig follows the guide's sample, which disables verification",
    )


@check(
    "K8S-005",
    """
    The kubeconfig's user needs something this machine lacks. exec: install the plugin it names (GKE:
    `gcloud components install gke-gcloud-auth-plugin`; OIDC: kubelogin) and put it on PATH; a plugin whose
    output is not an ExecCredential is refused as kubectl refuses it: run it by hand and fix or reinstall it.
    auth-provider oidc (Run:ai): an expired id-token is renewed with the refresh-token (as kubectl does);
    when the issuer refuses it, run `runai login` again (or download the kubeconfig again).
    """,
)
def test_credential_usable(
    kube_credential: Credential, kubeconfig: Kubeconfig, profile: Profile, evidence: dict[str, Any]
) -> None:
    evidence.update({"user": kubeconfig.user_name, "credential": kube_credential.kind})
    evidence.update({"user_defined_in": str(kubeconfig.user_file()), "obtained": kube_credential.obtained})
    if kube_credential.unavailable:
        raise CannotEvaluate(kube_credential.problem or "no credential", kube_credential.hint)
    if kube_credential.plugin:
        evidence["plugin"] = f"{kube_credential.plugin} ({kube_credential.plugin_path or 'not on PATH'})"
    if kube_credential.expires is not None:
        evidence["expires"] = f"{kube_credential.expires:%Y-%m-%d %H:%M} UTC"
        evidence["days_left"] = round(kube_credential.days_left() or 0.0, 1)
    expect(
        kube_credential.problem is None,
        expected=f"the credential of user {kubeconfig.user_name!r} ({kube_credential.kind}) is usable from here",
        actual=kube_credential.problem or "",
        hint=kube_credential.hint,
    )
    if kube_credential.kind == "client certificate" and kube_credential.login_expires is not None:
        # An oidc login's end is RAI-003's to report (the same login: one finding, not two).
        expires_in_time(
            "the kubeconfig's client certificate",
            kube_credential.login_expires,
            horizon_days=profile.expiry_horizon_days,
            check_id="K8S-005",
            evidence=evidence,
            remedy="download the kubeconfig again (Rancher: cluster > Download KubeConfig) before the date",
        )


# --------------------------------------------------------------------------- API server


@check(
    "K8S-006",
    """
    401: the API server refused the kubeconfig's credential (an expired or revoked token, or a kubeconfig for
    another cluster): download a fresh kubeconfig or log in again. No answer: check the VPN and the
    server URL in the kubeconfig.
    """,
)
def test_api_answers(
    kube: KubernetesClient, kube_version: tuple[Any, Failure | None], evidence: dict[str, Any]
) -> None:
    version, failure = kube_version
    server = kube.kubeconfig.server
    evidence.update({"server": server, "context": kube.kubeconfig.context_name, "tls_trust": kube.trust})
    if version is not None:
        evidence.update({"server_version": version.git_version, "platform": version.platform})
    expect(
        failure is None,
        expected=f"GET {server}/version answers 200 with the kubeconfig's credentials",
        actual=failure.summary() if failure else "",
        hint="the credential was refused: expired or revoked (401), or not allowed at all (403)",
    )


@check(
    "K8S-007",
    """
    The namespace in kubernetes.namespace does not exist on this cluster. On Run:ai it is runai-<project>;
    check the project name with `runai list projects`, or ask the platform team to create the project.
    """,
)
def test_namespace_exists(api: KubernetesClient, evidence: dict[str, Any]) -> None:
    found, failure = api.read_namespace(api.namespace)
    if failure is not None and failure.status == 403:
        raise CannotEvaluate(
            f"reading namespace {api.namespace}: {failure.summary()}", "GKE non-staff accounts may not read namespaces"
        )
    evidence["namespace"] = api.namespace
    if found is not None:
        evidence.update({"phase": found.status.phase if found.status else None, "labels": found.metadata.labels or {}})
    expect(
        failure is None,
        expected=f"namespace {api.namespace} exists",
        actual=failure.summary() if failure else "",
        hint="a typo in kubernetes.namespace, or the Run:ai project has another name (namespace runai-<project>)",
    )


@check(
    "K8S-008",
    """
    Ask the platform team to give your user the permissions named in the message in the project namespace
    (Run:ai: add you to the project with a researcher role); the guide's jobs, logs and PVC mounts need them.
    """,
)
def test_permissions(api: KubernetesClient, evidence: dict[str, Any]) -> None:
    answers: dict[str, str] = {}
    for entry in api.section.required_access:
        allowed, failure = api.can_i(entry)
        if failure is not None:
            raise CannotEvaluate(f"SelfSubjectAccessReview for {entry!r}: {failure.summary()}")
        answers[entry] = "yes" if allowed else "no"
    evidence.update({"namespace": api.namespace, "can_i": answers})
    denied = [entry for entry, answer in answers.items() if answer == "no"]
    expect(
        not denied,
        expected=f"in namespace {api.namespace} you may: {', '.join(answers)}",
        actual=f"denied: {', '.join(denied)}",
        hint=RBAC_HINT,
    )


@check(
    "K8S-009",
    """
    Pending: the PVC has no volume yet; its storage class cannot provision (onprem: nfs-client; GKE:
    filestore) - send this to the platform team. Not ReadWriteMany: workspaces and jobs cannot share it;
    check kubernetes.pvc names the project's shared PVC.
    """,
)
def test_pvc_bound_rwx(api: KubernetesClient, evidence: dict[str, Any]) -> None:
    name = api.section.pvc
    if name is None:  # required where K8S applies (profile.requirements; Run:ai fills the guide's default)
        raise CannotEvaluate("the profile names no kubernetes.pvc")
    pvc, failure = api.read_pvc(name)
    if failure is not None and failure.status == 403:
        raise CannotEvaluate(f"reading PVC {name}: {failure.summary()}", RBAC_HINT)
    expect(
        failure is None,
        expected=f"PVC {name} exists in namespace {api.namespace}",
        actual=failure.summary() if failure else "",
        hint="kubernetes.pvc is misspelt, or the PVC has another name (<proj>-pvc, pvc-data)",
    )
    phase = pvc.status.phase if pvc.status else None
    modes = list(
        (pvc.status.access_modes if pvc.status and pvc.status.access_modes else None) or pvc.spec.access_modes or []
    )
    storage_class = pvc.spec.storage_class_name
    evidence.update({"pvc": name, "phase": phase, "access_modes": modes, "storage_class": storage_class})
    if pvc.status and pvc.status.capacity:
        evidence["capacity"] = pvc.status.capacity.get("storage")
    expect(
        phase == "Bound",
        expected=f"PVC {name} is Bound",
        actual=f"PVC {name} is {phase} (storage class {storage_class})",
        hint=f"storage class {storage_class} did not provision a volume",
    )
    expect(
        "ReadWriteMany" in modes,
        expected=f"PVC {name} is ReadWriteMany, shared by workspaces and jobs",
        actual=f"access modes {', '.join(modes) or 'none'}",
        hint="a per-workspace PVC was named instead of the project's shared one",
    )


@check(
    "K8S-010",
    """
    Secrets the platform provides in the project namespace are missing: ask the platform team to create them
    (names from the platform's Terraform: s3-credentials, harbor-credentials, gcp-sa-credentials, ...).
    """,
)
def test_expected_secrets(api: KubernetesClient, evidence: dict[str, Any]) -> None:
    names = api.section.expected_secrets
    if not names:  # required where K8S applies (profile.requirements fills the guide's names per platform)
        raise CannotEvaluate("the profile lists no kubernetes.expected_secrets")
    present: list[str] = []
    missing: list[str] = []
    for name in names:
        exists, failure = api.secret_exists(name)
        if failure is not None:
            raise CannotEvaluate(f"reading Secret {name} (metadata only): {failure.summary()}", RBAC_HINT)
        (present if exists else missing).append(name)
    evidence.update({"namespace": api.namespace, "present": present, "missing": missing, "read": "metadata only"})
    expect(
        not missing,
        expected=f"Secrets {', '.join(names)} exist in namespace {api.namespace}",
        actual=f"missing: {', '.join(missing)}",
        hint="the project was set up without them, or kubernetes.expected_secrets lists another platform's names",
    )


# --------------------------------------------------------------------------- smoke Job (writes)


@pytest.fixture(scope="session")
def smoke_job(api: KubernetesClient) -> Iterator[tuple[str, Failure | None]]:
    """The run's Job, created once and deleted (with its pods) in teardown."""
    name = api.job_name()
    created, failure = api.create_job(name, ["/bin/sh", "-c", f"echo {name}"])
    yield name, failure
    if failure is None and created is not None:
        api.delete_job(name)


def _job_state(api: KubernetesClient, name: str) -> tuple[bool, str]:
    """(done, what the cluster says): done when the Job finished or the cluster recorded why it will not run."""
    job, failure = api.read_job(name)
    if failure is not None:
        return failure.status not in (0, 429) and failure.status < 500, f"job: {failure.summary()}"
    status = job.status
    done = bool(status and (status.succeeded or status.failed))
    pods, _ = api.job_pods(name)
    items = [api.as_mapping(p) for p in (pods.items if pods else [])]
    phases = [f"{p['metadata']['name']} {p.get('status', {}).get('phase')}" for p in items]
    counts = (
        f"active={status.active or 0} succeeded={status.succeeded or 0} failed={status.failed or 0}"
        if status
        else "no status"
    )
    state = f"Job {name} {counts}; pods: {', '.join(phases) or 'none yet'}"
    if status and status.succeeded:
        return True, state
    events: list[Any] = []
    if not items:  # the job controller could not create a pod: it says why in an event on the Job
        events, _ = api.job_events(name)
    trace = kube_client.admission_trace(api.as_mapping(job), events)
    if trace is not None:
        return True, f"{state}; {trace}"
    waiting = [found for found in (kube_client.pod_waiting(p) for p in items) if found]
    return done, f"{state}; {'; '.join(waiting)}" if waiting else state


@pytest.mark.writes
@check(
    "K8S-011",
    """
    A Job in the project namespace did not run to completion: the message names the step. 403: you may not
    create Jobs (K8S-008). Accepted but no pod: the message quotes the cluster's refusal (a FailedCreate event:
    ResourceQuota, LimitRange, Pod Security) - send it to the platform team. Pending: no node takes it (the
    scheduler's message, an image pull error - the image must be pullable from the cluster). Failed: read the
    pod's events with `kubectl describe pod` and send them to the platform team.
    """,
)
def test_smoke_job(
    api: KubernetesClient, smoke_job: tuple[str, Failure | None], profile: Profile, evidence: dict[str, Any]
) -> None:
    name, failure = smoke_job
    evidence.update({"job": name, "namespace": api.namespace, "image": api.section.smoke_image})
    expect(
        failure is None,
        expected=f"Job {name} ({api.section.smoke_image}, /bin/sh -c 'echo {name}') is accepted",
        actual=failure.summary() if failure else "",
        hint=RBAC_HINT if failure and failure.status == 403 else None,
    )
    state = wait_for(lambda: _job_state(api, name), timeout=profile.timeouts.check, describe=f"Job {name} finishes")
    evidence["final_state"] = state
    job, _ = api.read_job(name)
    refused = any(
        mark in state for mark in ("FailedCreate event", "Job condition Failed", "waiting (", "not scheduled (")
    )
    expect(
        job is not None and job.status and job.status.succeeded,
        expected=f"Job {name} succeeds",
        actual=state,
        hint=kube_client.admission_hint(state) if refused else "the image cannot be pulled, or it has no /bin/sh",
    )
    pods, _ = api.job_pods(name)
    pod = pods.items[0].metadata.name if pods and pods.items else None
    if pod is None:
        raise CannotEvaluate(f"Job {name} succeeded but its pod is gone (deleted by a TTL controller?)")
    log, log_failure = api.pod_log(pod)
    evidence.update({"pod": pod, "log": (log or "").strip()[:200]})
    expect(
        log_failure is None and (log or "").strip() == name,
        expected=f"the pod's log reads {name!r}",
        actual=log_failure.summary() if log_failure else f"log {(log or '').strip()[:80]!r}",
        hint=RBAC_HINT if log_failure and log_failure.status == 403 else "the log is not what the command printed",
    )
