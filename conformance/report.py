"""Results: HTML (pytest-html), JUnit, JSON; evidence; redaction and the leak scan.

Two lines of defence keep secrets out of every artifact:

1. redaction at the source: failure text, captured output, log records and
   terminal output are scrubbed of every secret value (and its encodings)
   before anything prints or stores them;
2. the leak scan: after the artifacts are written, each is searched again;
   a hit withholds the artifact (replaced by a notice naming the profile
   field, never the value) and fails the run.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib.metadata
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from conformance import __version__, results, verdict
from conformance.components import COMPONENTS
from conformance.profile import LoadedProfile, display
from conformance.secrets import SecretIndex

EVIDENCE_VALUE_MAX = 500
MESSAGE_MAX = 2000
CLIENT_LIBRARIES = tuple(  # the suite's own, then each component's (conformance/components)
    dict.fromkeys(["pytest", "pytest-html", "pydantic", *(lib for c in COMPONENTS.values() for lib in c.libraries)])
)


def utc_stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def vantage() -> dict[str, Any]:
    in_cluster = (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        or Path("/var/run/secrets/kubernetes.io/serviceaccount").is_dir()
    )
    return {"hostname": socket.gethostname(), "in_cluster": in_cluster}


def library_versions() -> dict[str, str]:
    versions = {}
    for name in CLIENT_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def simulated_components() -> list[str]:
    """Components the sandbox simulates rather than runs for real."""
    raw = os.environ.get("SANDBOX_SIMULATED", "")
    return [name for name in raw.split(",") if name]


def environment(loaded: LoadedProfile) -> dict[str, Any]:
    """The report's environment table: who, where, what; nothing personal or secret."""
    profile = loaded.profile
    where = vantage()
    simulated = simulated_components()
    return {
        "Profile": f"{loaded.name} ({loaded.path})",
        "MLOps platform": profile.platform,  # "Platform" is pytest-metadata's (the OS)
        "Orchestrator": profile.orchestrator,
        "Guide version": profile.guide_version,
        "Suite version": __version__,
        "Vantage": f"{where['hostname']} ({'inside Kubernetes' if where['in_cluster'] else 'outside Kubernetes'})",
        "TLS trust": (
            "INSECURE: verification disabled (tls.insecure)"
            if profile.tls.insecure
            else str(profile.tls.ca_bundle or "system trust store")
        ),
        "Simulated components": ", ".join(simulated) if simulated else "none",
        "Client libraries": library_versions(),
    }


# --------------------------------------------------------------------------- evidence


def bounded(value: Any, depth: int = 0) -> Any:
    """Evidence as JSON-safe, size-bounded data."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict) and depth < 3:
        return {str(k): bounded(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple) and depth < 3:
        return [bounded(v, depth + 1) for v in list(value)[:50]]
    text = str(value)
    return text if len(text) <= EVIDENCE_VALUE_MAX else text[:EVIDENCE_VALUE_MAX] + "...(truncated)"


# --------------------------------------------------------------------------- results


@dataclass
class Results:
    """One record per check, merged over setup/call/teardown; the results document's checks."""

    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, nodeid: str, outcome: str | None, duration: float, info: dict[str, Any]) -> None:
        record = self.checks.setdefault(
            nodeid,
            {
                "id": info.get("id"),
                "component": info.get("component"),
                "nodeid": nodeid,
                "outcome": None,
                "duration_s": 0.0,
                "message": "",
                "remediation": info.get("remediation", ""),
                "blocked_by": None,
                "evidence": {},
            },
        )
        record["duration_s"] = round(record["duration_s"] + duration, 4)
        if outcome and (record["outcome"] is None or outcome == "error"):
            record["outcome"] = outcome
            record["message"] = info.get("message", "")[:MESSAGE_MAX]
            record["blocked_by"] = info.get("blocked_by")
        record["evidence"].update(info.get("evidence", {}))

    def document(
        self,
        loaded: LoadedProfile,
        run_id: str,
        started: dt.datetime,
        duration: float,
        waivers: list[dict[str, str]] | None = None,
    ) -> results.Run:
        """The run so far; a check no phase said anything about is an error."""
        profile = loaded.profile
        records = sorted(self.checks.values(), key=lambda r: (r["id"] or "", r["nodeid"]))
        checks = [results.Check.model_validate(record) for record in records]
        run = results.Run(
            schema=results.SCHEMA,
            profile=loaded.name,
            platform=profile.platform,
            orchestrator=profile.orchestrator,
            guide_version=profile.guide_version,
            suite_version=__version__,
            run_id=run_id,
            started=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            duration_s=round(duration, 3),
            vantage=results.Vantage(**vantage()),
            tls_insecure=profile.tls.insecure,
            simulated=simulated_components(),
            client_libraries=library_versions(),
            checks=checks,
            summary=results.count(checks),
        )
        if waivers is not None:
            run.waivers = waivers
        return run


def phase_outcome(when: str, outcome: str, wasxfail: bool) -> str | None:
    """The record-level outcome a phase report implies (None: says nothing new)."""
    if wasxfail:
        return "xfailed" if outcome == "skipped" else "xpassed"
    if when == "call":
        return outcome
    if outcome == "failed":
        return "error"
    return "skipped" if outcome == "skipped" else None


# --------------------------------------------------------------------------- leak scan


@dataclass
class Leak:
    where: str
    fields: list[str]

    action: str = "it was withheld"

    def line(self) -> str:
        return f"LEAK: {self.where} contained the value of {', '.join(self.fields)}; {self.action}"


