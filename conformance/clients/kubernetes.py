"""How to reach the Kubernetes API the way kubectl and the Run:ai CLI do: through the user's kubeconfig.

Reports; never asserts. Two halves:

* reading the kubeconfig (no network): where it is, whether it parses, its context, cluster and
  user, file mode, TLS settings, and whether the credential the user entry needs is usable here
  (an exec plugin on PATH, an OIDC id-token that has not expired). :func:`find_kubeconfig`.
* talking to the API server with the ``kubernetes`` client (imported here, lazily, never at
  collection): :func:`connect`. Every call passes ``_request_timeout=(connect, request)``;
  urllib3 retries are off. The trust for the API server is the kubeconfig's own
  ``certificate-authority(-data)``, as for kubectl; ``tls.ca_bundle`` (or the system store) only
  when the kubeconfig names none; ``insecure-skip-tls-verify`` is honoured like kubectl does and
  reported by K8S-004.

Secret values (tokens, id-tokens, keys, Secret data) never leave this module except to be sent:
:meth:`Kubeconfig.credential_values` lists them for the report's redaction, and Secrets are
read with metadata only and their bodies discarded.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from conformance import credentials, files, transport
from conformance import kubeconfig as kubeconfig_files
from conformance.checks import CannotEvaluate, NonConformance, wait_for
from conformance.cleanup import Swept, eligible
from conformance.profile import TLS, Kubernetes, Profile, Timeouts

T = TypeVar("T")
CODER_KUBECONFIG = kubeconfig_files.CODER_KUBECONFIG
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
CREATED_BY = {"app.kubernetes.io/created-by": "conformance-suite"}  # the label on the suite's Jobs and pods
OIDC_EXPIRY_DELTA = dt.timedelta(seconds=10)  # client-go oidc.go expiryDelta: renew a little before exp


# --------------------------------------------------------------------------- kubeconfig (local)


@dataclass
class Credential:
    """What the user entry authenticates with, and whether that works from here."""

    kind: str  # "oidc id-token", "exec plugin", "static token", "client certificate", ...
    plugin: str | None = None  # command an exec entry runs
    plugin_path: str | None = None
    problem: str | None = None
    hint: str | None = None
    expires: dt.datetime | None = None  # of the credential sent (an oidc id-token lasts minutes to hours)
    login_expires: dt.datetime | None = None  # when the login itself ends: what the user must act on
    login_end: str = ""  # where login_expires comes from, or why it is unknown (evidence)
    refresh: bool = False  # an oidc user whose id-token must be renewed with its refresh-token first
    unavailable: bool = False  # the problem is that something did not answer: the check cannot evaluate
    obtained: str | None = None  # how :func:`obtain` got the credential (evidence; never a secret)
    entry: dict[str, Any] | None = field(default=None, repr=False)  # the user entry the client gets (secrets)

    def days_left(self, at: dt.datetime | None = None) -> float | None:
        if self.expires is None:
            return None
        return (self.expires - (at or dt.datetime.now(dt.UTC))).total_seconds() / 86400


@dataclass
class Kubeconfig:
    """The kubeconfig the profile (or the environment) selects, read but not used."""

    path: Path | None
    source: str
    consulted: list[str] = field(default_factory=list)
    data: dict[str, Any] | None = field(default=None, repr=False)  # the merged file: credentials inside
    problem: str | None = None  # missing, unreadable or malformed: nothing else can be read
    context_name: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] = field(default_factory=dict, repr=False)  # tokens, keys: never in a repr
    user_name: str | None = None
    context_problem: str | None = None
    files: list[Path] = field(default_factory=list)  # every file read and merged, in precedence order
    modes: dict[Path, int] = field(default_factory=dict)
    loaded: kubeconfig_files.Loaded | None = None

    @property
    def mode(self) -> int | None:
        """The mode of the first file that others may read, else of the first file."""
        exposed = [mode for mode in self.modes.values() if not is_private(mode)]
        return exposed[0] if exposed else next(iter(self.modes.values()), None)

    @property
    def exposed(self) -> list[str]:
        """The kubeconfig files group or others may read, with their modes."""
        return [f"{path} (mode {mode:04o})" for path, mode in self.modes.items() if not is_private(mode)]

    @property
    def environment_value(self) -> str | None:
        """``KUBECONFIG`` for a child process (runai, kubectl): exactly the files merged here, in order."""
        return self.loaded.environment_value if self.loaded is not None and self.files else None

    def user_file(self) -> Path | None:
        """The file that defines the selected user: where kubectl writes a refreshed token back."""
        if self.loaded is None or self.user_name is None:
            return self.path
        return self.loaded.origin("users", self.user_name) or self.path

    @property
    def usable(self) -> bool:
        return self.problem is None and self.context_problem is None

    @property
    def server(self) -> str:
        return str(self.cluster.get("server", ""))

    @property
    def namespace(self) -> str | None:
        value = self.context.get("namespace")
        return str(value) if value else None

    @property
    def insecure(self) -> bool:
        return self.cluster.get("insecure-skip-tls-verify") is True

    def trust(self, tls: TLS) -> str:
        """Where the trust for the API server's certificate comes from (for evidence)."""
        if self.insecure:
            return "none: the kubeconfig sets insecure-skip-tls-verify (verification disabled)"
        if self.cluster.get("certificate-authority-data"):
            return "the kubeconfig's certificate-authority-data (the cluster's own CA)"
        if self.cluster.get("certificate-authority"):
            return f"the kubeconfig's certificate-authority file {self.cluster['certificate-authority']}"
        return f"tls.ca_bundle {tls.ca_bundle}" if tls.ca_bundle else "the system trust store"

    def credential_values(self) -> list[str]:
        """Every credential the user entry holds, for redaction (the secret index's own list); never for display."""
        return [secret.reveal() for _where, secret, _user in credentials.kubeconfig_user("", self.user)]


