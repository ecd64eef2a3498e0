"""What ``profile check`` can see offline, on the machine it runs on: warnings, never profile errors.

The profile names things that live in the user's own files: an AWS profile (a section of the shared
credentials file), a kubeconfig context, a registry the docker config must hold a login for. When
such a file is here and contradicts the profile, the user should hear it before a run. When the file
is not here, nothing is said beyond a note: the machine under test may be another one, and what it
lacks is what the checks report (OBJ-001, K8S-001, REG-001...), never a reason to refuse a profile.

No network, no pytest; each reader is lenient (a malformed file is one warning naming it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from conformance import credentials, kubeconfig, locate
from conformance.clients import object_storage
from conformance.profile import Profile

PLACEHOLDER = re.compile(r"<[a-z][a-z0-9_-]*>|change-me")  # the templates' <your-name>, init's change-me


def aws_profile(profile: Profile, environ: Mapping[str, str]) -> Iterator[str]:
    storage = profile.object_storage
    if storage is None or storage.kind != "s3":
        return
    facts = object_storage.aws_facts(storage, environ)  # OBJ-001's own reading of the file
    if not facts.exists:
        yield f"note: {facts.path} is not on this machine; OBJ-001 checks it where the suite runs"
    elif facts.problem:
        yield f"warning: object_storage.aws_profile: {facts.problem}"


def kube_context(profile: Profile, environ: Mapping[str, str]) -> Iterator[str]:
    if profile.kubernetes is None:
        return
    home = locate.home(environ)
    loaded = kubeconfig.load(profile.kubernetes.kubeconfig, environ, home)  # the files the run reads, merged alike
    where = ", ".join(str(path) for path in kubeconfig.candidates(profile.kubernetes.kubeconfig, environ, home)[1])
    if not loaded.files:
        yield f"note: no kubeconfig at {where} on this machine; K8S-001 checks it where the suite runs"
        return
    if loaded.data is None:
        yield f"warning: kubernetes.context: {loaded.files[-1]} is not a usable kubeconfig (K8S-001 will say where)"
        return
    contexts = [str(e["name"]) for e in loaded.data.get("contexts") or [] if isinstance(e, dict) and e.get("name")]
    current = loaded.data.get("current-context") or None
    wanted = profile.kubernetes.context
    if wanted is not None and wanted not in contexts:
        names = ", ".join(contexts) or "none"
        yield f"warning: kubernetes.context: {wanted!r} is not a context of {where} (contexts: {names})"
    elif wanted is None and current is None:
        names = ", ".join(contexts) or "none"
        yield f"warning: kubernetes.context: unset and {where} has no current-context; set one of: {names}"


def _registry_key(key: str) -> str:
    """``https://host:port/v1/`` -> ``host:port``, as docker matches config.json entries."""
    key = re.sub(r"^[a-z]+://", "", key.strip())
    return key.split("/", 1)[0]


def docker_login(profile: Profile, environ: Mapping[str, str]) -> Iterator[str]:
    registry = profile.registry
    if registry is None or registry.password is not None or registry.robot_creds_json:
        return  # credentials come from the profile or a robot file, not the docker config
    path = locate.docker_config(registry.docker_config, environ)
    text = credentials.read_text(path)
    if text is None:
        yield f"note: {path} is not on this machine; the REG checks look for your login where the suite runs"
        return
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        yield f"warning: registry.docker_config: {path} is not valid JSON (the REG checks will say where)"
        return
    if not isinstance(data, dict) or data.get("credsStore"):
        return  # a credential store may hold any registry; only the checks can ask it
    known = {
        _registry_key(str(k)) for key in ("auths", "credHelpers") if isinstance(data.get(key), dict) for k in data[key]
    }
    if registry.host not in known:
        how = (
            f"gcloud auth configure-docker {registry.host}"
            if registry.host.endswith("-docker.pkg.dev")
            else f"docker login {registry.host}"
        )
        names = ", ".join(sorted(known)) or "none"
        yield f"warning: registry: {path} has no login for {registry.host} (entries: {names}); run `{how}`"


def placeholders(raw: Any, where: str = "") -> Iterator[str]:
    """Template placeholders (``<your-name>``) left in the profile's values."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            yield from placeholders(value, f"{where}.{key}" if where else str(key))
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            yield from placeholders(value, f"{where}.{i}")
    elif isinstance(raw, str) and (found := PLACEHOLDER.search(raw)):
        yield f"warning: {where}: still holds the template's placeholder {found.group(0)}"


def warnings(profile: Profile, raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """Every offline finding, one line each, ``warning:`` or ``note:`` first."""
    env = os.environ if environ is None else environ
    return [
        *placeholders(dict(raw)),
        *aws_profile(profile, env),
        *kube_context(profile, env),
        *docker_login(profile, env),
    ]
