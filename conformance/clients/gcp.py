"""HOW to find and use a workspace's GCP credentials, and ask Cloud Resource Manager about the project.

Credentials are read where the guide keeps them: gcloud's config folder (``gcp.config_dir``, else
``$CLOUDSDK_CONFIG``, else ``~/.config/gcloud``; its active account via ``gcloud auth list``), a
service-account key (``gcp.key_file``, else ``GOOGLE_APPLICATION_CREDENTIALS``) and gcloud's
application default credentials file. Never asserts. The key's ``private_key`` and
``private_key_id`` are read only to sign the token request; no message or evidence names them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from conformance import locate, transport
from conformance.checks import CannotEvaluate, Deadline
from conformance.files import read_json_object
from conformance.profile import Gcp, Profile, Timeouts
from conformance.secrets import Secret

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
KEY_FIELDS = ("project_id", "private_key_id", "private_key", "client_email", "token_uri")


def _google(module: str) -> Any:
    """A google-auth module, loaded when a GCP check first needs it (its functions are unannotated)."""
    return importlib.import_module(module)


class KeyFileError(Exception):
    """A key or credentials file that cannot be used; one line naming the file and field, never a value."""


# --------------------------------------------------------------------------- key files


def read_json_file(path: Path, what: str) -> dict[str, Any]:
    return read_json_object(path, what, KeyFileError)


@dataclass(frozen=True)
class ServiceAccountKey:
    """A validated key: what may be shown, and the private part kept as a Secret."""

    path: Path
    origin: str  # gcp.key_file or GOOGLE_APPLICATION_CREDENTIALS
    project_id: str
    client_email: str
    token_uri: str
    info: Secret  # the whole JSON, for google-auth only

    def summary(self) -> dict[str, str]:
        return {"key_file": str(self.path), "origin": self.origin, "client_email": self.client_email,
                "key_project_id": self.project_id, "token_uri": self.token_uri}  # fmt: skip


def validate_key(path: Path, origin: str) -> ServiceAccountKey:
    """Read and check a service-account key; :class:`KeyFileError` names the first wrong field."""
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415 - only when a key is checked
    from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415 - same

    data = read_json_file(path, "service-account key")
    kind = data.get("type")
    if kind != "service_account":
        raise KeyFileError(f"{path}: field 'type' is {kind!r}, not 'service_account' (is this a service-account key?)")
    for name in KEY_FIELDS:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise KeyFileError(f"{path}: field '{name}' is missing or empty")
    if "@" not in data["client_email"]:
        raise KeyFileError(f"{path}: field 'client_email' is not an e-mail address")
    if urllib.parse.urlsplit(data["token_uri"]).scheme != "https":
        raise KeyFileError(f"{path}: field 'token_uri' is not an https:// URL")
    pem = data["private_key"]
    if "-----BEGIN PRIVATE KEY-----" not in pem:
        raise KeyFileError(f"{path}: field 'private_key' is not a PEM private key (no BEGIN PRIVATE KEY line)")
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: field 'private_key' does not parse as a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{path}: field 'private_key' is not an RSA key")
    info = Secret(json.dumps(data), f"file:{path}")
    return ServiceAccountKey(path, origin, data["project_id"], data["client_email"], data["token_uri"], info)


# --------------------------------------------------------------------------- gcloud


@dataclass
class GcloudAccounts:
    executable: str | None  # where gcloud is, None when not found
    active: str | None = None
    accounts: list[str] = field(default_factory=list)
    error: str = ""  # why gcloud could not be asked


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][: transport.QUOTE] if lines else ""


# --------------------------------------------------------------------------- the API


def _first_sentence(text: str) -> str:
    """Google's messages run on ("... Enable it by visiting <url> then retry. If you ..."): the first sentence."""
    head, dot, _ = text.partition(". ")
    return head + "." if dot else text


@dataclass
class ProjectReply:
    status: int
    source: str  # which credentials were used
    project_id: str | None = None
    state: str | None = None  # lifecycleState
    error_status: str | None = None  # PERMISSION_DENIED, NOT_FOUND, ...
    message: str = ""
    seconds: float = 0.0
    reason: str | None = None  # google.rpc.ErrorInfo reason (SERVICE_DISABLED, ...)
    service: str | None = None  # ErrorInfo metadata.service: the API that refused
    consumer: str | None = None  # ErrorInfo metadata.consumer: the project the call was charged to

    @property
    def api_disabled(self) -> bool:
        """The API is disabled in the project the call is charged to: not a role on the target project."""
        return self.reason == "SERVICE_DISABLED"

    def summary(self) -> str:
        if self.status == 200:
            return f"HTTP 200, project {self.project_id} is {self.state}"
        reason = f"({self.reason})" if self.reason else ""
        detail = " ".join(part for part in (self.error_status, reason, self.message) if part)
        return f"HTTP {self.status} {detail}".strip()


