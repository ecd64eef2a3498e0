"""HOW to talk to a container registry (Harbor, Artifact Registry) without a Docker daemon. Never asserts.

Credentials are read where users keep them: the profile's ``username``/``password``, a Harbor
robot-account JSON, or a docker ``config.json`` (``auths``, or a ``credHelpers`` program such as
``docker-credential-gcloud``). The registry is spoken to with the plain Distribution API over
``requests``: ``/v2/``, Basic or Bearer-token authentication (a token realm named by the
``WWW-Authenticate`` challenge), blob uploads, manifests, pulls by digest and deletes.

Every problem with a credentials file is one line naming the file (:class:`CredentialError`); a
transport failure during a check is :class:`~conformance.checks.CannotEvaluate`; an HTTP answer is
a :class:`Reply` summary (status, registry error code, message, seconds), never a raw dump.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from conformance import transport
from conformance.checks import CannotEvaluate
from conformance.cleanup import Swept, eligible
from conformance.files import read_json_object
from conformance.locate import basic_pair  # the secret index decodes docker logins the same way
from conformance.profile import Profile, Registry
from conformance.secrets import Secret

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_TYPES = (
    OCI_MANIFEST,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_TAG_PAGES = 100  # /tags/list pages followed at most (a registry pages by 100 or 1000 tags)
ARTIFACT_REGISTRY_SUFFIX = "-docker.pkg.dev"
GCLOUD_HELPER = "gcloud"
ROBOT_PREFIX = "robot$"
IMAGE_NAME = "conformance"
# goharbor/harbor src/common/rbac/project/rbac_role.go: only these project roles may delete a repository.
WHO_CAN_DELETE = (
    "in Harbor only a project Maintainer or ProjectAdmin (or a system administrator) may delete: ask one to "
    "run `python -m conformance cleanup`, or let the project's tag retention policy remove conformance tags"
)
USER_AGENT = "conformance-suite"
_CHALLENGE_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')


class CredentialError(Exception):
    """A credentials source that cannot be used; one line that names the file, never a value."""


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credential:
    username: str
    password: Secret
    source: str  # where it came from, for evidence: "docker config /home/u/.docker/config.json (auths)"
    expires: dt.datetime | None = None  # a Harbor robot account's expires_at (-1 or absent: never)

    def basic(self) -> str:
        """The Basic ``Authorization`` value; only for the moment of sending."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.password.reveal()}".encode()).decode()


@dataclass
class Credentials:
    """What the profile's credential sources hold for the registry host."""

    host: str
    credential: Credential | None = None
    consulted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    helper: str | None = None  # credHelpers/credsStore program docker would run for the host
    helper_path: str | None = None  # where docker-credential-<helper> is, when on PATH
    docker_config_read: bool = False  # a docker config.json was read and parsed

    @property
    def usable(self) -> bool:
        return self.credential is not None and not self.problems


def _check_auths(data: dict[str, Any], path: Path) -> None:
    auths = data.get("auths", {})
    if not isinstance(auths, dict):
        raise CredentialError(f"{path}: 'auths' must be an object keyed by registry host")
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            raise CredentialError(f"{path}: auths[{key!r}] must be an object")
        if "auth" in entry and basic_pair(entry["auth"]) is None:
            raise CredentialError(f"{path}: auths[{key!r}].auth is not base64 of 'user:password'")
    helpers = data.get("credHelpers", {})
    if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
        raise CredentialError(f"{path}: 'credHelpers' must map registry hosts to helper names")