def parse(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """One kubeconfig file on its own: (mapping, None) or (None, what is wrong in one line)."""
    data, problem = kubeconfig_files.parse_file(text)
    if problem is not None or data is None:
        return None, problem
    if not data:
        return None, "top level is empty, not a kubeconfig mapping"
    if not data.get("clusters"):
        return None, "it defines no clusters"
    return data, None


def _named(data: dict[str, Any], key: str, name: str) -> dict[str, Any] | None:
    """The ``cluster``/``user``/``context`` body of the entry called ``name`` in list ``key``."""
    inner = key[:-1]
    for entry in data.get(key) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(inner)
            return body if isinstance(body, dict) else {}
    return None


def _select(kc: Kubeconfig, wanted: str | None) -> None:
    data = kc.data or {}
    name = wanted or data.get("current-context")
    contexts = [str(e.get("name")) for e in data.get("contexts") or [] if isinstance(e, dict)]
    if not name:
        kc.context_problem = "no current-context is set and the profile names no kubernetes.context"
        return
    kc.context_name = str(name)
    context = _named(data, "contexts", kc.context_name)
    if context is None:
        have = ", ".join(contexts) or "none"
        kc.context_problem = f"context {kc.context_name!r} is not in the kubeconfig (it has: {have})"
        return
    kc.context = context
    cluster = _named(data, "clusters", str(context.get("cluster", "")))
    if cluster is None or not cluster.get("server"):
        kc.context_problem = (
            f"context {kc.context_name!r} names cluster {context.get('cluster')!r}, which is not defined with a server"
        )
        return
    kc.cluster = cluster
    kc.user_name = str(context.get("user", ""))
    user = _named(data, "users", kc.user_name)
    if user is None:
        kc.context_problem = f"context {kc.context_name!r} names user {kc.user_name!r}, which is not defined"
        return
    kc.user = user


def find_kubeconfig(
    section: Kubernetes | None, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> Kubeconfig:
    """The kubeconfig kubectl would load (:mod:`conformance.kubeconfig`), its context selected."""
    loaded = kubeconfig_files.load(section.kubeconfig if section is not None else None, environ, home)
    kc = Kubeconfig(
        path=loaded.files[0] if loaded.files else None,
        source=loaded.source,
        consulted=loaded.consulted,
        files=loaded.files,
        modes=loaded.modes,
        loaded=loaded,
    )
    kc.data, kc.problem = loaded.data, loaded.problem
    if kc.problem is None:
        _select(kc, section.context if section is not None else None)
    return kc


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, decoded without verification (only to read ``exp``); None if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _mapping(value: object) -> dict[str, Any]:
    """``value`` when it is a mapping, else empty: a hand-edited kubeconfig can hold anything."""
    return value if isinstance(value, dict) else {}


def _timestamp(claims: Mapping[str, Any] | None) -> dt.datetime | None:
    value = (claims or {}).get("exp")
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _login_end(credential: Credential, config: Mapping[str, Any]) -> None:
    """When the login ends: with a refresh-token, its ``exp`` (Keycloak's are JWTs ending with the session);
    without one, the id-token's. An id-token that expires within the hour is no news while it can be renewed."""
    refresh = config.get("refresh-token")
    if isinstance(refresh, str) and refresh:
        credential.login_expires = _timestamp(jwt_claims(refresh))
        credential.login_end = (
            "the refresh-token's exp"
            if credential.login_expires is not None
            else "unknown: the refresh-token carries no expiry (opaque or offline)"
        )
    else:
        credential.login_expires = credential.expires
        credential.login_end = "the id-token's exp (no refresh-token: the login ends with it)"


def _oidc(config: Mapping[str, Any]) -> Credential:
    """client-go's oidc auth-provider, offline half: is the id-token valid, else can it be refreshed?"""
    credential = Credential("oidc id-token (auth-provider oidc, as `runai login` writes it)")
    try:
        return _oidc_state(credential, config)
    finally:
        _login_end(credential, config)


def _oidc_state(credential: Credential, config: Mapping[str, Any]) -> Credential:
    token = config.get("id-token")
    refresh = config.get("refresh-token")
    issuer = config.get("idp-issuer-url")
    can_refresh = isinstance(refresh, str) and bool(refresh)
    if can_refresh and not (isinstance(issuer, str) and issuer.startswith("https://")):
        can_refresh = False  # client-go cannot renew without an issuer to ask
        credential.hint = "the user entry's idp-issuer-url is missing or not https: download the kubeconfig again"
    if isinstance(token, str) and token:
        claims = jwt_claims(token)
        if claims is None or not isinstance(claims.get("exp"), int | float):
            credential.problem = "the id-token is not a JWT with an expiry (exp)"
            credential.hint = "the kubeconfig was edited by hand; log in again with `runai login`"
            return credential
        try:
            credential.expires = dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC)
        except (OverflowError, OSError, ValueError):
            credential.problem = f"the id-token's expiry (exp {claims['exp']:.0f}) is not a date"
            credential.hint = "the kubeconfig was edited by hand; log in again with `runai login`"
            return credential
        if credential.expires > dt.datetime.now(dt.UTC) + OIDC_EXPIRY_DELTA:
            return credential
        if can_refresh:
            credential.refresh = True
            credential.kind += "; expired, renewed with its refresh-token as kubectl does"
            return credential
        credential.problem = (
            f"the id-token expired on {credential.expires:%Y-%m-%d %H:%M} UTC and the user entry has no refresh-token"
            if credential.hint is None
            else f"the id-token expired on {credential.expires:%Y-%m-%d %H:%M} UTC and cannot be renewed"
        )
        credential.hint = credential.hint or "Run:ai logins last 30 days: run `runai login` again"
        return credential
    if can_refresh:  # client-go refreshes a missing id-token too
        credential.refresh = True
        return credential
    credential.problem = "the oidc user has no id-token: nobody has logged in with this kubeconfig"
    credential.hint = (
        credential.hint or "run `runai login` (KUBECONFIG pointing at this file) and finish the browser step"
    )
    return credential


def _exec(spec: Mapping[str, Any], environ: Mapping[str, str]) -> Credential:
    command = str(spec.get("command") or "")
    credential = Credential("exec plugin", plugin=command)
    credential.plugin_path = shutil.which(command, path=environ.get("PATH")) if command else None
    if credential.plugin_path is None:
        credential.problem = f"the exec plugin {command or '(no command)'!r} the user entry runs is not on PATH"
        install = spec.get("installHint")
        credential.hint = " ".join(str(install).split()) if install else f"install {command} and put it on PATH"
    return credential


def credential(kc: Kubeconfig, environ: Mapping[str, str] | None = None) -> Credential:
    """How the selected user authenticates, and what (if anything) stops it from here (no network)."""
    return credential_of(kc.user, kc.user_name, environ)


def _client_certificate(user: Mapping[str, Any]) -> Credential:
    """A client certificate ends on its notAfter: the login the user must renew (Rancher, kubeadm: a year)."""
    found = Credential("client certificate")
    try:
        data = user.get("client-certificate-data")
        pem = base64.b64decode(str(data)) if data else files.read_bytes(Path(str(user["client-certificate"])), "cert")
        from cryptography import x509  # noqa: PLC0415 - loaded with the client, only for certificates

        found.login_expires = x509.load_pem_x509_certificate(pem).not_valid_after_utc
        found.login_end = "the client certificate's notAfter"
    except (ValueError, TypeError, binascii.Error):  # unreadable: the API server's answer (K8S-006) says more
        found.login_end = "unknown: the client certificate cannot be read"
    return found


def credential_of(
    user: Mapping[str, Any], user_name: str | None, environ: Mapping[str, str] | None = None
) -> Credential:
    """:func:`credential` for one user entry."""
    env = os.environ if environ is None else environ
    provider = user.get("auth-provider")
    if isinstance(provider, dict):
        name = str(provider.get("name", ""))
        if name == "oidc":
            return _oidc(_mapping(provider.get("config")))
        found = Credential(f"auth-provider {name}")
        found.problem = f"auth-provider {name!r} was removed from Kubernetes clients (1.26+)"
        found.hint = (
            "GKE: install gke-gcloud-auth-plugin and run `gcloud container clusters get-credentials` again"
            if name == "gcp"
            else "switch the user entry to an exec plugin (e.g. kubelogin)"
        )
        return found
    if isinstance(user.get("exec"), dict):
        return _exec(user["exec"], env)
    if user.get("token") or user.get("tokenFile"):
        return Credential("static bearer token")
    if user.get("client-certificate-data") or user.get("client-certificate"):
        return _client_certificate(user)
    if user.get("username") and user.get("password"):
        return Credential("basic authentication")
    found = Credential("none")
    found.problem = f"user {user_name!r} carries no credentials (no token, certificate, exec or auth-provider)"
    found.hint = "ask the platform team for a complete kubeconfig (Rancher: Download KubeConfig)"
    return found


# --------------------------------------------------------------------------- obtaining the credential (network)
#
# What kubectl does before its first request, done here once so that the checks see what the
# user's tools see, and the kubernetes client gets a plain bearer token or client certificate
# (the python client's own oidc refresh never persists, and its exec support logs an invalid
# plugin output and sends the request without credentials).
#
# OIDC: the suite refreshes and persists exactly as client-go's oidc auth-provider does
# (kubernetes/client-go v0.29, plugin/pkg/client/auth/oidc/oidc.go): when the id-token is missing
# or within 10 s of its exp, it reads the issuer's discovery document
# (<idp-issuer-url>/.well-known/openid-configuration), posts grant_type=refresh_token with
# client-id (and client-secret when set) to its token_endpoint, requires an id_token in the answer,
# and writes the new id-token (and the new refresh-token, when the issuer rotates it) back to the
# kubeconfig file that defines the user, under client-go's lock file (<file>.lock,
# clientcmd/loader.go lockFile). Why not leave the token alone: Keycloak (Run:ai's issuer) may
# rotate refresh-tokens, so a refresh whose answer is not stored would log the user out of their
# own tools; storing it is what their next `kubectl` or `runai` call would have done anyway.
# Why not run the user's kubectl: it is not on every workspace, and running it proves less than
# the refresh itself. An issuer that refuses the refresh-token (invalid_grant) is the failure.


@dataclass(frozen=True)
class TokenAnswer:
    """What the issuer's token endpoint answered to a refresh (secrets: never shown)."""

    id_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    problem: str | None = None
    refused: bool = False  # the issuer answered with an OAuth error: the login is over


def parse_discovery(status: int, body: bytes) -> tuple[str | None, str | None]:
    """(token_endpoint, None) or (None, what is wrong) from an OpenID discovery answer."""
    if status != 200:
        return None, f"HTTP {status}"
    try:
        document = json.loads(body)
    except ValueError:
        return None, "not JSON"
    endpoint = document.get("token_endpoint") if isinstance(document, dict) else None
    if not isinstance(endpoint, str) or not endpoint:
        return None, "no token_endpoint in the discovery document"
    return endpoint, None


def parse_token_response(status: int, body: bytes) -> TokenAnswer:
    """An OAuth 2.0 token answer (RFC 6749 5.1/5.2) as client-go reads it: it needs an id_token."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return TokenAnswer(problem=f"HTTP {status} with a body that is not a JSON object")
    if status != 200 or "error" in answer:
        error = str(answer.get("error") or f"HTTP {status}")
        description = str(answer.get("error_description") or "").strip()
        refused = status in (400, 401) and bool(answer.get("error"))
        return TokenAnswer(problem=f"{error}: {description}" if description else error, refused=refused)
    id_token = answer.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        return TokenAnswer(problem="token response did not contain an id_token")
    refresh = answer.get("refresh_token")
    return TokenAnswer(id_token=id_token, refresh_token=refresh if isinstance(refresh, str) and refresh else None)


def _issuer_pool(config: Mapping[str, Any], tls: TLS, url: str) -> Any:
    """The issuer's trust as client-go has it (the entry's idp-certificate-authority, else the run's one trust),
    through ``HTTPS_PROXY`` unless ``NO_PROXY`` exempts the issuer (client-go's ProxyFromEnvironment)."""
    import urllib3  # noqa: PLC0415 - loaded with the client

    ca_data = config.get("idp-certificate-authority-data")
    ca_file = config.get("idp-certificate-authority")
    options: dict[str, Any]
    if isinstance(ca_data, str) and ca_data:
        try:
            options = {"cert_reqs": "CERT_REQUIRED", "ca_cert_data": base64.b64decode(ca_data).decode()}
        except (binascii.Error, ValueError):
            raise CannotEvaluate("idp-certificate-authority-data in the kubeconfig is not base64") from None
    elif isinstance(ca_file, str) and ca_file:
        options = {"cert_reqs": "CERT_REQUIRED", "ca_certs": ca_file}
    elif tls.insecure:
        options = {"cert_reqs": "CERT_NONE"}
    else:
        options = {"cert_reqs": "CERT_REQUIRED", "ca_certs": str(tls.ca_bundle) if tls.ca_bundle else _system_cafile()}
    proxy = transport.proxies_for(url).get("https")
    return urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)


def refresh_oidc(config: Mapping[str, Any], tls: TLS, timeouts: Timeouts) -> TokenAnswer:
    """Renew the id-token with the refresh-token, as client-go does; raises CannotEvaluate if no answer."""
    import urllib3  # noqa: PLC0415 - loaded with the client

    issuer = str(config.get("idp-issuer-url") or "").rstrip("/")
    if not issuer.startswith("https://"):
        return TokenAnswer(problem=f"idp-issuer-url {issuer or '(none)'!r} is not an https URL", refused=True)
    pool = _issuer_pool(config, tls, issuer)
    timeout = urllib3.Timeout(connect=timeouts.connect, read=timeouts.request)
    discovery = f"{issuer}/.well-known/openid-configuration"
    hint = "the Run:ai login server is unreachable"
    try:
        answer = pool.request("GET", discovery, timeout=timeout, retries=False)
    except Exception as exc:  # noqa: BLE001 - urllib3's errors: the issuer did not answer
        raise transport.no_answer("GET /.well-known/openid-configuration", discovery, exc, timeouts, hint) from None
    endpoint, problem = parse_discovery(answer.status, answer.data)
    if endpoint is None:
        raise CannotEvaluate(f"GET {discovery}: {problem}", "idp-issuer-url does not name an OpenID issuer")
    form = {"grant_type": "refresh_token", "refresh_token": str(config.get("refresh-token") or "")}
    form["client_id"] = str(config.get("client-id") or "")
    if config.get("client-secret"):
        form["client_secret"] = str(config["client-secret"])
    try:
        answer = pool.request_encode_body(
            "POST", endpoint, fields=form, encode_multipart=False, timeout=timeout, retries=False
        )
    except Exception as exc:  # noqa: BLE001 - same
        raise transport.no_answer(
            f"POST {urllib.parse.urlsplit(endpoint).path}", endpoint, exc, timeouts, hint
        ) from None
    return parse_token_response(answer.status, answer.data)


def _lock(path: Path, timeouts: Timeouts) -> Path:
    """client-go's kubeconfig lock (``<file>.lock``, created exclusively); waits a little for another writer."""
    lock = path.with_name(path.name + ".lock")

    def take() -> tuple[bool, str]:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False, f"{lock} exists"
        return True, ""

    try:
        wait_for(take, timeout=timeouts.request, describe=f"lock {lock}")
    except NonConformance:
        raise CannotEvaluate(
            f"{lock} exists: another kubectl or runai is writing the kubeconfig",
            "if none is running, one crashed while writing: delete the .lock file",
        ) from None
    return lock


def _persist(path: Path, user_name: str, new: Mapping[str, str]) -> dict[str, Any] | None:
    """Write the new tokens into ``user_name``'s auth-provider config in ``path``; its user entry after."""
    data = yaml.safe_load(files.read_utf8(path))
    entry = next((e for e in data.get("users") or [] if isinstance(e, dict) and e.get("name") == user_name), None)
    if entry is None:
        return None
    config = entry["user"]["auth-provider"].setdefault("config", {})
    config.update(new)
    target = path.resolve()  # through a symlink, as client-go writes: the link stays a link
    temporary = target.with_name(f".{target.name}.conformance-{os.getpid()}")
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, stat.S_IMODE(target.stat().st_mode))
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(data, out, sort_keys=False)
    os.replace(temporary, target)
    return dict(entry["user"])


