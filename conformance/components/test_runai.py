"""RAI: can this workspace drive Run:ai the way the guide does (CLI v2, its login, its project)?

The ``runai`` executable runs with ``KUBECONFIG`` set to the kubernetes section's kubeconfig,
where ``runai login`` keeps its OIDC id-token (read, never printed; its expiry is decoded from
the JWT without verification). Only on Run:ai profiles (``runai`` marker).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.checks import Blocked, CannotEvaluate, check, expect, expires_in_time, wait_for
from conformance.profile import LoadedProfile, Profile, Runai

LOGIN_HINT = "Run:ai logins last 30 days on the platform (F5): run `runai login` with KUBECONFIG set to this file"


def _client() -> Any:
    return importlib.import_module("conformance.clients.runai")


def _kube_client() -> Any:
    return importlib.import_module("conformance.clients.kubernetes")


def _section(profile: Profile) -> Runai:
    if profile.runai is None:  # the plugin skips RAI checks first; this is for direct callers
        raise CannotEvaluate("the profile has no runai section")
    return profile.runai


@pytest.fixture(scope="session")
def runai_cli(profile: Profile) -> Any:
    """Where the configured runai executable is (no network, nothing run)."""
    return _client().find_cli(_section(profile))


@pytest.fixture(scope="session")
def cli(runai_cli: Any, request: pytest.FixtureRequest) -> Any:
    if not runai_cli.found:
        raise Blocked("RAI-001", f"runai CLI {runai_cli.configured!r} not found")
    return request.getfixturevalue("runai")


@pytest.fixture(scope="session")
def runai_login(profile: Profile, loaded_profile: LoadedProfile) -> tuple[Any, Any]:
    """(kubeconfig, its user's credential); the credentials join the report's redaction list."""
    kube = _kube_client()
    kc = kube.find_kubeconfig(profile.kubernetes)
    kube.register_credentials(kc, loaded_profile.secrets)
    if kc.problem:
        raise Blocked("K8S-001", kc.problem)
    if kc.context_problem:
        raise Blocked("K8S-002", kc.context_problem)
    return kc, kube.credential(kc)


@pytest.mark.runai
@check(
    "RAI-001",
    """
    Download the Run:ai CLI from the Run:ai dashboard (? > Researcher Command Line Interface), `chmod +x runai`,
    move it onto PATH (e.g. /usr/local/bin/runai), or set runai.cli to its path. In Coder workspaces it is
    provided under /pvc-data/utils.
    """,
)
def test_cli_found(runai_cli: Any, evidence: dict[str, Any]) -> None:
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
    The guide's commands are for the Run:ai CLI v2 (`runai submit`, `runai config project`). Download the CLI
    matching the cluster from the Run:ai dashboard and replace the old one.
    """,
)
def test_cli_version(cli: Any, evidence: dict[str, Any]) -> None:
    result = cli.run("version")
    version = _client().parse_version(result.stdout) if result.ok else None
    evidence.update({"cli": cli.cli.path, "version": version, "seconds": round(result.seconds, 3)})
    expect(
        version is not None,
        expected="`runai version` prints Version: 2.x",
        actual=result.summary() if not result.ok else "no Version: line in its output",
        hint="this is not the Run:ai CLI, or it cannot start on this OS",
    )
    expect(
        str(version).split(".")[0] == "2",
        expected="the Run:ai CLI is major version 2, as the guide uses",
        actual=f"runai version {version}",
        hint="an old CLI left on PATH from an earlier cluster",
    )


