"""``python -m conformance diff | merge | bundle``: the tools around many results files."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from conformance.__main__ import main
from conformance.components import component_of_check
from conformance.credentials import AMBIENT_SECRETS
from conformance.results import OUTCOMES, SCHEMA
from tests.conftest import REPO, write_profile

CANARY = "canary-Fleet-s3cret-42"


# --------------------------------------------------------------------------- a results-document factory


def record(
    check_id: str,
    outcome: str = "passed",
    *,
    param: str = "",
    message: str = "",
    blocked_by: str | None = None,
    evidence: dict[str, Any] | None = None,
    function: str | None = None,
) -> dict[str, Any]:
    """One check record exactly as conformance.report.Results writes it."""
    component = component_of_check(check_id)
    name = component.name if component else "unknown"
    function = function or f"test_{check_id.lower().replace('-', '_')}"
    return {
        "id": check_id,
        "component": name,
        "nodeid": f"conformance/components/test_{name}.py::{function}" + (f"[{param}]" if param else ""),
        "outcome": outcome,
        "duration_s": 0.01,
        "message": message,
        "remediation": f"remediation of {check_id}",
        "blocked_by": blocked_by,
        "evidence": evidence or {},
    }


def results(
    checks: list[dict[str, Any]],
    *,
    profile: str = "onprem-runai",
    hostname: str = "laptop",
    in_cluster: bool = False,
    started: str = "2026-11-20T10:00:00Z",
    run_id: str | None = None,
) -> dict[str, Any]:
    """A results document with every key conformance.report.Results.document writes."""
    summary = dict.fromkeys(OUTCOMES, 0)
    for check in checks:
        summary[check["outcome"]] = summary.get(check["outcome"], 0) + 1
    return {
        "schema": SCHEMA,
        "profile": profile,
        "platform": "onprem",
        "orchestrator": "runai",
        "guide_version": "v0.5.2",
        "suite_version": "0.1.0",
        "run_id": run_id or re.sub(r"\D", "", started) + "-abcdef",
        "started": started,
        "duration_s": 12.3,
        "vantage": {"hostname": hostname, "in_cluster": in_cluster},
        "tls_insecure": False,
        "simulated": [],
        "checks": checks,
        "summary": summary,
    }


def write(folder: Path, name: str, document: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(json.dumps(document, indent=2))
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(autouse=True)
def no_ambient_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever this machine exports, the bundle's default scan sees only what a test sets."""
    for name in AMBIENT_SECRETS:
        monkeypatch.delenv(name, raising=False)


TIMEOUT = "expected: TCP connect to mlflow.example:443\nactual:   TCP connect timed out after 5 s\nhint:     egress"


def laptop_and_pod(folder: Path) -> tuple[Path, Path]:
    laptop = results(
        [
            record("NET-002", param="mlflow"),
            record("NET-002", param="gitlab"),
            record("REG-002"),
            record("OBJ-001", "skipped", message="not applicable: gcp"),
        ]
    )
    pod = results(
        [
            record("NET-002", "failed", param="mlflow", message=TIMEOUT),
            record("NET-002", param="gitlab"),
            record("REG-002", "error", blocked_by="NET-002", message="blocked by NET-002 (registry: timed out)"),
            record("OBJ-001"),
        ],
        hostname="conformance-job-1",
        in_cluster=True,
    )
    return write(folder, "laptop.json", laptop), write(folder, "pod.json", pod)


# --------------------------------------------------------------------------- diff


