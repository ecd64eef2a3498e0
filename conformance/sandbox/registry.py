"""The sandbox's container registry: a real Distribution registry, plus a simulated token realm in front.

Real: Debian's ``docker-registry serve`` (distribution 2.8) with htpasswd (bcrypt) users, TLS from the
sandbox CA and deletion enabled. It speaks Basic authentication only, and it has no per-repository
authorisation: every user may push everywhere.

Simulated (``registry-token-realm``): Harbor answers ``/v2/`` with a Bearer challenge and hands out
tokens from a realm. :class:`TokenFront` does the same in-process, answering every refusal from the
transcripts in ``contracts/harbor.yaml`` (goharbor/harbor v2.16.0 ``src/server/middleware/v2auth``):
without credentials a Bearer challenge (scoped for a repository); a user whose project role does not
allow the action ``401 UNAUTHORIZED unauthorized to access repository: <repo>, action: <action>`` with a
``Basic realm="harbor"`` challenge (Harbor accepts Basic as well as its tokens); an unknown project
``401 ... project <p> not found``; the realm itself ``401`` with an empty body for a wrong password.
Roles as Harbor's ``rbac_role.go`` has them: a Maintainer may pull, push and delete; a Developer may
pull and push but not delete; a Guest may only pull. Everything allowed is proxied to the real registry.

Faults, for the suite's own tests: a second real registry with deletion disabled (``405 UNSUPPORTED``),
and a second front that flips the last byte of every blob it serves (a proxy that alters content).

The other generation of token authentication runs beside it (SANDBOX_REGISTRY_DISTRIBUTION_URL/_HOST):
Distribution's own token access controller, as in Harbor 1.x: Bearer tokens only, and a token without
the action answered ``401`` with ``error="insufficient_scope"`` (transcript ``insufficient-scope``).

Variables: SANDBOX_REGISTRY_URL/_HOST (real, Basic), SANDBOX_REGISTRY_TOKEN_URL/_HOST (front, Bearer),
SANDBOX_FAULT_REGISTRY_NODELETE_URL/_HOST, SANDBOX_FAULT_REGISTRY_CORRUPT_URL/_HOST,
SANDBOX_REGISTRY_PROJECT (the project path below the host), SANDBOX_REGISTRY_USER/_PASSWORD (Developer),
SANDBOX_REGISTRY_MAINTAINER_USER/_PASSWORD (Maintainer), SANDBOX_REGISTRY_GUEST_USER/_GUEST_PASSWORD
(Guest), SANDBOX_REGISTRY_ROBOT_JSON (a Harbor robot-account file for ``robot$mlops+conformance``, push
and pull), SANDBOX_DOCKER_CONFIG (``auths`` for every host above: the Developer for the plain registries,
which have no roles; the Maintainer for the Harbor-like fronts, so that the sandbox's own runs delete
what they push).
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import os
import re
import secrets
import ssl
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.sandbox import contracts
from conformance.sandbox.process import Process, http_ok
from conformance.sandbox.web import LoopbackServer, free_port

if TYPE_CHECKING:
    from conformance.sandbox import Sandbox

PROJECT = "mlops"  # the one Harbor project the sandbox has
PROJECT_PATH = f"{PROJECT}/kapitan-hull-sandbox"
SERVICE = "harbor-registry"
TOKEN_SECONDS = 300
# goharbor/harbor v2.16.0 src/common/rbac/project/rbac_role.go: repository actions per project role.
ROLE_ACTIONS = {
    "maintainer": ("pull", "push", "delete"),
    "developer": ("pull", "push"),
    "guest": ("pull",),
}
_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags)(?:/|$)")


@dataclass
class Token:
    user: str
    requested: dict[str, set[str]]  # repository -> actions asked for
    granted: dict[str, set[str]]  # repository -> actions given
    expires: float


@dataclass
class Realm:
    """Users, their Harbor-like roles, and the tokens handed out."""

    passwords: dict[str, str]
    roles: dict[str, str]  # user -> "maintainer" | "developer" | "guest"
    projects: set[str]
    tokens: dict[str, Token] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_basic(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self.passwords.get(user)
        return user if expected is not None and secrets.compare_digest(expected, password) else None

    def allowed(self, user: str, repository: str) -> set[str]:
        """What the user's project role allows on a repository (Harbor's rbac_role.go: no delete for a Developer)."""
        if repository.split("/", 1)[0] not in self.projects:
            return set()
        return set(ROLE_ACTIONS.get(self.roles.get(user, ""), ()))

    def issue(self, user: str, scopes: list[str]) -> str:
        requested: dict[str, set[str]] = {}
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and name:
                requested.setdefault(name, set()).update(a for a in actions.split(",") if a)
        granted = {name: actions & self.allowed(user, name) for name, actions in requested.items()}
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = Token(user, requested, granted, time.monotonic() + TOKEN_SECONDS)
        return token

    def lookup(self, header: str | None) -> Token | None:
        if not header or not header.startswith("Bearer "):
            return None
        with self.lock:
            token = self.tokens.get(header[7:])
        return token if token is not None and token.expires > time.monotonic() else None


def _action(method: str) -> str:
    return {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "push")


def _scope_actions(action: str) -> str:
    return "pull,push" if action == "push" else action


class _FrontHandler(BaseHTTPRequestHandler):
    server: _FrontServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        return

    # ----------------------------------------------------------------- answers

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
        self._reply(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _transcript(self, name: str, extra: dict[str, str] | None = None, **values: object) -> None:
        """Answer exactly as the transcript ``harbor.yaml: <name>`` says Harbor does."""
        transcript = contracts.get("harbor", name)
        answer = transcript.http
        assert answer is not None  # noqa: S101 - harbor.yaml's transcripts are all HTTP answers
        values = {"realm": f"{self.server.origin}/service/token", "service": SERVICE, **values}
        headers = {k: transcript.render(v, **values) for k, v in answer.headers.items()}
        body = transcript.render(answer.body, **values).encode()
        self._reply(answer.status, body, {**headers, **(extra or {})})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # ----------------------------------------------------------------- routing

    def _dispatch(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/service/token" and self.command == "GET":
            self._token()
        elif path.startswith("/v2/"):
            self._registry(path)
        else:
            self._reply(404, b"not found\n", {"Content-Type": "text/plain"})

    def _token(self) -> None:
        realm = self.server.realm
        user = realm.check_basic(self.headers.get("Authorization"))
        if user is None:
            self._transcript("token-refused")
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._transcript("token-issued", token=realm.issue(user, query.get("scope", [])), issued=issued)

    def _allowed(self, header: str, repository: str) -> set[str]:
        """What the request's credentials may do: a token's grant, or a Basic user's role; nothing if neither."""
        realm = self.server.realm
        token = realm.lookup(header)
        if token is not None:
            return token.granted.get(repository, set())
        user = realm.check_basic(header)
        return realm.allowed(user, repository) if user is not None else set()

    def _registry(self, path: str) -> None:
        """Harbor's v2auth middleware (harbor.yaml), then the real registry behind it."""
        if self.server.generation == "distribution":
            self._distribution(path)
            return
        realm = self.server.realm
        body = self._body()
        header = self.headers.get("Authorization") or ""
        match = _REPO_PATH.match(path)
        if match is None:  # /v2/ itself, or _catalog: any authenticated user will do
            known = realm.lookup(header) is not None or realm.check_basic(header) is not None
            if not known:
                # getChallenge: a Basic challenge once the request carried credentials, else the Bearer one.
                extra = {"Www-Authenticate": 'Basic realm="harbor"'} if header else None
                self._transcript("challenge-anonymous", extra)
            elif path == "/v2/":
                self._reply(200, b"{}", {"Content-Type": "application/json", **API_VERSION})
            else:
                self._transcript("denied")
            return
        name, action = match.group("name"), _action(self.command)
        scope = f"repository:{name}:{_scope_actions(action)}"
        if not header and self.command in ("GET", "HEAD"):
            self._transcript("challenge-repository", scope=scope)
            return
        project = name.split("/", 1)[0]
        if project not in realm.projects:
            self._transcript("project-not-found", project=project)
            return
        if action not in self._allowed(header, name):
            # getChallenge: without credentials, the Bearer challenge for the scope; with them, Basic.
            challenge = f'Bearer realm="{self.server.origin}/service/token",service="{SERVICE}",scope="{scope}"'
            bearer = None if header else {"Www-Authenticate": challenge}
            self._transcript("no-role", bearer, repository=name, action=action)
            return
        self._proxy(body)

    def _distribution(self, path: str) -> None:
        """The other generation: Distribution's own token access controller (Harbor 1.x, plain registries
        with token auth). Bearer tokens only; a token without the action is ``insufficient_scope``."""
        realm = self.server.realm
        body = self._body()
        header = self.headers.get("Authorization") or ""
        token = realm.lookup(header)
        match = _REPO_PATH.match(path)
        if match is None:
            if token is None:
                self._transcript("distribution-challenge", scope_param="", detail="null")
            else:
                self._reply(200, b"{}", {"Content-Type": "application/json", **API_VERSION})
            return
        name, action = match.group("name"), _action(self.command)
        scope = f"repository:{name}:{_scope_actions(action)}"
        if token is None:
            detail = json.dumps([{"Type": "repository", "Class": "", "Name": name, "Action": action}])
            self._transcript("distribution-challenge", scope_param=f',scope="{scope}"', detail=detail)
        elif action not in token.granted.get(name, set()):
            self._transcript("insufficient-scope", scope=scope, repository=name, action=action)
        else:
            self._proxy(body)

    def _proxy(self, body: bytes) -> None:
        server = self.server
        conn = http.client.HTTPSConnection("localhost", server.upstream_port, timeout=30, context=server.client_tls)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "host", "connection")}
        headers["Authorization"] = server.upstream_auth
        headers["Host"] = f"localhost:{server.upstream_port}"
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError as exc:
            self._error(502, "UNKNOWN", f"upstream registry failed: {exc}")
            return
        finally:
            conn.close()
        upstream = f"https://localhost:{server.upstream_port}"
        passed: dict[str, str] = {}
        for name, value in response.getheaders():
            if name.lower() in ("content-length", "connection", "transfer-encoding", "www-authenticate", "date"):
                continue
            passed[name] = value.replace(upstream, server.origin) if name.lower() == "location" else value
        if server.corrupt_blobs and self.command == "GET" and "/blobs/sha256:" in self.path and data:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        self.send_response(response.status)
        for name, value in passed.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


