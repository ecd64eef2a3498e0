"""A simulated GitLab REST API (``/api/v4``): the few endpoints the GIT checks read, shaped like GitLab's.

Simulated, because a GitLab instance does not fit in a test run. The answers follow GitLab's
documented field names and types (``GET /user``, ``/personal_access_tokens/self``, ``/projects/:id``
with ``permissions``, ``/projects/:id/variables``, ``/pipeline_schedules``, ``/pipelines``; for the CI
checks ``/projects/:id/runners``, ``/runners/:id`` and ``/projects/:id/ci/lint``, which lints the project's
``ci_config`` with the keywords and messages of GitLab's job entries) and its
error bodies: ``401 {"message": "401 Unauthorized"}`` for an unknown token, ``401 invalid_token`` for
an expired or revoked one, ``403 insufficient_scope`` for a token without an API scope, ``404 Project
Not Found`` for a project the user cannot see, ``403 Forbidden`` below the role an endpoint needs.

Everything it knows is in a JSON state file (see :func:`default_state`), read again on each request,
so a test may point it at a state of its own. Tokens, users and projects in it carry the faults the
suite's tests need: expired, revoked and read-only tokens, a Reporter, and a project whose CI is
misconfigured (variables, schedule, instance runners turned off, a .gitlab-ci.yml with typos); runners
online, offline and paused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import yaml

from conformance.sandbox import contracts
from conformance.sandbox.web import LoopbackServer

API_SCOPES = {"api", "read_api"}
USER_SCOPES = API_SCOPES | {"read_user"}
EXPIRED = {
    "error": "invalid_token",
    "error_description": "Token is expired. You can either do re-authorization or token refresh.",
}
REVOKED = {"error": "invalid_token", "error_description": "Token was revoked. You have to re-authorize from the user."}
UNAUTHORIZED = {"message": "401 Unauthorized"}


def _said(name: str, **values: object) -> tuple[int, Any]:
    """The status and JSON body of the transcript ``gitlab.yaml: <name>``."""
    transcript = contracts.get("gitlab", name)
    assert transcript.http is not None  # noqa: S101 - gitlab.yaml's transcripts are all HTTP answers
    return transcript.http.status, json.loads(transcript.render(transcript.http.body, **values))


FORBIDDEN = _said("forbidden")[1]
PROJECT_NOT_FOUND = _said("project-not-found")[1]
NOT_FOUND = _said("route-not-found")[1]
GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
# The role GitLab needs for each project endpoint (variables are Maintainer-only).
ROLE_FOR = {"": GUEST, "variables": MAINTAINER, "pipeline_schedules": REPORTER, "pipelines": REPORTER,
            "members/all": GUEST}  # fmt: skip
_PROJECT = re.compile(
    r"^/api/v4/projects/(?P<id>[^/]+)(?:/(?P<sub>variables|pipeline_schedules|pipelines|members/all)(?:/(?P<uid>\d+))?)?$"
)
_GROUP_VARIABLES = re.compile(r"^/api/v4/groups/(?P<id>[^/]+)/variables$")
_TIMESTAMP = "2024-01-02T03:04:05.000Z"
# Continuous X: runners and CI lint (gitlab.yaml: runner, runner-details, ci-lint).
_PROJECT_CI = re.compile(r"^/api/v4/projects/(?P<id>[^/]+)/(?P<sub>runners|ci/lint)$")
_RUNNER = re.compile(r"^/api/v4/runners/(?P<id>\d+)$")
ROLE_FOR_CI = {"runners": MAINTAINER, "ci/lint": REPORTER}  # read_project_runners; read_code
# The sandbox project's .gitlab-ci.yml (also committed to its repository), shaped like the guide's
# (kapitan-hull .gitlab-ci.yml without CI components): a test job and an image build per platform's tag.
SANDBOX_CI_YML = """\
default:
  image: continuumio/miniconda3:24.7.1-0
stages:
  - test
  - build
