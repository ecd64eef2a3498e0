"""The sandbox's GCP: a service-account key, a gcloud configuration, and simulated Google endpoints.

* A real RSA service-account key (``SANDBOX_GCP_KEY_FILE``, mode 0600) whose ``token_uri`` points at
  the sandbox, so google-auth performs its real JWT-bearer grant against it.
* ``gcp-oauth-token`` (simulated): ``POST /token`` checks the grant's RS256 signature with the key's
  public key, its ``kid``, issuer, audience and expiry, and hands out a random access token.
* ``gcp-resource-manager`` (simulated): ``GET /v1/projects/<id>`` answers as Cloud Resource Manager
  v1 does: 200 with the project for a bearer token of a principal with a role on it, 403
  PERMISSION_DENIED otherwise (also for ids that do not exist, as the real API does), 401 without a
  valid token. ``SANDBOX_GCP_DELETED_PROJECT`` answers 200 with lifecycleState DELETE_REQUESTED. A
  second key (``SANDBOX_GCP_API_DISABLED_KEY_FILE``) belongs to a project where the API is disabled:
  every call with it is refused 403 SERVICE_DISABLED (charged to the key's project). Answers come from
  ``contracts/gcp.yaml``.
* ``gcp-iam`` (simulated): ``GET /v1/projects/-/serviceAccounts/<email>/keys/<key id>`` answers as
  IAM v1 keys.get does, for a bearer token of that key's own account: the key's record (validBeforeTime
  9999-12-31T23:59:59Z for the usual key without an expiry policy; ``SANDBOX_GCP_EXPIRING_KEY_FILE``
  ends in 3 days), or 403 IAM_PERMISSION_DENIED for an account without iam.serviceAccountKeys.get
  (``SANDBOX_GCP_KEYS_DENIED_KEY_FILE``), or for a key or account it does not know.
* ``gcloud-cli`` (simulated): a shell script standing in for gcloud that reads the configuration
  folder (``CLOUDSDK_CONFIG``) the way gcloud does and answers ``auth list --format=json``,
  ``config get-value account`` and ``--version``. The real gcloud needs Google to activate an account.

All three APIs are one HTTPS server with a certificate from the sandbox CA.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conformance.sandbox import Sandbox, contracts
from conformance.sandbox.web import LoopbackServer

PROJECT = "conformance-sandbox"
DENIED_PROJECT = "conformance-denied"  # exists, but the sandbox's service account has no role on it
DELETED_PROJECT = "conformance-deleted"  # the account has a role, the project is being deleted
PROJECT_NUMBER = "123456789012"
HOME_PROJECT = "conformance-keys"  # where a second key was made; Resource Manager is disabled there
PROJECT_NUMBERS = {PROJECT: PROJECT_NUMBER, HOME_PROJECT: "210987654321"}
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL: what google-auth puts in "aud"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
NO_EXPIRY = "9999-12-31T23:59:59Z"  # validBeforeTime of a user-managed key made without an expiry policy
KEYS_PATH = "/v1/projects/-/serviceAccounts/"
FAKE_GCLOUD = """#!/bin/sh
# Simulated by the conformance sandbox (gcloud-cli): not the real gcloud.
# It reads the active configuration's account from $CLOUDSDK_CONFIG, as gcloud does.
config="${CLOUDSDK_CONFIG:-$HOME/.config/gcloud}"
name=$(cat "$config/active_config" 2>/dev/null || echo default)
account=$(sed -n 's/^account *= *//p' "$config/configurations/config_$name" 2>/dev/null | head -n 1)
case "$*" in
  "--version") printf 'Google Cloud SDK 470.0.0\\nbq 2.1.3\\ncore 2024.03.29\\n' ;;
  "auth list --format=json")
    if [ -n "$account" ]; then printf '[{"account": "%s", "status": "ACTIVE"}]\\n' "$account"; else echo '[]'; fi ;;
  "config get-value account")
    if [ -n "$account" ]; then echo "$account"; else echo "(unset)" >&2; fi ;;
  *) echo "ERROR: (gcloud) simulated gcloud does not support: $*" >&2; exit 2 ;;
