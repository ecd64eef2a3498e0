"""HOW to talk to GitLab: its REST API (python-gitlab), git over HTTPS and SSH, ssh's own config. Never asserts.

* API: ``python-gitlab`` with the profile's token, timeout and trust, no retries. An answer is a
  :class:`Reply` (status and GitLab's own error text, e.g. ``invalid_token: Token is expired``), never a dump.
* git over HTTPS: ``git ls-remote`` with the token as the password, handed over by a ``GIT_ASKPASS``
  helper that reads it from the child's environment: never in a URL, an argument or a config file.
  git runs without the user's or the machine's git configuration, with ``GIT_SSL_CAINFO`` set to the
  profile's trust (a machine-wide ``GIT_SSL_CAINFO`` would override ``-c http.sslCAInfo``).
* SSH: what ``ssh -G`` says the user's ``ssh_config`` resolves to for the GitLab host, then ``ssh -T``
  and ``git ls-remote`` through that config, in batch mode with strict host-key checking.

Output of git and ssh passes through :meth:`GitLabClient.scrub` before it leaves this module.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gitlab
import requests

from conformance import transport
from conformance.checks import Blocked, CannotEvaluate, Deadline
from conformance.profile import GitLab, Profile
from conformance.secrets import MASK, Secret

TOKEN_VARIABLE = "GITLAB_TOKEN"  # noqa: S105 - the name of a variable, not a value
ACCESS_LEVELS = {0: "No access", 5: "Minimal access", 10: "Guest", 15: "Planner", 20: "Reporter", 30: "Developer",
                 40: "Maintainer", 50: "Owner"}  # fmt: skip
MAINTAINER, OWNER = 40, 50
# Who may list CI/CD variables at each level (gitlabhq lib/api/variables.rb, group_variables.rb with
# group_policy.rb, admin/ci/variables.rb).
NEEDS_PROJECT, NEEDS_GROUP, NEEDS_INSTANCE = "the Maintainer role", "the Owner role", "an administrator"
GREETING = re.compile(r"Welcome to GitLab, @(?P<user>[^!\s]+)!")
KEY_MARKER = b"PRIVATE KEY-----"
_MESSAGE_LIMIT = 200
# Lines git and ssh print around the one that says what went wrong.
_BOILERPLATE = (
    "fatal: Could not read from remote repository.",
    "Please make sure you have the correct access rights",
    "and the repository exists.",
    "Warning: Permanently added",
)
ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$CONFORMANCE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$CONFORMANCE_GIT_PASSWORD" ;;
esac
"""


# --------------------------------------------------------------------------- results


@dataclass
class Reply:
    """One API answer: status (0 when none came), GitLab's error text, the JSON on success."""

    status: int
    data: Any = None
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def insufficient_scope(self) -> bool:
        return self.status == 403 and self.error.startswith("insufficient_scope")

    @property
    def token_state(self) -> str | None:
        """``expired`` or ``revoked`` when GitLab refused the token for that reason."""
        if self.status != 401:
            return None
        text = self.error.lower()
        return "expired" if "expired" in text else "revoked" if "revoked" in text else None

    @property
    def route_missing(self) -> bool:
        """This GitLab has no such endpoint (its catch-all route: ``{"error": "404 Not Found"}``)."""
        return self.status == 404 and self.error == "404 Not Found"

    def summary(self) -> str:
        return f"HTTP {self.status} {self.error}".strip() if self.status else self.error


@dataclass
class Access:
    """The user's effective role on the project, and where it was read."""

    level: int
    via: str
    admin: bool = False


@dataclass
class VariableLevel:
    """One level CI/CD variables live on (project, its groups, the instance), as far as it could be read."""

    name: str  # "project mlops/x", "group mlops", "instance"
    needs: str  # who may list this level
    reply: Reply

    @property
    def variables(self) -> dict[str, str]:
        """``{key: variable_type}`` (values are never kept); empty when the level could not be read."""
        if not self.reply.ok or not isinstance(self.reply.data, list):
            return {}
        return {str(v.get("key")): str(v.get("variable_type")) for v in self.reply.data if isinstance(v, dict)}

    @property
    def unread(self) -> str:
        """Why this level could not be read, in one line."""
        why = f"listing needs {self.needs}" if self.reply.status in (403, 404) else "GitLab did not answer"
        return f"{self.name} ({self.reply.summary()}: {why})"