def _current_user(path: Path, user_name: str) -> dict[str, Any]:
    data = yaml.safe_load(files.read_utf8(path))
    for entry in (data or {}).get("users") or []:
        if isinstance(entry, dict) and entry.get("name") == user_name and isinstance(entry.get("user"), dict):
            return dict(entry["user"])
    return {}


def _obtain_oidc(kc: Kubeconfig, found: Credential, tls: TLS, timeouts: Timeouts) -> None:
    path = kc.user_file()
    if path is None or kc.user_name is None:
        raise CannotEvaluate("the oidc user's kubeconfig file is unknown")
    lock = _lock(path, timeouts)
    try:
        current = _current_user(path, kc.user_name)  # read under the lock: another client may have renewed it
        again = credential_of(current, kc.user_name)
        if again.problem is None and not again.refresh:
            kc.user = current
            found.expires, found.obtained = again.expires, f"renewed meanwhile by another client in {path}"
            found.login_expires, found.login_end = again.login_expires, again.login_end
            return
        config = _mapping(_mapping((current or kc.user).get("auth-provider")).get("config"))
        answer = refresh_oidc(config, tls, timeouts)
        if answer.problem is not None or answer.id_token is None:
            issuer = config.get("idp-issuer-url")
            what = f"the id-token expired on {found.expires:%Y-%m-%d %H:%M} UTC" if found.expires else "no id-token"
            verb = "refused to renew it" if answer.refused else "did not renew it"
            found.problem = f"{what} and the issuer {issuer} {verb}: {answer.problem}"
            found.hint = (
                "the Run:ai login has ended: run `runai login` again (or download the kubeconfig again)"
                if answer.refused
                else "the issuer answered unexpectedly; try `kubectl get ns` and send both to the platform team"
            )
            found.unavailable = not answer.refused
            return
        new = {"id-token": answer.id_token}
        if answer.refresh_token:
            new["refresh-token"] = answer.refresh_token
        user = _persist(path, kc.user_name, new)
        if user is not None:
            kc.user = user
        claims = jwt_claims(answer.id_token) or {}
        if isinstance(claims.get("exp"), int | float):
            found.expires = dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC)
        _login_end(found, {**config, **new})
        found.obtained = f"renewed with the refresh-token and written back to {path}, as kubectl does"
    finally:
        lock.unlink(missing_ok=True)