esac
"""


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Principal:
    email: str
    key_id: str
    public_key: rsa.RSAPublicKey
    projects: set[str] = field(default_factory=set)
    key_project: str = PROJECT  # the key's project_id: the consumer its API calls are charged to
    valid_after: str = "2026-01-05T08:00:00Z"  # IAM's record of the key (keys.get)
    valid_before: str = NO_EXPIRY  # no key expiry policy
    reads_keys: bool = True  # holds iam.serviceAccountKeys.get on itself


@dataclass
class State:
    principals: dict[str, Principal] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> principal e-mail
    api_disabled_in: set[str] = field(default_factory=set)  # projects where Resource Manager is disabled
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify_grant(self, assertion: str, now: float) -> Principal:
        """The principal whose key signed ``assertion`` (an RS256 JWT), or ValueError with the OAuth reason."""
        try:
            head_b64, body_b64, signature_b64 = assertion.split(".")
            header = json.loads(b64url_decode(head_b64))
            claims = json.loads(b64url_decode(body_b64))
            signature = b64url_decode(signature_b64)
        except (ValueError, binascii.Error):
            raise ValueError("Invalid JWT: malformed") from None
        principal = self.principals.get(str(claims.get("iss", "")))
        if header.get("alg") != "RS256" or principal is None:
            raise ValueError("Invalid JWT: unknown issuer or algorithm")
        if header.get("kid") not in (None, principal.key_id):
            raise ValueError("Invalid JWT Signature.")
        try:
            principal.public_key.verify(
                signature, f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise ValueError("Invalid JWT Signature.") from None
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            raise ValueError("Invalid JWT: audience")
        if not float(claims.get("iat", 0)) - 300 <= now < float(claims.get("exp", 0)):
            raise ValueError("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.")
        return principal


class _Handler(BaseHTTPRequestHandler):
    server: _GoogleServer
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, status: str, message: str) -> None:
        self._send(code, {"error": {"code": code, "message": message, "status": status}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"))
        if self.path != "/token":
            self._error(404, "NOT_FOUND", "not found")
            return
        if form.get("grant_type", [""])[0] != JWT_BEARER:
            self._send(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
            return
        state = self.server.state
        try:
            principal = state.verify_grant(form.get("assertion", [""])[0], time.time())
        except ValueError as exc:
            self._send(400, {"error": "invalid_grant", "error_description": str(exc)})
            return
        token = "ya29.sandbox-" + secrets.token_urlsafe(32)
        with state.lock:
            state.tokens[token] = principal.email
        self._send(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _key_record(self, email: str | None) -> None:
        """IAM keys.get: a principal reads its own key's record, if it may (``projects/-``: 403 for the unknown)."""
        account, _, key_id = urllib.parse.unquote(self.path.removeprefix(KEYS_PATH).split("?", 1)[0]).partition(
            "/keys/"
        )
        principal = self.server.state.principals.get(account)
        if email is None:
            self._transcript("unauthenticated")
            return
        if principal is None or email != account or key_id != principal.key_id or not principal.reads_keys:
            self._transcript("service-account-key-denied")
            return
        values = {"project": principal.key_project, "email": account, "key_id": key_id}
        values.update({"valid_after": principal.valid_after, "valid_before": principal.valid_before})
        self._send(200, json.loads(self._render("service-account-key", **values)))

    def do_GET(self) -> None:
        if self.path.startswith(KEYS_PATH) and "/keys/" in self.path:
            auth = self.headers.get("Authorization", "")
            with self.server.state.lock:
                email = (
                    self.server.state.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
                )
            self._key_record(email)
            return
        if not self.path.startswith("/v1/projects/"):
            self._send(200, {"simulated": "gcp-resource-manager"})
            return
        project = urllib.parse.unquote(self.path.removeprefix("/v1/projects/").split("?", 1)[0])
        auth = self.headers.get("Authorization", "")
        state = self.server.state
        with state.lock:
            email = state.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if email is None:
            self._transcript("unauthenticated")
            return
        principal = state.principals[email]
        if principal.key_project in state.api_disabled_in:  # charged to the key's project: the API is off there
            self._transcript("service-disabled", consumer=PROJECT_NUMBERS[principal.key_project])
            return
        if project not in principal.projects:  # unknown ids answer 403 too, like the real API
            self._transcript("permission-denied")
            return
        found = json.loads(self._render("project", project=project))
        if project == DELETED_PROJECT:
            found["lifecycleState"] = "DELETE_REQUESTED"
        self._send(200, found)

    def _render(self, name: str, **values: object) -> str:
        transcript = contracts.get("gcp", name)
        assert transcript.http is not None  # noqa: S101 - gcp.yaml's transcripts are all HTTP answers
        return transcript.render(transcript.http.body, **values)

    def _transcript(self, name: str, **values: object) -> None:
        """Answer as the transcript ``gcp.yaml: <name>`` says Google does."""
        transcript = contracts.get("gcp", name)
        assert transcript.http is not None  # noqa: S101 - gcp.yaml's transcripts are all HTTP answers
        self._send(transcript.http.status, json.loads(self._render(name, **values)))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        return


