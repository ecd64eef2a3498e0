"""``python -m conformance cleanup``: only old probes in the suite's exact run-id format go; everything else stays.

Against the shared sandbox: leftovers are planted with the components' own clients (as a killed run
would have left them) next to decoys that must survive, the command is run as a user runs it, and
each component is inspected afterwards. The last tests interrupt real ``-m writes`` runs.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance import cleanup
from conformance.profile import Profile
from conformance.session import open_profile
from tests.conftest import REPO, write_profile

SANDBOX_PROFILE = REPO / "profiles" / "sandbox.yaml"
NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def stamp(when: dt.datetime) -> str:
    """A run id in the plugin's format, with a random suffix so runs of this file never collide."""
    return f"{when:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def environ(sandbox_env: Mapping[str, str], **extra: str) -> dict[str, str]:
    env = {**os.environ, **sandbox_env, **extra}
    for name in ("PYTEST_ADDOPTS", "CONFORMANCE_PROFILE", "CONFORMANCE_RUN_ID"):
        env.pop(name, None)
    env.update(extra)
    return env


def sandbox_profile(sandbox_env: Mapping[str, str]) -> Profile:
    return open_profile(SANDBOX_PROFILE, environ(sandbox_env)).profile


def run_cleanup(sandbox_env: Mapping[str, str], *args: str, profile: str | Path = "sandbox") -> tuple[int, str]:
    command = [sys.executable, "-m", "conformance", "cleanup", f"--profile={profile}", *args]
    done = subprocess.run(
        command, cwd=REPO, env=environ(sandbox_env), capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode, done.stdout + done.stderr


# --------------------------------------------------------------------------- parsing (no sandbox)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", dt.timedelta(minutes=30)),
        ("6h", dt.timedelta(hours=6)),
        ("2d", dt.timedelta(days=2)),
        ("0s", dt.timedelta(0)),
        (" 45s ", dt.timedelta(seconds=45)),
    ],
)
def test_duration_parses(text: str, expected: dt.timedelta) -> None:
    assert cleanup.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "m", "1.5h", "-2d", "2w", "2 d", "1h30m", "6H"])
def test_duration_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        cleanup.parse_duration(text)


OLD = "20200101000000-abcdef"


@pytest.mark.parametrize(
    ("name", "tag", "run_id"),
    [
        (f"conformance-{OLD}", False, OLD),
        (f"conformance-{OLD}-gw3", False, OLD),
        (f"conformance-{OLD}-rai", False, OLD),
        (f"conformance-{OLD}.probe", False, OLD),
        (OLD, True, OLD),
        (f"{OLD}-daemon", True, OLD),
        (f"conformance-{OLD}", True, OLD),
        (OLD, False, None),  # a bare run id is only a registry tag's form
        (f"conformance-{OLD}0", False, None),  # seven hex digits
        (f"conformance-{OLD.upper()}", False, None),
        ("conformance-20200101-abcdef", False, None),
        ("conformance-2020010100000-abcdef", False, None),
        (f"conformance-{OLD}/nested", False, None),
        (f"my-conformance-{OLD}", False, None),
        (f"conformance-{OLD}x", False, None),
        ("latest", True, None),
    ],
)
def test_run_id_of(name: str, tag: bool, run_id: str | None) -> None:
    assert cleanup.run_id_of(name, tag=tag) == run_id


def test_eligible_needs_an_old_real_date() -> None:
    cutoff = dt.datetime(2020, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    assert cleanup.eligible(f"conformance-{OLD}", cutoff)
    assert not cleanup.eligible(f"conformance-{OLD}", cutoff - dt.timedelta(seconds=1))  # not strictly older
    assert not cleanup.eligible("conformance-20201341000000-abcdef", NOW)  # month 13: no run made it
    assert not cleanup.eligible("conformance-something", NOW)


def test_runai_list_jobs_parsed() -> None:
    from conformance.clients.runai import parse_jobs

    text = (
        "Showing jobs for project team-a\n"
        "NAME                 STATUS   AGE  NODE    IMAGE   TYPE   PROJECT\n"
        "conformance-x-rai    Running  9s   node-1  busybox Train  team-a\n"
        "train-model          Pending  1d   -       pytorch Train  team-a\n\n"
    )
    assert parse_jobs(text) == ["conformance-x-rai", "train-model"]
    assert parse_jobs("No jobs found\n") == []


def test_bad_duration_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "cleanup", "--profile=sandbox", "--older-than", "3 weeks"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "--older-than: '3 weeks' is not a duration: use a whole number and s, m, h or d (30m, 6h, 2d)"
    ]


