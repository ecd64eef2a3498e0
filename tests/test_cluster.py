"""CLU: the cluster vantage against the sandbox, whose API server runs the suite's image as local processes.

The passing run submits the suite's image through the simulated Run:ai CLI; the job runs the
in-cluster checks, the Optuna study and the concurrent runs against the sandbox's S3 and MLflow,
and the workspace reads them back. Each failure has its own cause: the job cannot reach MLflow
(``cluster.overrides``, what egress or a NetworkPolicy does), a trial fails (an experiment whose
artifact store is broken), the results never arrive within the budget.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from conformance import cleanup, results, tuning, vantage
from conformance.clients import cluster
from conformance.components import test_cluster
from conformance.session import open_profile
from tests.conftest import REPO, write_profile

SELECT = ("-m", "cluster")


def cluster_profile(directory: Path, name: str = "clu.yaml", **section: Any) -> Path:
    text = f"extends: {REPO / 'profiles' / 'sandbox.yaml'}\n"
    if section:
        text += yaml.safe_dump({"cluster": section}, sort_keys=False)
    return write_profile(directory, text, name)


def message(run: Any, check_id: str) -> str:
    return str(run.check(check_id)["message"])


# --------------------------------------------------------------------------- without a sandbox


def test_job_spec_carries_the_guides_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SANDBOX_CA_BUNDLE": str(tmp_path / "ca.pem")}
    (tmp_path / "ca.pem").write_text("")
    path = write_profile(
        tmp_path,
        """\
