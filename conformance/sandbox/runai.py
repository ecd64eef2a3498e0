"""The sandbox's ``runai``: a SIMULATED Run:ai CLI, in both generations, answering from the contract.

The report lists it as ``runai-cli``. The real CLIs are Go binaries downloaded from a Run:ai
tenant; none can be had here. Every line this stand-in prints comes from a transcript in
``contracts/runai.yaml`` (each naming the real CLI's source and version), so the simulator and
``tests/contracts/test_runai.py`` cannot drift apart. Two generations (``--generation``, baked
into each installed executable):

* ``kubeconfig`` (the guide's CLI, 2.x before 2.18): reads the kubeconfig from ``KUBECONFIG``
  (else ``~/.kube/config``), uses its current-context and the user's OIDC ``id-token`` (or a
  token); ``runai config project P`` sets the context's namespace to ``runai-P``; ``list
  projects`` marks the default ``(default)``; ``submit``, ``describe job [-o json]`` (upper-case
  ``STATUS:`` lines, or JobInfo JSON), ``logs``, ``delete job``, ``list jobs``; it has no
  ``workload`` command.
* ``new`` (clusters 2.18+): its login and default project live in ``config.json`` and
  ``auth.json`` under ``RUNAI_CLI_CONFIG_PATH`` (default ``~/.runai/``); ``whoami``, ``project
  list --json``, ``project set``, ``config describe --json``, ``training submit/describe -o
  json/logs/delete/list --json``, ``workload --help``. Job states are control-plane phases
  (``Completed``, ``Failed``, ...).

Simplifications: the real CLIs submit a Run:ai workload that Run:ai's controllers turn into pods
(the new one through the control plane); this one creates a plain ``batch/v1`` Job in the
simulated API server (``kube_api``), which "runs" it; the new generation reaches that server with
a kubeconfig the sandbox keeps beside its login (``auth.json``). The image
``SANDBOX_RUNAI_FAILING_IMAGE`` stands for a container that exits 1 (the job ends ``Failed``).
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

from conformance.sandbox import contracts

if TYPE_CHECKING:
    from conformance.sandbox import Sandbox

VERSION = "2.13.49"  # the guide's kubeconfig CLI
NEW_VERSION = "2.19.31"  # the new CLI (clusters 2.18+)
V1_VERSION = "1.4.2"
GENERATIONS = ("kubeconfig", "new")
GENERATION_VAR = "SANDBOX_RUNAI_CLI_GENERATION"
FAILING_IMAGE = "sandbox.invalid/conformance/exit-1:1"
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 10
CLUSTER_UUID = "5f1c0d3e-2a9b-4c8e-9d71-3b6f0e4a2c18"


class CliError(Exception):
    """Printed on stderr; exit status 1."""


class Answer(Exception):
    """A transcript's full answer (stdout, stderr, exit status), raised to end the command with it."""

    def __init__(self, which: str, /, **values: object) -> None:
        transcript = contracts.get("runai", which)
        assert transcript.cli is not None  # noqa: S101 - runai.yaml holds only cli transcripts
        super().__init__(which)
        self.stdout = transcript.render(transcript.cli.stdout, **values)
        self.stderr = transcript.render(transcript.cli.stderr, **values)
        self.exit = transcript.cli.exit


def say(which: str, /, **values: object) -> None:
    """Print a successful transcript's output (and carry on)."""
    answer = Answer(which, **values)
    sys.stdout.write(answer.stdout)
    sys.stderr.write(answer.stderr)


# --------------------------------------------------------------------------- the cluster (child process)