class _FrontServer(LoopbackServer):
    def __init__(
        self, realm: Realm, cert: tuple[Path, Path], client_tls: ssl.SSLContext, upstream: int, auth: str
    ) -> None:
        super().__init__(_FrontHandler, cert)
        self.realm = realm
        self.client_tls = client_tls
        self.upstream_port = upstream
        self.upstream_auth = auth
        self.origin = self.url
        self.corrupt_blobs = False  # fault: flip the last byte of every blob served
        self.generation = "harbor"  # or "distribution": the token access controller of Harbor 1.x


class TokenFront:
    """A Harbor-like token realm and ``/v2/`` front, proxying to the real registry (simulated)."""

    def __init__(
        self,
        realm: Realm,
        cert: tuple[Path, Path],
        ca_bundle: Path,
        upstream_port: int,
        upstream_auth: str,
        *,
        corrupt_blobs: bool = False,
        generation: str = "harbor",
    ) -> None:
        client_tls = ssl.create_default_context(cafile=str(ca_bundle))
        self._server = _FrontServer(realm, cert, client_tls, upstream_port, upstream_auth)
        self._server.corrupt_blobs = corrupt_blobs
        self._server.generation = generation
        self._server.start()
        self.port = self._server.port

    def stop(self) -> None:
        self._server.stop()


