"""Refactors keep the sandbox runs' outcomes, ids, messages and evidence keys (issue 9's regression guard).

Each sandbox profile runs in a subprocess, as a user runs it (its own sandbox); ``results.fingerprint`` of
its JSON results is compared, check by check (by nodeid, in any order), with the checked-in
``tests/data/baseline/<profile>.json``. When checks change on purpose, regenerate both and review the diff:

    BASELINE_UPDATE=1 .venv/bin/pytest -p no:cacheprovider tests/test_baseline.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conformance import results
from tests.conftest import REPO, run_suite

BASELINE = REPO / "tests" / "data" / "baseline"
REGENERATE = "BASELINE_UPDATE=1 .venv/bin/pytest -p no:cacheprovider tests/test_baseline.py"


def changes(expected: dict[str, dict[str, Any]], found: dict[str, dict[str, Any]]) -> list[str]:
    """What differs, one line each: ``+`` a new check, ``-`` one that no longer runs, ``~`` a changed field."""
    lines = []
    for nodeid in sorted(expected.keys() | found.keys()):
        old, new = expected.get(nodeid), found.get(nodeid)
        if old is None:
            lines.append(f"+ {nodeid}: {json.dumps(new)}")
        elif new is None:
            lines.append(f"- {nodeid}: {old['id']} {old['outcome']} no longer runs")
        else:
            changed = [key for key in old if old[key] != new.get(key)]
            lines.extend(f"~ {nodeid}: {key}: {old[key]!r} -> {new.get(key)!r}" for key in changed)
    return lines


def test_changes_name_every_difference_whatever_the_order() -> None:
    one = {"id": "NET-001", "outcome": "passed", "message": "", "evidence": ["dns"]}
    expected = {"a::t[x]": one, "a::t[y]": one}
    found = {"a::t[z]": one, "a::t[x]": {**one, "outcome": "failed", "evidence": []}}
    assert changes(expected, dict(reversed(expected.items()))) == []
    assert changes(expected, found) == [
        "~ a::t[x]: outcome: 'passed' -> 'failed'",
        "~ a::t[x]: evidence: ['dns'] -> []",
        "- a::t[y]: NET-001 passed no longer runs",
        '+ a::t[z]: {"id": "NET-001", "outcome": "passed", "message": "", "evidence": ["dns"]}',
    ]


@pytest.mark.parametrize("profile", ["sandbox", "sandbox-gcp"])
def test_sandbox_run_keeps_its_baseline(profile: str, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("SANDBOX_", "CONFORMANCE_"))}
    run = run_suite(profile=profile, reports=tmp_path / "reports", env=env, timeout=900)
    assert run.results, f"no JSON results (exit {run.rc}):\n{run.output[-3000:]}"
    found = results.fingerprint(results.parse(run.results, f"{profile} results"))
    path = BASELINE / f"{profile}.json"
    if os.environ.get("BASELINE_UPDATE") == "1":
        path.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
        return
    lines = changes(json.loads(path.read_text()), found)
    assert not lines, (
        f"the {profile} run differs from {path.relative_to(REPO)} in {len(lines)} place(s); "
        f"if the checks changed on purpose: {REGENERATE}\n" + "\n".join(lines)
    )
