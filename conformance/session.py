"""Opening a profile: the one way the pytest plugin and every command get a :class:`LoadedProfile`.

:func:`open_profile` resolves the name or path (one profiles-folder rule, :func:`profiles_dir`),
reads the YAML once, starts or attaches the sandbox for a ``sandbox: true`` profile, validates,
builds the secret index and points the workspace at ``--workspace-pod``. The index holds the
profile's secrets, those of the credential files it points at (:mod:`conformance.credentials`)
and, for a run (``obtain``), the credentials that exist only once obtained: an exec plugin's
token, a renewed OIDC id-token. Then it is frozen: no check adds to it, so the report's leak scan
(in the xdist controller too) knows every secret a check may send or print.

:mod:`conformance.profile` below is the schema and the YAML only; it imports nothing from here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from conformance import credentials
from conformance.profile import (
    LoadedProfile,
    Profile,
    ProfileError,
    collect_secrets,
    display,
    endpoint_problems,
    read_raw,
    resolve_profile_path,
    secret_problems,
    validate,
)
from conformance.secrets import SecretIndex, header_problem

CHECKOUT = Path(__file__).resolve().parent.parent
PROFILES = "profiles"

# Called for a ``sandbox: true`` profile at this path: the running sandbox's variables (it starts or attaches it).
Sandbox = Callable[[Path], Mapping[str, str]]


def profiles_dir(root: Path | None = None, name: str = PROFILES) -> Path:
    """The folder of named profiles: ``<root>/<name>`` (pytest: its rootdir and ini option; commands: the checkout)."""
    return (root or CHECKOUT) / name


def open_profile(
    ref: str | Path,
    environ: Mapping[str, str] | None = None,
    *,
    profiles: Path | None = None,
    sandbox: Sandbox | None = None,
    workspace_pod: str | None = None,
    obtain: bool = False,
) -> LoadedProfile:
    """The profile ``ref`` (a NAME in ``profiles`` or a path; a :class:`Path` is taken as is), opened once.

    Every problem is a :class:`ProfileError`, one line each. ``obtain``: get the credentials a run's
    checks send (Kubernetes: the exec plugin's output, a renewed OIDC login) now, into the index.
    """
    path = ref if isinstance(ref, Path) else resolve_profile_path(ref, profiles or profiles_dir())
    raw = read_raw(path)
    env = os.environ if environ is None else environ
    if sandbox is not None and raw.get("sandbox") is True:
        env = {**env, **sandbox(path)}
    profile = validate(raw, path, env)
    index = SecretIndex()
    errors = secret_problems(profile)
    for field_path, secret, username in collect_secrets(profile):
        index.add(field_path, secret, username=username)
    for found_in, secret, username in credentials.held_outside(profile, env):  # the guide keeps most there
        index.add(found_in, secret, username=username)
    for variable, secret, _user in credentials.ambient(env):  # sent by the checks as they are
        problem = header_problem(secret.reveal())
        if problem:
            errors.append(f"{variable} {problem}; fix or unset it")
    errors += endpoint_problems(profile)
    if errors:
        raise ProfileError([f"{display(path)}: {line}" for line in errors])
    logins = _obtain(profile, index) if obtain else {}
    loaded = LoadedProfile(profile, path.stem, path, index.freeze(), raw, logins)
    return _with_workspace_pod(loaded, workspace_pod)


def _obtain(profile: Profile, index: SecretIndex) -> dict[str, Any]:
    """Credentials the checks will send that no file holds yet, obtained as the user's tools would."""
    if profile.kubernetes is None:
        return {}
    from conformance.clients import kubernetes as kube  # noqa: PLC0415 - only runs with a kubernetes section

    kc = kube.find_kubeconfig(profile.kubernetes)
    found = kube.obtain(kc, kube.credential(kc), profile.tls, profile.timeouts) if kc.usable else None
    kube.register_credentials(kc, index, found)  # renewed tokens, the plugin's token
    return {"kubernetes": (kc, found)}


def _with_workspace_pod(loaded: LoadedProfile, target: str | None) -> LoadedProfile:
    """``--workspace-pod POD[@NAMESPACE]`` points the profile's workspace section at a pod."""
    if not target:
        return loaded
    workspace = loaded.profile.workspace
    if workspace is None:
        raise ProfileError([f"{display(loaded.path)}: --workspace-pod needs a workspace: section in the profile"])
    pod, _, namespace = target.partition("@")
    update: dict[str, str] = {"pod": pod, **({"namespace": namespace} if namespace else {})}
    profile = loaded.profile.model_copy(update={"workspace": workspace.model_copy(update=update)})
    return dataclasses.replace(loaded, profile=profile)
