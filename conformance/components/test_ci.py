"""CI: Continuous X. Can the project's GitLab CI/CD run the guide's pipeline?

Read from GitLab's API with the gitlab section's token, changing nothing: a runner the project may use
is online, not paused, and has the tags its jobs carry (``ci.runner_tags``: the guide tags jobs
``on-prem`` or ``gcp``); the project's ``.gitlab-ci.yml`` passes GitLab's own CI lint. The CI/CD
variables and the pipeline schedule stay GIT-013 and GIT-014 (their ids are kept for waivers).
python-gitlab loads only when these checks run (the ``ci`` fixture imports the client).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from conformance.checks import CannotEvaluate, check, expect

if TYPE_CHECKING:  # the clients import python-gitlab and requests; the ``ci`` fixture loads them at run time
    from conformance.clients.ci import CiClient, Runner, RunnerListing
    from conformance.clients.gitlab import Reply

RUNNERS_NEED = "the Maintainer role"  # read_project_runners (gitlabhq lib/api/ci/runners.rb, project_policy.rb)
SHOWN = 5  # runners named in a failure; the evidence lists them all


@pytest.fixture(scope="session")
def ci_project(ci: CiClient) -> dict[str, Any]:
    """The project, once GitLab accepts the token and shows it (GIT-001..004 say why not)."""
    return ci.gitlab.readable_project()


def _level_name(ci: CiClient, project: dict[str, Any]) -> str:
    """The token user's role on the project, in words (to say what it could and could not see)."""
    from conformance.clients.gitlab import ACCESS_LEVELS  # noqa: PLC0415 - python-gitlab loads at run time

    try:
        access = ci.gitlab.access(project)
    except CannotEvaluate as exc:
        return f"a role GitLab did not tell ({exc.reason})"
    if access.admin:
        return "an administrator"
    return f"{ACCESS_LEVELS.get(access.level, 'access level')} ({access.level})"


def _wanted(tags: list[str]) -> str:
    return f"tags {', '.join(tags)}" if tags else "no tags (a runner that runs untagged jobs)"


@pytest.fixture(scope="session")
def ci_runners(ci: CiClient, ci_project: dict[str, Any]) -> RunnerListing:
    """The runners the project sees, and those with the profile's tags; when the token's role may not list
    them, what it could see instead (the project's own settings) and what it could not."""
    listing = ci.runners(list(ci.section.runner_tags))
    if listing.reply.ok:
        return listing
    project = ci.gitlab.section.project
    if listing.reply.status == 403:
        seen = ci_project.get("shared_runners_enabled")
        could = (
            f"the project, with instance runners {'enabled' if seen else 'disabled'} (shared_runners_enabled: "
            f"{str(seen).lower()})"
            if isinstance(seen, bool)
            else "the project"
        )
        raise CannotEvaluate(
            f"GitLab refused to list the runners of {project} ({listing.reply.summary()}): listing them needs "
            f"{RUNNERS_NEED} and the token's user is {_level_name(ci, ci_project)}; it could see {could}, not which "
            f"runners are online with {_wanted(list(ci.section.runner_tags))}",
            hint="run CI-001 with a Maintainer's token, or ask a Maintainer to look in Settings > CI/CD > Runners",
        )
    raise CannotEvaluate(f"listing the runners of {project} answered {listing.reply.summary()}")


@pytest.fixture(scope="session")
def ci_lint(ci: CiClient, ci_project: dict[str, Any]) -> Reply:
    """GitLab's answer to the project's CI lint; CannotEvaluate when it gave none (an empty repository is an
    answer: CI-002 fails on it)."""
    reply = ci.lint()
    project = ci.gitlab.section.project
    if reply.ok or (reply.status == 404 and "Repository" in reply.error):
        return reply
    if reply.route_missing:
        raise CannotEvaluate(
            f"this GitLab has no GET /projects/:id/ci/lint ({reply.summary()})",
            hint="the project CI lint endpoint needs GitLab 13.5 or later; lint in Build > Pipeline editor instead",
        )
    if reply.status == 403:
        raise CannotEvaluate(
            f"GitLab refused to lint the CI configuration of {project} ({reply.summary()})",
            hint="the lint reads the project's code: it needs the Reporter role or above",
        )
    raise CannotEvaluate(f"the CI lint of {project} answered {reply.summary()}")