def error_info(error: dict[str, Any]) -> dict[str, Any]:
    """The ``google.rpc.ErrorInfo`` among an error's ``details`` (reason, domain, metadata), or {}."""
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo"):
            return detail
    return {}


def _bounded_request(session: requests.Session, timeouts: Timeouts) -> Any:
    """A google-auth transport whose every call (retries too) fits in one check's request deadline.

    ``session`` is transport's pinned session: its trust wins over REQUESTS_CA_BUNDLE and a caller's ``verify``.
    """
    google_requests = _google("google.auth.transport.requests")
    errors = _google("google.auth.exceptions")
    deadline = Deadline.after(timeouts.request * 2)

    base: Any = google_requests.Request

    class BoundedRequest(base):  # type: ignore[misc] # google-auth's Request, loaded untyped
        def __call__(
            self, url: str, method: str = "GET", body: Any = None, headers: Any = None, timeout: Any = None, **kw: Any
        ) -> Any:
            left, what = deadline.left(timeouts.request), f"{method} {urllib.parse.urlsplit(url).path}"
            if left <= 0:
                raise transport.no_answer(what, url, TimeoutError(), timeouts)
            try:
                return super().__call__(url, method, body, headers, timeout=(min(timeouts.connect, left), left), **kw)
            except errors.TransportError as exc:
                raise transport.no_answer(what, url, exc, timeouts) from None

    return BoundedRequest(session)


