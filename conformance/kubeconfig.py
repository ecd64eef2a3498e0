"""The kubeconfig as kubectl, client-go and so the runai CLI load it: one loader for the whole suite.

Used by the Kubernetes client (which context, cluster and user the checks use), the Run:ai
client (the ``KUBECONFIG`` its child process gets) and the secret index
(:mod:`conformance.credentials`: which files' credentials the report redacts), so that all three
see the same files the user's tools see. No network, no kubernetes package.

The rules are client-go's (kubernetes/client-go v0.29, ``tools/clientcmd/loader.go``,
``ClientConfigLoadingRules.Load`` and ``ResolveLocalPaths``):

* an explicit file (kubectl's ``--kubeconfig``; here the profile's ``kubernetes.kubeconfig``) is
  read alone, and must exist;
* else every file listed in ``$KUBECONFIG`` (``os.pathsep``-separated, duplicates once, missing or
  empty names skipped) is read and merged: the **first** file that defines a named cluster, user
  or context wins that name whole (a later file's entry of the same name is ignored, even the
  fields the first lacks), and ``current-context`` comes from the first file that sets one;
* with ``$KUBECONFIG`` unset or empty: ``~/.kube/config``;
* relative file paths in an entry (``certificate-authority``, ``client-certificate``,
  ``client-key``, ``tokenFile``, an exec ``command`` with a ``/``) are resolved against the folder
  of the file the entry came from.

One addition of the suite's, not client-go's: with ``$KUBECONFIG`` unset and no
``~/.kube/config``, the Coder workspace's kubeconfig (where the guide's Coder image keeps it) is
read, and the evidence says so.

Each named entry remembers the file it came from (:meth:`Loaded.origin`): client-go writes a
refreshed OIDC token back to the file that defines the user, and so does the suite.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import files

CODER_KUBECONFIG = "/home/coder/.runai_config/runai-sso.yaml"  # Coder workspaces (kapitan-hull-admin)
NAMED = ("clusters", "users", "contexts")
_CLUSTER_FILES = ("certificate-authority",)
_USER_FILES = ("client-certificate", "client-key", "tokenFile")


@dataclass
class Loaded:
    """The merged kubeconfig and where each part of it came from."""

    source: str  # "kubernetes.kubeconfig in the profile", "$KUBECONFIG", "~/.kube/config", ...
    consulted: list[str] = field(default_factory=list)  # every file looked at, in precedence order
    files: list[Path] = field(default_factory=list)  # the files read and merged, in precedence order
    modes: dict[Path, int] = field(default_factory=dict)
    data: dict[str, Any] | None = field(default=None, repr=False)  # credentials inside: never in a repr
    problem: str | None = None  # nothing to read, or a file that does not parse: one line naming it
    origins: dict[tuple[str, str], Path] = field(default_factory=dict)  # (list key, entry name) -> file

    def origin(self, key: str, name: str) -> Path | None:
        """The file that defines entry ``name`` of ``key`` (``clusters``, ``users``, ``contexts``)."""
        return self.origins.get((key, name))

    @property
    def environment_value(self) -> str:
        """``KUBECONFIG`` for a child process (runai, kubectl) so that it loads exactly these files."""
        return os.pathsep.join(str(path) for path in self.files)


def parse_file(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """One file: (mapping, None) or (None, what is wrong in one line). An empty file is an empty config."""
    try:  # strictly, as kubectl's YAML reader: duplicate keys, impossible dates, huge integers, alias bombs
        data = files.parse_yaml(text, "YAML")
    except files.FileProblem as exc:
        return None, str(exc).removeprefix("YAML: ")
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        return None, f"top level is {type(data).__name__}, not a kubeconfig mapping"
    for key in NAMED:
        value = data.get(key)
        if value is not None and not isinstance(value, list):
            return None, f"{key} is not a list"
    return data, None


def _resolve(body: dict[str, Any], keys: tuple[str, ...], folder: Path) -> dict[str, Any]:
    resolved = dict(body)
    for key in keys:
        value = resolved.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            resolved[key] = str(folder / value)
    return resolved


def _resolve_entry(key: str, entry: dict[str, Any], folder: Path) -> dict[str, Any]:
    inner = key[:-1]
    body = entry.get(inner)
    if not isinstance(body, dict):
        return entry
    if key == "clusters":
        body = _resolve(body, _CLUSTER_FILES, folder)
    elif key == "users":
        body = _resolve(body, _USER_FILES, folder)
        spec = body.get("exec")
        if isinstance(spec, dict) and "/" in str(spec.get("command") or ""):
            body["exec"] = _resolve(spec, ("command",), folder)
    return {**entry, inner: body}


def merge(files: list[tuple[Path, dict[str, Any]]]) -> tuple[dict[str, Any], dict[tuple[str, str], Path]]:
    """client-go's merge of parsed files (first file wins each name; first current-context set wins)."""
    merged: dict[str, Any] = {key: [] for key in NAMED}
    origins: dict[tuple[str, str], Path] = {}
    for path, data in files:
        for key in NAMED:
            for entry in data.get(key) or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    merged[key].append(entry)  # kept as is: the reader reports a malformed entry
                    continue
                name = entry["name"]
                if (key, name) in origins:
                    continue
                origins[(key, name)] = path
                merged[key].append(_resolve_entry(key, entry, path.parent))
        if not merged.get("current-context") and data.get("current-context"):
            merged["current-context"] = data["current-context"]
        for other, value in data.items():
            if other not in (*NAMED, "current-context") and other not in merged:
                merged[other] = value  # apiVersion, kind, preferences, extensions: first file's
    return merged, origins