@dataclass
class Command:
    """A git or ssh run: what ran (printable), exit code (None: timed out), scrubbed output."""

    command: str
    rc: int | None
    stdout: str
    message: str  # the line of stderr that says what went wrong, scrubbed
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass
class SshConfig:
    """What ``ssh -G`` resolves the user's ssh_config to for the GitLab host."""

    path: Path
    host: str
    error: str | None = None  # one line naming the file
    options: dict[str, list[str]] = field(default_factory=dict)

    def first(self, key: str, default: str = "") -> str:
        return self.options.get(key, [default])[0]

    @property
    def port(self) -> int:
        return int(self.first("port", "22"))

    @property
    def hostname(self) -> str:
        return self.first("hostname", self.host)

    @property
    def identity_files(self) -> list[Path]:
        return [expand_ssh_path(p) for p in self.options.get("identityfile", [])]

    @property
    def known_hosts_files(self) -> list[Path]:
        found = self.options.get("userknownhostsfile", []) + self.options.get("globalknownhostsfile", [])
        return [expand_ssh_path(p) for value in found for p in value.split()]

    @property
    def known_hosts_name(self) -> str:
        """The name ssh looks the host key up under: ``[host]:port`` unless the port is 22."""
        name = self.first("hostkeyalias") or self.hostname
        return name if self.port == 22 else f"[{name}]:{self.port}"


@dataclass
class KeyScan:
    root: Path
    keys: list[str] = field(default_factory=list)  # paths relative to root
    scanned: int = 0
    complete: bool = True


# --------------------------------------------------------------------------- helpers


def expand_ssh_path(value: str) -> Path:
    """Expand ``~`` and ``%d`` the way ssh does: from the password database, not ``$HOME``."""
    home = pwd.getpwuid(os.getuid()).pw_dir
    if value.startswith("~/") or value == "~":
        value = home + value[1:]
    return Path(value.replace("%d", home).replace("%u", pwd.getpwuid(os.getuid()).pw_name))


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _error_text(body: bytes | None) -> str:
    """GitLab's error: ``message``, or ``error: error_description`` (OAuth-style token errors)."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        return "answer is not JSON"
    if not isinstance(data, dict):
        return ""
    if "message" in data:
        message = data["message"]
        return (message if isinstance(message, str) else json.dumps(message))[:_MESSAGE_LIMIT]
    error, description = str(data.get("error", "")), str(data.get("error_description", ""))
    return f"{error}: {description}"[:_MESSAGE_LIMIT] if description else error[:_MESSAGE_LIMIT]


def _meaningful_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(_BOILERPLATE) and not line.startswith("@@@")]
    lines = [line for line in lines if ": terminating, " not in line]  # ssh's count after the line it names
    if any("REMOTE HOST IDENTIFICATION HAS CHANGED" in line for line in stderr.splitlines()):
        return "the server's host key differs from the one in known_hosts (REMOTE HOST IDENTIFICATION HAS CHANGED)"
    return lines[-1][:_MESSAGE_LIMIT] if lines else ""


def _base_environment() -> dict[str, str]:
    """The environment git and ssh run in: no git settings from the machine, the user or their variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "SSH_ASKPASS", "GCM_"))}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
    env["LC_ALL"] = "C"
    return env


# --------------------------------------------------------------------------- client


PER_PAGE = 100  # GitLab's largest page
MAX_PAGES = 20  # 2,000 variables per level: more than any project has; each page one bounded request


