"""RAI: can this workspace drive Run:ai the way the guide does (the CLI, its login, its project)?

Both generations of the CLI are supported (``conformance.clients.runai``): the guide's
kubeconfig-based CLI, run with ``KUBECONFIG`` set to the kubernetes section's kubeconfig where
``runai login`` keeps its OIDC id-token (read, never printed); and Run:ai's new CLI (clusters
2.18+), whose login and default project live under ``~/.runai/`` and are asked of the CLI itself
(``runai whoami``, ``runai config describe``). Only on Run:ai profiles (``runai`` marker).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance.checks import Blocked, CannotEvaluate, check, expect, expires_in_time, wait_for
from conformance.clients import kubernetes as kube_client
from conformance.clients import runai as runai_client
from conformance.clients.kubernetes import Credential, Kubeconfig
from conformance.clients.runai import Cli, Generation, Result, RunaiClient
from conformance.profile import Profile, Runai

LOGIN_HINT = "Run:ai logins last 30 days on the platform: run `runai login` with KUBECONFIG set to this file"
NEW_LOGIN_HINT = "run `runai login` (the new CLI keeps its login under ~/.runai/, or RUNAI_CLI_CONFIG_PATH)"


def _section(profile: Profile) -> Runai:
    if profile.runai is None:  # the plugin skips RAI checks first; this is for direct callers
        raise CannotEvaluate("the profile has no runai section")
    return profile.runai


@pytest.fixture(scope="session")
def runai_cli(profile: Profile) -> Cli:
    """Where the configured runai executable is (no network, nothing run)."""
    return runai_client.find_cli(_section(profile))


@pytest.fixture(scope="session")
def cli(runai_cli: Cli, request: pytest.FixtureRequest) -> RunaiClient:
    if not runai_cli.found:
        raise Blocked("RAI-001", f"runai CLI {runai_cli.configured!r} not found")
    cli: RunaiClient = request.getfixturevalue("runai")
    return cli


@pytest.fixture(scope="session")
def runai_login(profile: Profile) -> tuple[Kubeconfig, Credential]:
    """(kubeconfig, its user's credential), read now; the profile's opening indexed its credentials."""
    kube = kube_client
    kc = kube.find_kubeconfig(profile.kubernetes)
    if kc.problem:
        raise Blocked("K8S-001", kc.problem)
    if kc.context_problem:
        raise Blocked("K8S-002", kc.context_problem)
    return kc, kube.obtain(kc, kube.credential(kc), profile.tls, profile.timeouts)  # renews as runai/kubectl do


@pytest.mark.runai
@check(
    "RAI-001",
    """
    Download the Run:ai CLI from the Run:ai dashboard (? > Researcher Command Line Interface), `chmod +x runai`,
    move it onto PATH (e.g. /usr/local/bin/runai), or set runai.cli to its path. In Coder workspaces it is
    provided under /pvc-data/utils.
    """,
)
def test_cli_found(runai_cli: Cli, evidence: dict[str, Any]) -> None:
    evidence.update({"configured": runai_cli.configured, "path": runai_cli.path})
    expect(
        runai_cli.found,
        expected=f"the runai CLI ({runai_cli.configured}) is on PATH and executable",
        actual=f"{runai_cli.configured} is not found or not executable",
        hint="the CLI was downloaded but not moved onto PATH or made executable",
    )


@pytest.mark.runai
@check(
    "RAI-002",
    """
    Use a Run:ai CLI that matches the cluster: the guide's kubeconfig-based CLI 2.x, or Run:ai's new CLI for
    clusters 2.18 and up. Download it from the Run:ai dashboard (? > Researcher Command Line Interface) and
    replace the one on PATH.
    """,
)
def test_cli_version(cli: RunaiClient, evidence: dict[str, Any]) -> None:
    detected = cli.detected
    result = detected.result
    evidence.update(
        {
            "cli": cli.cli.path,
            "version": detected.version,
            "generation": detected.generation,
            "seconds": round(result.seconds, 3),
        }
    )
    problem = runai_client.version_problem(detected)
    expect(
        problem is None,
        expected="a Run:ai CLI the suite can drive: the guide's kubeconfig CLI 2.x, or the new CLI (clusters 2.18+)",
        actual=(result.summary() if not result.ok else problem[0]) if problem else "",
        hint=problem[1] if problem else "",
    )


def _generation(cli: RunaiClient) -> Generation:
    """The CLI's generation; a CLI whose version cannot be read blocks the checks that depend on it."""
    if cli.detected.generation is None:
        raise Blocked(
            "RAI-002", f"`runai version` does not say which Run:ai CLI this is: {cli.detected.result.summary()}"
        )
    return cli.detected.generation


@pytest.mark.runai
@check(
    "RAI-003",
    """
    Log in again with `runai login`: the guide's CLI after `export KUBECONFIG=<your kubeconfig>` (open the link,
    paste the code), the new CLI as it is (`runai whoami` then shows who you are). A login lasts 30 days on the
    platform; within the profile's expiry_horizon_days (default 7) of its end this check fails with the date, and
    warns within twice that.
    """,
)
def test_logged_in(
    cli: RunaiClient, request: pytest.FixtureRequest, profile: Profile, evidence: dict[str, Any]
) -> None:
    generation = _generation(cli)
    evidence["generation"] = generation
    if generation == runai_client.NEW:
        # The new CLI keeps its login under ~/.runai/; only the CLI itself can say whether it still holds.
        result = cli.whoami()
        lines = (result.stdout.strip() or result.stderr.strip()).splitlines()
        evidence.update(
            {"whoami": lines[0][:120] if result.ok and lines else None, "seconds": round(result.seconds, 3)}
        )
        expect(
            result.ok,
            expected="`runai whoami` names the logged-in user",
            actual=result.summary(),
            hint=NEW_LOGIN_HINT,
        )
        return
    # Ask the CLI first: a read with the login, which refreshes an expired id-token (and writes it back) the
    # way client-go's oidc auth-provider does for kubectl and runai. Only then is the kubeconfig read.
    listed = cli.run("list", "projects")
    kc, credential = request.getfixturevalue("runai_login")
    provider = (kc.user.get("auth-provider") or {}).get("name")
    evidence.update({"kubeconfig": str(kc.path), "user": kc.user_name, "credential": credential.kind})
    evidence["cli_read"] = "ok" if listed.ok else listed.summary()
    expect(
        provider == "oidc",
        expected=f"user {kc.user_name!r} carries a Run:ai login (auth-provider oidc, as in the provided kubeconfig)",
        actual=f"user {kc.user_name!r} authenticates with {credential.kind}",
        hint="the kubeconfig is not the one the MLOps team provided for Run:ai",
    )
    expect(
        listed.ok,
        expected="the CLI reads with this login (`runai list projects`)",
        actual="; ".join(part for part in (credential.problem, f"`runai list projects`: {listed.summary()}") if part),
        hint=LOGIN_HINT,
    )
    if credential.expires is not None:
        evidence["id_token_expires"] = f"{credential.expires:%Y-%m-%d %H:%M} UTC"
    evidence["login_end"] = credential.login_end
    if credential.login_expires is not None:  # the login's end, not the short-lived id-token's
        expires_in_time(
            "the Run:ai login",
            credential.login_expires,
            horizon_days=profile.expiry_horizon_days,
            check_id="RAI-003",
            evidence=evidence,
            remedy=LOGIN_HINT,
        )


@pytest.fixture(scope="session")
def project_listing(cli: RunaiClient) -> tuple[list[str], str | None]:
    """Your projects and the default one, as the CLI lists them; an error (not a failure) when it cannot list."""
    generation = _generation(cli)
    result, names, default = cli.projects()
    if not result.ok:
        command = "runai project list" if generation == runai_client.NEW else "runai list projects"
        hint = NEW_LOGIN_HINT if generation == runai_client.NEW else LOGIN_HINT
        raise CannotEvaluate(f"`{command}` failed: {result.summary()}", hint)
    return names, default


@pytest.mark.runai
@check(
    "RAI-004",
    """
    Set the default project as the guide does: `runai config project <project>` (the guide's CLI) or
    `runai project set <project>` (the new CLI), with the project from the profile, runai.project. Check the
    spelling with `runai list projects` / `runai project list`.
    """,
)
def test_project_configured(
    cli: RunaiClient, project_listing: tuple[list[str], str | None], evidence: dict[str, Any]
) -> None:
    names, default = project_listing
    evidence.update({"projects": names, "default_project": default, "generation": cli.generation})
    if cli.generation == runai_client.KUBECONFIG:
        evidence["context_namespace"] = cli.kubeconfig.namespace
    expect(
        cli.project in names,
        expected=f"project {cli.project} is one of yours",
        actual=f"your projects: {', '.join(names) or 'none'}",
        hint="you are not a member of the project, or runai.project is misspelt",
    )
    where = "with this kubeconfig" if cli.generation == runai_client.KUBECONFIG else "for this user's ~/.runai/"
    expect(
        default == cli.project,
        expected=f"the default project is {cli.project}",
        actual=f"the default project is {default}" if default else "no default project is set",
        hint=f"`{cli.set_project_command()}` was not run {where}",
    )


@pytest.fixture(scope="session")
def runai_job(cli: RunaiClient) -> Iterator[tuple[str, Result]]:
    """The run's Run:ai job, submitted once and deleted in teardown."""
    _generation(cli)
    name = cli.job_name()
    submitted = cli.submit(name, ["/bin/sh", "-c", f"echo {name}"])
    yield name, submitted
    if submitted.ok or submitted.rc is None:  # a submission cut off by the timeout may still have created it
        cli.delete(name)


@pytest.mark.runai
@pytest.mark.writes
@check(
    "RAI-005",
    """
    A Run:ai job did not run to completion: the message names the step. Submission refused: check the login
    (RAI-003) and the project (RAI-004). Pending: the project has no quota left or the image cannot be pulled.
    Jobs must use /bin/sh in Alpine images, which have no bash or python.
    """,
)
def test_smoke_job(cli: RunaiClient, runai_job: tuple[str, Result], profile: Profile, evidence: dict[str, Any]) -> None:
    name, submitted = runai_job
    evidence.update(
        {"job": name, "project": cli.project, "image": cli.section.smoke_image, "generation": cli.generation}
    )
    expect(
        submitted.ok,
        expected=f"submitting job {name} to project {cli.project} with image {cli.section.smoke_image} works",
        actual=submitted.summary(),
        hint="not logged in, or no permission in the project",
    )

    described: list[Any] = []

    def probe() -> tuple[bool, str]:
        result, status = cli.describe(name)
        described[:] = [result]
        return runai_client.outcome(status) is not None or not result.ok, status or result.summary()

    status = wait_for(probe, timeout=profile.timeouts.check, describe=f"Run:ai job {name} finishes")
    evidence["status"] = status
    expect(
        described[-1].ok,
        expected=f"the CLI describes job {name}",
        actual=f"`{' '.join(described[-1].argv[1:4])}` failed: {status}",
        hint="the job was deleted while it ran, or the CLI lost its login",
    )
    expect(
        runai_client.outcome(status) == "succeeded",
        expected=f"job {name} runs to completion (Succeeded / Completed)",
        actual=f"the job ended with status {status}",
        hint=f"the job's container failed: read the events of `{cli.describe_command(name)}` and the job's log",
    )
    logs = cli.logs(name)
    evidence["log"] = logs.stdout.strip()[:200]
    expect(
        logs.ok and logs.stdout.strip() == name,
        expected=f"the job's log is {name!r}",
        actual=logs.summary() if not logs.ok else f"log {logs.stdout.strip()[:80]!r}",
        hint="the job ran another command, or its logs cannot be read",
    )
