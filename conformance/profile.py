"""Profiles: which platform to check, and how to reach each of its parts.

A profile is a YAML file validated by the models below. Loading never
raises a traceback at the user: every problem becomes one line
``<file>: <field>: <what is wrong>`` in a :class:`ProfileError`.

Values may use ``${NAME}`` to take a non-secret value from the environment
(the sandbox fills its ports this way). Credentials are references,
``env:NAME`` or ``file:PATH``, resolved to :class:`~conformance.secrets.Secret`.

No pytest import here: ``python -m conformance profile check`` uses it too.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PositiveFloat,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from conformance import credentials
from conformance.secrets import MIN_SCAN_LENGTH, Secret, SecretIndex, SecretRefError, resolve_ref

PROFILE_SUFFIXES = (".yaml", ".yml")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ProfileError(Exception):
    """One or more problems with a profile, one line each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


# --------------------------------------------------------------------------- types


def _secret(value: object, info: ValidationInfo) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a reference 'env:NAME' or 'file:PATH'")
    ctx = info.context or {}
    try:
        secret = resolve_ref(value, base_dir=ctx.get("base_dir", Path.cwd()), environ=ctx.get("environ", os.environ))
    except SecretRefError as exc:
        raise ValueError(str(exc)) from None
    if len(secret.reveal()) < MIN_SCAN_LENGTH:
        raise ValueError(
            f"the value of {value} is shorter than {MIN_SCAN_LENGTH} characters;"
            " the report's leak scan could not look for it"
        )
    return secret


SecretRef = Annotated[Secret, PlainValidator(_secret)]


def _existing_file(value: object, info: ValidationInfo) -> Path:
    if not isinstance(value, str | Path):
        raise ValueError("must be a file path")
    path = Path(os.path.expanduser(str(value)))
    if not path.is_absolute():
        path = (info.context or {}).get("base_dir", Path.cwd()) / path
    if not path.is_file():
        raise ValueError(f"file {path} does not exist")
    if not os.access(path, os.R_OK):
        raise ValueError(f"file {path} is not readable")
    return path


ExistingFile = Annotated[Path, PlainValidator(_existing_file)]


def _local_path(value: str, info: ValidationInfo) -> str:
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = (info.context or {}).get("base_dir", Path.cwd()) / path
    return str(path)


# A path on this machine, ``~`` expanded, relative to the profile's folder. Whether it exists and
# what it holds is for the checks to report (a missing kubeconfig is a finding, not a profile error).
LocalPath = Annotated[str, AfterValidator(_local_path)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


# A timeout is finite: .inf would make a network call unbounded, which the suite promises never happens.
Seconds = Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)]


class Timeouts(Model):
    """Seconds. ``connect`` bounds DNS and TCP, ``request`` one request, ``check`` one check."""

    connect: Seconds = 5.0
    request: Seconds = 10.0
    check: Seconds = 120.0


class TLS(Model):
    """Trust for every TLS connection the suite makes: one CA bundle, explicit."""

    ca_bundle: ExistingFile | None = None
    insecure: bool = False