.kaniko:
  stage: build
  image:
    name: gcr.io/kaniko-project/executor:debug
    entrypoint: [""]
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
test:pytest:
  stage: test
  tags:
    - on-prem
  script:
    - pytest src/tests --junitxml=./rspec.xml
build:onprem:
  extends: .kaniko
  tags:
    - on-prem
  script:
    - cat $HARBOR_ROBOT_CREDS_JSON > /kaniko/.docker/config.json
    - /kaniko/executor --context . --dockerfile docker/Dockerfile --destination $REGISTRY/cpu:$CI_COMMIT_SHORT_SHA
build:gcp:
  extends: .kaniko
  tags:
    - gcp
  script:
    - cat $GCP_SERVICE_ACCOUNT_KEY > /kaniko/.docker/config.json
    - /kaniko/executor --context . --dockerfile docker/Dockerfile --destination $REGISTRY/cpu:$CI_COMMIT_SHORT_SHA
"""
# The broken project's: a `tag:` where `tags:` was meant, and `scripts:` where `script:` was.
BROKEN_CI_YML = """\
stages:
  - test
  - build
test:pytest:
  stage: test
  tag:
    - on-prem
  script:
    - pytest src/tests
build:image:
  stage: build
  scripts:
    - /kaniko/executor --context . --dockerfile docker/Dockerfile
"""
# What GitLab's static lint rejects, as it words it (gitlabhq lib/gitlab/ci/config/entry/root.rb, jobs.rb, job.rb,
# processable.rb, lib/gitlab/config/entry/validators.rb AllowedKeysValidator, lib/gitlab/ci/config/extendable/entry.rb,
# lib/gitlab/ci/yaml_processor.rb; 16.x-17.x). YAML syntax errors are worded by Ruby's Psych in GitLab; here
# PyYAML's wording stands in for it.
GLOBAL_KEYS = {"default", "include", "before_script", "image", "services", "after_script", "variables", "stages",
               "cache", "workflow", "types", "spec"}  # fmt: skip
JOB_KEYS = {"tags", "script", "run", "type", "image", "services", "start_in", "artifacts", "cache", "dependencies",
            "before_script", "after_script", "hooks", "environment", "coverage", "retry", "parallel",
            "interruptible", "timeout", "release", "id_tokens", "secrets", "pages", "publish", "identity",
            "manual_confirmation", "extends", "stage", "trigger", "inherit", "rules", "variables", "needs",
            "allow_failure", "when", "only", "except", "resource_group"}  # fmt: skip
NO_CONTENT = "Please provide content of .gitlab-ci.yml"


def _extended(name: str, config: dict[str, Any], seen: tuple[str, ...] = ()) -> tuple[Any, str | None]:
    """Job ``name`` with its ``extends`` merged in (a deep merge, the job's own keys winning), or an error."""
    job = config.get(name)
    if not isinstance(job, dict) or "extends" not in job:
        return job, None
    parents = job["extends"] if isinstance(job["extends"], list) else [job["extends"]]
    unknown = [str(p) for p in parents if p not in config]
    if unknown:
        return job, f"{name}: unknown keys in `extends` ({', '.join(unknown)})"
    if name in seen or len(seen) > 10:
        return job, f"{name}: nesting too deep in `extends`"
    merged: dict[str, Any] = {}
    for parent in parents:
        base, error = _extended(str(parent), config, (*seen, name))
        if error:
            return job, error
        merged = _deep_merge(merged, base if isinstance(base, dict) else {})
    return _deep_merge(merged, job), None


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        merged[key] = _deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def lint(content: str | None) -> tuple[list[str], str]:
    """GitLab's static CI lint of ``content``, for the keywords the guide's pipelines use: (errors, merged_yaml)."""
    if content is None or not content.strip():
        return [NO_CONTENT], ""
    try:
        config = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        return [f"(<unknown>): {getattr(exc, 'problem', None) or exc}{where}"], ""
    if not isinstance(config, dict):
        return ["Invalid configuration format"], ""
    errors: list[str] = []
    visible = 0
    for name in config:
        if name in GLOBAL_KEYS or str(name).startswith("."):
            continue
        job, error = _extended(str(name), config)
        if error:
            errors.append(error)
            continue
        if not isinstance(job, dict) or not {"script", "run", "trigger"} & job.keys():
            errors.append(f"jobs {name} config should implement the script:, run:, or trigger: keyword")
            continue
        visible += 1
        unknown = [str(k) for k in job if k not in JOB_KEYS]
        if unknown:
            errors.append(f"jobs:{name} config contains unknown keys: {', '.join(unknown)}")
    if not visible:  # also after the errors above (gitlabhq spec/controllers/projects/ci/lints_controller_spec.rb)
        errors.append("jobs config should contain at least one visible job")
    return errors, yaml.safe_dump(config, sort_keys=False, explicit_start=True)


def _day(offset: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=offset)).isoformat()


