"""The sandbox's kubelet: pods whose image is the suite's own image run as real local processes.

SIMULATED (part of ``kubernetes-api`` in the report): there is no container runtime here. The
simulated API server (``kube_api.py``) hands every pod whose image is the suite's image
(repository name ending in ``conformance-suite``, any registry and tag: :func:`is_suite_image`)
to a :class:`Runtime`, which starts the container's command as a process of the sandbox's own
Python environment; pods of other images keep the API server's one-step simulation.

API (for the API server and for code that builds on it)::

    runtime = Runtime(root, lookup, base_env={...})   # root: a folder of the sandbox
    local = runtime.start(pod)      # pod: the Pod object (dict) as the API server stores it
    local.phase                     # "Pending" | "Running" | "Succeeded" | "Failed"
    local.exit_code                 # None while it runs
    local.ready                     # running, and listening on ``local.port`` if it declares ports
    local.port                      # the loopback port given to the process as $PORT (and $HOST=127.0.0.1)
    local.log()                     # stdout and stderr so far (``GET .../pods/NAME/log``)
    local.container_status()        # the pod's ``status`` as a kubelet reports it (phase, containerStatuses)
    local.wait(timeout)             # until it ends; local.stop() ends it (SIGTERM, then SIGKILL)
    runtime.stop()                  # every pod (the sandbox calls it when it stops)
    pvc_dir(root, namespace, claim) # the folder a PersistentVolumeClaim's mounts map to

What the container gets, mapped onto this machine:

* command and args (else the image's ``ENTRYPOINT ["python", "-m", "pytest"]`` and ``CMD``):
  ``python``/``python3``, ``pytest`` and ``conformance`` (absolute paths too) run with
  ``sys.executable``; ``/bin/sh -c '...'`` runs as written, with those names first on ``PATH``;
* env: literal ``value``s, ``valueFrom`` ``secretKeyRef``/``configMapKeyRef`` (base64 ``data`` of
  Secrets decoded) and ``fieldRef`` (metadata.name/namespace), ``envFrom`` ``secretRef``/
  ``configMapRef`` (with ``prefix``); a missing non-optional key fails the pod as the kubelet does
  (``CreateContainerConfigError``). Nothing of the sandbox's own environment is inherited, except
  ``base_env`` (PATH, PYTHONPATH so that ``conformance`` imports, ``KUBERNETES_SERVICE_HOST/PORT``);
* volumes: a PVC is a folder per claim (:func:`pvc_dir`), a Secret or ConfigMap volume a folder of
  files written from its data (``items`` honoured), an ``emptyDir`` a folder of the pod; a mount's
  ``mountPath`` (and ``subPath``) is rewritten to its folder wherever it starts a path in the
  command, args, env values and ``workingDir``; the image's ``WORKDIR /opt/conformance`` is the
  suite's checkout;
* no UID, no resource limits, no network isolation: processes run as the sandbox's user on loopback.

Processes die with the sandbox (``PR_SET_PDEATHSIG``, started from one long-lived thread, since the
signal follows the thread that forked), are bounded by ``activeDeadlineSeconds`` or
:attr:`Runtime.max_seconds`, and are stopped when their pod is deleted.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ctypes
import datetime as dt
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The image's Dockerfile: WORKDIR, ENTRYPOINT and CMD.
IMAGE_WORKDIR = "/opt/conformance"
IMAGE_ENTRYPOINT = ("python", "-m", "pytest")
IMAGE_CMD = ("--help",)
CHECKOUT = Path(__file__).resolve().parents[2]
_SUITE_IMAGE = re.compile(r"^(?:[^/]+/)*[a-z0-9._-]*conformance-suite(?::[\w.-]+)?(?:@sha256:[0-9a-f]{64})?$")
_PR_SET_PDEATHSIG = 1
# Lookup of a Secret or ConfigMap: (resource "secrets"|"configmaps", namespace, name) -> object or None.
Lookup = Callable[[str, str, str], "dict[str, Any] | None"]


def is_suite_image(image: str) -> bool:
    """``.../conformance-suite[:tag][@digest]``: the images the sandbox runs for real."""
    return bool(_SUITE_IMAGE.match(image.strip()))


def pvc_dir(root: Path, namespace: str, claim: str) -> Path:
    """The folder that PersistentVolumeClaim ``claim``'s mounts map to (shared by every pod)."""
    return root / "pvc" / namespace / claim


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodConfigError(Exception):
    """What the kubelet reports as ``CreateContainerConfigError`` (a missing Secret or key)."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _Launcher:
    """One long-lived thread that forks every pod process (PDEATHSIG follows the forking thread)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._loop, name="sandbox-kubelet", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            work, future = self._jobs.get()
            try:
                future.set_result(work())
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                future.set_exception(exc)

    def spawn(self, work: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        future: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((work, future))
        return future.result(timeout=30)


def _decoded(obj: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's or ConfigMap's values as text (Secret ``data`` is base64; ``stringData`` is not)."""
    values: dict[str, str] = {}
    for key, value in (obj.get("data") or {}).items():
        text = str(value)
        if obj.get("kind") == "Secret":
            with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                text = base64.b64decode(text, validate=True).decode()
        values[str(key)] = text
    values.update({str(k): str(v) for k, v in (obj.get("stringData") or {}).items()})
    return values


@dataclass
class LocalPod:
    """One pod's process; read its state at any time (thread-safe reads of Popen)."""

    name: str
    namespace: str
    container: str
    image: str
    restart_policy: str
    folder: Path
    port: int
    declares_ports: bool
    popen: subprocess.Popen[bytes] | None = None
    problem: tuple[str, str] | None = None  # (reason, message): the container never started
    started: str = field(default_factory=now)
    finished: str | None = None
    timer: threading.Timer | None = None
    deadline_exceeded: bool = False

    @property
    def log_file(self) -> Path:
        return self.folder / "container.log"

    @property
    def exit_code(self) -> int | None:
        if self.popen is None:
            return None
        code = self.popen.poll()
        if code is None:
            return None
        if self.finished is None:
            self.finished = now()
        return 128 - code if code < 0 else code  # killed by signal N: 128+N, as a container runtime reports

    @property
    def phase(self) -> str:
        if self.problem is not None or self.popen is None:
            return "Pending"
        code = self.exit_code
        if code is None:
            return "Running"
        if self.restart_policy == "Always":
            return "Running"  # the kubelet restarts it (CrashLoopBackOff); the pod stays Running
        return "Succeeded" if code == 0 else "Failed"

    @property
    def ready(self) -> bool:
        if self.popen is None or self.exit_code is not None:
            return False
        if not self.declares_ports:
            return True
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def wait(self, timeout: float) -> int | None:
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        return self.exit_code

    def stop(self, grace: float = 5.0) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)

    def expire(self) -> None:
        self.deadline_exceeded = True
        self.stop()

    def container_status(self) -> dict[str, Any]:
        """The pod's ``status`` as the kubelet reports it from this process."""
        ready = self.ready
        status: dict[str, Any] = {
            "name": self.container,
            "image": self.image,
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": self.popen is not None and self.exit_code is None,
        }
        code = self.exit_code
        if self.problem is not None:
            status["state"] = {"waiting": {"reason": self.problem[0], "message": self.problem[1]}}
        elif self.popen is None:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif code is None:
            status["state"] = {"running": {"startedAt": self.started}}
        else:
            terminated = {
                "exitCode": code,
                "reason": "Completed" if code == 0 else ("DeadlineExceeded" if self.deadline_exceeded else "Error"),
                "startedAt": self.started,
                "finishedAt": self.finished or now(),
            }
            if self.restart_policy == "Always":
                message = f"back-off 10s restarting failed container={self.container} pod={self.name}"
                status.update({"restartCount": 1, "lastState": {"terminated": terminated}})
                status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
            else:
                status["state"] = {"terminated": terminated}
        condition = "True" if ready else "False"
        return {
            "phase": self.phase,
            "startTime": self.started,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": self.started},
                {"type": "Initialized", "status": "True", "lastTransitionTime": self.started},
                {"type": "ContainersReady", "status": condition, "lastTransitionTime": self.started},
                {"type": "Ready", "status": condition, "lastTransitionTime": self.started},
            ],
            "containerStatuses": [status],
        }


