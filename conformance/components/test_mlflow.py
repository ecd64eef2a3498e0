"""MLF: can this workspace log an MLflow run, as the guide's src/mlflow_test.py does?

The checks build on each other: the server answers (MLF-001), it accepts
this workspace's credentials (MLF-002), the profile's experiment can be set
and written (MLF-003), the smoke test's run reads back complete (MLF-004),
the experiment's artifact store takes an upload (MLF-005). A check whose
prerequisite failed reports ``blocked by`` it instead of failing again.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import transport
from conformance.checks import Blocked, ConformanceWarning, check, expect
from conformance.clients.mlflow import (  # the SDK itself is imported when the fixture connects
    METRICS,
    PARAMS,
    RUN_TAG,
    STEPS,
    CallFailed,
    Experiment,
    MlflowClient,
    artifact_store,
    client_distribution,
    client_newer,
    version_tuple,
)
from conformance.profile import Profile

NOT_GRANTED = (
    "the server's default permission is NO_PERMISSIONS and your user was not granted this experiment:"
    " ask the MLOps team for EDIT on it, or use the experiment name they gave you"
)
POWERSHELL = (
    "PowerShell: `$MLFLOW_TRACKING_USERNAME = ...` sets a shell variable, not an environment variable;"
    " use `$Env:MLFLOW_TRACKING_USERNAME = ...` (bash: `export MLFLOW_TRACKING_USERNAME=...`)"
)

ARTIFACT_PHASE = {
    "log_artifact": "artifact upload fails",
    "list_artifacts": "artifact listing fails",
    "download_artifacts": "artifact download fails",
}

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def mlflow_authenticated(mlflow: MlflowClient) -> MlflowClient:
    failure = mlflow.authenticate()
    if failure is not None:
        raise Blocked("MLF-002", str(failure))
    return mlflow


@pytest.fixture(scope="session")
def mlflow_runs(mlflow: MlflowClient) -> Iterator[MlflowClient]:
    """Deletes, at the end of the session, the runs this session created (tagged with its run id)."""
    yield mlflow
    failures = mlflow.cleanup()
    if failures:
        pytest.fail(f"cleanup: could not delete a run of this conformance run: {failures[0]}", pytrace=False)


@pytest.fixture(scope="session")
def mlflow_writable(mlflow_authenticated: MlflowClient, mlflow_runs: MlflowClient) -> Experiment:
    """The profile's experiment, once a run could be created in it."""
    found = mlflow_authenticated.open_experiment()
    if not isinstance(found, Experiment):
        raise Blocked("MLF-003", str(found))
    if found.lifecycle_stage != "active":
        raise Blocked("MLF-003", f"experiment {found.name} is {found.lifecycle_stage}")
    probe = mlflow_authenticated.write_probe(found.experiment_id)
    if not isinstance(probe, str):
        raise Blocked("MLF-003", str(probe))
    return found


def _timings(mlflow: MlflowClient, evidence: dict[str, Any]) -> None:
    evidence["seconds"] = dict(mlflow.timings)


# --------------------------------------------------------------------------- checks


@check(
    "MLF-001",
    """
    GET <tracking_uri>/health must answer 200 "OK" (the server's own liveness probe). A 404 means the
    tracking URI's path is wrong (an ingress prefix missing or extra); check it with the MLOps team.
    """,
)
def test_health(mlflow: MlflowClient, evidence: dict[str, Any]) -> None:
    answer = mlflow.health()
    evidence.update({"url": answer.url, "status": answer.status, "seconds": answer.elapsed})
    expect(
        answer.status == 200 and answer.text.strip().upper() == "OK",
        expected=f"GET {answer.url} answers 200 OK",
        actual=f"HTTP {answer.status}: {transport.quote(answer.text)[:80]!r}",
        hint="404: the tracking URI has the wrong path; other: the URI points at something that is not MLflow",
    )


