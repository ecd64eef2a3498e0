"""Talk to an MLflow tracking server the way a workspace does: mlflow-skinny. Reports; never asserts.

The MLflow client takes its credentials, timeouts, retries and TLS trust from
environment variables. :meth:`MlflowClient.environment` sets them from the
profile for the duration of each call only, and restores what was there
before. Retries are off and the timeout is the profile's, so a dead server
costs one timeout, not MLflow's default of 120 s times 5 retries.

Credentials come from ``mlflow.username`` / ``mlflow.password`` in the
profile, else from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``
in the environment, as the guide exports them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import importlib.util
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from conformance import locate, transport
from conformance.checks import CannotEvaluate
from conformance.cleanup import Swept, is_old, run_id_of
from conformance.profile import TLS, MLflow, Profile, Timeouts
from conformance.secrets import Secret

T = TypeVar("T")

ENV_USERNAME = "MLFLOW_TRACKING_USERNAME"
ENV_PASSWORD = "MLFLOW_TRACKING_PASSWORD"  # noqa: S105 - the variable's name, not a password
RUN_TAG = "conformance"
ARTIFACT_NAME = "text_artifact.txt"
# What the guide's src/mlflow_test.py logs; the metric values are fixed so they can be read back.
PARAMS = {"dummy_param_1": "64", "dummy_param_2": "1.0"}
STEPS = (1, 2, 3, 4)
METRICS: dict[str, Callable[[int], float]] = {
    "dummy_metric_1": lambda step: 10.0 * step,
    "dummy_metric_2": lambda step: 0.1 * step,
}
SEARCH_PAGE = 1000


# --------------------------------------------------------------------------- environment


@contextlib.contextmanager
def scoped_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (str) or unset (None) ``values`` in ``os.environ``; restore the previous values on exit."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def client_environment(timeouts: Timeouts, tls: TLS) -> dict[str, str | None]:
    """The MLflow (and, for s3:// artifact locations, boto3) settings a call runs under."""
    verify = transport.verify(tls)
    ca_path = verify if isinstance(verify, str) else None
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, math.ceil(timeouts.request))),  # mlflow reads an int
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
        "MLFLOW_TRACKING_SERVER_CERT_PATH": ca_path,
        "MLFLOW_TRACKING_INSECURE_TLS": "true" if tls.insecure else None,
        # MLflow 3 clients download proxied artifacts from a presigned bucket URL when the server offers
        # it, with requests' default trust and 5 fixed retries. Read back through the server instead, so
        # every request stays bounded by the profile; the same trust for any request mlflow makes without
        # an explicit verify=.
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
        "REQUESTS_CA_BUNDLE": ca_path,
        "CURL_CA_BUNDLE": ca_path,
        # Direct-to-bucket artifact locations (s3://): the same trust, one attempt.
        "AWS_CA_BUNDLE": ca_path,
        "MLFLOW_S3_IGNORE_TLS": "true" if tls.insecure else None,
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: Secret | None
    username_from: str
    password_from: str
    problems: tuple[str, ...] = ()  # one line per missing piece, naming the variable

    @property
    def complete(self) -> bool:
        return self.username is not None and self.password is not None


def resolve_credentials(section: MLflow, environ: Mapping[str, str]) -> Credentials:
    """The profile's username and password, each falling back to the guide's environment variable."""
    problems: list[str] = []

    def pick(profile_value: Any, field_name: str, variable: str) -> tuple[Any, str]:
        if profile_value is not None:
            return profile_value, f"profile mlflow.{field_name}"
        value = environ.get(variable)
        if value is None:
            problems.append(f"{variable} is not set in the environment (and the profile has no mlflow.{field_name})")
            return None, ""
        if not value:
            problems.append(f"{variable} is set but empty")
            return None, ""
        return value, f"environment variable {variable}"

    username, username_from = pick(section.username, "username", ENV_USERNAME)
    password, password_from = pick(section.password, "password", ENV_PASSWORD)
    if isinstance(password, str):
        password = Secret(password, f"env:{ENV_PASSWORD}")
    return Credentials(username, password, username_from, password_from, tuple(problems))


# --------------------------------------------------------------------------- failures


