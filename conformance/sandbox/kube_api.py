"""A simulated Kubernetes API server: enough of the real API for the K8S and RAI checks, over TLS.

SIMULATED (the report lists it as ``kubernetes-api``): no kube-apiserver can run on this machine
(see research/feasibility.md, section 8), so this is a small server of our own. It speaks the
Kubernetes JSON API the way a real server does, with complete objects (the kubernetes 37 client
validates every response with pydantic):

* ``/version`` (anonymous allowed, as ``system:public-info-viewer`` allows it);
* bearer-token authentication: an unknown or expired token gets ``401`` with a ``Status`` object,
  also on ``/version`` (a real server authenticates before it authorises);
* authorisation from a fixed allow-list per identity, answered both by
  ``SelfSubjectAccessReview`` and by ``403 Forbidden`` ``Status`` objects on the resources;
* namespaces, PersistentVolumeClaims, Secrets (read-only, fixed at start), ConfigMaps, Pods, ``pods/log``,
  Events (list, ``fieldSelector`` on their fields), and ``batch/v1`` Jobs (create, get, list,
  delete with propagation).

Admission faults, per namespace (:attr:`Cluster.admission`): a Job is accepted (201) but its pod is
refused, as a ResourceQuota with no room or a Pod Security level refuses it on a real cluster:
no pod, and the job controller's ``FailedCreate`` Warning event on the Job with the admission
message, answered from the contract transcripts ``kubernetes.yaml`` (``events-failedcreate-*``).
A failed pod fails its Job with the controller's ``Failed`` condition (``job-failed-backoff``).

A created Job gets one Pod. A pod whose image is the suite's own (``.../conformance-suite:TAG``)
runs for real, as a local process (``conformance/sandbox/pods.py``: command, env, Secrets,
ConfigMaps, volumes as folders); its phase, exit code and log are the process's, and the Job's
status follows as the job controller reports it. Any other image runs nothing: the pod "completes"
on the first read of the Job or its pods after creation, and its log is what
``/bin/sh -c 'echo WORDS'`` would print. Any other command fails the pod with a message saying the
sandbox only simulates ``echo``; ``bash`` or ``python`` in an Alpine image fails the way it does on
a real cluster (Alpine has neither: F16). ConfigMaps are created, read and deleted as given.

State is fixed at start except for what clients create (unique, run-id-named Jobs), so tests
running at the same time never see each other's faults: each fault is its own identity, PVC or
namespace.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import shlex
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from conformance.sandbox import contracts, pods
from conformance.sandbox.web import LoopbackServer

GIT_VERSION = "v1.29.4"
VERSION_INFO = {
    "major": "1",
    "minor": "29",
    "gitVersion": GIT_VERSION,
    "gitCommit": "55019c83b0fd51ef4ced8c29eec2c4847f896e74",
    "gitTreeState": "clean",
    "buildDate": "2024-04-16T15:03:24Z",
    "goVersion": "go1.21.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}
# (verb, "group/resource[/subresource]") pairs; "*" for everything.
FULL: frozenset[str] = frozenset({"*"})
READ_ONLY: frozenset[str] = frozenset(
    f"{verb} {resource}"
    for verb in ("get", "list", "watch")
    for resource in (
        "/pods",
        "/pods/log",
        "/persistentvolumeclaims",
        "/secrets",
        "batch/jobs",
        "/namespaces",
        "/events",
    )
)
_RESOURCE_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[a-z0-9.-]+)/(?P<version>v[0-9a-z]+))"
    r"(?:/namespaces/(?P<ns>[a-z0-9-]+))?/(?P<resource>[a-z]+)(?:/(?P<name>[a-z0-9.-]+))?(?:/(?P<sub>[a-z]+))?$"
)
_NAMESPACED = {"pods", "persistentvolumeclaims", "secrets", "jobs", "events"}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": name,
        "uid": str(uuid.uuid4()),
        "resourceVersion": str(secrets.randbelow(900000) + 100000),
        "creationTimestamp": now(),
    }
    if namespace:
        found["namespace"] = namespace
    found.update(extra)
    return found


def status_object(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``Status`` as the API server sends it with an error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to, what it may do, and until when it is valid."""

    user: str
    allowed: frozenset[str]
    namespaces: frozenset[str]  # where ``allowed`` applies; everyone may get/list namespaces
    expires: float | None = None  # epoch seconds (OIDC id-tokens)

    def may(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        if resource == "namespaces" and verb in ("get", "list", "watch"):
            return True
        if "*" in self.allowed:
            return namespace is None or namespace in self.namespaces
        return f"{verb} {group}/{resource}" in self.allowed and (namespace is None or namespace in self.namespaces)


@dataclass
class Cluster:
    """What the server holds: fixed objects and the Jobs/Pods clients create."""

    identities: dict[str, Identity]
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)  # (resource, ns, name)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)  # (ns, pod) -> log text
    admission: dict[str, str] = field(default_factory=dict)  # namespace -> transcript of the pods' refusal
    lock: threading.RLock = field(default_factory=threading.RLock)
    runtime: pods.Runtime | None = None  # runs the pods of the suite's own image (conformance/sandbox/pods.py)

    def lookup(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A stored object (a pod's Secrets and ConfigMaps, for :class:`pods.Runtime`)."""
        with self.lock:
            return self.objects.get((resource, namespace, name))

    def run_locally(self, pod: dict[str, Any]) -> bool:
        """Start ``pod`` as a local process if its image is the suite's own; False for any other image."""
        image = str(pod["spec"]["containers"][0].get("image", ""))
        if self.runtime is None or not pods.is_suite_image(image):
            return False
        pod["status"] = self.runtime.start(pod).container_status()
        return True

    def local_pod(self, namespace: str, name: str) -> pods.LocalPod | None:
        return self.runtime.get(namespace, name) if self.runtime is not None else None

    def remove_pod(self, namespace: str, name: str) -> None:
        """Delete a pod object, its log, and its process if it has one."""
        self.objects.pop(("pods", namespace, name), None)
        self.logs.pop((namespace, name), None)
        if self.runtime is not None:
            self.runtime.delete(namespace, name)

    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.namespaces[name] = {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": meta(name, labels={"kubernetes.io/metadata.name": name, **(labels or {})}),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def add_pvc(self, namespace: str, name: str, *, phase: str, modes: list[str], storage_class: str) -> None:
        spec = {
            "accessModes": modes,
            "resources": {"requests": {"storage": "1Ti"}},
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
        }
        status: dict[str, Any] = {"phase": phase}
        if phase == "Bound":
            spec["volumeName"] = f"pvc-{uuid.uuid4()}"
            status.update({"accessModes": modes, "capacity": {"storage": "1Ti"}})
        self.objects[("persistentvolumeclaims", namespace, name)] = {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "metadata": meta(name, namespace, finalizers=["kubernetes.io/pvc-protection"]),
            "spec": spec,
            "status": status,
        }

    def add_secret(self, namespace: str, name: str, keys: list[str], kind: str = "Opaque") -> None:
        # Values are random: the suite must never read them, and would find nothing useful if it did.
        data = {key: secrets.token_urlsafe(12) for key in keys}
        self.objects[("secrets", namespace, name)] = {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": meta(name, namespace),
            "type": kind,
            "data": data,
        }


# --------------------------------------------------------------------------- jobs and pods


def _container_command(job: dict[str, Any]) -> tuple[str, list[str]]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return str(container.get("image", "")), [*container.get("command", []), *container.get("args", [])]


def simulate_run(image: str, command: list[str]) -> tuple[bool, str, str]:
    """(succeeded, log, reason) of what the container would do; only ``sh -c 'echo ...'`` is simulated."""
    shell = command[0] if command else ""
    if image.rsplit("/", maxsplit=1)[-1].startswith("alpine") and shell.rsplit("/", 1)[-1] in (
        "bash",
        "python",
        "python3",
    ):
        message = f'exec: "{shell}": stat {shell}: no such file or directory'
        return False, "", f"StartError: {message}"
    if len(command) == 3 and shell in ("/bin/sh", "sh") and command[1] == "-c":
        words = shlex.split(command[2])
        if words and words[0] == "echo":
            return True, " ".join(words[1:]) + "\n", "Completed"
    return False, "", "the sandbox simulates only /bin/sh -c 'echo ...' (conformance/sandbox/kube_api.py)"


def make_pod(job: dict[str, Any], namespace: str) -> dict[str, Any]:
    job_name = job["metadata"]["name"]
    labels = {"job-name": job_name, "batch.kubernetes.io/job-name": job_name, "controller-uid": job["metadata"]["uid"]}
    pod_spec = dict(job["spec"]["template"]["spec"])
    pod_spec.setdefault("restartPolicy", "Never")
    pod_spec["nodeName"] = "sandbox-node-1"
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta(
            f"{job_name}-{secrets.token_hex(3)[:5]}",
            namespace,
            labels=labels,
            ownerReferences=[
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job_name,
                    "uid": job["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        ),
        "spec": pod_spec,
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]},
    }


def finish(cluster: Cluster, namespace: str, job: dict[str, Any], pod: dict[str, Any]) -> None:
    """Complete the job's pod (the simulation's one step), once."""
    if job["status"].get("completionTime") or job["status"].get("failed"):
        return
    image, command = _container_command(job)
    ok, log, reason = simulate_run(image, command)
    stamp = now()
    container = job["spec"]["template"]["spec"]["containers"][0]["name"]
    terminated = {"exitCode": 0 if ok else 128, "reason": "Completed" if ok else "StartError", "message": reason}
    terminated.update({"startedAt": stamp, "finishedAt": stamp})
    pod["status"] = {
        "phase": "Succeeded" if ok else "Failed",
        "startTime": stamp,
        "hostIP": "10.0.0.11",
        "podIP": "10.42.0.17",
        "containerStatuses": [
            {
                "name": container,
                "image": image,
                "imageID": f"docker.io/library/{image}@sha256:{secrets.token_hex(32)}",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"terminated": terminated},
            }
        ],
    }
    cluster.logs[(namespace, pod["metadata"]["name"])] = log
    if ok:
        condition = {"type": "Complete", "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp}
        job["status"] = {"startTime": stamp, "active": 0, "conditions": [condition]}
        job["status"].update({"succeeded": 1, "completionTime": stamp})
    else:
        transcript = contracts.get("kubernetes", "job-failed-backoff")
        job["status"] = json.loads(transcript.render(transcript.http.body, time=stamp))  # type: ignore[union-attr] # an http transcript


def finish_local(job: dict[str, Any], pod: dict[str, Any], local: pods.LocalPod) -> None:
    """The pod's and its Job's status from the pod's real process (the job controller's view of it)."""
    pod["status"] = local.container_status()
    if job["status"].get("completionTime") or job["status"].get("failed"):
        return
    phase, stamp = local.phase, now()
    if phase == "Succeeded":
        condition = {"type": "Complete", "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp}
        job["status"] = {"startTime": job["status"].get("startTime", stamp), "active": 0, "conditions": [condition]}
        job["status"].update({"succeeded": 1, "ready": 0, "completionTime": stamp})
    elif phase == "Failed":
        transcript = contracts.get("kubernetes", "job-failed-backoff")
        job["status"] = json.loads(transcript.render(transcript.http.body, time=stamp))  # type: ignore[union-attr] # an http transcript
    else:
        job["status"].update({"active": 1, "ready": 1 if local.ready else 0})


def refusal_events(transcript_name: str, job: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """The job controller's FailedCreate events for a pod that admission refused, from the transcript."""
    transcript = contracts.get("kubernetes", transcript_name)
    body = transcript.render(
        transcript.http.body,  # type: ignore[union-attr] # an http transcript
        rv=str(secrets.randbelow(900000) + 100000),
        job=job["metadata"]["name"],
        event_id=secrets.token_hex(8),
        namespace=namespace,
        event_uid=str(uuid.uuid4()),
        time=now(),
        job_uid=job["metadata"]["uid"],
        job_rv=job["metadata"]["resourceVersion"],
        pod=f"{job['metadata']['name']}-{secrets.token_hex(3)[:5]}",
        quota="compute-resources",
    )
    items = json.loads(body)["items"]
    return [item for item in items if isinstance(item, dict)]


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    server: KubeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        return

    # -- plumbing

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            found = json.loads(self.rfile.read(length))
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def _identity(self) -> Identity | bool | None:
        """The caller; None when anonymous; False when the token is not valid (401)."""
        header = self.headers.get("Authorization")
        if not header:
            return None
        if not header.startswith("Bearer "):
            return False
        identity = self.server.cluster.identities.get(header[7:].strip())
        if identity is None:
            return False
        if identity.expires is not None and identity.expires < dt.datetime.now(dt.UTC).timestamp():
            return False
        return identity

    def _handle(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        body = self._body() if method == "POST" else {}
        identity = self._identity()
        if identity is False:
            self._send(401, status_object(401, "Unauthorized", "Unauthorized"))
            return
        if parts.path.rstrip("/") == "/version":
            self._send(200, VERSION_INFO)
            return
        if identity is None:
            message = f'forbidden: User "system:anonymous" cannot {method.lower()} path "{parts.path}"'
            self._send(403, status_object(403, "Forbidden", message, {}))
            return
        assert isinstance(identity, Identity)  # noqa: S101 - narrowed above; for mypy
        if parts.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" and method == "POST":
            self._send(201, access_review(identity, body))
            return
        match = _RESOURCE_PATH.match(parts.path)
        if match is None:
            self._send(404, status_object(404, "NotFound", "the server could not find the requested resource", {}))
            return
        query = dict(urllib.parse.parse_qsl(parts.query))
        code, answer = Request(self.server.cluster, identity, method, match, query, body).answer()
        if code == 200 and isinstance(answer, dict) and "as=PartialObjectMetadata;" in self.headers.get("Accept", ""):
            answer = partial_metadata(answer)
        if isinstance(answer, str):
            self._send(code, answer, "text/plain")
        else:
            self._send(code, answer)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """What a real server sends for ``Accept: ...;as=PartialObjectMetadata``: metadata, no data."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def access_review(identity: Identity, body: dict[str, Any]) -> dict[str, Any]:
    attributes = (body.get("spec") or {}).get("resourceAttributes") or {}
    resource = str(attributes.get("resource", ""))
    if attributes.get("subresource"):
        resource = f"{resource}/{attributes['subresource']}"
    allowed = identity.may(
        str(attributes.get("verb", "")), str(attributes.get("group", "")), resource, attributes.get("namespace") or None
    )
    status: dict[str, Any] = {"allowed": allowed}
    if allowed:
        status["reason"] = (
            f'RBAC: allowed by RoleBinding "runai-users" of ClusterRole "runai-researcher" to User "{identity.user}"'
        )
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": body.get("spec") or {},
        "status": status,
    }


_KINDS = {
    "pods": ("Pod", "v1"),
    "persistentvolumeclaims": ("PersistentVolumeClaim", "v1"),
    "secrets": ("Secret", "v1"),
    "jobs": ("Job", "batch/v1"),
    "namespaces": ("Namespace", "v1"),
    "events": ("Event", "v1"),
    "configmaps": ("ConfigMap", "v1"),
}
# Created and deleted as given (no controller acts on them): a pod's ConfigMaps.
_PLAIN = {"configmaps"}


@dataclass
class Request:
    cluster: Cluster
    identity: Identity
    method: str
    match: re.Match[str]
    query: dict[str, str]
    body: dict[str, Any]

    @property
    def group(self) -> str:
        return self.match.group("group") or ""

    @property
    def resource(self) -> str:
        return self.match.group("resource")

    @property
    def namespace(self) -> str | None:
        return self.match.group("ns")

    @property
    def name(self) -> str | None:
        return self.match.group("name")

    def verb(self) -> str:
        if self.method == "POST":
            return "create"
        if self.method == "DELETE":
            return "delete"
        return "get" if self.name else "list"

    def forbidden(self, verb: str, resource: str) -> tuple[int, dict[str, Any]]:
        what = (
            f'{resource.split("/", maxsplit=1)[0]} "{self.name}"' if self.name else resource.split("/", maxsplit=1)[0]
        )
        where = f' in the namespace "{self.namespace}"' if self.namespace else " at the cluster scope"
        message = (
            f'{what} is forbidden: User "{self.identity.user}" cannot {verb} resource "{resource}" '
            f'in API group "{self.group}"{where}'
        )
        details: dict[str, Any] = {"kind": resource.split("/", maxsplit=1)[0]}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        return 403, status_object(403, "Forbidden", message, details)

    def not_found(self, resource: str, name: str) -> tuple[int, dict[str, Any]]:
        details = {"name": name, "kind": resource, **({"group": self.group} if self.group else {})}
        what = f"{resource}.{self.group}" if self.group else resource
        return 404, status_object(404, "NotFound", f'{what} "{name}" not found', details)

    def answer(self) -> tuple[int, Any]:
        resource, sub = self.resource, self.match.group("sub")
        full = f"{resource}/{sub}" if sub else resource
        if resource not in _KINDS or (sub and full != "pods/log"):
            return 404, status_object(404, "NotFound", "the server could not find the requested resource", {})
        verb = self.verb()
        if not self.identity.may(verb, self.group, full, self.namespace):
            return self.forbidden(verb, full)
        with self.cluster.lock:
            if resource == "namespaces":
                return self._namespaces()
            if self.namespace not in self.cluster.namespaces:
                if verb == "list":
                    return 200, self._list(resource, [])
                return self.not_found("namespaces", self.namespace or "")
            if resource == "jobs":
                return self._jobs(verb)
            if full == "pods/log":
                return self._log()
            if resource in _PLAIN and verb in ("create", "delete"):
                return self._plain(resource, verb)
            return self._read(resource, verb)

    def _list(self, resource: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        kind, version = _KINDS[resource]
        return {
            "kind": f"{kind}List",
            "apiVersion": version,
            "metadata": {"resourceVersion": str(secrets.randbelow(900000) + 100000)},
            "items": items,
        }

    def _namespaces(self) -> tuple[int, Any]:
        if self.name is None:
            return 200, self._list("namespaces", list(self.cluster.namespaces.values()))
        found = self.cluster.namespaces.get(self.name)
        return (200, found) if found else self.not_found("namespaces", self.name)

    def _matching(self, resource: str) -> list[dict[str, Any]]:
        selector = dict(part.split("=", 1) for part in self.query.get("labelSelector", "").split(",") if "=" in part)
        fields = dict(part.split("=", 1) for part in self.query.get("fieldSelector", "").split(",") if "=" in part)
        found = []
        for (kind, ns, _), obj in self.cluster.objects.items():
            labels = obj["metadata"].get("labels") or {}
            if (
                kind == resource
                and ns == self.namespace
                and all(labels.get(k) == v for k, v in selector.items())
                and all(_field(obj, path) == value for path, value in fields.items())
            ):
                found.append(obj)
        return found

    def _read(self, resource: str, verb: str) -> tuple[int, Any]:
        if verb == "list":
            if resource == "pods":
                self._advance_jobs()
            return 200, self._list(resource, self._matching(resource))
        if verb != "get":
            return 405, status_object(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
            )
        if resource == "pods":
            self._advance_jobs()
        found = self.cluster.objects.get((resource, self.namespace or "", self.name or ""))
        return (200, found) if found else self.not_found(resource, self.name or "")

    def _plain(self, resource: str, verb: str) -> tuple[int, Any]:
        """Create (201; 409 if the name is taken) or delete (200 with the object) an object no controller owns."""
        ns = self.namespace or ""
        kind, version = _KINDS[resource]
        if verb == "delete":
            found = self.cluster.objects.pop((resource, ns, self.name or ""), None)
            return (200, found) if found else self.not_found(resource, self.name or "")
        name = str((self.body.get("metadata") or {}).get("name") or "")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
            message = f'{kind} "{name}" is invalid: metadata.name: Invalid value: "{name}": '
            message += "a lowercase RFC 1123 subdomain"
            return 422, status_object(422, "Invalid", message, {"name": name, "kind": kind})
        if (resource, ns, name) in self.cluster.objects:
            message = f'{resource} "{name}" already exists'
            return 409, status_object(409, "AlreadyExists", message, {"name": name, "kind": resource})
        obj = {**self.body, "kind": kind, "apiVersion": version}
        obj["metadata"] = meta(name, ns, labels=(self.body.get("metadata") or {}).get("labels") or {})
        self.cluster.objects[(resource, ns, name)] = obj
        return 201, obj

    def _log(self) -> tuple[int, Any]:
        self._advance_jobs()
        pod = self.cluster.objects.get(("pods", self.namespace or "", self.name or ""))
        if pod is None:
            return self.not_found("pods", self.name or "")
        local = self.cluster.local_pod(self.namespace or "", self.name or "")
        if local is not None and local.popen is not None:
            return 200, local.log()
        log = self.cluster.logs.get((self.namespace or "", self.name or ""))
        if log is None:
            container = pod["spec"]["containers"][0]["name"]
            message = f'container "{container}" in pod "{self.name}" is waiting to start: ContainerCreating'
            return 400, status_object(400, "BadRequest", message)
        return 200, log

    def _advance_jobs(self) -> None:
        """The simulation's clock: every pod created before this read has run (or, run locally, is read now)."""
        for (kind, ns, _), job in list(self.cluster.objects.items()):
            if kind == "jobs" and ns == self.namespace and job.get("_pod"):
                pod = self.cluster.objects.get(("pods", ns, job["_pod"]))
                local = self.cluster.local_pod(ns, job["_pod"])
                if pod is not None and local is not None:
                    finish_local(job, pod, local)
                elif pod is not None:
                    finish(self.cluster, ns, job, pod)
        for (kind, ns, name), pod in list(self.cluster.objects.items()):
            local = self.cluster.local_pod(ns, name) if kind == "pods" and ns == self.namespace else None
            if local is not None:
                pod["status"] = local.container_status()

    def _jobs(self, verb: str) -> tuple[int, Any]:
        ns = self.namespace or ""
        if verb == "create":
            return self._create_job(ns)
        if verb == "list":
            self._advance_jobs()
            return 200, self._list("jobs", [self._public(j) for j in self._matching("jobs")])
        key = ("jobs", ns, self.name or "")
        job = self.cluster.objects.get(key)
        if job is None:
            return self.not_found("jobs", self.name or "")
        if verb == "get":
            self._advance_jobs()
            return 200, self._public(job)
        # delete: Background/Foreground remove the pods too; Orphan leaves them.
        del self.cluster.objects[key]
        policy = self.body.get("propagationPolicy") or self.query.get("propagationPolicy") or "Background"
        if policy != "Orphan":
            for pod in self._pods_of(job):
                self.cluster.remove_pod(ns, pod["metadata"]["name"])
        details = {"name": self.name, "group": "batch", "kind": "jobs", "uid": job["metadata"]["uid"]}
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _pods_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return [
            obj
            for (kind, _, _), obj in self.cluster.objects.items()
            if kind == "pods" and (obj["metadata"].get("labels") or {}).get("controller-uid") == uid
        ]

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def _create_job(self, ns: str) -> tuple[int, Any]:
        body = self.body
        name = str((body.get("metadata") or {}).get("name") or "")
        try:
            containers = body["spec"]["template"]["spec"]["containers"]
            complete = bool(containers) and all(c.get("name") and c.get("image") for c in containers)
        except (KeyError, TypeError, AttributeError):
            complete = False
        if not complete:
            message = "Job.batch is invalid: spec.template.spec.containers: Required value"
            return 422, status_object(422, "Invalid", message, {"kind": "Job", "group": "batch"})
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 63:
            message = (
                f'Job.batch "{name}" is invalid: metadata.name: Invalid value: "{name}": a lowercase RFC 1123 label'
            )
            return 422, status_object(422, "Invalid", message, {"name": name, "kind": "Job", "group": "batch"})
        if ("jobs", ns, name) in self.cluster.objects:
            message = f'jobs.batch "{name}" already exists'
            return 409, status_object(409, "AlreadyExists", message, {"name": name, "group": "batch", "kind": "jobs"})
        metadata = meta(name, ns, labels=(body.get("metadata") or {}).get("labels") or {})
        spec = dict(body["spec"])
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        job: dict[str, Any] = {
            "kind": "Job",
            "apiVersion": "batch/v1",
            "metadata": metadata,
            "spec": spec,
            "status": {},
        }
        refusal = self.cluster.admission.get(ns)
        if refusal is not None:  # accepted; the job controller's pod is refused by admission
            job["status"] = {"startTime": now(), "ready": 0, "uncountedTerminatedPods": {}}
            self.cluster.objects[("jobs", ns, name)] = job
            for event in refusal_events(refusal, job, ns):
                self.cluster.objects[("events", ns, event["metadata"]["name"])] = event
            return 201, self._public(job)
        pod = make_pod(job, ns)
        job["_pod"] = pod["metadata"]["name"]
        job["status"] = {"active": 1, "startTime": now()}
        self.cluster.objects[("jobs", ns, name)] = job
        self.cluster.objects[("pods", ns, pod["metadata"]["name"])] = pod
        self.cluster.run_locally(pod)
        return 201, self._public(job)


def _field(obj: dict[str, Any], path: str) -> str | None:
    """A dotted field of an object as a field selector reads it (``involvedObject.name``)."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None else str(value)


class KubeApiServer(LoopbackServer):
    def __init__(self, cluster: Cluster, cert: tuple[Path, Path]) -> None:
        super().__init__(_Handler, cert)
        self.cluster = cluster
