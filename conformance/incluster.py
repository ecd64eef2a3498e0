"""Run the suite from inside the platform, as a workspace would: a Kubernetes Job, or ``runai submit``.

``python -m conformance incluster --profile X`` writes a ConfigMap holding the
profile and a Job that runs the suite image with it, mounting the secrets the
profile references and the project's PVC, where the reports are left. It
also prints the equivalent ``runai submit`` command (the guide's CLI syntax).
Compare the pod's results with a laptop's with ``python -m conformance diff``.

The ``cluster`` component (CLU checks, ``conformance.clients.cluster``) does this within a run:
it submits the suite's image as a job with the guide's flags, collects the job's results from its
log and merges them into the run's report as a second vantage. This module stays the manual way
(every check in the cluster, reports on the PVC).
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from conformance.profile import LoadedProfile

DEFAULT_IMAGE = "registry.aisingapore.net/mlops/conformance-suite:0.1.0"
PROFILE_MOUNT = "/etc/conformance"
RESULTS_MOUNT = "/results"


@dataclass
class InClusterSpec:
    loaded: LoadedProfile
    namespace: str
    image: str = DEFAULT_IMAGE
    service_account: str | None = None
    pvc: str | None = None
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (secret name, mount path)
    env_secrets: list[str] = field(default_factory=list)  # secrets exposed as environment variables
    markers: str | None = None
    uid: int = 2222
    ttl_seconds: int = 86400
    run_as_runai_project: str | None = None

    @property
    def name(self) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M")
        slug = re.sub(r"[^a-z0-9-]+", "-", self.loaded.name.lower()).strip("-")[:30]
        return f"conformance-{slug}-{stamp}"

    def marker_expression(self) -> str:
        profile = self.loaded.profile
        return self.markers or f"{profile.platform} and {profile.orchestrator}"

    def pytest_args(self) -> list[str]:
        reports = f"{RESULTS_MOUNT}/conformance/{self.loaded.name}"
        return [
            "-m",
            self.marker_expression(),
            f"--profile={PROFILE_MOUNT}/{self.loaded.name}.yaml",
            f"--reports-dir={reports}",
        ]


def manifests(spec: InClusterSpec) -> list[dict[str, Any]]:
    """A ConfigMap with the profile and a Job that runs the suite with it."""
    name = spec.name
    labels = {"app.kubernetes.io/name": "conformance-suite", "conformance/profile": spec.loaded.name}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": spec.namespace, "labels": labels},
        # The profile with its extends: chain merged, ${VARS} and secret references left for the pod.
        "data": {f"{spec.loaded.name}.yaml": yaml.safe_dump(spec.loaded.raw, sort_keys=False)},
    }
    mounts: list[dict[str, Any]] = [{"name": "profile", "mountPath": PROFILE_MOUNT, "readOnly": True}]
    volumes: list[dict[str, Any]] = [{"name": "profile", "configMap": {"name": name}}]
    if spec.pvc:
        mounts.append({"name": "results", "mountPath": RESULTS_MOUNT})
        volumes.append({"name": "results", "persistentVolumeClaim": {"claimName": spec.pvc}})
    else:
        mounts.append({"name": "results", "mountPath": RESULTS_MOUNT})
        volumes.append({"name": "results", "emptyDir": {}})
    for index, (secret, path) in enumerate(spec.secrets):
        mounts.append({"name": f"secret-{index}", "mountPath": path, "readOnly": True})
        volumes.append({"name": f"secret-{index}", "secret": {"secretName": secret, "defaultMode": 0o400}})
    container: dict[str, Any] = {
        "name": "conformance",
        "image": spec.image,
        "args": spec.pytest_args(),
        "env": [{"name": "CONFORMANCE_VANTAGE", "value": "in-cluster"}],
        "volumeMounts": mounts,
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if spec.env_secrets:
        container["envFrom"] = [{"secretRef": {"name": secret}} for secret in spec.env_secrets]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": spec.uid, "runAsGroup": spec.uid, "fsGroup": spec.uid, "runAsNonRoot": True},
        "containers": [container],
        "volumes": volumes,
    }
    if spec.service_account:
        pod_spec["serviceAccountName"] = spec.service_account
    budget = int(spec.loaded.profile.timeouts.check * 10)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": spec.ttl_seconds,
            "activeDeadlineSeconds": budget,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    return [config_map, job]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the profile in the ConfigMap) as readable ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(spec: InClusterSpec) -> str:
    return yaml.dump_all(manifests(spec), Dumper=_Dumper, sort_keys=False)


def runai_command(spec: InClusterSpec, project: str) -> str:
    """The same run through the Run:ai CLI, with the guide's flags (profile from a PVC path)."""
    pvc = spec.pvc or "<PVC>"
    profile_path = f"/{pvc}/conformance/{spec.loaded.name}.yaml"
    args = [
        "python", "-m", "pytest", "-m", spec.marker_expression(), f"--profile={profile_path}",
        f"--reports-dir=/{pvc}/conformance/reports/{spec.loaded.name}",
    ]  # fmt: skip
    inner = "cd /opt/conformance && " + shlex.join(args)
    command = [
        "runai", "submit", "--job-name-prefix", "conformance", "-p", project, "-i", spec.image,
        "--cpu", "0.25", "--cpu-limit", "1", "--memory", "512M", "--memory-limit", "1G",
        "--backoff-limit", "0", "--existing-pvc", f"claimname={pvc},path=/{pvc}",
        "--command", "--", "/bin/sh", "-c", inner,
    ]  # fmt: skip
    return shlex.join(command)