platform: onprem
orchestrator: runai
tls: {ca_bundle: '${SANDBOX_CA_BUNDLE}'}
registry: {url: 'https://harbor.example', project_path: harbor.example/mlops}
runai: {project: proj}
cluster: {env: {HTTPS_PROXY: 'http://proxy:3128'}, trials: 3}
""",
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    profile = open_profile(path).profile
    spec = cluster.job_spec(profile, "platform: onprem\n", "p", "20261202003000-abc123", seconds=90, extra_env={})
    assert spec.name == "conformance-20261202003000-abc123-clu"
    assert spec.image == "harbor.example/mlops/conformance-suite:0.1.0"
    assert spec.secrets == ["s3-credentials", "harbor-credentials"]  # the guide's, from kubernetes
    assert base64.b64decode(spec.env[cluster.ENV_PROFILE]).decode() == "platform: onprem\n"
    assert spec.env["HTTPS_PROXY"] == "http://proxy:3128"
    assert spec.env[cluster.ENV_RESULTS_DIR] == "/pvc-data/conformance/cluster"
    args = cluster.runai_args(spec, "proj", new_cli=False)
    assert args[:4] == ["submit", spec.name, "-p", "proj"]
    assert "--existing-pvc" in args
    assert "claimname=pvc-data,path=/pvc-data" in args
    assert args[args.index("--run-as-uid") + 1] == "2222"
    assert args[-4:] == ["--", "python", "-m", "conformance.vantage"]
    assert "<profile>" in cluster.shown_command(args)
    assert spec.env[cluster.ENV_PROFILE] not in cluster.shown_command(args)
    new = cluster.runai_args(spec, "proj", new_cli=True)
    assert new[:5] == ["training", "submit", spec.name, "--project", "proj"]
    job = cluster.kube_job(spec, {"app": "x"})
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 2222
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "pvc-data"
    assert pod["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "s3-credentials"}},
        {"secretRef": {"name": "harbor-credentials"}},
    ]
    assert job["spec"]["activeDeadlineSeconds"] == 90
    assert job["spec"]["backoffLimit"] == 0


def test_cluster_run_id_is_swept_with_its_run() -> None:
    inner = cluster.cluster_run_id("20261202003000-abc123")
    assert inner.startswith("20261202003000-")
    assert inner != "20261202003000-abc123"
    assert cleanup.run_id_of(f"conformance-{inner}-trial-0") == inner
    assert cleanup.run_id_of("conformance-20261202003000-abc123-clu") == "20261202003000-abc123"


def test_results_line_read_from_the_log() -> None:
    found, problem = cluster.results_of("starting\nsomething broke\n")
    assert found is None
    assert problem is not None
    assert "no results line" in problem
    assert "something broke" in problem
    found, problem = cluster.results_of(cluster.RESULTS_MARK + "{not json\n")
    assert found is None
    assert problem is not None
    assert "not JSON" in problem
    document = {"checks": [], "run_id": "x"}
    found, problem = cluster.results_of("a\n" + cluster.RESULTS_MARK + json.dumps(document) + "\n")
    assert found == document
    assert problem is None


def _document(outcome: str, *, in_cluster: bool) -> dict[str, Any]:
    return {
        "schema": "conformance-results/1",
        "profile": "p",
        "run_id": "r",
        "started": "2026-12-02T00:30:00Z",
        "vantage": {"hostname": "pod" if in_cluster else "laptop", "in_cluster": in_cluster},
        "checks": [
            {"id": "MLF-001", "nodeid": "t::a", "outcome": "passed", "message": ""},
            {
                "id": "OBJ-002",
                "nodeid": "t::b",
                "outcome": outcome,
                "message": "expected: x\nactual:   connection timed out",
            },
        ],
        "summary": {},
    }


def _run(outcome: str) -> results.Run:
    return results.parse(_document(outcome, in_cluster=False), "workspace")


def test_two_vantages_reads_a_difference_as_diff_does() -> None:
    view = vantage.two_vantages(_run("passed"), _document("failed", in_cluster=False))
    rows = {row["id"]: row for row in view["checks"]}
    assert rows["OBJ-002"]["workspace"] == "passed"
    assert rows["OBJ-002"]["cluster"] == "failed"
    assert rows["OBJ-002"]["cluster_message"] == "actual:   connection timed out"
    assert rows["MLF-001"]["workspace"] == rows["MLF-001"]["cluster"] == "passed"
    assert view["differences"] == 1
    assert "egress rules, NetworkPolicy" in view["hint"]
    same = vantage.two_vantages(_run("passed"), _document("passed", in_cluster=True))
    assert same["differences"] == 0
    assert same["hint"] is None


def test_terminal_lines_name_what_differs_among_what_ran_in_both() -> None:
    config: Any = SimpleNamespace(stash=pytest.Stash())
    assert vantage.terminal_lines(config, _run("passed")) == []  # no job reported
    vantage.keep(config, _document("failed", in_cluster=True))
    workspace = _document("passed", in_cluster=False)
    workspace["checks"].append({"id": "CLU-001", "nodeid": "t::c", "outcome": "passed", "message": ""})
    lines = vantage.terminal_lines(config, results.parse(workspace, "workspace"))
    assert lines[0] == "cluster vantage (run r): 3 check(s); 2 ran in both"
    assert lines[2].split() == ["OBJ-002", "passed", "failed"]
    assert not any("CLU-001" in line for line in lines)  # absent from the cluster: not a difference
    assert "egress rules, NetworkPolicy" in lines[-1]
    attached = vantage.attach(config, results.parse(workspace, "workspace")).document()
    assert attached["vantages"]["differences"] == 1
    table = vantage.html_table(config, results.parse(workspace, "workspace")) or ""
    assert "<td>OBJ-002</td><td></td><td>passed</td><td>failed</td><td>actual:   connection timed out</td>" in table
    assert "CLU-001" not in table  # ran in the workspace only: counted, not listed
    assert "1 other check(s) ran in one place only" in table


def test_the_wait_fits_in_what_is_left_of_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = SimpleNamespace(cluster=SimpleNamespace(timeout=600.0))
    monkeypatch.setenv("CONFORMANCE_RUN_STARTED", str(time.time() - 30))
    budget: Any = SimpleNamespace(getoption=lambda name: 100.0)
    assert 69 <= test_cluster._wait_limit(profile, budget) <= 70  # type: ignore[arg-type] # a stand-in profile
    unlimited: Any = SimpleNamespace(getoption=lambda name: None)
    assert test_cluster._wait_limit(profile, unlimited) == 600  # type: ignore[arg-type] # same
    spent: Any = SimpleNamespace(getoption=lambda name: 10.0)
    assert test_cluster._wait_limit(profile, spent) == 0  # type: ignore[arg-type] # same


def test_tuning_model_learns_the_shipped_dataset() -> None:
    rows = tuning.load_dataset()
    assert len(rows) == 32
    assert tuning.fit(rows, 0.3, 4) < tuning.fit(rows, 0.3, 4, epochs=1)


# --------------------------------------------------------------------------- against the sandbox


def test_cluster_vantage_passes_and_joins_the_report(suite: Any, tmp_path: Path) -> None:
    run = suite(*SELECT, profile=cluster_profile(tmp_path))
    for check_id in ("CLU-001", "CLU-002", "CLU-003", "CLU-004", "CLU-005"):
        assert run.check(check_id)["outcome"] == "passed", (check_id, message(run, check_id), run.output[-4000:])
    assert "runai submit" in run.check("CLU-001")["evidence"]["submitted"]
    assert run.check("CLU-002")["evidence"]["summary"]["passed"] >= 10
    read_back = run.check("CLU-004")["evidence"]["read_back"]
    assert len(read_back) == 3
    assert all("trial.json" in r["artifacts"] for r in read_back)
    view = run.results["vantages"]
    assert view["names"] == ["workspace", "cluster"]
    cells = {row["id"]: row for row in view["checks"]}
    assert cells["MLF-004"]["cluster"] == "passed"
    assert cells["CLU-001"]["cluster"] == "absent"
    assert "Two vantages: workspace and cluster" in next(
        t for n, t in run.artifact_texts().items() if n.endswith(".html")
    )
    assert "cluster vantage (run " in run.output


def test_job_cannot_reach_mlflow(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    # What an egress rule or a NetworkPolicy does: the workspace reaches MLflow, the job does not.
    profile = cluster_profile(
        tmp_path, overrides={"mlflow": {"tracking_uri": sandbox_env["SANDBOX_FAULT_REFUSED_URL"]}}
    )
    run = suite("-m", "cluster or mlflow", profile=profile)  # the workspace's MLF column, for diff's reading
    assert run.check("CLU-002")["outcome"] == "passed", run.output[-3000:]
    assert run.check("CLU-003")["outcome"] == "failed"
    assert "fail from inside the cluster: MLF-001" in message(run, "CLU-003")
    assert run.check("CLU-004")["outcome"] == "failed"
    assert "the job could not log to MLflow" in message(run, "CLU-004")
    assert run.check("CLU-005")["outcome"] == "failed"
    assert "the job could not log to MLflow" in message(run, "CLU-005")
    assert "passes outside Kubernetes" in (run.results["vantages"]["hint"] or "")


def test_a_trial_fails(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    # The job logs to an experiment whose artifact store is a bucket that does not exist: each trial's artifact fails.
    broken = sandbox_env["SANDBOX_MLFLOW_BROKEN_ARTIFACTS_EXPERIMENT"]
    run = suite(*SELECT, profile=cluster_profile(tmp_path, overrides={"mlflow": {"experiment": broken}}))
    assert run.check("CLU-004")["outcome"] == "failed", run.output[-3000:]
    assert "trial 0 failed in the job:" in message(run, "CLU-004")
    assert "artifact" in message(run, "CLU-004").lower()


def test_results_never_arrive_within_the_budget(suite: Any, tmp_path: Path) -> None:
    run = suite(*SELECT, profile=cluster_profile(tmp_path, timeout=0.5))
    assert run.check("CLU-001")["outcome"] == "passed", run.output[-3000:]
    assert run.check("CLU-002")["outcome"] == "failed"
    assert "no results within 1 s (the run's budget): the job is still" in message(run, "CLU-002")
    for check_id in ("CLU-003", "CLU-004", "CLU-005"):
        assert run.check(check_id)["blocked_by"] == "CLU-002"


def test_submission_refused(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    # The new CLI, not logged in: the orchestrator refuses the job; nothing waits for it.
    profile = cluster_profile(tmp_path)
    profile.write_text(profile.read_text() + f"runai: {{cli: '{sandbox_env['SANDBOX_RUNAI_NEW_CLI_NOLOGIN']}'}}\n")
    run = suite(*SELECT, profile=profile)
    assert run.check("CLU-001")["outcome"] == "failed", run.output[-3000:]
    assert "the submission was refused: " in message(run, "CLU-001")
    assert "training submit" in run.check("CLU-001")["evidence"]["submitted"]
    for check_id in ("CLU-002", "CLU-003", "CLU-004", "CLU-005"):
        assert run.check(check_id)["blocked_by"] == "CLU-001", (check_id, message(run, check_id))
    assert "vantages" not in run.results


def job_profile(directory: Path, name: str, **section: Any) -> Path:
    """The same platform without Run:ai: the vantage submits a batch/v1 Job through the Kubernetes API."""
    path = cluster_profile(directory, name, **section)
    path.write_text(path.read_text() + "orchestrator: polyaxon\n")
    return path


def test_a_kubernetes_job_with_the_platforms_secrets(suite: Any, tmp_path: Path) -> None:
    run = suite(*SELECT, profile=job_profile(tmp_path, "job.yaml", secrets=["s3-credentials"]))
    for check_id in ("CLU-001", "CLU-002", "CLU-003", "CLU-004", "CLU-005"):
        assert run.check(check_id)["outcome"] == "passed", (check_id, message(run, check_id), run.output[-4000:])
    assert run.check("CLU-001")["evidence"]["submitted"].startswith("POST batch/v1 Job ")
    assert run.results["vantages"]["cluster"]["summary"]["passed"] >= 10


def test_a_secret_the_job_reads_is_missing(suite: Any, tmp_path: Path) -> None:
    profile = job_profile(tmp_path, "nosecret.yaml", secrets=["no-such-secret"], timeout=15)
    run = suite(*SELECT, profile=profile)
    assert run.check("CLU-001")["outcome"] == "passed", run.output[-3000:]
    assert run.check("CLU-002")["outcome"] == "failed"
    assert "no results within 15 s (the run's budget): the job is still" in message(run, "CLU-002")
    assert "no-such-secret" in message(run, "CLU-002")