# --------------------------------------------------------------------------- planting leftovers


@dataclass
class Planted:
    """What was planted in one component: names that must go, names that must stay, and how to look."""

    old: list[str]
    decoys: list[str]
    exists: Callable[[str], bool]
    listed_as: Callable[[str], str] = field(default=lambda name: name)


def plant_registry(profile: Profile, old: str, young: str) -> Planted:
    from conformance.clients import registry

    def push(tag: str, image: Any = None) -> Any:
        client = registry.connect(profile, tag)
        assert client.push(image or registry.build_image(tag)).ok, tag
        return client.pushed.image if client.pushed else None

    old_tags = [old, f"{old}-daemon", f"conformance-{old}"]
    decoys = [young, "latest", "conformance-20200101-abcdef", f"{old}0"]
    for tag in old_tags + decoys:
        push(tag)
    shared = f"{stamp(dt.datetime(2020, 2, 2, tzinfo=dt.UTC))}"  # old, but a user's tag points at its image
    users_tag = f"release-{secrets.token_hex(3)}"
    push(users_tag, push(shared))
    looker = registry.connect(profile, "look")
    where = f"{profile.registry.project_path if profile.registry else ''}/conformance"
    return Planted(
        old_tags,
        [*decoys, shared, users_tag],  # the user's tag last
        lambda tag: looker.manifest_digest(tag) is not None,
        lambda tag: f"{where}:{tag} (",
    )


def plant_object_storage(profile: Profile, old: str, young: str) -> Planted:
    from conformance.clients import object_storage

    store = object_storage.connect(profile, "plant")
    old_keys = [f"conformance/conformance-{old}", f"conformance/conformance-{old}-gw1"]
    decoys = [
        f"conformance/conformance-{young}",
        "conformance/conformance-2020-01-01.csv",
        f"conformance/conformance-{old}/nested.txt",
        "conformance/user-data.csv",
        f"other/conformance-{old}",
    ]
    for key in old_keys + decoys:
        store.put(key, b"planted by tests/test_cleanup.py")
    return Planted(old_keys, decoys, store.exists, lambda key: f"{store.backend}://{store.bucket}/{key}")


def plant_mlflow(profile: Profile, old: str, young: str) -> Planted:
    from conformance.clients import mlflow

    def start(run_id: str, **tags: str) -> str:
        connection = mlflow.MlflowClient(profile, run_id)
        experiment = connection.open_experiment()
        assert isinstance(experiment, mlflow.Experiment), experiment
        if not tags:
            return connection.start_run(experiment.experiment_id, "probe")
        run = connection.call("create_run", connection.client.create_run, experiment.experiment_id, tags=tags)
        return str(run.info.run_id)

    old_runs = [start(old), start(old)]
    decoys = [start(young), start("x", conformance="not-a-run-id"), start("x", team="a user's run")]
    looker = mlflow.MlflowClient(profile, "look")

    def active(run_id: str) -> bool:
        run = looker.call("get_run", looker.client.get_run, run_id)
        return bool(run.info.lifecycle_stage == "active")

    return Planted(old_runs, decoys, active, lambda run_id: f"run {run_id} (")


def plant_kubernetes(profile: Profile, old: str, young: str) -> Planted:
    from kubernetes import client as k8s

    from conformance.clients import kubernetes

    kube = kubernetes.connect(profile, "plant")
    old_jobs = [f"conformance-{old}", f"conformance-{old}-gw2"]
    labelled = [f"conformance-{young}", "conformance-20200101-abcdef"]
    for name in old_jobs + labelled:
        assert kube.create_job(name, ["/bin/sh", "-c", "echo planted"])[1] is None, name
    unlabelled = f"conformance-{stamp(dt.datetime(2020, 3, 3, tzinfo=dt.UTC))}"  # looks like ours; a user's
    for name in (unlabelled, "train-model"):
        job = k8s.V1Job(
            metadata=k8s.V1ObjectMeta(name=name),
            spec=k8s.V1JobSpec(
                template=k8s.V1PodTemplateSpec(
                    spec=k8s.V1PodSpec(restart_policy="Never", containers=[k8s.V1Container(name="c", image="busybox")])
                )
            ),
        )
        _, failure = kube.call(k8s.BatchV1Api(kube.api_client).create_namespaced_job, kube.namespace, job)
        assert failure is None, failure

    def exists(name: str) -> bool:
        return kube.read_job(name)[1] is None

    return Planted(old_jobs, [*labelled, unlabelled, "train-model"], exists, lambda n: f"Job {kube.namespace}/{n}")


