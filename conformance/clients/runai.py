"""How to drive the Run:ai CLI the way the guide does, in either generation. Reports; never asserts.

Two generations of ``runai`` are in the field, both numbered 2.x (see
``conformance/sandbox/contracts/runai.yaml`` for the published sources):

* ``kubeconfig``: the CLI the guide uses. Its login (``runai login``: an OIDC id-token) and its
  default project (the context's namespace ``runai-<project>``) live in the kubeconfig, so it is
  run with ``KUBECONFIG`` set to the kubeconfig the kubernetes section selects.
* ``new``: Run:ai's new CLI (clusters 2.18 and up). It talks to the control plane and keeps its
  login and default project under ``~/.runai/`` (``RUNAI_CLI_CONFIG_PATH``); its verbs are
  ``runai whoami``, ``runai project list/set``, ``runai config describe``, ``runai training ...``.
  The old verbs remain only as deprecated aliases, so the suite uses the new ones.

The generation is read from ``runai version``: a version before 2.18 is the kubeconfig CLI; from
2.18 on, the CLI is the new one when it has a ``workload`` command (the kubeconfig CLI of those
versions answers ``unknown command``). Each call is bounded by the profile's timeouts; tokens are
never read here (the kubeconfig login is read by :mod:`conformance.clients.kubernetes`).
Job status comes from the machine-readable ``-o json`` of describe where the CLI has it, else
from the text, case-insensitively (``STATUS: Succeeded``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conformance.checks import CannotEvaluate
from conformance.cleanup import Swept, eligible
from conformance.clients.kubernetes import Kubeconfig, find_kubeconfig
from conformance.profile import Profile, Runai, Timeouts

Generation = Literal["kubeconfig", "new"]
KUBECONFIG: Generation = "kubeconfig"
NEW: Generation = "new"
NEW_CLI_FROM = (2, 18)  # the new CLI exists for clusters 2.18 and up (run-ai/docs new-cli/overview.md)

_VERSION = re.compile(r"^\s*Version:\s*v?(?P<version>\d+\.\d+(?:\.\d+)?\S*)", re.MULTILINE | re.IGNORECASE)
_VERSION_ALT = re.compile(r"\bversion\s+v?(?P<version>\d+\.\d+(?:\.\d+)?\S*)", re.IGNORECASE)
_VERSION_BARE = re.compile(r"^\s*v?(?P<version>\d+\.\d+\.\d+\S*)\s*$", re.MULTILINE)
_STATUS = re.compile(r"^\s*Status:[ \t]*(?P<status>\S+)", re.MULTILINE | re.IGNORECASE)

# Terminal job states, compared case-insensitively. The kubeconfig CLI reports Run:ai's job
# status (cmd/constants/const.go: Succeeded, Failed, Deleted, TimedOut, Preempted) or, without
# one, the chief pod's reason as kubectl shows it (Completed, Error, OOMKilled, ...); the new CLI
# reports the control-plane phase (Completed, Failed; Stopped stays put until someone resumes it).
SUCCEEDED = frozenset({"succeeded", "completed"})
FAILED = frozenset(
    {
        "failed", "error", "deleted", "deleting", "timedout", "preempted", "stopped",
        "oomkilled", "containercannotrun", "deadlineexceeded", "init:error", "evicted",
    }
)  # fmt: skip
FINAL = SUCCEEDED | FAILED


def outcome(status: str | None) -> Literal["succeeded", "failed"] | None:
    """``succeeded`` / ``failed`` for a terminal status, None while the job may still change."""
    key = (status or "").strip().lower()
    if key in SUCCEEDED:
        return "succeeded"
    if key in FAILED:
        return "failed"
    return None


@dataclass
class Cli:
    """Where the configured ``runai`` is, if anywhere."""

    configured: str
    path: str | None

    @property
    def found(self) -> bool:
        return self.path is not None


def find_cli(section: Runai, environ: dict[str, str] | None = None) -> Cli:
    env = os.environ if environ is None else environ
    if "/" in section.cli:
        path = Path(section.cli)
        usable = path.is_file() and os.access(path, os.X_OK)
        return Cli(section.cli, str(path) if usable else None)
    return Cli(section.cli, shutil.which(section.cli, path=env.get("PATH")))


@dataclass
class Result:
    argv: list[str]
    rc: int | None  # None: killed after the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def summary(self) -> str:
        """The exit status and the last line the CLI printed (stderr first): what went wrong, in its words."""
        if self.rc is None:
            return f"`{' '.join(self.argv[:3])}` did not finish in {self.seconds:.0f} s"
        lines = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return f"exit {self.rc}: {lines[-1][:200] if lines else 'no output'}"


def parse_version(text: str) -> str | None:
    match = _VERSION.search(text) or _VERSION_ALT.search(text) or _VERSION_BARE.search(text)
    return match.group("version") if match else None


def version_tuple(version: str | None) -> tuple[int, int] | None:
    parts = re.match(r"(\d+)\.(\d+)", version or "")
    return (int(parts.group(1)), int(parts.group(2))) if parts else None


def parse_projects(text: str) -> tuple[list[str], str | None]:
    """(project names, the one marked ``(default)``) from the kubeconfig CLI's ``runai list projects``."""
    names: list[str] = []
    default = None
    for line in text.splitlines()[1:]:
        words = line.split()
        if not words:
            continue
        names.append(words[0])
        if len(words) > 1 and words[1] == "(default)":
            default = words[0]
    return names, default


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _named_items(document: Any) -> list[dict[str, Any]]:
    """The objects of the first array of ``{"name": ...}`` objects: the document itself or one of its values."""
    candidates = [document, *document.values()] if isinstance(document, dict) else [document]
    for candidate in candidates:
        if isinstance(candidate, list) and all(isinstance(item, dict) and "name" in item for item in candidate):
            return candidate
    return []