def _from_helper(helper: str, host: str, timeout: float, path: Path) -> Credential:
    """Run ``docker-credential-<helper> get`` (bounded: docker-py's own call has no timeout)."""
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        raise CredentialError(
            f"{path}: names helper '{helper}' for {host}, but docker-credential-{helper} is not on PATH"
        )
    try:
        done = subprocess.run(  # noqa: S603 - the helper docker itself would run, found on PATH
            [program, "get"], input=host, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise CredentialError(f"docker-credential-{helper} get {host} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise CredentialError(f"docker-credential-{helper} could not run ({exc.strerror or exc})") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        reason = said[-1][: transport.QUOTE] if said else "no message"
        raise CredentialError(f"docker-credential-{helper} get {host} failed (exit {done.returncode}: {reason})")
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise CredentialError(f"docker-credential-{helper} get {host} printed something that is not JSON") from None
    # The helper protocol (and docker-py's resolve_authconfig) use capitalised keys: Username, Secret.
    found = {str(k).lower(): v for k, v in answer.items()} if isinstance(answer, dict) else {}
    user, secret = found.get("username"), found.get("secret") or found.get("password")
    if not isinstance(user, str) or not isinstance(secret, str) or not user or not secret:
        raise CredentialError(f"docker-credential-{helper} get {host} returned no username and secret")
    return Credential(
        user, Secret(secret, f"docker-credential-{helper}"), f"docker config {path} (credHelpers: {helper})"
    )


def read_docker_config(path: Path, host: str, timeout: float, found: Credentials) -> Credential:
    """The credential docker would use for ``host`` from ``path``; records the helper in ``found``."""
    # docker-py ships no type information; the SDK loads only when the registry component runs.
    import docker.auth  # type: ignore[import-untyped] # noqa: PLC0415 - see above
    import docker.errors  # type: ignore[import-untyped] # noqa: PLC0415 - see above

    data = read_json_object(path, "docker config", CredentialError)
    _check_auths(data, path)
    try:
        config = docker.auth.load_config(config_path=str(path))
    except (docker.errors.InvalidConfigFile, ValueError, binascii.Error) as exc:
        raise CredentialError(f"{path}: docker cannot read it ({type(exc).__name__})") from None
    found.docker_config_read = True
    helper = config.get_credential_store(host)
    if helper:
        found.helper = str(helper)
        found.helper_path = shutil.which(f"docker-credential-{helper}")
        return _from_helper(str(helper), host, timeout, path)
    entry = docker.auth.resolve_authconfig(config, host)
    if not entry:
        known = ", ".join(sorted(config.get("auths", {}))) or "none"
        raise CredentialError(f"{path}: has no credentials for {host} (auths has: {known})")
    entry = {str(k).lower(): v for k, v in entry.items()}
    if "identitytoken" in entry:
        raise CredentialError(f"{path}: holds an identity token for {host}, which this suite cannot exchange")
    user, password = entry.get("username"), entry.get("password")
    if not isinstance(user, str) or not isinstance(password, str) or not user or not password:
        raise CredentialError(f"{path}: auths entry for {host} has no username and password (run docker login {host})")
    return Credential(user, Secret(password, f"docker config {path}"), f"docker config {path} (auths)")


def read_robot_account(path: Path, host: str) -> Credential:
    """A Harbor robot account: Harbor's exported ``{"name": "robot$...", "secret": ...}`` or a docker-config JSON."""
    data = read_json_object(path, "robot-account JSON", CredentialError)
    ends: dt.datetime | None = None
    if "auths" in data:
        _check_auths(data, path)
        auths = data["auths"]
        entry = auths.get(host) or auths.get(f"https://{host}")
        pair = basic_pair(entry.get("auth")) if isinstance(entry, dict) else None
        if pair is None:
            raise CredentialError(
                f"{path}: has no auths[{host!r}].auth (auths has: {', '.join(sorted(auths)) or 'none'})"
            )
        user, password = pair
    elif isinstance(data.get("name"), str) and isinstance(data.get("secret"), str) and data["secret"]:
        user, password = data["name"], data["secret"]
        expires = data.get("expires_at")
        if isinstance(expires, int | float) and not isinstance(expires, bool) and 0 < expires < 2**33:
            ends = dt.datetime.fromtimestamp(expires, dt.UTC)
            if expires < time.time():
                raise CredentialError(f"{path}: robot account {user} expired on {ends:%Y-%m-%d}")
    else:
        raise CredentialError(
            f'{path}: not a Harbor robot-account JSON: expected {{"name": "robot$...", "secret": "..."}} '
            f'or {{"auths": {{"{host}": {{"auth": "<base64 user:password>"}}}}}}'
        )
    if not user.startswith(ROBOT_PREFIX):
        raise CredentialError(f"{path}: robot account name {user!r} does not start with {ROBOT_PREFIX!r}")
    return Credential(user, Secret(password, f"robot account {path}"), f"robot account {path}", ends)


def find_credentials(section: Registry, timeout: float) -> Credentials:
    """Every configured source, in order (profile, robot JSON, docker config); the first usable one wins."""
    found = Credentials(section.host)
    url_host = urllib.parse.urlsplit(section.url).netloc
    if url_host != section.host:
        found.problems.append(f"registry.url names {url_host}, but registry.project_path is on {section.host}")
    if section.username is not None or section.password is not None:
        found.consulted.append("profile registry.username/password")
        if section.username is None or section.password is None:
            found.problems.append("registry.username and registry.password must be set together")
        else:
            found.credential = Credential(section.username, section.password, "profile registry.username/password")
    readers: list[tuple[str | None, str, Callable[[Path], Credential]]] = [
        (section.robot_creds_json, "robot account", lambda p: read_robot_account(p, section.host)),
        (section.docker_config, "docker config", lambda p: read_docker_config(p, section.host, timeout, found)),
    ]
    for path, what, read in readers:
        if path is None:
            continue
        found.consulted.append(f"{what} {path}")
        try:
            credential = read(Path(path))
        except CredentialError as exc:
            found.problems.append(str(exc))
            continue
        found.credential = found.credential or credential
    if not found.consulted:
        found.problems.append(
            f"the profile names no credentials for {section.host}: set registry.docker_config "
            "(~/.docker/config.json after docker login), registry.robot_creds_json, or registry.username/password"
        )
    return found


def is_artifact_registry(host: str) -> bool:
    return host.split(":", 1)[0].endswith(ARTIFACT_REGISTRY_SUFFIX)


# --------------------------------------------------------------------------- the image


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Image:
    """A one-layer OCI image, generated; unique per call (a nonce in the layer)."""

    layer: bytes
    config: bytes
    manifest: bytes

    @property
    def blobs(self) -> dict[str, bytes]:
        return {_digest(self.layer): self.layer, _digest(self.config): self.config}

    @property
    def digest(self) -> str:
        return _digest(self.manifest)

    @property
    def size(self) -> int:
        return len(self.layer) + len(self.config) + len(self.manifest)


def build_image(run_id: str) -> Image:
    content = f"conformance suite probe image\nrun: {run_id}\nnonce: {uuid.uuid4().hex}\n".encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo("conformance")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        entry = tarfile.TarInfo("conformance/probe.txt")
        entry.size, entry.mode = len(content), 0o644
        tar.addfile(entry, io.BytesIO(content))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = _canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"org.opencontainers.image.title": "conformance probe", "run-id": run_id}},
            "rootfs": {"type": "layers", "diff_ids": [_digest(raw.getvalue())]},
            "history": [{"created_by": "conformance suite (generated, no Dockerfile)"}],
        }
    )
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
            "annotations": {"org.opencontainers.image.title": "conformance probe", "run-id": run_id},
        }
    )
    return Image(layer, config, manifest)