class Endpoint(Model):
    """Something the workspace must reach: ``https://``, ``http://``, ``tcp://`` or ``ssh://``."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    url: str
    private: bool = True  # behind the VPN; used by the "VPN probably down" heuristic

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("https", "http", "tcp", "ssh"):
            raise ValueError(f"scheme must be https, http, tcp or ssh, not {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("has no host")
        if parts.username or parts.password:
            raise ValueError("must not hold credentials; use the component's username and password fields")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has an invalid port") from None
        if parts.scheme in ("tcp", "ssh") and port is None:
            raise ValueError(f"{parts.scheme}:// needs a port")
        return value

    @property
    def scheme(self) -> str:
        return urllib.parse.urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urllib.parse.urlsplit(self.url)
        return parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)

    @property
    def path(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def uses_tls(self) -> bool:
        return self.scheme == "https"

    @property
    def uses_http(self) -> bool:
        return self.scheme in ("http", "https")


def _endpoint(name: str, url: str) -> Endpoint:
    return Endpoint(name=name, url=url)


class Network(Model):
    """Extra endpoints to probe besides those every component section names."""

    endpoints: list[Endpoint] = []
    vpn: str = "the VPN"  # how the operator's VPN is called, for the hint


class Registry(Model):
    """Harbor (onprem) or Artifact Registry (gcp)."""

    url: str
    project_path: str  # host[:port]/seg/.../seg, as cookiecutter's registry_project_path
    username: str | None = None
    password: SecretRef | None = None
    docker_config: LocalPath | None = None  # path to a docker config.json holding auths/credHelpers
    robot_creds_json: LocalPath | None = None  # path to a Harbor robot-account JSON

    @field_validator("project_path")
    @classmethod
    def _project_path(cls, value: str) -> str:
        # cookiecutter's registry_project_path: host[:port]/seg/.../seg, lower-case path, no trailing slash
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d+)?(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+", value):
            raise ValueError(f"{value!r} is not host[:port]/segment/.../segment (lower-case, no scheme, no tag)")
        return value

    @property
    def host(self) -> str:
        """``host[:port]`` of the image names, as docker config.json keys it."""
        return self.project_path.split("/", 1)[0]

    @property
    def repository(self) -> str:
        """The project's repository prefix inside the registry (``project_path`` without the host)."""
        return self.project_path.split("/", 1)[1]

    def endpoints(self) -> list[Endpoint]:
        return [_endpoint("registry", self.url)]


class ObjectStorage(Model):
    """ECS over S3 (onprem) or GCS (gcp).

    Credentials stay where the guide keeps them: S3 keys in a shared credentials
    file (``~/.aws/credentials``, section ``aws_profile``); GCS a service-account
    key (``credentials_file``, else ``GOOGLE_APPLICATION_CREDENTIALS``, else
    gcloud's application-default credentials).
    """

    kind: Literal["s3", "gcs"]
    bucket: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")]
    prefix: str = ""  # probe objects go under <prefix>/conformance-<run id>
    endpoint_url: str | None = None  # S3: required (the guide passes --endpoint-url); GCS: an emulator only
    credentials_file: LocalPath | None = None  # S3: default ~/.aws/credentials; GCS: service-account key JSON
    aws_profile: str | None = None  # S3: section of credentials_file; default "default"
    region: str = "us-east-1"
    path_style: bool = True  # S3: https://host/bucket/key addressing (ECS); False: virtual-hosted
    gcp_project: str | None = None  # GCS: default the key's project_id
    anonymous: bool = False  # SANDBOX ONLY: send GCS requests without credentials (the emulator has no auth)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")

    @model_validator(mode="after")
    def _per_kind(self) -> ObjectStorage:
        if self.kind == "s3" and not self.endpoint_url:
            raise ValueError("endpoint_url: required for kind s3 (the guide passes --endpoint-url to each aws call)")
        if self.kind == "gcs" and self.aws_profile is not None:
            raise ValueError("aws_profile: only for kind s3; set it to null for kind gcs")
        if self.anonymous and (self.kind != "gcs" or not self.endpoint_url):
            raise ValueError("anonymous: only for a GCS emulator (kind gcs with an endpoint_url), never a real bucket")
        return self

    @property
    def default_endpoint(self) -> str:
        return self.endpoint_url or ("https://storage.googleapis.com/" if self.kind == "gcs" else "")

    def endpoints(self) -> list[Endpoint]:
        if self.endpoint_url:
            return [_endpoint("object_storage", self.endpoint_url)]
        # Public Google Cloud Storage: reached without the VPN.
        return [Endpoint(name="object_storage", url=self.default_endpoint, private=False)]


class MLflow(Model):
    """The MLflow tracking server."""

    tracking_uri: str
    username: str | None = None
    password: SecretRef | None = None
    experiment: str = "conformance"

    def endpoints(self) -> list[Endpoint]:
        return [_endpoint("mlflow", self.tracking_uri.rstrip("/") + "/health")]


