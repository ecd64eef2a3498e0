"""The verdict: root causes, what they block, what did not run; the same in the HTML, terminal and bundle."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from conformance import report, results, verdict
from tests.conftest import REPO
from tests.test_plugin import ONPREM, SYNTHETIC, run_synthetic


def record(
    check_id: str, outcome: str, message: str = "", blocked_by: str | None = None, param: str = ""
) -> dict[str, Any]:
    name = {"NET-001": "dns_resolves", "NET-002": "tcp_connects", "NET-003": "tls_handshake"}.get(check_id, "x")
    nodeid = f"conformance/components/test_network.py::test_{name}" + (f"[{param}]" if param else "")
    return {
        "id": check_id,
        "component": "network",
        "nodeid": nodeid,
        "outcome": outcome,
        "message": message,
        "remediation": f"fix {check_id}",
        "blocked_by": blocked_by,
        "evidence": {"seen": check_id},
    }


def document(*checks: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": "conformance-results/1",
        "profile": "p",
        "platform": "onprem",
        "orchestrator": "runai",
        "run_id": "20261201000000-abcdef",
        "started": dt.datetime(2026, 12, 1, tzinfo=dt.UTC).isoformat(),
        "vantage": {"hostname": "ws-1", "in_cluster": False},
        "checks": list(checks),
    }


def build(*checks: dict[str, Any]) -> verdict.Verdict:
    return verdict.build(results.parse(document(*checks), "r.json"))


def test_blocked_checks_fold_under_the_root_cause_at_the_end_of_their_chain() -> None:
    found = build(
        record("NET-001", "failed", "actual: DNS: x does not resolve", param="a"),
        record("NET-002", "error", "blocked by NET-001 (DNS)", "NET-001", param="a"),
        record("NET-003", "error", "blocked by NET-002 (TCP)", "NET-002", param="a"),
        record("NET-004", "passed"),
    )
    assert [c.check.label for c in found.root_causes] == ["NET-001[a]"]
    assert [c.label for c in found.root_causes[0].blocked] == ["NET-002[a]", "NET-003[a]"]
    assert found.line() == "NOT CONFORMANT: 1 root cause, 2 more checks down because of them"
    assert found.context() == (
        "profile p, platform onprem, orchestrator runai, vantage ws-1 (outside Kubernetes), 2026-12-01 00:00 UTC"
    )
    grid = {name: (worst, counts) for name, worst, counts in found.component_cells()}
    assert grid["network"] == ("failed", {"failed": 1, "blocked": 2, "passed": 1})


def test_checks_failing_with_one_message_are_one_root_cause_and_a_missing_blocker_is_named() -> None:
    same = "cannot evaluate: ~/.aws/credentials has no section [x]"
    found = build(
        record("OBJ-002", "error", same),
        record("OBJ-003", "error", same),
        record("NET-003", "error", "blocked by NET-002 (TCP)", "NET-002"),
    )
    labels = {c.check.label: c for c in found.root_causes}
    assert [c.label for c in labels["OBJ-002"].same] == ["OBJ-003"]
    assert labels["NET-002"].check.message == "NET-002 is not in this run"
    assert len(found.root_causes) == 2


def test_a_conformant_run_says_so_and_counts_what_did_not_run() -> None:
    found = build(
        record("NET-001", "passed"),
        record("NET-003", "skipped", "not applicable: profile p is platform onprem; this check applies to gcp"),
        record("NET-002", "skipped", "not applicable: profile p is platform onprem; this check applies to gcp"),
    )
    assert found.conformant
    assert found.line() == "CONFORMANT: every check that ran passed; 2 not run"
    assert list(found.not_run) == ["Not applicable: profile p is platform onprem; this check applies to gcp."]
    assert verdict.status_line(found) == "PASSED: CONFORMANT: every check that ran passed; 2 not run"


def test_html_block_puts_verdict_proofs_grid_causes_and_not_run_in_that_order() -> None:
    page = verdict.html_block(
        build(
            record("NET-001", "failed", "actual: DNS: x does not resolve"),
            record("NET-002", "error", "blocked by NET-001 (DNS)", "NET-001"),
            record("NET-003", "skipped", "not applicable: endpoint x is ssh://, without TLS"),
        ),
        ["<p>NOTE</p>"],
    )
    order = [
        page.index(mark) for mark in ('id="verdict"', "NOTE", 'id="components"', 'id="root-causes"', 'id="not-run"')
    ]
    assert order == sorted(order)
    assert 'data-state="failed"' in page
    assert "Fix:</b> fix NET-001" in page
    assert "blocks 1 check</summary>" in page
    assert "Not applicable: endpoint x is ssh://, without TLS." in page


def test_rows_log_skip_reasons_as_sentences_and_drop_the_suites_paths() -> None:
    data = [f"('{REPO}/conformance/components/test_gcp.py', 33, 'Skipped: not applicable: profile p')"]
    report.html_log({"message": "not applicable: profile p has no gcp section"}, True, data)
    assert data == ["Not applicable: profile p has no gcp section."]
    data = [f"Traceback in {REPO}/conformance/clients/network.py line 3"]
    report.html_log({"message": "x"}, False, data)
    assert data == ["Traceback in conformance/clients/network.py line 3"]
    cells = [
        '<td class="col-result">Failed</td>',
        '<td class="col-testId">c/test_network.py::test_tcp_connects[web]</td>',
    ]
    report.html_row({"id": "NET-002", "component": "network", "message": "expected: a\nactual:   b"}, True, cells)
    assert '<td class="col-title">tcp connects [web]</td>' in cells
    assert '<td class="col-message">actual:   b</td>' in cells
    cells = [
        '<td class="col-result">Error</td>',
        '<td class="col-testId">c/test_network.py::test_http_answers[web]::setup</td>',
    ]
    report.html_row({"id": "NET-004", "component": "network", "message": "blocked by NET-002 (x)"}, True, cells)
    assert '<td class="col-title">service answers [web]</td>' in cells


def test_terminal_ends_with_the_verdict_before_the_summary_line_and_the_html_opens_with_it(tmp_path: Path) -> None:
    run = run_synthetic(tmp_path, SYNTHETIC, ONPREM)
    lines = run.output.splitlines()
    start = next(i for i, line in enumerate(lines) if "conformance verdict" in line)
    summary = next(i for i, line in enumerate(lines) if re.match(r"=+ .*\d+ failed.* in [\d.]+s", line))
    block = lines[start + 1 : summary]
    assert block[0] == "NOT CONFORMANT: 2 root causes; 2 not run"
    assert "root cause 1: NET-907 cannot (network): error" in block
    assert "root cause 2: NET-906 fails (network): failed" in block
    assert "    fix: Restart the frobnicator." in block
    assert any(line.startswith("not run (1): Not applicable: profile synthetic is platform onprem") for line in block)
    (html_path,) = run.reports.glob("*.html")
    page = html_path.read_text()
    assert ".summary{order:1}" in page  # pytest-html's environment table moves below the verdict
    assert "#environment-header,#environment{order:2}" in page
    assert '<title id="head-title">Conformance report: synthetic (NOT CONFORMANT)</title>' in page
    assert "frobs_seen" in page  # NET-901's evidence, as text in its row
    assert "data:application/json" not in page


def test_proofs_show_their_evidence_or_why_not_once() -> None:
    pushed = {**record("REG-003", "passed"), "component": "registry", "evidence": {"manifest_digest": "sha256:abc"}}
    same = "cannot evaluate: no credentials"
    listed = {**record("OBJ-002", "error", same), "component": "object_storage"}
    written = {**record("OBJ-004", "error", same), "component": "object_storage"}
    page = verdict.html_block(build(pushed, listed, written))
    image = page[page.index('data-proof="Image pushed and pulled back"') :]
    assert image.index("proven") < image.index("<dt>manifest_digest</dt><dd>sha256:abc</dd>")
    buckets = page[page.index('data-proof="Buckets listed and probe written"') :]
    buckets = buckets[: buckets.index("</div>")]
    assert buckets.count(same) == 1
    assert "<dt>why</dt><dd>the same</dd>" in buckets
    assert 'data-proof="MLflow run logged and read back"' not in page  # not in this run: no empty box


def test_a_blocked_check_folds_under_its_own_endpoints_failure_and_a_waived_blocker_is_named() -> None:
    found = build(
        record("NET-001", "failed", "actual: git.example: does not resolve", param="gitlab"),
        record("NET-001", "failed", "actual: reg.example: does not resolve", param="registry"),
        record("NET-002", "error", "blocked by NET-001 (reg.example: does not resolve)", "NET-001", param="registry"),
        record("K8S-005", "xfailed", "waived by ops until 2027-01-01"),
        {**record("K8S-006", "error", "blocked by K8S-005 (expired)", "K8S-005"), "component": "kubernetes"},
    )
    causes = {c.check.label: [b.label for b in c.blocked] for c in found.root_causes}
    assert causes["NET-001[registry]"] == ["NET-002[registry]"]
    assert causes["NET-001[gitlab]"] == []
    waived = next(c for c in found.root_causes if c.check.id == "K8S-005")
    assert waived.check.message == "K8S-005 is waived in this run: the checks that need it could not run"


def test_a_check_blocked_by_a_labelled_net_check_folds_under_that_endpoint_whatever_its_message_names() -> None:
    """The reference carries the endpoint (NET-001[kubernetes]); the message's host is not needed to pick it."""
    found = build(
        record("NET-001", "failed", "actual: DNS: git.example does not resolve", param="gitlab"),
        record("NET-001", "failed", "actual: DNS: lookup timed out after 2 s", param="kubernetes"),
        {
            **record("K8S-006", "error", "blocked by NET-001[kubernetes] (DNS)", "NET-001[kubernetes]"),
            "component": "kubernetes",
        },
    )
    causes = {c.check.label: [b.label for b in c.blocked] for c in found.root_causes}
    assert causes["NET-001[kubernetes]"] == ["K8S-006"]
    assert causes["NET-001[gitlab]"] == []  # listed first: an unlabelled NET-001 would have landed here


def test_a_labelled_net_check_missing_from_the_run_is_named_with_its_endpoint() -> None:
    found = build(
        record("NET-001", "failed", "actual: DNS: git.example does not resolve", param="gitlab"),
        {
            **record("K8S-006", "error", "blocked by NET-002[kubernetes] (x)", "NET-002[kubernetes]"),
            "component": "kubernetes",
        },
    )
    causes = {c.check.label: c for c in found.root_causes}
    assert causes["NET-002[kubernetes]"].check.message == "NET-002[kubernetes] is not in this run"
    assert [b.label for b in causes["NET-002[kubernetes]"].blocked] == ["K8S-006"]
    assert causes["NET-001[gitlab]"].blocked == []
