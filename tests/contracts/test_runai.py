"""The Run:ai CLI's published output (contracts/runai.yaml), replayed through the client, per generation.

Each test runs :class:`conformance.clients.runai.RunaiClient` against a replay of the transcripts: a
command the client runs must be one a transcript records (same verbs and flags), and what the
client concludes from the answer is asserted. The simulated CLI answers from the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance.clients import runai
from conformance.profile import Runai, Timeouts
from conformance.sandbox import contracts

NAME = "conformance-20261201t2130z-ab12-rai"
PROJECT = "conformance"
IMAGE = "alpine:3.20"


def transcript(name: str) -> contracts.Transcript:
    return contracts.get("runai", name)


class Replay:
    """Answers each command with the one transcript whose argv it is (after ``runai``), values filled in."""

    def __init__(self, *names: str, **values: object) -> None:
        self.answers: dict[tuple[str, ...], tuple[str, contracts.CliAnswer]] = {}
        for name in names:
            found = transcript(name)
            assert found.cli is not None
            argv = tuple(found.render(arg, **values) for arg in found.cli.argv[1:])
            self.answers[argv] = (name, found.cli)
        self.values = values
        self.ran: list[str] = []

    def __call__(self, *args: str) -> runai.Result:
        if args not in self.answers:
            raise AssertionError(f"the client ran `runai {' '.join(args)}`, which no transcript records")
        name, answer = self.answers[args]
        self.ran.append(name)
        found = transcript(name)
        stdout = found.render(answer.stdout, **self.values)
        stderr = found.render(answer.stderr, **self.values)
        return runai.Result(["runai", *args], answer.exit, stdout, stderr, 0.01)


class ReplayedCli(runai.RunaiClient):
    replay: Replay

    def run(self, *args: str, limit: float | None = None) -> runai.Result:
        return self.replay(*args)


def client(replay: Replay) -> ReplayedCli:
    section = Runai(project=PROJECT, cli="runai", smoke_image=IMAGE)
    timeouts = Timeouts(connect=1, request=1, check=1)
    cli = ReplayedCli(runai.Cli("runai", "/usr/local/bin/runai"), section, None, timeouts, "test")  # type: ignore[arg-type] # no kubeconfig: replayed commands only
    cli.replay = replay
    return cli


# Values for every placeholder a transcript of either generation uses.
COMMON: dict[str, Any] = {
    "name": NAME,
    "project": PROJECT,
    "image": IMAGE,
    "log": f"{NAME}\n",
    "user": "researcher@example.org",
    "cluster": "aisg",
    "cluster_uuid": "5f1c0d3e-2a9b-4c8e-9d71-3b6f0e4a2c18",
    "control_plane": "https://aisingapore.run.ai",
    "project_json": '{"name": "conformance", "id": "4"}',
}
KUBECONFIG_ALL = (
    "kubeconfig-version",
    "kubeconfig-no-workload-command",
    "kubeconfig-list-projects",
    "kubeconfig-submit",
    "kubeconfig-describe-json",
    "kubeconfig-describe-text",
    "kubeconfig-logs",
    "kubeconfig-delete",
    "kubeconfig-list-jobs",
)
NEW_ALL = (
    "new-version",
    "new-workload-help",
    "new-whoami",
    "new-project-list-json",
    "new-config-describe-json",
    "new-training-submit",
    "new-training-describe-json",
    "new-training-logs",
    "new-training-delete",
    "new-training-list-json",
)


# ---------------------------------------------------------------- generations (RAI-002 and every verb after it)


@pytest.mark.parametrize("version", ["2.13.49", "2.2.50"])
def test_a_kubeconfig_cli_before_2_18_is_the_guides_generation(version: str) -> None:
    replay = Replay(*KUBECONFIG_ALL, **COMMON, version=version)
    detected = runai.detect(replay)
    assert (detected.version, detected.generation) == (version, runai.KUBECONFIG)
    assert replay.ran == ["kubeconfig-version"]  # no probe below 2.18


def test_a_kubeconfig_cli_from_2_18_has_no_workload_command() -> None:
    replay = Replay(*KUBECONFIG_ALL, **COMMON, version="2.18.3")
    detected = runai.detect(replay)
    assert detected.generation == runai.KUBECONFIG
    assert replay.ran == ["kubeconfig-version", "kubeconfig-no-workload-command"]


@pytest.mark.parametrize("version", ["2.18.0", "2.19.31", "2.20.15"])
def test_the_new_cli_is_recognised(version: str) -> None:
    replay = Replay(*NEW_ALL, **COMMON, version=version)
    detected = runai.detect(replay)
    assert (detected.version, detected.generation) == (version, runai.NEW)


@pytest.mark.parametrize(
    ("names", "version", "problem"),
    [
        (KUBECONFIG_ALL, "2.13.49", None),
        (KUBECONFIG_ALL, "2.17.0", None),
        (NEW_ALL, "2.18.0", None),
        (NEW_ALL, "3.0.1", None),  # a later new CLI is not "old" (RAI-002 used to say so)
        (KUBECONFIG_ALL, "1.4.2", "runai version 1.4.2"),
        (KUBECONFIG_ALL, "3.0.1", "runai version 3.0.1 has no `runai workload` command"),
    ],
)
def test_which_versions_rai_002_accepts(names: tuple[str, ...], version: str, problem: str | None) -> None:
    found = runai.version_problem(runai.detect(Replay(*names, **COMMON, version=version)))
    assert (found[0] if found else None) == problem


def test_the_new_cli_uses_its_own_verbs() -> None:
    replay = Replay(*NEW_ALL, **COMMON, version="2.19.31", phase="Completed", pod_phase="Succeeded", rows="")
    cli = client(replay)
    assert cli.submit(NAME, ["/bin/sh", "-c", f"echo {NAME}"]).ok
    assert cli.logs(NAME).stdout == f"{NAME}\n"
    assert cli.delete(NAME).ok
    assert cli.set_project_command() == f"runai project set {PROJECT}"
    assert "new-training-submit" in replay.ran
    assert "new-training-delete" in replay.ran


# ---------------------------------------------------------------- login (RAI-003) and project (RAI-004)


def test_new_cli_login_is_asked_of_the_cli() -> None:
    logged_in = client(Replay(*NEW_ALL, **COMMON, version="2.19.31"))
    assert logged_in.whoami().ok
    logged_out = client(Replay("new-version", "new-workload-help", "new-whoami-logged-out", version="2.19.31"))
    result = logged_out.whoami()
    assert not result.ok
    assert "runai login" in result.summary()


def test_kubeconfig_cli_projects_and_default() -> None:
    rows = "alpha                  -           -              -\nconformance (default)  -           -              -\n"
    cli = client(Replay(*KUBECONFIG_ALL, **COMMON, version="2.13.49", rows=rows))
    result, names, default = cli.projects()
    assert result.ok
    assert (names, default) == (["alpha", PROJECT], PROJECT)


def test_kubeconfig_cli_not_logged_in_cannot_list() -> None:
    cli = client(Replay("kubeconfig-version", "kubeconfig-unauthorized", version="2.13.49"))
    result, names, _ = cli.projects()
    assert not result.ok
    assert names == []
    assert "You must be logged in to the server" in result.summary()


@pytest.mark.parametrize(("project_json", "default"), [('{"name": "conformance", "id": "4"}', PROJECT), ("null", None)])
def test_new_cli_projects_and_default(project_json: str, default: str | None) -> None:
    rows = '{"name": "alpha", "id": "3"}, {"name": "conformance", "id": "4"}'
    values = {**COMMON, "project_json": project_json}
    cli = client(Replay(*NEW_ALL, **values, version="2.19.31", rows=rows))
    result, names, found = cli.projects()
    assert result.ok
    assert (names, found) == (["alpha", PROJECT], default)


# ---------------------------------------------------------------- describe (RAI-005)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Succeeded", "succeeded"),
        ("Completed", "succeeded"),  # the chief pod's reason, where Run:ai has no status yet
        ("Failed", "failed"),
        ("TimedOut", "failed"),
        ("Preempted", "failed"),
        ("Running", None),
        ("Pending", None),
    ],
)
def test_kubeconfig_describe_json(status: str, expected: str | None) -> None:
    replay = Replay(*KUBECONFIG_ALL, **COMMON, version="2.13.49", status=status, pod_phase="Running")
    result, found = client(replay).describe(NAME)
    assert result.ok
    assert found == status
    assert runai.outcome(found) == expected
    assert replay.ran[-1] == "kubeconfig-describe-json"


@pytest.mark.parametrize(("status", "expected"), [("Succeeded", "succeeded"), ("Failed", "failed"), ("Running", None)])
def test_kubeconfig_describe_text_upper_case_fields(status: str, expected: str | None) -> None:
    """A CLI without ``-o json`` (it prints text) is read from its ``STATUS:`` line, in any case."""
    text = transcript("kubeconfig-describe-text")
    assert text.cli is not None
    output = text.render(text.cli.stdout, **COMMON, status=status, pod_phase=status, pod_phase_upper=status.upper())
    assert "\nSTATUS: " in output  # the real CLI's upper-case field name
    assert runai.parse_status(output) == status
    assert runai.outcome(runai.parse_status(output)) == expected


def test_kubeconfig_describe_falls_back_to_text_when_json_is_refused() -> None:
    values = {**COMMON, "status": "Succeeded", "pod_phase": "Succeeded", "pod_phase_upper": "SUCCEEDED"}

    class NoJson(Replay):
        def __call__(self, *args: str) -> runai.Result:
            if "-o" in args:  # an older build: "unknown shorthand flag: 'o'"
                return runai.Result(["runai", *args], 1, "", "Error: unknown shorthand flag: 'o' in -o\n", 0.01)
            return super().__call__(*args)

    result, status = client(NoJson(*KUBECONFIG_ALL, **values, version="2.13.49")).describe(NAME)
    assert result.ok
    assert status == "Succeeded"


def test_kubeconfig_describe_of_a_missing_job_is_not_a_status() -> None:
    replay = Replay("kubeconfig-version", "kubeconfig-describe-not-found", **COMMON, version="2.13.49")

    class OnlyText(Replay):
        def __call__(self, *args: str) -> runai.Result:
            return replay(*[a for a in args if a not in ("-o", "json")])

    result, status = client(OnlyText()).describe(NAME)
    assert not result.ok
    assert status is None
    assert f"The job {NAME} does not exist in project {PROJECT}" in result.summary()


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Completed", "succeeded"),
        ("Failed", "failed"),
        ("Stopped", "failed"),
        ("Running", None),
        ("Pending", None),
        ("Initializing", None),
        ("Degraded", None),
    ],
)
def test_new_describe_json_phase(phase: str, expected: str | None) -> None:
    replay = Replay(*NEW_ALL, **COMMON, version="2.19.31", phase=phase, pod_phase="Running")
    result, status = client(replay).describe(NAME)
    assert result.ok
    assert status == phase
    assert runai.outcome(status) == expected


# ---------------------------------------------------------------- cleanup (runai jobs of earlier runs)


def test_job_lists_of_both_generations() -> None:
    old_rows = f"{NAME:<36} Succeeded  1s   -     {IMAGE}  Train  {PROJECT}  researcher  0 (0)  0 (0)\n"
    old = client(Replay(*KUBECONFIG_ALL, **COMMON, version="2.13.49", rows=old_rows))
    assert old.list_jobs()[1] == [NAME]
    new_rows = f'{{"name": "{NAME}", "phase": "Completed"}}'
    new = client(Replay(*NEW_ALL, **COMMON, version="2.19.31", rows=new_rows))
    assert new.list_jobs()[1] == [NAME]


def test_every_transcript_is_replayed_here() -> None:
    """No transcript in runai.yaml goes untested (the simulator answers from all of them)."""
    source = Path(__file__).read_text()
    missing = [name for name in contracts.load("runai") if f'"{name}"' not in source]
    assert not missing


@pytest.mark.parametrize(
    ("version", "names", "setter"),
    [("2.13.49", KUBECONFIG_ALL, "kubeconfig-config-project"), ("2.19.31", NEW_ALL, "new-project-set")],
)
def test_the_project_remedy_is_the_generations_own_command(version: str, names: tuple[str, ...], setter: str) -> None:
    """RAI-004's hint names the command that sets the default project in this generation."""
    found = transcript(setter)
    assert found.cli is not None
    recorded = " ".join(found.render(arg, project=PROJECT) for arg in found.cli.argv)
    assert client(Replay(*names, **COMMON, version=version)).set_project_command() == recorded
