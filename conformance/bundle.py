"""``python -m conformance bundle``: one archive to attach to a support ticket.

The archive holds the run's JSON results and, found next to it with the same stem, its HTML
report and JUnit XML; a ``summary.txt`` to paste into the ticket (where, what, failures grouped
by the team that usually fixes them, client and server versions, which leak scan ran); and
``SHA256SUMS`` over every other member (``sha256sum -c SHA256SUMS`` in the extracted folder).

Before anything is written, every member is scanned for secrets once more: those of the profile
given with ``--profile`` (every secret field it resolves, plus the ambient variables the guide's
tools read), or without it only the ambient variables (``AMBIENT_SECRETS``) set here. A hit
writes no archive and exits 1, naming the member and the profile field, never the value.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import sys
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance import credentials, files, results
from conformance import verdict as verdicts
from conformance.components import COMPONENTS
from conformance.fleet import headline, plain
from conformance.profile import LoadedProfile, display
from conformance.report import Leak, library_versions
from conformance.results import PROBLEMS, Check, ResultsError, Run
from conformance.secrets import SecretIndex

SIBLINGS = (".html", ".xml")
MESSAGE_LINES = 8
LINE_WIDTH = 300


class BundleError(Exception):
    """A problem with the command's input; the message is one line."""


@dataclass
class Scan:
    index: SecretIndex
    description: str


# --------------------------------------------------------------------------- inputs


def load_owners(path: Path | None) -> dict[str, str]:
    """component -> owner: COMPONENTS' owners, overridden by an ``owners.yaml`` mapping."""
    owners = {name: component.owner for name, component in COMPONENTS.items()}
    if path is None:
        return owners
    data = files.parse_yaml(files.read_text(path, "owners file", BundleError), str(path), BundleError)
    if isinstance(data, dict) and set(data) == {"owners"}:
        data = data["owners"]
    if not isinstance(data, dict):
        raise BundleError(f"{path}: must be a mapping of component name to 'team <contact>'")
    for name, owner in data.items():
        if not isinstance(name, str) or not isinstance(owner, str) or not owner.strip():
            raise BundleError(f"{path}: {name}: must map a component name to a text 'team <contact>'")
        if name not in COMPONENTS:
            print(f"WARNING: {path}: {name}: not a known component ({', '.join(COMPONENTS)})", file=sys.stderr)
        owners[name] = owner.strip()
    return owners


def ambient_index(environ: Mapping[str, str]) -> tuple[SecretIndex, list[str]]:
    """The secrets of the well-known variables set in ``environ`` (as open_profile adds them)."""
    index, names = SecretIndex(), []
    for where, secret, user in credentials.ambient(environ):
        index.add(where, secret, username=user)
        names.append(where.removeprefix("environment variable "))
    return index, names


def profile_scan(loaded: LoadedProfile) -> Scan:
    """Every secret the profile resolved (its fields, and the ambient variables set when it was loaded)."""
    fields = sorted(set(loaded.secrets.needles.values()))
    return Scan(
        loaded.secrets,
        f"every member was scanned for the secrets of profile {loaded.name} ({display(loaded.path)}): "
        f"{', '.join(fields) if fields else 'it resolves none'}; nothing found",
    )


def default_scan(environ: Mapping[str, str]) -> Scan:
    index, names = ambient_index(environ)
    if names:
        what = f"the ambient secret variables set here: {', '.join(names)}; nothing found"
    else:
        what = f"nothing: none of the ambient secret variables ({', '.join(credentials.AMBIENT_SECRETS)}) is set"
    return Scan(index, f"no --profile given, so the profile's secrets were NOT scanned for; scanned for {what}")


# --------------------------------------------------------------------------- summary


def _indented(text: str, prefix: str) -> Iterator[str]:
    lines = [plain(line, LINE_WIDTH) for line in text.splitlines() if line.strip()]
    for line in lines[:MESSAGE_LINES]:
        yield prefix + line
    if len(lines) > MESSAGE_LINES:
        yield f"{prefix}... ({len(lines) - MESSAGE_LINES} more lines in the HTML report)"


def _failure_lines(check: Check) -> Iterator[str]:
    blocked = f", blocked by {plain(check.blocked_by)}" if check.blocked_by else ""
    yield f"    {check.label} {check.outcome}{blocked}"
    if check.blocked_by:
        yield f"      {plain(headline(check), LINE_WIDTH)}"
        return
    yield from _indented(check.message, "      ")
    yield from _indented(f"remediation: {' '.join(check.remediation.split())}", "      ")


def failures_by_owner(run: Run, owners: Mapping[str, str]) -> list[str]:
    groups: dict[str, dict[str, list[Check]]] = {}
    for check in run.checks:
        if check.outcome in PROBLEMS:
            owner = owners.get(check.component, "owner unknown")
            groups.setdefault(owner, {}).setdefault(check.component, []).append(check)
    if not groups:
        return ["none: every check passed, was skipped as not applicable, or failed as expected"]
    lines = []
    for owner in sorted(groups):
        lines.append(plain(owner))
        for component, checks in groups[owner].items():
            title = COMPONENTS[component].title if component in COMPONENTS else "unregistered component"
            lines.append(f"  {plain(component)} ({title}): {len(checks)}")
            for check in checks:
                lines.extend(_failure_lines(check))
    return lines


def _version_evidence(value: Any, path: str, named: bool) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _version_evidence(item, f"{path}.{key}" if path else str(key), named)
        return
    lowered = path.lower()
    wanted = "version" in lowered or (named and "server" in lowered)
    if wanted and not any(word in lowered for word in ("client", "guide")) and value not in (None, "", []):
        yield path, plain(str(value), 200)