class GitLab(Model):
    """GitLab: the REST API, git over HTTPS, git over SSH (port 2222 on AISG's GitLab), and CI settings.

    The token is a personal access token (``token``, else ``GITLAB_TOKEN`` from the environment); git
    over HTTPS sends it as the password, as the guide's users do. SSH uses the user's own ``ssh_config``,
    so what is checked is what ``git clone git@host:group/project.git`` would do.
    """

    url: str  # https://gitlab.aisingapore.net (the API is <url>/api/v4)
    project: Annotated[str, Field(min_length=1)]  # group/project path, or the numeric project id
    username: str | None = None  # git over HTTPS user name; default: the token's user (GitLab ignores it)
    token: SecretRef | None = None  # personal access token; default: env GITLAB_TOKEN at check time
    https_remote: str | None = None  # default <url>/<project>.git
    ssh: bool = True  # check git over SSH; set false where the guide says HTTPS only
    ssh_host: str | None = None  # default: the host of url
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 2222
    ssh_user: str = "git"
    ssh_remote: str | None = None  # default <ssh_user>@<ssh_host>:<project>.git (port from ssh_config)
    ssh_config: LocalPath = "~/.ssh/config"
    known_hosts: LocalPath = "~/.ssh/known_hosts"
    checkout: LocalPath | None = None  # a clone in the shared workspace whose `origin` GIT-011 inspects
    ci_file_variables: list[str] | None = None  # default: what the guide's .gitlab-ci.yml reads per platform

    @field_validator("url", "https_remote")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an https:// (or http://) URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not hold credentials; use gitlab.username and gitlab.token")
        return value.rstrip("/")

    @property
    def host(self) -> str:
        return self.ssh_host or urllib.parse.urlsplit(self.url).hostname or ""

    @property
    def clone_url(self) -> str:
        """The HTTPS remote git uses (no credentials in it)."""
        return self.https_remote or f"{self.url}/{self.project}.git"

    @property
    def ssh_clone_url(self) -> str:
        return self.ssh_remote or f"{self.ssh_user}@{self.host}:{self.project}.git"

    def endpoints(self) -> list[Endpoint]:
        found = [_endpoint("gitlab", self.url)]
        api, git = urllib.parse.urlsplit(self.url), urllib.parse.urlsplit(self.clone_url)
        if (git.scheme, git.netloc) != (api.scheme, api.netloc):  # git served apart from the API
            found.append(_endpoint("gitlab-git", f"{git.scheme}://{git.netloc}/"))
        if self.ssh:
            found.append(_endpoint("gitlab-ssh", f"ssh://{self.host}:{self.ssh_port}"))
        return found


_K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# What the guide's workflows do in the project namespace, as `kubectl auth can-i` spells it:
# "verb resource[.group][/subresource]".
GUIDE_ACCESS = ("create pods", "create jobs.batch", "get pods/log", "list persistentvolumeclaims", "get secrets")


