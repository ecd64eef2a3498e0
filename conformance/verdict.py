"""The verdict of one run, for the first screen of the HTML report and the end of the terminal.

One reading of a results document (``conformance-results/1``, as conformance.results reads it):

- the verdict line: conformant, or N root causes;
- root causes: every problem (failed, error, xpassed) that is not *blocked by* another check,
  each with the checks it blocks (followed through chains: C blocked by B blocked by A is A's);
- the headline proofs a support ticket needs, with their evidence;
- a component grid, ``blocked`` apart from ``error``;
- the checks that did not run, grouped by reason.

``bundle``'s summary.txt and the terminal use the same verdict line, so the three never disagree.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import results
from conformance.components import COMPONENTS
from conformance.fleet import headline, plain
from conformance.results import PROBLEMS, Check, Run

SUITE_ROOT = Path(__file__).resolve().parent.parent
ORDER = (*results.ORDER[:2], "blocked", *results.ORDER[2:])  # worst first; blocked: an error not its own
COLOURS = {  # the fleet page's colours (templates/fleet.html.j2), and one for blocked
    "error": ("#8b0000", "#fff"),
    "failed": ("#e03131", "#fff"),
    "blocked": ("#6741d9", "#fff"),
    "xpassed": ("#f08c00", "#000"),
    "passed": ("#2f9e44", "#fff"),
    "xfailed": ("#b2f2bb", "#000"),
    "skipped": ("#dee2e6", "#000"),
}


@dataclass(frozen=True)
class Proof:
    title: str
    checks: tuple[tuple[str, tuple[str, ...]], ...]  # (check id, evidence keys to show)


PROOFS = (
    Proof("Image pushed and pulled back", (("REG-003", ("reference", "manifest_digest")), ("REG-004", ("reference",)))),
    Proof(
        "Buckets listed and probe written",
        (("OBJ-002", ("endpoint", "buckets")), ("OBJ-004", ("bucket", "key", "sha256", "read_sha256"))),
    ),
    Proof("MLflow run logged and read back", (("MLF-004", ("mlflow_run_id", "artifacts", "artifact_uri")),)),
    Proof("Run:ai job run", (("RAI-005", ("job", "project", "image")),)),
    Proof("Kubernetes Job run", (("K8S-011", ("job", "namespace", "final_state")),)),
)


@functools.cache
def titles() -> dict[str, str]:
    """check id -> what it checks, in words (the catalogue's)."""
    from conformance import catalogue  # noqa: PLC0415 - reads the component sources; only reports need it

    return {entry.check_id: entry.name for entry in catalogue.entries()}


def title_of(check_id: str, nodeid: str) -> str:
    known = titles().get(check_id)
    if known:
        return known
    name = nodeid.rsplit("::", 1)[-1].split("[", 1)[0]
    return name.removeprefix("test_").replace("_", " ")


def sentence(message: str) -> str:
    """A skip reason as a sentence: ``not applicable: profile x ...`` -> ``Not applicable: profile x ....``"""
    text = " ".join(message.split())
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", ")", "!", "?")) else text + "."


def without_suite_paths(text: str) -> str:
    """The suite's own checkout path out of a message (node ids and locations stay relative)."""
    return text.replace(f"{SUITE_ROOT}/", "").replace(str(SUITE_ROOT), ".")


@dataclass
class RootCause:
    check: Check
    blocked: list[Check] = field(default_factory=list)
    same: list[Check] = field(default_factory=list)  # other checks that failed with the very same message

    @property
    def weight(self) -> int:
        return len(self.blocked) + len(self.same)


@dataclass
class Verdict:
    run: Run
    root_causes: list[RootCause]
    not_run: dict[str, list[Check]]  # reason -> checks

    @property
    def blocked_count(self) -> int:
        return sum(cause.weight for cause in self.root_causes)

    @property
    def conformant(self) -> bool:
        return not self.root_causes

    @property
    def not_run_count(self) -> int:
        return sum(len(checks) for checks in self.not_run.values())

    def line(self) -> str:
        if self.conformant:
            head = "CONFORMANT: every check that ran passed"
        else:
            n = len(self.root_causes)
            head = f"NOT CONFORMANT: {n} root cause{'s' if n != 1 else ''}"
            if self.blocked_count:
                head += (
                    f", {self.blocked_count} more check{'s' if self.blocked_count != 1 else ''} down because of them"
                )
        if self.not_run_count:
            head += f"; {self.not_run_count} not run"
        return head

    def context(self) -> str:
        run = self.run
        return (
            f"profile {run.profile}, platform {run.platform}, orchestrator {run.orchestrator}, "
            f"vantage {run.where}, {run.started_at.strftime('%Y-%m-%d %H:%M UTC')}"
        )

    def component_cells(self) -> list[tuple[str, str, dict[str, int]]]:
        """(component, worst state, counts per state) in the registry's order; blocked apart from error."""
        cells = []
        for name in [*COMPONENTS, *sorted({c.component for c in self.run.checks} - set(COMPONENTS))]:
            counts: dict[str, int] = {}
            for check in self.run.checks:
                if check.component == name:
                    state = state_of(check)
                    counts[state] = counts.get(state, 0) + 1
            if counts:
                worst = min(counts, key=ORDER.index)
                cells.append((name, worst, counts))
        return cells


