"""HOW to look at a developer workspace: testinfra on this host, or inside a pod through ``kubectl exec``.

The same code inspects either: every observation goes through a testinfra ``Host`` (``local://``, or
``kubectl://POD?namespace=...`` when ``workspace.pod`` is set), whose commands are bounded by the
profile's request timeout. Never asserts: each method returns what it saw.

Which tools a workspace needs follows the guide (research: guide-checklist sections 8 and 9): git,
python and conda everywhere; kubectl with an orchestrator; runai with Run:ai; AWS CLI v2 on-prem;
gcloud on GCP; docker only without an orchestrator (Coder and Run:ai workspaces have no daemon).
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import re
import signal
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import testinfra.backend.kubectl
import testinfra.backend.local
import testinfra.host

from conformance.checks import CannotEvaluate
from conformance.cleanup import Swept, eligible
from conformance.profile import Profile, Workspace

GIB = 1024**3
# A cgroup v1 "no limit" is a page-rounded 2**63-1; anything at or above the host's memory means "no limit".
SAFE_MODE_MASK = 0o077  # no permission for group or others (what ssh demands of a private key)


class CommandTimeout(CannotEvaluate):
    """A command on the workspace host did not finish in time."""


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class ToolSpec:
    name: str
    version_args: str  # appended to the executable, shell-quoted already
    hint: str  # the guide's install hint
    candidates: tuple[str, ...] = ()  # executables to try in order; default (name,)
    pattern: str = r"(\d+\.\d+(?:\.\d+)?)"

    @property
    def executables(self) -> tuple[str, ...]:
        return self.candidates or (self.name,)


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec("git", "--version", "install git (apt-get install git; https://git-scm.com/downloads)"),
        ToolSpec(
            "python",
            "--version",
            "install Miniconda, the guide's prerequisite (Coder images have it at /miniconda3/bin)",
            candidates=("python3", "python"),
        ),
        ToolSpec(
            "conda",
            "--version",
            "install Miniconda (https://docs.anaconda.com/miniconda/) and run 'conda init'; Coder images have it "
            "at /miniconda3/bin",
        ),
        ToolSpec(
            "kubectl",
            "version --client",
            "install kubectl (https://kubernetes.io/docs/tasks/tools/); the code-server image ships it",
            pattern=r"v?(\d+\.\d+\.\d+)",
        ),
        ToolSpec(
            "runai",
            "version",
            "download the CLI from the Run:ai dashboard (? > Researcher Command Line Interface), chmod +x it and put"
            " it on PATH (Coder: /pvc-data/utils is on PATH)",
        ),
        ToolSpec(
            "aws",
            "--version",
            "install AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)",
            pattern=r"aws-cli/(\d+\.\d+\.\d+)",
        ),
        ToolSpec(
            "gcloud",
            "--version",
            "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install); the code-server image ships it",
            pattern=r"Google Cloud SDK (\d+\.\d+\.\d+)",
        ),
        ToolSpec(
            "docker",
            "--version",
            "install Docker or Rancher Desktop (guide: local workspaces); Coder/Run:ai workspaces have no daemon"
            ": build with 'khull kaniko' there",
            pattern=r"version (\d+\.\d+\.\d+)",
        ),
        ToolSpec(
            "nvidia-smi",
            "--version",
            "request a GPU workspace (a Run:ai workspace or Coder template with a GPU); nvidia-smi comes with the"
            " NVIDIA driver",
            pattern=r"(?:DRIVER version|Driver Version)\s*:\s*([\d.]+)",
        ),
    )
}


def expected_tools(profile: Profile) -> list[tuple[str, bool]]:
    """``(tool, required)`` for the profile: the guide's set, or ``workspace.tools`` when given.

    docker is required only without an orchestrator; elsewhere it is listed as optional.
    """
    section = profile.workspace
    if section is not None and section.tools is not None:
        names = list(dict.fromkeys(section.tools))
    else:
        names = ["git", "python", "conda"]
        if profile.orchestrator != "noorch":
            names.append("kubectl")
        if profile.orchestrator == "runai":
            names.append("runai")
        names.append("aws" if profile.platform == "onprem" else "gcloud")
        if profile.orchestrator == "noorch":
            names.append("docker")
    tools = [(name, True) for name in names]
    if "docker" not in names:
        tools.append(("docker", False))
    return tools


def spec_of(name: str) -> ToolSpec:
    return TOOLS.get(name) or ToolSpec(name, "--version", f"install {name} and put it on PATH")


def parse_version(spec: ToolSpec, text: str) -> str | None:
    match = re.search(spec.pattern, text)
    return match.group(1) if match else None


@dataclass
class ToolResult:
    name: str
    command: str  # what was looked up: a name on PATH or the profile's path
    path: str | None = None  # where it was found
    version: str | None = None
    rc: int | None = None
    first_line: str = ""  # of the version command's output

    @property
    def found(self) -> bool:
        return self.path is not None


# --------------------------------------------------------------------------- memory


@dataclass
class MemoryLimit:
    limit_bytes: int | None  # None: no cgroup limit found
    source: str  # the file the limit came from, or why none
    mem_total: int | None  # MemTotal of the host, bytes

    @property
    def effective(self) -> int | None:
        """What a process may use: the cgroup limit, or the host's memory when unlimited."""
        if self.limit_bytes is None or (self.mem_total is not None and self.limit_bytes >= self.mem_total):
            return self.mem_total
        return self.limit_bytes