def plant_serving(profile: Profile, old: str, young: str) -> Planted:
    from kubernetes import client as k8s

    from conformance.clients import kubernetes

    kube = kubernetes.connect(profile, "plant")
    image = "registry.example.org/mlops/model-server:1.0"  # never starts in the sandbox: no process is left running
    old_probes = [f"conformance-{old}-serve"]
    decoys = [f"conformance-{young}-serve"]
    for name in old_probes + decoys:
        assert kubernetes.create_serving(kube, name, image)[1] is None, name
    deployment, service = kubernetes.serving_manifests("my-model", image)  # a user's, without the suite's label
    for manifest in (deployment, service):
        manifest["metadata"]["labels"] = {"app": "my-model"}
    assert kube.call(k8s.AppsV1Api(kube.api_client).create_namespaced_deployment, kube.namespace, deployment)[1] is None
    assert kube.call(k8s.CoreV1Api(kube.api_client).create_namespaced_service, kube.namespace, service)[1] is None

    def exists(name: str) -> bool:
        return kubernetes.read_deployment(kube, name)[1] is None

    return Planted(old_probes, [*decoys, "my-model"], exists, lambda n: f"{kube.namespace}/{n}")


def plant_runai(profile: Profile, old: str, young: str) -> Planted:
    from conformance.clients import runai

    cli = runai.connect(profile, "plant")
    old_jobs = [f"conformance-{old}-rai"]
    decoys = [f"conformance-{young}-rai", "my-training"]
    for name in old_jobs + decoys:
        assert cli.submit(name, ["/bin/sh", "-c", "echo planted"]).ok, name
    return Planted(old_jobs, decoys, lambda name: name in cli.list_jobs()[1], lambda n: f"job {n} (")


def plant_workspace(profile: Profile, old: str, young: str) -> Planted:
    assert profile.workspace is not None
    assert profile.workspace.pvc_mount
    folder = Path(profile.workspace.pvc_mount) / "workspaces"
    old_files = [f"conformance-{old}.probe"]
    decoys = [f"conformance-{young}.probe", f"conformance-{old}.txt", "conformance-2020.probe", "notes.probe"]
    for name in old_files + decoys:
        (folder / name).write_text("planted by tests/test_cleanup.py")
    return Planted(old_files, decoys, lambda name: (folder / name).exists(), lambda n: f"{folder / n}")


PLANTERS = {
    "registry": plant_registry,
    "object_storage": plant_object_storage,
    "mlflow": plant_mlflow,
    "runai": plant_runai,
    "serving": plant_serving,
    "kubernetes": plant_kubernetes,
    "workspace": plant_workspace,
}


def swept_lines(output: str, component: str, verb: str) -> list[str]:
    prefix = f"{component}: {verb} "
    return [line.removeprefix(prefix) for line in output.splitlines() if line.startswith(prefix)]