class GitLabClient:
    def __init__(self, section: GitLab, profile: Profile, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.section = section
        self.platform = profile.platform
        self.timeouts = profile.timeouts
        self.tls = profile.tls
        self.api_url = f"{section.url}/api/v4"
        self.token: Secret | None = section.token
        if self.token is None and env.get(TOKEN_VARIABLE):
            self.token = Secret(env[TOKEN_VARIABLE], f"env:{TOKEN_VARIABLE}")
        self._gl: gitlab.Gitlab | None = None
        self._cache: dict[str, Reply] = {}

    @property
    def token_source(self) -> str:
        return self.token.source if self.token is not None else "none"

    # ------------------------------------------------------------------ API

    def _api(self) -> gitlab.Gitlab:
        if self.token is None:
            raise CannotEvaluate(
                "no GitLab token: set gitlab.token in the profile or GITLAB_TOKEN in the environment",
                hint="create a personal access token with scopes read_api and write_repository",
            )
        if self._gl is None:
            self._gl = gitlab.Gitlab(
                self.section.url,
                session=transport.pinned_session(requests.Session, self.tls)(),
                private_token=self.token.reveal(),
                timeout=(self.timeouts.connect, self.timeouts.request),  # type: ignore[arg-type] # passed to requests
                retry_transient_errors=False,
                user_agent="conformance-suite",
            )
        return self._gl

    def _call(self, key: str, request: Any) -> Reply:
        if key in self._cache:
            return self._cache[key]
        started = time.monotonic()
        try:
            data = request()
            reply = Reply(200, data)
        except gitlab.exceptions.GitlabParsingError:
            reply = Reply(200, None, "answer is not JSON")
        except gitlab.exceptions.GitlabError as exc:
            reply = Reply(int(exc.response_code or 0), None, _error_text(exc.response_body))
        except requests.exceptions.RequestException as exc:
            raise transport.no_answer(f"GET /api/v4{key}", self.api_url, exc, self.timeouts) from None
        reply.seconds = round(time.monotonic() - started, 3)
        self._cache[key] = reply
        return reply

    def get(self, path: str, **query: Any) -> Reply:
        """``GET /api/v4<path>``: one try, bounded by the request timeout; 429s are not waited for."""
        gl = self._api()
        return self._call(
            path + (f"?{urllib.parse.urlencode(query)}" if query else ""),
            lambda: gl.http_get(path, query_data=query, obey_rate_limit=False, max_retries=0),
        )

    def current_user(self) -> Reply:
        """``gl.auth()``: the token's user (``GET /user``)."""
        gl = self._api()

        def auth() -> dict[str, Any]:
            gl.auth()
            return dict(gl.user.attributes) if gl.user is not None else {}

        return self._call("/user", auth)

    def token_info(self) -> Reply:
        return self.get("/personal_access_tokens/self")

    @property
    def project_id(self) -> str:
        return urllib.parse.quote(self.section.project, safe="")

    def project(self) -> Reply:
        return self.get(f"/projects/{self.project_id}")

    def require_token(self) -> None:
        """Blocked unless GitLab accepts the token (an API scope is GIT-003's concern)."""
        user = self.current_user()
        if not user.ok and not user.insufficient_scope:
            raise Blocked("GIT-002" if user.token_state else "GIT-001", user.summary())

    def readable_project(self) -> dict[str, Any]:
        """The project, once GitLab accepts the token and shows it; Blocked by the GIT check that says why not."""
        self.require_token()  # replies are cached: asking again costs nothing
        reply = self.project()
        if reply.insufficient_scope:
            raise Blocked("GIT-003", reply.summary())
        if not reply.ok:
            raise Blocked("GIT-004", reply.summary())
        data: dict[str, Any] = reply.data
        return data

    def _variables(self, path: str) -> Reply:
        """A variables listing, every page (at most ``MAX_PAGES``); values are dropped on arrival."""
        found: list[dict[str, Any]] = []
        reply = self.get(path, per_page=PER_PAGE)
        for page in range(2, MAX_PAGES + 2):
            if not reply.ok or not isinstance(reply.data, list):
                return reply
            found += [
                {"key": v.get("key"), "variable_type": v.get("variable_type")}
                for v in reply.data
                if isinstance(v, dict)
            ]
            if len(reply.data) < PER_PAGE or page > MAX_PAGES:
                break
            reply = self.get(path, per_page=PER_PAGE, page=page)
        reply.data = found
        return reply

    def variable_levels(self, project: Mapping[str, Any]) -> list[VariableLevel]:
        """CI/CD variables where a job finds them, most specific first: the project, its group and each
        ancestor group (nearest first), the instance. A level the token may not list is kept, unread."""
        levels = [VariableLevel(f"project {self.section.project}", f"{NEEDS_PROJECT} on the project",
                                self._variables(f"/projects/{self.project_id}/variables"))]  # fmt: skip
        namespace = project.get("namespace") or {}
        if isinstance(namespace, dict) and namespace.get("kind") == "group" and namespace.get("full_path"):
            parts = str(namespace["full_path"]).split("/")
            for end in range(len(parts), 0, -1):
                group = "/".join(parts[:end])
                path = f"/groups/{urllib.parse.quote(group, safe='')}/variables"
                levels.append(VariableLevel(f"group {group}", f"{NEEDS_GROUP} of group {group}", self._variables(path)))
        levels.append(VariableLevel("instance", NEEDS_INSTANCE, self._variables("/admin/ci/variables")))
        return levels

    def access(self, project: Mapping[str, Any]) -> Access:
        """The user's effective role: ``permissions`` first, then ``members/all`` (inherited and invited
        memberships, which ``permissions`` leaves null), then ``is_admin``."""
        permissions = project.get("permissions") or {}
        found = {
            kind: int((permissions.get(kind) or {}).get("access_level") or 0)
            for kind in ("project_access", "group_access")
        }
        kind, level = max(found.items(), key=lambda item: item[1])
        if level > 0:
            return Access(level, f"permissions.{kind}")
        user = self.current_user()
        data = user.data if user.ok and isinstance(user.data, dict) else {}
        if data.get("is_admin"):
            return Access(OWNER, "an administrator (GET /user is_admin)", admin=True)
        if data.get("id") is None:
            return Access(0, f"permissions are null and GET /user answered {user.summary() or 'no id'}")
        member = self.get(f"/projects/{self.project_id}/members/all/{int(data['id'])}")
        if member.ok and isinstance(member.data, dict):
            return Access(int(member.data.get("access_level") or 0), "members/all (inherited or invited membership)")
        if member.status == 404:
            return Access(0, "no membership, direct, inherited or invited (members/all: 404)")
        raise CannotEvaluate(
            f"GET {self.api_url}/projects/{self.project_id}/members/all/:id answered {member.summary()}"
        )

    def schedules(self) -> Reply:
        return self.get(f"/projects/{self.project_id}/pipeline_schedules", per_page=100)

    def latest_pipeline(self, ref: str) -> Reply:
        reply = self.get(f"/projects/{self.project_id}/pipelines", ref=ref, order_by="id", sort="desc", per_page=1)
        if reply.ok:
            reply.data = reply.data[0] if isinstance(reply.data, list) and reply.data else None
        return reply

    # ------------------------------------------------------------------ git and ssh

    def scrub(self, text: str) -> str:
        """``text`` without the token, in any form a client sends it."""
        if self.token is None:
            return text
        value = self.token.reveal()
        needles = {value, urllib.parse.quote(value, safe=""), base64.b64encode(value.encode()).decode()}
        for needle in sorted(needles, key=len, reverse=True):
            text = text.replace(needle, MASK)
        return re.sub(r"(Authorization:\s*\w+\s+)\S+", rf"\1{MASK}", text)

    def _run(self, argv: list[str], env: Mapping[str, str], shown: str, timeout: float) -> Command:
        started = time.monotonic()
        try:
            done = subprocess.run(  # noqa: S603 - git/ssh with arguments built here, never from a shell
                argv, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return Command(shown, None, "", f"no answer within {timeout:g} s", round(time.monotonic() - started, 3))
        except FileNotFoundError:
            raise CannotEvaluate(f"{argv[0]} is not installed", hint="install git and openssh-client") from None
        message = self.scrub(_meaningful_line(done.stderr))
        return Command(shown, done.returncode, self.scrub(done.stdout), message, round(time.monotonic() - started, 3))

    @property
    def _git_timeout(self) -> float:
        return self.timeouts.connect + 2 * self.timeouts.request

    def _https_environment(self, directory: Path, username: str) -> dict[str, str]:
        env = _base_environment()
        verify = transport.verify(self.tls)
        if verify is False:
            env["GIT_SSL_NO_VERIFY"] = "1"
        elif isinstance(verify, str):  # the system store may be a folder of hashed certificates
            env["GIT_SSL_CAPATH" if os.path.isdir(verify) else "GIT_SSL_CAINFO"] = verify
        askpass = directory / "askpass"
        askpass.write_text(ASKPASS)
        askpass.chmod(0o700)
        env["GIT_ASKPASS"] = str(askpass)
        env["CONFORMANCE_GIT_USERNAME"] = username
        env["CONFORMANCE_GIT_PASSWORD"] = self.token.reveal() if self.token is not None else ""
        return env

    def ls_remote_https(self, username: str) -> Command:
        """``git ls-remote <https remote>``, authenticating as ``username`` with the token as the password."""
        if self.token is None:
            raise CannotEvaluate(f"no GitLab token: set gitlab.token or {TOKEN_VARIABLE}")
        url = self.section.clone_url
        with tempfile.TemporaryDirectory(prefix="conformance-git-") as directory:
            env = self._https_environment(Path(directory), username)
            return self._run(["git", "ls-remote", url], env, f"git ls-remote {url}", self._git_timeout)

    @property
    def ssh_config_path(self) -> Path:
        return Path(self.section.ssh_config)

    def ssh_options(self) -> list[str]:
        connect = max(1, round(self.timeouts.connect))
        return ["-F", str(self.ssh_config_path), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"ConnectTimeout={connect}"]  # fmt: skip

    def ssh_config(self) -> SshConfig:
        """The effective settings for the GitLab host, from ``ssh -G`` (which reads only ``ssh_config``)."""
        path, host = self.ssh_config_path, self.section.host
        found = SshConfig(path, host)
        if not path.is_file():
            found.error = f"{path} does not exist"
            return found
        if shutil.which("ssh") is None:
            raise CannotEvaluate("ssh is not installed", hint="install openssh-client")
        done = self._run(["ssh", "-G", "-F", str(path), host], _base_environment(), "ssh -G", self.timeouts.request)
        if not done.ok:
            text = done.message or f"ssh -G exited with {done.rc}"
            found.error = text if str(path) in text else f"{path}: {text}"
            return found
        for line in done.stdout.splitlines():
            key, _, value = line.partition(" ")
            found.options.setdefault(key.lower(), []).append(value)
        return found

    def host_key_known(self, config: SshConfig) -> tuple[Path | None, list[Path]]:
        """The known_hosts file that holds the host's key (or None), and the files looked in."""
        files = list(dict.fromkeys([Path(self.section.known_hosts), *config.known_hosts_files]))
        for path in files:
            if not path.is_file():
                continue
            done = self._run(
                ["ssh-keygen", "-F", config.known_hosts_name, "-f", str(path)], _base_environment(),
                "ssh-keygen -F", self.timeouts.request,
            )  # fmt: skip
            if done.ok and done.stdout.strip():
                return path, files
        return None, files

    def ssh_greeting(self) -> Command:
        target = f"{self.section.ssh_user}@{self.section.host}"
        argv = ["ssh", *self.ssh_options(), "-T", target]
        return self._run(argv, _base_environment(), f"ssh -T {target}", self._git_timeout)

    def ls_remote_ssh(self) -> Command:
        url = self.section.ssh_clone_url
        env = _base_environment()
        env["GIT_SSH_COMMAND"] = shlex.join(["ssh", *self.ssh_options()])
        return self._run(["git", "ls-remote", url], env, f"git ls-remote {url}", self._git_timeout)

    # ------------------------------------------------------------------ shared workspace

    def origin_url(self, checkout: Path) -> Command:
        argv = ["git", "-C", str(checkout), "remote", "get-url", "origin"]
        return self._run(argv, _base_environment(), "git remote get-url origin", self.timeouts.request)


def redact_url(url: str) -> tuple[str, bool]:
    """``url`` without its user-info, and whether that held a password."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url, False
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), parts.password is not None


def _walk(root: Path, max_depth: int) -> Iterator[Path]:
    stack = [(root, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if depth < max_depth:
                    stack.append((Path(entry.path), depth + 1))
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def find_private_keys(root: Path, *, seconds: float, max_depth: int = 4, max_files: int = 20000) -> KeyScan:
    """Files under ``root`` (a few levels deep, bounded in time and count) that hold a private key."""
    scan = KeyScan(root)
    deadline = Deadline.after(seconds)
    for path in _walk(root, max_depth):
        scan.scanned += 1
        if scan.scanned > max_files or deadline.left() <= 0:
            scan.complete = False
            break
        try:
            if path.stat().st_size > 64 * 1024:
                continue
            with path.open("rb") as handle:
                head = handle.read(128)
        except OSError:
            continue
        if head.startswith(b"-----BEGIN") and KEY_MARKER in head:
            scan.keys.append(str(path.relative_to(root)))
    return scan


def days_until(date_text: str, today: dt.date | None = None) -> int:
    """Days from today (UTC) to a GitLab ``expires_at`` date (``YYYY-MM-DD``)."""
    day = dt.date.fromisoformat(date_text[:10])
    return (day - (today or dt.datetime.now(dt.UTC).date())).days


def connect(profile: Profile, run_id: str) -> GitLabClient:
    """The client; it talks to nothing until a check asks."""
    if profile.gitlab is None:
        raise CannotEvaluate("the profile has no gitlab section")
    return GitLabClient(profile.gitlab, profile)