def new_token() -> str:
    """A token shaped like GitLab's personal access tokens (``glpat-`` and 20 characters)."""
    return "glpat-" + secrets.token_urlsafe(15)[:20]


def default_state(tokens: dict[str, str], project: str, broken_project: str) -> dict[str, Any]:
    """Users, tokens and projects of the sandbox; ``tokens`` maps a kind (good, expired, ...) to its value."""
    write = ["api", "read_repository", "write_repository"]
    kinds: dict[str, dict[str, Any]] = {
        "good": {"user": "conformance", "scopes": write, "expires_at": _day(180)},
        "expiring": {"user": "conformance", "scopes": write, "expires_at": _day(5)},
        "expired": {"user": "conformance", "scopes": write, "expires_at": _day(-1)},
        "revoked": {"user": "conformance", "scopes": write, "expires_at": _day(30), "revoked": True},
        "read_only": {"user": "conformance", "scopes": ["read_api", "read_repository"], "expires_at": _day(90)},
        "git_only": {"user": "conformance", "scopes": ["read_repository", "write_repository"], "expires_at": _day(90)},
        "reporter": {"user": "reporter", "scopes": write, "expires_at": _day(90)},
        "developer": {"user": "developer", "scopes": write, "expires_at": _day(90)},
        "shared": {"user": "shared", "scopes": write, "expires_at": _day(90)},
        "admin": {"user": "admin", "scopes": write, "expires_at": _day(90)},
    }
    group = project.rpartition("/")[0]
    return {
        "users": {
            "conformance": {"id": 2, "name": "Conformance Suite"},
            "reporter": {"id": 3, "name": "A Reporter"},
            "developer": {"id": 4, "name": "A Developer (through the group)"},
            "shared": {"id": 5, "name": "A Partner (through a group the project is shared with)"},
            "admin": {"id": 6, "name": "An Administrator", "is_admin": True},
        },
        # The project's group holds the Harbor robot file (a File variable set once for every project of
        # the team); the group Owner may list it, a Developer of the group may not.
        "groups": {
            group: {
                "id": 20,
                "members": {"conformance": OWNER, "developer": DEVELOPER},
                "variables": [{"key": "HARBOR_ROBOT_CREDS_JSON", "variable_type": "file"}],
            },
            "partners": {"id": 21, "members": {"shared": MAINTAINER}, "variables": []},
        },
        "instance_variables": [{"key": "PIP_INDEX_URL", "variable_type": "env_var"}],
        # Runners (CI-001): an instance runner with the on-prem tag, a project runner with gcp that also runs
        # untagged jobs, a project runner whose host is down (gpu), a paused group runner (a100).
        "runners": [
            {
                "id": 11,
                "description": "sandbox instance runner",
                "runner_type": "instance_type",
                "tags": ["on-prem", "docker"],
                "status": "online",
            },
            {
                "id": 12,
                "description": "sandbox gcp runner",
                "runner_type": "project_type",
                "projects": [7],
                "tags": ["gcp"],
                "status": "online",
                "run_untagged": True,
                "locked": True,
            },
            {
                "id": 13,
                "description": "sandbox gpu runner",
                "runner_type": "project_type",
                "projects": [7],
                "tags": ["gpu", "on-prem"],
                "status": "offline",
            },
            {
                "id": 14,
                "description": "sandbox a100 runner",
                "runner_type": "group_type",
                "groups": [group],
                "tags": ["a100"],
                "status": "online",
                "active": False,
            },
        ],
        "tokens": [
            {"token": tokens[kind], "id": 100 + i, "name": f"sandbox-{kind}", **spec}
            for i, (kind, spec) in enumerate(kinds.items())
        ],
        "projects": [
            {
                "id": 7,
                "path": project,
                "default_branch": "main",
                "members": {"conformance": MAINTAINER, "reporter": REPORTER},
                "shared_with": {"partners": DEVELOPER},  # the project is shared with group partners as Developer
                "variables": [{"key": "GCP_SERVICE_ACCOUNT_KEY", "variable_type": "file"}],
                "schedules": [{"description": "nightly conformance", "cron": "0 2 * * *", "active": True}],
                "pipelines": [{"status": "success", "ref": "main"}, {"status": "failed", "ref": "feature"}],
                "shared_runners_enabled": True,
                "ci_config": SANDBOX_CI_YML,
            },
            {
                "id": 8,
                "path": broken_project,
                "default_branch": "main",
                "members": {"conformance": MAINTAINER},
                # A Variable on the project where the job does `cat $HARBOR_ROBOT_CREDS_JSON`; it overrides
                # the group's File variable. The gcp key is missing.
                "variables": [{"key": "HARBOR_ROBOT_CREDS_JSON", "variable_type": "env_var"}],
                "schedules": [{"description": "paused schedule", "cron": "0 3 * * 1", "active": False}],
                "pipelines": [{"status": "failed", "ref": "main"}, {"status": "success", "ref": "main"}],
                # CI-001: instance runners turned off, and the group's runner is paused; CI-002: two typos.
                "shared_runners_enabled": False,
                "ci_config": BROKEN_CI_YML,
            },
        ],
    }