def parse_exec_credential(stdout: str, api_version: str) -> tuple[dict[str, Any] | None, str | None]:
    """client-go's check of an exec plugin's output (plugin/pkg/client/auth/exec/exec.go): (status, None) or why not."""
    try:
        output = json.loads(stdout)
    except ValueError as exc:
        return None, f"decoding stdout: not an ExecCredential ({type(exc).__name__}: {str(exc)[:80]})"
    if not isinstance(output, dict) or output.get("kind") != "ExecCredential":
        return None, "decoding stdout: not an ExecCredential (no kind ExecCredential)"
    if output.get("apiVersion") != api_version:
        return None, (
            f"exec plugin is configured to use API version {api_version}, "
            f"plugin returned version {output.get('apiVersion')}"
        )
    status = output.get("status")
    if not isinstance(status, dict):
        return None, "exec plugin didn't return a status field"
    token, cert, key = (str(status.get(k) or "") for k in ("token", "clientCertificateData", "clientKeyData"))
    if not token and not cert and not key:
        return None, "exec plugin didn't return a token or cert/key pair"
    if bool(cert) != bool(key):
        return None, "exec plugin returned only certificate or key, not both"
    return status, None


EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")


def run_exec_plugin(
    spec: Mapping[str, Any], kc: Kubeconfig, timeouts: Timeouts, environ: Mapping[str, str]
) -> tuple[dict[str, Any] | None, str | None]:
    """Run the user entry's exec plugin as client-go does; (status, None) or (None, why it is refused)."""
    command = str(spec.get("command") or "")
    api_version = str(spec.get("apiVersion") or "")
    if api_version not in EXEC_API_VERSIONS:
        return None, f"exec apiVersion {api_version or '(none)'!r} is not one of {', '.join(EXEC_API_VERSIONS)}"
    env = dict(environ)
    for item in spec.get("env") or []:
        if isinstance(item, dict) and item.get("name"):
            env[str(item["name"])] = str(item.get("value") or "")
    info: dict[str, Any] = {"interactive": False}
    if spec.get("provideClusterInfo"):
        info["cluster"] = {
            "server": kc.server,
            "certificate-authority-data": kc.cluster.get("certificate-authority-data"),
        }
    env["KUBERNETES_EXEC_INFO"] = json.dumps({"apiVersion": api_version, "kind": "ExecCredential", "spec": info})
    argv = [shutil.which(command, path=env.get("PATH")) or command, *(str(a) for a in spec.get("args") or [])]
    seconds = timeouts.connect + timeouts.request
    try:
        done = subprocess.run(  # noqa: S603 - the command the user's kubeconfig names, as kubectl runs it
            argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=seconds, check=False
        )
    except subprocess.TimeoutExpired:
        raise CannotEvaluate(f"the exec plugin {command!r} did not finish within {seconds:g} s") from None
    except OSError as exc:
        return None, f"exec: executable {command} not found ({exc.strerror})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1][: transport.QUOTE]
        return None, f"exec: executable {command} failed with exit code {done.returncode}" + (
            f": {last}" if last else ""
        )
    return parse_exec_credential(done.stdout, api_version)


