"""Training and tuning as the guide does it, run inside the cluster vantage's job.

The guide's training config tunes with Optuna (``hydra-optuna-sweeper``: ``n_trials: 3``, ``lr`` and
``train_bs``) and logs each trial to MLflow. Here: an Optuna study of ``trials`` trials on a tiny
dataset the suite ships (``conformance/data/tuning.csv``: y = 2x + 0.5 with noise), a linear model
fitted by mini-batch gradient descent, each trial a nested MLflow run under one parent run with its
parameters, a ``test_loss`` metric and a ``trial.json`` artifact (in the experiment's artifact store,
the bucket). Then ``concurrent_runs`` runs log to the one experiment at the same time (the tracking
backend's locks and rate limits are real failure modes).

Optuna is imported when the probe runs: it is in the image's lock (requirements-image.lock), not
the workspace's install. Nothing here raises: what failed is written into the summary, which the
workspace's CLU checks read back with MLflow's API.
"""

from __future__ import annotations

import csv
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

from conformance.clients.mlflow import RUN_TAG, CallFailed, MlflowClient

DATASET = Path(__file__).parent / "data" / "tuning.csv"
PARENT_TAG = "mlflow.parentRunId"  # what MLflow's nested runs carry (mlflow.start_run(nested=True))
TRIAL_ARTIFACT = "trial.json"
CONCURRENT_STEPS = 5


def load_dataset(path: Path = DATASET) -> list[tuple[float, float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(float(row["x"]), float(row["y"])) for row in csv.DictReader(handle)]


def fit(rows: list[tuple[float, float]], lr: float, batch: int, epochs: int = 40) -> float:
    """Mean squared error on the held-out quarter after mini-batch gradient descent on the rest."""
    train, test = [r for i, r in enumerate(rows) if i % 4], [r for i, r in enumerate(rows) if not i % 4]
    a = b = 0.0
    for _ in range(epochs):
        for start in range(0, len(train), batch):
            chunk = train[start : start + batch]
            grad_a = sum(2 * (a * x + b - y) * x for x, y in chunk) / len(chunk)
            grad_b = sum(2 * (a * x + b - y) for x, y in chunk) / len(chunk)
            a, b = a - lr * grad_a, b - lr * grad_b
    return sum((a * x + b - y) ** 2 for x, y in test) / len(test)


def _brief(failure: CallFailed | Exception) -> str:
    text = str(failure.failure) if isinstance(failure, CallFailed) else f"{type(failure).__name__}: {failure}"
    return " ".join(text.split())[:300]


def study(conn: MlflowClient, experiment_id: str, trials: int) -> dict[str, Any]:
    """The Optuna study; a summary with the parent run, each trial's state and run, or the error."""
    import optuna  # noqa: PLC0415 - the image's lock has it; the workspace's install does not

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = load_dataset()
    summary: dict[str, Any] = {"experiment_id": experiment_id, "trials": []}
    try:
        parent = conn.start_run(experiment_id, "tuning")
    except CallFailed as exc:
        summary["error"] = f"cannot create the parent run: {_brief(exc)}"
        return summary
    summary["parent_run_id"] = parent
    workdir = Path(tempfile.mkdtemp(prefix="conformance-tuning-"))

    def objective(trial: Any) -> float:
        lr = trial.suggest_float("lr", 0.05, 0.5, log=True)
        batch = trial.suggest_categorical("train_bs", [4, 8, 16])
        record: dict[str, Any] = {"number": trial.number, "state": "FAILED"}
        summary["trials"].append(record)
        run = conn.call(
            "create_run (trial)",
            conn.client.create_run,
            experiment_id,
            run_name=f"conformance-{conn.run_id}-trial-{trial.number}",
            tags={RUN_TAG: conn.run_id, PARENT_TAG: parent, "optuna.trial": str(trial.number)},
        )
        child = record["run_id"] = str(run.info.run_id)
        conn.created_runs.append(child)
        try:
            conn.call("log_param", conn.client.log_param, child, "lr", f"{lr:.5f}")
            conn.call("log_param", conn.client.log_param, child, "train_bs", str(batch))
            loss = fit(rows, lr, batch)
            conn.call("log_metric", conn.client.log_metric, child, "test_loss", loss)
            artifact = workdir / str(trial.number) / TRIAL_ARTIFACT
            artifact.parent.mkdir()
            artifact.write_text(json.dumps({"lr": lr, "train_bs": batch, "test_loss": loss}), encoding="utf-8")
            conn.call("log_artifact", conn.client.log_artifact, child, str(artifact))
        except CallFailed as exc:
            conn.call("set_terminated", conn.client.set_terminated, child, "FAILED")
            record["error"] = _brief(exc)
            raise
        conn.call("set_terminated", conn.client.set_terminated, child)
        record.update({"state": "FINISHED", "value": loss})
        return loss

    found = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=7))
    try:
        found.optimize(objective, n_trials=trials, catch=(CallFailed,))
        done = [t for t in found.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if done:
            best = min(done, key=lambda t: t.value if t.value is not None else float("inf"))
            conn.call("log_metric", conn.client.log_metric, parent, "best_test_loss", float(best.value or 0.0))
            for key, value in best.params.items():
                conn.call("log_param", conn.client.log_param, parent, f"best_{key}", str(value))
        failed = any(record["state"] != "FINISHED" for record in summary["trials"])
        conn.call("set_terminated", conn.client.set_terminated, parent, "FAILED" if failed else "FINISHED")
    except CallFailed as exc:
        summary["error"] = _brief(exc)
    return summary


def concurrent(conn: MlflowClient, experiment_id: str, count: int) -> dict[str, Any]:
    """``count`` runs created and logged to at once, one thread each; each run's id or error."""
    results: list[dict[str, Any]] = [{"index": i} for i in range(count)]
    client = conn.client

    def one(record: dict[str, Any]) -> None:
        try:
            run = client.create_run(
                experiment_id,
                run_name=f"conformance-{conn.run_id}-concurrent-{record['index']}",
                tags={RUN_TAG: conn.run_id, "conformance.concurrent": str(count)},
            )
            record["run_id"] = run_id = str(run.info.run_id)
            for step in range(CONCURRENT_STEPS):
                client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
            client.set_terminated(run_id)
            record["state"] = "FINISHED"
        except Exception as exc:  # noqa: BLE001 - a locked backend or a 429 is what this probe is for
            record["error"] = _brief(exc)

    threads = [threading.Thread(target=one, args=(record,), daemon=True) for record in results]
    with conn.environment():  # once for all threads: the scoped variables are process-wide
        for thread in threads:
            thread.start()
        limit = conn.timeouts.check
        for thread in threads:
            thread.join(limit)
    conn.created_runs.extend(r["run_id"] for r in results if "run_id" in r)
    return {"count": count, "runs": results}


def probe(conn: MlflowClient, trials: int, count: int) -> dict[str, Any]:
    """The study and the concurrent runs, in the profile's experiment; never raises."""
    try:
        experiment = conn.open_experiment()
        if not hasattr(experiment, "experiment_id"):
            return {"error": f"cannot open the experiment: {experiment}", "run_id": conn.run_id}
        summary: dict[str, Any] = {"run_id": conn.run_id, "experiment": conn.section.experiment}
        summary["study"] = study(conn, experiment.experiment_id, trials)
        summary["concurrent"] = concurrent(conn, experiment.experiment_id, count)
        return summary
    except Exception as exc:  # noqa: BLE001 - the job reports, the workspace judges
        return {"error": _brief(exc), "run_id": conn.run_id}