class Cluster:
    """The current context of a kubeconfig, as client-go would load it."""

    def __init__(self, path: Path | None = None, unauthorized: str = "kubeconfig-unauthorized") -> None:
        self.path = path or Path((os.environ.get("KUBECONFIG") or "~/.kube/config").split(os.pathsep)[0]).expanduser()
        self.unauthorized = unauthorized
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
            raise Answer(self.unauthorized)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method)  # noqa: S310 - https URL from the kubeconfig
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.tls) as response:  # noqa: S310 - same
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise Answer(self.unauthorized) from None
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
        _write_private(self.path, yaml.safe_dump(self.config, sort_keys=False))

    def projects(self) -> list[str]:
        found = []
        for namespace in self.request("GET", "/api/v1/namespaces")["items"]:
            queue = (namespace["metadata"].get("labels") or {}).get("runai/queue")
            if queue:
                found.append(str(queue))
        return found

    def job(self, namespace: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        job = self.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
        pods = self.request("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=job-name%3D{name}")["items"]
        return job, pods

    def jobs(self, namespace: str) -> list[dict[str, Any]]:
        path = f"/apis/batch/v1/namespaces/{namespace}/jobs?labelSelector=app%3Drunai"
        return list(self.request("GET", path)["items"])

    def create_job(
        self, namespace: str, project: str, name: str, image: str, *, flags: list[str], command: list[str]
    ) -> None:
        if image == FAILING_IMAGE:
            command = ["/bin/sh", "-c", "exit 1"]  # the stand-in for a container that exits 1
        resources = {
            "cpu": _option(flags, "--cpu", "--cpu-core-request") or "100m",
            "memory": (_option(flags, "--memory", "--cpu-memory-request") or "64M")
            .replace("G", "Gi")
            .replace("M", "Mi"),
        }
        container: dict[str, Any] = {"name": name, "image": image, "resources": {"requests": resources}}
        if command:
            container["command" if "--command" in flags else "args"] = command
        pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
        _workload_flags(flags, container, pod_spec)
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": {"app": "runai", "release": name, "project": project}},
            "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}},
        }
        self.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job)

    def log(self, namespace: str, name: str) -> str:
        pods = self.request("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=job-name%3D{name}")["items"]
        if not pods:
            raise CliError(f"Failed to find pods of job {name}")
        path = f"/api/v1/namespaces/{namespace}/pods/{pods[0]['metadata']['name']}/log"
        return str(self.request("GET", path, raw=True))

    def delete_job(self, namespace: str, name: str) -> None:
        body = {"propagationPolicy": "Background"}
        self.request("DELETE", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}", body)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(temp, 0o600)
    os.replace(temp, path)


