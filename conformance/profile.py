"""Profiles: which platform to check, and how to reach each of its parts.

A profile is a YAML file validated by the models below. Loading never
raises a traceback at the user: every problem becomes one line
``<file>: <field>: <what is wrong>`` in a :class:`ProfileError`.

Values may use ``${NAME}`` to take a non-secret value from the environment
(the sandbox fills its ports this way). Credentials are references,
``env:NAME`` or ``file:PATH``, resolved to :class:`~conformance.secrets.Secret`.

Schema and YAML only (no pytest); :mod:`conformance.session` opens a profile, above this module.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import typing
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

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

from conformance import files
from conformance.components import COMPONENTS
from conformance.secrets import (
    MIN_SCAN_LENGTH,
    Secret,
    SecretIndex,
    SecretRefError,
    resolve_ref,
)

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
    if secret.reveal() in _suite_text():
        raise ValueError(
            f"the value of {value} is a word of the suite's own messages;"
            " the report's leak scan could not tell it from a leak (use a real password)"
        )
    return secret


@functools.cache
def _suite_text() -> str:
    """Everything the suite itself can print: its source (messages, titles, remediations)."""
    package = Path(__file__).resolve().parent
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(package.rglob("*.py")))


SecretRef = Annotated[Secret, PlainValidator(_secret)]


def _existing_file(value: object, info: ValidationInfo) -> Path:
    if not isinstance(value, str | Path):
        raise ValueError("must be a file path")
    path = Path(os.path.expanduser(str(value)))
    if not path.is_absolute():
        path = (info.context or {}).get("base_dir", Path.cwd()) / path
    problem = files.regular_file_problem(path)  # a FIFO or /dev/zero would hang or fill memory later
    if problem:
        raise ValueError(f"file {files.shown(path)} {problem}")
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


_SECRET_WORDS = {"token", "secret", "password", "passwd", "pwd", "key", "apikey", "sig", "signature", "credential"}
_SECRET_WORDS |= {"credentials", "auth", "authorization"}
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?")


def url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    """What is wrong with ``value`` as a URL of one of ``schemes``, or None.

    The message never quotes the URL or a part of it: a URL may carry a password (``user:pw@``),
    or a password pasted where the port goes.
    """
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "holds a space or a control character"
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:  # "Invalid IPv6 URL": an unclosed [
        return "has an unclosed '[' or ']' around its host"
    wanted = " or ".join(f"{scheme}://" for scheme in schemes)
    if parts.scheme not in schemes or not value.lower().startswith(f"{parts.scheme}://"):
        return f"must start with {wanted}"
    if "@" in parts.netloc:
        return "must not hold credentials (user:password@); use the section's username and password or token fields"
    for name, _value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_WORDS & set(re.split(r"[-_.]", name.lower())):
            return "must not hold credentials in its query string (a token, key or signature parameter)"
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if not parts.hostname:
        return "has no host"
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(parts.hostname.split("%", 1)[0])
        except ValueError:
            return "has an invalid IPv6 address between [ and ]"
    elif not _HOST_NAME.fullmatch(host):
        return "has an invalid host name (letters, digits, '.', '-' and '_' only)"
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port (a number from 1 to 65535)"
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        return "has an invalid port (a number from 1 to 65535)"
    return None


def _http_url(value: str) -> str:
    problem = url_problem(value, ("https", "http"))
    if problem:
        raise ValueError(problem)
    return value


# An http(s) URL of a component: checked whole (host, port, no credentials) where the profile is validated.
HttpUrl = Annotated[str, AfterValidator(_http_url)]


def _is_number_type(annotation: object) -> bool:
    """Whether a field's type takes a number (``int``, ``float``, ``int | None``...) and not a bool."""
    args = typing.get_args(annotation)
    if args:
        return bool not in args and any(_is_number_type(arg) for arg in args)
    return annotation in (int, float)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: object, info: ValidationInfo) -> object:
        # pydantic reads true as 1 for a number; a profile saying `connect: true` is a mistake, not 1 s.
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _is_number_type(field.annotation):
            raise ValueError("must be a number, not true or false")
        return value


