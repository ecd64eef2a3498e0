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
import ssl
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from conformance import files
from conformance.checks import CannotEvaluate
from conformance.cleanup import Swept, eligible
from conformance.profile import TLS, Kubernetes, Profile, Timeouts
from conformance.secrets import Secret, SecretIndex

T = TypeVar("T")
CODER_KUBECONFIG = "/home/coder/.runai_config/runai-sso.yaml"  # Coder workspaces (kapitan-hull-admin)
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
CREATED_BY = {"app.kubernetes.io/created-by": "conformance-suite"}  # the label on the suite's Jobs and pods
_CREDENTIAL_KEYS = ("token", "password", "client-key-data", "id-token", "refresh-token", "client-secret")


# --------------------------------------------------------------------------- kubeconfig (local)


@dataclass
class Credential:
    """What the user entry authenticates with, and whether that works from here."""

    kind: str  # "oidc id-token", "exec plugin", "static token", "client certificate", ...
    plugin: str | None = None  # command an exec entry runs
    plugin_path: str | None = None
    problem: str | None = None
    hint: str | None = None
    expires: dt.datetime | None = None

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
    data: dict[str, Any] | None = None
    problem: str | None = None  # missing, unreadable or malformed: nothing else can be read
    context_name: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] = field(default_factory=dict)
    user_name: str | None = None
    context_problem: str | None = None
    mode: int | None = None

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
        """Every credential the user entry holds, for redaction; never for display."""
        found: list[str] = []
        config = _mapping(_mapping(self.user.get("auth-provider")).get("config"))
        for source in (self.user, config):
            found.extend(str(source[k]) for k in _CREDENTIAL_KEYS if isinstance(source.get(k), str) and source[k])
        return found


def _candidates(section: Kubernetes | None, environ: Mapping[str, str], home: Path) -> list[tuple[str, Path]]:
    if section is not None and section.kubeconfig:
        return [("kubernetes.kubeconfig in the profile", Path(section.kubeconfig))]
    found: list[tuple[str, Path]] = []
    for part in (environ.get("KUBECONFIG") or "").split(os.pathsep):
        if part:
            found.append(("$KUBECONFIG", Path(os.path.expanduser(part))))
    found.append(("~/.kube/config", home / ".kube" / "config"))
    found.append(("the Coder workspace's kubeconfig", Path(CODER_KUBECONFIG)))
    return found


def register_credentials(kc: Kubeconfig, index: SecretIndex) -> None:
    """Add the kubeconfig user's credentials to the run's redaction and leak-scan list."""
    for value in kc.credential_values():
        index.add("the kubeconfig's credentials", Secret(value, "kubeconfig"))


def yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "invalid YAML"
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f"{at}YAML syntax error: {problem}"