# --------------------------------------------------------------------------- HTTP


# Harbor's v2 front names the refused action (src/server/middleware/v2auth/auth.go): a missing role,
# although it answers 401; and a project that does not exist (src/pkg/project/dao/dao.go).
_NO_ROLE = re.compile(r"unauthorized to access repository: (?P<repository>[^,\s]+), action: (?P<action>[\w-]+)")
_NO_PROJECT = re.compile(r"^project (?P<project>\S+) not found")
# Why a registry said no, read from the error body first and the status last.
CAUSE_ROLE = "role"  # logged in, but the user's role does not allow the action
CAUSE_PROJECT = "project"  # the project or repository does not exist
CAUSE_CREDENTIALS = "credentials"  # the login itself was refused
CAUSE_UNSUPPORTED = "unsupported"  # the registry does not offer the operation (deletion disabled)
CAUSE_SERVER = "server"
CAUSE_OTHER = "other"


@dataclass(frozen=True)
class Reply:
    """One HTTP exchange, summarised: never headers, never a body dump."""

    step: str
    status: int
    code: str | None = None  # the registry's error code (DENIED, NAME_UNKNOWN, UNAUTHORIZED, ...)
    message: str = ""
    seconds: float = 0.0
    action: str | None = None  # the action the registry refused (push, delete, ...), when it says
    challenge_error: str | None = None  # a Bearer challenge's error= (insufficient_scope, invalid_token)

    def summary(self) -> str:
        text = f"HTTP {self.status}"
        if self.code:
            text += f" {self.code}"
        return f"{text}: {self.message}" if self.message else text

    @property
    def cause(self) -> str:
        """Why the registry said no: the body's words decide, the status only when they say nothing.

        Harbor 2.x answers a missing role with ``401 UNAUTHORIZED unauthorized to access repository:
        <repo>, action: <action>`` and an unknown project with ``401 ... project <p> not found``;
        Distribution's token controller with ``401`` and ``error="insufficient_scope"``; ``403 DENIED``
        is a refusal of an authenticated user. Only a 401 that says none of this is about the login.
        """
        if self.status < 400:
            return CAUSE_OTHER
        if self.action is not None or self.challenge_error == "insufficient_scope":
            return CAUSE_ROLE
        if _NO_PROJECT.match(self.message) or self.code == "NAME_UNKNOWN" or self.status == 404:
            return CAUSE_PROJECT
        if self.code == "DENIED" or self.status == 403:
            return CAUSE_ROLE
        if self.status == 405 or self.code == "UNSUPPORTED":
            return CAUSE_UNSUPPORTED
        if self.status == 401:
            return CAUSE_CREDENTIALS
        return CAUSE_SERVER if self.status >= 500 else CAUSE_OTHER