# A timeout is finite: .inf would make a network call unbounded, which the suite promises never happens.
Seconds = Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)]


class Timeouts(Model):
    """Seconds. ``connect`` bounds DNS and TCP, ``request`` one request, ``check`` one check."""

    connect: Seconds = 5.0  # DNS resolution and TCP connect, per attempt
    request: Seconds = 10.0  # one request once connected
    check: Seconds = 120.0  # one check, waits included (jobs, pods)


class TLS(Model):
    """Trust for every TLS connection the suite makes: one CA bundle, explicit."""

    ca_bundle: ExistingFile | None = None  # PEM bundle trusted for every TLS connection; default: the system store
    insecure: bool = False  # true disables verification (the report flags it in red)


class Endpoint(Model):
    """Something the workspace must reach: ``https://``, ``http://``, ``tcp://`` or ``ssh://``."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]  # the check's parameter: NET-001[name]
    url: str  # https://, http://, tcp://host:port or ssh://host:port
    private: bool = True  # behind the VPN; used by the "VPN probably down" heuristic

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = url_problem(value, ("https", "http", "tcp", "ssh"))
        if problem:
            raise ValueError(problem)
        parts = urllib.parse.urlsplit(value)
        if parts.scheme in ("tcp", "ssh") and parts.port is None:
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

    endpoints: list[Endpoint] = []  # probed by NET-001..004 besides the sections' own
    vpn: str = "the VPN"  # how the operator's VPN is called, for the hint


class Registry(Model):
    """Harbor (onprem) or Artifact Registry (gcp)."""

    url: HttpUrl
    project_path: str  # host[:port]/seg/.../seg, as cookiecutter's registry_project_path
    username: str | None = None  # only with password; default: the login in docker_config
    password: SecretRef | None = None  # default: the login in docker_config (docker login / credHelpers)
    docker_config: LocalPath | None = None  # path to a docker config.json holding auths/credHelpers
    robot_creds_json: LocalPath | None = None  # path to a Harbor robot-account JSON

    @field_validator("project_path")
    @classmethod
    def _project_path(cls, value: str) -> str:
        # cookiecutter's registry_project_path: host[:port]/seg/.../seg, lower-case path, no trailing slash
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d+)?(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+", value):
            # Not quoted: a value pasted here by mistake may be a URL with user:password@ in it.
            raise ValueError("is not host[:port]/segment/.../segment (lower-case, no scheme, no credentials, no tag)")
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

    kind: Literal["s3", "gcs"]  # s3 on-prem (ECS), gcs on GCP
    bucket: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")]  # your project's bucket
    prefix: str = ""  # probe objects go under <prefix>/conformance-<run id>
    endpoint_url: HttpUrl | None = None  # S3: required (the guide passes --endpoint-url); GCS: an emulator only
    credentials_file: LocalPath | None = None  # S3: default ~/.aws/credentials; GCS: service-account key JSON
    aws_profile: str | None = None  # S3: section of credentials_file; default "default"
    region: str = "us-east-1"  # S3 signing region (ECS accepts the default)
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

    tracking_uri: HttpUrl
    username: str | None = None  # default: MLFLOW_TRACKING_USERNAME, as the guide sets it
    password: SecretRef | None = None  # default: MLFLOW_TRACKING_PASSWORD
    experiment: str = "conformance"  # where MLF-003..005 log their run (created if missing)

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
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 2222  # AISG's GitLab: 2222, not 22
    ssh_user: str = "git"  # the user in git@host:group/project.git
    ssh_remote: str | None = None  # default <ssh_user>@<ssh_host>:<project>.git (port from ssh_config)
    ssh_config: LocalPath = "~/.ssh/config"  # the Host block GIT-006 reads (Port 2222, IdentityFile)
    known_hosts: LocalPath = "~/.ssh/known_hosts"  # where GIT-008 looks for the host key
    checkout: LocalPath | None = None  # a clone in the shared workspace whose `origin` GIT-011 inspects
    ci_file_variables: list[str] | None = None  # default: what the guide's .gitlab-ci.yml reads per platform

    @field_validator("url", "https_remote")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = url_problem(value, ("https", "http"))
        if problem:
            own = "gitlab.username and gitlab.token"
            raise ValueError(problem.replace("the section's username and password or token", own))
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


class Ci(Model):
    """Continuous X: the project's GitLab CI/CD, read through the gitlab section's API and token."""

    # A runner must have every one of these tags, as GitLab matches a tagged job to a runner; [] for untagged
    # jobs, which need a runner that runs untagged jobs.
    runner_tags: list[Annotated[str, Field(min_length=1)]]  # the tags your .gitlab-ci.yml's jobs carry (CI-001)


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
    """The Run:ai CLI (the kubeconfig CLI of the guide, or the new CLI of clusters 2.18+) and its login."""

    project: Annotated[str, Field(pattern=_K8S_NAME)]  # your Run:ai project (as `runai project set` takes it)
    cli: str = "runai"  # name on PATH or path of the executable
    smoke_image: str = "alpine:3.20"  # RAI smoke job (writes); /bin/sh only (Alpine has no bash)

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
    min_memory_gib: PositiveFloat = 4.0  # the guide's minimum for pip install
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


class Cluster(Model):
    """The cluster vantage (CLU checks): the suite's own image run as the orchestrator's job.

    The job runs the in-cluster subset (``markers``) with this profile, its sections overlaid with
    ``overrides`` (what differs inside the cluster, e.g. an in-cluster MLflow URL), plus the tuning
    probe (an Optuna study of ``trials`` nested MLflow runs) and ``concurrent_runs`` runs logging to
    one experiment at once. Its results come back in the pod's log and join this run's report.
    """

    image: str | None = None  # default: <registry.project_path>/conformance-suite:<suite version>
    markers: str = "object_storage or mlflow"  # the in-cluster subset (pytest -m)
    secrets: list[Annotated[str, Field(pattern=_K8S_NAME)]] | None = None  # as env (Job); default: expected_secrets
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = {}  # plain values (proxies)
    overrides: dict[str, dict[str, Any]] = {}  # profile sections as the job sees them, merged over these
    trials: Annotated[int, Field(ge=1, le=20)] = 3  # the Optuna study's trials, each a nested MLflow run
    concurrent_runs: Annotated[int, Field(ge=1, le=32)] = 4  # runs logged to one experiment at once
    timeout: Seconds = 600  # for the job to finish, within the run's --budget


GCP_RESOURCE_MANAGER = "https://cloudresourcemanager.googleapis.com"
GCP_IAM = "https://iam.googleapis.com"  # IAM API: a service-account key's record (validBeforeTime, disabled)
GCP_API_ENDPOINT = "gcp-resource-manager"  # the endpoint name GCP-003 waits on


class Serving(Model):
    """The serving probe (SRV): a Deployment and Service of the suite's own image in `kubernetes.namespace`.

    Every field has a default: the section applies wherever the kubernetes section does.
    """

    # It runs ``python -m conformance.probes.serve``, a tiny FastAPI model server, on port 8080.
    image: str = "registry.aisingapore.net/mlops/conformance-suite:0.1.0"  # the suite's image as the cluster pulls it


class Gcp(Model):
    """GCP access: an active gcloud account or application default credentials, and the project.

    Credentials stay where the guide keeps them: gcloud's config folder (``CLOUDSDK_CONFIG``, else
    ``~/.config/gcloud``) and a service-account key named by ``GOOGLE_APPLICATION_CREDENTIALS``.
    """

    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]  # the project id, not its number
    key_file: LocalPath | None = None  # service-account key JSON; default: GOOGLE_APPLICATION_CREDENTIALS
    config_dir: LocalPath | None = None  # gcloud's config folder; default: $CLOUDSDK_CONFIG, else ~/.config/gcloud
    gcloud: str = "gcloud"  # name or path of the gcloud executable (absent is fine when a key is present)
    resource_manager_url: HttpUrl = GCP_RESOURCE_MANAGER  # Cloud Resource Manager API base (a sandbox simulates it)
    iam_url: HttpUrl = GCP_IAM  # IAM API base: the service-account key's expiry (GCP-004; a sandbox simulates it)

    def endpoints(self) -> list[Endpoint]:
        # Not named "gcp": GCP-001/002 look at local files and must not be blocked when Google is unreachable.
        public = self.resource_manager_url.rstrip("/") == GCP_RESOURCE_MANAGER
        return [Endpoint(name=GCP_API_ENDPOINT, url=self.resource_manager_url, private=not public)]


class Profile(Model):
    platform: Literal["onprem", "gcp"]  # which checks apply (marker onprem or gcp) and which sections are needed
    orchestrator: Literal["runai", "noorch", "polyaxon"]  # the same for the orchestrator (noorch: none, local Docker)
    guide_version: str = "v0.5.2"  # the Kapitan Hull release the platform follows
    description: str = ""  # shown in the report
    sandbox: bool = False  # start the embedded sandbox before loading
    waivers: ExistingFile | None = None  # YAML list of accepted gaps (see conformance/waivers.py)
    timeouts: Timeouts = Timeouts()
    # A certificate or credential expiring within this many days fails its check (with the date);
    # within twice as many, a warning. Nightly CI then goes red while there is time to renew.
    expiry_horizon_days: Annotated[float, Field(ge=0, le=365, allow_inf_nan=False)] = 7.0  # fail sooner, warn within 2x
    tls: TLS = TLS()
    network: Network = Network()
    registry: Registry | None = None
    object_storage: ObjectStorage | None = None
    mlflow: MLflow | None = None
    gitlab: GitLab | None = None
    ci: Ci | None = None
    kubernetes: Kubernetes | None = None
    runai: Runai | None = None
    workspace: Workspace | None = None
    gcp: Gcp | None = None
    serving: Serving = Serving()  # defaults only: applies with the kubernetes section
    cluster: Cluster = Cluster()

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


# --------------------------------------------------------------------------- the guide's defaults, requirements

GUIDE_PVC = "pvc-data"  # the project's shared PVC in Coder workspaces (kapitan-hull-admin khull-*.tf), at /pvc-data
GUIDE_WORKSPACE_UID = 2222  # the coder user of the code-server image (kapitan-hull-admin)
# The Secrets the platform's Terraform creates in the project namespace (kapitan-hull-admin terraform/envs/*,
# ml-project-cookiecutter-gcp 03-mlops-components-platform for Polyaxon), checked by name only (K8S-010).
GUIDE_SECRETS = {
    ("onprem", "runai"): ["s3-credentials", "harbor-credentials"],
    ("gcp", "runai"): ["gcp-sa-credentials"],
    ("gcp", "polyaxon"): ["gcp-imagepullsecrets", "gcp-sa-credentials"],
}
POLYAXON_NAMESPACE = "polyaxon-v1"
# The runner tags of the guide's .gitlab-ci.yml per platform (kapitan-hull .gitlab-ci.yml: on-prem, gcp).
GUIDE_RUNNER_TAGS = {"onprem": ["on-prem"], "gcp": ["gcp"]}

# Field path -> the guide's default that fills it when the profile leaves it out (shown in the field reference).
GUIDE_DEFAULTS = {
    "kubernetes": "built from the defaults below (Run:ai: from runai.project)",
    "kubernetes.namespace": "runai-<runai.project> (Run:ai); polyaxon-v1 (Polyaxon)",
    "kubernetes.pvc": f"Run:ai: the last folder of workspace.pvc_mount, else {GUIDE_PVC}",
    "kubernetes.expected_secrets": "onprem + runai: s3-credentials, harbor-credentials; gcp + runai:"
    " gcp-sa-credentials; polyaxon: gcp-imagepullsecrets, gcp-sa-credentials",
    "workspace": "built from the defaults below",
    "workspace.pvc_mount": f"Run:ai: /<kubernetes.pvc>, i.e. /{GUIDE_PVC}",
    "workspace.workspace_uid": f"Run:ai: {GUIDE_WORKSPACE_UID}",
    "ci": "built from the defaults below",
    "ci.runner_tags": "onprem: on-prem; gcp: gcp (the guide's .gitlab-ci.yml)",
}


def _mapping(raw: dict[str, Any], name: str, create: bool) -> dict[str, Any] | None:
    """A copy of section ``name`` put back into ``raw`` (created empty if asked); None if it is no mapping."""
    value = raw.get(name)
    if value is None and create:
        value = {}
    if not isinstance(value, dict):
        return None
    raw[name] = value = dict(value)
    return value


def apply_guide_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with what the guide fixes filled in where the profile leaves it out (see ``GUIDE_DEFAULTS``).

    Only facts of the guide: the Run:ai namespace is ``runai-<project>``, the shared PVC is mounted at
    ``/<pvc>`` (Coder: ``pvc-data``) and owned by UID 2222, the platform's Terraform creates these Secrets.
    What is the user's own (hosts, bucket, project paths) has no default: :func:`requirements` names it.
    """
    raw = dict(raw)
    platform, orchestrator = raw.get("platform"), raw.get("orchestrator")
    workspace = _mapping(raw, "workspace", create=True)
    runai = raw.get("runai") if isinstance(raw.get("runai"), dict) else None
    project = runai.get("project") if runai else None
    if orchestrator == "runai":
        kubernetes = _mapping(raw, "kubernetes", create=isinstance(project, str))
        pvc = kubernetes.get("pvc") if kubernetes else None
        mount = workspace.get("pvc_mount") if workspace else None
        if not isinstance(pvc, str):
            pvc = mount.rstrip("/").rsplit("/", 1)[-1] if isinstance(mount, str) and mount.strip("/") else GUIDE_PVC
            pvc = pvc if re.fullmatch(_K8S_NAME, pvc) else None  # else requirements() asks for kubernetes.pvc
        if workspace is not None:
            workspace.setdefault("pvc_mount", f"/{pvc or GUIDE_PVC}")
            workspace.setdefault("workspace_uid", GUIDE_WORKSPACE_UID)
        if kubernetes is not None:
            if isinstance(project, str) and re.fullmatch(_K8S_NAME, f"runai-{project}"):  # else runai.project's error
                kubernetes.setdefault("namespace", f"runai-{project}")
            if pvc is not None:
                kubernetes.setdefault("pvc", pvc)
    elif orchestrator == "polyaxon":
        kubernetes = _mapping(raw, "kubernetes", create=True)
        if kubernetes is not None:
            kubernetes.setdefault("namespace", POLYAXON_NAMESPACE)
    else:
        kubernetes = None
    secrets = GUIDE_SECRETS.get((str(platform), str(orchestrator)))
    if kubernetes is not None and secrets:
        kubernetes.setdefault("expected_secrets", list(secrets))
    ci = _mapping(raw, "ci", create=str(platform) in GUIDE_RUNNER_TAGS)  # an unknown platform: its own error only
    if ci is not None and str(platform) in GUIDE_RUNNER_TAGS:
        ci.setdefault("runner_tags", list(GUIDE_RUNNER_TAGS[str(platform)]))
    return raw