class Kubernetes(Model):
    """The cluster a Rancher (onprem) or GKE (gcp) kubeconfig points at.

    The kubeconfig is a plain path: whether it exists, parses, and has the context is for the
    K8S checks to report, not a profile error. Its own certificate-authority(-data) is the trust
    for the API server, as for kubectl; ``tls.ca_bundle`` applies only when it names none.
    """

    kubeconfig: LocalPath | None = None  # default: $KUBECONFIG, ~/.kube/config, the Coder path
    context: str | None = None  # default: the kubeconfig's current-context
    namespace: Annotated[str, Field(pattern=_K8S_NAME)]  # runai-<project> on Run:ai
    pvc: Annotated[str, Field(pattern=_K8S_NAME)] | None = None  # the project's shared PVC (RWX)
    expected_secrets: list[Annotated[str, Field(pattern=_K8S_NAME)]] = []  # checked by name only
    required_access: list[str] = list(GUIDE_ACCESS)  # SelfSubjectAccessReview per entry
    smoke_image: str = "alpine:3.20"  # K8S smoke Job (writes); needs /bin/sh, nothing else

    @field_validator("required_access")
    @classmethod
    def _access(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not re.fullmatch(r"[a-z]+ [a-z]+(\.[a-z0-9.-]+)?(/[a-z]+)?", entry):
                raise ValueError(f"{entry!r} is not 'verb resource[.group][/subresource]', e.g. 'create jobs.batch'")
        return value


class Runai(Model):
    """The Run:ai CLI (v2, kubeconfig-based) and its login; the kubeconfig is the kubernetes section's."""

    project: Annotated[str, Field(pattern=_K8S_NAME)]
    cli: str = "runai"  # name on PATH or path of the executable
    smoke_image: str = "alpine:3.20"  # RAI smoke job (writes); /bin/sh only (F16: Alpine has no bash)

    @field_validator("cli")
    @classmethod
    def _cli(cls, value: str, info: ValidationInfo) -> str:
        return _local_path(value, info) if "/" in value else value  # a bare name is looked up on PATH


ToolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")]


class Workspace(Model):
    """The developer workspace itself (Coder / Run:ai workspace / local), checked locally or through kubectl.

    Paths here are paths on the workspace host (the pod, when ``pod`` is set), not on the machine
    running pytest; ``~`` is that host's ``$HOME``.
    """

    pod: str | None = None  # check inside this pod (testinfra's kubectl backend) instead of locally
    namespace: str | None = None  # of the pod; default: kubernetes.namespace
    container: str | None = None  # of the pod; default: kubectl's default container
    context: str | None = None  # kubeconfig context for kubectl exec; default: kubernetes.context
    kubeconfig: LocalPath | None = None  # for kubectl exec; default: kubernetes.kubeconfig, else kubectl's own default
    home: str = "~"  # whose credential files are checked
    pvc_mount: str | None = None  # e.g. /pvc-data (Coder) or /<proj>-pvc; its workspaces/ folder is checked
    workspace_uid: int | None = None  # 2222 on Coder/Run:ai workspaces: the owner workspaces/ must have
    min_memory_gib: PositiveFloat = 4.0  # the guide's minimum for pip install (F17)
    gpu: bool = False  # a GPU must be visible to nvidia-smi
    tools: list[ToolName] | None = None  # default: from platform and orchestrator (see clients/workspace.py)
    tool_paths: dict[ToolName, str] = {}  # tool name -> executable to run instead of the name on PATH
    cgroup_root: str = "/sys/fs/cgroup"  # where the memory limit is read (v2 memory.max, v1 memory/)
    credential_files: list[str] = []  # more files that must not be readable by group or others

    @field_validator("tool_paths")
    @classmethod
    def _tool_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for name, path in value.items():
            if not path.strip():
                raise ValueError(f"{name}: empty executable path")
        return value


GCP_RESOURCE_MANAGER = "https://cloudresourcemanager.googleapis.com"
GCP_API_ENDPOINT = "gcp-resource-manager"  # the endpoint name GCP-003 waits on


class Gcp(Model):
    """GCP access: an active gcloud account or application default credentials, and the project.

    Credentials stay where the guide keeps them: gcloud's config folder (``CLOUDSDK_CONFIG``, else
    ``~/.config/gcloud``) and a service-account key named by ``GOOGLE_APPLICATION_CREDENTIALS``.
    """

    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]  # the project id, not its number
    key_file: LocalPath | None = None  # service-account key JSON; default: GOOGLE_APPLICATION_CREDENTIALS
    config_dir: LocalPath | None = None  # gcloud's config folder; default: $CLOUDSDK_CONFIG, else ~/.config/gcloud
    gcloud: str = "gcloud"  # name or path of the gcloud executable (absent is fine when a key is present)
    resource_manager_url: str = GCP_RESOURCE_MANAGER  # Cloud Resource Manager API base (a sandbox simulates it)

    def endpoints(self) -> list[Endpoint]:
        # Not named "gcp": GCP-001/002 look at local files and must not be blocked when Google is unreachable.
        public = self.resource_manager_url.rstrip("/") == GCP_RESOURCE_MANAGER
        return [Endpoint(name=GCP_API_ENDPOINT, url=self.resource_manager_url, private=not public)]


