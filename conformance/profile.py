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

import ipaddress
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PositiveFloat,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from conformance.secrets import MIN_SCAN_LENGTH, Secret, SecretIndex, SecretRefError, resolve_ref

PROFILE_SUFFIXES = (".yaml", ".yml")
# Secret environment variables the guide's tools read, with the variable holding their user name.
AMBIENT_SECRETS: dict[str, str] = {
    "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_TOKEN": "",
    "AWS_SECRET_ACCESS_KEY": "AWS_ACCESS_KEY_ID",
    "AWS_SESSION_TOKEN": "",
    "GITLAB_TOKEN": "",
    "CI_JOB_TOKEN": "",
    "HARBOR_PASSWORD": "HARBOR_USERNAME",
    "CLOUDSDK_AUTH_ACCESS_TOKEN": "",
}
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


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Timeouts(Model):
    """Seconds. ``connect`` bounds DNS and TCP, ``request`` one request, ``check`` one check."""

    connect: PositiveFloat = 5.0
    request: PositiveFloat = 10.0
    check: PositiveFloat = 120.0


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

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


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
    docker_config: str | None = None  # path to a docker config.json holding auths/credHelpers
    robot_creds_json: str | None = None  # path to a Harbor robot-account JSON

    def endpoints(self) -> list[Endpoint]:
        return [_endpoint("registry", self.url)]


class ObjectStorage(Model):
    """ECS over S3 (onprem) or GCS (gcp)."""

    kind: Literal["s3", "gcs"]
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None  # S3: required by the guide (--endpoint-url)
    credentials_file: str | None = None  # S3: ~/.aws/credentials; GCS: service-account key
    aws_profile: str | None = None
    region: str = "us-east-1"
    path_style: bool = True
    gcp_project: str | None = None

    def endpoints(self) -> list[Endpoint]:
        return [_endpoint("object_storage", self.endpoint_url)] if self.endpoint_url else []


class MLflow(Model):
    """The MLflow tracking server."""

    tracking_uri: str
    username: str | None = None
    password: SecretRef | None = None
    experiment: str = "conformance"

    def endpoints(self) -> list[Endpoint]:
        return [_endpoint("mlflow", self.tracking_uri.rstrip("/") + "/health")]


class Profile(Model):
    platform: Literal["onprem", "gcp"]
    orchestrator: Literal["runai", "noorch", "polyaxon"]
    guide_version: str = "v0.5.2"
    description: str = ""
    sandbox: bool = False  # start the embedded sandbox before loading
    timeouts: Timeouts = Timeouts()
    tls: TLS = TLS()
    network: Network = Network()
    registry: Registry | None = None
    object_storage: ObjectStorage | None = None
    mlflow: MLflow | None = None

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


def _read_yaml(path: Path) -> dict[str, Any]:
    where = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError([f"{where}: cannot read file ({exc.strerror})"]) from None
    except UnicodeDecodeError:
        raise ProfileError([f"{where}: not UTF-8 text"]) from None
    try:
        data = yaml.safe_load(text)
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
                errors.append(f"{loc}: environment variable {name} is not set (used as ${{{name}}})")
                return match.group(0)
            return environ[name]

        return _VAR.sub(sub, value)
    return value


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required field is missing",
}


def _format_error(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(part) for part in err["loc"]) or "top level"
    kind = err["type"]
    if kind in _MESSAGES:
        return f"{loc}: {_MESSAGES[kind]}"
    message = str(err["msg"])
    message = message.removeprefix("Value error, ")
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
                errors.append(_format_error(err))
        raise ProfileError([f"{where}: {line}" for line in errors]) from None
    if errors:
        raise ProfileError([f"{where}: {line}" for line in errors])
    index = SecretIndex()
    for field_path, secret, username in collect_secrets(profile):
        index.add(field_path, secret, username=username)
    for name, user_variable in AMBIENT_SECRETS.items():  # credentials the guide keeps outside the profile
        value = env.get(name)
        if value and len(value) >= MIN_SCAN_LENGTH:
            user = env.get(user_variable) if user_variable else None
            index.add(f"environment variable {name}", Secret(value, f"env:{name}"), username=user)
    seen: set[str] = set()
    for endpoint in profile.endpoints():
        if endpoint.name in seen:
            raise ProfileError([f"{where}: network.endpoints: endpoint name {endpoint.name!r} is used twice"])
        seen.add(endpoint.name)
    return LoadedProfile(profile=profile, name=path.stem, path=path, secrets=index)
