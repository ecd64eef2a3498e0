"""GitLab's transcripts (contracts/gitlab.yaml) replayed through the GitLab client's parsers.

The client's ``Reply`` is built from the body as python-gitlab hands it over (status and raw body of a
``GitlabError``); the access and variable logic run against a client whose ``get`` answers from the
transcripts, so what GIT-004 and GIT-013 conclude is what they would conclude against GitLab.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.clients import gitlab as client
from conformance.profile import GitLab, Profile
from conformance.sandbox import contracts


def said(name: str, **values: object) -> client.Reply:
    """The transcript as the client's ``Reply`` (python-gitlab: JSON on 2xx, the raw body on errors)."""
    transcript = contracts.get("gitlab", name)
    assert transcript.http is not None
    body = transcript.render(transcript.http.body, **values)
    if transcript.http.status < 300:
        return client.Reply(transcript.http.status, json.loads(body))
    return client.Reply(transcript.http.status, None, client._error_text(body.encode()))


class Scripted(client.GitLabClient):
    """A GitLab client whose API answers are transcripts, by path."""

    def __init__(self, answers: dict[str, client.Reply]) -> None:
        section = GitLab(url="https://gitlab.example", project="mlops/kapitan-hull")
        profile = Profile.model_validate({"platform": "onprem", "orchestrator": "runai"})
        super().__init__(section, profile, environ={})
        self.answers = answers

    def get(self, path: str, **query: Any) -> client.Reply:
        return self.answers.get(path, said("route-not-found"))

    def current_user(self) -> client.Reply:
        return self.answers["/user"]


def test_route_missing_is_an_older_gitlab_not_a_refusal() -> None:
    missing = said("route-not-found")
    assert (missing.status, missing.error, missing.route_missing) == (404, "404 Not Found", True)
    for other in ("project-not-found", "member-not-found", "group-not-found"):
        assert not said(other).route_missing, other


def test_access_through_a_shared_group_comes_from_members_all() -> None:
    project = said("project-access-through-shared-group").data
    assert project["permissions"] == {"project_access": None, "group_access": None}
    member = said("member-all", user_id=5, username="partner", access_level=30)
    gl = Scripted({
        "/user": client.Reply(200, {"id": 5, "username": "partner"}),
        "/projects/mlops%2Fkapitan-hull/members/all/5": member,
    })  # fmt: skip
    access = gl.access(project)
    assert (access.level, access.admin) == (30, False)
    assert access.via.startswith("members/all")


def test_access_for_a_non_member_is_none_and_says_why() -> None:
    gl = Scripted({
        "/user": client.Reply(200, {"id": 9, "username": "stranger"}),
        "/projects/mlops%2Fkapitan-hull/members/all/9": said("member-not-found"),
    })  # fmt: skip
    access = gl.access(said("project-access-through-shared-group").data)
    assert access.level == 0
    assert "members/all: 404" in access.via


def test_an_administrator_has_null_permissions_and_is_admin() -> None:
    gl = Scripted({"/user": client.Reply(200, {"id": 1, "username": "root", "is_admin": True})})
    access = gl.access(said("project-access-through-shared-group").data)
    assert access.admin
    assert access.level == client.OWNER


def test_group_access_counts_without_project_access() -> None:
    gl = Scripted({})
    access = gl.access(said("project-access-through-group", access_level=30).data)
    assert (access.level, access.via) == (30, "permissions.group_access")


@pytest.mark.parametrize("variable_type", ["file", "env_var"])
def test_a_group_variable_is_read_with_every_ancestor_and_the_instance(variable_type: str) -> None:
    project = said("project-access-through-group", access_level=50).data  # namespace mlops/team
    gl = Scripted({
        "/projects/mlops%2Fkapitan-hull/variables": said("forbidden"),
        "/groups/mlops%2Fteam/variables": said("variable", key="HARBOR_ROBOT_CREDS_JSON", variable_type=variable_type),
        "/groups/mlops/variables": said("variable", key="OTHER", variable_type="env_var"),
        "/admin/ci/variables": said("forbidden"),
    })  # fmt: skip
    levels = gl.variable_levels(project)
    assert [level.name for level in levels] == [
        "project mlops/kapitan-hull", "group mlops/team", "group mlops", "instance"
    ]  # fmt: skip
    assert levels[1].variables == {"HARBOR_ROBOT_CREDS_JSON": variable_type}
    assert "value" not in json.dumps(levels[1].reply.data)  # values are dropped on arrival
    assert levels[0].unread == (
        "project mlops/kapitan-hull (HTTP 403 403 Forbidden: listing needs the Maintainer role on the project)"
    )
    assert levels[3].unread == "instance (HTTP 403 403 Forbidden: listing needs an administrator)"


