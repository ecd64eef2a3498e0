"""How to drive the Run:ai CLI (v2, kubeconfig-based) the way the guide does. Reports; never asserts.

The CLI is run as a child process with ``KUBECONFIG`` set to the kubeconfig the kubernetes
section selects (the guide: ``export KUBECONFIG=...; runai login``), each call bounded by the
profile's timeouts. Its login lives in that kubeconfig (``auth-provider: oidc`` with an
``id-token``), read by :mod:`conformance.clients.kubernetes`; the token is never printed.
Output is parsed from the CLI's documented shapes: ``Version: 2.x.y``, the ``(default)`` marker
of ``runai list projects``, ``Status:`` of ``runai describe job``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conformance.checks import CannotEvaluate
from conformance.cleanup import Swept, eligible
from conformance.clients.kubernetes import Kubeconfig, find_kubeconfig
from conformance.profile import Profile, Runai, Timeouts

_VERSION = re.compile(r"^\s*Version:\s*v?(?P<version>\d+\.\d+(?:\.\d+)?\S*)", re.MULTILINE | re.IGNORECASE)
_VERSION_ALT = re.compile(r"\bversion\s+v?(?P<version>\d+\.\d+(?:\.\d+)?\S*)", re.IGNORECASE)
_STATUS = re.compile(r"^\s*Status:\s*(?P<status>\S+)", re.MULTILINE)
FINAL = ("Succeeded", "Failed", "Error", "Deleted", "Completed")


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
    match = _VERSION.search(text) or _VERSION_ALT.search(text)
    return match.group("version") if match else None


def parse_projects(text: str) -> tuple[list[str], str | None]:
    """(project names, the one marked ``(default)``) from ``runai list projects``."""
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


def parse_jobs(text: str) -> list[str]:
    """Job names from ``runai list jobs``: the first column of the rows under the ``NAME`` header."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.split()[:1] == ["NAME"]), None)
    return [] if header is None else [line.split()[0] for line in lines[header + 1 :] if line.strip()]


def parse_status(text: str) -> str | None:
    match = _STATUS.search(text)
    return match.group("status") if match else None


@dataclass
class RunaiCli:
    cli: Cli
    section: Runai
    kubeconfig: Kubeconfig
    timeouts: Timeouts
    run_id: str

    def run(self, *args: str) -> Result:
        argv = [str(self.cli.path), *args]
        env = dict(os.environ)
        if self.kubeconfig.path is not None:
            env["KUBECONFIG"] = str(self.kubeconfig.path)
        limit = self.timeouts.connect + self.timeouts.request
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
    def project(self) -> str:
        return self.section.project

    def job_name(self) -> str:
        return f"conformance-{self.run_id}-rai".lower()[:63]

    def submit(self, name: str, command: list[str]) -> Result:
        # As the guide submits (06c-job-orchestration), with the smallest resources and /bin/sh (F16).
        return self.run(
            "submit", name, "-p", self.project, "-i", self.section.smoke_image,
            "--cpu", "0.1", "--memory", "64M", "--command", "--", *command,
        )  # fmt: skip

    def describe(self, name: str) -> tuple[Result, str | None]:
        result = self.run("describe", "job", name, "-p", self.project)
        return result, parse_status(result.stdout) if result.ok else None

    def logs(self, name: str) -> Result:
        return self.run("logs", name, "-p", self.project)

    def delete(self, name: str) -> Result:
        return self.run("delete", "job", name, "-p", self.project)

    def list_jobs(self) -> tuple[Result, list[str]]:
        result = self.run("list", "jobs", "-p", self.project)
        return result, parse_jobs(result.stdout) if result.ok else []


def connect(profile: Profile, run_id: str) -> RunaiCli:
    section = profile.runai
    if section is None:
        raise CannotEvaluate("the profile has no runai section")
    cli = find_cli(section)
    if not cli.found:
        raise CannotEvaluate(f"the runai CLI {section.cli!r} is not found or not executable")
    return RunaiCli(cli, section, find_kubeconfig(profile.kubernetes), profile.timeouts, run_id)


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """Delete, through the CLI, the project's jobs named by runs before ``older_than``."""
    cli = connect(profile, "cleanup")
    listed, names = cli.list_jobs()
    if not listed.ok:
        raise CannotEvaluate(f"runai list jobs -p {cli.project}: {listed.summary()}")
    swept = Swept()
    for name in sorted(n for n in names if eligible(n, older_than)):
        where = f"job {name} (project {cli.project})"
        deleted = None if dry_run else cli.delete(name)
        if deleted is None or deleted.ok:
            swept.items.append(where)
        else:
            swept.failures.append(f"{where} ({deleted.summary()})")
    return swept