@dataclass(frozen=True)
class Failure:
    """One failed call, summarised: never a raw dump, never a credential."""

    operation: str
    status: int | None  # HTTP status, when the server answered
    code: str  # MLflow error code (PERMISSION_DENIED), S3 code (NoSuchBucket) or the error's kind
    detail: str

    def __str__(self) -> str:
        status = f"HTTP {self.status} " if self.status is not None else ""
        return f"{self.operation}: {status}{self.code}: {self.detail}"

    @property
    def unauthenticated(self) -> bool:
        return self.status == 401 or self.code == "UNAUTHENTICATED"

    @property
    def forbidden(self) -> bool:
        return self.status == 403 or self.code == "PERMISSION_DENIED"


class CallFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure


_BODY = re.compile(r"Response body: '(?P<body>.*)'", re.DOTALL)


def unanswered(exc: BaseException) -> bool:
    """Whether a requests/urllib3 error somewhere in ``exc``'s chain says the server did not answer."""
    import requests  # noqa: PLC0415 - when a check runs, never at collection

    return any(isinstance(e, (requests.ConnectionError, requests.Timeout)) for e in transport.chain(exc))


_S3_CODE = re.compile(
    r"An error occurred \((?P<code>\w+)\)(?: when calling the \w+ operation)?:?\s*(?P<message>[^\n]*)"
)


def _s3_failure(operation: str, exc: BaseException) -> Failure | None:
    """A botocore ClientError in ``exc``'s chain (boto3's S3UploadFailedError wraps one in its text)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and "Error" in response:
            error = response.get("Error", {})
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code, message = str(error.get("Code", "ClientError")), str(error.get("Message", ""))
            return Failure(operation, status, code, transport.quote(message))
        seen = seen.__cause__ or seen.__context__
    found = _S3_CODE.search(str(exc))
    if found:
        return Failure(operation, None, found["code"], transport.quote(found["message"] or type(exc).__name__))
    return None


def classify(operation: str, exc: BaseException) -> Failure:
    """Turn an SDK exception (MLflow, requests, botocore, google) that is an answer into a :class:`Failure`."""
    import requests  # noqa: PLC0415 - when a check runs, never at collection

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return Failure(
            operation, exc.response.status_code, "HTTP_ERROR", transport.quote(exc.response.text or str(exc))
        )
    s3 = _s3_failure(operation, exc)
    if s3 is not None:
        return s3
    if type(exc).__name__ in ("MlflowException", "RestException") or hasattr(exc, "get_http_status_code"):
        message = str(getattr(exc, "message", exc))
        body = _BODY.search(message)
        status = exc.get_http_status_code() if hasattr(exc, "get_http_status_code") else None
        code = str(getattr(exc, "error_code", "MLFLOW_ERROR"))
        return Failure(
            operation, int(status) if status else None, code, transport.quote(body["body"] if body else message)
        )
    http_code = getattr(exc, "code", None)  # google.api_core errors carry the HTTP status here
    return Failure(
        operation, http_code if isinstance(http_code, int) else None, type(exc).__name__, transport.quote(str(exc))
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    created: bool  # this run created it (set_experiment semantics)


@dataclass
class SmokeResult:
    """What the guide's smoke test wrote, and what reading it back gave."""

    run_id: str = ""
    artifact_uri: str = ""
    failed: Failure | None = None
    status: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metric_history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    artifacts: dict[str, int | None] = field(default_factory=dict)
    downloaded: str | None = None
    expected_text: str = ""


@dataclass(frozen=True)
class ArtifactStore:
    """What a workspace needs to write to an experiment's artifact location."""

    scheme: str
    kind: str  # proxied | s3 | gcs | server-local | unknown
    missing: tuple[str, ...]