_EXEC_RESULTS: dict[tuple[str, str, str], tuple[dict[str, Any] | None, str | None]] = {}


def exec_cache() -> list[list[Any]]:
    """This process's exec plugin outputs, for the run's other processes (xdist workers): :func:`reuse_exec_cache`."""
    return [[*key, status] for key, (status, _none) in _EXEC_RESULTS.items()]


def reuse_exec_cache(entries: list[list[Any]]) -> None:
    _EXEC_RESULTS.update({(str(a), str(b), str(c)): (status, None) for a, b, c, status in entries})


def obtain(
    kc: Kubeconfig, found: Credential, tls: TLS, timeouts: Timeouts, environ: Mapping[str, str] | None = None
) -> Credential:
    """Get the credential kubectl would send (renew an oidc id-token, run an exec plugin); sets ``entry``.

    Never raises: what stops it is ``found.problem`` (``unavailable`` when nothing answered).
    """
    env = os.environ if environ is None else environ
    if found.problem is not None:
        return found
    try:
        if found.refresh:
            _obtain_oidc(kc, found, tls, timeouts)
        if found.problem is None and isinstance(kc.user.get("exec"), dict):
            # Once per process, like kubectl's in-memory cache: a plugin that mints a new token per call
            # would otherwise put a token into the run that the redaction list never saw.
            key = (json.dumps(kc.user["exec"], sort_keys=True, default=str), str(kc.user_file()), str(kc.user_name))
            status, problem = _EXEC_RESULTS.get(key) or run_exec_plugin(kc.user["exec"], kc, timeouts, env)
            if status is not None:
                _EXEC_RESULTS[key] = (status, None)
            if status is None:
                found.problem = f"getting credentials: {problem}"
                found.hint = (
                    f"the exec plugin {found.plugin!r} printed no valid ExecCredential, so kubectl sends nothing: "
                    "run it by hand, fix or reinstall it (GKE: `gcloud components update`)"
                )
                return found
            if status.get("token"):
                found.entry = {"token": str(status["token"])}
            else:
                found.entry = {
                    "client-certificate-data": base64.b64encode(str(status["clientCertificateData"]).encode()).decode(),
                    "client-key-data": base64.b64encode(str(status["clientKeyData"]).encode()).decode(),
                }
            found.obtained = "ExecCredential from the exec plugin (client.authentication.k8s.io)"
            return found
    except CannotEvaluate as exc:
        found.problem, found.hint, found.unavailable = exc.reason, exc.hint, True
        return found
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        found.problem = f"renewing the oidc login in {kc.user_file()}: {type(exc).__name__}"
        found.unavailable = True
        return found
    if found.problem is None:
        config = _mapping(_mapping(kc.user.get("auth-provider")).get("config"))
        token = config.get("id-token")
        found.entry = {"token": str(token)} if isinstance(token, str) and token else dict(kc.user)
    return found


# --------------------------------------------------------------------------- Job admission (parsers)


def admission_trace(job: Mapping[str, Any], events: list[Any]) -> str | None:
    """Why the cluster will not run a Job's pods, in its own words; None when it recorded nothing.

    A ``Failed`` condition on the Job (job controller: BackoffLimitExceeded, DeadlineExceeded, ...),
    else the newest ``FailedCreate`` event on the Job: the job controller records the admission
    error of every pod it could not create (ResourceQuota, LimitRange, Pod Security, a webhook).
    """
    for condition in _mapping(job.get("status")).get("conditions") or []:
        if _mapping(condition).get("type") == "Failed" and condition.get("status") == "True":
            return f"Job condition Failed ({condition.get('reason')}): {condition.get('message')}"
    uid = _mapping(job.get("metadata")).get("uid")
    refused = [
        event
        for event in events
        if _mapping(event).get("reason") == "FailedCreate"
        and _mapping(event.get("involvedObject")).get("kind") == "Job"
        and (uid is None or _mapping(event.get("involvedObject")).get("uid") in (None, uid))
    ]
    if not refused:
        return None
    newest = max(refused, key=lambda event: str(event.get("lastTimestamp") or event.get("eventTime") or ""))
    source = _mapping(newest.get("source")).get("component") or newest.get("reportingComponent") or "the cluster"
    return f"FailedCreate event from {source}: {newest.get('message')}"


def pod_waiting(pod: Mapping[str, Any]) -> str | None:
    """What a pending pod waits for, as the scheduler or kubelet put it (Unschedulable, ErrImagePull)."""
    status = _mapping(pod.get("status"))
    for entry in status.get("conditions") or []:
        condition = _mapping(entry)
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"not scheduled ({condition.get('reason')}): {condition.get('message')}"
    for container in status.get("containerStatuses") or []:
        waiting = _mapping(_mapping(_mapping(container).get("state")).get("waiting"))
        if waiting.get("reason") and waiting.get("reason") != "ContainerCreating":
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            return f"container {container.get('name')} waiting ({waiting['reason']}){detail}"
    return None


def admission_hint(trace: str) -> str:
    """The hint for an admission message (read from the message, never guessed from a count)."""
    if "exceeded quota" in trace:
        return "the namespace's ResourceQuota has no room for the Job's pod: free resources or ask for more quota"
    if "violates PodSecurity" in trace:
        return "the namespace's Pod Security level refuses the pod: ask the platform team which level applies"
    if "Unschedulable" in trace:
        return "no node (or the Run:ai scheduler's quota for the project) has room for the pod right now"
    return "the cluster refused or stopped the Job's pods: the message above is the cluster's own"


def access_attributes(entry: str) -> tuple[str, str, str, str]:
    """``"get pods/log"`` -> (verb, resource, group, subresource), as ``kubectl auth can-i`` reads it."""
    verb, _, target = entry.partition(" ")
    named, _, subresource = target.partition("/")
    resource, _, group = named.partition(".")
    return verb, resource, group, subresource


is_private = kubeconfig_files.is_private


# --------------------------------------------------------------------------- API (network)


@dataclass
class Failure:
    """An API call that did not succeed: HTTP status (0: no HTTP answer) and the server's words."""

    status: int
    reason: str
    message: str

    def summary(self) -> str:
        if self.status == 0:
            return self.message
        return (
            f"HTTP {self.status} {self.reason}: {self.message}" if self.message else f"HTTP {self.status} {self.reason}"
        )