def parse_project_list_json(text: str) -> list[str] | None:
    """Project names from the new CLI's ``runai project list --json``; None when it is not JSON."""
    document = _json(text)
    if document is None:
        return None
    return [str(item["name"]) for item in _named_items(document)]


def parse_config_project(text: str) -> str | None:
    """The default project from the new CLI's ``runai config describe --json`` (``cluster.project.name``)."""
    document = _json(text)
    if not isinstance(document, dict):
        return None
    cluster = document.get("cluster")
    project = cluster.get("project") if isinstance(cluster, dict) else document.get("project")
    if isinstance(project, dict):
        project = project.get("name")
    return str(project) if project else None


def parse_jobs(text: str) -> list[str]:
    """Job names from ``runai list jobs`` (the ``NAME`` column) or from a ``--json`` workload list."""
    document = _json(text)
    if document is not None:
        return [str(item["name"]) for item in _named_items(document)]
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.split()[:1] == ["NAME"]), None)
    return [] if header is None else [line.split()[0] for line in lines[header + 1 :] if line.strip()]


def parse_status(text: str) -> str | None:
    """A job's status from ``describe`` output: the top-level ``phase`` or ``status`` of its JSON, else
    the ``Status:`` line of its text (any case: the kubeconfig CLI prints ``STATUS: Succeeded``)."""
    document = _json(text)
    if isinstance(document, dict):
        sections = [document, *(value for value in document.values() if isinstance(value, dict))]
        for section in sections:
            for key, value in section.items():
                if key.lower() in ("phase", "status") and isinstance(value, str) and value:
                    return value
        return None
    match = _STATUS.search(text)
    return match.group("status") if match else None


def ran_ok(result: Result, *, json_wanted: bool = False) -> bool:
    """The command worked (and, when asked, printed JSON)."""
    return result.ok and (not json_wanted or _json(result.stdout) is not None)


@dataclass
class Detected:
    """What ``runai version`` (and, from 2.18, ``runai workload --help``) says this CLI is."""

    result: Result
    version: str | None
    generation: Generation | None
    probe: Result | None = None


def detect(run: Any) -> Detected:
    """The CLI's version and generation; ``run`` runs the CLI with arguments and returns a :class:`Result`."""
    result = run("version")
    version = parse_version(result.stdout) if result.ok else None
    numbers = version_tuple(version)
    if numbers is None:
        return Detected(result, version, None)
    if numbers < NEW_CLI_FROM:
        return Detected(result, version, KUBECONFIG)
    probe = run("workload", "--help")
    return Detected(result, version, NEW if probe.ok else KUBECONFIG, probe)


def version_problem(detected: Detected) -> tuple[str, str] | None:
    """(what is wrong, the likely cause) with the CLI ``detect`` found; None for a CLI the suite can drive."""
    numbers = version_tuple(detected.version)
    if numbers is None:
        return "no version number in its output", "this is not the Run:ai CLI, or it cannot start on this OS"
    if detected.generation == NEW:
        return None  # any version of the new CLI (2.18 and up): its verbs do not depend on the number
    if numbers[0] < 2:
        return f"runai version {detected.version}", "an old CLI left on PATH from an earlier cluster"
    if numbers[0] > 2:
        return (
            f"runai version {detected.version} has no `runai workload` command",
            "neither the guide's kubeconfig CLI (2.x) nor Run:ai's new CLI: check what is on PATH",
        )
    return None


