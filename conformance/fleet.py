"""Fleet views over JSON results files: ``diff`` two runs, ``merge`` many into one HTML page.

Both read ``conformance-results/1`` documents (see conformance.report) and treat every value in
them as untrusted: terminal output is stripped of control characters, HTML is escaped.

An *environment* is where a run happened: profile + vantage (host name, inside Kubernetes or
not). A check is keyed by its id and its nodeid parameter (``NET-002[mlflow]``), so results
compare across machines whatever the checkout path.

Outcome order, worst first (a cell of the fleet matrix shows the worst outcome of its checks):

    error > failed > xpassed > passed > xfailed > skipped

``error`` is worst: nothing about the component could be proven (unreachable, blocked by a
failed prerequisite). ``failed`` is a proven non-conformance. ``xpassed`` means a known-broken
check now passes: its xfail marker is stale and needs a look. ``xfailed`` (a known, marked
problem) and ``skipped`` (not applicable) do not colour a cell that has passing checks.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from conformance import files
from conformance.components import COMPONENTS, component_of_check
from conformance.report import OUTCOMES, SCHEMA

ORDER = ("error", "failed", "xpassed", "passed", "xfailed", "skipped")  # worst first
RANK = {outcome: len(ORDER) - i for i, outcome in enumerate(ORDER)}  # higher is worse
PROBLEMS = frozenset({"error", "failed", "xpassed"})  # listed as failures
PASS, FAIL = frozenset({"passed"}), frozenset({"failed", "error"})
FLEET_SCHEMA = "conformance-fleet/1"
DIFF_SCHEMA = "conformance-diff/1"
TREND_MAX = 100  # runs shown per environment; older ones are counted
MESSAGE_COLUMN = 100
_PARAM = re.compile(r"\[(.*)\]$")


class ResultsError(Exception):
    """A file that cannot be used as a results document; the message is one line."""


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Check:
    id: str
    param: str
    nodeid: str
    component: str
    outcome: str
    message: str
    remediation: str
    blocked_by: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.param)

    @property
    def label(self) -> str:
        return f"{self.id}[{self.param}]" if self.param else self.id


@dataclass(frozen=True)
class Run:
    path: str
    profile: str
    platform: str
    orchestrator: str
    run_id: str
    started: dt.datetime
    hostname: str
    in_cluster: bool
    checks: tuple[Check, ...]

    @property
    def environment(self) -> tuple[str, str, bool]:
        return (self.profile, self.hostname, self.in_cluster)

    @property
    def where(self) -> str:
        return f"{self.hostname} ({'inside' if self.in_cluster else 'outside'} Kubernetes)"

    @property
    def label(self) -> str:
        return f"{self.profile} @ {self.where}"

    @property
    def started_text(self) -> str:
        return self.started.strftime("%Y-%m-%dT%H:%M:%SZ")

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for check in self.checks:
            counts[check.outcome] += 1
        return counts

    def worst(self) -> str | None:
        return worst(check.outcome for check in self.checks)


def worst(outcomes: Iterable[str]) -> str | None:
    return max(outcomes, key=RANK.__getitem__, default=None)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ResultsError(f"{where} is not a string")
    return value


def _check(record: Any, number: int, path: str) -> Check:
    where = f"{path}: checks[{number}]"
    if not isinstance(record, dict):
        raise ResultsError(f"{where} is not an object")
    check_id = _text(record.get("id"), f"{where}.id")
    nodeid = _text(record.get("nodeid"), f"{where}.nodeid")
    outcome = record.get("outcome") or "error"  # the suite writes null when no phase said anything
    if outcome not in OUTCOMES:
        raise ResultsError(f"{where}.outcome {str(outcome)[:40]!r} is not one of {', '.join(OUTCOMES)}")
    component = record.get("component")
    if not isinstance(component, str) or not component:
        known = component_of_check(check_id)
        component = known.name if known else "unknown"
    match = _PARAM.search(nodeid)
    blocked = record.get("blocked_by")
    return Check(
        id=check_id,
        param=match.group(1) if match else "",
        nodeid=nodeid,
        component=component,
        outcome=outcome,
        message=str(record.get("message") or ""),
        remediation=str(record.get("remediation") or ""),
        blocked_by=str(blocked) if blocked else None,
    )


MAX_RESULTS_BYTES = 256 * 1024 * 1024  # a results file of thousands of checks is a few MB


def read_document(path: Path) -> dict[str, Any]:
    """The results document in ``path``, checked for the schema; ResultsError otherwise."""
    raw = files.read_or_problem(path, max_bytes=MAX_RESULTS_BYTES)  # a FIFO or /dev/zero: refused at once
    if raw == "is a directory, not a regular file":
        raise ResultsError(f"{path}: is a directory, not a results file")
    if isinstance(raw, str):
        raise ResultsError(f"{path}: cannot read ({raw.removeprefix('is ')})")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not a results file (not JSON: {exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a results file (not UTF-8 text)") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: not a results file (JSON {type(data).__name__}, not an object)")
    if data.get("withheld") is True:
        raise ResultsError(f"{path}: withheld by the suite's leak scan; it holds no results")
    schema = data.get("schema")
    if schema is None:
        raise ResultsError(f"{path}: not a results file (no 'schema' key)")
    if schema != SCHEMA:
        raise ResultsError(f"{path}: schema {str(schema)[:60]!r} is not supported (this tool reads {SCHEMA})")
    return data


def parse_run(path: Path, data: dict[str, Any]) -> Run:
    where = str(path)
    checks = data.get("checks")
    if not isinstance(checks, list):
        raise ResultsError(f"{where}: 'checks' is missing or not a list")
    vantage = data.get("vantage")
    if not isinstance(vantage, dict):
        raise ResultsError(f"{where}: 'vantage' is missing or not an object")
    started_text = _text(data.get("started"), f"{where}: started")
    try:
        started = dt.datetime.fromisoformat(started_text)
    except ValueError:
        raise ResultsError(f"{where}: started {started_text[:40]!r} is not an ISO-8601 time") from None
    if started.tzinfo is None:
        started = started.replace(tzinfo=dt.UTC)
    return Run(
        path=where,
        profile=_text(data.get("profile"), f"{where}: profile"),
        platform=str(data.get("platform") or "?"),
        orchestrator=str(data.get("orchestrator") or "?"),
        run_id=_text(data.get("run_id"), f"{where}: run_id"),
        started=started.astimezone(dt.UTC),
        hostname=_text(vantage.get("hostname"), f"{where}: vantage.hostname"),
        in_cluster=bool(vantage.get("in_cluster")),
        checks=tuple(_check(record, i, where) for i, record in enumerate(checks)),
    )


def load_run(path: Path) -> Run:
    return parse_run(path, read_document(path))


def plain(text: str, width: int | None = None) -> str:
    """One terminal-safe line: control characters (ANSI escapes, newlines) become spaces."""
    line = "".join(ch if ch.isprintable() else " " for ch in text)
    line = " ".join(line.split())
    if width is not None and len(line) > width:
        line = line[: width - 3] + "..."
    return line


def headline(check: Check) -> str:
    """The most telling line of a failure message: ``actual:`` if there is one."""
    if check.blocked_by and not check.message:
        return f"blocked by {check.blocked_by}"
    lines = [line.strip() for line in check.message.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("actual:"):
            return line
    return lines[0] if lines else ""


# --------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class Difference:
    key: tuple[str, str]
    a: Check | None
    b: Check | None

    def outcome(self, side: Check | None) -> str:
        return side.outcome if side else "absent"

    @property
    def direction(self) -> str:
        """``a`` when it passes from A and fails from B, ``b`` for the reverse, else ``other``."""
        a, b = self.outcome(self.a), self.outcome(self.b)
        if a in PASS and b in FAIL:
            return "a"
        if b in PASS and a in FAIL:
            return "b"
        return "other"

    @property
    def failing(self) -> Check | None:
        return self.b if self.direction == "a" else self.a if self.direction == "b" else (self.b or self.a)

    def as_json(self) -> dict[str, Any]:
        def side(check: Check | None) -> dict[str, Any] | None:
            if check is None:
                return None
            return {
                "outcome": check.outcome,
                "nodeid": check.nodeid,
                "message": check.message,
                "blocked_by": check.blocked_by,
            }

        return {
            "id": self.key[0],
            "param": self.key[1],
            "direction": self.direction,
            "a": side(self.a),
            "b": side(self.b),
        }


def differences(a: Run, b: Run) -> list[Difference]:
    """Checks whose outcome differs between the runs, pass/fail ones first."""
    a_checks = {check.key: check for check in a.checks}
    b_checks = {check.key: check for check in b.checks}
    found = [
        Difference(key, a_checks.get(key), b_checks.get(key))
        for key in sorted(a_checks.keys() | b_checks.keys())
        if (a_checks[key].outcome if key in a_checks else None) != (b_checks[key].outcome if key in b_checks else None)
    ]
    return sorted(found, key=lambda d: ({"a": 0, "b": 1, "other": 2}[d.direction], d.key))


def _vantage_hint(a: Run, b: Run, diffs: Sequence[Difference]) -> str | None:
    if a.in_cluster == b.in_cluster:
        return None
    outside, inside, side = (a, b, "a") if not a.in_cluster else (b, a, "b")
    if any(d.direction == side for d in diffs):
        return (
            f"hint: passes outside Kubernetes ({outside.hostname}) but fails inside ({inside.hostname}): "
            "look at the cluster's egress rules, NetworkPolicy, proxy and DNS; pods do not use the laptop's VPN"
        )
    if any(d.direction != "other" for d in diffs):
        return (
            f"hint: passes inside Kubernetes ({inside.hostname}) but fails outside ({outside.hostname}): "
            "look at the VPN, the firewall in front of the cluster and the outside DNS"
        )
    return None


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


def print_diff(a: Run, b: Run, diffs: Sequence[Difference], show_all: bool, out: TextIO) -> None:
    print(f"A: {plain(a.label)}, run {plain(a.run_id)}, started {a.started_text} [{plain(a.path)}]", file=out)
    print(f"B: {plain(b.label)}, run {plain(b.run_id)}, started {b.started_text} [{plain(b.path)}]", file=out)
    from_a = sum(d.direction == "a" for d in diffs)
    from_b = sum(d.direction == "b" for d in diffs)
    others = len(diffs) - from_a - from_b
    print(f"{from_a} pass from A and fail from B; {from_b} pass from B and fail from A.", file=out)
    hint = _vantage_hint(a, b, diffs)
    if hint:
        print(plain(hint), file=out)
    shown = [d for d in diffs if show_all or d.direction != "other"]
    if shown:
        rows = [["CHECK", "PARAM", "A", "B", "MESSAGE (failing side)"]]
        for d in shown:
            failing = d.failing
            message = headline(failing) if failing and failing.outcome in PROBLEMS else ""
            rows.append([d.key[0], plain(d.key[1], 40), d.outcome(d.a), d.outcome(d.b), plain(message, MESSAGE_COLUMN)])
        print(file=out)
        _table(rows, out)
    if others and not show_all:
        print(f"\n{others} other outcome change(s) (skipped, xfailed, absent on one side): --all lists them", file=out)


def diff_json(a: Run, b: Run, diffs: Sequence[Difference]) -> dict[str, Any]:
    def run(r: Run) -> dict[str, Any]:
        return {
            "path": r.path,
            "profile": r.profile,
            "run_id": r.run_id,
            "started": r.started_text,
            "vantage": {"hostname": r.hostname, "in_cluster": r.in_cluster},
        }

    return {
        "schema": DIFF_SCHEMA,
        "a": run(a),
        "b": run(b),
        "pass_a_fail_b": sum(d.direction == "a" for d in diffs),
        "pass_b_fail_a": sum(d.direction == "b" for d in diffs),
        "differences": [d.as_json() for d in diffs],
    }


def diff_command(a_path: Path, b_path: Path, *, as_json: bool, show_all: bool, out: TextIO | None = None) -> int:
    """0: no check passes on one side and fails on the other; 1: some do; 2: unusable input."""
    out = out or sys.stdout
    try:
        a, b = load_run(a_path), load_run(b_path)
    except ResultsError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    diffs = differences(a, b)
    if as_json:
        json.dump(diff_json(a, b, diffs), out, indent=2)
        out.write("\n")
    else:
        print_diff(a, b, diffs, show_all, out)
    return 1 if any(d.direction != "other" for d in diffs) else 0


# --------------------------------------------------------------------------- merge


@dataclass
class Environment:
    profile: str
    hostname: str
    in_cluster: bool
    runs: list[Run] = field(default_factory=list)

    @property
    def latest(self) -> Run:
        return self.runs[-1]


def group(runs: Iterable[Run]) -> list[Environment]:
    """Runs by environment, oldest first; a run id seen twice in one environment counts once."""
    by_key: dict[tuple[str, str, bool], Environment] = {}
    seen: set[tuple[tuple[str, str, bool], str]] = set()
    for run in runs:
        if (run.environment, run.run_id) in seen:
            continue
        seen.add((run.environment, run.run_id))
        by_key.setdefault(run.environment, Environment(*run.environment)).runs.append(run)
    for env in by_key.values():
        env.runs.sort(key=lambda r: (r.started, r.run_id))
    return [by_key[key] for key in sorted(by_key)]


def components_of(envs: Sequence[Environment]) -> list[str]:
    present = {check.component for env in envs for check in env.latest.checks}
    known = [name for name in COMPONENTS if name in present]
    return known + sorted(present - set(known))


def _failure(check: Check) -> dict[str, Any]:
    return {
        "id": check.id,
        "param": check.param,
        "nodeid": check.nodeid,
        "outcome": check.outcome,
        "message": check.message,
        "remediation": check.remediation,
        "blocked_by": check.blocked_by,
    }


def _summary_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n) or "no checks"


def matrix(runs: Iterable[Run], unreadable: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The fleet matrix as plain data (``merge --json``); the HTML page is drawn from it."""
    envs = group(runs)
    components = components_of(envs)
    rows = []
    for env in envs:
        latest = env.latest
        by_component: dict[str, list[Check]] = {}
        for check in latest.checks:
            by_component.setdefault(check.component, []).append(check)
        cells = {}
        for name, checks in by_component.items():
            counts = dict.fromkeys(OUTCOMES, 0)
            for check in checks:
                counts[check.outcome] += 1
            cells[name] = {
                "outcome": worst(c.outcome for c in checks),
                "counts": counts,
                "failures": [_failure(c) for c in checks if c.outcome in PROBLEMS],
            }
        rows.append(
            {
                "profile": env.profile,
                "vantage": {"hostname": env.hostname, "in_cluster": env.in_cluster},
                "label": latest.label,
                "platform": latest.platform,
                "orchestrator": latest.orchestrator,
                "latest": {
                    "run_id": latest.run_id,
                    "started": latest.started_text,
                    "path": latest.path,
                    "counts": latest.counts(),
                },
                "cells": cells,
                "trend": [
                    {"run_id": r.run_id, "started": r.started_text, "outcome": r.worst(), "counts": r.counts()}
                    for r in env.runs
                ],
            }
        )
    return {
        "schema": FLEET_SCHEMA,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "order": list(ORDER),
        "components": components,
        "runs": sum(len(env.runs) for env in envs),
        "environments": rows,
        "unreadable": [{"path": path, "reason": reason} for path, reason in unreadable],
    }


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.cell{text-align:center;min-width:5.5em}td.cell a{color:inherit;display:block}
.o-error{background:#8b0000;color:#fff}.o-failed{background:#e03131;color:#fff}.o-xpassed{background:#f08c00}
.o-passed{background:#2f9e44;color:#fff}.o-xfailed{background:#b2f2bb}.o-skipped{background:#dee2e6}
.o-none{background:#fff;color:#999}.trend{display:flex;flex-wrap:wrap;gap:2px;max-width:32em}
.sq{display:inline-block;width:10px;height:10px;border:1px solid #0002}.small{color:#666;font-size:12px}
.failure{border-left:4px solid #e03131;padding:2px 8px;margin:6px 0}.failure.error{border-color:#8b0000}
pre{white-space:pre-wrap;background:#f8f8f8;padding:4px;margin:4px 0}.legend span{padding:1px 6px;margin-right:4px}
"""
_JS = """
function fleetFilter(){var q=document.getElementById('q').value.toLowerCase(),
bad=document.getElementById('bad').checked;document.querySelectorAll('tr.env').forEach(function(r){
var show=r.dataset.label.indexOf(q)>=0&&(!bad||r.dataset.bad==='1');r.style.display=show?'':'none';});}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell_html(i: int, j: int, cell: dict[str, Any] | None) -> str:
    if cell is None:
        return '<td class="cell o-none" title="not run">-</td>'
    outcome = cell["outcome"]
    title = _e(_summary_line(cell["counts"]))
    if cell["failures"]:
        return f'<td class="cell o-{_e(outcome)}" title="{title}"><a href="#cell-{i}-{j}">{_e(outcome)}</a></td>'
    return f'<td class="cell o-{_e(outcome)}" title="{title}">{_e(outcome)}</td>'


def _trend_html(trend: list[dict[str, Any]]) -> str:
    shown = trend[-TREND_MAX:]
    older = len(trend) - len(shown)
    squares = "".join(
        f'<span class="sq o-{_e(run["outcome"] or "none")}" '
        f'title="{_e(run["started"])} {_e(run["run_id"])}: {_e(_summary_line(run["counts"]))}"></span>'
        for run in shown
    )
    more = f'<span class="small">+{older} older</span>' if older else ""
    return f'<div class="trend">{more}{squares}</div>'


def _failures_html(i: int, row: dict[str, Any], components: list[str]) -> str:
    parts = []
    for j, name in enumerate(components):
        cell = row["cells"].get(name)
        if not cell or not cell["failures"]:
            continue
        parts.append(f'<h3 id="cell-{i}-{j}">{_e(name)}: {_e(cell["outcome"])}</h3>')
        for failure in cell["failures"]:
            label = failure["id"] + (f"[{failure['param']}]" if failure["param"] else "")
            blocked = f" (blocked by {_e(failure['blocked_by'])})" if failure["blocked_by"] else ""
            parts.append(
                f'<div class="failure {_e(failure["outcome"])}"><b>{_e(label)}</b> {_e(failure["outcome"])}{blocked}'
                f"<pre>{_e(failure['message'])}</pre>"
                f"<div><b>Remediation:</b> {_e(failure['remediation'])}</div></div>"
            )
    if not parts:
        return ""
    latest = row["latest"]
    head = (
        f'<h2 id="env-{i}">{_e(row["label"])}</h2><p class="small">run {_e(latest["run_id"])}, '
        f"started {_e(latest['started'])}, {_e(latest['path'])}</p>"
    )
    return head + "".join(parts)


def render_html(doc: dict[str, Any]) -> str:
    components: list[str] = doc["components"]
    titles = {name: COMPONENTS[name].title if name in COMPONENTS else name for name in components}
    head_cells = "".join(f'<th title="{_e(titles[name])}">{_e(name)}</th>' for name in components)
    rows, sections = [], []
    for i, row in enumerate(doc["environments"]):
        latest = row["latest"]
        bad = any(cell["failures"] for cell in row["cells"].values())
        cells = "".join(_cell_html(i, j, row["cells"].get(name)) for j, name in enumerate(components))
        rows.append(
            f'<tr class="env" data-label="{_e(row["label"].lower())}" data-bad="{int(bad)}">'
            f'<td><a href="#env-{i}">{_e(row["label"])}</a><div class="small">{_e(row["platform"])} + '
            f"{_e(row['orchestrator'])}, latest {_e(latest['started'])}</div></td>{cells}"
            f'<td class="small">{_e(_summary_line(latest["counts"]))}</td><td>{_trend_html(row["trend"])}</td></tr>'
        )
        sections.append(_failures_html(i, row, components))
    unreadable = "".join(f"<li>{_e(u['path'])}: {_e(u['reason'])}</li>" for u in doc["unreadable"])
    unreadable_html = (
        f"<details><summary>{len(doc['unreadable'])} file(s) could not be read</summary><ul>{unreadable}</ul></details>"
        if unreadable
        else ""
    )
    legend = "".join(f'<span class="o-{o}">{o}</span>' for o in ORDER)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Conformance fleet</title><style>{_CSS}</style><script>{_JS}</script></head><body>"
        f"<h1>Conformance fleet</h1><p>{len(doc['environments'])} environment(s), {doc['runs']} run(s); "
        f"generated {_e(doc['generated'])}. Each cell: the worst outcome of the component's checks in the "
        "environment's latest run; a cell with failures links to them. Trend: one square per run, oldest first "
        "(hover for counts).</p>"
        f'<p class="legend">Worst first: {legend}</p>{unreadable_html}'
        '<p><input id="q" placeholder="filter environments" oninput="fleetFilter()"> '
        '<label><input id="bad" type="checkbox" onchange="fleetFilter()"> only environments with failures</label></p>'
        f"<table><thead><tr><th>Environment</th>{head_cells}<th>Latest run</th><th>Trend</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{''.join(sections)}</body></html>\n"
    )


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given; a directory stands for the ``*.json`` files in it."""
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    return found


def load_many(paths: Iterable[Path], warn: TextIO) -> tuple[list[Run], list[tuple[str, str]]]:
    runs, unreadable = [], []
    for path in expand(paths):
        try:
            runs.append(load_run(path))
        except ResultsError as exc:
            print(f"WARNING: {exc}; skipped", file=warn)
            unreadable.append((str(path), str(exc).removeprefix(f"{path}: ")))
    return runs, unreadable


def _write(path_text: str, text: str, out: TextIO) -> bool:
    if path_text == "-":
        out.write(text)
        return True
    path = Path(path_text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"ERROR: cannot write {path} ({exc.strerror or exc})", file=sys.stderr)
        return False
    return True


def merge_command(
    paths: Sequence[Path], *, output: str | None, json_output: str | None, out: TextIO | None = None
) -> int:
    """0: the page (and/or JSON) was written; 2: no readable results file, or the output is unwritable."""
    out = out or sys.stdout
    runs, unreadable = load_many(paths, sys.stderr)
    if not runs:
        print(f"ERROR: none of the {len(unreadable)} file(s) given is a readable results file", file=sys.stderr)
        return 2
    doc = matrix(runs, unreadable)
    html_path = "fleet.html" if output is None and json_output is None else output
    if html_path is not None:
        if not _write(html_path, render_html(doc), out):
            return 2
        print(
            f"fleet page: {html_path} ({len(doc['environments'])} environments, {doc['runs']} runs, "
            f"{len(unreadable)} unreadable)",
            file=sys.stderr,
        )
    if json_output is not None and not _write(json_output, json.dumps(doc, indent=1) + "\n", out):
        return 2
    return 0