def _failure(exc: Exception, what: str, server: str, timeouts: Timeouts) -> Failure:
    """The API server's error answer as a Failure; no answer raises transport's CannotEvaluate."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - loaded with the client

    if not isinstance(exc, ApiException) or not exc.status:
        raise transport.no_answer(what, server, exc, timeouts, "VPN down, or a wrong server in the kubeconfig")
    message = ""
    try:
        body = json.loads(exc.body or "{}")
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
    except (ValueError, TypeError):
        message = ""
    return Failure(int(exc.status), str(exc.reason or ""), message)


def _bounded(work: Callable[[], T], seconds: float, what: str) -> T:
    """Run ``work`` (which may run an exec plugin with no timeout of its own) for at most ``seconds``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except Exception as exc:  # noqa: BLE001 - handed back to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="kubeconfig-load", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise CannotEvaluate(f"{what} did not finish within {seconds:g} s", "an exec credential plugin hangs")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return] # set by run() when no error


@dataclass
class KubernetesClient:
    """An API client for the kubeconfig's context; every method bounded, none retried."""

    kubeconfig: Kubeconfig
    section: Kubernetes
    timeouts: Timeouts
    run_id: str
    api_client: Any
    trust: str

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.timeouts.connect, self.timeouts.request)

    @property
    def namespace(self) -> str:
        return self.section.namespace

    def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T | None, Failure | None]:
        """(result, None) or (None, the error answer); the timeout is always passed; no answer raises."""
        try:
            return method(*args, _request_timeout=self.timeout, **kwargs), None
        except Exception as exc:  # noqa: BLE001 - every error answer becomes a Failure the check reports
            return None, _failure(exc, getattr(method, "__name__", "a request"), self.kubeconfig.server, self.timeouts)

    def _apis(self) -> Any:
        from kubernetes import client  # noqa: PLC0415 - heavy SDK, loaded on first use

        return client

    def version(self) -> tuple[Any, Failure | None]:
        client = self._apis()
        return self.call(client.VersionApi(self.api_client).get_code)

    def can_i(self, entry: str) -> tuple[bool | None, Failure | None]:
        """SelfSubjectAccessReview for ``verb resource[.group][/subresource]`` in the namespace."""
        client = self._apis()
        verb, resource, group, subresource = access_attributes(entry)
        attributes = client.V1ResourceAttributes(
            namespace=self.namespace, verb=verb, group=group, resource=resource, subresource=subresource or None
        )
        review = client.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SelfSubjectAccessReview",
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes),
        )
        answer, failure = self.call(
            client.AuthorizationV1Api(self.api_client).create_self_subject_access_review, review
        )
        if failure is not None or answer is None:
            return None, failure
        return bool(answer.status and answer.status.allowed), None

    def read_namespace(self, name: str) -> tuple[Any, Failure | None]:
        client = self._apis()
        return self.call(client.CoreV1Api(self.api_client).read_namespace, name)

    def read_pvc(self, name: str) -> tuple[Any, Failure | None]:
        client = self._apis()
        return self.call(
            client.CoreV1Api(self.api_client).read_namespaced_persistent_volume_claim, name, self.namespace
        )

    def secret_exists(self, name: str) -> tuple[bool | None, Failure | None]:
        """Whether Secret ``name`` exists; its body (the data) is read as metadata only and discarded."""
        client = self._apis()
        core = client.CoreV1Api(self.api_client)
        response, failure = self.call(
            core.read_namespaced_secret,
            name,
            self.namespace,
            _preload_content=False,
            _headers={"Accept": METADATA_ONLY},
        )
        if failure is not None:
            return (False, None) if failure.status == 404 else (None, failure)
        # Read to the end (so the connection is clean for the next call) and drop it unseen.
        response.drain_conn()  # type: ignore[union-attr] # a raw urllib3 response when not preloaded
        response.release_conn()  # type: ignore[union-attr] # same
        return True, None

    # -- the smoke Job (writes)

    def job_name(self) -> str:
        return f"conformance-{self.run_id}".lower()[:63].rstrip("-")

    def create_job(self, name: str, command: list[str]) -> tuple[Any, Failure | None]:
        client = self._apis()
        container = client.V1Container(
            name="probe",
            image=self.section.smoke_image,
            command=command,
            resources=client.V1ResourceRequirements(
                requests={"cpu": "100m", "memory": "64Mi"}, limits={"cpu": "100m", "memory": "64Mi"}
            ),
        )
        job = client.V1Job(
            api_version="batch/v1",
            kind="Job",
            metadata=client.V1ObjectMeta(name=name, labels=dict(CREATED_BY)),
            spec=client.V1JobSpec(
                backoff_limit=0,
                ttl_seconds_after_finished=600,  # a safety net if teardown never runs
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=dict(CREATED_BY)),
                    spec=client.V1PodSpec(restart_policy="Never", containers=[container]),
                ),
            ),
        )
        return self.call(client.BatchV1Api(self.api_client).create_namespaced_job, self.namespace, job)

    def read_job(self, name: str) -> tuple[Any, Failure | None]:
        client = self._apis()
        return self.call(client.BatchV1Api(self.api_client).read_namespaced_job, name, self.namespace)

    def job_pods(self, name: str) -> tuple[Any, Failure | None]:
        client = self._apis()
        core = client.CoreV1Api(self.api_client)
        return self.call(core.list_namespaced_pod, self.namespace, label_selector=f"job-name={name}")

    def job_events(self, name: str) -> tuple[list[Any], Failure | None]:
        """The namespace's events about Job ``name`` (core/v1 Events, as JSON mappings)."""
        return self.events(f"involvedObject.kind=Job,involvedObject.name={name}")

    def events(self, field_selector: str) -> tuple[list[dict[str, Any]], Failure | None]:
        """The namespace's events that ``field_selector`` selects, as JSON mappings."""
        client = self._apis()
        response, failure = self.call(
            client.CoreV1Api(self.api_client).list_namespaced_event,
            self.namespace,
            field_selector=field_selector,
            _preload_content=False,
        )
        if failure is not None or response is None:
            return [], failure
        try:
            items = json.loads(response.data).get("items")
        except (ValueError, AttributeError):
            return [], Failure(0, "error", "the events list is not JSON")
        return [item for item in items or [] if isinstance(item, dict)], None

    def as_mapping(self, obj: Any) -> dict[str, Any]:
        """A kubernetes model as the JSON mapping the server sent (camelCase keys)."""
        found = self.api_client.sanitize_for_serialization(obj)
        return found if isinstance(found, dict) else {}

    def pod_log(self, pod: str) -> tuple[str | None, Failure | None]:
        client = self._apis()
        return self.call(client.CoreV1Api(self.api_client).read_namespaced_pod_log, pod, self.namespace)

    def list_jobs(self) -> tuple[list[str], Failure | None]:
        """The names of the namespace's Jobs that carry the suite's label."""
        client = self._apis()
        selector = ",".join(f"{k}={v}" for k, v in CREATED_BY.items())
        found, failure = self.call(
            client.BatchV1Api(self.api_client).list_namespaced_job, self.namespace, label_selector=selector
        )
        if failure is not None or found is None:
            return [], failure
        labelled = [j for j in found.items if CREATED_BY.items() <= (j.metadata.labels or {}).items()]
        return [str(j.metadata.name) for j in labelled], None

    def delete_job(self, name: str) -> Failure | None:
        client = self._apis()
        batch = client.BatchV1Api(self.api_client)
        _, failure = self.call(batch.delete_namespaced_job, name, self.namespace, propagation_policy="Background")
        return None if failure is None or failure.status == 404 else failure