def _option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            return args[i + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def _positional(args: list[str]) -> str | None:
    """The first argument that is neither a flag nor a flag's value."""
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--":
            return None
        if arg.startswith("-"):
            skip = "=" not in arg and arg not in ("--command", "-y", "--yes", "--json")
            continue
        return arg
    return None


def _job_status(job: dict[str, Any], pods: list[dict[str, Any]]) -> str:
    """The kubeconfig CLI's status names (runai-cli cmd/constants/const.go)."""
    status = job.get("status") or {}
    if status.get("succeeded"):
        return "Succeeded"
    if status.get("failed"):
        return "Failed"
    phases = {p.get("status", {}).get("phase") for p in pods}
    return "Running" if "Running" in phases else "Pending"


PHASES = {"Succeeded": "Completed", "Failed": "Failed", "Running": "Running", "Pending": "Pending"}


def _pod_phase(pods: list[dict[str, Any]]) -> str:
    return str(pods[0].get("status", {}).get("phase", "Pending")) if pods else "Pending"


def _workload_flags(flags: list[str], container: dict[str, Any], pod_spec: dict[str, Any]) -> None:
    """What both CLIs turn into the pod: ``-e K=V`` environment, ``--existing-pvc claimname=C,path=P`` mounts,
    ``--run-as-uid``/``--run-as-gid`` (runai-cli cmd/submit flags; new CLI ``training submit --help``)."""
    env = [flags[i + 1] for i, flag in enumerate(flags[:-1]) if flag in ("-e", "--environment")]
    if env:
        container["env"] = [{"name": k, "value": v} for k, _, v in (item.partition("=") for item in env)]
    claims = [flags[i + 1] for i, flag in enumerate(flags[:-1]) if flag == "--existing-pvc"]
    for index, claim in enumerate(claims):
        fields = dict(part.partition("=")[::2] for part in claim.split(","))
        volume = f"pvc-{index}"
        pod_spec.setdefault("volumes", []).append(
            {"name": volume, "persistentVolumeClaim": {"claimName": fields.get("claimname", "")}}
        )
        container.setdefault("volumeMounts", []).append({"name": volume, "mountPath": fields.get("path", "")})
    uid, gid = _option(flags, "--run-as-uid"), _option(flags, "--run-as-gid")
    if uid:
        pod_spec["securityContext"] = {"runAsUser": int(uid), **({"runAsGroup": int(gid)} if gid else {})}


def _command_and_flags(args: list[str]) -> tuple[list[str], list[str]]:
    if "--" in args:
        return args[: args.index("--")], args[args.index("--") + 1 :]
    return args, []


# --------------------------------------------------------------------------- kubeconfig generation


def _project_namespace(cluster: Cluster, args: list[str]) -> tuple[str, str]:
    project = _option(args, "-p", "--project")
    if project is None:
        namespace = cluster.default_namespace or ""
        if not namespace.startswith("runai-"):
            raise CliError("Error: no default project is set: run `runai config project <project>` or use -p")
        project = namespace.removeprefix("runai-")
    return project, f"runai-{project}"


def kubeconfig_cli(args: list[str], version: str) -> None:
    words = [a for a in args if not a.startswith("-")][:2]
    if words[:1] == ["version"]:
        say("kubeconfig-version", version=version)
        return
    if words[:1] == ["workload"]:
        raise Answer("kubeconfig-no-workload-command")
    cluster = Cluster()
    rest = args[2:]
    if words == ["config", "project"] and rest:
        if rest[0] not in cluster.projects():
            raise CliError(
                f"project {rest[0]} was not found. Please run 'runai list projects' to view all available projects"
            )
        cluster.set_namespace(f"runai-{rest[0]}")
        say("kubeconfig-config-project", project=rest[0])
    elif words == ["list", "projects"]:
        rows = ""
        for project in cluster.projects():
            label = f"{project} (default)" if f"runai-{project}" == cluster.default_namespace else project
            rows += f"{label:<23}{'-':<12}{'-':<15}{'-':<11}".rstrip() + "\n"
        say("kubeconfig-list-projects", rows=rows)
    elif words == ["list", "jobs"]:
        project, namespace = _project_namespace(cluster, rest)
        rows = ""
        for job in cluster.jobs(namespace):
            image = job["spec"]["template"]["spec"]["containers"][0].get("image", "")
            name = job["metadata"]["name"]
            status = _job_status(job, [])
            rows += f"{name:<36} {status:<10} 1s   -     {image}  Train  {project}  researcher  0 (0)  0 (0)\n"
        say("kubeconfig-list-jobs", project=project, rows=rows)
    elif words[:1] == ["submit"]:
        flags, command = _command_and_flags(args[1:])
        name = _option(flags, "--name") or _positional(flags)
        image = _option(flags, "-i", "--image")
        if not name or not image:
            raise CliError("Error: a job name and --image are required")
        project, namespace = _project_namespace(cluster, flags)
        cluster.create_job(namespace, project, name, image, flags=flags, command=command)
        say("kubeconfig-submit", name=name, project=project)
    elif words == ["describe", "job"] and rest:
        name = rest[0]
        project, namespace = _project_namespace(cluster, rest[1:])
        try:
            job, pods = cluster.job(namespace, name)
        except CliError:
            raise Answer("kubeconfig-describe-not-found", name=name, project=project) from None
        phase = _pod_phase(pods)
        values = {"name": name, "project": project, "status": _job_status(job, pods), "pod_phase": phase}
        if _option(rest, "-o", "--output") == "json":
            say("kubeconfig-describe-json", **values)
        else:
            say("kubeconfig-describe-text", **values, pod_phase_upper=phase.upper())
    elif words == ["delete", "job"] and rest:
        project, namespace = _project_namespace(cluster, rest[1:])
        cluster.delete_job(namespace, rest[0])
        say("kubeconfig-delete", name=rest[0], project=project)
    elif words[:1] == ["logs"] and len(args) >= 2:
        project, namespace = _project_namespace(cluster, args[2:])
        say("kubeconfig-logs", name=args[1], project=project, log=cluster.log(namespace, args[1]))
    else:
        raise CliError(f'Error: unknown command "{" ".join(words)}" for "runai" (the sandbox\'s simulated runai)')


# --------------------------------------------------------------------------- new generation


class NewConfig:
    """The new CLI's ``config.json`` (default project) and ``auth.json`` (login) under its config path."""

    def __init__(self) -> None:
        self.dir = Path(os.environ.get("RUNAI_CLI_CONFIG_PATH") or "~/.runai/").expanduser()
        self.config = self._read("config.json") or {"cluster": {"name": "sandbox", "uuid": CLUSTER_UUID}}
        self.auth = self._read("auth.json")

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            value = json.loads((self.dir / name).read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    @property
    def project(self) -> str | None:
        project = (self.config.get("cluster") or {}).get("project") or {}
        return str(project["name"]) if project.get("name") else None

    def set_project(self, name: str) -> None:
        self.config.setdefault("cluster", {})["project"] = {"name": name, "id": "1"}
        _write_private(self.dir / "config.json", json.dumps(self.config, indent=2) + "\n")

    def cluster(self) -> Cluster:
        if not self.auth or not self.auth.get("kubeconfig"):
            raise Answer("new-whoami-logged-out")
        return Cluster(Path(self.auth["kubeconfig"]), unauthorized="new-whoami-logged-out")


def new_cli(args: list[str], version: str) -> None:
    words = [a for a in args if not a.startswith("-")]
    config = NewConfig()
    if words[:1] == ["version"]:
        say("new-version", version=version)
        return
    if words[:1] == ["workload"] and "--help" in args:
        say("new-workload-help")
        return
    cluster = config.cluster()  # every other command needs the login

    def project_of(flags: list[str]) -> tuple[str, str]:
        project = _option(flags, "-p", "--project") or config.project
        if not project:
            raise CliError("Error: no project was specified: use --project or `runai project set <project>`")
        return project, f"runai-{project}"

    if words[:1] == ["whoami"]:
        cluster.projects()  # the login must still be accepted
        say("new-whoami", user=str((config.auth or {}).get("user", "")))
    elif words[:2] == ["project", "list"]:
        rows = ", ".join(
            json.dumps({"name": p, "id": str(i + 1), "clusterId": CLUSTER_UUID})
            for i, p in enumerate(cluster.projects())
        )
        say("new-project-list-json", rows=rows)
    elif words[:2] == ["project", "set"] and len(words) > 2:
        if words[2] not in cluster.projects():
            raise CliError(f"Error: project {words[2]} was not found")
        config.set_project(words[2])
        say("new-project-set", project=words[2])
    elif words[:2] == ["config", "describe"]:
        project = config.project
        project_json = json.dumps({"name": project, "id": "1"}) if project else "null"
        say(
            "new-config-describe-json",
            cluster="sandbox",
            cluster_uuid=CLUSTER_UUID,
            project_json=project_json,
            control_plane="https://sandbox.invalid",
        )
    elif words[:2] == ["training", "submit"]:
        flags, command = _command_and_flags(args[2:])
        name = _positional(flags)
        image = _option(flags, "-i", "--image")
        if not name or not image:
            raise CliError("Error: a workload name and --image are required")
        project, namespace = project_of(flags)
        cluster.create_job(namespace, project, name, image, flags=flags, command=command)
        say("new-training-submit", name=name)
    elif words[:2] == ["training", "describe"] and len(words) > 2:
        name = words[2]
        project, namespace = project_of(args)
        try:
            job, pods = cluster.job(namespace, name)
        except CliError:
            raise CliError(f"Error: training workload {name} was not found in project {project}") from None
        phase = PHASES[_job_status(job, pods)]
        say(
            "new-training-describe-json",
            name=name,
            project=project,
            cluster_uuid=CLUSTER_UUID,
            phase=phase,
            pod_phase=_pod_phase(pods),
        )
    elif words[:2] == ["training", "logs"] and len(words) > 2:
        _, namespace = project_of(args)
        say("new-training-logs", log=cluster.log(namespace, words[2]))
    elif words[:2] == ["training", "delete"] and len(words) > 2:
        if not ({"-y", "--yes"} & set(args)):
            raise CliError("Error: could not open a new TTY: open /dev/tty: no such device or address")
        _, namespace = project_of(args)
        cluster.delete_job(namespace, words[2])
        say("new-training-delete", name=words[2])
    elif words[:2] == ["training", "list"]:
        _, namespace = project_of(args)
        rows = ", ".join(
            json.dumps({"name": job["metadata"]["name"], "phase": PHASES[_job_status(job, [])]})
            for job in cluster.jobs(namespace)
        )
        say("new-training-list-json", rows=rows)
    else:
        raise CliError(f'Error: unknown command "{" ".join(words[:2])}" for "runai" (the sandbox\'s simulated runai)')


def main(argv: list[str], version: str = VERSION, generation: str = "kubeconfig") -> int:
    try:
        (new_cli if generation == "new" else kubeconfig_cli)(argv, version)
    except Answer as answer:
        sys.stdout.write(answer.stdout)
        sys.stderr.write(answer.stderr)
        return answer.exit
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- sandbox service


PROJECT = "conformance"


def install(directory: Path, version: str, generation: str = "kubeconfig", config_path: Path | None = None) -> Path:
    """Write an executable ``runai`` into ``directory`` that runs :func:`main` as the given CLI."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "runai"
    config = f"os.environ['RUNAI_CLI_CONFIG_PATH'] = {str(config_path)!r}\n" if config_path else ""
    script.write_text(
        f"#!{sys.executable}\n"
        "# Simulated Run:ai CLI (conformance sandbox); see conformance/sandbox/runai.py\n"
        "import os\n"
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        f"{config}"
        "from conformance.sandbox.runai import main\n"
        f"sys.exit(main(sys.argv[1:], {version!r}, {generation!r}))\n"
    )
    script.chmod(0o755)
    return script


def install_new(directory: Path, kubeconfig: Path, *, project: str | None, logged_in: bool = True) -> Path:
    """A new-generation CLI whose own config path (its ``~/.runai/``) holds ``project`` and, if asked, a login."""
    config_path = directory / "config"
    cluster: dict[str, Any] = {"name": "sandbox", "uuid": CLUSTER_UUID}
    if project:
        cluster["project"] = {"name": project, "id": "1"}
    _write_private(config_path / "config.json", json.dumps({"cluster": cluster}, indent=2) + "\n")
    if logged_in:
        own = config_path / "sandbox-cluster.yaml"  # the sandbox's way to the simulated API (see module doc)
        _write_private(own, kubeconfig.read_text())
        auth = {"user": "researcher@conformance.example", "kubeconfig": str(own)}
        _write_private(config_path / "auth.json", json.dumps(auth, indent=2) + "\n")
    return install(directory, NEW_VERSION, "new", config_path)


def install_all(base: Path, kubeconfig: Path, generation: str) -> dict[str, str]:
    """Install every simulated CLI (each generation, each fault) under ``base``; their ``SANDBOX_*`` variables.

    ``SANDBOX_RUNAI_CLI`` (what the sandbox profiles use) is the generation named ``generation``.
    """
    if generation not in GENERATIONS:
        raise ValueError(f"{GENERATION_VAR}={generation!r}: one of {', '.join(GENERATIONS)}")
    clis = {
        "SANDBOX_RUNAI_KUBECONFIG_CLI": install(base / "v2", VERSION),
        "SANDBOX_RUNAI_V1_CLI": install(base / "v1", V1_VERSION),
        "SANDBOX_RUNAI_NEW_CLI": install_new(base / "new", kubeconfig, project=PROJECT),
        "SANDBOX_RUNAI_NEW_CLI_NOLOGIN": install_new(
            base / "new-nologin", kubeconfig, project=PROJECT, logged_in=False
        ),
        "SANDBOX_RUNAI_NEW_CLI_OTHER_PROJECT": install_new(base / "new-other", kubeconfig, project="other"),
    }
    env = {name: str(path) for name, path in clis.items()}
    env["SANDBOX_RUNAI_CLI"] = env["SANDBOX_RUNAI_NEW_CLI" if generation == "new" else "SANDBOX_RUNAI_KUBECONFIG_CLI"]
    env[GENERATION_VAR] = generation
    return env


def start(sandbox: Sandbox) -> None:
    """Install the simulated CLIs; needs the kubernetes sandbox.

    ``SANDBOX_RUNAI_CLI_GENERATION`` (``kubeconfig``, the default, or ``new``) picks the one the profiles use.
    """
    generation = os.environ.get(GENERATION_VAR) or "kubeconfig"
    kubeconfig = Path(sandbox.env["SANDBOX_KUBECONFIG"])
    sandbox.env.update(install_all(sandbox.dir / "runai", kubeconfig, generation))
    sandbox.env["SANDBOX_RUNAI_PROJECT"] = PROJECT
    sandbox.env["SANDBOX_RUNAI_FAILING_IMAGE"] = FAILING_IMAGE
    sandbox.simulated.append("runai-cli")