def server_versions(run: Run) -> list[str]:
    """Evidence keys named like *version* (and *server* in checks named like *version*), but the client's."""
    lines = []
    for check in run.checks:
        named = "version" in check.nodeid.rsplit("::", 1)[-1].lower()
        for key, value in _version_evidence(check.evidence, "", named):
            lines.append(f"  {plain(check.id)} {plain(key, 80)}: {value}")
    return lines or ["  none reported by the checks of this run"]


def client_versions(run: Run) -> list[str]:
    here = socket.gethostname()
    where = "this host, which ran the suite" if here == run.vantage.hostname else f"host {here}, not the run's own"
    lines = [f"client libraries (installed on {where}; the HTML report's environment table lists the run's):"]
    return lines + [f"  {name} {version}" for name, version in library_versions().items()]


def _header(run: Run) -> list[str]:
    counts = run.counts()
    tls = "INSECURE: verification disabled by the profile" if run.tls_insecure else "verified"
    title = f"Conformance results: {plain(run.profile)} @ {plain(run.where)}"
    return [
        title,
        "=" * len(title),
        f"profile:      {plain(run.profile)} (guide {plain(run.guide_version)}, suite {plain(run.suite_version)})",
        f"platform:     {plain(run.platform)}",
        f"orchestrator: {plain(run.orchestrator)}",
        f"vantage:      {plain(run.where)}",
        f"run id:       {plain(run.run_id)}",
        f"started:      {run.started_text} ({run.duration_s} s)",
        f"TLS:          {tls}",
        f"simulated:    {plain(', '.join(run.simulated) or 'none')}",
        f"counts:       {', '.join(f'{n} {o}' for o, n in counts.items())}",
        f"result:       {verdicts.status_line(verdicts.build(run))}",
    ]


def summary_text(run: Run, *, owners: Mapping[str, str], scan: Scan, files: list[str], missing: list[str]) -> str:
    lines = [
        *_header(run),
        "",
        "Verdict (as the HTML report and the terminal give it)",
        "-----------------------------------------------------",
        *verdicts.terminal_lines(verdicts.build(run), LINE_WIDTH),
        "",
        "Failures by owner",
        "-----------------",
        *failures_by_owner(run, owners),
        "",
        "Versions",
        "--------",
        *client_versions(run),
        "server (from the checks' evidence):",
        *server_versions(run),
        "",
        "Leak scan",
        "---------",
        scan.description,
        "",
        "Files",
        "-----",
        *(f"  {name}" for name in files),
        *(f"  not found next to the JSON: {name}" for name in missing),
        "  SHA256SUMS covers every other member: sha256sum -c SHA256SUMS",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- archive


def manifest(members: Mapping[str, bytes]) -> bytes:
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members.items()).encode()


def find_leaks(members: Mapping[str, bytes], index: SecretIndex) -> list[Leak]:
    leaks = []
    for name, data in members.items():
        fields = index.find(name + "\n" + data.decode("utf-8", errors="replace"))
        if fields:
            leaks.append(Leak(name, fields, action="no archive was written"))
    return leaks


def write_archive(path: Path, folder: str, members: Mapping[str, bytes], mtime: float) -> None:
    """Written to a temporary name and renamed: a failed write leaves no half archive."""
    partial = path.with_name(path.name + ".partial")
    try:
        with tarfile.open(partial, "w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size, info.mtime, info.mode = len(data), int(mtime), 0o644  # no owner names
                tar.addfile(info, io.BytesIO(data))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def read_members(json_path: Path) -> tuple[dict[str, bytes], list[str]]:
    members: dict[str, bytes] = {}
    missing = []
    for suffix in (".json", *SIBLINGS):
        path = json_path.with_suffix(suffix)
        content = files.read_or_problem(path, max_bytes=results.MAX_BYTES)  # never a FIFO's endless wait
        if content == "does not exist":
            missing.append(path.name)
        elif isinstance(content, str):
            raise BundleError(f"{path}: cannot read ({content.removeprefix('is ')})")
        else:
            members[path.name] = content
    return members, missing


def bundle_command(
    json_path: Path, *, output: Path | None, loaded: LoadedProfile | None, owners_path: Path | None
) -> int:
    """0: archive written; 1: a secret was found (nothing written); 2: unusable input."""
    try:
        run = results.read(json_path)
        owners = load_owners(owners_path)
        members, missing = read_members(json_path)
    except (ResultsError, BundleError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    scan = profile_scan(loaded) if loaded else default_scan(os.environ)
    for name in missing:
        print(
            f"WARNING: {json_path.with_suffix(Path(name).suffix)} not found; the bundle goes without it",
            file=sys.stderr,
        )
    summary = summary_text(run, owners=owners, scan=scan, files=list(members), missing=missing)
    members["summary.txt"] = summary.encode()
    members["SHA256SUMS"] = manifest(members)
    leaks = find_leaks(members, scan.index)
    if leaks:
        for leak in leaks:
            print(leak.line(), file=sys.stderr)
        return 1
    target = output or json_path.with_name(f"{json_path.stem}-bundle.tar.gz")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_archive(target, json_path.stem, members, run.started_at.timestamp())
    except OSError as exc:
        print(f"ERROR: cannot write {target} ({exc.strerror or exc})", file=sys.stderr)
        return 2
    print(f"bundle: {target} ({', '.join(members)})")
    return 0