def _system_cafile() -> str | None:
    """The system store's file (never SSL_CERT_FILE and friends): what urllib3's ``ca_certs`` takes."""
    store = transport.system_store()
    return store if store is not None and os.path.isfile(store) else None


def connect(profile: Profile, run_id: str) -> KubernetesClient:
    section = profile.kubernetes
    if section is None:
        raise CannotEvaluate("the profile has no kubernetes section")
    kc = find_kubeconfig(section)
    if not kc.usable:
        raise CannotEvaluate(kc.problem or kc.context_problem or "unusable kubeconfig")
    found = obtain(kc, credential(kc), profile.tls, profile.timeouts)
    if found.problem:
        raise CannotEvaluate(found.problem, found.hint)
    from kubernetes import client, config  # noqa: PLC0415 - heavy SDK, loaded when the component runs

    configuration = client.Configuration()
    # The selected context alone, with the credential kubectl would send (renewed token, plugin output):
    # the kubernetes package never refreshes, persists or runs a plugin itself.
    single = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "selected", "cluster": kc.cluster}],
        "users": [{"name": "selected", "user": found.entry if found.entry is not None else kc.user}],
        "contexts": [{"name": "selected", "context": {**kc.context, "cluster": "selected", "user": "selected"}}],
        "current-context": "selected",
    }

    def load() -> None:
        # What new_client_from_config does, split so that retries and trust are set before the
        # connection pool is built from the configuration.
        config.load_kube_config_from_dict(  # type: ignore[no-untyped-call] # the kubernetes package leaves it untyped
            single, context="selected", client_configuration=configuration, persist_config=False
        )

    try:
        _bounded(load, profile.timeouts.connect + profile.timeouts.request, "loading the kubeconfig")
    except CannotEvaluate:
        raise
    except Exception as exc:  # noqa: BLE001 - the library raises ConfigException, KeyError, ValueError...
        raise CannotEvaluate(
            f"the kubernetes client cannot use {kc.path}: {type(exc).__name__}: {str(exc)[: transport.QUOTE]}"
        ) from None
    configuration.retries = False
    if configuration.verify_ssl and not configuration.ssl_ca_cert:
        configuration.ssl_ca_cert = str(profile.tls.ca_bundle) if profile.tls.ca_bundle else _system_cafile()
    return KubernetesClient(
        kc, section, profile.timeouts, run_id, client.ApiClient(configuration), kc.trust(profile.tls)
    )


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """Delete (Background propagation: with their pods) the suite's Jobs named by runs before ``older_than``."""
    kube = connect(profile, "cleanup")
    names, failure = kube.list_jobs()
    if failure is not None:
        raise CannotEvaluate(f"listing Jobs in namespace {kube.namespace}: {failure.summary()}")
    swept = Swept()
    for name in sorted(n for n in names if eligible(n, older_than)):
        where = f"Job {kube.namespace}/{name}"
        problem = None if dry_run else kube.delete_job(name)
        if problem is None:
            swept.items.append(where)
        else:
            swept.failures.append(f"{where} ({problem.summary()})")
    return swept


# --------------------------------------------------------------------------- serving (SRV, writes)
# A Deployment and a Service of the suite's image (conformance/probes/serve.py), reached through the
# API server's service proxy as `kubectl proxy` users do. New functions on a connected KubernetesClient.

SERVE_PORT = 8080  # the probe's containerPort
SERVE_PORT_NAME = "http"  # the Service's port name; the proxy path names it: services/NAME:http/proxy/...
SERVE_COMMAND = ["python", "-m", "conformance.probes.serve"]
SERVE_LABEL = "app.kubernetes.io/instance"  # selects the Deployment's pods for the Service


def serving_name(kube: KubernetesClient) -> str:
    """``conformance-<run id>-serve``: the Deployment's and the Service's name."""
    return f"{kube.job_name()[:56].rstrip('-')}-serve"


def serving_manifests(name: str, image: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Deployment, Service) of the serving probe, as apps/v1 and v1 JSON mappings."""
    labels = {**CREATED_BY, SERVE_LABEL: name}
    container = {
        "name": "serve",
        "image": image,
        "command": SERVE_COMMAND,
        "ports": [{"name": SERVE_PORT_NAME, "containerPort": SERVE_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": SERVE_PORT_NAME}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 120,
            "selector": {"matchLabels": {SERVE_LABEL: name}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "selector": {SERVE_LABEL: name},
            "ports": [{"name": SERVE_PORT_NAME, "port": 80, "targetPort": SERVE_PORT_NAME, "protocol": "TCP"}],
        },
    }
    return deployment, service


def create_serving(kube: KubernetesClient, name: str, image: str) -> tuple[list[str], Failure | None]:
    """Create the Deployment, then the Service; (kinds created, the first failure)."""
    client = kube._apis()
    deployment, service = serving_manifests(name, image)
    created: list[str] = []
    _, failure = kube.call(client.AppsV1Api(kube.api_client).create_namespaced_deployment, kube.namespace, deployment)
    if failure is not None:
        return created, failure
    created.append("Deployment")
    _, failure = kube.call(client.CoreV1Api(kube.api_client).create_namespaced_service, kube.namespace, service)
    if failure is None:
        created.append("Service")
    return created, failure


def read_deployment(kube: KubernetesClient, name: str) -> tuple[dict[str, Any] | None, Failure | None]:
    client = kube._apis()
    found, failure = kube.call(client.AppsV1Api(kube.api_client).read_namespaced_deployment, name, kube.namespace)
    return (kube.as_mapping(found) if found is not None else None), failure


def serving_pods(kube: KubernetesClient, name: str) -> tuple[list[dict[str, Any]], Failure | None]:
    client = kube._apis()
    found, failure = kube.call(
        client.CoreV1Api(kube.api_client).list_namespaced_pod, kube.namespace, label_selector=f"{SERVE_LABEL}={name}"
    )
    return ([kube.as_mapping(p) for p in found.items] if found is not None else []), failure


def replicaset_events(kube: KubernetesClient, name: str) -> tuple[list[dict[str, Any]], Failure | None]:
    """Events on the Deployment's ReplicaSets (``NAME-<hash>``): the replicaset controller's FailedCreate."""
    events, failure = kube.events("involvedObject.kind=ReplicaSet")
    named = [e for e in events if str(_mapping(e.get("involvedObject")).get("name", "")).startswith(f"{name}-")]
    return named, failure


def deployment_ready(deployment: Mapping[str, Any]) -> bool:
    status = _mapping(deployment.get("status"))
    return int(status.get("availableReplicas") or 0) >= int(_mapping(deployment.get("spec")).get("replicas") or 1)


def deployment_trace(deployment: Mapping[str, Any], pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    """Why a Deployment is not available, in the cluster's words: pods waiting (ImagePullBackOff,
    CrashLoopBackOff, CreateContainerConfigError), the replicaset controller's FailedCreate, its conditions."""
    status = _mapping(deployment.get("status"))
    parts = [
        f"replicas={status.get('replicas') or 0} ready={status.get('readyReplicas') or 0} "
        f"available={status.get('availableReplicas') or 0}"
    ]
    waiting = [found for found in (pod_waiting(p) for p in pods) if found]
    parts.extend(waiting)
    for pod in pods:
        for container in _mapping(pod.get("status")).get("containerStatuses") or []:
            last = _mapping(_mapping(_mapping(container).get("lastState")).get("terminated"))
            if last:
                parts.append(f"container {container.get('name')} last exited with code {last.get('exitCode')}")
    refused = [e for e in events if e.get("reason") == "FailedCreate"]
    if refused and not pods:
        newest = max(refused, key=lambda event: str(event.get("lastTimestamp") or event.get("eventTime") or ""))
        source = _mapping(newest.get("source")).get("component") or newest.get("reportingComponent") or "the cluster"
        parts.append(f"FailedCreate event from {source}: {newest.get('message')}")
    for condition in status.get("conditions") or []:
        entry = _mapping(condition)
        if entry.get("status") == "False" or entry.get("type") == "ReplicaFailure":
            parts.append(f"condition {entry.get('type')}={entry.get('status')} ({entry.get('reason')})")
    if not pods and not refused:
        parts.append("no pod yet")
    return "; ".join(parts)