def scan_and_withhold(paths: Iterable[Path], index: SecretIndex) -> list[Leak]:
    """Search each artifact for every secret; replace a leaking one with a notice."""
    leaks = []
    for path in paths:
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        fields = index.find(text)
        if not fields:
            continue
        leaks.append(Leak(display(path), fields))
        notice = (
            f"This artifact was withheld by the conformance suite's leak scan: it contained the value of "
            f"the profile field(s) {', '.join(fields)}. Rotate that credential and report this as a bug.\n"
        )
        if path.suffix == ".html":
            notice = f"<!DOCTYPE html><html><body><p>{html.escape(notice)}</p></body></html>\n"
        elif path.suffix == ".json":
            notice = json.dumps({"schema": results.SCHEMA, "withheld": True, "reason": notice.strip()}) + "\n"
        elif path.suffix == ".xml":
            comment = html.escape(notice.strip(), quote=False)
            notice = f'<?xml version="1.0" encoding="utf-8"?>\n<!-- {comment} -->\n<testsuites/>\n'
        path.write_text(notice, encoding="utf-8")
    return leaks


class RedactingStream:
    """Wraps the terminal's file: scrubs secrets before they are printed, and remembers it did."""

    def __init__(self, stream: IO[str], index: SecretIndex) -> None:
        self._stream = stream
        self._index = index
        self.hits: set[str] = set()

    def write(self, text: str) -> int:
        fields = self._index.find(text)
        if fields:
            self.hits.update(fields)
            text = self._index.redact(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install_log_redaction(index: SecretIndex) -> Callable[[], None]:
    """Scrub every log record as it is made, for every handler; returns the undo."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log call must not break the run; keep the record
            return record
        redacted = index.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return record

    logging.setLogRecordFactory(factory)
    return lambda: logging.setLogRecordFactory(previous)


# --------------------------------------------------------------------------- HTML


def html_header(cells: list[str]) -> None:
    cells.insert(1, '<th class="sortable" data-column-type="check">Check</th>')
    cells.insert(2, '<th data-column-type="title">What it checks</th>')
    cells.insert(3, '<th class="sortable" data-column-type="component">Component</th>')
    cells.append("<th>Message</th>")
    cells.append("<th>Remediation</th>")


def html_row(info: dict[str, Any], failed: bool, cells: list[str]) -> None:
    """Check id, what it checks and component on every row; the message's telling line; the remediation
    where there is something to fix."""
    remediation = (info.get("remediation") or "") if failed and not info.get("blocked_by") else ""
    check_id = info.get("id") or ""
    nodeid = re.sub(r"<[^>]*>", "", cells[1]) if len(cells) > 1 else ""  # pytest-html's test id cell
    nodeid = re.sub(r"::(setup|teardown)$", "", nodeid)
    param = nodeid.rsplit("[", 1)[1].removesuffix("]") if nodeid.endswith("]") else ""
    title = verdict.title_of(check_id, nodeid) if check_id else ""
    message = verdict.without_suite_paths(str(info.get("message") or ""))
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    telling = next((line for line in lines if line.startswith("actual:")), lines[0] if lines else "")
    cells.insert(1, f'<td class="col-check">{html.escape(check_id)}</td>')
    cells.insert(2, f'<td class="col-title">{html.escape(title + (f" [{param}]" if param else ""))}</td>')
    cells.insert(3, f'<td class="col-component">{html.escape(info.get("component") or "")}</td>')
    cells.append(f'<td class="col-message">{html.escape(telling)}</td>')
    cells.append(f'<td class="col-remediation">{html.escape(remediation)}</td>')


def evidence_html(check_id: str, evidence: dict[str, Any]) -> str:
    """A check's evidence as text in the row, open: nothing to click, no ``data:`` link."""
    text = html.escape(verdict.evidence_text(evidence))
    return (
        f'<details open class="evidence"><summary>{html.escape(check_id)} evidence</summary><pre>{text}</pre></details>'
    )


def html_log(info: dict[str, Any], skipped: bool, data: list[str]) -> None:
    """The row's log: a skip reason as a sentence (not pytest's location tuple); no path of the suite's checkout."""
    if skipped and info.get("message"):
        data[:] = [html.escape(verdict.sentence(verdict.without_suite_paths(str(info["message"]))))]
        return
    data[:] = [verdict.without_suite_paths(entry) for entry in data]


def html_summary(loaded: LoadedProfile, prefix: list[str], waivers: list[dict[str, str]]) -> None:
    profile = loaded.profile
    if profile.tls.insecure:
        prefix.append(
            '<p style="color:#c00;font-weight:bold">TLS verification was DISABLED by this profile '
            "(tls.insecure: true): nothing in this report proves the servers are who they claim.</p>"
        )
    simulated = simulated_components()
    if simulated:
        prefix.append(
            "<p><b>Simulated components</b> (no real server could run here; the sandbox answers like the "
            f"real API): {html.escape(', '.join(simulated))}</p>"
        )
    stale = [w for w in waivers if w["status"] != "used"]
    if stale:
        items = "".join(
            f"<li>{html.escape(w['check'])}: {html.escape(w['status'])} (owner {html.escape(w['owner'])}, "
            f"expires {html.escape(w['expires'])}): {html.escape(w['justification'])}</li>"
            for w in stale
        )
        note = "<p><b>Waivers to review</b> (expired ones no longer excuse a failure):</p>"
        prefix.append(f"{note}<ul>{items}</ul>")