def parse(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """(kubeconfig mapping, None) or (None, what is wrong in one line)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, yaml_problem(exc)
    except RecursionError:
        return None, "YAML nested too deeply to be a kubeconfig"
    if not isinstance(data, dict):
        return None, f"top level is {type(data).__name__ if data is not None else 'empty'}, not a kubeconfig mapping"
    for key in ("clusters", "users", "contexts"):
        value = data.get(key)
        if value is not None and not isinstance(value, list):
            return None, f"{key} is not a list"
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
    """The profile's kubeconfig, else ``$KUBECONFIG``, else ``~/.kube/config``, else Coder's; parsed."""
    env = os.environ if environ is None else environ
    candidates = _candidates(section, env, home or Path.home())
    consulted = [f"{source}: {path}" for source, path in candidates]
    chosen = next(((s, p) for s, p in candidates if p.is_file()), None)
    if chosen is None:
        source, _path = candidates[0]
        kc = Kubeconfig(path=None, source=source, consulted=consulted)
        kc.problem = f"no kubeconfig found (looked at {'; '.join(str(p) for _, p in candidates)})"
        return kc
    kc = Kubeconfig(path=chosen[1], source=chosen[0], consulted=consulted)
    try:
        kc.mode = stat.S_IMODE(chosen[1].stat().st_mode)
        text = files.read_utf8(chosen[1])
    except OSError as exc:
        kc.problem = f"{chosen[1]} is not readable ({exc.strerror})"
        return kc
    except UnicodeDecodeError:
        kc.problem = f"{chosen[1]} is not UTF-8 text"
        return kc
    kc.data, problem = parse(text)
    if problem:
        kc.problem = f"{chosen[1]}: {problem}"
        return kc
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


def _oidc(config: Mapping[str, Any]) -> Credential:
    credential = Credential("oidc id-token (auth-provider oidc, as `runai login` writes it)")
    token = config.get("id-token")
    if not isinstance(token, str) or not token:
        credential.problem = "the oidc user has no id-token: nobody has logged in with this kubeconfig"
        credential.hint = "run `runai login` (KUBECONFIG pointing at this file) and finish the browser step"
        return credential
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
    if credential.expires <= dt.datetime.now(dt.UTC):
        credential.problem = f"the id-token expired on {credential.expires:%Y-%m-%d %H:%M} UTC"
        credential.hint = "Run:ai logins last 30 days (F5): run `runai login` again"
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
    """How the selected user authenticates, and what (if anything) stops it from here."""
    env = os.environ if environ is None else environ
    user = kc.user
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
        return Credential("client certificate")
    if user.get("username") and user.get("password"):
        return Credential("basic authentication")
    found = Credential("none")
    found.problem = f"user {kc.user_name!r} carries no credentials (no token, certificate, exec or auth-provider)"
    found.hint = "ask the platform team for a complete kubeconfig (Rancher: Download KubeConfig)"
    return found


def access_attributes(entry: str) -> tuple[str, str, str, str]:
    """``"get pods/log"`` -> (verb, resource, group, subresource), as ``kubectl auth can-i`` reads it."""
    verb, _, target = entry.partition(" ")
    named, _, subresource = target.partition("/")
    resource, _, group = named.partition(".")
    return verb, resource, group, subresource


def is_private(mode: int | None) -> bool:
    return mode is not None and not mode & (stat.S_IRWXG | stat.S_IRWXO)


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


def _failure(exc: Exception) -> Failure:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - loaded with the client
    from urllib3.exceptions import MaxRetryError, ProtocolError, SSLError  # noqa: PLC0415 - loaded with the client
    from urllib3.exceptions import TimeoutError as Urllib3Timeout  # noqa: PLC0415 - same

    if isinstance(exc, ApiException):
        message = ""
        try:
            body = json.loads(exc.body or "{}")
            message = str(body.get("message", "")) if isinstance(body, dict) else ""
        except (ValueError, TypeError):
            message = ""
        return Failure(int(exc.status or 0), str(exc.reason or ""), message)
    inner = exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc
    if isinstance(inner, SSLError):
        detail = str(inner).split(": ", 1)[-1][:200]
        return Failure(0, "tls", f"TLS handshake failed: {detail}")
    if isinstance(inner, Urllib3Timeout):
        return Failure(0, "timeout", f"no answer in time ({type(inner).__name__})")
    if isinstance(inner, ProtocolError):  # its text may quote bytes of the answer: never shown
        return Failure(0, "connect", "the connection broke mid-answer (ProtocolError)")
    if isinstance(inner, OSError):
        return Failure(0, "connect", f"cannot connect: {inner.strerror or type(inner).__name__}")
    return Failure(0, "error", f"no answer ({type(inner).__name__})")


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
class Kube:
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
        """(result, None) or (None, what went wrong); the timeout is always passed."""
        try:
            return method(*args, _request_timeout=self.timeout, **kwargs), None
        except Exception as exc:  # noqa: BLE001 - every failure becomes a Failure the check reports
            return None, _failure(exc)

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
    """The system store's file as compiled in (never SSL_CERT_FILE and friends)."""
    paths = ssl.get_default_verify_paths()
    return paths.openssl_cafile if Path(paths.openssl_cafile).is_file() else None


def connect(profile: Profile, run_id: str) -> Kube:
    section = profile.kubernetes
    if section is None:
        raise CannotEvaluate("the profile has no kubernetes section")
    kc = find_kubeconfig(section)
    if not kc.usable:
        raise CannotEvaluate(kc.problem or kc.context_problem or "unusable kubeconfig")
    found = credential(kc)
    if found.problem:
        raise CannotEvaluate(found.problem, found.hint)
    from kubernetes import client, config  # noqa: PLC0415 - heavy SDK, loaded when the component runs

    configuration = client.Configuration()

    def load() -> None:
        # What new_client_from_config does, split so that retries and trust are set before the
        # connection pool is built from the configuration.
        config.load_kube_config(  # type: ignore[no-untyped-call] # the kubernetes package leaves it untyped
            config_file=str(kc.path), context=kc.context_name, client_configuration=configuration, persist_config=False
        )

    try:
        _bounded(load, profile.timeouts.connect + profile.timeouts.request, "loading the kubeconfig")
    except CannotEvaluate:
        raise
    except Exception as exc:  # noqa: BLE001 - the library raises ConfigException, KeyError, ValueError...
        raise CannotEvaluate(
            f"the kubernetes client cannot use {kc.path}: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    configuration.retries = False
    if configuration.verify_ssl and not configuration.ssl_ca_cert:
        configuration.ssl_ca_cert = str(profile.tls.ca_bundle) if profile.tls.ca_bundle else _system_cafile()
    return Kube(kc, section, profile.timeouts, run_id, client.ApiClient(configuration), kc.trust(profile.tls))


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