def serving_hint(trace: str) -> str:
    """The hint for why the serving probe is not available (read from the cluster's words)."""
    if "ImagePullBackOff" in trace or "ErrImagePull" in trace:
        return (
            "the cluster cannot pull serving.image: push the suite's image to the platform's registry and"
            " check the namespace's imagePullSecrets"
        )
    if "CrashLoopBackOff" in trace:
        return "the probe starts and exits: read its log with `kubectl logs deploy/<name>` (wrong image or entrypoint?)"
    if "CreateContainerConfigError" in trace:
        return "a Secret or ConfigMap the pod needs is missing"
    if "FailedCreate" in trace:
        return admission_hint(trace)
    return "no pod became ready in time: `kubectl describe deploy/<name>` shows why"


@dataclass
class ProxyAnswer:
    """What the service proxy answered: the app's status and body, or the API server's Status."""

    status: int
    body: bytes
    failure: Failure | None = None  # no HTTP answer at all (timeout, connection)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def summary(self) -> str:
        if self.failure is not None:
            return self.failure.summary()
        found = self.json()
        if isinstance(found, dict) and found.get("kind") == "Status":
            return f"HTTP {self.status} from the API server: {found.get('message')}"
        return f"HTTP {self.status}: {self.body[:200].decode(errors='replace')!r}"


def proxy_post(kube: KubernetesClient, name: str, path: str, payload: Any) -> ProxyAnswer:
    """POST JSON through ``/api/v1/namespaces/NS/services/NAME:http/proxy/PATH`` (kubectl proxy's route).

    The SDK's connect_post_namespaced_service_proxy_with_path sends no body, so the request is made
    with the same ApiClient (auth, trust, timeouts) through its ``param_serialize``/``call_api``.
    """
    api = kube.api_client
    try:
        request = api.param_serialize(
            method="POST",
            resource_path="/api/v1/namespaces/{namespace}/services/{name}/proxy/{path}",
            path_params={"namespace": kube.namespace, "name": f"{name}:{SERVE_PORT_NAME}", "path": path},
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=payload,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*request, _request_timeout=kube.timeout)
        response.read()
    except Exception as exc:  # noqa: BLE001 - sorted by transport's layers below
        where, detail = transport.layer(exc)
        if where != "http":  # the API server itself did not answer
            raise transport.no_answer(f"POST {name} proxy", kube.kubeconfig.server, exc, kube.timeouts) from None
        return ProxyAnswer(0, b"", Failure(0, "timeout", f"no answer in time ({detail})"))  # the app hangs
    return ProxyAnswer(int(response.status), bytes(response.data or b""))


def delete_serving(kube: KubernetesClient, name: str) -> list[str]:
    """Delete the Service and the Deployment (Foreground: with its ReplicaSet and pods); what failed."""
    client = kube._apis()
    problems = []
    _, failure = kube.call(client.CoreV1Api(kube.api_client).delete_namespaced_service, name, kube.namespace)
    if failure is not None and failure.status != 404:
        problems.append(f"Service {name}: {failure.summary()}")
    _, failure = kube.call(
        client.AppsV1Api(kube.api_client).delete_namespaced_deployment,
        name,
        kube.namespace,
        propagation_policy="Foreground",
    )
    if failure is not None and failure.status != 404:
        problems.append(f"Deployment {name}: {failure.summary()}")
    return problems


def serving_left(kube: KubernetesClient, name: str) -> tuple[list[str], Failure | None]:
    """What of the serving probe still exists: Deployment, Service, pods (by name)."""
    client = kube._apis()
    left: list[str] = []
    _, failure = kube.call(client.AppsV1Api(kube.api_client).read_namespaced_deployment, name, kube.namespace)
    if failure is None:
        left.append(f"Deployment {name}")
    elif failure.status != 404:
        return left, failure
    _, failure = kube.call(client.CoreV1Api(kube.api_client).read_namespaced_service, name, kube.namespace)
    if failure is None:
        left.append(f"Service {name}")
    elif failure.status != 404:
        return left, failure
    pods, failure = serving_pods(kube, name)
    left.extend(f"Pod {p['metadata']['name']}" for p in pods)
    return left, failure


def list_serving(kube: KubernetesClient) -> tuple[list[tuple[str, str]], Failure | None]:
    """(kind, name) of the namespace's Deployments and Services that carry the suite's label."""
    client = kube._apis()
    selector = ",".join(f"{k}={v}" for k, v in CREATED_BY.items())
    found: list[tuple[str, str]] = []
    for kind, method in (
        ("Deployment", client.AppsV1Api(kube.api_client).list_namespaced_deployment),
        ("Service", client.CoreV1Api(kube.api_client).list_namespaced_service),
    ):
        listed, failure = kube.call(method, kube.namespace, label_selector=selector)
        if failure is not None or listed is None:
            return found, failure
        found.extend(
            (kind, str(item.metadata.name))
            for item in listed.items
            if CREATED_BY.items() <= (item.metadata.labels or {}).items()
        )
    return found, None