@pytest.mark.runai
@check(
    "RAI-003",
    """
    Log in again: `export KUBECONFIG=<your kubeconfig>; runai login`, open the link, paste the code. A login
    lasts 30 days on the platform; within the profile's expiry_horizon_days (default 7) of its end this check
    fails with the date, and warns within twice that.
    """,
)
def test_logged_in(runai_login: tuple[Any, Any], profile: Profile, evidence: dict[str, Any]) -> None:
    kc, credential = runai_login
    provider = (kc.user.get("auth-provider") or {}).get("name")
    evidence.update({"kubeconfig": str(kc.path), "user": kc.user_name, "credential": credential.kind})
    expect(
        provider == "oidc",
        expected=f"user {kc.user_name!r} carries a Run:ai login (auth-provider oidc, as in the provided kubeconfig)",
        actual=f"user {kc.user_name!r} authenticates with {credential.kind}",
        hint="the kubeconfig is not the one the MLOps team provided for Run:ai",
    )
    days = credential.days_left()
    if credential.expires is not None:
        evidence.update({"expires": f"{credential.expires:%Y-%m-%d %H:%M} UTC", "days_left": round(days, 1)})
    expect(
        credential.problem is None,
        expected="a Run:ai login that has not expired",
        actual=credential.problem or "",
        hint=LOGIN_HINT,
    )
    if credential.expires is not None:
        horizon = profile.expiry_horizon_days
        expires_in_time(
            "the Run:ai login",
            credential.expires,
            horizon_days=horizon,
            check_id="RAI-003",
            evidence=evidence,
            remedy=LOGIN_HINT,
        )


@pytest.fixture(scope="session")
def project_listing(cli: Any) -> tuple[list[str], str | None]:
    """``runai list projects``: (names, the default); an error (not a failure) when the CLI cannot list."""
    result = cli.run("list", "projects")
    if not result.ok:
        raise CannotEvaluate(f"`runai list projects` failed: {result.summary()}", LOGIN_HINT)
    found: tuple[list[str], str | None] = _client().parse_projects(result.stdout)
    return found


@pytest.mark.runai
@check(
    "RAI-004",
    """
    Set the default project as the guide does: `runai config project <project>` (the project from the
    profile, runai.project). Check the spelling with `runai list projects`.
    """,
)
def test_project_configured(cli: Any, project_listing: tuple[list[str], str | None], evidence: dict[str, Any]) -> None:
    names, default = project_listing
    evidence.update({"projects": names, "default_project": default, "context_namespace": cli.kubeconfig.namespace})
    expect(
        cli.project in names,
        expected=f"project {cli.project} is one of yours",
        actual=f"your projects: {', '.join(names) or 'none'}",
        hint="you are not a member of the project, or runai.project is misspelt",
    )
    expect(
        default == cli.project,
        expected=f"the default project is {cli.project}",
        actual=f"the default project is {default}" if default else "no project is marked (default)",
        hint=f"`runai config project {cli.project}` was not run with this kubeconfig (F5)",
    )


@pytest.fixture(scope="session")
def runai_job(cli: Any) -> Iterator[tuple[str, Any]]:
    """The run's Run:ai job, submitted once and deleted in teardown."""
    name = cli.job_name()
    submitted = cli.submit(name, ["/bin/sh", "-c", f"echo {name}"])
    yield name, submitted
    if submitted.ok:
        cli.delete(name)


@pytest.mark.runai
@pytest.mark.writes
@check(
    "RAI-005",
    """
    A Run:ai job did not run to completion: the message names the step. Submission refused: check the login
    (RAI-003) and the project (RAI-004). Pending: the project has no quota left or the image cannot be pulled.
    Jobs must use /bin/sh in Alpine images, which have no bash or python (F16).
    """,
)
def test_smoke_job(cli: Any, runai_job: tuple[str, Any], profile: Profile, evidence: dict[str, Any]) -> None:
    name, submitted = runai_job
    evidence.update({"job": name, "project": cli.project, "image": cli.section.smoke_image})
    expect(
        submitted.ok,
        expected=f"`runai submit {name} -p {cli.project} -i {cli.section.smoke_image} --command -- /bin/sh -c` works",
        actual=submitted.summary(),
        hint="not logged in, or no permission in the project",
    )

    def probe() -> tuple[bool, str]:
        result, status = cli.describe(name)
        return status in _client().FINAL or not result.ok, status or result.summary()

    status = wait_for(probe, timeout=profile.timeouts.check, describe=f"Run:ai job {name} finishes")
    evidence["status"] = status
    expect(
        status == "Succeeded",
        expected=f"job {name} succeeds",
        actual=f"Status: {status}",
        hint="read `runai describe job` and the pod events",
    )
    logs = cli.logs(name)
    evidence["log"] = logs.stdout.strip()[:200]
    expect(
        logs.ok and logs.stdout.strip() == name,
        expected=f"`runai logs {name}` prints {name!r}",
        actual=logs.summary() if not logs.ok else f"log {logs.stdout.strip()[:80]!r}",
        hint="the job ran another command, or its logs cannot be read",
    )
