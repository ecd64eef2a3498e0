"""The sandbox's ``runai``: a SIMULATED Run:ai CLI v2 (the kubeconfig-based one the guide uses).

The report lists it as ``runai-cli``. The real CLI is a Go binary downloaded from a Run:ai
tenant; none can be had here. This stand-in keeps the real CLI's behaviour where the suite
relies on it, and its output shapes (from Run:ai's docs and the open-source runai-cli):

* it reads the kubeconfig from ``KUBECONFIG`` (else ``~/.kube/config``), uses its
  current-context and authenticates with the user's OIDC ``id-token`` (or a token);
* ``runai version`` prints ``Version:``, ``BuildDate:``, ``GitCommit:``, ``GoVersion:``, ``Compiler:``;
* ``runai config project P`` sets the current context's namespace to ``runai-P`` (as the real
  CLI does) and prints ``Project P has been set as default project``;
* ``runai list projects`` lists namespaces labelled ``runai/queue`` and marks the default one
  ``(default)``;
* ``runai submit NAME -p P -i IMAGE [--cpu C] [--memory M] [--command] -- CMD...``,
  ``runai describe job NAME -p P`` (``Status: ...``), ``runai logs NAME -p P``, ``runai delete job NAME -p P``,
  ``runai list jobs -p P`` (``Showing jobs for project P``, then a ``NAME STATUS AGE ...`` table).

Simplification: the real CLI submits a Run:ai workload that Run:ai's controllers turn into pods;
this one creates a plain ``batch/v1`` Job in the simulated API server, which "runs" it (see
``kube_api``). A 401 prints kubectl's ``error: You must be logged in to the server (Unauthorized)``.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from conformance.sandbox import Sandbox

VERSION = "2.13.49"
V1_VERSION = "1.4.2"
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 10


class CliError(Exception):
    """Printed on stderr; exit status 1."""


# --------------------------------------------------------------------------- the CLI (child process)


class Cluster:
    """The current context of the kubeconfig, as client-go would load it."""

    def __init__(self) -> None:
        self.path = Path((os.environ.get("KUBECONFIG") or "~/.kube/config").split(os.pathsep)[0]).expanduser()
        try:
            self.config: dict[str, Any] = yaml.safe_load(self.path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CliError(f"error: invalid configuration: {self.path}: {type(exc).__name__}") from None
        self.context_entry = self._named("contexts", str(self.config.get("current-context", "")))
        context = self.context_entry["context"]
        cluster = self._named("clusters", context["cluster"])["cluster"]
        self.user = self._named("users", context["user"])["user"]
        self.server = str(cluster["server"]).rstrip("/")
        self.tls = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            self.tls.check_hostname = False
            self.tls.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            self.tls = ssl.create_default_context(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )

    def _named(self, key: str, name: str) -> dict[str, Any]:
        for entry in self.config.get(key) or []:
            if entry.get("name") == name:
                return dict(entry)
        raise CliError(f'error: no {key[:-1]} "{name}" in {self.path}')

    @property
    def default_namespace(self) -> str | None:
        value = self.context_entry["context"].get("namespace")
        return str(value) if value else None

    def _token(self) -> str | None:
        provider = self.user.get("auth-provider") or {}
        token = (provider.get("config") or {}).get("id-token") or self.user.get("token")
        return str(token) if token else None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, raw: bool = False) -> Any:
        token = self._token()
        if token is None:
            raise CliError(
                "error: You must be logged in to the server (the kubeconfig has no token: run `runai login`)"
            )
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method)  # noqa: S310 - https URL from the kubeconfig
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.tls) as response:  # noqa: S310 - same
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise CliError("error: You must be logged in to the server (Unauthorized)") from None
            try:
                message = json.loads(exc.read()).get("message", exc.reason)
            except ValueError:
                message = exc.reason
            raise CliError(f"Error from server ({exc.reason.replace(' ', '')}): {message}") from None
        except OSError as exc:
            raise CliError(f"Unable to connect to the server: {getattr(exc, 'reason', exc)}") from None
        return text if raw else json.loads(text)

    def set_namespace(self, namespace: str) -> None:
        self.context_entry["context"]["namespace"] = namespace
        for entry in self.config.get("contexts") or []:
            if entry.get("name") == self.context_entry["name"]:
                entry["context"]["namespace"] = namespace
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".runai-")
        with os.fdopen(handle, "w") as out:
            yaml.safe_dump(self.config, out, sort_keys=False)
        os.chmod(temp, 0o600)
        os.replace(temp, self.path)


def _option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            return args[i + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def _namespace(cluster: Cluster, args: list[str]) -> tuple[str, str]:
    project = _option(args, "-p", "--project")
    if project is None:
        namespace = cluster.default_namespace or ""
        if not namespace.startswith("runai-"):
            raise CliError("Error: no default project is set: run `runai config project <project>` or use -p")
        project = namespace.removeprefix("runai-")
    return project, f"runai-{project}"


def cmd_version(version: str) -> None:
    print(f"Version: {version}")
    print("BuildDate: 2023-10-16T12:28:50Z")
    print("GitCommit: 4e32f1c9b")
    print("GoVersion: go1.20.10")
    print("Compiler: gc")


def cmd_config_project(cluster: Cluster, project: str) -> None:
    namespaces = cluster.request("GET", "/api/v1/namespaces")["items"]
    if not any((n["metadata"].get("labels") or {}).get("runai/queue") == project for n in namespaces):
        raise CliError(
            f"project {project} was not found. Please run 'runai list projects' to view all available projects"
        )
    cluster.set_namespace(f"runai-{project}")
    print(f"Project {project} has been set as default project")


def cmd_list_projects(cluster: Cluster) -> None:
    rows = [("PROJECT", "DEPARTMENT", "DESERVED GPUs", "INT LIMIT", "INT AFFINITY", "TRAIN AFFINITY")]
    for namespace in cluster.request("GET", "/api/v1/namespaces")["items"]:
        queue = (namespace["metadata"].get("labels") or {}).get("runai/queue")
        if queue:
            name = f"{queue} (default)" if namespace["metadata"]["name"] == cluster.default_namespace else queue
            rows.append((name, "default", "1", "-", "", ""))
    widths = [max(len(row[i]) for row in rows) + 2 for i in range(len(rows[0]))]
    for row in rows:
        print("".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def cmd_list_jobs(cluster: Cluster, args: list[str]) -> None:
    project, namespace = _namespace(cluster, args)
    jobs = cluster.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs?labelSelector=app%3Drunai")["items"]
    print(f"Showing jobs for project {project}")
    print("NAME                                 STATUS     AGE  NODE  IMAGE  TYPE   PROJECT")
    for job in jobs:
        image = job["spec"]["template"]["spec"]["containers"][0].get("image", "")
        print(f"{job['metadata']['name']:<36} {_status(job, []):<10} 1s   -     {image}  Train  {project}")


def cmd_submit(cluster: Cluster, args: list[str]) -> None:
    command = args[args.index("--") + 1 :] if "--" in args else []
    flags = args[: args.index("--")] if "--" in args else args
    name = _option(flags, "--name") or next((a for a in flags[:1] if not a.startswith("-")), None)
    prefix = _option(flags, "--job-name-prefix")
    if name is None and prefix:
        name = f"{prefix}-{os.urandom(3).hex()[:5]}"
    image = _option(flags, "-i", "--image")
    if not name or not image:
        raise CliError("Error: a job name (or --job-name-prefix) and --image are required")
    project, namespace = _namespace(cluster, flags)
    resources = {
        "cpu": _option(flags, "--cpu") or "100m",
        "memory": (_option(flags, "--memory") or "64M").replace("G", "Gi").replace("M", "Mi"),
    }
    container: dict[str, Any] = {"name": name, "image": image, "resources": {"requests": resources}}
    if command:
        container["command" if "--command" in flags else "args"] = command
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "runai", "release": name, "project": project}},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }
    cluster.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job)
    print(f"The job '{name}' has been submitted successfully")
    print(f"You can run `runai describe job {name} -p {project}` to check the job status")


def _status(job: dict[str, Any], pods: list[dict[str, Any]]) -> str:
    status = job.get("status") or {}
    if status.get("succeeded"):
        return "Succeeded"
    if status.get("failed"):
        return "Failed"
    phases = {p.get("status", {}).get("phase") for p in pods}
    return "Running" if "Running" in phases else "Pending"


def cmd_describe(cluster: Cluster, name: str, args: list[str]) -> None:
    _, namespace = _namespace(cluster, args)
    job = cluster.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
    pods = cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=job-name%3D{name}")["items"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    status = job.get("status") or {}
    print(f"Name: {name}\nNamespace: {namespace}\nType: Train\nStatus: {_status(job, pods)}")
    print("Duration: -\nGPUs: 0.00\nTotal Requested GPUs: 0.00\nAllocated GPUs: 0.00\nAllocated GPUs memory: 0")
    print(f"Running PODs: 0\nPending PODs: {status.get('active', 0)}\nParallelism: 1\nCompletions: 1")
    print(f"Succeeded PODs: {status.get('succeeded', 0)}\nFailed PODs: {status.get('failed', 0)}")
    print(
        f"Is Distributed Workload: false\nService URLs:\nCommand: {container.get('command') or container.get('args')}\n"
    )
    print("Pods:\nPOD                                  STATUS      TYPE   AGE  NODE")
    for pod in pods:
        print(f"{pod['metadata']['name']:<37}{pod['status'].get('phase', ''):<12}TRAIN  1s   sandbox-node-1")


def cmd_logs(cluster: Cluster, name: str, args: list[str]) -> None:
    _, namespace = _namespace(cluster, args)
    pods = cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=job-name%3D{name}")["items"]
    if not pods:
        raise CliError(f"Failed to find pods of job {name}")
    sys.stdout.write(
        cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pods[0]['metadata']['name']}/log", raw=True)
    )


def cmd_delete(cluster: Cluster, name: str, args: list[str]) -> None:
    _, namespace = _namespace(cluster, args)
    cluster.request("DELETE", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}", {"propagationPolicy": "Background"})
    print(f"The job '{name}' has been deleted")


def dispatch(args: list[str], version: str) -> None:
    words = [a for a in args if not a.startswith("-")][:2]
    if words[:1] == ["version"]:
        cmd_version(version)
        return
    cluster = Cluster()
    rest = args[2:] if len(args) >= 2 else []
    if words == ["config", "project"] and rest:
        cmd_config_project(cluster, rest[0])
    elif words == ["list", "projects"]:
        cmd_list_projects(cluster)
    elif words == ["list", "jobs"]:
        cmd_list_jobs(cluster, args[2:])
    elif words[:1] == ["submit"]:
        cmd_submit(cluster, args[1:])
    elif words[:2] in (["describe", "job"], ["delete", "job"]) and rest:
        (cmd_describe if words[0] == "describe" else cmd_delete)(cluster, rest[0], rest[1:])
    elif words[:1] == ["logs"] and len(args) >= 2:
        cmd_logs(cluster, args[1], args[2:])
    else:
        raise CliError(
            f'Error: unknown command {" ".join(words)!r} for "runai" (this is the sandbox\'s simulated runai)'
        )


def main(argv: list[str], version: str = VERSION) -> int:
    try:
        dispatch(argv, version)
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- sandbox service


def install(directory: Path, version: str) -> Path:
    """Write an executable ``runai`` into ``directory`` that runs :func:`main` with ``version``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "runai"
    script.write_text(
        f"#!{sys.executable}\n"
        "# Simulated Run:ai CLI (conformance sandbox); see conformance/sandbox/runai.py\n"
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from conformance.sandbox.runai import main\n"
        f"sys.exit(main(sys.argv[1:], {version!r}))\n"
    )
    script.chmod(0o755)
    return script


def start(sandbox: Sandbox) -> None:
    """Install the simulated CLI (v2, and a v1 for the version fault); needs the kubernetes sandbox."""
    sandbox.env["SANDBOX_RUNAI_CLI"] = str(install(sandbox.dir / "runai" / "v2", VERSION))
    sandbox.env["SANDBOX_RUNAI_V1_CLI"] = str(install(sandbox.dir / "runai" / "v1", V1_VERSION))
    sandbox.env["SANDBOX_RUNAI_PROJECT"] = "conformance"
    sandbox.simulated.append("runai-cli")
