"""CLU: the cluster vantage. Does the platform run the guide's data preparation and training from inside?

The suite submits its own image as the orchestrator's job, as the guide submits training
(``runai submit`` or the new CLI's ``training submit`` on Run:ai, a Job elsewhere: the project's PVC,
UID 2222, CPU and memory, no retries) (CLU-001). The job runs the in-cluster subset of checks
(``cluster.markers``: the bucket, MLflow) and the tuning probe, and its log carries its results back
within the run's budget (CLU-002); they join this run's report as a second vantage, every check in
two columns (CLU-003 fails when a check fails only inside the cluster: egress, NetworkPolicy, a
missing Secret). From the workspace, MLflow's API then reads back what the job logged: the Optuna
study's parent run and its nested trials with parameters, metric and artifact (CLU-004), and the
runs the job logged at the same time to one experiment (CLU-005).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from conformance import vantage
from conformance.checks import Blocked, CannotEvaluate, Deadline, check, expect, wait_for
from conformance.clients import cluster as client
from conformance.clients.mlflow import CallFailed, MlflowClient
from conformance.profile import LoadedProfile, Profile, read_raw

TUNING_PARENT = "mlflow.parentRunId"


@dataclass
class ClusterRun:
    """The one job of this run: its spec, how it was submitted, how it ended, what it sent back."""

    spec: client.JobSpec
    submitted: str = ""
    refused: str | None = None
    state: client.State | None = None
    seconds: float = 0.0
    log: str | None = None
    log_problem: str | None = None
    document: dict[str, Any] | None = None
    problem: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def _wait_limit(profile: Profile, config: pytest.Config) -> float:
    """The job's time: cluster.timeout, within what is left of the run's --budget."""
    limit = profile.cluster.timeout
    budget = config.getoption("budget")
    started = os.environ.get("CONFORMANCE_RUN_STARTED")
    if budget is not None and started:
        limit = min(limit, float(budget) - (time.time() - float(started)))
    return max(0.0, limit)


def _job_profile(loaded: LoadedProfile) -> str:
    """The profile as the job reads it: extends merged, cluster.overrides laid over its sections."""
    raw = read_raw(loaded.path)
    for section, values in loaded.profile.cluster.overrides.items():
        current = raw.get(section)
        raw[section] = {**current, **values} if isinstance(current, dict) else dict(values)
    return yaml.safe_dump(raw, sort_keys=False)


@pytest.fixture(scope="session")
def cluster_run(
    cluster: client.ClusterClient, loaded_profile: LoadedProfile, run_id: str, request: pytest.FixtureRequest
) -> Iterator[ClusterRun]:
    """Submits the job (once); deletes it at the end of the session."""
    profile = loaded_profile.profile
    seconds = _wait_limit(profile, request.config)
    extra = {}
    if os.environ.get("CONFORMANCE_SANDBOX_STATE"):
        # Only under the sandbox, whose cluster runs on this machine: its pods reach its services as this run does.
        extra["CONFORMANCE_SANDBOX_STATE"] = os.environ["CONFORMANCE_SANDBOX_STATE"]
    spec = client.job_spec(
        profile, _job_profile(loaded_profile), loaded_profile.name, run_id, seconds=seconds, extra_env=extra
    )
    found = ClusterRun(spec)
    found.submitted, found.refused = cluster.submit(spec)
    yield found
    problems = cluster.cleanup()
    if problems:
        pytest.fail(f"cleanup: could not delete the cluster vantage's job {problems[0]}", pytrace=False)


@pytest.fixture(scope="session")
def cluster_results(
    cluster_run: ClusterRun, cluster: client.ClusterClient, request: pytest.FixtureRequest
) -> ClusterRun:
    """Waits for the job (within the budget) and reads its results from its log, once."""
    if cluster_run.refused is not None:
        raise Blocked("CLU-001", cluster_run.refused)
    if cluster_run.state is None:
        started = time.monotonic()
        limit = max(0.0, min(cluster_run.spec.seconds, _wait_limit(cluster.profile, request.config)))

        def ended() -> tuple[bool, client.State]:
            state = cluster.state(cluster_run.spec.name)
            return state.phase != "running", state

        try:
            cluster_run.state = wait_for(ended, timeout=limit, describe="the job ends", interval=0.5)
        except Exception as exc:  # noqa: BLE001 - wait_for's NonConformance names the last state seen
            cluster_run.state = client.State("running", str(getattr(exc, "actual", exc)))
        cluster_run.seconds = round(time.monotonic() - started, 1)
        if cluster_run.state.phase != "running":
            cluster_run.log, cluster_run.log_problem = cluster.log(cluster_run.spec.name)
            if cluster_run.log is not None:
                cluster_run.document, cluster_run.problem = client.results_of(cluster_run.log)
    return cluster_run


@pytest.mark.writes
@check(
    "CLU-001",
    """
    The orchestrator must accept the suite's image as a job with the guide's flags (the project's PVC, UID 2222,
    CPU and memory). Push the image to the platform's registry (scripts/build-image.sh, then `docker push` to
    <registry.project_path>/conformance-suite:<version>, or set cluster.image), check that you may submit to the
    project (`runai submit` / `kubectl auth can-i create jobs`), and read the refusal quoted here.
    """,
)
def test_job_submitted(cluster_run: ClusterRun, cluster: client.ClusterClient, evidence: dict[str, Any]) -> None:
    spec = cluster_run.spec
    evidence.update(
        {
            "job": spec.name,
            "image": spec.image,
            "through": cluster.how,
            "submitted": cluster_run.submitted,
            "secrets": spec.secrets,
            "pvc": spec.pvc,
            "seconds_allowed": spec.seconds,
        }
    )
    expect(
        cluster_run.refused is None,
        expected=f"the orchestrator accepts job {spec.name} (image {spec.image}) with the guide's flags",
        actual=f"the submission was refused: {cluster_run.refused}",
        hint="no permission to submit, an unknown project or namespace, or a quota",
    )


@pytest.mark.writes
@check(
    "CLU-002",
    """
    The job must start, run the in-cluster checks and hand back its results within the run's budget. A pod that
    never starts says why (ImagePullBackOff: the cluster cannot pull the image from the registry, check the
    project's image pull secret; CreateContainerConfigError: a Secret it reads is missing). A job that runs out
    of time: raise cluster.timeout or --budget, or look for a pending pod (no quota, no node). Read the job's
    log (`runai logs <job>` / `kubectl logs job/<job>`).
    """,
)
def test_results_collected(
    cluster_results: ClusterRun, request: pytest.FixtureRequest, evidence: dict[str, Any]
) -> None:
    found = cluster_results
    if found.document is not None:  # travels with this check's report to the run's controller (xdist too)
        request.node.stash[vantage.DOCUMENT_KEY] = found.document
    state = found.state or client.State("running", "not waited for")
    evidence.update({"job": found.spec.name, "phase": state.phase, "detail": state.detail, "seconds": found.seconds})
    if found.document is not None:
        evidence.update({"run_id": found.document.get("run_id"), "summary": found.document.get("summary")})
    if state.phase == "running":
        actual = f"no results within {found.spec.seconds} s (the run's budget): the job is still {state.detail}"
    elif found.log is None:
        actual = f"the job ended ({state.detail}) but its log could not be read: {found.log_problem}"
    else:
        actual = f"the job ended ({state.detail}) without results: {found.problem}"
    expect(
        found.document is not None,
        expected=f"job {found.spec.name} ends within {found.spec.seconds} s and its log carries its results",
        actual=actual,
    )


def _document(run: ClusterRun) -> dict[str, Any]:
    if run.document is None:
        raise Blocked("CLU-002", run.problem or "the job's results did not come back")
    return run.document


@pytest.mark.writes  # it reads the job CLU-001 submits
@check(
    "CLU-003",
    """
    What works from the workspace must work from a job. A check that fails only inside the cluster points at
    the cluster's egress (a firewall or proxy between the nodes and the service), a NetworkPolicy of the
    namespace, DNS inside the cluster, or a Secret the job reads that is missing: compare the two columns in the
    report, and send the failing check's message to the platform team.
    """,
)
def test_cluster_vantage(cluster_results: ClusterRun, evidence: dict[str, Any]) -> None:
    document = _document(cluster_results)
    checks = [c for c in document.get("checks", []) if isinstance(c, dict)]
    failing = [c for c in checks if c.get("outcome") in ("failed", "error")]
    evidence.update({"checks": len(checks), "summary": document.get("summary"), "error": document.get("error")})
    expect(
        checks and not document.get("error"),
        expected="the in-cluster checks ran in the job",
        actual=f"no check ran in the job: {document.get('error') or 'the selection was empty'}",
        hint=f"the in-cluster selection is cluster.markers: {cluster_results.spec.env.get(client.ENV_MARKERS)!r}",
    )
    lines = [f"{c.get('id')}: {_first_line(c)}" for c in failing]
    expect(
        not failing,
        expected="every in-cluster check passes, as from the workspace",
        actual=f"{len(failing)} check(s) fail from inside the cluster: " + "; ".join(lines[:5]),
        hint="pods do not use the workspace's VPN or proxy: look at the cluster's egress, the namespace's"
        " NetworkPolicy, DNS inside the cluster and the Secrets the job reads",
    )


def _first_line(record: dict[str, Any]) -> str:
    if record.get("blocked_by") and not record.get("message"):
        return f"blocked by {record['blocked_by']}"
    lines = [line.strip() for line in str(record.get("message", "")).splitlines() if line.strip()]
    actual = next((line for line in lines if line.startswith("actual:")), lines[0] if lines else "failed")
    return actual[:200]


# --------------------------------------------------------------------------- read back from the workspace


@pytest.fixture(scope="session")
def readback(mlflow: MlflowClient) -> Iterator[MlflowClient]:
    """The workspace's MLflow client; deletes, at the end, the runs the job logged (read back here)."""
    yield mlflow
    problems = mlflow.cleanup()
    if problems:
        pytest.fail(f"cleanup: could not delete a run the cluster vantage logged: {problems[0]}", pytrace=False)


def _tuning(run: ClusterRun) -> dict[str, Any]:
    tuning = _document(run).get("tuning")
    if not isinstance(tuning, dict):
        raise CannotEvaluate("the job's results hold no tuning summary (an older suite image?)")
    return tuning


def _mlflow_problem(tuning: dict[str, Any]) -> str | None:
    error = tuning.get("error") or (tuning.get("study") or {}).get("error")
    return f"the job could not log to MLflow: {error}" if error else None


@pytest.mark.writes
@check(
    "CLU-004",
    """
    Training jobs must tune and log as the guide does: an Optuna study whose trials are nested MLflow runs with
    their parameters, metric and artifact in the bucket. When the job cannot reach MLflow, look at the cluster's
    egress to the tracking server and the MLflow credentials the job gets (cluster.env, the project's Secrets);
    when a trial fails on its artifact, at the experiment's artifact store (MLF-005 from the workspace).
    """,
)
def test_tuning_study(cluster_results: ClusterRun, readback: MlflowClient, evidence: dict[str, Any]) -> None:
    tuning = _tuning(cluster_results)
    study = tuning.get("study") or {}
    trials = cluster_results.spec.env.get(client.ENV_TRIALS, "3")
    evidence.update({"experiment": tuning.get("experiment"), "study": study})
    problem = _mlflow_problem(tuning)
    expect(problem is None, expected="the job logs its Optuna study to MLflow", actual=problem or "")
    failed = [t for t in study.get("trials", []) if t.get("state") != "FINISHED"]
    expect(
        not failed,
        expected=f"the study's {trials} trials finish",
        actual=f"trial {failed[0].get('number') if failed else ''} failed in the job: "
        f"{failed[0].get('error', 'no error recorded') if failed else ''}",
    )
    parent = str(study.get("parent_run_id"))
    try:
        children = readback.call(
            "search_runs",
            readback.client.search_runs,
            [str(study.get("experiment_id"))],
            filter_string=f"tags.{TUNING_PARENT} = '{parent}'",
        )
        readback.created_runs.extend([parent, *(str(c.info.run_id) for c in children)])
        rows = []
        for child in children:
            artifacts = readback.call("list_artifacts", readback.client.list_artifacts, child.info.run_id)
            rows.append(
                {
                    "run": child.info.run_name,
                    "status": child.info.status,
                    "params": sorted(child.data.params),
                    "metrics": sorted(child.data.metrics),
                    "artifacts": [f.path for f in artifacts],
                }
            )
    except CallFailed as exc:
        raise CannotEvaluate(f"reading the study back from the workspace: {exc.failure}") from None
    evidence["read_back"] = rows
    complete = [
        r
        for r in rows
        if r["status"] == "FINISHED"
        and {"lr", "train_bs"} <= set(r["params"])
        and "test_loss" in r["metrics"]
        and "trial.json" in r["artifacts"]
    ]
    expect(
        len(complete) == int(trials),
        expected=f"parent run {parent} has {trials} nested runs with lr, train_bs, test_loss and trial.json",
        actual=f"{len(complete)} of {len(rows)} nested run(s) read back complete from the workspace",
    )


@pytest.mark.writes
@check(
    "CLU-005",
    """
    Several jobs log to one experiment at once (parallel trials, a team's runs): the tracking server must take
    them all. Runs missing or failed with "database is locked" or 429 mean the tracking server's backend store or
    a rate limit in front of it cannot take concurrent writers: send the message to the MLOps team.
    """,
)
def test_concurrent_runs(cluster_results: ClusterRun, readback: MlflowClient, evidence: dict[str, Any]) -> None:
    tuning = _tuning(cluster_results)
    problem = _mlflow_problem(tuning)
    expect(problem is None, expected="the job logs its runs to MLflow", actual=problem or "")
    concurrent = tuning.get("concurrent") or {}
    runs = concurrent.get("runs", [])
    errors = [r for r in runs if r.get("error")]
    evidence.update({"count": concurrent.get("count"), "errors": [r["error"] for r in errors][:5]})
    expect(
        not errors,
        expected=f"{concurrent.get('count')} runs logged to one experiment at once all succeed",
        actual=f"{len(errors)} of {len(runs)} concurrent run(s) failed: {errors[0]['error'] if errors else ''}",
    )
    deadline = Deadline.after(readback.timeouts.check)
    seen = []
    try:
        for record in runs:
            if deadline.left() <= 0:
                raise CannotEvaluate("reading the concurrent runs back took longer than timeouts.check")
            found = readback.call("get_run", readback.client.get_run, record["run_id"])
            history = readback.call("get_metric_history", readback.client.get_metric_history, record["run_id"], "loss")
            readback.created_runs.append(record["run_id"])
            seen.append({"status": found.info.status, "steps": len(history)})
    except CallFailed as exc:
        raise CannotEvaluate(f"reading the concurrent runs back from the workspace: {exc.failure}") from None
    evidence["read_back"] = seen
    whole = [s for s in seen if s["status"] == "FINISHED" and s["steps"] == 5]
    expect(
        len(whole) == len(runs) and runs,
        expected=f"each of the {len(runs)} concurrent runs reads back FINISHED with its 5 logged steps",
        actual=f"{len(whole)} of {len(runs)} read back whole: {seen}",
    )