# --------------------------------------------------------------------------- start


def _htpasswd(passwords: dict[str, str]) -> str:
    lines = []
    for user, password in passwords.items():
        done = subprocess.run(
            ["htpasswd", "-Bbn", user, password], capture_output=True, text=True, timeout=30, check=True
        )
        lines.append(done.stdout.strip())
    return "\n".join(lines) + "\n"


def _config(root: Path, name: str, port: int, cert: tuple[Path, Path], *, delete: bool) -> str:
    return "\n".join(
        [
            "version: 0.1",
            "log: {level: info, accesslog: {disabled: true}}",
            f"storage: {{filesystem: {{rootdirectory: {root / name}}}, delete: {{enabled: {str(delete).lower()}}}}}",
            "http:",
            f"  addr: 127.0.0.1:{port}",
            f"  secret: {secrets.token_hex(16)}",
            f"  tls: {{certificate: {cert[0]}, key: {cert[1]}}}",
            f"auth: {{htpasswd: {{realm: conformance-sandbox, path: {root / 'htpasswd'}}}}}",
            "",
        ]
    )


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def _serve_registry(sandbox: Sandbox, root: Path, name: str, *, delete: bool) -> int:
    """One ``docker-registry serve`` on a free port, sharing the htpasswd file in ``root``; its port."""
    port = free_port()
    config = root / f"{name}.yml"
    config.write_text(_config(root, name, port, sandbox.ca.issue(sandbox.pki_dir, name), delete=delete))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(sandbox.home)}
    process = sandbox.add(Process(name, ["docker-registry", "serve", str(config)], log_dir=root, env=env))
    context = ssl.create_default_context(cafile=str(sandbox.ca_bundle))
    process.wait_ready(http_ok(f"https://localhost:{port}/v2/", context), timeout=20)
    return port