@check(
    "MLF-002",
    """
    Export your MLflow username and password before running (bash: export MLFLOW_TRACKING_USERNAME=...
    MLFLOW_TRACKING_PASSWORD=...; PowerShell: $Env:MLFLOW_TRACKING_USERNAME=...), or set mlflow.username
    and mlflow.password in the profile. A 401 means the server refused them: ask the MLOps team to reset
    your MLflow password.
    """,
)
def test_authentication(mlflow: MlflowClient, evidence: dict[str, Any]) -> None:
    creds = mlflow.credentials
    evidence.update({"username": creds.username, "username_from": creds.username_from})
    evidence["password_from"] = creds.password_from
    failure = mlflow.authenticate()
    _timings(mlflow, evidence)
    if creds.problems:
        expect(
            failure is None,
            expected="MLflow credentials in the environment (or the profile), accepted by the server",
            actual="credentials missing: "
            + "; ".join(creds.problems)
            + (f"; the server answered {failure}" if failure else ""),
            hint=POWERSHELL,
        )
        evidence["warning"] = "the server accepted requests without credentials: it does not enforce authentication"
        warnings.warn(ConformanceWarning(f"MLF-002: {evidence['warning']}"), stacklevel=1)
        return
    expect(
        failure is None,
        expected=f"the server accepts user {creds.username!r} ({creds.password_from})",
        actual=f"bad credentials: {failure}" if failure and failure.unauthenticated else str(failure),
        hint="wrong username or password, or the password was reset"
        if failure and failure.unauthenticated
        else "the server failed an authenticated read; see the status and code",
    )


@pytest.mark.writes
@check(
    "MLF-003",
    """
    The experiment named in the profile (mlflow.experiment) must exist or be creatable, and your user must
    be allowed to create runs in it. On the platform new users have no permission on any experiment until
    the MLOps team grants one (EDIT); ask for it, quoting the experiment name.
    """,
)
def test_experiment_writable(
    mlflow_authenticated: MlflowClient, mlflow_runs: MlflowClient, evidence: dict[str, Any]
) -> None:
    mlflow = mlflow_authenticated
    name = mlflow.section.experiment
    experiment = mlflow.open_experiment()
    evidence["experiment"] = name
    if not isinstance(experiment, Experiment):
        _timings(mlflow, evidence)
        expect(
            False,
            expected=f"experiment {name!r} can be read or created by user {mlflow.credentials.username!r}",
            actual=f"no permission on the experiment: {experiment}" if experiment.forbidden else str(experiment),
            hint=NOT_GRANTED if experiment.forbidden else None,
        )
        return
    evidence.update(
        {
            "experiment_id": experiment.experiment_id,
            "artifact_location": experiment.artifact_location,
            "created_by_this_run": experiment.created,
        }
    )
    expect(
        experiment.lifecycle_stage == "active",
        expected=f"experiment {name!r} is active",
        actual=f"it is {experiment.lifecycle_stage} (a deleted experiment's name stays taken)",
        hint="restore it in the MLflow UI, or use another experiment name",
    )
    probe = mlflow.write_probe(experiment.experiment_id)
    _timings(mlflow, evidence)
    if isinstance(probe, str):
        evidence["probe_run_id"] = probe
        return
    expect(
        False,
        expected=f"user {mlflow.credentials.username!r} can create a run in experiment {name!r}",
        actual=f"no permission on the experiment: {probe}" if probe.forbidden else str(probe),
        hint=NOT_GRANTED if probe.forbidden else None,
    )


@pytest.mark.writes
@check(
    "MLF-004",
    """
    The guide's smoke test (src/mlflow_test.py) must work from this workspace: a run with two params,
    two metrics over four steps and a text artifact, all readable back. If only the artifact fails,
    see MLF-005 for the artifact store.
    """,
)
def test_smoke_run(
    mlflow_authenticated: MlflowClient, mlflow_writable: Experiment, tmp_path: Path, evidence: dict[str, Any]
) -> None:
    mlflow = mlflow_authenticated
    result = mlflow.smoke_test(mlflow_writable.experiment_id, tmp_path)
    evidence.update(
        {
            "experiment_id": mlflow_writable.experiment_id,
            "mlflow_run_id": result.run_id,
            "artifact_uri": result.artifact_uri,
            "artifacts": result.artifacts,
        }
    )
    _timings(mlflow, evidence)
    if result.failed is not None:
        phrase = ARTIFACT_PHASE.get(result.failed.operation)
        expect(
            False,
            expected="the smoke run is created, logged to and read back",
            actual=f"tracking works, {phrase}: {result.failed}" if phrase else str(result.failed),
            hint="see MLF-005 for the artifact store" if phrase else None,
        )
    want_history = {key: [(step, value_at(step)) for step in STEPS] for key, value_at in METRICS.items()}
    mismatches = [
        name
        for name, ok in (
            ("tag conformance", result.tags.get(RUN_TAG) == mlflow.run_id),
            ("params", result.params == PARAMS),
            ("metric history", result.metric_history == want_history),
            ("status", result.status == "FINISHED"),
            ("artifact list", "text_artifact.txt" in result.artifacts),
            ("artifact content", result.downloaded == result.expected_text),
        )
        if not ok
    ]
    expect(
        not mismatches,
        expected="params, metric history (4 steps), tag, status and artifact read back as logged",
        actual="differs: " + ", ".join(mismatches),
        hint="the server or a proxy in front of it alters or drops data",
    )