def candidates(explicit: str | Path | None, environ: Mapping[str, str], home: Path) -> tuple[str, list[Path]]:
    """(what chose them, the files kubectl would read in precedence order), whether or not they exist."""
    if explicit:
        return "kubernetes.kubeconfig in the profile", [Path(os.path.expanduser(str(explicit)))]
    listed = [part for part in (environ.get("KUBECONFIG") or "").split(os.pathsep) if part]
    if listed:
        unique = list(dict.fromkeys(Path(os.path.expanduser(part)) for part in listed))
        return "$KUBECONFIG", unique
    default = home / ".kube" / "config"
    if not default.is_file() and Path(CODER_KUBECONFIG).is_file():
        return "the Coder workspace's kubeconfig (no $KUBECONFIG, no ~/.kube/config)", [Path(CODER_KUBECONFIG)]
    return "~/.kube/config", [default]


def load(explicit: str | Path | None, environ: Mapping[str, str] | None = None, home: Path | None = None) -> Loaded:
    """The kubeconfig that kubectl would load here (see the module's rules); never raises."""
    env = os.environ if environ is None else environ
    source, paths = candidates(explicit, env, home or Path(env.get("HOME") or Path.home()))
    loaded = Loaded(source=source, consulted=[f"{source}: {path}" for path in paths])
    parsed: list[tuple[Path, dict[str, Any]]] = []
    for path in paths:
        if not path.exists() and not path.is_symlink():
            continue  # client-go skips a listed file that does not exist
        try:
            loaded.modes[path] = stat.S_IMODE(path.stat().st_mode)
            loaded.files.append(path)
            text = files.read_utf8(path)  # regular files only, size cap, read deadline
        except OSError as exc:
            loaded.problem = f"{files.shown(path)} is not readable ({exc.strerror})"
            return loaded
        except UnicodeDecodeError:
            loaded.problem = f"{files.shown(path)} is not UTF-8 text"
            return loaded
        data, problem = parse_file(text)
        if problem or data is None:
            loaded.problem = f"{path}: {problem}"
            return loaded
        parsed.append((path, data))
    if not parsed:
        what = "none of the files exists" if len(paths) > 1 else "the file does not exist"
        loaded.problem = f"no kubeconfig found ({source}: {what}: {'; '.join(str(p) for p in paths)})"
        return loaded
    loaded.data, loaded.origins = merge(parsed)
    if not loaded.data.get("clusters"):
        where = ", ".join(str(p) for p in loaded.files)
        loaded.problem = f"{where}: it defines no clusters"
    return loaded


def is_private(mode: int | None) -> bool:
    return mode is not None and not mode & (stat.S_IRWXG | stat.S_IRWXO)