class _GoogleServer(LoopbackServer):
    def __init__(self, state: State, cert: tuple[Path, Path]) -> None:
        super().__init__(_Handler, cert)
        self.state = state


class GoogleEndpoints:
    """The simulated token endpoint and Resource Manager API, on one HTTPS port."""

    def __init__(self, state: State, cert: tuple[Path, Path]) -> None:
        self._server = _GoogleServer(state, cert).start()
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()


def write_key(path: Path, email: str, project: str, token_uri: str) -> Principal:
    """A service-account key file as Google issues them (mode 0600); returns its public half."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_id = secrets.token_hex(20)
    document = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(document, indent=2))
    return Principal(email, key_id, private.public_key())


def _gcloud_config(directory: Path, account: str) -> None:
    """A gcloud configuration folder whose active configuration names ``account``."""
    (directory / "configurations").mkdir(parents=True)
    (directory / "active_config").write_text("default")
    (directory / "configurations" / "config_default").write_text(f"[core]\naccount = {account}\nproject = {PROJECT}\n")


def start(sandbox: Sandbox) -> None:
    folder = sandbox.dir / "gcp"
    (folder / "bin").mkdir(parents=True)
    state = State()
    server = sandbox.add(GoogleEndpoints(state, sandbox.ca.issue(sandbox.pki_dir, "gcp")))
    token_uri = f"{server.url}/token"
    email = f"conformance@{PROJECT}.iam.gserviceaccount.com"
    key_file = folder / "service-account.json"
    principal = write_key(key_file, email, PROJECT, token_uri)
    principal.projects = {PROJECT, DELETED_PROJECT}
    state.principals[email] = principal
    # A key made in another project, where the Resource Manager API is disabled: its calls are charged
    # there and refused with SERVICE_DISABLED, although it has a role on the sandbox's project.
    other_email = f"conformance@{HOME_PROJECT}.iam.gserviceaccount.com"
    other_key = folder / "service-account-api-disabled.json"
    other = write_key(other_key, other_email, HOME_PROJECT, token_uri)
    other.projects, other.key_project = {PROJECT}, HOME_PROJECT
    state.principals[other_email] = other
    state.api_disabled_in.add(HOME_PROJECT)
    # A key that ends in 3 days (an expiry policy), and an account that may not read its own keys.
    expiring_email = f"conformance-expiring@{PROJECT}.iam.gserviceaccount.com"
    expiring_key = folder / "service-account-expiring.json"
    expiring = write_key(expiring_key, expiring_email, PROJECT, token_uri)
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    expiring.projects, expiring.valid_before = {PROJECT}, f"{ends:%Y-%m-%dT%H:%M:%S}.250Z"
    state.principals[expiring_email] = expiring
    denied_email = f"conformance-no-keys-get@{PROJECT}.iam.gserviceaccount.com"
    denied_key = folder / "service-account-keys-denied.json"
    denied = write_key(denied_key, denied_email, PROJECT, token_uri)
    denied.projects, denied.reads_keys = {PROJECT}, False
    state.principals[denied_email] = denied
    config_dir = sandbox.home / ".config" / "gcloud"
    _gcloud_config(config_dir, email)
    gcloud = folder / "bin" / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(0o755)
    sandbox.env.update(
        {
            "SANDBOX_GCP_PROJECT": PROJECT,
            "SANDBOX_GCP_DENIED_PROJECT": DENIED_PROJECT,
            "SANDBOX_GCP_DELETED_PROJECT": DELETED_PROJECT,
            "SANDBOX_GCP_KEY_FILE": str(key_file),
            "SANDBOX_GCP_API_DISABLED_KEY_FILE": str(other_key),
            "SANDBOX_GCP_EXPIRING_KEY_FILE": str(expiring_key),
            "SANDBOX_GCP_KEYS_DENIED_KEY_FILE": str(denied_key),
            "SANDBOX_GCP_IAM_URL": server.url,
            "SANDBOX_GCP_ACCOUNT": email,
            "SANDBOX_GCP_CONFIG_DIR": str(config_dir),
            "SANDBOX_GCP_GCLOUD": str(gcloud),
            "SANDBOX_GCP_RESOURCE_MANAGER_URL": server.url,
            "SANDBOX_GCP_TOKEN_URI": token_uri,
        }
    )
    sandbox.simulated.extend(["gcp-oauth-token", "gcp-resource-manager", "gcp-iam", "gcloud-cli"])