def artifact_store(artifact_location: str, environ: Mapping[str, str]) -> ArtifactStore:
    """Classify ``artifact_location`` and name what this workspace lacks for it."""
    scheme = artifact_location.split(":", 1)[0].lower() if ":" in artifact_location else ""
    missing: list[str] = []
    if scheme in ("mlflow-artifacts", "http", "https"):
        return ArtifactStore(scheme, "proxied", ())
    if scheme in ("s3", "s3a"):
        if importlib.util.find_spec("boto3") is None:
            missing.append("the boto3 package (pip install boto3)")
        if not environ.get("MLFLOW_S3_ENDPOINT_URL"):
            missing.append("MLFLOW_S3_ENDPOINT_URL (the ECS/S3 endpoint) in the environment")
        if not _aws_credentials_present(environ):
            missing.append("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile) in the environment")
        return ArtifactStore(scheme, "s3", tuple(missing))
    if scheme == "gs":
        if importlib.util.find_spec("google") is None or importlib.util.find_spec("google.cloud.storage") is None:
            missing.append("the google-cloud-storage package (pip install google-cloud-storage)")
        if not _gcp_credentials_present(environ):
            missing.append("GOOGLE_APPLICATION_CREDENTIALS (a service-account key file) in the environment")
        return ArtifactStore(scheme, "gcs", tuple(missing))
    if scheme in ("", "file") or re.match(r"^[a-z]$", scheme):  # a bare path, or a Windows drive letter
        return ArtifactStore(
            scheme or "file",
            "server-local",
            ("a location the workspace can reach: this is a path on the server (start it with --serve-artifacts)",),
        )
    return ArtifactStore(scheme, "unknown", (f"support for the {scheme}: artifact scheme",))


def _aws_credentials_present(environ: Mapping[str, str]) -> bool:
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if importlib.util.find_spec("botocore") is None:
        return False
    session = importlib.import_module("botocore.session")  # only for s3:// artifact locations; untyped

    with scoped_environ({"AWS_EC2_METADATA_DISABLED": "true"}):
        return session.Session().get_credentials() is not None


def _gcp_credentials_present(environ: Mapping[str, str]) -> bool:
    key = locate.google_key(None, "", environ)  # what google-auth reads: the key, else gcloud's ADC
    return (key[0] if key else locate.gcloud_adc(None, environ)).is_file()


def version_tuple(version: str) -> tuple[int, ...] | None:
    match = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def client_newer(client: str, server: str) -> bool:
    """Whether the client's major.minor is newer than the server's (both parseable)."""
    ours, theirs = version_tuple(client), version_tuple(server)
    return ours is not None and theirs is not None and ours[:2] > theirs[:2]


# --------------------------------------------------------------------------- the connection


def _sdk() -> Any:
    try:
        import mlflow  # noqa: PLC0415 - the SDK is imported when the component first runs
        import mlflow.artifacts  # noqa: PLC0415 - same
        from mlflow.tracking import MlflowClient as SdkClient  # noqa: PLC0415 - same (ours is MlflowClient below)
    except ImportError as exc:
        raise CannotEvaluate(
            f"the MLflow client is not installed ({exc.name or exc})",
            hint="install the guide's client into this environment: pip install mlflow-skinny",
        ) from None
    return mlflow, SdkClient


def client_distribution() -> str:
    for name in ("mlflow-skinny", "mlflow"):
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


