"""A simulated GitLab REST API (``/api/v4``): the few endpoints the GIT checks read, shaped like GitLab's.

Simulated, because a GitLab instance does not fit in a test run. The answers follow GitLab's
documented field names and types (``GET /user``, ``/personal_access_tokens/self``, ``/projects/:id``
with ``permissions``, ``/projects/:id/variables``, ``/pipeline_schedules``, ``/pipelines``) and its
error bodies: ``401 {"message": "401 Unauthorized"}`` for an unknown token, ``401 invalid_token`` for
an expired or revoked one, ``403 insufficient_scope`` for a token without an API scope, ``404 Project
Not Found`` for a project the user cannot see, ``403 Forbidden`` below the role an endpoint needs.

Everything it knows is in a JSON state file (see :func:`default_state`), read again on each request,
so a test may point it at a state of its own. Tokens, users and projects in it carry the faults the
suite's tests need: expired, revoked and read-only tokens, a Reporter, and a project whose CI is
misconfigured.
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