@pytest.mark.writes
@check(
    "MLF-005",
    """
    Artifacts must upload from the workspace. mlflow-artifacts: locations go through the server and need
    nothing more. s3:// locations need boto3, MLFLOW_S3_ENDPOINT_URL and ECS keys in the workspace's
    environment; gs:// need google-cloud-storage and GOOGLE_APPLICATION_CREDENTIALS. If the upload fails
    while tracking works, the server's artifact store (bucket, its credentials) is broken: send this
    report to the MLOps team.
    """,
)
def test_artifact_store(
    mlflow_authenticated: MlflowClient, mlflow_writable: Experiment, tmp_path: Path, evidence: dict[str, Any]
) -> None:
    mlflow = mlflow_authenticated
    store = artifact_store(mlflow_writable.artifact_location, os.environ)
    evidence.update(
        {
            "experiment_id": mlflow_writable.experiment_id,
            "artifact_location": mlflow_writable.artifact_location,
            "store": store.kind,
        }
    )
    expect(
        not store.missing,
        expected=f"this workspace has what a {store.scheme}: artifact location needs",
        actual=f"{store.kind} artifact location {mlflow_writable.artifact_location}; missing: "
        + "; ".join(store.missing),
        hint="the experiment was created with a direct bucket location (legacy guides)",
    )
    try:
        run_id = mlflow.start_run(mlflow_writable.experiment_id, "artifact")
    except CallFailed as exc:
        raise Blocked("MLF-003", str(exc.failure)) from None
    text = f"conformance artifact probe {mlflow.run_id}\n"
    result = mlflow.log_artifact_text(run_id, text, tmp_path)
    evidence.update({"mlflow_run_id": run_id, "artifact_uri": result.artifact_uri})
    _timings(mlflow, evidence)
    phase = ARTIFACT_PHASE.get(result.failed.operation, "artifact call fails") if result.failed else ""
    expect(
        result.failed is None,
        expected=f"an artifact uploads to and downloads from {result.artifact_uri or store.scheme + ':'}",
        actual=f"tracking works (run {run_id} created), {phase}: {result.failed}",
        hint="proxied: the server's bucket or its credentials; direct: the bucket, your keys or the endpoint",
    )
    expect(
        result.downloaded == text,
        expected="the downloaded artifact has the uploaded content",
        actual=f"{len(result.downloaded or '')} characters that differ from the {len(text)} uploaded",
    )


@check(
    "MLF-006",
    """
    Reports the MLflow client and server versions. The server must answer GET /version with its version;
    a client newer than the server is a warning: pin mlflow-skinny to the server's version if calls fail.
    """,
)
def test_versions(mlflow: MlflowClient, profile: Profile, evidence: dict[str, Any]) -> None:
    answer = mlflow.server_version()
    client = mlflow.client_version
    evidence.update({"client": client_distribution(), "guide_version": profile.guide_version})
    if answer.status in (401, 403, 404):  # no such endpoint, or credentials MLF-002 reports on
        evidence["server"] = f"unknown (GET /version answered {answer.status})"
        evidence["warning"] = f"server version unknown: GET /version answered {answer.status}"
        warnings.warn(ConformanceWarning(f"MLF-006: {evidence['warning']}"), stacklevel=1)
        return
    server = transport.quote(answer.text).strip()
    evidence["server"] = server
    expect(
        answer.status == 200 and version_tuple(server) is not None,
        expected=f"GET {answer.url} answers an MLflow version",
        actual=f"HTTP {answer.status}: {server[:60]!r}",
        hint="the tracking URI points at something that is not an MLflow server (a proxy page, another service)",
    )
    if client_newer(client, server):
        evidence["warning"] = f"client {client} is newer than server {server}"
        warnings.warn(ConformanceWarning(f"MLF-006: {evidence['warning']}"), stacklevel=1)