class Profile(Model):
    platform: Literal["onprem", "gcp"]
    orchestrator: Literal["runai", "noorch", "polyaxon"]
    guide_version: str = "v0.5.2"
    description: str = ""
    sandbox: bool = False  # start the embedded sandbox before loading
    waivers: ExistingFile | None = None  # YAML list of accepted gaps (see conformance/waivers.py)
    timeouts: Timeouts = Timeouts()
    # A certificate or credential expiring within this many days fails its check (with the date);
    # within twice as many, a warning. Nightly CI then goes red while there is time to renew.
    expiry_horizon_days: Annotated[float, Field(ge=0, le=365, allow_inf_nan=False)] = 7.0
    tls: TLS = TLS()
    network: Network = Network()
    registry: Registry | None = None
    object_storage: ObjectStorage | None = None
    mlflow: MLflow | None = None
    gitlab: GitLab | None = None
    kubernetes: Kubernetes | None = None
    runai: Runai | None = None
    workspace: Workspace | None = None
    gcp: Gcp | None = None

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint to probe, component sections first, named uniquely."""
        found: list[Endpoint] = []
        for name in type(self).model_fields:
            section = getattr(self, name)
            if name != "network" and hasattr(section, "endpoints"):
                found.extend(section.endpoints())
        found.sort(key=lambda e: e.name)
        found.extend(self.network.endpoints)
        return found

    def has_section(self, component: str) -> bool:
        return component == "network" or getattr(self, component, None) is not None


@dataclass(frozen=True)
class LoadedProfile:
    profile: Profile
    name: str
    path: Path
    secrets: SecretIndex


# --------------------------------------------------------------------------- loading


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def available_profiles(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.iterdir() if p.suffix in PROFILE_SUFFIXES)


def resolve_profile_path(ref: str, profiles_dir: Path) -> Path:
    """``NAME`` means ``profiles/NAME.yaml``; anything with a slash or suffix is a path."""
    candidate = Path(os.path.expanduser(ref))
    if candidate.suffix in PROFILE_SUFFIXES or "/" in ref:
        if candidate.is_file():
            return candidate
        raise ProfileError([f"{ref}: profile file does not exist"])
    for suffix in PROFILE_SUFFIXES:
        path = profiles_dir / f"{ref}{suffix}"
        if path.is_file():
            return path
    names = ", ".join(available_profiles(profiles_dir)) or "none"
    raise ProfileError([f"profile {ref!r} not found in {display(profiles_dir)}/ (available: {names})"])


MAX_VALUES = 100_000  # a real profile has a few hundred


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` becomes once every alias is expanded (shared nodes counted once each use)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once instead of forever
    total = 1
    if isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(item, memo) for item in node.value)
    memo[id(node)] = total
    return total


def _read_yaml(path: Path) -> dict[str, Any]:
    where = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError([f"{where}: cannot read file ({exc.strerror})"]) from None
    except UnicodeDecodeError:
        raise ProfileError([f"{where}: not UTF-8 text"]) from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            size = _expanded_size(node, {}) if node is not None else 0
            if size > MAX_VALUES:  # YAML aliases can expand a small file without bound ("billion laughs")
                raise ProfileError([f"{where}: expands to {size} values through YAML aliases (at most {MAX_VALUES})"])
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except RecursionError:
        raise ProfileError([f"{where}: YAML nested too deeply to be a profile"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ProfileError([f"{where}: {at}YAML syntax error: {problem}"]) from None
    if data is None:
        raise ProfileError([f"{where}: file is empty"])
    if not isinstance(data, dict):
        raise ProfileError([f"{where}: top level must be a mapping of sections, not {type(data).__name__}"])
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_raw(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The profile's mapping with ``extends:`` chains merged (child wins)."""
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    where = display(path)
    if not isinstance(parent, str):
        raise ProfileError([f"{where}: extends: must be a profile name or path"])
    if "/" in parent or parent.endswith(PROFILE_SUFFIXES):
        parent_path = Path(os.path.expanduser(parent))
        parent_path = parent_path if parent_path.is_absolute() else path.parent / parent_path
        if not parent_path.is_file():
            raise ProfileError([f"{where}: extends: {display(parent_path)} does not exist"])
    else:
        try:
            parent_path = resolve_profile_path(parent, path.parent)
        except ProfileError as exc:
            raise ProfileError([f"{where}: extends: {line}" for line in exc.lines]) from None
    if parent_path.resolve() in _seen or parent_path.resolve() == path.resolve():
        raise ProfileError([f"{where}: extends: cycle through {display(parent_path)}"])
    return _merge(read_raw(parent_path, (*_seen, path.resolve())), data)


