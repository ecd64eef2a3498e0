"""The cluster vantage: the suite's own image submitted as the orchestrator's job, waited for, read back.

On Run:ai through the profile's CLI (``runai submit`` of the guide's kubeconfig CLI, or the new CLI's
``training submit``) with the guide's flags (the project's PVC, UID 2222, CPU and memory, no retries);
elsewhere a ``batch/v1`` Job through the Kubernetes API, the Secrets the platform provides exposed
with ``envFrom``. The job runs ``python -m conformance.vantage`` (the in-cluster subset, the tuning
probe, the concurrent runs) and ends its log with one line, :data:`RESULTS_MARK` followed by its
results document: that line is how the results come back, whatever the PVC holds.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from conformance import __version__
from conformance.checks import CannotEvaluate
from conformance.cleanup import Swept
from conformance.profile import Profile

RESULTS_MARK = "CONFORMANCE-VANTAGE-RESULTS "
IMAGE_NAME = "conformance-suite"
ENTRY = ["python", "-m", "conformance.vantage"]
ENV_PROFILE = "CONFORMANCE_PROFILE_B64"  # the profile (extends merged, ${VARS} and secret references left)
ENV_PROFILE_NAME = "CONFORMANCE_PROFILE_NAME"
ENV_RUN_ID = "CONFORMANCE_RUN_ID"
ENV_MARKERS = "CONFORMANCE_MARKERS"
ENV_TRIALS = "CONFORMANCE_TUNING_TRIALS"
ENV_CONCURRENT = "CONFORMANCE_CONCURRENT_RUNS"
ENV_DEADLINE = "CONFORMANCE_JOB_SECONDS"
ENV_RESULTS_DIR = "CONFORMANCE_RESULTS_DIR"
UID = 2222  # the guide's workspace and job user (Coder, Run:ai)
REQUESTS = {"cpu": "500m", "memory": "1Gi"}
LIMITS = {"cpu": "1", "memory": "2Gi"}
_STAMPED = re.compile(r"(?P<stamp>\d{14})-[0-9a-f]{6}")


def cluster_run_id(run_id: str) -> str:
    """The in-cluster run's own id: the workspace run's start stamp, so ``cleanup`` ages it the same way."""
    digest = hashlib.sha256(f"{run_id}:cluster".encode()).hexdigest()[:6]
    match = _STAMPED.fullmatch(run_id)
    return f"{match['stamp']}-{digest}" if match else f"{run_id}-c"


def default_image(profile: Profile) -> str:
    """The suite's image as the platform's registry holds it (pulling it is part of what the vantage proves)."""
    if profile.cluster.image:
        return profile.cluster.image
    if profile.registry is None:
        raise CannotEvaluate("cluster.image is not set and the profile has no registry section to pull it from")
    return f"{profile.registry.project_path.rstrip('/')}/{IMAGE_NAME}:{__version__}"


@dataclass
class JobSpec:
    """What the job is: its name, image, environment, the Secrets it reads, how long it may run."""

    name: str
    image: str
    env: dict[str, str]
    secrets: list[str]
    pvc: str | None
    seconds: int

    def visible_env(self) -> dict[str, str]:
        """The environment as evidence: the profile itself shown by size only."""
        return {k: (f"<{len(v)} characters>" if k == ENV_PROFILE else v) for k, v in self.env.items()}


def job_spec(
    profile: Profile, profile_yaml: str, profile_name: str, run_id: str, *, seconds: float, extra_env: dict[str, str]
) -> JobSpec:
    section = profile.cluster
    kube = profile.kubernetes
    env = {
        ENV_PROFILE: base64.b64encode(profile_yaml.encode()).decode(),
        ENV_PROFILE_NAME: profile_name,
        ENV_RUN_ID: cluster_run_id(run_id),
        ENV_MARKERS: section.markers,
        ENV_TRIALS: str(section.trials),
        ENV_CONCURRENT: str(section.concurrent_runs),
        ENV_DEADLINE: str(int(seconds)),
        **section.env,
        **extra_env,
    }
    if kube is not None and kube.pvc:
        env[ENV_RESULTS_DIR] = f"/{kube.pvc}/conformance/cluster"
    secrets = list(section.secrets if section.secrets is not None else (kube.expected_secrets if kube else []))
    name = f"conformance-{run_id}-clu".lower()[:63].rstrip("-")
    return JobSpec(name, default_image(profile), env, secrets, kube.pvc if kube else None, max(1, int(seconds)))


def kube_job(spec: JobSpec, labels: dict[str, str]) -> dict[str, Any]:
    """The batch/v1 Job (plain Kubernetes, Polyaxon's GKE): the guide's user, resources and PVC."""
    container: dict[str, Any] = {
        "name": "conformance",
        "image": spec.image,
        "command": list(ENTRY),
        "env": [{"name": k, "value": v} for k, v in spec.env.items()],
        "resources": {"requests": dict(REQUESTS), "limits": dict(LIMITS)},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if spec.secrets:
        container["envFrom"] = [{"secretRef": {"name": name}} for name in spec.secrets]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": UID, "runAsGroup": UID, "fsGroup": UID, "runAsNonRoot": True},
        "containers": [container],
    }
    if spec.pvc:
        container["volumeMounts"] = [{"name": "pvc", "mountPath": f"/{spec.pvc}"}]
        pod["volumes"] = [{"name": "pvc", "persistentVolumeClaim": {"claimName": spec.pvc}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.name, "labels": dict(labels)},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.seconds,  # the job stops itself when the run's wait would
            "ttlSecondsAfterFinished": 3600,  # a safety net if teardown never runs
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
        },
    }


def runai_args(spec: JobSpec, project: str, new_cli: bool) -> list[str]:
    """``runai submit`` (the guide's 06c-job-orchestration flags) or the new CLI's ``training submit``.

    Secrets as the guide's legacy syntax cannot list a whole Secret: the profile's ``env:`` references
    are resolved in the pod from what ``cluster.env`` and the Secrets give it.
    """
    verb = ["training", "submit", spec.name, "--project", project] if new_cli else ["submit", spec.name, "-p", project]
    args = [*verb, "-i", spec.image]
    if new_cli:
        args += ["--cpu-core-request", "0.5", "--cpu-memory-request", "1G"]
        args += ["--cpu-core-limit", "1", "--cpu-memory-limit", "2G"]
    else:
        args += ["--cpu", "0.5", "--cpu-limit", "1", "--memory", "1G", "--memory-limit", "2G", "--backoff-limit", "0"]
    args += ["--run-as-uid", str(UID), "--run-as-gid", str(UID)]
    if spec.pvc:
        args += ["--existing-pvc", f"claimname={spec.pvc},path=/{spec.pvc}"]
    for key, value in spec.env.items():
        args += ["-e", f"{key}={value}"]
    return [*args, "--command", "--", *ENTRY]


def shown_command(args: list[str]) -> str:
    """The submit command as evidence: the profile's encoded copy shortened."""
    hidden = f"{ENV_PROFILE}="
    return " ".join(f"{hidden}<profile>" if a.startswith(hidden) else (a if " " not in a else repr(a)) for a in args)


# --------------------------------------------------------------------------- the results line


def results_of(log: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the in-cluster results document, None) from the job's log, or (None, why not)."""
    lines = [line for line in log.splitlines() if line.startswith(RESULTS_MARK)]
    if not lines:
        tail = " | ".join(line.strip() for line in log.strip().splitlines()[-3:])[:300]
        return None, f"the job's log has no results line ({RESULTS_MARK.strip()}); its last lines: {tail or '(empty)'}"
    try:
        document = json.loads(lines[-1][len(RESULTS_MARK) :])
    except json.JSONDecodeError as exc:
        return None, f"the job's results line is not JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(document, dict) or not isinstance(document.get("checks"), list):
        return None, "the job's results line holds no results document (no 'checks' list)"
    return document, None


# --------------------------------------------------------------------------- the orchestrator


@dataclass
class State:
    """Where the job is: ``running``, ``succeeded`` or ``failed``, with what the orchestrator said."""

    phase: str
    detail: str


@dataclass
class ClusterClient:
    """Submit, watch, read and delete the job through Run:ai's CLI or the Kubernetes API."""

    profile: Profile
    run_id: str
    runai: Any = None  # conformance.clients.runai.RunaiClient on Run:ai
    kube: Any = None  # conformance.clients.kubernetes.KubernetesClient elsewhere
    submitted: list[str] = field(default_factory=list)

    @property
    def how(self) -> str:
        return "runai" if self.runai is not None else "kubernetes"

    def submit(self, spec: JobSpec) -> tuple[str, str | None]:
        """(the command or request shown as evidence, None) or (..., why it was refused)."""
        if self.runai is not None:
            from conformance.clients import runai as runai_client  # noqa: PLC0415 - the CLI's module, on Run:ai only

            args = runai_args(spec, self.runai.project, self.runai.generation == runai_client.NEW)
            limit = max(self.profile.timeouts.check, self.profile.timeouts.connect + self.profile.timeouts.request)
            result = self.runai.run(*args, limit=limit)
            shown = "runai " + shown_command(args)
            if not result.ok:
                return shown, result.summary()
            self.submitted.append(spec.name)
            return shown, None
        from conformance.clients.kubernetes import CREATED_BY  # noqa: PLC0415 - the SDK's module, when used

        body = kube_job(spec, CREATED_BY)
        client = self.kube._apis()
        shown = f"POST batch/v1 Job {self.kube.namespace}/{spec.name} (image {spec.image}, UID {UID})"
        batch = client.BatchV1Api(self.kube.api_client)
        _, failure = self.kube.call(batch.create_namespaced_job, self.kube.namespace, body)
        if failure is not None:
            return shown, failure.summary()
        self.submitted.append(spec.name)
        return shown, None

    def state(self, name: str) -> State:
        if self.runai is not None:
            from conformance.clients import runai as runai_client  # noqa: PLC0415 - see submit

            result, status = self.runai.describe(name)
            if not result.ok:
                return State("running", f"describe: {result.summary()}")
            ended = runai_client.outcome(status)
            return State(ended or "running", f"status {status}")
        job, failure = self.kube.read_job(name)
        if failure is not None or job is None:
            return State("running", f"read Job: {failure.summary() if failure else 'no answer'}")
        status = job.status
        if status and status.succeeded:
            return State("succeeded", "Complete")
        if status and status.failed:
            reason = next((c.reason or c.type for c in status.conditions or [] if c.type == "Failed"), "Failed")
            return State("failed", f"Failed ({reason})")
        return State("running", self._waiting(name) or "active")

    def _waiting(self, name: str) -> str | None:
        """Why the pod has not started (ImagePullBackOff, CreateContainerConfigError: a missing Secret)."""
        from conformance.clients.kubernetes import pod_waiting  # noqa: PLC0415 - see submit

        pods, failure = self.kube.job_pods(name)
        if failure is not None or pods is None:
            return None
        for pod in pods.items:
            found = pod_waiting(self.kube.as_mapping(pod))
            if found:
                return str(found)
        return None

    def log(self, name: str) -> tuple[str | None, str | None]:
        """(the job's log, None) or (None, why it could not be read)."""
        if self.runai is not None:
            result = self.runai.logs(name)
            return (result.stdout, None) if result.ok else (None, result.summary())
        pods, failure = self.kube.job_pods(name)
        if failure is not None or pods is None or not pods.items:
            return None, f"no pod of Job {name}: {failure.summary() if failure else 'none listed'}"
        text, failure = self.kube.pod_log(pods.items[0].metadata.name)
        return (str(text), None) if failure is None else (None, failure.summary())

    def delete(self, name: str) -> str | None:
        if self.runai is not None:
            result = self.runai.delete(name)
            return None if result.ok else result.summary()
        failure = self.kube.delete_job(name)
        return None if failure is None else failure.summary()

    def cleanup(self) -> list[str]:
        """Delete what this run submitted; the problems, if any."""
        problems = [f"{name}: {p}" for name in self.submitted if (p := self.delete(name))]
        self.submitted.clear()
        return problems


def connect(profile: Profile, run_id: str) -> ClusterClient:
    """The Run:ai CLI on Run:ai profiles, else the Kubernetes API client (nothing is run yet)."""
    if profile.orchestrator == "runai":
        from conformance.clients import runai  # noqa: PLC0415 - imported when the component runs

        return ClusterClient(profile, run_id, runai=runai.connect(profile, run_id))
    from conformance.clients import kubernetes  # noqa: PLC0415 - same

    return ClusterClient(profile, run_id, kube=kubernetes.connect(profile, run_id))


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """The vantage's jobs are the suite's run-id named jobs: the runai and kubernetes sweeps delete them."""
    del profile, older_than, dry_run
    note = "jobs named conformance-<run id>-clu go with the runai/kubernetes sweep, their MLflow runs with mlflow's"
    return Swept(notes=[note])
