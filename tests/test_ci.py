"""CI checks against the sandbox's GitLab: each passes there and fails (or cannot be evaluated) for its own cause.

Faults are profiles in tmp_path: runner tags no runner has, or only an offline or a paused runner has; the
project whose instance runners are turned off and whose .gitlab-ci.yml has two typos; a Reporter's token,
which may not list runners; a wrong token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.clients import ci as client
from conformance.sandbox import gitlab_api
from tests.conftest import SuiteRun

WRONG_TOKEN = "glpat-WrongCanary0123456789"  # noqa: S105 - a canary the server must refuse, no credential


def _profile(directory: Path, gitlab: dict[str, Any], ci: dict[str, Any] | None, platform: str) -> Path:
    data: dict[str, Any] = {
        "platform": platform,
        "orchestrator": "runai",
        "timeouts": {"connect": 2, "request": 5},
        "tls": {"ca_bundle": "${SANDBOX_CA_BUNDLE}"},
        "gitlab": {
            "url": "${SANDBOX_GITLAB_URL}",
            "project": "${SANDBOX_GITLAB_PROJECT}",
            "token": "env:TEST_GITLAB_TOKEN",
            "ssh": False,
            "checkout": "${SANDBOX_GIT_CHECKOUT}",
            **gitlab,
        },
    }
    if ci is not None:
        data["ci"] = ci
    path = directory / f"profile-{len(list(directory.glob('profile-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def run_ci(suite: Any, sandbox_env: dict[str, str], tmp_path: Path) -> Callable[..., SuiteRun]:
    """``run_ci(token kind or value, gitlab overrides, ci section or None, platform)``: the CI checks only."""

    def run(kind: str, gitlab: dict[str, Any], ci: dict[str, Any] | None = None, platform: str = "onprem") -> SuiteRun:
        variable = "SANDBOX_GITLAB_TOKEN" if kind == "good" else f"SANDBOX_GITLAB_{kind.upper()}_TOKEN"
        value = sandbox_env.get(variable, kind)
        profile = _profile(tmp_path, gitlab, ci, platform)
        result: SuiteRun = suite("-m", "ci", profile=profile, env={"TEST_GITLAB_TOKEN": value})
        assert "Traceback" not in result.output, result.output[-3000:]
        return result

    return run


# --------------------------------------------------------------------------- passing


@pytest.mark.parametrize(("profile", "runner"), [("sandbox", "#11"), ("sandbox-gcp", "#12")])
def test_every_ci_check_passes_on_the_sandbox(suite: Any, profile: str, runner: str) -> None:
    run = suite("-m", "ci", "-p", "no:cacheprovider", profile=profile)
    run.expect("CI-001", "passed")
    run.expect("CI-002", "passed")
    assert run.rc == 0, run.output[-3000:]
    evidence = run.check("CI-001")["evidence"]
    assert evidence["runner_tags"] == (["gcp"] if profile == "sandbox-gcp" else ["on-prem"])  # the guide's tags
    assert [u.split()[0] for u in evidence["usable"]] == [runner]
    if profile == "sandbox":  # the gpu runner has the tag too, but is offline: shown, not counted
        assert "#13 sandbox gpu runner (project runner, offline)" in evidence["with_tags"]
    lint = run.check("CI-002")["evidence"]
    assert lint == {"ref": "main", "valid": True, "errors": [], "warnings": [], "includes": 0}


def test_untagged_jobs_need_a_runner_that_runs_them(run_ci: Callable[..., SuiteRun]) -> None:
    run = run_ci("good", {}, {"runner_tags": []})
    run.expect("CI-001", "passed")
    assert run.check("CI-001")["evidence"]["usable"] == ["#12 sandbox gcp runner (project runner, online, tags gcp)"]


# --------------------------------------------------------------------------- failing


def test_no_runner_has_the_tag(run_ci: Callable[..., SuiteRun]) -> None:
    run = run_ci("good", {}, {"runner_tags": ["on-prem", "nvidia"]})
    run.expect(
        "CI-001",
        "failed",
        "an online, unpaused runner the project may use, with tags on-prem, nvidia",
        "none of the 4 runner(s) the project sees has tags on-prem, nvidia",
        "#11 sandbox instance runner (instance runner, online)",
        "no runner has all of its tags",
    )
    run.expect("CI-002", "passed")  # the lint does not depend on runners


def test_the_only_runner_with_the_tag_is_offline(run_ci: Callable[..., SuiteRun]) -> None:
    run = run_ci("good", {}, {"runner_tags": ["gpu"]})
    run.expect(
        "CI-001",
        "failed",
        "#13 sandbox gpu runner (project runner, offline): not online (status offline)",
        "cannot take jobs now",
    )


def test_the_only_runner_with_the_tag_is_paused(run_ci: Callable[..., SuiteRun]) -> None:
    run = run_ci("good", {}, {"runner_tags": ["a100"]})
    run.expect("CI-001", "failed", "#14 sandbox a100 runner (group runner, paused): paused: it takes no new jobs")


def test_instance_runners_disabled_and_a_ci_file_with_typos(run_ci: Callable[..., SuiteRun]) -> None:
    run = run_ci("good", {"project": "${SANDBOX_GITLAB_BROKEN_PROJECT}"})
    run.expect(
        "CI-001",
        "failed",
        "#11 sandbox instance runner (instance runner, online): instance runners are disabled for the project "
        "(shared_runners_enabled: false)",
    )
    assert run.check("CI-001")["evidence"]["shared_runners_enabled"] is False
    run.expect(
        "CI-002",
        "failed",
        "the .gitlab-ci.yml on main passes GitLab's CI lint",
        "jobs:test:pytest config contains unknown keys: tag",
        "jobs build:image config should implement the script:, run:, or trigger: keyword",
    )
    assert len(run.check("CI-002")["evidence"]["errors"]) == 2


def test_a_reporter_cannot_list_runners_and_is_told_what_it_saw(run_ci: Callable[..., SuiteRun]) -> None:
    run = run_ci("reporter", {})
    run.expect(
        "CI-001",
        "error",
        "GitLab refused to list the runners of mlops/kapitan-hull-sandbox (HTTP 403 403 Forbidden)",
        "listing them needs the Maintainer role and the token's user is Reporter (20)",
        "it could see the project, with instance runners enabled (shared_runners_enabled: true)",
        "not which runners are online with tags on-prem",
        "run CI-001 with a Maintainer's token",
    )
    run.expect("CI-002", "passed")  # the lint needs read_code: a Reporter has it


def test_a_wrong_token_blocks_both(run_ci: Callable[..., SuiteRun]) -> None:
    run = run_ci(WRONG_TOKEN, {})
    run.expect("CI-001", "error", "blocked by GIT-001", "401 Unauthorized")
    run.expect("CI-002", "error", "blocked by GIT-001", "401 Unauthorized")


# --------------------------------------------------------------------------- units


def test_runner_fields_of_older_gitlab() -> None:
    """Before 14.8 a runner has ``active`` and no ``paused``; ``online`` may be absent (then ``status`` says)."""
    old = client.Runner.of({"id": 3, "description": "old", "active": False, "status": "online"})
    assert (old.paused, old.online, old.describe()) == (True, True, "#3 old (runner, paused)")
    new = client.Runner.of({"id": 4, "description": "", "paused": False, "online": False, "status": "stale",
                            "runner_type": "instance_type"})  # fmt: skip
    assert (new.paused, new.online) == (False, False)
    assert new.describe() == "#4 (no description) (instance runner, stale)"


def test_simulated_lint_words_errors_as_gitlab_does() -> None:
    assert gitlab_api.lint(None)[0] == ["Please provide content of .gitlab-ci.yml"]
    assert gitlab_api.lint("- a\n- b\n")[0] == ["Invalid configuration format"]
    errors, merged = gitlab_api.lint("rubocop:\n  scriptt:\n    - bundle exec rubocop\n")
    assert errors == [  # gitlabhq spec/controllers/projects/ci/lints_controller_spec.rb
        "jobs rubocop config should implement the script:, run:, or trigger: keyword",
        "jobs config should contain at least one visible job",
    ]
    assert merged.startswith("---\n")
    errors = gitlab_api.lint("a:\n  extends: .missing\n  script: [x]\n")[0]
    assert errors == ["a: unknown keys in `extends` (.missing)", "jobs config should contain at least one visible job"]
    assert gitlab_api.lint(gitlab_api.SANDBOX_CI_YML)[0] == []


def test_simulated_api_runners_and_lint_follow_gitlabs_rules() -> None:
    kinds = ("good", "reporter", "developer", "expiring", "expired", "revoked", "read_only", "git_only", "shared")
    tokens = {kind: gitlab_api.new_token() for kind in (*kinds, "admin")}
    state = gitlab_api.default_state(tokens, "g/p", "g/broken")
    api = gitlab_api._Api(state, "https://localhost:1")
    status, body = api.answer("/api/v4/projects/g%2Fp/runners", {"tag_list": "gpu,on-prem"}, tokens["good"])
    assert (status, [r["id"] for r in body]) == (200, [13])  # every tag must match (tagged_with)
    status, body = api.answer("/api/v4/projects/g%2Fbroken/runners", {}, tokens["good"])
    assert [r["id"] for r in body] == [11, 14]  # instance runners are listed even where they are turned off
    assert api.answer("/api/v4/projects/g%2Fp/runners", {}, tokens["developer"]) == (403, {"message": "403 Forbidden"})
    assert api.answer("/api/v4/runners/11", {}, tokens["developer"])[0] == 200  # an instance runner: anyone
    assert api.answer("/api/v4/runners/12", {}, tokens["developer"])[1] == {
        "message": "403 Forbidden - No access granted"
    }
    assert api.answer("/api/v4/projects/g%2Fp/ci/lint", {}, tokens["reporter"])[1]["valid"] is True
    state["projects"][0]["empty_repo"] = True
    assert api.answer("/api/v4/projects/g%2Fp/ci/lint", {}, tokens["good"]) == (
        404,
        {"message": "404 Repository Not Found"},
    )


def test_the_guide_tags_by_default_and_gitlab_is_needed() -> None:
    from conformance.profile import Profile, apply_guide_defaults, requirements

    for platform, tags in (("onprem", ["on-prem"]), ("gcp", ["gcp"])):
        profile = Profile.model_validate(apply_guide_defaults({"platform": platform, "orchestrator": "noorch"}))
        assert profile.ci is not None
        assert profile.ci.runner_tags == tags
        assert "gitlab: required for the ci checks (they read GitLab's API: set gitlab.url, gitlab.project)" in (
            requirements(profile, {"ci"})
        )
    own = apply_guide_defaults({"platform": "onprem", "orchestrator": "noorch", "ci": {"runner_tags": []}})
    assert own["ci"] == {"runner_tags": []}