def test_diff_laptop_vs_pod_names_what_the_pod_cannot_reach(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    laptop, pod = laptop_and_pod(tmp_path)
    rc, out, _ = cli(capsys, "diff", laptop, pod)
    assert rc == 1
    assert "A: onprem-runai @ laptop (outside Kubernetes)" in out
    assert "B: onprem-runai @ conformance-job-1 (inside Kubernetes)" in out
    assert "2 pass from A and fail from B; 0 pass from B and fail from A." in out
    assert re.search(r"NET-002\s+mlflow\s+passed\s+failed\s+actual: TCP connect timed out after 5 s", out)
    assert re.search(r"REG-002\s+passed\s+error\s+blocked by NET-002", out)
    assert "NetworkPolicy" in out  # outside passes, inside fails: the egress hint
    assert "gitlab" not in out  # same outcome on both sides
    assert "OBJ-001" not in out
    assert "1 other outcome change(s)" in out
    _, all_out, _ = cli(capsys, "diff", "--all", laptop, pod)
    assert re.search(r"OBJ-001\s+skipped\s+passed", all_out)


def test_diff_json_and_the_reverse_direction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    laptop, pod = laptop_and_pod(tmp_path)
    rc, out, _ = cli(capsys, "diff", "--json", pod, laptop)
    assert rc == 1
    doc = json.loads(out)
    assert doc["schema"] == "conformance-diff/1"
    assert (doc["pass_a_fail_b"], doc["pass_b_fail_a"]) == (0, 2)
    first = doc["differences"][0]
    assert (first["id"], first["param"], first["direction"]) == ("NET-002", "mlflow", "b")
    assert first["a"]["outcome"] == "failed"
    assert first["b"]["outcome"] == "passed"
    assert {d["id"]: d["direction"] for d in doc["differences"]}["OBJ-001"] == "other"


def test_diff_without_differences_exits_0_and_strips_terminal_escapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = [record("NET-001", "failed", param="x", message="actual: \x1b[2J\x1b[31mboom")]
    a = write(tmp_path, "a.json", results(checks))
    b = write(tmp_path, "b.json", results(checks, hostname="evil\x1b]0;title\x07host"))
    rc, out, _ = cli(capsys, "diff", a, b)
    assert rc == 0
    assert "0 pass from A and fail from B; 0 pass from B and fail from A." in out
    assert "\x1b" not in out
    assert "\x07" not in out


BAD_INPUTS: dict[str, tuple[str | None, str]] = {
    "missing": (None, "cannot read (does not exist)"),
    "not-json": ("<html>nope</html>", "not a results file (not JSON"),
    "list": ("[1, 2]", "not a results file (JSON list, not an object)"),
    "no-schema": ('{"checks": []}', "not a results file (no 'schema' key)"),
    "wrong-schema": ('{"schema": "conformance-results/9"}', "schema 'conformance-results/9' is not supported"),
    "withheld": ('{"schema": "conformance-results/1", "withheld": true, "reason": "x"}', "withheld by the suite's"),
    "bad-outcome": (json.dumps(results([record("NET-001", "exploded")])), "checks[0].outcome 'exploded' is not one"),
    "bad-started": (json.dumps(results([], started="yesterday")), "started 'yesterday' is not an ISO-8601 time"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    text, expected = BAD_INPUTS[case]
    bad = tmp_path / f"{case}.json"
    if text is not None:
        bad.write_text(text)
    good = write(tmp_path, "good.json", results([record("NET-001")]))
    commands: list[list[str | Path]] = [["diff", good, bad], ["bundle", bad]]
    for command in commands:
        rc, _out, err = cli(capsys, *command)
        assert rc == 2, command
        assert err.count("\n") == 1, err
        assert err.startswith(f"ERROR: {bad}: "), err
        assert expected in err, err
    rc, _, err = cli(capsys, "merge", bad, "-o", tmp_path / "fleet.html")
    assert rc == 2
    assert f"WARNING: {bad}: " in err
    assert "ERROR: none of the 1 file(s)" in err


def test_commands_have_help_and_never_a_traceback(tmp_path: Path) -> None:
    for command in ("diff", "merge", "bundle"):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "diff", str(tmp_path), str(tmp_path / "nope.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"ERROR: {tmp_path}: is a directory, not a results file\n"


# --------------------------------------------------------------------------- merge


def fleet_files(folder: Path) -> None:
    """Laptop: three runs (files named against time order) and a duplicate; pod: one run."""
    folder.mkdir(parents=True, exist_ok=True)
    write(
        folder,
        "c-oldest.json",
        results(
            [record("NET-001", "failed", param="mlflow", message="actual: old"), record("REG-001")],
            started="2026-11-18T09:00:00Z",
        ),
    )
    write(
        folder,
        "a-latest.json",
        results(
            [
                record("NET-001", "failed", param="mlflow", message="actual: <script>alert(1)</script>"),
                record("NET-002", "error", param="mlflow", blocked_by="NET-001"),
                record("REG-001"),
                record("REG-002", "xfailed"),
                record("REG-003", "skipped"),
                record("OBJ-001", "skipped"),
                record("MLF-001"),
                record("MLF-002", "xpassed"),
            ],
            started="2026-11-20T09:00:00Z",
        ),
    )
    write(
        folder,
        "b-middle.json",
        results([record("NET-001", param="mlflow"), record("REG-001")], started="2026-11-19T09:00:00Z"),
    )
    write(
        folder,
        "d-copy-of-middle.json",
        results([record("NET-001", param="mlflow"), record("REG-001")], started="2026-11-19T09:00:00Z"),
    )
    write(
        folder,
        "pod.json",
        results(
            [record("NET-001", param="mlflow"), record("REG-001", "failed")],
            hostname="<img src=x onerror=alert(1)>",
            in_cluster=True,
            started="2026-11-19T12:00:00Z",
        ),
    )


def test_merge_matrix_worst_outcome_of_the_latest_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet_files(tmp_path)
    rc, out, _ = cli(capsys, "merge", tmp_path, "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["schema"] == "conformance-fleet/1"
    assert doc["order"] == ["error", "failed", "xpassed", "passed", "xfailed", "skipped"]
    assert doc["components"] == ["network", "registry", "object_storage", "mlflow"]
    laptop, pod = doc["environments"]  # sorted by (profile, hostname, in_cluster): "<img" < "laptop"
    laptop, pod = (laptop, pod) if laptop["vantage"]["hostname"] == "laptop" else (pod, laptop)
    assert laptop["latest"]["started"] == "2026-11-20T09:00:00Z"
    cells = {name: cell["outcome"] for name, cell in laptop["cells"].items()}
    assert cells == {"network": "error", "registry": "passed", "object_storage": "skipped", "mlflow": "xpassed"}
    assert [f["id"] for f in laptop["cells"]["network"]["failures"]] == ["NET-001", "NET-002"]
    assert [run["started"][:10] for run in laptop["trend"]] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert [run["outcome"] for run in laptop["trend"]] == ["failed", "passed", "error"]
    assert pod["cells"]["registry"]["outcome"] == "failed"
    assert "object_storage" not in pod["cells"]
    assert doc["runs"] == 4  # the copy of a run counts once


def test_merge_page_links_cells_to_failures_and_shows_the_trend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet_files(tmp_path / "in")
    (tmp_path / "in" / "broken.json").write_text("{")
    page_path = tmp_path / "fleet.html"
    rc, _, err = cli(capsys, "merge", *sorted((tmp_path / "in").iterdir()), "-o", page_path)
    assert rc == 0
    assert [line for line in err.splitlines() if line.startswith("WARNING")] == [
        f"WARNING: {tmp_path / 'in' / 'broken.json'}: not a results file (not JSON: "
        "Expecting property name enclosed in double quotes at line 1); skipped"
    ]
    page = page_path.read_text()
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
    links = set(re.findall(r'href="#(cell-\d+-\d+)"', page))
    anchors = set(re.findall(r'id="(cell-\d+-\d+)"', page))
    assert links
    assert links == anchors
    network_section = page.split('id="cell-1-0"')[1].split("<h3")[0]
    assert "NET-001[mlflow]</b> failed" in network_section
    assert "remediation of NET-001" in network_section
    assert "blocked by NET-001" in network_section
    laptop_row = next(row for row in page.split("<tr") if "onprem-runai @ laptop" in row)
    squares = re.findall(r'<span class="sq o-(\w+)" title="([^"]*)"', laptop_row)
    assert [outcome for outcome, _ in squares] == ["failed", "passed", "error"]
    assert "1 passed, 1 failed" in squares[0][1]
    assert "1 file(s) could not be read" in page


def test_merge_escapes_untrusted_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet_files(tmp_path)
    rc, _, _ = cli(capsys, "merge", tmp_path, "-o", tmp_path / "out" / "fleet.html")
    assert rc == 0
    page = (tmp_path / "out" / "fleet.html").read_text()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script>") == 1  # the page's own filter


def test_merge_output_unwritable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet_files(tmp_path)
    (tmp_path / "file").write_text("")
    rc, _, err = cli(capsys, "merge", tmp_path, "-o", tmp_path / "file" / "fleet.html")
    assert rc == 2
    assert err.startswith(f"ERROR: cannot write {tmp_path / 'file' / 'fleet.html'}")


# --------------------------------------------------------------------------- bundle


def run_files(folder: Path, checks: list[dict[str, Any]], stem: str = "onprem-runai-20261120T100000Z") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = write(folder, f"{stem}.json", results(checks))
    (folder / f"{stem}.html").write_text("<!DOCTYPE html><html><body>report</body></html>")
    (folder / f"{stem}.xml").write_text('<?xml version="1.0"?><testsuites/>')
    return path


TICKET_CHECKS = [
    record("NET-001", param="mlflow"),
    record(
        "REG-002",
        "failed",
        message="expected: login\nactual:   HTTP 401\nhint:     robot token expired",
        evidence={"api_version": "registry/2.0"},
    ),
    record("MLF-004", "failed", message="actual: artifact upload fails"),
    record("MLF-005", "error", blocked_by="MLF-004", message="blocked by MLF-004 (artifact upload fails)"),
    record(
        "MLF-006",
        function="test_versions",
        evidence={"client": "mlflow-skinny 3.1", "server": "2.17.0", "guide_version": "v0.5.2"},
    ),
    record("OBJ-002", "failed", message="actual: AccessDenied"),
]


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr] # files only


def test_bundle_contents_manifest_and_owners(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run_files(tmp_path / "reports", TICKET_CHECKS)
    owners = tmp_path / "owners.yaml"
    owners.write_text("mlflow: ml-platform <ml-platform@example.org>\n")
    rc, out, err = cli(capsys, "bundle", path, "--owners", owners)
    assert rc == 0, err
    archive = tmp_path / "reports" / "onprem-runai-20261120T100000Z-bundle.tar.gz"
    assert out.startswith(f"bundle: {archive}")
    found = members(archive)
    stem = "onprem-runai-20261120T100000Z"
    assert sorted(found) == sorted(
        f"{stem}/{name}" for name in (f"{stem}.json", f"{stem}.html", f"{stem}.xml", "summary.txt", "SHA256SUMS")
    )
    lines = found[f"{stem}/SHA256SUMS"].decode().splitlines()
    sums = {name: digest for digest, name in (line.split("  ", 1) for line in lines)}
    assert sorted(sums) == sorted(name.split("/", 1)[1] for name in found if not name.endswith("SHA256SUMS"))
    for name, digest in sums.items():
        assert hashlib.sha256(found[f"{stem}/{name}"]).hexdigest() == digest
    summary = found[f"{stem}/summary.txt"].decode()
    assert "vantage:      laptop (outside Kubernetes)" in summary
    assert "counts:       2 passed, 3 failed, 1 error," in summary
    assert "result:       FAILED (3 failed, 1 error)" in summary
    failures = summary.split("Failures by owner")[1].split("Versions")[0]
    assert re.search(
        r"DataOps team\n  object_storage \(.*\): 1\n    OBJ-002 failed\n      actual: AccessDenied\n", failures
    )
    assert re.search(r"MLOps team\n  registry \(.*\): 1\n    REG-002 failed\n      expected: login\n", failures)
    assert re.search(r"ml-platform <ml-platform@example.org>\n  mlflow \(.*\): 2\n    MLF-004 failed", failures)
    assert "MLF-005 error, blocked by MLF-004" in failures
    assert "NET-001" not in failures
    assert "REG-002 api_version: registry/2.0" in summary
    assert "MLF-006 server: 2.17.0" in summary
    assert "MLF-006 client" not in summary
    assert "guide_version" not in summary.split("server (from")[1]
    assert "pytest " in summary.split("client libraries")[1]
    assert "no --profile given, so the profile's secrets were NOT scanned for" in summary


def test_bundle_aborts_on_a_planted_profile_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_PW", CANARY)
    profile = write_profile(
        tmp_path,
        "platform: onprem\norchestrator: runai\n"
        "mlflow: {tracking_uri: 'https://m.example', username: u, password: env:FLEET_PW}\n",
    )
    clean = run_files(tmp_path / "clean", TICKET_CHECKS)
    rc, _, err = cli(capsys, "bundle", clean, "--profile", profile, "-o", tmp_path / "clean.tar.gz")
    assert rc == 0, err
    summary = members(tmp_path / "clean.tar.gz")[f"{clean.stem}/summary.txt"].decode()
    assert "scanned for the secrets of profile profile" in summary
    assert "mlflow.password" in summary

    leaky = run_files(tmp_path / "leaky", [record("MLF-002", "failed", message=f"actual: password {CANARY}")])
    target = tmp_path / "leaky.tar.gz"
    rc, out, err = cli(capsys, "bundle", leaky, "--profile", profile, "-o", target)
    assert rc == 1
    assert err.splitlines() == [
        f"LEAK: {leaky.name} contained the value of mlflow.password; no archive was written",
        "LEAK: summary.txt contained the value of mlflow.password; no archive was written",
    ]
    assert CANARY not in out + err
    assert not target.exists()
    assert not list(tmp_path.glob("leaky*.partial"))


def test_bundle_without_profile_scans_ambient_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", CANARY)
    path = run_files(tmp_path, [record("NET-001")])
    (tmp_path / f"{path.stem}.html").write_text(f"<p>{CANARY}</p>")
    rc, _, err = cli(capsys, "bundle", path)
    assert rc == 1
    assert err == (
        f"LEAK: {path.stem}.html contained the value of environment variable MLFLOW_TRACKING_PASSWORD;"
        " no archive was written\n"
    )


def test_bundle_bad_owners_profile_and_missing_siblings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run_files(tmp_path, [record("NET-001")])
    owners = tmp_path / "owners.yaml"
    owners.write_text("- mlflow\n")
    rc, _, err = cli(capsys, "bundle", path, "--owners", owners)
    assert rc == 2
    assert err == f"ERROR: {owners}: must be a mapping of component name to 'team <contact>'\n"
    rc, _, err = cli(capsys, "bundle", path, "--profile", tmp_path / "nope.yaml")
    assert rc == 4
    assert "profile file does not exist" in err
    (tmp_path / f"{path.stem}.xml").unlink()
    rc, _, err = cli(capsys, "bundle", path)
    assert rc == 0
    assert f"WARNING: {path.with_suffix('.xml')} not found" in err
    summary = members(tmp_path / f"{path.stem}-bundle.tar.gz")[f"{path.stem}/summary.txt"].decode()
    assert f"not found next to the JSON: {path.stem}.xml" in summary
    assert "none: every check passed" in summary


# --------------------------------------------------------------------------- a real results file


def test_real_results_file_from_the_suite(
    suite: Any,
    sandbox_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = suite("-m", "network", profile="sandbox")
    assert run.results.get("schema") == SCHEMA, run.output[-2000:]
    (real,) = run.reports.glob("*.json")
    rc, out, _ = cli(capsys, "diff", real, real)
    assert rc == 0
    assert "0 pass from A and fail from B" in out

    pod_doc = copy.deepcopy(run.results)
    pod_doc["vantage"] = {"hostname": "conformance-job-1", "in_cluster": True}
    passed = next(c for c in pod_doc["checks"] if c["outcome"] == "passed" and "[" in c["nodeid"])
    passed.update(outcome="failed", message="actual: TCP connect timed out after 5 s")
    pod = write(tmp_path, "pod.json", pod_doc)
    rc, out, _ = cli(capsys, "diff", real, pod)
    assert rc == 1
    assert "1 pass from A and fail from B" in out
    assert passed["id"] in out

    rc, out, _ = cli(capsys, "merge", real, pod, "--json")
    assert rc == 0
    environments = json.loads(out)["environments"]
    assert {env["cells"]["network"]["outcome"] for env in environments} == {"passed", "failed"}

    for key, value in sandbox_env.items():
        monkeypatch.setenv(key, value)
    rc, out, err = cli(capsys, "bundle", real, "--profile", "sandbox", "-o", tmp_path / "real.tar.gz")
    assert rc == 0, err
    found = members(tmp_path / "real.tar.gz")
    assert {Path(name).suffix for name in found} == {".json", ".html", ".xml", ".txt", ""}
    summary = found[f"{real.stem}/summary.txt"].decode()
    assert "scanned for the secrets of profile sandbox" in summary
    assert io.StringIO(summary).readline().startswith("Conformance results: sandbox @ ")