def start(sandbox: Sandbox) -> None:
    root = sandbox.dir / "registry"
    root.mkdir()
    user, guest, robot = "conformance-dev", "conformance-guest", "robot$mlops+conformance"
    maintainer = "conformance-maintainer"
    passwords = {user: secrets.token_urlsafe(18), guest: secrets.token_urlsafe(18), robot: secrets.token_urlsafe(24)}
    passwords[maintainer] = secrets.token_urlsafe(18)
    (root / "htpasswd").write_text(_htpasswd(passwords))
    port = _serve_registry(sandbox, root, "registry", delete=True)
    # Fault: a registry that forbids deletion (405 UNSUPPORTED), as many production registries do.
    nodelete_port = _serve_registry(sandbox, root, "registry-nodelete", delete=False)

    roles = {user: "developer", robot: "developer", guest: "guest", maintainer: "maintainer"}
    realm = Realm(passwords, roles, {PROJECT})
    upstream_auth = "Basic " + _basic(user, passwords[user])
    front = sandbox.add(
        TokenFront(realm, sandbox.ca.issue(sandbox.pki_dir, "registry-front"), sandbox.ca_bundle, port, upstream_auth)
    )
    # Fault: a proxy in the path that alters blob content on the way back.
    corrupt = sandbox.add(
        TokenFront(
            realm,
            sandbox.ca.issue(sandbox.pki_dir, "registry-corrupt"),
            sandbox.ca_bundle,
            port,
            upstream_auth,
            corrupt_blobs=True,
        )
    )
    # The other generation: Distribution's token access controller (Harbor 1.x), insufficient_scope.
    distribution = sandbox.add(
        TokenFront(
            realm,
            sandbox.ca.issue(sandbox.pki_dir, "registry-distribution"),
            sandbox.ca_bundle,
            port,
            upstream_auth,
            generation="distribution",
        )
    )
    sandbox.simulated.append("registry-token-realm")

    hosts = {
        "SANDBOX_REGISTRY": f"localhost:{port}",
        "SANDBOX_REGISTRY_TOKEN": f"localhost:{front.port}",
        "SANDBOX_FAULT_REGISTRY_NODELETE": f"localhost:{nodelete_port}",
        "SANDBOX_FAULT_REGISTRY_CORRUPT": f"localhost:{corrupt.port}",
        "SANDBOX_REGISTRY_DISTRIBUTION": f"localhost:{distribution.port}",
    }
    docker_config = sandbox.home / ".docker" / "config.json"
    fronts = {
        hosts[k] for k in ("SANDBOX_REGISTRY_TOKEN", "SANDBOX_FAULT_REGISTRY_CORRUPT", "SANDBOX_REGISTRY_DISTRIBUTION")
    }
    auths = {
        host: {"auth": _basic(maintainer, passwords[maintainer]) if host in fronts else _basic(user, passwords[user])}
        for host in hosts.values()
    }
    _write_private(docker_config, json.dumps({"auths": auths}, indent=2))
    robot_json = root / "robot-account.json"
    robot_file = {"id": 1, "name": robot, "secret": passwords[robot], "creation_time": 0, "expires_at": -1}
    _write_private(robot_json, json.dumps(robot_file, indent=2))
    for prefix, host in hosts.items():
        sandbox.env[f"{prefix}_URL"] = f"https://{host}"
        sandbox.env[f"{prefix}_HOST"] = host
    sandbox.env.update(
        {
            "SANDBOX_REGISTRY_PROJECT": PROJECT_PATH,
            "SANDBOX_REGISTRY_USER": user,
            "SANDBOX_REGISTRY_PASSWORD": passwords[user],
            "SANDBOX_REGISTRY_MAINTAINER_USER": maintainer,
            "SANDBOX_REGISTRY_MAINTAINER_PASSWORD": passwords[maintainer],
            "SANDBOX_REGISTRY_GUEST_USER": guest,
            "SANDBOX_REGISTRY_GUEST_PASSWORD": passwords[guest],
            "SANDBOX_REGISTRY_ROBOT_JSON": str(robot_json),
            "SANDBOX_DOCKER_CONFIG": str(docker_config),
        }
    )