class GcpClient:
    def __init__(self, section: Gcp, profile: Profile, environ: dict[str, str]) -> None:
        self.section = section
        self.profile = profile
        self.environ = environ
        self.http: requests.Session = transport.pinned_session(requests.Session, profile.tls)()
        self.http.headers["User-Agent"] = "conformance-suite"

    # ---- where credentials are

    @property
    def config_dir(self) -> Path:
        return self.adc_file.parent

    @property
    def adc_file(self) -> Path:
        return locate.gcloud_adc(self.section.config_dir, self.environ)  # the secret index reads the same file

    def key_source(self) -> tuple[Path, str] | None:
        return locate.google_key(self.section.key_file, "gcp.key_file", self.environ)

    def key(self) -> ServiceAccountKey | None:
        """The configured key, validated; None when none is configured; KeyFileError when unusable."""
        source = self.key_source()
        return validate_key(*source) if source else None

    def adc_type(self) -> str | None:
        """The ``type`` of the application default credentials file, None when there is none."""
        if not self.adc_file.is_file():
            return None
        return str(read_json_file(self.adc_file, "application default credentials").get("type", "unknown"))

    # ---- gcloud

    def _gcloud(self, *args: str) -> subprocess.CompletedProcess[str]:
        executable = shutil.which(self.section.gcloud)
        if executable is None:
            raise FileNotFoundError(self.section.gcloud)
        env = {**self.environ, "CLOUDSDK_CONFIG": str(self.config_dir), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        return subprocess.run(  # noqa: S603 - the profile's gcloud with fixed arguments
            [executable, *args],
            capture_output=True, text=True, timeout=self.profile.timeouts.check, check=False, env=env,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def gcloud_accounts(self) -> GcloudAccounts:
        executable = shutil.which(self.section.gcloud)
        found = GcloudAccounts(executable)
        if executable is None:
            found.error = f"{self.section.gcloud} not found"
            return found
        try:
            done = self._gcloud("auth", "list", "--format=json")
        except subprocess.TimeoutExpired:
            found.error = f"gcloud auth list did not answer within {self.profile.timeouts.check:g} s"
            return found
        if done.returncode != 0:
            found.error = f"gcloud auth list exited {done.returncode}: {_first_line(done.stderr)}"
            return found
        try:
            listed = json.loads(done.stdout or "[]")
        except json.JSONDecodeError:
            found.error = "gcloud auth list --format=json printed no JSON"
            return found
        for entry in listed if isinstance(listed, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("account"), str):
                found.accounts.append(entry["account"])
                if entry.get("status") == "ACTIVE":
                    found.active = entry["account"]
        return found

    # ---- an access token, then the project

    def _token(self) -> tuple[Secret, str]:
        """(access token, where it came from): the key, else the ADC file, else gcloud."""
        errors = _google("google.auth.exceptions")
        try:
            credentials, source = self._credentials()
            if credentials is None:
                return self._gcloud_token()
            credentials.refresh(_bounded_request(self.http, self.profile.timeouts))
        except errors.RefreshError as exc:
            reason = str(exc.args[0]) if exc.args else type(exc).__name__
            raise CannotEvaluate(
                f"the token endpoint refused the credentials ({source}): {reason[: transport.QUOTE]}",
                hint="the service-account key was deleted or disabled, or the clock is far off",
            ) from None
        return Secret(str(credentials.token), "GCP access token"), source

    def _credentials(self) -> tuple[Any, str]:
        service_account = _google("google.oauth2.service_account")
        user_credentials = _google("google.oauth2.credentials")

        key = self.key()
        if key is not None:
            info = json.loads(key.info.reveal())
            return service_account.Credentials.from_service_account_info(info, scopes=[SCOPE]), (
                f"service-account key {key.path} ({key.origin})"
            )
        kind = self.adc_type()
        if kind is None:
            return None, "gcloud"
        info = read_json_file(self.adc_file, "application default credentials")
        source = f"application default credentials {self.adc_file} ({kind})"
        try:
            if kind == "service_account":
                return service_account.Credentials.from_service_account_info(info, scopes=[SCOPE]), source
            if kind == "authorized_user":
                return user_credentials.Credentials.from_authorized_user_info(info, scopes=[SCOPE]), source
        except ValueError as exc:
            raise KeyFileError(f"{self.adc_file}: {str(exc)[: transport.QUOTE]}") from None
        raise KeyFileError(f"{self.adc_file}: credentials of type {kind!r} are not supported here")

    def _gcloud_token(self) -> tuple[Secret, str]:
        try:
            done = self._gcloud("auth", "print-access-token")
        except FileNotFoundError:
            raise CannotEvaluate("no credentials: no key, no application default credentials, no gcloud") from None
        except subprocess.TimeoutExpired:
            raise CannotEvaluate("gcloud auth print-access-token did not answer in time") from None
        token = done.stdout.strip()
        if done.returncode != 0 or not token:
            raise CannotEvaluate(f"gcloud auth print-access-token failed: {_first_line(done.stderr)}")
        return Secret(token, "GCP access token"), f"gcloud account ({self.config_dir})"

    def get_project(self, project: str) -> ProjectReply:
        token, source = self._token()
        url = f"{self.section.resource_manager_url.rstrip('/')}/v1/projects/{urllib.parse.quote(project, safe='')}"
        headers = {"Authorization": f"Bearer {token.reveal()}"}
        response = transport.request("GET", url, self.profile.tls, self.profile.timeouts, self.http, headers=headers)
        reply = ProjectReply(response.status, source, seconds=round(response.elapsed, 3))
        body = response.body if isinstance(response.body, dict) else {}
        if response.status == 200:
            reply.project_id = str(body.get("projectId", ""))
            reply.state = str(body.get("lifecycleState", "UNKNOWN"))
        else:
            found = body.get("error")
            error: dict[str, Any] = found if isinstance(found, dict) else {}
            reply.error_status = str(error.get("status") or response.reason or "")
            reply.message = _first_sentence(str(error.get("message", "")))[: transport.QUOTE]
            info = error_info(error)
            found_metadata = info.get("metadata")
            metadata: dict[str, Any] = found_metadata if isinstance(found_metadata, dict) else {}
            reply.reason = str(info["reason"]) if info.get("reason") else None
            reply.service = str(metadata["service"]) if metadata.get("service") else None
            reply.consumer = str(metadata["consumer"]) if metadata.get("consumer") else None
        return reply


def connect(profile: Profile, run_id: str) -> GcpClient:
    if profile.gcp is None:  # the plugin skips GCP checks without the section; this is a safeguard
        raise CannotEvaluate("the profile has no gcp section")
    return GcpClient(profile.gcp, profile, dict(os.environ))


# --------------------------------------------------------------------------- the key's own record (IAM)

# A user-managed key made without an expiry policy (constraints/iam.serviceAccountKeyExpiryHours) reads
# validBeforeTime 9999-12-31T23:59:59Z: it never expires. Any year from here on means the same.
NO_EXPIRY_YEAR = 9999


@dataclass
class KeyRecord:
    """IAM's record of the key (projects.serviceAccounts.keys.get): never its name or id, which are the key's."""

    status: int
    valid_after: dt.datetime | None = None
    valid_before: dt.datetime | None = None
    key_type: str | None = None  # USER_MANAGED, SYSTEM_MANAGED
    key_origin: str | None = None  # GOOGLE_PROVIDED, USER_PROVIDED
    disabled: bool = False  # proto3 JSON leaves it out when false
    error_status: str | None = None  # PERMISSION_DENIED, ...
    reason: str | None = None  # google.rpc.ErrorInfo reason (IAM_PERMISSION_DENIED, ...)
    permission: str | None = None  # ErrorInfo metadata.permission (iam.serviceAccountKeys.get)
    message: str = ""
    seconds: float = 0.0

    @property
    def never_expires(self) -> bool:
        return self.valid_before is not None and self.valid_before.year >= NO_EXPIRY_YEAR

    def summary(self) -> str:
        if self.status == 200:
            state = "disabled" if self.disabled else "enabled"
            until = "no expiry" if self.never_expires else _timestamp_text(self.valid_before)
            return f"HTTP 200, {self.key_type or 'key'} {state}, valid until {until}"
        reason = f"({self.reason})" if self.reason else ""
        detail = " ".join(part for part in (self.error_status, reason, self.message) if part)
        return f"HTTP {self.status} {detail}".strip()


def _timestamp_text(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "an unreadable date"


def parse_timestamp(value: object) -> dt.datetime | None:
    """A google.protobuf.Timestamp in JSON (RFC 3339, ``Z`` or an offset, 0-9 fraction digits); None if not one."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most 6 fraction digits: keep them, and the zone after them
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}" if digits else head + rest
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else None


def parse_key_record(status: int, body: object, reason_phrase: str = "") -> KeyRecord:
    """What keys.get answered: the key's dates, type, origin and state (200), or Google's error (else)."""
    document: dict[str, Any] = body if isinstance(body, dict) else {}
    record = KeyRecord(status)
    if status == 200:
        record.valid_after = parse_timestamp(document.get("validAfterTime"))
        record.valid_before = parse_timestamp(document.get("validBeforeTime"))
        record.key_type = str(document["keyType"]) if document.get("keyType") else None
        record.key_origin = str(document["keyOrigin"]) if document.get("keyOrigin") else None
        record.disabled = document.get("disabled") is True
        return record
    found = document.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    record.error_status = str(error.get("status") or reason_phrase or "") or None
    record.message = _first_sentence(str(error.get("message", "")))[: transport.QUOTE]
    info = error_info(error)
    found_metadata = info.get("metadata")
    metadata: dict[str, Any] = found_metadata if isinstance(found_metadata, dict) else {}
    record.reason = str(info["reason"]) if info.get("reason") else None
    record.permission = str(metadata["permission"]) if metadata.get("permission") else None
    return record


def key_record_url(iam_url: str, client_email: str, key_id: str) -> str:
    """``GET {iam}/v1/projects/-/serviceAccounts/{email}/keys/{id}``: ``-`` lets IAM find the account's project."""
    account = urllib.parse.quote(client_email, safe="@")
    return f"{iam_url.rstrip('/')}/v1/projects/-/serviceAccounts/{account}/keys/{urllib.parse.quote(key_id, safe='')}"


def get_key_record(client: GcpClient, key: ServiceAccountKey) -> KeyRecord:
    """Ask IAM about ``key`` with the key's own credentials (a token it signs for itself).

    The URL holds the key's id, so no message here names it: a failure says only which call failed.
    """
    token, _source = client._token()
    key_id = str(json.loads(key.info.reveal()).get("private_key_id", ""))
    url = key_record_url(client.section.iam_url, key.client_email, key_id)
    headers = {"Authorization": f"Bearer {token.reveal()}"}
    answer = transport.request("GET", url, client.profile.tls, client.profile.timeouts, client.http, headers=headers)
    record = parse_key_record(answer.status, answer.body, answer.reason)
    record.seconds = answer.elapsed
    return record
