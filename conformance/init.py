"""``python -m conformance init``: draft a profile from what this workspace already has.

It reads, never writes, and never copies a secret: credentials stay where they
are (the profile points at the files) or become ``env:NAME`` references.
Values it cannot know (the bucket, the registry project) are marked
``CHANGE-ME``; the draft still passes ``profile check`` so it can be run at once.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance import files

PLACEHOLDER = "change-me"


@dataclass
class Draft:
    sections: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was found where, as YAML comments

    def render(self) -> str:
        header = ["# Drafted by `python -m conformance init` from this workspace. Review every value;"]
        header += ["# replace change-me placeholders, then: python -m conformance profile check <this file>", "#"]
        header += [f"# {note}" for note in self.notes]
        return "\n".join(header) + "\n" + yaml.safe_dump(self.sections, sort_keys=False)


def _kubeconfig(home: Path, environ: Mapping[str, str], draft: Draft) -> None:
    path = Path(environ.get("KUBECONFIG", "").split(os.pathsep)[0] or home / ".kube" / "config")
    try:
        data = yaml.safe_load(files.read_utf8(path))
    except (OSError, ValueError, yaml.YAMLError, RecursionError):  # ValueError: not UTF-8, a huge integer
        return
    if not isinstance(data, dict):
        return
    current = data.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in data.get("contexts") or [] if isinstance(c, dict)}
    context = contexts.get(current) or {}
    namespace = context.get("namespace") or PLACEHOLDER
    draft.sections["kubernetes"] = {"kubeconfig": str(path), "context": current, "namespace": namespace}
    draft.notes.append(f"kubernetes: {path}, contexts {', '.join(str(c) for c in contexts)}; current {current}")
    users = [u.get("user") or {} for u in data.get("users") or [] if isinstance(u, dict)]
    oidc = any((u.get("auth-provider") or {}).get("name") == "oidc" for u in users if isinstance(u, dict))
    if oidc or str(namespace).startswith("runai-") or shutil.which("runai"):
        project = str(namespace).removeprefix("runai-") if str(namespace).startswith("runai-") else PLACEHOLDER
        draft.sections["orchestrator"] = "runai"
        draft.sections["runai"] = {"project": project}


def _aws(home: Path, environ: Mapping[str, str], draft: Draft) -> None:
    path = Path(environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(files.read_utf8(path))
    except (OSError, ValueError, configparser.Error):  # ValueError: not UTF-8
        return
    sections = parser.sections()
    if not sections:
        return
    profile = environ.get("AWS_PROFILE") if environ.get("AWS_PROFILE") in sections else sections[0]
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or environ.get("S3_ENDPOINT_URL")
    draft.sections["object_storage"] = {
        "kind": "s3",
        "endpoint_url": endpoint or "https://necs.nus.edu.sg",
        "bucket": PLACEHOLDER,
        "prefix": "conformance",
        "credentials_file": str(path),
        "aws_profile": profile,
    }
    draft.notes.append(f"object_storage: {path}, profiles {', '.join(sections)} (keys are not copied)")


def _docker(home: Path, environ: Mapping[str, str], draft: Draft) -> None:
    path = Path(environ.get("DOCKER_CONFIG") or home / ".docker") / "config.json"
    try:
        data = json.loads(files.read_utf8(path))
    except (OSError, ValueError, RecursionError):
        return
    if not isinstance(data, dict):
        return
    hosts = [*(data.get("auths") or {}), *(data.get("credHelpers") or {})]
    hosts = [h.removeprefix("https://").rstrip("/") for h in hosts if "index.docker.io" not in h]
    if not hosts:
        return
    host = next((h for h in hosts if "aisingapore" in h or "docker.pkg.dev" in h), hosts[0])
    draft.sections["registry"] = {
        "url": f"https://{host}",
        "project_path": f"{host}/{PLACEHOLDER}",
        "docker_config": str(path),
    }
    if host.endswith("-docker.pkg.dev"):
        draft.sections["platform"] = "gcp"
    draft.notes.append(f"registry: {path}, registries {', '.join(hosts)} (credentials are not copied)")


def _mlflow(environ: Mapping[str, str], draft: Draft) -> None:
    uri = environ.get("MLFLOW_TRACKING_URI")
    if not uri or not uri.startswith(("http://", "https://")):
        return
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:  # an unclosed [: not a URL to draft from
        return
    if "@" in parts.netloc:  # https://user:password@host: the profile gets the URL without them, never the password
        uri = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        draft.notes.append("mlflow: MLFLOW_TRACKING_URI holds user:password@; left out (use MLFLOW_TRACKING_PASSWORD)")
    section: dict[str, Any] = {"tracking_uri": uri, "experiment": "conformance"}
    if environ.get("MLFLOW_TRACKING_USERNAME"):
        section["username"] = environ["MLFLOW_TRACKING_USERNAME"]
    if environ.get("MLFLOW_TRACKING_PASSWORD"):
        section["password"] = "env:MLFLOW_TRACKING_PASSWORD"  # noqa: S105 - a reference, never the value
    draft.sections["mlflow"] = section
    draft.notes.append("mlflow: MLFLOW_TRACKING_URI (the password stays in MLFLOW_TRACKING_PASSWORD)")


_SCP = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


def _git(cwd: Path, draft: Draft) -> None:
    try:
        remote = subprocess.run(  # noqa: S603 - a fixed argv
            ["git", "-C", str(cwd), "remote", "get-url", "origin"],  # noqa: S607 - git from PATH, as the user runs it
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return
    if not remote:
        return
    try:
        parts = urllib.parse.urlsplit(remote)
        port_given = parts.port
    except ValueError:  # an unclosed [ or a port out of range: nothing to draft from
        return
    if parts.scheme in ("https", "http") and parts.hostname:
        host, path, port = parts.hostname, parts.path, None
    elif parts.scheme == "ssh" and parts.hostname:
        host, path, port = parts.hostname, parts.path, port_given
    elif (scp := _SCP.match(remote)) is not None:
        host, path, port = scp["host"], scp["path"], None
    else:
        return
    project = path.strip("/").removesuffix(".git")
    section: dict[str, Any] = {"url": f"https://{host}", "project": project or PLACEHOLDER}
    if port:
        section["ssh_port"] = port
    draft.sections["gitlab"] = section
    # Never the remote as it is: https://oauth2:<token>@host/... is how many clone with a token.
    shown = f"{parts.scheme or 'ssh'}://{host}{f':{port}' if port else ''}/{project}"
    draft.notes.append(f"gitlab: git remote origin {shown}")


def _gcp(environ: Mapping[str, str], draft: Draft) -> None:
    key = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not key:
        return
    try:
        project = json.loads(files.read_utf8(Path(key))).get("project_id")
    except (OSError, ValueError, AttributeError, RecursionError):
        project = None
    draft.sections["platform"] = "gcp"
    draft.sections["gcp"] = {"project": project or PLACEHOLDER, "key_file": key}
    draft.notes.append(f"gcp: GOOGLE_APPLICATION_CREDENTIALS {key} (the key is not copied)")


def draft_profile(home: Path, environ: Mapping[str, str], cwd: Path) -> Draft:
    draft = Draft()
    draft.sections.update({"platform": "onprem", "orchestrator": "noorch", "guide_version": "v0.5.2"})
    _kubeconfig(home, environ, draft)
    _aws(home, environ, draft)
    _docker(home, environ, draft)
    _mlflow(environ, draft)
    _git(cwd, draft)
    _gcp(environ, draft)
    storage = draft.sections.get("object_storage")
    if draft.sections["platform"] == "gcp" and storage is not None:  # GCS, not ECS, on GCP
        draft.sections["object_storage"] = {"kind": "gcs", "bucket": PLACEHOLDER, "prefix": "conformance"}
    if not draft.notes:
        draft.notes.append("found nothing to draft from: no kubeconfig, AWS, docker, MLflow, git or GCP set-up")
    _required(draft)
    return draft


def _required(draft: Draft) -> None:
    """Every section the platform and orchestrator need (profile.requirements), with change-me where unknown."""
    platform, orchestrator = draft.sections["platform"], draft.sections["orchestrator"]
    wanted: dict[str, dict[str, Any]] = {
        "registry": {"url": f"https://{PLACEHOLDER}", "project_path": f"{PLACEHOLDER}/{PLACEHOLDER}"},
        "object_storage": {"kind": "gcs", "bucket": PLACEHOLDER, "prefix": "conformance"}
        if platform == "gcp"
        else {"kind": "s3", "endpoint_url": f"https://{PLACEHOLDER}", "bucket": PLACEHOLDER, "prefix": "conformance"},
        "mlflow": {"tracking_uri": f"https://{PLACEHOLDER}", "experiment": "conformance"},
        "gitlab": {"url": "https://gitlab.aisingapore.net", "project": PLACEHOLDER},
    }
    if orchestrator == "runai":
        wanted["runai"] = {"project": PLACEHOLDER}
    if platform == "gcp":
        wanted["gcp"] = {"project": PLACEHOLDER}
    for name, section in wanted.items():
        if name not in draft.sections:
            draft.sections[name] = section
            draft.notes.append(f"{name}: nothing found; fill in the change-me values")
    gitlab = draft.sections["gitlab"]
    if orchestrator == "runai" and "checkout" not in gitlab:  # GIT-011: the clone in the shared workspace
        gitlab["checkout"] = f"/pvc-data/workspaces/{PLACEHOLDER}/{PLACEHOLDER}"