@dataclass
class RunaiClient:
    cli: Cli
    section: Runai
    kubeconfig: Kubeconfig
    timeouts: Timeouts
    run_id: str
    _detected: Detected | None = field(default=None, repr=False)

    def run(self, *args: str, limit: float | None = None) -> Result:
        """Run the CLI, bounded by ``limit`` seconds (default: the profile's connect + request timeouts)."""
        argv = [str(self.cli.path), *args]
        env = dict(os.environ)
        value = self.kubeconfig.environment_value or (str(self.kubeconfig.path) if self.kubeconfig.path else None)
        if value is not None:
            env["KUBECONFIG"] = value  # every file merged, in order: the same user and context as the K8S checks
        limit = limit or self.timeouts.connect + self.timeouts.request
        started = time.monotonic()
        try:
            proc = subprocess.run(  # noqa: S603 - the profile's runai executable with fixed arguments
                argv, env=env, capture_output=True, text=True, timeout=limit, check=False, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            return Result(argv, None, "", "", time.monotonic() - started)
        except OSError as exc:
            return Result(argv, 127, "", f"cannot run {argv[0]}: {exc.strerror}", time.monotonic() - started)
        return Result(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    @property
    def detected(self) -> Detected:
        if self._detected is None:
            self._detected = detect(self.run)
        return self._detected

    @property
    def generation(self) -> Generation:
        """The generation, for the commands below; a CLI whose version cannot be read is an error."""
        generation = self.detected.generation
        if generation is None:
            raise CannotEvaluate(
                f"`runai version` does not say which Run:ai CLI this is: {self.detected.result.summary()}"
            )
        return generation

    @property
    def project(self) -> str:
        return self.section.project

    def set_project_command(self) -> str:
        verb = "project set" if self.generation == NEW else "config project"
        return f"runai {verb} {self.project}"

    def job_name(self) -> str:
        return f"conformance-{self.run_id}-rai".lower()[:63]

    def whoami(self) -> Result:
        """The new CLI's own answer to "am I logged in" (``runai whoami``; exit 0 when logged in)."""
        return self.run("whoami")

    def projects(self) -> tuple[Result, list[str], str | None]:
        """(the listing's result, your project names, the default project)."""
        if self.generation == KUBECONFIG:
            result = self.run("list", "projects")
            names, default = parse_projects(result.stdout) if result.ok else ([], None)
            return result, names, default
        listed = self.run("project", "list", "--json")
        if not ran_ok(listed, json_wanted=True):
            return listed, [], None
        config = self.run("config", "describe", "--json")
        default = parse_config_project(config.stdout) if config.ok else None
        return listed, parse_project_list_json(listed.stdout) or [], default

    def submit(self, name: str, command: list[str]) -> Result:
        """Submit the smoke job; bounded by the check's timeout (the new CLI waits up to a minute by default
        for the workload to be created in the cluster: ``--wait-for-submit``)."""
        limit = max(self.timeouts.check, self.timeouts.connect + self.timeouts.request)
        if self.generation == NEW:
            return self.run(
                "training", "submit", name, "--project", self.project, "-i", self.section.smoke_image,
                "--cpu-core-request", "0.1", "--cpu-memory-request", "64M", "--command", "--", *command,
                limit=limit,
            )  # fmt: skip
        # As the guide submits (06c-job-orchestration), with the smallest resources and /bin/sh (Alpine has no bash).
        return self.run(
            "submit", name, "-p", self.project, "-i", self.section.smoke_image,
            "--cpu", "0.1", "--memory", "64M", "--command", "--", *command,
            limit=limit,
        )  # fmt: skip

    def describe(self, name: str) -> tuple[Result, str | None]:
        """(result, status): from ``-o json``; the text output (any case) when the CLI has no JSON."""
        if self.generation == NEW:
            base = ["training", "describe", name, "--project", self.project]
        else:
            base = ["describe", "job", name, "-p", self.project]
        result = self.run(*base, "-o", "json")
        if not ran_ok(result, json_wanted=True):
            text = self.run(*base)
            if text.ok or not result.ok:
                result = text
        return result, parse_status(result.stdout) if result.ok else None

    def describe_command(self, name: str) -> str:
        """The command a user runs to see the job's details and events."""
        if self.generation == NEW:
            return f"runai training describe {name} --project {self.project}"
        return f"runai describe job {name} -p {self.project}"

    def logs(self, name: str) -> Result:
        if self.generation == NEW:
            return self.run("training", "logs", name, "--project", self.project)
        return self.run("logs", name, "-p", self.project)

    def delete(self, name: str) -> Result:
        if self.generation == NEW:
            return self.run("training", "delete", name, "--project", self.project, "-y")
        return self.run("delete", "job", name, "-p", self.project)

    def list_jobs(self) -> tuple[Result, list[str]]:
        if self.generation == NEW:
            result = self.run("training", "list", "--project", self.project, "--json")
        else:
            result = self.run("list", "jobs", "-p", self.project)
        return result, parse_jobs(result.stdout) if result.ok else []


def connect(profile: Profile, run_id: str) -> RunaiClient:
    section = profile.runai
    if section is None:
        raise CannotEvaluate("the profile has no runai section")
    cli = find_cli(section)
    if not cli.found:
        raise CannotEvaluate(f"the runai CLI {section.cli!r} is not found or not executable")
    return RunaiClient(cli, section, find_kubeconfig(profile.kubernetes), profile.timeouts, run_id)


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """Delete, through the CLI, the project's jobs named by runs before ``older_than``."""
    cli = connect(profile, "cleanup")
    listed, names = cli.list_jobs()
    if not listed.ok:
        raise CannotEvaluate(f"listing the Run:ai jobs of project {cli.project}: {listed.summary()}")
    swept = Swept()
    for name in sorted(n for n in names if eligible(n, older_than)):
        where = f"job {name} (project {cli.project})"
        deleted = None if dry_run else cli.delete(name)
        if deleted is None or deleted.ok:
            swept.items.append(where)
        else:
            swept.failures.append(f"{where} ({deleted.summary()})")
    return swept