def test_sweeps_only_old_probes(sandbox_env: dict[str, str]) -> None:
    """Old probes in every writing component go; young ids, other names and users' things stay; dry-run deletes none.

    ``--older-than 1d`` with leftovers from 2020 and a decoy run from an hour ago: other tests' runs in
    this session (all younger than a day) can never be swept by it.
    """
    profile = sandbox_profile(sandbox_env)
    old = stamp(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    young = stamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    planted = {name: plant(profile, old, young) for name, plant in PLANTERS.items()}

    rc, output = run_cleanup(sandbox_env, "--older-than", "1d", "--dry-run")
    assert rc == 0, output
    for name, found in planted.items():
        listed = swept_lines(output, name, "would delete")
        for item in found.old:
            assert any(found.listed_as(item) in line for line in listed), f"{name}: {item} not listed:\n{output}"
            assert found.exists(item), f"{name}: --dry-run deleted {item}"
    assert "probe(s) would be deleted" in output.splitlines()[-1]
    users_tag = planted["registry"].decoys[-1]  # it shares the image of an old probe tag: kept, and said so
    assert "registry: kept " in output, output
    assert f": tag {users_tag} (not a probe) points at sha256:" in output, output

    rc, output = run_cleanup(sandbox_env, "--older-than", "1d")
    assert rc == 0, output
    for name, found in planted.items():
        listed = swept_lines(output, name, "deleted")
        for item in found.old:
            assert any(found.listed_as(item) in line for line in listed), f"{name}: {item} not listed:\n{output}"
            assert not found.exists(item), f"{name}: {item} is still there"
        for item in found.decoys:
            assert found.exists(item), f"{name}: decoy {item} was deleted:\n{output}"
            assert not any(found.listed_as(item) in line for line in listed), f"{name}: decoy {item} listed"
    assert output.splitlines()[-1].startswith("cleanup: ")


def test_gcs_and_token_registry_swept(sandbox_env: dict[str, str]) -> None:
    """The GCP shapes: GCS objects, and a registry behind a Bearer-token realm (direct sweep calls)."""
    from conformance.clients import object_storage, registry

    profile = open_profile(REPO / "profiles" / "sandbox-gcp.yaml", environ(sandbox_env)).profile
    old = stamp(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    young = stamp(dt.datetime.now(dt.UTC))
    cutoff = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    for module, plant in ((object_storage, plant_object_storage), (registry, plant_registry)):
        planted = plant(profile, old, young)
        swept = module.sweep(profile, cutoff, dry_run=False)
        assert swept.failures == [], swept
        for item in planted.old:
            assert any(planted.listed_as(item) in line for line in swept.items), (item, swept.items)
            assert not planted.exists(item), item
        for item in planted.decoys:
            assert planted.exists(item), item


def test_deleted_experiment_untouched(sandbox_env: dict[str, str]) -> None:
    from conformance.clients import mlflow

    profile = sandbox_profile(sandbox_env)
    assert profile.mlflow is not None
    name = f"conformance-deleted-{secrets.token_hex(3)}"
    other = profile.model_copy(update={"mlflow": profile.mlflow.model_copy(update={"experiment": name})})
    connection = mlflow.MlflowClient(other, stamp(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    experiment = connection.open_experiment()
    assert isinstance(experiment, mlflow.Experiment)
    run_id = connection.start_run(experiment.experiment_id, "probe")
    connection.call("delete_experiment", connection.client.delete_experiment, experiment.experiment_id)

    def state() -> tuple[str, str]:
        run = connection.call("get_run", connection.client.get_run, run_id)
        found = connection.call("get_experiment", connection.client.get_experiment, experiment.experiment_id)
        return str(run.info.lifecycle_stage), str(found.lifecycle_stage)

    before = state()
    swept = mlflow.sweep(other, dt.datetime.now(dt.UTC), dry_run=False)
    assert swept.items == []
    assert swept.failures == []
    assert swept.notes == [f"experiment {name!r} is deleted: untouched"]
    assert state() == before == ("deleted", "deleted")  # neither purged nor restored


def test_unreachable_component_reported_and_others_swept(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    path = write_profile(
        tmp_path, f"extends: {SANDBOX_PROFILE}\nmlflow:\n  tracking_uri: ${{SANDBOX_FAULT_REFUSED_URL}}\n"
    )
    profile = sandbox_profile(sandbox_env)
    planted = plant_workspace(profile, stamp(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)), "none")
    rc, output = run_cleanup(sandbox_env, "--older-than", "1d", profile=path)
    assert rc == 1, output
    failed = [line for line in output.splitlines() if line.startswith("mlflow: cannot sweep: ")]
    assert len(failed) == 1, output
    assert "could not sweep: mlflow" in output.splitlines()[-1]
    assert not planted.exists(planted.old[0])  # the workspace was still swept


# --------------------------------------------------------------------------- interrupted runs


def probes_of(profile: Profile, run_id: str) -> list[str]:
    """Every probe of ``run_id`` the sweepers would see (a dry-run sweep just after that run started)."""
    started = cleanup.run_started(run_id)
    assert started is not None
    cutoff = started + dt.timedelta(seconds=1)
    found = []
    for name in cleanup.COMPONENTS:
        module = importlib.import_module(f"conformance.clients.{name}")
        found += [f"{name}: {item}" for item in module.sweep(profile, cutoff, True).items if run_id in item]
    return found


def start_writes_run(sandbox_env: dict[str, str], run_id: str, reports: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pytest", "--profile=sandbox", "-m", "writes", f"--reports-dir={reports}"]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=environ(sandbox_env, CONFORMANCE_RUN_ID=run_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(proc: subprocess.Popen[str], seen: Callable[[], bool], what: str) -> None:
    """Poll ``seen`` while the run goes on; bounded."""
    deadline = time.monotonic() + 60
    while not seen():
        assert proc.poll() is None, f"the run ended before {what} appeared:\n{proc.communicate()[0]}"
        assert time.monotonic() < deadline, f"{what} did not appear within 60 s"
        time.sleep(0.05)


def job_seen(profile: Profile, run_id: str) -> Callable[[], bool]:
    """The run's Kubernetes Job (its first write; it stays until session teardown)."""
    from conformance.clients import kubernetes

    kube = kubernetes.connect(profile, "look")
    return lambda: f"conformance-{run_id}" in kube.list_jobs()[0]


def mlflow_run_seen(profile: Profile, run_id: str) -> Callable[[], bool]:
    """An MLflow run tagged with the run's id (created after the Job; they stay until session teardown)."""
    from conformance.clients import mlflow

    connection = mlflow.MlflowClient(profile, "look")
    experiment = connection.open_experiment()
    assert isinstance(experiment, mlflow.Experiment), experiment
    query = f"tags.{mlflow.RUN_TAG} = '{run_id}'"
    return lambda: bool(
        connection.call("search_runs", connection.client.search_runs, [experiment.experiment_id], query)
    )


def test_interrupted_and_killed_runs(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    """What each guarantee rests on.

    SIGINT once the writes have begun (the run's Kubernetes Job exists): WITHOUT the sweeper, fixture
    teardown alone removes every probe (exit 2, reports written). SIGKILL once the Job and an MLflow run
    exist: teardown cannot run and they stay; WITH the sweeper they all go. The
    sweep is aimed at the killed run alone (its CONFORMANCE_RUN_ID carries a 2010 stamp and the
    duration reaches back just past it), so nothing else in the shared sandbox is at risk.
    """
    profile = sandbox_profile(sandbox_env)

    interrupted = stamp(dt.datetime(2010, 1, 1, tzinfo=dt.UTC))
    proc = start_writes_run(sandbox_env, interrupted, tmp_path / "interrupted")
    wait_until(proc, job_seen(profile, interrupted), "the run's Job")
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2, output
    assert list((tmp_path / "interrupted").glob("*.json")), output
    assert probes_of(profile, interrupted) == []

    killed = stamp(dt.datetime(2010, 6, 1, tzinfo=dt.UTC))
    proc = start_writes_run(sandbox_env, killed, tmp_path / "killed")
    wait_until(proc, mlflow_run_seen(profile, killed), "the run's MLflow run")
    proc.kill()
    proc.communicate(timeout=60)
    left = probes_of(profile, killed)
    assert {item.split(":", 1)[0] for item in left} >= {"kubernetes", "mlflow"}, left

    started = cleanup.run_started(killed)
    assert started is not None
    minutes = int((dt.datetime.now(dt.UTC) - started).total_seconds() // 60) - 1  # reaches back just past it
    rc, output = run_cleanup(sandbox_env, "--older-than", f"{minutes}m")
    assert rc == 0, output
    for item in left:
        component, _, what = item.partition(": ")
        assert f"{component}: deleted {what}" in output, output
    assert probes_of(profile, killed) == []


@pytest.mark.reliability
@pytest.mark.skipif(os.environ.get("RELIABILITY") != "1", reason="not run: set RELIABILITY=1 (tox -e reliability)")
def test_twenty_runs_five_interrupted_at_random_points_leave_no_probe(
    sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    """Twenty writing runs; five get SIGINT or SIGTERM at a random (seeded) moment during the run.

    Tested WITHOUT the sweeper: fixture teardown alone must leave no probe of any of the twenty
    runs in any component (a dry-run sweep aimed at each run id finds nothing). A run the signal
    reaches before its first write is fine too; at least three of the five must be hit while running.
    """
    import random

    rng = random.Random(20261128)  # noqa: S311 - a seeded schedule for the test, not a secret
    interrupted = set(rng.sample(range(20), 5))
    profile = sandbox_profile(sandbox_env)
    run_ids, hit = [], 0
    for index in range(20):
        run_id = stamp(dt.datetime(2011, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=index))
        run_ids.append(run_id)
        proc = start_writes_run(sandbox_env, run_id, tmp_path / f"run-{index}")
        if index in interrupted:
            try:
                proc.wait(timeout=rng.uniform(1.0, 6.0))
            except subprocess.TimeoutExpired:
                proc.send_signal(rng.choice([signal.SIGINT, signal.SIGTERM]))
                hit += 1
        output = proc.communicate(timeout=180)[0]
        # 2: interrupted, reports written. A signal landing after the session, during interpreter
        # shutdown, ends the process by that signal (-2, -15): the reports are written by then too.
        assert proc.returncode in (0, 2, -signal.SIGINT, -signal.SIGTERM), output[-3000:]
    assert hit >= 3, f"only {hit} of the 5 signals reached a running suite"
    leftovers = {run_id: probes_of(profile, run_id) for run_id in run_ids}
    assert {k: v for k, v in leftovers.items() if v} == {}