class _Api:
    """Answers one request from the state file: (status, JSON body)."""

    def __init__(self, state: dict[str, Any], base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    def token(self, value: str | None) -> dict[str, Any] | None:
        return next((t for t in self.state["tokens"] if value and secrets.compare_digest(t["token"], value)), None)

    def answer(self, path: str, query: dict[str, str], token_value: str | None) -> tuple[int, Any]:
        token = self.token(token_value)
        if token is None:
            return 401, UNAUTHORIZED
        if token.get("revoked"):
            return 401, REVOKED
        if token.get("expires_at") and token["expires_at"] < _day(0):
            return 401, EXPIRED
        if path == "/api/v4/personal_access_tokens/self":
            if not self.state.get("personal_access_tokens_self", True):  # GitLab before 15.5
                return _said("route-not-found")
            return 200, self._token_entity(token)
        if not set(token["scopes"]) & (USER_SCOPES if path == "/api/v4/user" else API_SCOPES):
            needed = "api read_api read_user" if path == "/api/v4/user" else "api read_api"
            return 403, {
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": needed,
            }
        user = token["user"]
        admin = bool(self.state["users"][user].get("is_admin"))
        if path == "/api/v4/user":
            return 200, self._user(user)
        if path == "/api/v4/version":
            return 200, {"version": self.state.get("version", "17.0.0-sandbox"), "revision": "0000000"}
        if path == "/api/v4/admin/ci/variables":
            if not admin:
                return _said("forbidden")
            return 200, [self._variable(v) for v in self.state.get("instance_variables", [])]
        group_match = _GROUP_VARIABLES.match(path)
        if group_match is not None:
            name = urllib.parse.unquote(group_match["id"])
            group = self.state.get("groups", {}).get(name)
            level = self._group_level(name, user)
            # A private group is visible to its members and to members of a project in it.
            inside = [q for q in self.state["projects"] if q["path"].startswith(f"{name}/")]
            visible = level > 0 or admin or any(self._level(q, user) for q in inside)
            if group is None or not visible:
                return _said("group-not-found")
            if level < OWNER and not admin:
                return _said("forbidden")
            return 200, [self._variable(v) for v in group["variables"]]
        ci = self._ci(path, query, user, admin)
        if ci is not None:
            return ci
        match = _PROJECT.match(path)
        if match is None:
            return _said("route-not-found")
        project = self._project(urllib.parse.unquote(match["id"]))
        level = self._level(project, user) if project else 0
        if project is None or (level == 0 and not admin):
            return _said("project-not-found")
        sub = match["sub"] or ""
        if level < ROLE_FOR[sub] and not admin:
            return _said("forbidden")
        if sub == "members/all":
            member = next((n for n, u in self.state["users"].items() if str(u["id"]) == match["uid"]), None)
            found = self._level(project, member) if member else 0
            if not found:
                return _said("member-not-found")
            return _said("member-all", user_id=match["uid"], username=member, access_level=found)
        if sub == "variables":
            return 200, [self._variable(v) for v in project["variables"]]
        if sub == "pipeline_schedules":
            return 200, [self._schedule(project, i, s) for i, s in enumerate(project["schedules"])]
        if sub == "pipelines":
            pipelines = [self._pipeline(project, i, p) for i, p in enumerate(project["pipelines"])]
            if "ref" in query:
                pipelines = [p for p in pipelines if p["ref"] == query["ref"]]
            pipelines.sort(key=lambda p: int(p["id"]), reverse=True)
            return 200, pipelines[: int(query.get("per_page", "20"))]
        return 200, self._project_entity(project, user)

    def _ci(self, path: str, query: dict[str, str], user: str, admin: bool) -> tuple[int, Any] | None:
        """Continuous X: a project's runners and CI lint, a runner's details (None: not such a path)."""
        runner_match = _RUNNER.match(path)
        if runner_match is not None:
            runner = next((r for r in self.state.get("runners", []) if str(r["id"]) == runner_match["id"]), None)
            if runner is None:
                return 404, {"message": "404 Runner Not Found"}
            if not (admin or runner["runner_type"] == "instance_type" or self._may_read_runner(runner, user)):
                return _said("runner-no-access")
            return _said("runner-details", **self._runner_values(runner), **self._runner_detail_values(runner))
        match = _PROJECT_CI.match(path)
        if match is None:
            return None
        project = self._project(urllib.parse.unquote(match["id"]))
        level = self._level(project, user) if project else 0
        if project is None or (level == 0 and not admin):
            return _said("project-not-found")
        if level < ROLE_FOR_CI[match["sub"]] and not admin:
            return _said("forbidden")
        if match["sub"] == "ci/lint":
            if project.get("empty_repo"):
                return _said("repository-not-found")
            errors, merged = lint(project.get("ci_config"))
            values = {"valid": json.dumps(not errors), "errors": json.dumps(errors), "merged_yaml": json.dumps(merged)}
            return _said("ci-lint", **values)
        wanted = [t for t in query.get("tag_list", "").split(",") if t]
        seen = [r for r in self._runners_of(project) if set(wanted) <= set(r.get("tags", []))]
        page, per_page = int(query.get("page", "1")), int(query.get("per_page", "20"))
        shown = seen[(page - 1) * per_page : page * per_page]
        return 200, [json.loads(self._render("runner", **self._runner_values(r))) for r in shown]

    def _runners_of(self, project: dict[str, Any]) -> list[dict[str, Any]]:
        """Ci::Runner.owned_or_instance_wide: the project's, its groups' (and ancestors') and every instance runner."""
        group = project["path"].rpartition("/")[0]
        groups = {"/".join(group.split("/")[:end]) for end in range(1, len(group.split("/")) + 1)}
        return [
            r
            for r in self.state.get("runners", [])
            if r["runner_type"] == "instance_type"
            or project["id"] in r.get("projects", [])
            or groups & set(r.get("groups", []))
        ]

    def _may_read_runner(self, runner: dict[str, Any], user: str) -> bool:
        """read_runner: a Maintainer of a project it belongs to, or of a group it belongs to."""
        projects = [p for p in self.state["projects"] if p["id"] in runner.get("projects", [])]
        levels = [self._level(p, user) for p in projects] + [
            self._group_level(g, user) for g in runner.get("groups", [])
        ]
        return max(levels, default=0) >= MAINTAINER

    @staticmethod
    def _render(name: str, **values: object) -> str:
        transcript = contracts.get("gitlab", name)
        assert transcript.http is not None  # noqa: S101 - gitlab.yaml's transcripts are all HTTP answers
        return transcript.render(transcript.http.body, **values)

    @staticmethod
    def _runner_values(runner: dict[str, Any]) -> dict[str, object]:
        active = bool(runner.get("active", True))
        return {
            "id": runner["id"],
            "description": runner["description"],
            "active": json.dumps(active),
            "paused": json.dumps(not active),
            "is_shared": json.dumps(runner["runner_type"] == "instance_type"),
            "runner_type": runner["runner_type"],
            "online": json.dumps(runner["status"] == "online"),
            "status": runner["status"],
        }

    @staticmethod
    def _runner_detail_values(runner: dict[str, Any]) -> dict[str, object]:
        return {
            "tag_list": json.dumps(list(runner.get("tags", []))),
            "run_untagged": json.dumps(bool(runner.get("run_untagged", False))),
            "locked": json.dumps(bool(runner.get("locked", False))),
        }

    def _group_level(self, name: str, user: str) -> int:
        """The user's level in group ``name``: the highest membership in it or an ancestor (inherited)."""
        groups = self.state.get("groups", {})
        parts = name.split("/")
        paths = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
        return max([int(groups[p]["members"].get(user, 0)) for p in paths if p in groups] or [0])

    def _level(self, project: dict[str, Any], user: str) -> int:
        """Effective level: direct, through the project's group (and ancestors), or a group it is shared with
        (capped at the level it was shared with), the highest of these."""
        direct = int(project["members"].get(user, 0))
        group = self._group_level(project["path"].rpartition("/")[0], user)
        shared = [min(self._group_level(g, user), int(cap)) for g, cap in project.get("shared_with", {}).items()]
        return max([direct, group, *shared])

    def _project(self, ident: str) -> dict[str, Any] | None:
        return next((p for p in self.state["projects"] if ident in (str(p["id"]), p["path"])), None)

    def _user(self, name: str) -> dict[str, Any]:
        user = self.state["users"][name]
        return {
            "id": user["id"],
            "username": name,
            "name": user["name"],
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"{self.base_url}/{name}",
            "created_at": _TIMESTAMP,
            "email": f"{name}@sandbox.invalid",
            "is_admin": bool(user.get("is_admin", False)),
        }

    def _token_entity(self, token: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": token["id"],
            "name": token["name"],
            "revoked": bool(token.get("revoked", False)),
            "created_at": _TIMESTAMP,
            "description": None,
            "scopes": list(token["scopes"]),
            "user_id": self.state["users"][token["user"]]["id"],
            "last_used_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "active": not token.get("revoked") and not (token.get("expires_at") or "9") < _day(0),
            "expires_at": token.get("expires_at"),
        }

    def _project_entity(self, project: dict[str, Any], user: str) -> dict[str, Any]:
        """``ProjectWithAccess``: project_access only for a direct member, group_access only for a member of
        the project's group or its ancestors; both null through a shared group or for an administrator."""
        path = project["path"]
        namespace = path.rpartition("/")[0]
        direct = int(project["members"].get(user, 0))
        group = self._group_level(namespace, user)
        host = urllib.parse.urlsplit(self.base_url).hostname
        return {
            "id": project["id"],
            "name": path.rsplit("/", 1)[-1],
            "path": path.rsplit("/", 1)[-1],
            "path_with_namespace": path,
            "name_with_namespace": path.replace("/", " / "),
            "default_branch": project["default_branch"],
            "visibility": "private",
            "ssh_url_to_repo": f"git@{host}:{path}.git",
            "http_url_to_repo": f"{self.base_url}/{path}.git",
            "web_url": f"{self.base_url}/{path}",
            "archived": False,
            "namespace": {
                "id": self.state.get("groups", {}).get(namespace, {}).get("id", 1),
                "name": namespace.rsplit("/", 1)[-1],
                "path": namespace.rsplit("/", 1)[-1],
                "kind": "group",
                "full_path": namespace,
                "parent_id": None,
            },
            "shared_runners_enabled": bool(project.get("shared_runners_enabled", True)),
            "permissions": {
                "project_access": {"access_level": direct, "notification_level": 3} if direct else None,
                "group_access": {"access_level": group, "notification_level": 3} if group else None,
            },
        }

    @staticmethod
    def _variable(variable: dict[str, Any]) -> dict[str, Any]:
        return {
            "variable_type": variable["variable_type"],
            "key": variable["key"],
            "value": variable.get("value", "sandbox-value-not-a-secret"),
            "protected": False,
            "masked": False,
            "hidden": False,
            "raw": False,
            "environment_scope": "*",
            "description": None,
        }

    @staticmethod
    def _schedule(project: dict[str, Any], index: int, schedule: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": project["id"] * 100 + index,
            "description": schedule["description"],
            "ref": f"refs/heads/{project['default_branch']}",
            "cron": schedule["cron"],
            "cron_timezone": "Asia/Singapore",
            "next_run_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)).isoformat(timespec="milliseconds"),
            "active": schedule["active"],
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
            "owner": {"id": 2, "username": "conformance", "name": "Conformance Suite", "state": "active"},
        }

    def _pipeline(self, project: dict[str, Any], index: int, pipeline: dict[str, Any]) -> dict[str, Any]:
        # The state lists the newest first; ids grow with age reversed.
        number = project["id"] * 1000 + len(project["pipelines"]) - index
        return {
            "id": number,
            "iid": number % 1000,
            "project_id": project["id"],
            "status": pipeline["status"],
            "source": "schedule",
            "ref": pipeline["ref"],
            "sha": f"{number:040x}",
            "web_url": f"{self.base_url}/{project['path']}/-/pipelines/{number}",
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
        }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
        token = self.headers.get("PRIVATE-TOKEN")
        bearer = self.headers.get("Authorization", "")
        if token is None and bearer.startswith("Bearer "):
            token = bearer[len("Bearer ") :]
        status: int
        body: Any
        if not parts.path.startswith("/api/v4/"):
            status, body = 302, {}
        else:
            state = json.loads(self.server.state_file.read_text())
            status, body = _Api(state, self.server.base_url).answer(parts.path, query, token)
        data = json.dumps(body).encode()
        self.send_response(status)
        if status == 302:  # the web UI: GitLab sends visitors to the sign-in page
            self.send_header("Location", f"{self.server.base_url}/users/sign_in")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        return


class _Server(LoopbackServer):
    def __init__(self, state_file: Path, cert: tuple[Path, Path]) -> None:
        super().__init__(_Handler, cert)
        self.state_file = state_file
        self.base_url = self.url


class GitLabApi:
    """The simulated API on a loopback port, in a thread of the sandbox's process."""

    def __init__(self, state_file: Path, cert: tuple[Path, Path]) -> None:
        self._server = _Server(state_file, cert).start()
        self.url = self._server.base_url

    def stop(self) -> None:
        self._server.stop()