def test_the_simulator_answers_as_the_transcripts_say() -> None:
    """The sandbox's GitLab API gives the shapes pinned above, so the sandbox runs test the real behaviour."""
    from conformance.sandbox import gitlab_api
    from conformance.sandbox.gitlab import TOKEN_KINDS

    tokens = {kind: gitlab_api.new_token() for kind in TOKEN_KINDS}
    api = gitlab_api._Api(gitlab_api.default_state(tokens, "mlops/kapitan-hull", "mlops/broken"), "https://g")
    status, project = api.answer("/api/v4/projects/mlops%2Fkapitan-hull", {}, tokens["shared"])
    pinned = said("project-access-through-shared-group").data
    assert status == 200
    assert project["permissions"] == pinned["permissions"]
    assert set(pinned["namespace"]) <= set(project["namespace"])
    status, member = api.answer("/api/v4/projects/mlops%2Fkapitan-hull/members/all/5", {}, tokens["shared"])
    assert set(member) == set(said("member-all", user_id=5, username="shared", access_level=30).data)
    for path, kind, name in [
        ("/api/v4/projects/mlops%2Fkapitan-hull/variables", "developer", "forbidden"),
        ("/api/v4/groups/mlops/variables", "developer", "forbidden"),
        ("/api/v4/admin/ci/variables", "good", "forbidden"),
        ("/api/v4/projects/mlops%2Fkapitan-hull/members/all/6", "good", "member-not-found"),
    ]:
        pinned_error = said(name)
        status, body = api.answer(path, {}, tokens[kind])
        assert (status, client._error_text(json.dumps(body).encode())) == (pinned_error.status, pinned_error.error)
    status, variables = api.answer("/api/v4/groups/mlops/variables", {}, tokens["good"])
    assert set(variables[0]) >= set(said("variable", key="K", variable_type="file").data[0]) - {"description"}


# --------------------------------------------------------------------------- Continuous X (CI-001, CI-002)


class ScriptedCi(Scripted):
    """Scripted, with the query in the key: ``/projects/:id/runners`` and ``...?tag_list=a`` answer apart."""

    def get(self, path: str, **query: Any) -> client.Reply:
        tags = query.get("tag_list")
        return self.answers.get(f"{path}?tag_list={tags}" if tags else path, said("route-not-found"))


def _runner(**values: object) -> dict[str, Any]:
    defaults: dict[str, object] = {"description": "r", "active": "true", "paused": "false", "is_shared": "false",
                                   "runner_type": "project_type", "online": "true", "status": "online"}  # fmt: skip
    data: dict[str, Any] = said("runner", **{**defaults, **values}).data
    return data


def test_runner_listing_and_tag_match_read_as_ci001_does() -> None:
    from conformance.clients import ci
    from conformance.profile import Ci

    listing = [
        _runner(id=1, runner_type="instance_type", is_shared="true"),
        _runner(id=2, active="false", paused="true"),
        _runner(id=3, online="false", status="offline"),
    ]
    runners = "/projects/mlops%2Fkapitan-hull/runners"
    tagged = client.Reply(200, listing[1:])
    api = ScriptedCi({runners: client.Reply(200, listing), f"{runners}?tag_list=on-prem": tagged})
    found = ci.CiClient(Ci(runner_tags=["on-prem"]), api).runners(["on-prem"])
    assert [(r.id, r.runner_type, r.paused, r.online, r.status) for r in found.runners] == [
        (1, "instance_type", False, True, "online"),
        (2, "project_type", True, True, "online"),
        (3, "project_type", False, False, "offline"),
    ]
    assert [r.id for r in found.tagged] == [2, 3]


def test_untagged_jobs_read_run_untagged_from_the_runner_details() -> None:
    from conformance.clients import ci
    from conformance.profile import Ci

    details = said("runner-details", id=1, description="r", active="true", paused="false", is_shared="true",
                   runner_type="instance_type", online="true", status="online", tag_list='["docker"]',
                   run_untagged="true", locked="false")  # fmt: skip
    runners = "/projects/mlops%2Fkapitan-hull/runners"
    api = ScriptedCi({runners: client.Reply(200, [_runner(id=1)]), "/runners/1": details})
    found = ci.CiClient(Ci(runner_tags=[]), api).runners([])
    assert [(r.id, r.tags, r.run_untagged) for r in found.tagged] == [(1, ["docker"], True)]
    refused = said("runner-no-access")
    assert (refused.status, refused.error) == (403, "403 Forbidden - No access granted")


def test_ci_lint_result_and_its_refusals() -> None:
    from conformance.clients import ci
    from conformance.profile import Ci

    lint = "/projects/mlops%2Fkapitan-hull/ci/lint"
    documented = said("ci-lint-invalid-documented")
    api = ScriptedCi({lint: documented})
    result = ci.CiClient(Ci(runner_tags=[]), api).lint()
    assert result.ok
    assert result.data["valid"] is False
    assert result.data["errors"] == ["jobs config should contain at least one visible job"]
    valid = said("ci-lint", valid="true", errors="[]", merged_yaml='"---\\n"')
    assert (valid.data["valid"], valid.data["errors"], valid.data["includes"]) == (True, [], [])
    empty = said("repository-not-found")
    assert (empty.status, empty.error) == (404, "404 Repository Not Found")
