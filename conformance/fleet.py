"""Fleet views over JSON results files: ``diff`` two runs, ``merge`` many into one HTML page.

Both read ``conformance-results/1`` documents (conformance.results) and treat every value in
them as untrusted: terminal output is stripped of control characters, HTML is escaped.

An *environment* is where a run happened: profile + vantage (host name, inside Kubernetes or
not). A check is keyed by its id and its nodeid parameter (``NET-002[mlflow]``), so results
compare across machines whatever the checkout path.

Outcomes and their worst-first order: conformance.results.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import jinja2

from conformance.components import COMPONENTS
from conformance.results import ORDER, PROBLEMS, Check, ResultsError, Run, count, read, worst

PASS, FAIL = frozenset({"passed"}), frozenset({"failed", "error"})
FLEET_SCHEMA = "conformance-fleet/1"
DIFF_SCHEMA = "conformance-diff/1"
TREND_MAX = 100  # runs shown per environment; older ones are counted
MESSAGE_COLUMN = 100


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
            return check.model_dump(include={"outcome", "nodeid", "message", "blocked_by"}) if check else None

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
    if a.vantage.in_cluster == b.vantage.in_cluster:
        return None
    outside, inside, side = (a, b, "a") if not a.vantage.in_cluster else (b, a, "b")
    outside_host, inside_host = outside.vantage.hostname, inside.vantage.hostname
    if any(d.direction == side for d in diffs):
        return (
            f"hint: passes outside Kubernetes ({outside_host}) but fails inside ({inside_host}): "
            "look at the cluster's egress rules, NetworkPolicy, proxy and DNS; pods do not use the laptop's VPN"
        )
    if any(d.direction != "other" for d in diffs):
        return (
            f"hint: passes inside Kubernetes ({inside_host}) but fails outside ({outside_host}): "
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
            "vantage": {"hostname": r.vantage.hostname, "in_cluster": r.vantage.in_cluster},
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
        a, b = read(a_path), read(b_path)
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
        env.runs.sort(key=lambda r: (r.started_at, r.run_id))
    return [by_key[key] for key in sorted(by_key)]


def components_of(envs: Sequence[Environment]) -> list[str]:
    present = {check.component for env in envs for check in env.latest.checks}
    known = [name for name in COMPONENTS if name in present]
    return known + sorted(present - set(known))


def _failure(check: Check) -> dict[str, Any]:
    return {
        **check.model_dump(include={"id", "nodeid", "outcome", "message", "remediation", "blocked_by"}),
        "param": check.param,
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
            cells[name] = {
                "outcome": worst(c.outcome for c in checks),
                "counts": count(checks),
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


def render_html(doc: dict[str, Any]) -> str:
    """The fleet page from ``templates/fleet.html.j2`` (every value escaped: the documents are untrusted)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("conformance"), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["summary_line"] = _summary_line
    titles = {name: COMPONENTS[name].title if name in COMPONENTS else name for name in doc["components"]}
    return env.get_template("fleet.html.j2").render(doc=doc, titles=titles, trend_max=TREND_MAX)


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
            runs.append(read(path))
            gc.freeze()  # kept runs (with their evidence) need no rescan by the collector at each file: 2-3x faster
        except ResultsError as exc:
            print(f"WARNING: {exc}; skipped", file=warn)
            unreadable.append((str(path), str(exc).removeprefix(f"{path}: ")))
    gc.unfreeze()
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
