"""A simulated OpenID issuer (Keycloak, as Run:ai's login uses): discovery and the refresh_token grant.

SIMULATED (the report lists it as ``oidc-issuer``). It answers what client-go's oidc auth-provider
asks when a kubeconfig's id-token has expired, from the contract transcripts in
``contracts/oidc.yaml`` (each names the Keycloak source it is written from):

* ``GET <realm>/.well-known/openid-configuration``: the discovery document (``discovery``);
* ``POST <realm>/protocol/openid-connect/token`` with ``grant_type=refresh_token``: for a
  refresh-token it knows, a new id-token (minted by the caller's ``mint``, which also makes the
  API server accept it) and a new refresh-token (``token-refreshed``; the old one stays valid, as
  with Keycloak's default "Revoke Refresh Token: off"); for one it has marked as ended, or does
  not know, ``400 invalid_grant`` (``token-refresh-inactive`` / ``token-refresh-session-ended``).

The realm lives under ``/auth/realms/<realm>``, the path of the Keycloak behind Run:ai.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from conformance.sandbox import contracts
from conformance.sandbox.web import LoopbackServer


class _Handler(BaseHTTPRequestHandler):
    server: OidcIssuer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        return

    def _answer(self, name: str, **values: object) -> None:
        transcript = contracts.get("oidc", name)
        answer = transcript.http
        assert answer is not None  # noqa: S101 - every oidc transcript is an HTTP answer
        data = transcript.render(answer.body, **values).encode()
        self.send_response(answer.status)
        for header, value in answer.headers.items():
            self.send_header(header, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self) -> None:
        data = b'{"error":"RESTEASY003210: Could not find resource for full path"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path == f"{self.server.realm_path}/.well-known/openid-configuration":
            self._answer("discovery", issuer=self.server.issuer)
        else:
            self._not_found()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode(errors="replace")))
        if urllib.parse.urlsplit(self.path).path != f"{self.server.realm_path}/protocol/openid-connect/token":
            self._not_found()
            return
        refusal, id_token, refresh = self.server.refresh(form)
        if refusal is not None:
            self._answer(refusal)
            return
        self._answer(
            "token-refreshed",
            access_token=secrets.token_urlsafe(32),
            refresh_token=refresh,
            id_token=id_token,
            session=secrets.token_hex(16),
        )


LOGIN_DAYS = 30  # refresh_expires_in of the token transcript: Run:ai's login lasts 30 days


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict[str, Any]) -> str:
    """A JWT with these claims. Its signature is random: nobody verifies it here."""
    header = {"alg": "HS256" if claims.get("typ") == "Refresh" else "RS256", "typ": "JWT", "kid": "sandbox"}
    return ".".join(
        (_b64url(json.dumps(header).encode()), _b64url(json.dumps(claims).encode()), _b64url(os.urandom(32)))
    )


def refresh_jwt(issuer: str, expires: dt.datetime | None = None) -> str:
    """A refresh-token shaped like Keycloak's: a JWT of ``typ`` Refresh whose ``exp`` is the end of the login
    (keycloak/keycloak ``services/.../TokenManager.java``, v24: the session's idle/max lifespan)."""
    end = expires or dt.datetime.now(dt.UTC) + dt.timedelta(days=LOGIN_DAYS)
    return jwt(
        {
            "exp": int(end.timestamp()),
            "iat": int(dt.datetime.now(dt.UTC).timestamp()),
            "jti": secrets.token_hex(16),
            "iss": issuer,
            "aud": issuer,
            "typ": "Refresh",
            "azp": "runai-cli",
        }
    )


class OidcIssuer(LoopbackServer):
    """The issuer at ``<url>/auth/realms/<realm>``; refresh-tokens are registered by the sandbox."""

    def __init__(self, cert: tuple[Path, Path], realm: str, client_id: str, mint: Callable[[], str]) -> None:
        super().__init__(_Handler, cert)
        self.realm_path = f"/auth/realms/{realm}"
        self.client_id = client_id
        self.mint = mint  # a new id-token the API server accepts
        self.valid: set[str] = set()
        self.ended: dict[str, str] = {}  # refresh-token -> the transcript of its refusal
        self.lock = threading.Lock()

    @property
    def issuer(self) -> str:
        return f"{self.url}{self.realm_path}"

    def refresh_token(self, refusal: str | None = None, expires: dt.datetime | None = None) -> str:
        """A new refresh-token (ending at ``expires``, default in 30 days): valid, or refused with ``refusal``."""
        token = refresh_jwt(self.issuer, expires)
        with self.lock:
            if refusal is None:
                self.valid.add(token)
            else:
                self.ended[token] = refusal
        return token

    def refresh(self, form: dict[str, str]) -> tuple[str | None, str, str]:
        """(refusal transcript, None...) or (None, new id-token, new refresh-token)."""
        token = form.get("refresh_token", "")
        with self.lock:
            known = form.get("grant_type") == "refresh_token" and form.get("client_id") == self.client_id
            if not known or token not in self.valid:
                return self.ended.get(token, "token-refresh-inactive"), "", ""
        return None, self.mint(), self.refresh_token()
