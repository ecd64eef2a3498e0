"""The results model (conformance/results.py): what the suite writes, it reads back unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance import results
from tests.conftest import REPO

DATA = REPO / "tests" / "data" / "results"  # two sandbox runs' JSON (temporary folder names normalized)


@pytest.mark.parametrize("name", ["onprem", "gcp"])
def test_real_results_round_trip_to_identical_dicts_and_bytes(name: str, tmp_path: Path) -> None:
    path = DATA / f"{name}.json"
    run = results.read(path)
    assert run.document() == json.loads(path.read_text())
    run.write(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()
    assert run.path == str(path)
    assert run.counts() == run.summary


def minimal(**changes: Any) -> dict[str, Any]:
    check = {"id": "NET-001", "component": "network", "nodeid": "t.py::test_dns[mlflow]", "outcome": "passed"}
    doc = {"schema": results.SCHEMA, "profile": "p", "run_id": "r", "started": "2026-12-01T08:00:00+08:00"}
    return {**doc, "vantage": {"hostname": "ws"}, "checks": [check], **changes}


def test_a_check_no_phase_spoke_of_is_an_error_and_a_missing_component_comes_from_its_id() -> None:
    doc = minimal(checks=[{"id": "MLF-001", "nodeid": "t.py::test_x", "outcome": None}])
    check = results.parse(doc, "r.json").checks[0]
    assert (check.outcome, check.component, check.label) == ("error", "mlflow", "MLF-001")


def test_what_readers_derive_from_a_document() -> None:
    run = results.parse(minimal(), "r.json")
    assert run.started_text == "2026-12-01T00:00:00Z"  # in UTC, whatever offset was written
    assert run.label == "p @ ws (outside Kubernetes)"
    assert (run.checks[0].key, run.checks[0].label) == (("NET-001", "mlflow"), "NET-001[mlflow]")
    assert run.document() == minimal()  # nothing added that was not read
    assert sorted(results.ORDER) == sorted(results.OUTCOMES)
    assert results.worst(["skipped", "passed", "xfailed"]) == "passed"
    assert results.worst(["passed", "xpassed", "failed"]) == "failed"
    assert results.worst([]) is None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"profile": 3}, "r.json: profile should be a valid string"),
        ({"vantage": None}, "r.json: vantage should be a valid dictionary or instance of Vantage"),
        ({"checks": [{"nodeid": "x", "outcome": "passed"}]}, "r.json: checks[0].id is missing"),
        ({"checks": [{"id": "NET-001", "nodeid": "x", "outcome": "boom"}]}, "r.json: checks[0].outcome 'boom' is not"),
        ({"started": "yesterday"}, "r.json: started 'yesterday' is not an ISO-8601 time"),
        ({"run_id": None, "checks": {}}, "r.json: run_id should be a valid string (and 1 more)"),
    ],
)
def test_a_bad_document_is_one_line_naming_the_field(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(results.ResultsError) as raised:
        results.parse(minimal(**changes), "r.json")
    assert str(raised.value).startswith(problem)
    assert "\n" not in str(raised.value)


def test_fingerprint_keeps_what_a_refactor_must_not_change_and_drops_run_noise() -> None:
    message = (
        "actual: registry host localhost:33887 answered after 0.25 s at 2026-12-02T00:29:20Z "
        "(run 20261202002920-24bc3c, file /tmp/conformance-sandbox-5_ht1jjc/home/x.json)"
    )
    check = {"id": "REG-006", "nodeid": "t.py::test_ar", "outcome": "failed", "message": message}
    prints = results.fingerprint(results.parse(minimal(checks=[{**check, "evidence": {"b": 1, "a": {"c": 2}}}]), "r"))
    assert prints == {
        "t.py::test_ar": {
            "id": "REG-006",
            "outcome": "failed",
            "message": "actual: registry host localhost:PORT answered after N s at TIME (run RUN_ID, file TMP)",
            "evidence": ["a", "b"],
        }
    }