def parse_cgroup_limit(text: str) -> int | None:
    """``memory.max`` / ``memory.limit_in_bytes`` content to bytes; ``max`` (no limit) is None."""
    value = text.strip()
    if value == "max" or not value:
        return None
    if not value.isdigit():
        raise ValueError(f"not a byte count: {value[:40]!r}")
    return int(value)


def parse_meminfo(text: str) -> int | None:
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def parse_cgroup_paths(text: str) -> tuple[str | None, str | None]:
    """(v2 path, v1 memory path) of this process from ``/proc/self/cgroup``."""
    v2 = v1 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def cgroup_memory_files(root: str, v2_path: str | None, v1_path: str | None) -> list[str]:
    """Where the limit may be, most specific first: this process's own cgroup, then the mount's root."""
    root = root.rstrip("/") or "/"
    files = []
    if v2_path and v2_path != "/":
        files.append(posixpath.join(root, v2_path.lstrip("/"), "memory.max"))
    files.append(posixpath.join(root, "memory.max"))
    if v1_path and v1_path != "/":
        files.append(posixpath.join(root, "memory", v1_path.lstrip("/"), "memory.limit_in_bytes"))
    files.append(posixpath.join(root, "memory", "memory.limit_in_bytes"))
    return files


# --------------------------------------------------------------------------- credential files


@dataclass
class CredentialFile:
    path: str
    origin: str  # where the path came from: a profile field, or the guide's default
    exists: bool = False
    mode: int | None = None
    owner: str | None = None

    @property
    def safe(self) -> bool:
        return self.mode is None or not self.mode & SAFE_MODE_MASK

    def describe(self) -> str:
        return f"{self.path} mode {self.mode:04o}" if self.mode is not None else self.path


def identity_files(ssh_config: str) -> list[str]:
    """``IdentityFile`` values of an ssh config that are plain paths (no %tokens or variables)."""
    found = []
    for line in ssh_config.splitlines():
        match = re.match(r"\s*IdentityFile\s*[=\s]\s*(\S+)\s*$", line, re.IGNORECASE)
        if match:
            value = match.group(1).strip('"')
            if "%" not in value and "$" not in value:
                found.append(value)
    return found


# --------------------------------------------------------------------------- the host