def section_model(name: str) -> type[BaseModel] | None:
    """The model of the profile's section ``name`` (``Registry`` for ``registry``)."""
    annotation = Profile.model_fields[name].annotation
    for arg in (*get_args(annotation), annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def requirements(profile: Profile, components: set[str] | None = None) -> list[str]:
    """One line per section or field the profile lacks for its platform and orchestrator.

    A component applies by platform and orchestrator (``conformance.components``), never by whether the
    profile describes it: leaving it out is a profile error, not a silently skipped component. With
    ``components``, only those (the ones a run selected) are looked at.
    """
    lines: list[str] = []
    for component in COMPONENTS.values():
        name = component.name
        if name == "network" or not component.applies(profile.platform, profile.orchestrator):
            continue
        if components is not None and name not in components:
            continue
        section = getattr(profile, name)
        if section is None:
            if name == "kubernetes" and profile.orchestrator == "runai" and profile.runai is None:
                continue  # runai.project fills it: the runai line says what to add
            model = section_model(name)
            fields = [f for f, info in model.model_fields.items() if info.is_required()] if model else []
            wanted = f" (set {', '.join(f'{name}.{f}' for f in fields)})" if fields else ""
            lines.append(f"{name}: required for {component.scope}{wanted}")
            continue
        if name == "ci" and profile.gitlab is None and components is not None and "gitlab" not in components:
            lines.append("gitlab: required for the ci checks (they read GitLab's API: set gitlab.url, gitlab.project)")
        if name == "gitlab" and profile.orchestrator == "runai" and profile.gitlab and not profile.gitlab.checkout:
            lines.append(
                "gitlab.checkout: required for orchestrator runai (your clone in the shared workspace,"
                " e.g. /pvc-data/workspaces/<your-name>/<project>, whose origin GIT-011 checks)"
            )
        if name == "kubernetes" and profile.kubernetes is not None:
            if profile.kubernetes.pvc is None:
                lines.append(f"kubernetes.pvc: required for orchestrator {profile.orchestrator} (the shared PVC)")
            if not profile.kubernetes.expected_secrets:
                lines.append(
                    "kubernetes.expected_secrets: names no Secret; leave it out for the guide's names"
                    " or list the project's"
                )
    return lines


@dataclass(frozen=True)
class LoadedProfile:
    """A profile opened by :func:`conformance.session.open_profile`: validated, its secret index complete."""

    profile: Profile
    name: str
    path: Path
    secrets: SecretIndex
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the YAML as read (extends merged)
    logins: dict[str, Any] = field(default_factory=dict, repr=False)  # credentials obtained at open, by component


# --------------------------------------------------------------------------- loading


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        return Path(os.path.abspath(path))


def display(path: Path) -> str:
    try:
        return files.shown(_resolved(path).relative_to(_resolved(Path.cwd())))
    except (ValueError, OSError):
        return files.shown(path)


def available_profiles(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.iterdir() if p.suffix in PROFILE_SUFFIXES)


def resolve_profile_path(ref: str, profiles_dir: Path) -> Path:
    """``NAME`` means ``profiles/NAME.yaml``; anything with a slash or suffix is a path."""
    candidate = Path(os.path.expanduser(ref))
    if candidate.suffix in PROFILE_SUFFIXES or "/" in ref:
        problem = files.regular_file_problem(candidate)
        if problem is None:
            return candidate
        raise ProfileError([f"{files.shown(ref)}: profile file {problem}"])
    for suffix in PROFILE_SUFFIXES:
        path = profiles_dir / f"{ref}{suffix}"
        if path.is_file():
            return path
    names = ", ".join(available_profiles(profiles_dir)) or "none"
    raise ProfileError([f"profile {ref!r} not found in {display(profiles_dir)}/ (available: {names})"])


MAX_VALUES = files.MAX_VALUES  # a real profile has a few hundred


def read_yaml(path: Path, what: str = "profile") -> Any:
    """The YAML document of ``path`` through the one reader (regular file, size cap, deadline, UTF-8)."""
    where = display(path)
    try:
        text = files.decode(files.read_bytes(path, what), path, what)
        return files.parse_yaml(text, where)
    except files.FileProblem as exc:
        # The reader names the path as given; the line names it as the user sees it.
        raise ProfileError([str(exc).replace(f"{files.shown(path)}: ", f"{where}: ", 1)]) from None


def _read_mapping(path: Path) -> dict[str, Any]:
    where = display(path)
    data = read_yaml(path)
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
    data = _read_mapping(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    where = display(path)
    if not isinstance(parent, str):
        raise ProfileError([f"{where}: extends: must be a profile name or path"])
    if "/" in parent or parent.endswith(PROFILE_SUFFIXES):
        parent_path = Path(os.path.expanduser(parent))
        parent_path = parent_path if parent_path.is_absolute() else path.parent / parent_path
        problem = files.regular_file_problem(parent_path)
        if problem:
            raise ProfileError([f"{where}: extends: {display(parent_path)} {problem}"])
    else:
        try:
            parent_path = resolve_profile_path(parent, path.parent)
        except ProfileError as exc:
            raise ProfileError([f"{where}: extends: {line}" for line in exc.lines]) from None
    if _resolved(parent_path) in _seen or _resolved(parent_path) == _resolved(path):
        raise ProfileError([f"{where}: extends: cycle through {display(parent_path)}"])
    return _merge(read_raw(parent_path, (*_seen, _resolved(path))), data)


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


def _plain_values(value: object) -> Iterator[str]:
    """Every text of a profile that is not a secret (the report may show any of them)."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _plain_values(getattr(value, name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _plain_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _plain_values(item)
    elif isinstance(value, str | Path):
        yield str(value)


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


def validate(raw: dict[str, Any], path: Path, environ: Mapping[str, str]) -> Profile:
    """The profile of ``raw`` (``${VAR}`` filled from ``environ``, the guide's defaults applied), or every error."""
    errors: list[str] = []
    raw = apply_guide_defaults(_interpolate(raw, environ, "", errors))
    try:
        profile = Profile.model_validate(raw, context={"base_dir": path.parent, "environ": environ})
    except ValidationError as exc:
        # A field whose ${VAR} is unset already has its line; its validation error would only repeat it.
        unset = {line.split(": ", 1)[0] for line in errors}
        for err in exc.errors(include_input=False, include_url=False):
            if ".".join(str(part) for part in err["loc"]) not in unset:
                errors.append(format_error(err))
    if errors:
        raise ProfileError([f"{display(path)}: {line}" for line in errors])
    return profile


def secret_problems(profile: Profile) -> list[str]:
    """Profile secrets the leak scan could not tell from a value the report shows."""
    errors: list[str] = []
    shown = "\n".join(_plain_values(profile))  # what the report prints of the profile: user names, URLs...
    for field_path, secret, username in collect_secrets(profile):
        if username is not None and username == secret.reveal():
            errors.append(f"{field_path}: the value of {secret.source} equals the user name; use a real password")
        elif secret.reveal() in shown:
            errors.append(
                f"{field_path}: the value of {secret.source} appears in another value of the profile"
                " (a user name, a URL, a path), which the report shows; use a real password"
            )
    return errors


def endpoint_problems(profile: Profile) -> list[str]:
    """Endpoints built from the sections that are no URL, or names used twice."""
    try:
        endpoints = profile.endpoints()
    except ValidationError as exc:  # a URL built from the sections; never its value in the line
        return [format_error(err) for err in exc.errors(include_input=False, include_url=False)]
    errors: list[str] = []
    seen: set[str] = set()
    for endpoint in endpoints:
        if endpoint.name in seen:
            errors.append(f"network.endpoints: endpoint name {endpoint.name!r} is used twice")
        seen.add(endpoint.name)
    return errors