def _dedupe(message: str) -> str:
    """Harbor's ``"<m>: <m>"`` (an error's message, then its cause, the same text) once."""
    half = (len(message) - 2) // 2
    if half > 0 and message[:half] == message[half + 2 :] and message[half : half + 2] == ": ":
        return message[:half]
    return message


def _reply(step: str, response: transport.Answer, seconds: float) -> Reply:
    if response.status < 400:
        return Reply(step, response.status, seconds=round(seconds, 4))
    code, message, detail = None, "", None
    try:
        errors = response.body.get("errors") or []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        code, message, detail = first.get("code"), _dedupe(str(first.get("message") or "")), first.get("detail")
    except (ValueError, AttributeError):
        message = response.reason
    challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
    challenge_error = challenge[1].get("error") if challenge else None
    action = None
    refused = _NO_ROLE.search(message)
    if refused:
        action = refused["action"]
    elif challenge_error == "insufficient_scope" and isinstance(detail, list) and detail:
        asked = detail[0] if isinstance(detail[0], dict) else {}
        action = str(asked.get("Action") or "") or None  # Distribution's detail: the access asked for
    return Reply(step, response.status, code, message[: transport.QUOTE], round(seconds, 4), action, challenge_error)


def parse_challenge(header: str) -> tuple[str, dict[str, str]] | None:
    """``WWW-Authenticate: Bearer realm="...",service="...",scope="..."`` as ("bearer", params)."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


@dataclass
class Login:
    ok: bool
    scheme: str  # basic, bearer, or none (anonymous)
    api_version: str | None
    replies: list[Reply]
    failure: Reply | None = None
    realm: str | None = None
    problem: str = ""  # when the answer is not an HTTP error (e.g. no challenge at all)


@dataclass
class Push:
    reference: str
    image: Image
    replies: list[Reply] = field(default_factory=list)
    failure: Reply | None = None
    problem: str = ""
    digest: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.problem and self.digest is not None


@dataclass
class Pull:
    replies: list[Reply] = field(default_factory=list)
    failure: Reply | None = None
    different: list[str] = field(default_factory=list)  # what came back with other bytes


@dataclass
class Delete:
    replies: list[Reply] = field(default_factory=list)
    deleted: bool = False
    refused: bool = False  # the registry forbids deletion (405 / UNSUPPORTED)
    failure: Reply | None = None
    not_permitted: Reply | None = None  # the user's role may not delete (Harbor: Developer, Guest)

    @property
    def left_behind(self) -> str | None:
        """Why the image is still in the registry, in one line; None when it was deleted."""
        if self.deleted:
            return None
        if self.not_permitted is not None:
            return f"your role may not delete it ({self.not_permitted.summary()}); {WHO_CAN_DELETE}"
        if self.refused:
            return "the registry forbids deletion (405 / UNSUPPORTED); remove the tag by hand or by retention"
        if self.failure is not None:
            return f"delete failed: {self.failure.summary()}"
        return "not deleted"


class RegistryClient:
    """One registry session: credentials, auth state, the pushed image to clean up."""

    def __init__(self, section: Registry, profile: Profile, run_id: str, credentials: Credentials) -> None:
        self.section = section
        self.base = section.url.rstrip("/")
        self.credentials = credentials
        self.repository = f"{section.repository}/{IMAGE_NAME}"
        self.tag = re.sub(r"[^A-Za-z0-9_.-]", "-", run_id)[:128]
        self.reference = f"{section.project_path}/{IMAGE_NAME}:{self.tag}"
        self.timeouts, self.tls = profile.timeouts, profile.tls
        self.http: requests.Session = transport.pinned_session(requests.Session, profile.tls)()
        # No netrc and no CA variables: trust is the profile's, proxies are transport's (HTTPS_PROXY/NO_PROXY).
        self.http.trust_env = False
        self.http.headers["User-Agent"] = USER_AGENT
        self._authorization: str | None = None
        self._login: Login | None = None
        self.pushed: Push | None = None
        self.removed: Delete | None = None

    # ----------------------------------------------------------------- plumbing

    def _raw(self, method: str, url: str, headers: dict[str, str] | None, data: bytes | None) -> transport.Answer:
        sent = dict(headers or {})
        if self._authorization:
            sent["Authorization"] = self._authorization
        return transport.request(method, url, self.tls, self.timeouts, self.http, headers=sent, data=data)

    def _answer(self, challenge: tuple[str, dict[str, str]], replies: list[Reply]) -> Reply | None:
        """Authenticate for ``challenge``; returns the realm's failing reply, if it refused."""
        credential = self.credentials.credential
        if credential is None:
            return None
        scheme, params = challenge
        if scheme == "basic":
            self._authorization = credential.basic()
            return None
        realm = params.get("realm", "")
        query = {k: v for k, v in (("service", params.get("service")), ("scope", params.get("scope"))) if v}
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query) if query else realm
        headers = {"Authorization": credential.basic()}
        response = transport.request("GET", url, self.tls, self.timeouts, self.http, headers=headers)
        reply = _reply(f"GET token realm ({params.get('scope') or 'no scope'})", response, response.elapsed)
        replies.append(reply)
        if response.status != 200:
            return reply
        try:
            body = response.body
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            return Reply(reply.step, reply.status, "NO_TOKEN", "the realm answered 200 without a token", reply.seconds)
        self._authorization = f"Bearer {token}"
        return None

    def _call(
        self,
        replies: list[Reply],
        step: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[Reply, transport.Answer]:
        """Send once; on a 401 challenge authenticate for its scope and send again."""
        started = time.monotonic()
        response = self._raw(method, url, headers, data)
        if response.status == 401 and self.credentials.credential is not None:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if challenge is not None:
                refused = self._answer(challenge, replies)
                if refused is not None:
                    return refused, response
                response = self._raw(method, url, headers, data)
        reply = _reply(step, response, time.monotonic() - started)
        if method == "HEAD" and response.status >= 400 and response.status != 404:
            # A HEAD answer has no body, and the body says why (Harbor's 401s): ask the same with GET.
            again = self._raw("GET", url, headers, None)
            if again.status == response.status:
                reply = _reply(step, again, time.monotonic() - started)
        replies.append(reply)
        return reply, response

    def _url(self, kind: str, reference: str = "") -> str:
        return f"{self.base}/v2/{self.repository}/{kind}/{reference}"

    # ----------------------------------------------------------------- operations

    def login(self) -> Login:
        """``GET /v2/`` anonymously, then answer its challenge (Basic, or a Bearer token from the realm)."""
        if self._login is not None:
            return self._login
        url = f"{self.base}/v2/"
        replies: list[Reply] = []
        started = time.monotonic()
        first = self._raw("GET", url, None, None)
        replies.append(_reply("GET /v2/ (anonymous)", first, time.monotonic() - started))
        api_version = first.headers.get("Docker-Distribution-API-Version")
        if first.status == 200:
            self._login = Login(True, "none (anonymous access)", api_version, replies)
            return self._login
        challenge = parse_challenge(first.headers.get("WWW-Authenticate", "")) if first.status == 401 else None
        if challenge is None:
            problem = "" if first.status != 401 else "401 without a WWW-Authenticate challenge"
            self._login = Login(False, "unknown", api_version, replies, replies[0], problem=problem)
            return self._login
        scheme, params = challenge
        refused = self._answer(challenge, replies)
        if refused is not None:
            self._login = Login(False, scheme, api_version, replies, refused, realm=params.get("realm"))
            return self._login
        started = time.monotonic()
        second = self._raw("GET", url, None, None)
        reply = _reply(f"GET /v2/ ({scheme})", second, time.monotonic() - started)
        replies.append(reply)
        api_version = second.headers.get("Docker-Distribution-API-Version") or api_version
        ok = second.status == 200
        realm = params.get("realm") if scheme == "bearer" else None
        self._login = Login(ok, scheme, api_version, replies, None if ok else reply, realm=realm)
        return self._login

    def push(self, image: Image) -> Push:
        """Blobs (HEAD, POST upload, PUT monolithic with digest), then the manifest under the run's tag."""
        result = Push(self.reference, image)
        for name, data in (("layer", image.layer), ("config", image.config)):
            if not self._push_blob(result, name, data):
                return result
        headers = {"Content-Type": OCI_MANIFEST}
        reply, response = self._call(
            result.replies,
            "PUT manifest",
            "PUT",
            self._url("manifests", self.tag),
            headers=headers,
            data=image.manifest,
        )
        if reply.status != 201:
            result.failure = reply
            return result
        said = response.headers.get("Docker-Content-Digest")
        if said and said != image.digest:
            result.problem = f"the registry stored the manifest as {said}, not {image.digest}"
        result.digest = image.digest
        self.pushed = result
        return result

    def _push_blob(self, result: Push, name: str, data: bytes) -> bool:
        digest = _digest(data)
        reply, _ = self._call(result.replies, f"HEAD {name} blob", "HEAD", self._url("blobs", digest))
        if reply.status == 200:
            return True
        if reply.status != 404 or reply.code:
            result.failure = reply
            return False
        reply, response = self._call(result.replies, f"POST {name} upload", "POST", self._url("blobs/uploads"))
        location = response.headers.get("Location")
        if reply.status != 202 or not location:
            result.failure = reply if reply.status != 202 else Reply(reply.step, 202, None, "no Location header")
            return False
        target = urllib.parse.urljoin(self.base + "/", location)
        target += ("&" if "?" in target else "?") + urllib.parse.urlencode({"digest": digest})
        headers = {"Content-Type": "application/octet-stream"}
        reply, _ = self._call(result.replies, f"PUT {name} blob", "PUT", target, headers=headers, data=data)
        if reply.status != 201:
            result.failure = reply
            return False
        return True

    def pull(self, pushed: Push) -> Pull:
        """GET the manifest by digest and every blob; note what differs from what was pushed."""
        result = Pull()
        image = pushed.image
        wanted = [("manifest", self._url("manifests", image.digest), image.manifest)]
        wanted += [(f"blob {d[:19]}", self._url("blobs", d), b) for d, b in image.blobs.items()]
        for what, url, expected in wanted:
            headers = {"Accept": OCI_MANIFEST} if what == "manifest" else None
            reply, response = self._call(result.replies, f"GET {what}", "GET", url, headers=headers)
            if reply.status != 200:
                result.failure = reply
                return result
            if response.content != expected:
                result.different.append(f"{what} ({len(response.content)} bytes back, {len(expected)} pushed)")
        return result

    def delete(self, digest: str, blobs: Iterable[str] = ()) -> Delete:
        """DELETE a manifest by digest, then this run's blobs; a registry that forbids it is noted."""
        result = Delete()
        targets = [("manifest", self._url("manifests", digest))]
        targets += [(f"blob {d[:19]}", self._url("blobs", d)) for d in blobs]
        for what, url in targets:
            reply, _ = self._call(result.replies, f"DELETE {what}", "DELETE", url)
            if what != "manifest":
                continue  # blobs: best effort (Harbor and Artifact Registry garbage-collect them)
            if self.pushed is not None and digest == self.pushed.image.digest:
                # The registry answered: teardown does not try again. Interrupted before an answer
                # (Ctrl-C in the middle of the call), it is left unset and teardown retries.
                self.removed = result
            if reply.status in (200, 202):
                result.deleted = True
            elif reply.cause == CAUSE_UNSUPPORTED:
                result.refused = True
                return result
            elif reply.cause == CAUSE_ROLE:
                result.not_permitted = reply
                return result
            else:
                result.failure = reply
                return result
        return result

    def tags(self) -> list[str]:
        """Every tag of the suite's repository (``/tags/list``, following ``Link`` pages); [] if it has none."""
        found: list[str] = []
        url: str | None = self._url("tags", "list")
        for _ in range(_TAG_PAGES):
            if url is None:
                break
            reply, response = self._call([], "GET tags/list", "GET", url)
            if reply.status == 404 or reply.code == "NAME_UNKNOWN":
                return found  # nothing was ever pushed to <project_path>/conformance
            if reply.status != 200:
                raise CannotEvaluate(f"GET {_path(url)}: {reply.summary()}")
            try:
                found.extend(str(t) for t in (response.body.get("tags") or []))
            except (ValueError, AttributeError):
                raise CannotEvaluate(f"GET {_path(url)}: the answer is not a tag list") from None
            links = requests.utils.parse_header_links(response.headers.get("Link", ""))
            following = next((link["url"] for link in links if link.get("rel") == "next"), None)
            url = urllib.parse.urljoin(self.base + "/", following) if following else None
        return found

    def manifest_digest(self, tag: str) -> str | None:
        """The digest ``tag`` points at (``HEAD`` manifest), or None when the registry does not say."""
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        reply, response = self._call([], f"HEAD manifest {tag}", "HEAD", self._url("manifests", tag), headers=headers)
        return response.headers.get("Docker-Content-Digest") if reply.status == 200 else None

    def cleanup(self) -> Delete | None:
        """Teardown: remove what this run pushed and has not removed yet. Never raises."""
        if self.pushed is None or self.removed is not None:
            return None
        try:
            return self.delete(self.pushed.image.digest, self.pushed.image.blobs)
        except CannotEvaluate:
            return None


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path or "/"


# --------------------------------------------------------------------------- Docker daemon


def docker_daemon(timeout: float) -> Any | None:
    """A docker SDK client whose daemon answers ping, or None (workspaces have no daemon)."""
    # docker-py ships no type information; the SDK loads only when the registry component runs.
    import docker  # noqa: PLC0415 - see above (mypy reports the missing types once, at the first import)

    try:
        client = docker.from_env(timeout=max(1, int(timeout)))
        client.ping()
    except docker.errors.DockerException:
        return None
    except requests.RequestException:
        return None
    return client


def _docker_archive(image: Image, reference: str) -> bytes:
    """``docker save`` layout for ``image`` (docker load accepts a gzip layer)."""
    config_name = f"{_digest(image.config)[7:]}.json"
    files = {
        "manifest.json": _canonical([{"Config": config_name, "RepoTags": [reference], "Layers": ["layer.tar.gz"]}]),
        config_name: image.config,
        "layer.tar.gz": image.layer,
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def push_with_daemon(daemon: Any, client: RegistryClient, image: Image) -> tuple[str | None, str]:
    """Load ``image`` into the daemon, push it with the run's credential; (digest, error text)."""
    reference = client.reference.replace(f":{client.tag}", f":{client.tag}-daemon")
    credential = client.credentials.credential
    auth = {"username": credential.username, "password": credential.password.reveal()} if credential else None
    daemon.images.load(_docker_archive(image, reference))
    repository, _, tag = reference.rpartition(":")
    digest, error = None, ""
    try:
        for line in daemon.images.push(repository, tag=tag, auth_config=auth, stream=True, decode=True):
            if "error" in line:
                error = str(line.get("error", ""))[: transport.QUOTE]
            digest = (line.get("aux") or {}).get("Digest", digest)
    finally:
        daemon.images.remove(reference, force=True)
    return (None if error else digest), error


# --------------------------------------------------------------------------- entry point


def connect(profile: Profile, run_id: str) -> RegistryClient:
    """The session's client. Credential problems are REG-001's to report, so they do not stop it here."""
    section = profile.registry
    if section is None:
        raise CannotEvaluate("the profile has no registry section")
    return RegistryClient(section, profile, run_id, find_credentials(section, profile.timeouts.request))


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """Delete (by digest) the manifests of ``<project_path>/conformance`` tags left by runs before ``older_than``.

    A digest that a tag outside the sweep also points at is kept: deleting it would remove that tag too.
    """
    client = connect(profile, "cleanup")
    if not client.credentials.usable:
        raise CannotEvaluate("; ".join(client.credentials.problems) or "no registry credentials")
    where = f"{client.section.project_path}/{IMAGE_NAME}"
    digests = {tag: client.manifest_digest(tag) for tag in client.tags()}
    kept = {digest: tag for tag, digest in digests.items() if not eligible(tag, older_than, tag=True)}
    swept, done = Swept(), set()
    not_permitted: Reply | None = None
    for tag, digest in sorted(digests.items()):
        if not eligible(tag, older_than, tag=True):
            continue
        if not_permitted is not None:  # the same role, the same answer: do not ask again for every tag
            swept.failures.append(f"{where}:{tag} (your role may not delete)")
        elif digest is None:
            swept.failures.append(f"{where}:{tag} (the registry gives no digest for it)")
        elif digest in kept:
            swept.notes.append(f"kept {where}:{tag}: tag {kept[digest]} (not a probe) points at {digest} too")
        elif digest in done or dry_run:
            swept.items.append(f"{where}:{tag} ({digest})")
        else:
            removed = client.delete(digest)
            if removed.deleted:
                done.add(digest)
                swept.items.append(f"{where}:{tag} ({digest})")
            else:
                not_permitted = removed.not_permitted
                why = "your role may not delete" if not_permitted else removed.left_behind
                swept.failures.append(f"{where}:{tag} ({why})")
    if not_permitted is not None:
        user = client.credentials.credential.username if client.credentials.credential else "the run's user"
        swept.notes.append(
            f"{user} may not delete in {client.section.repository.split('/', 1)[0]} "
            f"({not_permitted.summary()}): {WHO_CAN_DELETE}"
        )
    return swept