def state_of(check: Check) -> str:
    return "blocked" if check.blocked_by and check.outcome in PROBLEMS else check.outcome


def _refers_to(check: Check, ref: str) -> bool:
    return ref in (check.label, check.id)


def _blocker(problems: list[Check], ref: str, check: Check) -> Check | None:
    """The failed check ``ref`` names. A check blocked by an endpoint names its NET check with the endpoint
    (``NET-001[kubernetes]``: the exact label); results written before that name only ``NET-001``, and then the
    endpoint or host the message names picks which."""
    candidates = [c for c in problems if _refers_to(c, ref)]
    host = check.message.partition("(")[2].split(":")[0].strip()  # "blocked by NET-001 (<host>: <detail>)"
    for candidate in candidates:
        endpoint = candidate.label[len(candidate.id) :].strip("[]")
        if (endpoint and endpoint in check.message) or (host and host in candidate.message):
            return candidate
    return candidates[0] if candidates else None


def build(run: Run) -> Verdict:
    problems = [c for c in run.checks if c.outcome in PROBLEMS]
    causes: list[RootCause] = []
    by_message: dict[tuple[str, str], RootCause] = {}
    for check in problems:
        if check.blocked_by:
            continue
        first = by_message.get((check.outcome, check.message)) if check.message else None
        if first is not None:  # one cause that several checks tripped over (e.g. an unreadable credentials file)
            first.same.append(check)
            continue
        causes.append(cause := RootCause(check))
        by_message[(check.outcome, check.message)] = cause
    by_label = {c.label: c for c in problems}
    for check in problems:
        if not check.blocked_by:
            continue
        ref, seen = check.blocked_by, set()
        blocker = None
        while True:  # follow the chain to a check that is not itself blocked
            blocker = by_label.get(ref) or _blocker(problems, ref, check)
            if blocker is None or not blocker.blocked_by or ref in seen:
                break
            seen.add(ref)
            ref = blocker.blocked_by
        owner = None
        if blocker is not None:
            owner = next((rc for rc in causes if any(c is blocker for c in (rc.check, *rc.same))), None)
        if owner is None:
            owner = next((rc for rc in causes if any(_refers_to(c, ref) for c in (rc.check, *rc.same))), None)
        if owner is None:  # the blocker is not in this run (deselected), is waived, or did not fail here
            known = next((c for c in run.checks if _refers_to(c, ref)), None)
            why = (
                f"{ref} is waived in this run: the checks that need it could not run"
                if known is not None and known.outcome == "xfailed"
                else f"{ref} is not in this run"
            )
            stand_in = {"id": ref.partition("[")[0], "nodeid": ref, "outcome": "error", "message": why}
            owner = RootCause(Check.model_validate({**stand_in, "component": check.component}))
            causes.append(owner)
        owner.blocked.append(check)
    causes.sort(key=lambda rc: (-rc.weight, ORDER.index(rc.check.outcome), rc.check.label))
    not_run: dict[str, list[Check]] = {}
    for check in run.checks:
        if check.outcome == "skipped":
            not_run.setdefault(sentence(without_suite_paths(check.message)) or "Skipped.", []).append(check)
    return Verdict(run, causes, not_run)


def status_line(verdict: Verdict) -> str:
    """bundle's ``result:`` line: the verdict, then the counts."""
    counts = verdict.run.counts()
    problems = ", ".join(f"{n} {o}" for o, n in counts.items() if o in PROBLEMS and n)
    return f"FAILED ({problems}): {verdict.line()}" if problems else f"PASSED: {verdict.line()}"


# --------------------------------------------------------------------------- terminal