def _interpolate(value: Any, environ: Mapping[str, str], loc: str, errors: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, f"{loc}.{k}" if loc else str(k), errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, f"{loc}.{i}", errors) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                errors.append(_bounded(f"{loc}: environment variable {name} is not set (used as ${{{name}}})"))
                return match.group(0)
            return environ[name]

        return _VAR.sub(sub, value)
    return value


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required field is missing",
}


LINE_MAX = 300  # an error line names the problem; it never repeats a huge value or key in full


def _bounded(line: str) -> str:
    return line if len(line) <= LINE_MAX else line[: LINE_MAX - 15] + "...(truncated)"


def format_error(err: Mapping[str, Any]) -> str:
    loc = _bounded(".".join(str(part) for part in err["loc"]) or "top level")
    kind = err["type"]
    if kind in _MESSAGES:
        return f"{loc}: {_MESSAGES[kind]}"
    message = _bounded(str(err["msg"]).removeprefix("Value error, "))
    return f"{loc}: {message[0].lower()}{message[1:]}" if message else loc


def collect_secrets(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, Secret, str | None]]:
    """(field path, secret, username of the same section) for every secret in ``model``."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, Secret):
            username = getattr(model, "username", None)
            yield path, value, username if isinstance(username, str) else None
        elif isinstance(value, BaseModel):
            yield from collect_secrets(value, f"{path}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from collect_secrets(item, f"{path}.{i}.")


def load_profile(path: Path, environ: Mapping[str, str] | None = None) -> LoadedProfile:
    env = os.environ if environ is None else environ
    where = display(path)
    raw = read_raw(path)
    errors: list[str] = []
    raw = _interpolate(raw, env, "", errors)
    try:
        profile = Profile.model_validate(raw, context={"base_dir": path.parent, "environ": env})
    except ValidationError as exc:
        # A field whose ${VAR} is unset already has its line; its validation error would only repeat it.
        unset = {line.split(": ", 1)[0] for line in errors}
        for err in exc.errors(include_input=False, include_url=False):
            if ".".join(str(part) for part in err["loc"]) not in unset:
                errors.append(format_error(err))
        raise ProfileError([f"{where}: {line}" for line in errors]) from None
    if errors:
        raise ProfileError([f"{where}: {line}" for line in errors])
    index = SecretIndex()
    for field_path, secret, username in collect_secrets(profile):
        index.add(field_path, secret, username=username)
    for where, secret, username in credentials.held_outside(profile, env):  # the guide keeps most there
        index.add(where, secret, username=username)
    seen: set[str] = set()
    for endpoint in profile.endpoints():
        if endpoint.name in seen:
            raise ProfileError([f"{where}: network.endpoints: endpoint name {endpoint.name!r} is used twice"])
        seen.add(endpoint.name)
    return LoadedProfile(profile=profile, name=path.stem, path=path, secrets=index)