def _why_unusable(runner: Runner, project: dict[str, Any]) -> str | None:
    """Why the project's jobs cannot run on ``runner`` now (None: they can)."""
    if runner.runner_type == "instance_type" and project.get("shared_runners_enabled") is False:
        return "instance runners are disabled for the project (shared_runners_enabled: false)"
    if runner.runner_type == "group_type" and project.get("group_runners_enabled") is False:
        return "group runners are disabled for the project (group_runners_enabled: false)"
    if runner.paused:
        return "paused: it takes no new jobs"
    if not runner.online:
        return f"not online (status {runner.status or 'offline'}): it has not contacted GitLab recently"
    return None


@check(
    "CI-001",
    """
    No runner can take the project's jobs. Ask the MLOps team for a runner with the guide's tag for your
    platform (`on-prem` on-prem, `gcp` on GCP), or fix ci.runner_tags if your .gitlab-ci.yml uses others.
    A paused runner: resume it in Settings > CI/CD > Runners. An offline one: its host or its gitlab-runner
    service is down. Instance runners disabled: turn on "Enable instance runners for this project" there.
    Listing runners needs the Maintainer role on the project.
    """,
)
def test_runner_online_with_tags(
    ci: CiClient, ci_project: dict[str, Any], ci_runners: RunnerListing, evidence: dict[str, Any]
) -> None:
    tags: list[str] = list(ci.section.runner_tags)
    want = _wanted(tags)
    evidence.update({"runner_tags": tags, "shared_runners_enabled": ci_project.get("shared_runners_enabled")})
    listing = ci_runners
    evidence["runners"] = [r.describe() for r in listing.runners]
    evidence["with_tags"] = [r.describe() for r in listing.tagged]
    reasons = {r.id: _why_unusable(r, ci_project) for r in listing.tagged}
    usable = [r for r in listing.tagged if reasons[r.id] is None]
    evidence["usable"] = [r.describe() for r in usable]
    if listing.tagged:
        actual = "; ".join(f"{r.describe()}: {reasons[r.id]}" for r in listing.tagged[:SHOWN])
        hint = "a runner with the tags exists but cannot take jobs now"
    else:
        shown = ", ".join(r.describe() for r in listing.runners[:SHOWN]) or "none"
        actual = f"none of the {len(listing.runners)} runner(s) the project sees has {want} (runners: {shown})"
        hint = "a job waits in 'pending' forever when no runner has all of its tags"
    expect(
        usable,
        expected=f"an online, unpaused runner the project may use, with {want}",
        actual=actual,
        hint=hint,
    )


@check(
    "CI-002",
    """
    The project's .gitlab-ci.yml does not pass GitLab's CI lint, so no pipeline starts. Open Build > Pipeline
    editor (it shows the same errors with their lines), fix them, and commit to the default branch. A missing
    file: add the guide's .gitlab-ci.yml (the cookiecutter generates one).
    """,
)
def test_ci_lint(ci: CiClient, ci_project: dict[str, Any], ci_lint: Reply, evidence: dict[str, Any]) -> None:
    branch = str(ci_project.get("default_branch") or "the default branch")
    evidence["ref"] = branch
    reply = ci_lint
    expect(
        reply.ok,
        expected=f"{ci.gitlab.section.project} has a repository with a .gitlab-ci.yml",
        actual=f"GitLab answered {reply.summary()}: the repository is empty",
    )
    result: dict[str, Any] = reply.data
    errors = [str(e) for e in result.get("errors") or []]
    warnings = [str(w) for w in result.get("warnings") or []]
    evidence.update({"valid": result.get("valid"), "errors": errors, "warnings": warnings})
    evidence["includes"] = len(result.get("includes") or [])
    expect(
        result.get("valid") is True and not errors,
        expected=f"the .gitlab-ci.yml on {branch} passes GitLab's CI lint",
        actual="; ".join(errors) if errors else "GitLab says it is not valid, without errors",
        hint="Build > Pipeline editor shows each error at its line",
    )