def _labels(checks: Sequence[Check], limit: int = 12) -> str:
    labels = [c.label for c in checks]
    shown = ", ".join(labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def terminal_lines(verdict: Verdict, width: int = 160) -> Iterator[str]:
    yield verdict.line()
    yield verdict.context()
    for number, cause in enumerate(verdict.root_causes, 1):
        check = cause.check
        what = title_of(check.id, check.nodeid)
        yield f"root cause {number}: {check.label} {what} ({check.component}): {check.outcome}"
        yield f"    {plain(without_suite_paths(headline(check)), width)}"
        if check.remediation:
            yield f"    fix: {plain(check.remediation, width)}"
        if cause.same:
            yield f"    {len(cause.same)} more failed the same way: {_labels(cause.same)}"
        if cause.blocked:
            yield f"    blocks {len(cause.blocked)}: {_labels(cause.blocked)}"
    for reason, checks in verdict.not_run.items():
        yield f"not run ({len(checks)}): {plain(reason)} {_labels(checks)}"


# --------------------------------------------------------------------------- HTML

CSS = """
body{display:flex;flex-direction:column}
body>*{order:3}
#title,#title+p{order:0}
.summary{order:1}
#environment-header,#environment{order:2}
#results-table{order:4}
.summary__data{display:flex;flex-direction:column}
.summary__data>*{order:2}
.summary__data>h2{display:none}
.summary__data>.additional-summary.prefix{order:1}
.verdict{font-size:22px;font-weight:bold;padding:10px 14px;border-radius:4px;margin:0 0 4px}
.verdict.ok{background:#2f9e44;color:#fff}.verdict.bad{background:#e03131;color:#fff}
.context{color:#444;margin:0 0 12px}
.summary,.summary .additional-summary,.box,.box h3,.cause,.proof{color:#222}
.box{border:1px solid #ccc;border-radius:4px;padding:6px 12px;margin:8px 0}
.box h3{margin:4px 0 6px;font-size:16px}
.proofs{display:grid;grid-template-columns:repeat(auto-fill,minmax(22em,1fr));gap:8px}
.proof{border-left:6px solid #dee2e6;padding:4px 8px;background:#fafafa}
.proof.passed{border-color:#2f9e44}.proof.failed{border-color:#e03131}.proof.error{border-color:#8b0000}
.proof.blocked{border-color:#6741d9}.proof.notrun{border-color:#adb5bd;color:#555}
.proof dl{margin:2px 0;display:grid;grid-template-columns:max-content 1fr;gap:0 8px;font-size:12px}
.proof dt{color:#555}.proof dd{margin:0;overflow-wrap:anywhere;font-family:monospace}
.grid{display:flex;flex-wrap:wrap;gap:4px}
.grid .cell{padding:4px 8px;border-radius:3px;min-width:8em}
.grid .cell small{display:block;font-size:11px}
.cause{border-left:6px solid #e03131;padding:4px 10px;margin:8px 0;background:#fff5f5}
.cause.error{border-color:#8b0000}
.cause pre,.check-detail pre{white-space:pre-wrap;margin:4px 0;background:#f8f8f8;padding:4px}
.fix{margin:4px 0}
.notrun li{margin:2px 0}
.legend span{padding:1px 6px;margin-right:4px;border-radius:3px}
.col-title{font-weight:bold}
#results-table td.col-testId{font-size:11px;max-width:24em;overflow-wrap:anywhere}
#results-table td.col-message{min-width:18em}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _style(state: str) -> str:
    background, colour = COLOURS.get(state, ("#fff", "#000"))
    return f"background:{background};color:{colour}"


def evidence_text(evidence: Mapping[str, Any]) -> str:
    return without_suite_paths(json.dumps(evidence, indent=2, ensure_ascii=False))


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k} ({v})" for k, v in value.items())
    return str(value)


def _folded(kind: str, checks: list[Check], summary: str) -> str:
    """Checks folded under a root cause: one click opens the list."""
    items = "".join(
        f'<li data-{kind}="{_e(c.label)}">{_e(c.label)} {_e(title_of(c.id, c.nodeid))} ({_e(c.component)})</li>'
        for c in checks
    )
    return f"<details><summary>{summary}</summary><ul>{items}</ul></details>"


def _proof_html(verdict: Verdict, proof: Proof) -> str | None:
    found = [(c, keys) for check_id, keys in proof.checks for c in verdict.run.checks if c.id == check_id]
    if not found:
        return None
    states = [state_of(c) for c, _ in found]
    worst = min(states, key=ORDER.index)
    label = {"passed": "proven", "skipped": "not run"}.get(worst, worst)
    css = "notrun" if worst == "skipped" else worst
    head = f'<div class="proof {css}" data-proof="{_e(proof.title)}"><b>{_e(proof.title)}</b>: {_e(label)}'
    if all(state == "skipped" for state in states):  # one reason is enough
        return f"{head}<br><small>{_e(sentence(without_suite_paths(found[0][0].message)))}</small></div>"
    rows, said = [], set()
    for check, keys in found:
        evidence = check.evidence
        rows.append(f"<dt>{_e(check.label)}</dt><dd>{_e(state_of(check))}</dd>")
        if check.outcome == "passed":
            rows.extend(
                f"<dt>{_e(key)}</dt><dd>{_e(without_suite_paths(_value(evidence[key])))}</dd>"
                for key in keys
                if key in evidence
            )
        else:
            why = without_suite_paths(headline(check)) or sentence(check.message)
            rows.append(f"<dt>why</dt><dd>{_e(why) if why not in said else 'the same'}</dd>")
            said.add(why)
    return f"{head}<dl>{''.join(rows)}</dl></div>"


def _cause_html(number: int, cause: RootCause) -> str:
    check = cause.check
    parts = [
        f'<div class="cause {_e(check.outcome)}" id="cause-{number}" data-root-cause="{_e(check.label)}">',
        f"<b>Root cause {number}: {_e(check.label)} {_e(title_of(check.id, check.nodeid))}</b> "
        f"({_e(check.component)}, {_e(check.outcome)})",
        f"<pre>{_e(without_suite_paths(check.message))}</pre>",
    ]
    if check.remediation:
        parts.append(f'<p class="fix"><b>Fix:</b> {_e(check.remediation)}</p>')
    if cause.same:
        parts.append(_folded("same", cause.same, f"{len(cause.same)} more failed the same way"))
    if cause.blocked:
        plural = "s" if len(cause.blocked) != 1 else ""
        parts.append(_folded("blocked", cause.blocked, f"blocks {len(cause.blocked)} check{plural}"))
    parts.append("</div>")
    return "".join(parts)


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items(), key=lambda i: ORDER.index(i[0])))


def html_block(verdict: Verdict, notes: Sequence[str] = (), boxes: Sequence[str] = ()) -> str:
    """The first screen: verdict, ``notes`` (HTML: insecure TLS, simulated components, waivers), proofs,
    component grid, root causes, checks not run, then ``boxes`` (HTML: the cluster vantage's columns)."""
    state = "ok" if verdict.conformant else "bad"
    parts = [
        f"<style>{CSS}</style>",
        f'<p class="verdict {state}" id="verdict">{_e(verdict.line())}</p>',
        f'<p class="context">{_e(verdict.context())}; run id {_e(verdict.run.run_id)}</p>',
        *notes,
    ]
    job = "Run:ai job run" if verdict.run.orchestrator == "runai" else "Kubernetes Job run"
    chosen = [proof for proof in PROOFS if proof.title == job or "job run" not in proof.title.lower()]
    proofs = [p for p in (_proof_html(verdict, proof) for proof in chosen) if p]
    if proofs:
        parts.append(
            f'<div class="box" id="proofs"><h3>Headline proofs</h3><div class="proofs">{"".join(proofs)}</div></div>'
        )
    cells = "".join(
        f'<div class="cell" style="{_style(worst)}" data-component="{_e(name)}" data-state="{_e(worst)}">'
        f"<b>{_e(name)}</b><small>{_e(_counts_text(counts))}</small></div>"
        for name, worst, counts in verdict.component_cells()
    )
    legend = "".join(f'<span style="{_style(s)}">{s}</span>' for s in ORDER)
    parts.append(
        f'<div class="box" id="components"><h3>Components</h3><div class="grid">{cells}</div>'
        f'<p class="legend">{legend} (blocked: not evaluated because a prerequisite failed)</p></div>'
    )
    if verdict.root_causes:
        causes = "".join(_cause_html(i, cause) for i, cause in enumerate(verdict.root_causes, 1))
        parts.append(f'<div class="box" id="root-causes"><h3>Root causes, most blocking first</h3>{causes}</div>')
    if verdict.not_run:
        items = "".join(
            f"<li><b>{len(checks)}</b>: {_e(reason)} <small>{_e(_labels(checks, 40))}</small></li>"
            for reason, checks in verdict.not_run.items()
        )
        parts.append(
            f'<div class="box notrun" id="not-run"><h3>Not run ({verdict.not_run_count} checks): '
            f"nothing here was checked</h3><ul>{items}</ul></div>"
        )
    parts += [*boxes, "<h3>Every check</h3>"]
    return "".join(parts)


def check_detail_html(info: Mapping[str, Any], outcome: str) -> str:
    """A row's expanded part: message as sentences, remediation, evidence as text (no data: link)."""
    message = without_suite_paths(str(info.get("message") or ""))
    parts = ['<div class="check-detail">']
    if outcome == "skipped":
        parts.append(f"<p>{_e(sentence(message))}</p>")
    elif message:
        parts.append(f"<pre>{_e(message)}</pre>")
    if info.get("remediation") and outcome in PROBLEMS and not info.get("blocked_by"):
        parts.append(f'<p class="fix"><b>Fix:</b> {_e(info["remediation"])}</p>')
    evidence = info.get("evidence")
    if evidence:
        parts.append(f"<details open><summary>Evidence</summary><pre>{_e(evidence_text(evidence))}</pre></details>")
    parts.append("</div>")
    return "".join(parts)
