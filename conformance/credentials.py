"""Secrets held in the credential files a profile points at, for redaction and the leak scan.

Most credentials never pass through the profile: the guide keeps them in
``~/.docker/config.json``, ``~/.aws/credentials``, the kubeconfig, a Harbor
robot file or a GCP service-account key, and the checks read them there. So
that the report can still scrub and scan for them, every process of a run
(the controller and each xdist worker alike) reads the same files here, once,
at profile load. Reading is lenient: a missing or malformed file is the
checks' business (they report it); here it only means nothing to add.
"""

from __future__ import annotations

import configparser
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from conformance import files, locate
from conformance import kubeconfig as kubeconfig_files
from conformance.secrets import Secret

if TYPE_CHECKING:  # profile.py imports this module
    from conformance.profile import Profile

MAX_BYTES = files.MAX_BYTES  # the clients' cap too (conformance/files.py)

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

Found = Iterator[tuple[str, Secret, str | None]]  # (where it was found, the secret, its user name)


def ambient(environ: Mapping[str, str]) -> Found:
    """The well-known secret variables that are set."""
    for name, user_variable in AMBIENT_SECRETS.items():
        value = environ.get(name)
        if value:
            yield f"environment variable {name}", Secret(value, f"env:{name}"), environ.get(user_variable or "")


def held_outside(profile: Profile, environ: Mapping[str, str]) -> Found:
    """Every secret of the run that does not come from a profile field: variables and credential files.

    Which files: the clients' own answer (:mod:`conformance.locate`, :mod:`conformance.kubeconfig`).
    """
    yield from ambient(environ)
    if profile.registry is not None:
        yield from docker_config(locate.docker_config(profile.registry.docker_config, environ))
        yield from robot_file(profile.registry.robot_creds_json)
    storage = profile.object_storage
    if storage is not None and storage.kind == "s3":
        for path in locate.aws_credentials(storage.credentials_file, environ):
            yield from aws_credentials(path)
    elif storage is not None:
        key = locate.google_key(storage.credentials_file, "object_storage.credentials_file", environ)
        yield from gcp_key(key[0] if key else locate.gcloud_adc(None, environ))
    if profile.kubernetes is not None:  # every file kubectl merges, by client-go's rules (conformance/kubeconfig.py)
        home = Path(os.path.expanduser(environ.get("HOME", "~")))
        for path in kubeconfig_files.load(profile.kubernetes.kubeconfig, environ, home).files:
            yield from kubeconfig(path)
    if profile.gcp is not None:
        key = locate.google_key(profile.gcp.key_file, "gcp.key_file", environ)
        yield from gcp_key(key[0] if key else None)
        yield from gcp_key(locate.gcloud_adc(profile.gcp.config_dir, environ))


def read_text(path: str | Path | None) -> str | None:
    # The clients read these files through the same reader, with the same cap: a file too large
    # to index here is refused by its check, so no secret the leak scan does not know is ever sent.
    if not path:
        return None
    content = files.read_or_problem(Path(os.path.expanduser(str(path))), max_bytes=MAX_BYTES)
    return None if isinstance(content, str) else content.decode("utf-8", errors="replace")


def _json(path: str | Path | None) -> Any:
    text = read_text(path)
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None


def _secret(where: str, value: object) -> Found:
    if isinstance(value, str) and value:
        yield where, Secret(value, where), None


def docker_config(path: str | Path | None) -> Found:
    data = _json(path)
    if not isinstance(data, dict):
        return
    auths = data.get("auths")
    for host, entry in (auths if isinstance(auths, dict) else {}).items():
        if not isinstance(entry, dict):
            continue
        where = f"{path} auths[{host}]"
        yield from _secret(where, entry.get("auth"))
        pair = locate.basic_pair(entry.get("auth"))  # the password the registry client would send
        if pair is not None:
            yield where, Secret(pair[1], where), pair[0]
        yield from _secret(where, entry.get("password"))
        yield from _secret(where, entry.get("identitytoken"))


def robot_file(path: str | Path | None) -> Found:
    data = _json(path)
    if isinstance(data, dict):
        name = data.get("name") if isinstance(data.get("name"), str) else None
        for key in ("secret", "token", "password"):
            value = data.get(key)
            if isinstance(value, str) and value:
                yield f"{path} {key}", Secret(value, f"{path} {key}"), name
        yield from docker_config(path)  # the guide's robot file can also be a docker auths file


def aws_credentials(path: str | Path | None) -> Found:
    text = read_text(path)
    if not text:
        return
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error:
        return
    for section in parser.sections():
        for key in ("aws_secret_access_key", "aws_session_token"):
            value = parser.get(section, key, fallback=None)
            if value:
                where = f"{path} [{section}] {key}"
                yield where, Secret(value, where), parser.get(section, "aws_access_key_id", fallback=None)


def kubeconfig(path: str | Path | None) -> Found:
    text = read_text(path)
    try:
        data = yaml.safe_load(text) if text else None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError):  # deep nesting, huge ints, bad dates
        return
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        return
    for entry in data["users"]:
        user: Any = entry.get("user") if isinstance(entry, dict) else None
        if isinstance(user, dict):
            yield from kubeconfig_user(f"{path} users[{entry.get('name')}]", user)


def kubeconfig_user(where: str, user: Mapping[str, Any]) -> Found:
    """The secrets of one kubeconfig user entry (the Kubernetes client lists the selected user's with it)."""
    for key in ("token", "password", "client-key-data"):
        yield from _secret(where, user.get(key))
    provider = user.get("auth-provider")
    if isinstance(provider, dict) and isinstance(provider.get("config"), dict):
        for key in ("id-token", "refresh-token", "access-token", "client-secret"):
            yield from _secret(where, provider["config"].get(key))
    yield from _exec_plugin(where, user.get("exec"))


SECRET_NAME = re.compile(r"secret|token|password|passwd|credential|api[-_]?key|private[-_]?key", re.IGNORECASE)


def _exec_plugin(where: str, plugin: object) -> Found:
    """Secrets handed to a kubeconfig exec plugin: ``env`` values and ``args`` option values named like one."""
    if not isinstance(plugin, dict):
        return
    for entry in plugin.get("env") or [] if isinstance(plugin.get("env"), list) else []:
        if isinstance(entry, dict) and SECRET_NAME.search(str(entry.get("name", ""))):
            yield from _secret(f"{where} exec env {entry.get('name')}", entry.get("value"))
    args = [a for a in plugin.get("args") or [] if isinstance(a, str)] if isinstance(plugin.get("args"), list) else []
    for i, arg in enumerate(args):
        option, equals, value = arg.partition("=")
        if not option.startswith("-") or not SECRET_NAME.search(option):
            continue
        if not equals:  # --client-secret VALUE
            value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("-") else ""
        yield from _secret(f"{where} exec args {option}", value)


def gcp_key(path: str | Path | None) -> Found:
    data = _json(path)
    if isinstance(data, dict):
        for key in ("private_key", "private_key_id", "refresh_token", "client_secret"):
            yield from _secret(f"{path} {key}", data.get(key))
        key_body = data.get("private_key")
        if isinstance(key_body, str):  # each base64 line of the PEM body, as it may appear alone
            for line in key_body.splitlines():
                if len(line) >= 40 and not line.startswith("-----"):
                    yield from _secret(f"{path} private_key", line)