class MlflowClient:
    """One MLflow tracking server, as this workspace's credentials see it."""

    def __init__(self, profile: Profile, run_id: str, environ: Mapping[str, str] | None = None) -> None:
        if profile.mlflow is None:
            raise CannotEvaluate("the profile has no mlflow section")
        self.section = profile.mlflow
        self.timeouts = profile.timeouts
        self.tls = profile.tls
        self.run_id = run_id
        self.uri = self.section.tracking_uri.rstrip("/")
        self.credentials = resolve_credentials(self.section, os.environ if environ is None else environ)
        self._mlflow, client_class = _sdk()
        self.client: Any = client_class(tracking_uri=self.uri)
        self.client_version = str(self._mlflow.__version__)
        self.timings: dict[str, float] = {}
        self.created_runs: list[str] = []
        self._memo: dict[str, Any] = {}

    # ---- plumbing

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """The profile's credentials, timeouts, retries and trust, for the calls inside only."""
        values = client_environment(self.timeouts, self.tls)
        basic = self._basic()
        # Both or neither: half a pair would be sent as no credentials anyway.
        values[ENV_USERNAME], values[ENV_PASSWORD] = basic if basic is not None else (None, None)
        with scoped_environ(values):
            yield

    def call(self, operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call under :meth:`environment`, timed; raise :class:`CallFailed` on any error answer."""
        started = time.perf_counter()
        try:
            with self.environment():
                return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every SDK error becomes a classified Failure, or no answer
            if unanswered(exc):
                raise transport.no_answer(operation, self.uri, exc, self.timeouts) from None
            raise CallFailed(classify(operation, exc)) from None
        finally:
            self.timings[operation] = round(time.perf_counter() - started, 3)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """Compute once per session (checks and fixtures share the server's first answer)."""
        if key not in self._memo:
            try:
                self._memo[key] = compute()
            except CannotEvaluate as exc:  # no answer: every check that asks is told the same, at once
                self._memo[key] = exc
        if isinstance(self._memo[key], CannotEvaluate):
            raise self._memo[key]
        result: T = self._memo[key]
        return result

    def _basic(self) -> tuple[str, str] | None:
        """(username, password) at the point of sending; None when either is missing."""
        username, password = self.credentials.username, self.credentials.password
        if username is None or password is None:
            return None
        return username, password.reveal()

    def get(self, path: str, *, authenticated: bool = False) -> transport.Answer:
        """GET ``<tracking_uri><path>``, bounded by the profile's timeouts; no answer raises CannotEvaluate."""
        auth = self._basic() if authenticated else None
        return transport.request("GET", f"{self.uri}{path}", self.tls, self.timeouts, auth=auth, allow_redirects=False)

    # ---- what the checks ask

    def health(self) -> transport.Answer:
        return self.memo("health", lambda: self.get("/health"))

    def server_version(self) -> transport.Answer:
        return self.memo("version", lambda: self.get("/version", authenticated=True))

    def authenticate(self) -> Failure | None:
        """One authenticated read (search_experiments); None when the server accepted it."""

        def run() -> Failure | None:
            try:
                self.call("search_experiments", self.client.search_experiments, max_results=1)
            except CallFailed as exc:
                return exc.failure
            return None

        return self.memo("auth", run)

    def open_experiment(self) -> Experiment | Failure:
        """``mlflow.set_experiment(name)``: get the profile's experiment, create it if missing."""

        def run() -> Experiment | Failure:
            name = self.section.experiment
            try:
                found = self.call("get_experiment_by_name", self.client.get_experiment_by_name, name)
                created = found is None
                if found is None:
                    experiment_id = self.call("create_experiment", self.client.create_experiment, name)
                    found = self.call("get_experiment", self.client.get_experiment, experiment_id)
            except CallFailed as exc:
                return exc.failure
            return Experiment(
                str(found.experiment_id),
                str(found.name),
                str(found.artifact_location),
                str(found.lifecycle_stage),
                created,
            )

        return self.memo("experiment", run)

    def start_run(self, experiment_id: str, purpose: str) -> str:
        """A run named and tagged with this conformance run's id; remembered for :meth:`cleanup`."""
        run = self.call(
            f"create_run ({purpose})",
            self.client.create_run,
            experiment_id,
            run_name=f"conformance-{self.run_id}-{purpose}",
            tags={RUN_TAG: self.run_id, "mlflow.source.name": "conformance-suite"},
        )
        self.created_runs.append(str(run.info.run_id))
        return str(run.info.run_id)

    def write_probe(self, experiment_id: str) -> str | Failure:
        """Create a run and write a tag to it: the least that "can write to the experiment" means."""

        def run() -> str | Failure:
            try:
                run_id = self.start_run(experiment_id, "probe")
                self.call("set_tag", self.client.set_tag, run_id, "conformance.probe", "true")
                self.call("set_terminated", self.client.set_terminated, run_id)
            except CallFailed as exc:
                return exc.failure
            return run_id

        return self.memo("write_probe", run)

    def log_artifact_text(self, run_id: str, text: str, workdir: Path) -> SmokeResult:
        """Upload ``text`` as text_artifact.txt, then list and download it back."""
        result = SmokeResult(run_id=run_id, expected_text=text)
        source = workdir / "upload" / ARTIFACT_NAME
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(text, encoding="utf-8")
        try:
            info = self.call("get_run", self.client.get_run, run_id).info
            result.artifact_uri = str(info.artifact_uri)
            self.call("log_artifact", self.client.log_artifact, run_id, str(source))
            listed = self.call("list_artifacts", self.client.list_artifacts, run_id)
            result.artifacts = {str(f.path): f.file_size for f in listed}
            target = workdir / "download"
            target.mkdir(exist_ok=True)
            local = self.call(
                "download_artifacts",
                self._mlflow.artifacts.download_artifacts,
                run_id=run_id,
                artifact_path=ARTIFACT_NAME,
                dst_path=str(target),
                tracking_uri=self.uri,
            )
            result.downloaded = Path(local).read_text(encoding="utf-8")
        except CallFailed as exc:
            result.failed = exc.failure
        return result

    def smoke_test(self, experiment_id: str, workdir: Path) -> SmokeResult:
        """The guide's src/mlflow_test.py, then everything read back."""
        result = SmokeResult()
        try:
            run_id = self.start_run(experiment_id, "smoke")
            result.run_id = run_id
            for key, value in PARAMS.items():
                self.call("log_param", self.client.log_param, run_id, key, value)
            for step in STEPS:
                for key, value_at in METRICS.items():
                    self.call("log_metric", self.client.log_metric, run_id, key, value_at(step), step=step)
        except CallFailed as exc:
            result.failed = exc.failure
            return result
        text = f"This text content should be uploaded to the bucket. (conformance run {self.run_id})\n"
        artifact = self.log_artifact_text(run_id, text, workdir)
        result.artifact_uri, result.artifacts = artifact.artifact_uri, artifact.artifacts
        result.downloaded, result.expected_text = artifact.downloaded, artifact.expected_text
        if artifact.failed is not None:
            result.failed = artifact.failed
            return result
        try:
            self.call("set_terminated", self.client.set_terminated, run_id)
            run = self.call("get_run", self.client.get_run, run_id)
            result.status = str(run.info.status)
            result.tags = {k: str(v) for k, v in run.data.tags.items() if k == RUN_TAG}
            result.params = {k: str(v) for k, v in run.data.params.items()}
            for key in METRICS:
                history = self.call("get_metric_history", self.client.get_metric_history, run_id, key)
                result.metric_history[key] = sorted((int(m.step), float(m.value)) for m in history)
        except CallFailed as exc:
            result.failed = exc.failure
        return result

    def cleanup(self) -> list[Failure]:
        """Delete the runs this session created (tagged with its run id), nothing else."""
        failures: list[Failure] = []
        for run_id in self.created_runs:
            try:
                run = self.call("get_run (cleanup)", self.client.get_run, run_id)
                if run.data.tags.get(RUN_TAG) == self.run_id:
                    self.call("delete_run", self.client.delete_run, run_id)
            except CallFailed as exc:
                failures.append(exc.failure)
        self.created_runs.clear()
        return failures

    def scratch(self) -> tempfile.TemporaryDirectory[str]:
        return tempfile.TemporaryDirectory(prefix=f"conformance-mlflow-{self.run_id}-")


def connect(profile: Profile, run_id: str) -> MlflowClient:
    return MlflowClient(profile, run_id)


def _swept_run_id(run: Any, older_than: dt.datetime) -> str | None:
    """The conformance run id an MLflow run is tagged with, when it is in the exact format and old enough."""
    value = str(run.data.tags.get(RUN_TAG, ""))
    return value if run_id_of(value, tag=True) == value and is_old(value, older_than) else None


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """Delete the runs of the profile's experiment tagged ``conformance=<run id>`` by runs before ``older_than``.

    Only an active experiment is searched (a deleted one is left as it is), and only active runs.
    """
    connection = MlflowClient(profile, "cleanup")
    name = connection.section.experiment
    swept = Swept()
    try:
        experiment = connection.call("get_experiment_by_name", connection.client.get_experiment_by_name, name)
        if experiment is None or experiment.lifecycle_stage != "active":
            swept.notes.append(f"experiment {name!r} is {'missing' if experiment is None else 'deleted'}: untouched")
            return swept
        token = None
        while True:
            page = connection.call(
                "search_runs",
                connection.client.search_runs,
                [experiment.experiment_id],
                filter_string=f"tags.{RUN_TAG} LIKE '%'",
                max_results=SEARCH_PAGE,
                page_token=token,
            )
            for run in page:
                conformance_run = _swept_run_id(run, older_than)
                if conformance_run is None:
                    continue
                where = f"run {run.info.run_id} ({run.info.run_name}, {RUN_TAG}={conformance_run})"
                try:
                    if not dry_run:
                        connection.call("delete_run", connection.client.delete_run, run.info.run_id)
                except CallFailed as exc:
                    swept.failures.append(f"{where} ({exc.failure})")
                    continue
                swept.items.append(where)
            token = page.token
            if not token:
                return swept
    except CallFailed as exc:
        raise CannotEvaluate(str(exc.failure)) from None