class _Bounded:
    """testinfra's ``run_local`` with a timeout that kills the whole process group."""

    timeout: float = 10.0
    quote: Any
    encode: Any
    result: Any

    def run_local(self, command: str, *args: str) -> Any:
        cmd = self.encode(self.quote(command, *args))
        with subprocess.Popen(  # noqa: S602 - testinfra's contract: a quoted shell command line
            cmd,
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as proc:
            try:
                stdout, stderr = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                shown = command.split(" -- ", 1)[-1][:120]
                raise CommandTimeout(f"'{shown}' did not finish within {self.timeout:g} s") from None
        return self.result(proc.returncode, cmd, stdout, stderr)


class BoundedLocal(_Bounded, testinfra.backend.local.LocalBackend):  # type: ignore[misc] # testinfra is untyped
    pass


class BoundedKubectl(_Bounded, testinfra.backend.kubectl.KubectlBackend):  # type: ignore[misc] # testinfra is untyped
    pass


def host_spec(section: Workspace, profile: Profile) -> str:
    """testinfra's URL for the workspace: ``local://`` or ``kubectl://POD?namespace=...``."""
    if section.pod is None:
        return "local://"
    k8s = profile.kubernetes
    options = {
        "namespace": section.namespace or (k8s.namespace if k8s else None),
        "container": section.container,
        "context": section.context or (k8s.context if k8s else None),
        "kubeconfig": section.kubeconfig or (k8s.kubeconfig if k8s else None),
    }
    query = urllib.parse.urlencode({k: v for k, v in options.items() if v})
    return f"kubectl://{section.pod}" + (f"?{query}" if query else "")


def make_host(spec: str, timeout: float) -> Any:
    """A testinfra Host for ``spec`` whose commands are bounded by ``timeout`` seconds."""
    name, options = testinfra.backend.parse_hostspec(spec)
    kubectl = options.get("connection") == "kubectl"
    backend = BoundedKubectl(name, **options) if kubectl else BoundedLocal(**options)
    backend.timeout = timeout
    return testinfra.host.Host(backend)


@dataclass
class WorkspaceClient:
    """One workspace, seen through a testinfra host."""

    host: Any
    spec: str
    section: Workspace
    profile: Profile
    run_id: str
    _home: str | None = field(default=None, repr=False)

    # ---- basics

    def run(self, command: str, *args: str) -> Any:
        return self.host.run(command, *args)

    def home(self) -> str:
        """``workspace.home`` with ``~`` expanded on the workspace host."""
        if self._home is None:
            home = self.section.home
            if home == "~" or home.startswith("~/"):
                result = self.run('printf %s "$HOME"')
                home = result.stdout.strip() + home[1:]
            self._home = home
        return self._home

    def expand(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            return self.home() + path[1:]
        return path

    def environment(self, name: str) -> str | None:
        result = self.run("printenv %s", name)
        value = result.stdout.strip()
        return value if result.rc == 0 and value else None

    def is_dir(self, path: str) -> bool:
        return bool(self.host.file(path).is_directory)

    def exists(self, path: str) -> bool:
        return bool(self.host.file(path).exists)

    def uid_of(self, path: str) -> int:
        return int(self.host.file(path).uid)

    def listdir(self, path: str) -> list[str]:
        result = self.run("ls -A %s", path)
        return sorted(result.stdout.split()) if result.rc == 0 else []

    def read(self, path: str) -> str | None:
        result = self.run("cat %s", path)
        return result.stdout if result.rc == 0 else None

    # ---- tools

    def tool(self, name: str) -> ToolResult:
        spec = spec_of(name)
        configured = self.section.tool_paths.get(name) or self._profile_tool_path(name)
        candidates = (configured,) if configured else spec.executables
        for command in candidates:
            located = self.run("command -v %s", command)
            if located.rc != 0 or not located.stdout.strip():
                continue
            path = located.stdout.strip().splitlines()[0]
            done = self.run(f"%s {spec.version_args} 2>&1", path)
            lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
            first = lines[0][:160] if lines else ""
            return ToolResult(name, command, path, parse_version(spec, done.stdout), done.rc, first)
        return ToolResult(name, " or ".join(candidates))

    def _profile_tool_path(self, name: str) -> str | None:
        if name == "runai" and self.profile.runai is not None and self.profile.runai.cli != "runai":
            return self.profile.runai.cli
        if name == "gcloud" and self.profile.gcp is not None and self.profile.gcp.gcloud != "gcloud":
            return self.profile.gcp.gcloud
        return None

    # ---- memory

    def memory(self) -> MemoryLimit:
        v2_path, v1_path = parse_cgroup_paths(self.read("/proc/self/cgroup") or "")
        candidates = cgroup_memory_files(self.section.cgroup_root, v2_path, v1_path)
        mem_total = parse_meminfo(self.read("/proc/meminfo") or "")
        for path in dict.fromkeys(candidates):
            text = self.read(path)
            if text is None:
                continue
            try:
                return MemoryLimit(parse_cgroup_limit(text), path, mem_total)
            except ValueError as exc:
                raise CannotEvaluate(f"{path}: {exc}") from None
        return MemoryLimit(None, f"no memory.max or memory.limit_in_bytes under {self.section.cgroup_root}", mem_total)

    # ---- GPU

    def gpus(self) -> tuple[ToolResult, list[str], str]:
        """(nvidia-smi lookup, 'GPU n: name' lines of ``nvidia-smi -L``, its first error line)."""
        found = self.tool("nvidia-smi")
        if not found.found or found.path is None:
            return found, [], ""
        listed = self.run("%s -L 2>&1", found.path)
        lines = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
        gpus = [re.sub(r"\s*\(UUID:.*\)$", "", line) for line in lines if line.startswith("GPU ")]
        error = "" if listed.rc == 0 else (lines[0][:160] if lines else f"exit status {listed.rc}")
        return found, gpus, error

    # ---- credential files

    def credential_candidates(self) -> list[tuple[str, str]]:
        """(path, origin) of every credential file the profile or the guide names, first origin wins."""
        profile = self.profile
        found: list[tuple[str, str]] = []
        storage, registry, k8s, gcp = profile.object_storage, profile.registry, profile.kubernetes, profile.gcp
        if storage is not None and storage.credentials_file:
            found.append((storage.credentials_file, "object_storage.credentials_file"))
        elif profile.platform == "onprem":
            found.append(("~/.aws/credentials", "guide default (AWS CLI)"))
        if registry is not None and registry.docker_config:
            found.append((registry.docker_config, "registry.docker_config"))
        else:
            found.append(("~/.docker/config.json", "guide default (docker login)"))
        if registry is not None and registry.robot_creds_json:
            found.append((registry.robot_creds_json, "registry.robot_creds_json"))
        if k8s is not None and k8s.kubeconfig:
            found.append((k8s.kubeconfig, "kubernetes.kubeconfig"))
        else:
            found.append((self.environment("KUBECONFIG") or "~/.kube/config", "KUBECONFIG or ~/.kube/config"))
        if gcp is not None and gcp.key_file:
            found.append((gcp.key_file, "gcp.key_file"))
        elif key := self.environment("GOOGLE_APPLICATION_CREDENTIALS"):
            found.append((key, "GOOGLE_APPLICATION_CREDENTIALS"))
        if profile.platform == "gcp":
            adc = "~/.config/gcloud/application_default_credentials.json"
            found.append((adc, "gcloud application default credentials"))
        found.extend(self._ssh_keys())
        found.extend((path, "workspace.credential_files") for path in self.section.credential_files)
        unique: dict[str, str] = {}
        for path, origin in found:
            unique.setdefault(posixpath.normpath(self.expand(path)), origin)
        return list(unique.items())

    def _ssh_keys(self) -> list[tuple[str, str]]:
        ssh_dir = self.expand("~/.ssh")
        keys = [
            (posixpath.join(ssh_dir, name), "~/.ssh private key")
            for name in self.listdir(ssh_dir)
            if name.startswith("id_") and not name.endswith(".pub") and "-cert" not in name
        ]
        config_path = self.profile.gitlab.ssh_config if self.profile.gitlab else "~/.ssh/config"
        config = self.read(self.expand(config_path))
        if config:
            keys.extend((self.expand(path), f"IdentityFile in {config_path}") for path in identity_files(config))
        return keys

    def credential_file(self, path: str, origin: str) -> CredentialFile:
        entry = CredentialFile(path, origin)
        target = self.host.file(path)
        if not target.exists or target.is_directory:
            return entry
        entry.exists = True
        entry.mode = int(target.mode)
        entry.owner = str(target.user)
        return entry

    # ---- writes

    def probe_path(self, directory: str) -> str:
        return posixpath.join(directory, f"conformance-{self.run_id}.probe")

    def write_probe(self, path: str) -> str:
        """Write, read back and delete ``path``; '' when all three worked, else the step that failed."""
        content = f"conformance probe {self.run_id}"
        wrote = self.run("printf %s > %s", content, path)
        if wrote.rc != 0:
            return f"write failed: {_first_line(wrote)}"
        read = self.run("cat %s", path)
        if read.rc != 0 or read.stdout != content:
            return f"read back failed: {_first_line(read) or 'content differs'}"
        removed = self.run("rm -f %s", path)
        if removed.rc != 0 or self.exists(path):
            return f"delete failed: {_first_line(removed) or 'the file is still there'}"
        return ""

    def remove(self, path: str) -> None:
        self.run("rm -f %s", path)

    def workspaces_dir(self) -> str | None:
        """``<pvc_mount>/workspaces``, where WSP-003 writes its probe; None without a pvc_mount."""
        mount = self.section.pvc_mount
        return posixpath.join(mount.rstrip("/") or "/", "workspaces") if mount else None


def _first_line(result: Any) -> str:
    text = (result.stderr or result.stdout or "").strip()
    return text.splitlines()[0][:160] if text else ""


def connect(profile: Profile, run_id: str) -> WorkspaceClient:
    section = profile.workspace
    if section is None:  # the plugin skips workspace checks without the section; this is a safeguard
        raise CannotEvaluate("the profile has no workspace section")
    spec = host_spec(section, profile)
    if section.pod is not None and "namespace=" not in spec:
        raise CannotEvaluate(
            f"workspace.pod {section.pod} has no namespace",
            hint="set workspace.namespace or kubernetes.namespace (runai-<project> on Run:ai)",
        )
    workspace = WorkspaceClient(make_host(spec, profile.timeouts.request), spec, section, profile, run_id)
    hello = workspace.run("id -u")
    if hello.rc != 0 or not hello.stdout.strip().isdigit():
        where = f"pod {section.pod}" if section.pod else "this host"
        raise CannotEvaluate(
            f"cannot run commands in {where} ({spec}): {_first_line(hello) or f'exit status {hello.rc}'}",
            hint="the pod is not running, the namespace or context is wrong, or kubectl is not logged in"
            if section.pod
            else None,
        )
    return workspace


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """Remove ``<pvc>/workspaces/conformance-<run id>.probe`` files of runs before ``older_than``."""
    workspace = connect(profile, "cleanup")
    folder = workspace.workspaces_dir()
    swept = Swept()
    if folder is None or not workspace.is_dir(folder):
        swept.notes.append(
            f"{folder or 'workspace.pvc_mount is not set, so the PVC'} is not a directory: nothing to sweep"
        )
        return swept
    names = [n for n in workspace.listdir(folder) if n.endswith(".probe") and eligible(n, older_than)]
    for name in names:
        path = posixpath.join(folder, name)
        removed = None if dry_run else workspace.run("rm -f %s", path)
        if removed is not None and (removed.rc != 0 or workspace.exists(path)):
            swept.failures.append(f"{path} ({_first_line(removed) or 'the file is still there'})")
        else:
            swept.items.append(f"{workspace.spec} {path}")
    return swept
