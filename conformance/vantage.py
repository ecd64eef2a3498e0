"""The cluster vantage: what the job runs (``python -m conformance.vantage``) and how its results join the report.

In the job: the profile from the environment (``CONFORMANCE_PROFILE_B64``), the tuning probe
(``conformance.tuning``), then the in-cluster subset of checks (``cluster.markers``) with pytest;
the results document, the probe's summary under ``tuning``, is printed as the log's last line
(``conformance.clients.cluster.RESULTS_MARK``) and, when the PVC is mounted, written beside it.

In the workspace's run: CLU-002 keeps the document (:func:`keep`); at the end of the run
:func:`attach` adds ``vantages`` to the results JSON: each check in two columns, workspace and
cluster, and ``diff``'s reading of what differs (egress, NetworkPolicy, a missing Secret). The
existing keys are unchanged; a reader that knows nothing of vantages sees the workspace's run.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from conformance import fleet, results
from conformance.clients import cluster as job

CLUSTER_KEY = pytest.StashKey[dict[str, Any]]()  # on the controller's config: the job's results document
DOCUMENT_KEY = pytest.StashKey[dict[str, Any]]()  # on CLU-002's item: the same, until its report carries it
ROOT = Path(__file__).resolve().parent.parent  # /opt/conformance in the image


# --------------------------------------------------------------------------- the report side


def keep(config: pytest.Config, document: dict[str, Any]) -> None:
    config.stash[CLUSTER_KEY] = document


def _outcomes(run: results.Run) -> dict[tuple[str, str], dict[str, Any]]:
    return {check.key: {"outcome": check.outcome, "message": fleet.headline(check)} for check in run.checks}


def two_vantages(workspace: results.Run, cluster: dict[str, Any]) -> dict[str, Any]:
    """Every check in two columns, with fleet's ``diff`` reading of a difference."""
    inside = results.parse({**cluster, "vantage": {**cluster.get("vantage", {}), "in_cluster": True}}, "cluster")
    diffs = fleet.differences(workspace, inside)
    there_all, here_all = _outcomes(inside), _outcomes(workspace)
    rows = []
    for key in sorted(there_all.keys() | here_all.keys()):
        here, there = here_all.get(key), there_all.get(key)
        rows.append(
            {
                "id": key[0],
                "param": key[1],
                "workspace": here["outcome"] if here else "absent",
                "cluster": there["outcome"] if there else "absent",
                "cluster_message": there["message"] if there and there["outcome"] in results.PROBLEMS else "",
            }
        )
    return {
        "names": ["workspace", "cluster"],
        "cluster": {
            "run_id": inside.run_id,
            "hostname": inside.vantage.hostname,
            "summary": cluster.get("summary"),
            "tuning": cluster.get("tuning"),
        },
        "checks": rows,
        "differences": sum(1 for row in rows if row["workspace"] != row["cluster"] and "absent" not in row.values()),
        "hint": fleet._vantage_hint(workspace, inside, diffs),  # diff's own reading, not a copy of it
    }


def view(config: pytest.Config, run: results.Run) -> dict[str, Any] | None:
    """The two-vantage view of ``run`` when the cluster's results came back, else None."""
    cluster = config.stash.get(CLUSTER_KEY, None)
    if cluster is None:
        return None
    try:
        return two_vantages(run, cluster)
    except results.ResultsError as exc:
        return {"error": str(exc)}


def attach(config: pytest.Config, run: results.Run) -> results.Run:
    """``run`` with ``vantages`` added when the cluster's results came back (the JSON writer calls it)."""
    found = view(config, run)
    return run if found is None else results.parse({**run.document(), "vantages": found}, run.path)


def terminal_lines(config: pytest.Config, run: results.Run) -> list[str]:
    """The two-vantage view for the terminal: the checks whose outcome differs, and the hint."""
    found = view(config, run)
    if not found or "checks" not in found:
        return []
    lines = [f"{'CHECK':<9} {'PARAM':<24} {'WORKSPACE':<10} CLUSTER"]
    both = [row for row in found["checks"] if "absent" not in (row["workspace"], row["cluster"])]
    for row in both:
        if row["workspace"] != row["cluster"]:
            lines.append(f"{row['id']:<9} {row['param'][:24]:<24} {row['workspace']:<10} {row['cluster']}")
    summary = found["cluster"].get("summary") or {}
    shown = ", ".join(f"{v} {k}" for k, v in summary.items() if v) or f"{len(found['checks'])} check(s)"
    head = f"cluster vantage (run {found['cluster'].get('run_id')}): {shown}; {len(both)} ran in both"
    same = f"each of the {len(both)} has the same outcome from both vantages"
    return [head, *(lines if len(lines) > 1 else [same])] + ([found["hint"]] if found.get("hint") else [])


