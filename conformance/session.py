"""Opening a profile, once, for the pytest plugin and every command: :func:`open_profile`.

Resolve the name (:func:`profiles_dir`), read the YAML, start or attach the sandbox, validate, build
the secret index (profile fields, the credential files the clients read, and for a run the credentials
only obtained by then: an exec plugin's token, a renewed OIDC login), freeze it, apply ``--workspace-pod``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from conformance import credentials
from conformance import profile as schema
from conformance.profile import LoadedProfile, Profile, ProfileError, display
from conformance.secrets import Secret, SecretIndex, header_problem

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
    """``ref``: a NAME in ``profiles`` or a path (a :class:`Path` as is); every problem a :class:`ProfileError` line.

    ``obtain``: get the credentials a run's checks send now, into the index (:func:`_obtain`)."""
    path = ref if isinstance(ref, Path) else schema.resolve_profile_path(ref, profiles or profiles_dir())
    raw = schema.read_raw(path)
    env = os.environ if environ is None else environ
    if sandbox is not None and raw.get("sandbox") is True:
        env = {**env, **sandbox(path)}
    profile = schema.validate(raw, path, env)
    index = SecretIndex()
    errors = schema.secret_problems(profile)
    for field_path, secret, username in schema.collect_secrets(profile):
        index.add(field_path, secret, username=username)
    for found_in, secret, username in credentials.held_outside(profile, env):  # the guide keeps most there
        index.add(found_in, secret, username=username)
    for variable, secret, _user in credentials.ambient(env):  # sent by the checks as they are
        problem = header_problem(secret.reveal())
        if problem:
            errors.append(f"{variable} {problem}; fix or unset it")
    errors += schema.endpoint_problems(profile)
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
    obtained = (found.entry or {}) if found is not None else {}
    for value in [*kc.credential_values(), *obtained.values()]:
        if isinstance(value, str) and value:  # a renewed id-token, the plugin's token
            index.add("the kubeconfig's credentials", Secret(value, "kubeconfig"))
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