@dataclass
class Runtime:
    """Starts and tracks the pods the API server hands it; ``stop()`` ends them all."""

    root: Path
    lookup: Lookup
    base_env: dict[str, str] = field(default_factory=dict)
    max_seconds: float = 600.0
    pods: dict[tuple[str, str], LocalPod] = field(default_factory=dict)
    _launcher: _Launcher | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.bin = self.root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        python = shlex.quote(sys.executable)
        shims = {
            "python": f'exec {python} "$@"',
            "python3": f'exec {python} "$@"',
            "pytest": f'exec {python} -m pytest "$@"',
            "conformance": f'exec {python} -m conformance "$@"',
        }
        for name, line in shims.items():
            shim = self.bin / name
            note = f"# the sandbox's stand-in for the image's {name} (conformance/sandbox/pods.py)"
            shim.write_text(f"#!/bin/sh\n{note}\n{line}\n")
            shim.chmod(0o755)

    def get(self, namespace: str, name: str) -> LocalPod | None:
        return self.pods.get((namespace, name))

    def start(self, pod: dict[str, Any]) -> LocalPod:
        """Run the pod's first container; a configuration error leaves it waiting with the kubelet's reason."""
        namespace = str(pod["metadata"]["namespace"])
        name = str(pod["metadata"]["name"])
        spec = pod["spec"]
        container = spec["containers"][0]
        folder = self.root / "pods" / namespace / name
        folder.mkdir(parents=True, exist_ok=True)
        local = LocalPod(
            name=name,
            namespace=namespace,
            container=str(container.get("name", "")),
            image=str(container.get("image", "")),
            restart_policy=str(spec.get("restartPolicy") or "Always"),
            folder=folder,
            port=_free_port(),
            declares_ports=bool(container.get("ports")),
        )
        with self._lock:
            self.pods[(namespace, name)] = local
        try:
            paths = self._volumes(pod, folder)
            env = self._env(pod, container, local)
        except PodConfigError as exc:
            local.problem = ("CreateContainerConfigError", str(exc))
            return local
        argv = [_map(arg, paths) for arg in _argv(container)]
        argv[0] = self._executable(argv[0])
        cwd = Path(_map(str(container.get("workingDir") or IMAGE_WORKDIR), paths))
        cwd.mkdir(parents=True, exist_ok=True)
        env = {key: _map(value, paths) for key, value in env.items()}
        if self._launcher is None:
            self._launcher = _Launcher()
        log = local.log_file

        def spawn() -> subprocess.Popen[bytes]:
            with log.open("wb") as out:
                return subprocess.Popen(  # argv from a pod of the sandbox's own API server, run as its user
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - PDEATHSIG; forked from the launcher thread
                )

        try:
            local.popen = self._launcher.spawn(spawn)
        except OSError as exc:  # no such executable: the runtime's StartError
            local.problem = ("StartError", f'exec: "{argv[0]}": {exc.strerror or exc}')
            return local
        local.started = now()
        seconds = float(spec.get("activeDeadlineSeconds") or self.max_seconds)
        local.timer = threading.Timer(min(seconds, self.max_seconds), local.expire)
        local.timer.daemon = True
        local.timer.start()
        return local

    def delete(self, namespace: str, name: str) -> None:
        with self._lock:
            local = self.pods.pop((namespace, name), None)
        if local is not None:
            local.stop()

    def stop(self) -> None:
        with self._lock:
            found = list(self.pods.values())
            self.pods.clear()
        for local in found:
            local.stop(grace=2.0)

    # -- the container's view

    def _executable(self, first: str) -> str:
        shim = self.bin / first.rsplit("/", 1)[-1]
        if shim.is_file() and (first.rsplit("/", 1)[-1] in ("python", "python3", "pytest", "conformance")):
            return str(shim)
        if re.fullmatch(r"(?:/usr(?:/local)?)?/bin/python3(?:\.\d+)?", first):
            return str(self.bin / "python")
        return first

    def _source(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        obj = self.lookup(kind, namespace, name)
        if obj is None:
            if optional:
                return None
            raise PodConfigError(f'{"secret" if kind == "secrets" else "configmap"} "{name}" not found')
        return _decoded(obj)

    def _env(self, pod: dict[str, Any], container: dict[str, Any], local: LocalPod) -> dict[str, str]:
        namespace = local.namespace
        env = {
            **self.base_env,
            "PATH": f"{self.bin}:{self.base_env.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(local.folder / "home"),
            "HOSTNAME": local.name,
            "HOST": "127.0.0.1",
            "PORT": str(local.port),
        }
        (local.folder / "home").mkdir(exist_ok=True)
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef") or source.get("configMapRef") or {}
            kind = "secrets" if "secretRef" in source else "configmaps"
            values = self._source(kind, namespace, str(ref.get("name", "")), bool(ref.get("optional")))
            prefix = str(source.get("prefix") or "")
            env.update({f"{prefix}{key}": value for key, value in (values or {}).items()})
        for entry in container.get("env") or []:
            key = str(entry.get("name", ""))
            if "value" in entry:
                env[key] = str(entry["value"] if entry["value"] is not None else "")
                continue
            source = entry.get("valueFrom") or {}
            if "fieldRef" in source:
                fields = {"metadata.name": local.name, "metadata.namespace": namespace, "status.podIP": "127.0.0.1"}
                env[key] = fields.get(str(source["fieldRef"].get("fieldPath")), "")
                continue
            ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
            if ref is None:
                continue
            kind = "secrets" if "secretKeyRef" in source else "configmaps"
            values = self._source(kind, namespace, str(ref.get("name", "")), bool(ref.get("optional")))
            if values is None:
                continue
            if ref.get("key") not in values:
                if ref.get("optional"):
                    continue
                what = "Secret" if kind == "secrets" else "ConfigMap"
                where = f"{namespace}/{ref.get('name')}"
                raise PodConfigError(f"couldn't find key {ref.get('key')} in {what} {where}")
            env[key] = values[str(ref["key"])]
        return env

    def _volumes(self, pod: dict[str, Any], folder: Path) -> dict[str, Path]:
        """mountPath -> folder, for the first container's mounts, with the volumes' files written."""
        namespace = str(pod["metadata"]["namespace"])
        places: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            name = str(volume.get("name", ""))
            place = folder / "volumes" / name
            if "persistentVolumeClaim" in volume:
                place = pvc_dir(self.root, namespace, str(volume["persistentVolumeClaim"].get("claimName", "")))
            elif "secret" in volume or "configMap" in volume:
                kind = "secrets" if "secret" in volume else "configmaps"
                ref = volume.get("secret") or volume.get("configMap") or {}
                source_name = str(ref.get("secretName") or ref.get("name") or "")
                values = self._source(kind, namespace, source_name, bool(ref.get("optional"))) or {}
                items = ref.get("items") or [{"key": key, "path": key} for key in values]
                place.mkdir(parents=True, exist_ok=True)
                for item in items:
                    if item.get("key") in values:
                        target = place / str(item.get("path") or item["key"])
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_text(values[str(item["key"])])
                        target.chmod(0o600)
            place.mkdir(parents=True, exist_ok=True)
            places[name] = place
        container = pod["spec"]["containers"][0]
        paths: dict[str, Path] = {IMAGE_WORKDIR: CHECKOUT}
        for mount in container.get("volumeMounts") or []:
            found = places.get(str(mount.get("name", "")))
            if found is None:
                raise PodConfigError(f'volume "{mount.get("name")}" of a volumeMount is not in the pod\'s volumes')
            place = found
            if mount.get("subPath"):
                place = found / str(mount["subPath"])
                place.mkdir(parents=True, exist_ok=True)
            paths[str(mount.get("mountPath", "")).rstrip("/") or "/"] = place
        return paths


def _argv(container: Mapping[str, Any]) -> list[str]:
    command = [str(part) for part in container.get("command") or []]
    args = [str(part) for part in container.get("args") or []]
    if command:
        return [*command, *args]
    return [*IMAGE_ENTRYPOINT, *(args or IMAGE_CMD)]


def _map(text: str, paths: Mapping[str, Path]) -> str:
    """Rewrite each mount path where it starts a path in ``text`` (longest first)."""
    for mount in sorted(paths, key=len, reverse=True):
        if mount == "/":
            continue
        pattern = re.compile(rf"(?<![\w./-]){re.escape(mount)}(?=/|$|[\s'\";:,=])")
        text = pattern.sub(str(paths[mount]).replace("\\", "\\\\"), text)
    return text


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