def html_table(config: pytest.Config, run: results.Run) -> str | None:
    """The two columns for the HTML report's first screen: the checks that ran in both places."""
    from html import escape  # noqa: PLC0415 - only when the HTML report is written

    found = view(config, run)
    if not found or "checks" not in found:
        return None
    both = [r for r in found["checks"] if "absent" not in (r["workspace"], r["cluster"])]
    body = "".join(
        f"<tr><td>{escape(r['id'])}</td><td>{escape(r['param'])}</td><td>{escape(r['workspace'])}</td>"
        f"<td>{escape(r['cluster'])}</td><td>{escape(r['cluster_message'])}</td></tr>"
        for r in both
    )
    hint = f"<p>{escape(found['hint'])}</p>" if found.get("hint") else ""
    only = len(found["checks"]) - len(both)
    rest = f"<p>{only} other check(s) ran in one place only (the job runs <code>cluster.markers</code>).</p>"
    return (
        f'<div class="box" id="vantages"><h3>Two vantages: workspace and cluster '
        f"(run {escape(str(found['cluster'].get('run_id')))})</h3>"
        f"{hint}<table><tr><th>Check</th><th>Param</th><th>Workspace</th><th>Cluster</th>"
        f"<th>Cluster message</th></tr>{body}</table>{rest if only else ''}</div>"
    )


# --------------------------------------------------------------------------- the job side


def _document_or_stub(path: Path, problem: str, run_id: str) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(found, dict):
            return found
    except (OSError, ValueError):
        pass
    return {"schema": results.SCHEMA, "run_id": run_id, "checks": [], "error": problem}


def main(environ: dict[str, str] | None = None) -> int:
    """The job's entry point: tuning, the in-cluster checks, the results line. 0 when a document came out."""
    env = dict(os.environ if environ is None else environ)
    if env.get("CONFORMANCE_SANDBOX_STATE"):  # the sandbox's simulated cluster: its services' variables
        from conformance import sandbox  # noqa: PLC0415 - only under the sandbox

        os.environ["CONFORMANCE_SANDBOX_STATE"] = env["CONFORMANCE_SANDBOX_STATE"]
        env.update(sandbox.attached() or {})
        os.environ.update(env)
    try:
        raw = base64.b64decode(env[job.ENV_PROFILE]).decode()
    except (KeyError, ValueError) as exc:
        print(f"conformance.vantage: no usable {job.ENV_PROFILE} in the environment ({exc})", file=sys.stderr)
        return 2
    run_id = env.get(job.ENV_RUN_ID, "cluster")
    work = Path(tempfile.mkdtemp(prefix="conformance-vantage-"))
    profile_path = work / f"{env.get(job.ENV_PROFILE_NAME, 'cluster')}.yaml"
    profile_path.write_text(raw, encoding="utf-8")
    deadline = float(env.get(job.ENV_DEADLINE, "600"))
    tuning = _tuning(profile_path, run_id, env)
    results = work / "results.json"
    dropped = ("CONFORMANCE_RUN_STARTED", "CONFORMANCE_PROFILE", "PYTEST_ADDOPTS")
    child = {k: v for k, v in env.items() if k not in dropped}
    child["CONFORMANCE_RUN_ID"] = run_id
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(ROOT)]
    argv += ["-m", env.get(job.ENV_MARKERS, "object_storage or mlflow"), f"--profile={profile_path}"]
    argv += [f"--reports-dir={work / 'reports'}", f"--results-json={results}", f"--budget={max(1.0, deadline * 0.8)}"]
    problem = ""
    try:
        done = subprocess.run(argv, cwd=ROOT, env=child, timeout=deadline, check=False)  # noqa: S603 - this Python, fixed arguments
        problem = f"pytest exited {done.returncode}" if done.returncode not in (0, 1) else ""
    except subprocess.TimeoutExpired:
        problem = f"the in-cluster checks did not finish within {deadline:g} s"
    document = _document_or_stub(results, problem or "no results file", run_id)
    document.setdefault("vantage", {})["in_cluster"] = True
    document["tuning"] = tuning
    line = job.RESULTS_MARK + json.dumps(document, separators=(",", ":"))
    where = env.get(job.ENV_RESULTS_DIR)
    if where and Path(where).parent.is_dir():
        try:
            Path(where).mkdir(parents=True, exist_ok=True)
            (Path(where) / f"{run_id}.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
        except OSError as exc:
            print(f"conformance.vantage: cannot write the results to {where}: {exc.strerror}", file=sys.stderr)
    sys.stdout.flush()
    print(line, flush=True)
    return 0


def _tuning(profile_path: Path, run_id: str, env: dict[str, str]) -> dict[str, Any]:
    """The tuning probe with the job's profile; what went wrong, as data."""
    from conformance.checks import CannotEvaluate  # noqa: PLC0415 - the job's imports, after the environment is set
    from conformance.profile import ProfileError  # noqa: PLC0415 - same
    from conformance.session import open_profile  # noqa: PLC0415 - same

    try:
        from conformance import tuning  # noqa: PLC0415 - imports optuna lazily itself
        from conformance.clients.mlflow import MlflowClient  # noqa: PLC0415 - the SDK, when the job runs

        loaded = open_profile(profile_path)
        conn = MlflowClient(loaded.profile, run_id)
        return tuning.probe(conn, int(env.get(job.ENV_TRIALS, "3")), int(env.get(job.ENV_CONCURRENT, "4")))
    except (ProfileError, CannotEvaluate) as exc:
        return {"error": " ".join(str(exc).split())[:300], "run_id": run_id}


if __name__ == "__main__":
    sys.exit(main())
