"""Object storage: ECS over S3 (onprem) or GCS (gcp). Says how to talk to it; never asserts.

:func:`credential_facts` reads the credentials where the guide keeps them
(``~/.aws/credentials`` and a named profile; a service-account key) without
touching the network. :func:`connect` builds one :class:`ObjectStorageClient` for the
profile's ``kind`` and proves the credentials are accepted: refused keys are
a :class:`CannotEvaluate` naming the key as wrong, so every check that needs
the store reports the one cause.

Both SDKs are imported inside the functions that need them, so importing this
module stays cheap. Each call carries the profile's timeouts, SDK retries are
off, and TLS trust is passed explicitly (``verify=``), so ``AWS_CA_BUNDLE``,
``REQUESTS_CA_BUNDLE`` and friends never matter.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from conformance import files, locate, transport
from conformance.checks import CannotEvaluate
from conformance.cleanup import Swept, eligible
from conformance.profile import TLS, ObjectStorage, Profile, Timeouts

T = TypeVar("T")

DEFAULT_AWS_CREDENTIALS = "~/.aws/credentials"
DEFAULT_AWS_PROFILE = "default"
SERVICE_ACCOUNT_FIELDS = ("type", "project_id", "client_email", "private_key")

# Error codes that mean "the server does not accept these credentials", with what they tell the user.
REFUSED_CREDENTIALS = {
    "InvalidAccessKeyId": "the access key id is wrong (unknown to the server, or revoked)",
    "SignatureDoesNotMatch": "the secret access key is wrong (it does not match the access key id)",
    "InvalidToken": "the session token is invalid",
    "ExpiredToken": "the session token has expired",
    "Unauthorized": "the credentials were refused (HTTP 401)",
    "RefreshError": "no access token could be obtained with the service-account key",
}


class StorageError(Exception):
    """One failed operation, summarised: the service's error code, HTTP status and first message line."""

    def __init__(self, operation: str, code: str, status: int | None = None, message: str = "") -> None:
        super().__init__(operation, code, status, message)
        self.operation = operation
        self.code = code
        self.status = status
        self.message = " ".join(message.split())[: transport.QUOTE]

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status else ""
        message = f": {self.message}" if self.message and self.message != self.code else ""
        return f"{self.operation}: {self.code}{status}{message}"


class ObjectStorageClient(Protocol):
    """What the checks need from a bucket service, the same for S3 and GCS."""

    backend: str  # "s3" or "gcs"
    endpoint: str
    bucket: str
    credential_source: str

    def list_buckets(self) -> list[str]: ...
    def list_objects(self, prefix: str, limit: int = 10) -> list[str]: ...
    def list_all(self, prefix: str) -> list[str]: ...
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...


# --------------------------------------------------------------------------- credentials on disk


@dataclass
class CredentialFacts:
    """Where the credentials are and what is wrong with them, read from disk only."""

    what: str  # "AWS shared credentials file", "service-account key", ...
    path: Path | None
    source: str  # how the path was chosen
    exists: bool = False
    mode: int | None = None
    problem: str | None = None  # one line naming the file, or None when usable
    owner_only_expected: bool = False  # the guide's ~/.aws/credentials: mode 600
    details: dict[str, Any] = field(default_factory=dict)  # names only, never a key

    def evidence(self) -> dict[str, Any]:
        found: dict[str, Any] = {"credentials": self.what, "credentials_file": str(self.path), "chosen_by": self.source}
        if self.mode is not None:
            found["mode"] = f"{self.mode:03o}"
        return {**found, **self.details}


def _stat(facts: CredentialFacts) -> CredentialFacts:
    if facts.path is not None and facts.path.is_file():
        facts.exists = True
        facts.mode = stat.S_IMODE(facts.path.stat().st_mode)
    return facts


def aws_facts(storage: ObjectStorage, environ: Mapping[str, str] = os.environ) -> CredentialFacts:
    chosen = "object_storage.credentials_file" if storage.credentials_file else f"default {DEFAULT_AWS_CREDENTIALS}"
    path = locate.aws_credentials(storage.credentials_file, environ)[0]  # the index and profile check read it too
    section = storage.aws_profile or DEFAULT_AWS_PROFILE
    facts = _stat(CredentialFacts("AWS shared credentials file", path, chosen, owner_only_expected=True))
    facts.details["aws_profile"] = section
    if not facts.exists:
        facts.problem = f"{path} does not exist"
        return facts
    parser = configparser.RawConfigParser(default_section="\x00none")  # no [DEFAULT] magic: AWS has none
    try:
        parser.read_string(files.read_utf8(path), source=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        facts.problem = f"{path} is not readable ({getattr(exc, 'strerror', None) or type(exc).__name__})"
        return facts
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        facts.problem = f"{path} is not an INI file ({first})"
        return facts
    facts.details["sections"] = parser.sections()
    if not parser.has_section(section):
        names = ", ".join(f"[{s}]" for s in parser.sections()) or "none"
        facts.problem = f"{path} has no section [{section}] (sections: {names})"
        return facts
    missing = [k for k in ("aws_access_key_id", "aws_secret_access_key") if not parser.get(section, k, fallback="")]
    if missing:
        facts.problem = f"{path}: section [{section}] lacks {', '.join(missing)}"
    return facts


def _gcs_key_path(storage: ObjectStorage) -> tuple[Path | None, str, str]:
    """The file the GCS client signs in with; the secret index reads the same one (conformance/locate.py)."""
    key = locate.google_key(storage.credentials_file, "object_storage.credentials_file", os.environ)
    if key is not None:
        return key[0], key[1], "service-account key"
    adc = locate.gcloud_adc(None, os.environ)
    return adc, "gcloud application-default credentials", "application-default credentials"


def parse_key_file(path: Path, *, service_account: bool) -> tuple[dict[str, Any] | None, str | None]:
    """The key's JSON object, or a one-line problem naming ``path`` (never a value from it)."""
    try:
        info = json.loads(files.read_utf8(path))
    except OSError as exc:
        return None, f"{path} is not readable ({exc.strerror or type(exc).__name__})"
    except UnicodeDecodeError:
        return None, f"{path} is not UTF-8 text"
    except json.JSONDecodeError as exc:
        return None, f"{path} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    except RecursionError:
        return None, f"{path} is nested too deeply to be a key file"
    if not isinstance(info, dict):
        return None, f"{path} is not a JSON object"
    if not service_account:
        return info, None
    if info.get("type") != "service_account":
        return None, f"{path} is not a service-account key (type is {info.get('type')!r}, not 'service_account')"
    missing = [name for name in SERVICE_ACCOUNT_FIELDS if not isinstance(info.get(name), str) or not info.get(name)]
    if missing:
        return None, f"{path} lacks {', '.join(missing)}"
    if "PRIVATE KEY-----" not in str(info["private_key"]):
        return None, f"{path}: private_key is not a PEM private key"
    return info, None


def _gcs_facts(storage: ObjectStorage) -> CredentialFacts:
    path, chosen, what = _gcs_key_path(storage)
    facts = _stat(CredentialFacts(what, path, chosen))
    if not facts.exists or path is None:
        facts.problem = (
            f"{path} does not exist"
            if chosen != "gcloud application-default credentials"
            else "no credentials: object_storage.credentials_file and GOOGLE_APPLICATION_CREDENTIALS are unset"
            f" and there is no {path}"
        )
        return facts
    info, problem = parse_key_file(path, service_account=chosen != "gcloud application-default credentials")
    facts.problem = problem
    if info is not None:
        names = ("type", "project_id", "client_email")
        facts.details.update({k: info[k] for k in names if isinstance(info.get(k), str)})
    return facts


def credential_facts(storage: ObjectStorage) -> CredentialFacts:
    """Read (never send) the credentials the profile points at."""
    return aws_facts(storage) if storage.kind == "s3" else _gcs_facts(storage)


# --------------------------------------------------------------------------- shared


def object_key(storage: ObjectStorage, name: str) -> str:
    return f"{storage.prefix}/{name}" if storage.prefix else name


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[: transport.QUOTE] or type(exc).__name__


# --------------------------------------------------------------------------- S3 (ECS)


# botocore 1.36+ adds a CRC32 checksum to every upload and asks for one on downloads; S3-compatible stores
# such as Dell ECS (AISG's on-prem store) refuse those requests (boto/botocore#3352). The suite asks for
# checksums only where S3 requires them, as boto3 before 1.36 and the AWS CLI with these settings do.
CHECKSUMS = {"request_checksum_calculation": "when_required", "response_checksum_validation": "when_required"}


class S3Client:
    backend = "s3"
    checksums = ", ".join(f"{k}={v}" for k, v in CHECKSUMS.items())

    def __init__(self, storage: ObjectStorage, timeouts: Timeouts, tls: TLS) -> None:
        # boto3 and botocore ship no type information (no py.typed, no stubs installed).
        import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 - SDK loaded when the component first runs
        import botocore.session  # type: ignore[import-untyped]  # noqa: PLC0415 - same
        from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415 - same

        facts = aws_facts(storage)
        if facts.problem or facts.path is None:
            raise CannotEvaluate(str(facts.problem), hint="see OBJ-001: the S3 keys are read from this file")
        self.bucket = storage.bucket
        self.endpoint, self.timeouts = storage.endpoint_url or "", timeouts
        self.profile_name = storage.aws_profile or DEFAULT_AWS_PROFILE
        self.credentials_file = facts.path
        session = botocore.session.Session()
        # The AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE / AWS_PROFILE semantics, set on this session
        # only. An explicit profile also drops botocore's environment provider, so an ambient
        # AWS_ACCESS_KEY_ID cannot win over the file.
        session.set_config_variable("credentials_file", str(facts.path))
        session.set_config_variable("config_file", str(facts.path.with_name("config")))
        session.set_config_variable("profile", self.profile_name)
        credentials = session.get_credentials()
        if credentials is None:
            raise CannotEvaluate(f"no S3 credentials found for profile [{self.profile_name}] in {facts.path}")
        self.credential_source = f"{credentials.method}: [{self.profile_name}] in {facts.path}"
        config = Config(
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.request,
            retries={"total_max_attempts": 1, "mode": "standard"},  # no SDK retries: one answer per call
            s3={"addressing_style": "path" if storage.path_style else "virtual"},
            signature_version="s3v4",
            **CHECKSUMS,
        )
        self._s3 = boto3.Session(botocore_session=session).client(
            "s3", endpoint_url=self.endpoint, region_name=storage.region, verify=transport.verify(tls), config=config
        )

    @contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        from botocore import exceptions as boto  # noqa: PLC0415 - loaded lazily

        try:
            yield
        except boto.ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(error.get("Code") or status or "error")
            code = {"404": "NotFound", "403": "Forbidden", "400": "BadRequest"}.get(code, code)
            raise StorageError(operation, code, status, str(error.get("Message") or "")) from None
        except (boto.ConnectionError, boto.HTTPClientError) as exc:  # connect, TLS, timeouts, closed: no answer
            raise transport.no_answer(operation, self._s3.meta.endpoint_url, exc, self.timeouts) from None
        except boto.BotoCoreError as exc:
            raise StorageError(operation, type(exc).__name__, None, _short(exc)) from None

    def list_buckets(self) -> list[str]:
        with self._call("ListBuckets"):
            answer = self._s3.list_buckets()
        return [str(b["Name"]) for b in answer.get("Buckets", [])]

    def list_objects(self, prefix: str, limit: int = 10) -> list[str]:
        with self._call(f"ListObjectsV2 s3://{self.bucket}/{prefix}"):
            answer = self._s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=limit)
        return [str(o["Key"]) for o in answer.get("Contents", [])]

    def list_all(self, prefix: str) -> list[str]:
        with self._call(f"ListObjectsV2 s3://{self.bucket}/{prefix}"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return [str(o["Key"]) for page in pages for o in page.get("Contents", [])]

    def put(self, key: str, data: bytes) -> None:
        with self._call(f"PutObject s3://{self.bucket}/{key}"):
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        with self._call(f"GetObject s3://{self.bucket}/{key}"):
            answer = self._s3.get_object(Bucket=self.bucket, Key=key)
            body: bytes = answer["Body"].read()
        return body

    def delete(self, key: str) -> None:
        with self._call(f"DeleteObject s3://{self.bucket}/{key}"):
            self._s3.delete_object(Bucket=self.bucket, Key=key)

    def exists(self, key: str) -> bool:
        try:
            with self._call(f"HeadObject s3://{self.bucket}/{key}"):
                self._s3.head_object(Bucket=self.bucket, Key=key)
        except StorageError as exc:
            if exc.code in ("NotFound", "NoSuchKey"):
                return False
            raise
        return True


# --------------------------------------------------------------------------- GCS


class GcsClient:
    backend = "gcs"

    def __init__(self, storage: ObjectStorage, timeouts: Timeouts, tls: TLS) -> None:
        import requests  # noqa: PLC0415 - SDK loaded when the component first runs
        from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415 - same
        from google.cloud import storage as gcs  # type: ignore[import-untyped]  # noqa: PLC0415 - no py.typed

        self.bucket = storage.bucket
        self.endpoint = storage.default_endpoint
        self.timeout, self.timeouts = (timeouts.connect, timeouts.request), timeouts
        plain = transport.pinned_session(requests.Session, tls)
        facts = _gcs_facts(storage)
        project = storage.gcp_project or facts.details.get("project_id")
        credentials: Any
        if storage.anonymous:
            credentials, http = AnonymousCredentials(), plain()  # type: ignore[no-untyped-call] # google-auth
            self.credential_source = "anonymous (sandbox emulator; no credentials sent)"
        else:
            credentials, project = self._credentials(storage, facts, project, plain())
            from google.auth.transport.requests import AuthorizedSession, Request  # noqa: PLC0415 - lazily

            http = transport.pinned_session(AuthorizedSession, tls)(credentials, auth_request=Request(session=plain()))
        options = {"api_endpoint": storage.endpoint_url.rstrip("/")} if storage.endpoint_url else None
        self._client = gcs.Client(
            project=project or "conformance", credentials=credentials, _http=http, client_options=options
        )
        self._bucket = self._client.bucket(self.bucket)

    def _credentials(
        self, storage: ObjectStorage, facts: CredentialFacts, project: str | None, session: Any
    ) -> tuple[Any, str | None]:
        from google.oauth2 import service_account  # noqa: PLC0415 - SDK loaded lazily

        scopes = ["https://www.googleapis.com/auth/devstorage.read_write"]
        if facts.source == "gcloud application-default credentials":
            import google.auth  # noqa: PLC0415 - same
            from google.auth.exceptions import DefaultCredentialsError  # noqa: PLC0415 - same

            try:
                credentials, found_project = google.auth.default(scopes=scopes)
            except DefaultCredentialsError as exc:
                raise CannotEvaluate(f"no GCS credentials ({_short(exc)})", hint="see OBJ-001") from None
            self.credential_source = f"application-default credentials ({type(credentials).__name__})"
            return credentials, project or found_project
        if facts.problem or facts.path is None:
            raise CannotEvaluate(str(facts.problem), hint="see OBJ-001: the GCS key is read from this file")
        info, _ = parse_key_file(facts.path, service_account=True)
        try:
            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=scopes
            )  # google-auth leaves this classmethod unannotated
        except (ValueError, KeyError, TypeError) as exc:
            raise CannotEvaluate(f"{facts.path}: the private key does not load ({type(exc).__name__})") from None
        self.credential_source = f"service-account key {facts.path} ({facts.source})"
        return credentials, project

    @contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        import requests  # noqa: PLC0415 - SDK loaded lazily
        from google.api_core.exceptions import GoogleAPICallError  # noqa: PLC0415 - same
        from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError  # noqa: PLC0415 - same

        try:
            yield
        except GoogleAPICallError as exc:
            code = type(exc).__name__
            raise StorageError(operation, code, exc.code, str(exc.message)) from None
        except RefreshError as exc:
            raise StorageError(operation, "RefreshError", None, _short(exc)) from None
        except (TransportError, requests.RequestException) as exc:  # no answer, from storage or the token endpoint
            raise transport.no_answer(operation, self.endpoint, exc, self.timeouts) from None
        except GoogleAuthError as exc:
            raise StorageError(operation, type(exc).__name__, None, _short(exc)) from None

    def list_buckets(self) -> list[str]:
        with self._call("buckets.list"):
            return [b.name for b in self._client.list_buckets(timeout=self.timeout, retry=None)]

    def list_objects(self, prefix: str, limit: int = 10) -> list[str]:
        with self._call(f"objects.list gs://{self.bucket}/{prefix}"):
            blobs = self._client.list_blobs(
                self.bucket, prefix=prefix, max_results=limit, timeout=self.timeout, retry=None
            )
            return [b.name for b in blobs]

    def list_all(self, prefix: str) -> list[str]:
        with self._call(f"objects.list gs://{self.bucket}/{prefix}"):
            return [
                b.name for b in self._client.list_blobs(self.bucket, prefix=prefix, timeout=self.timeout, retry=None)
            ]

    def put(self, key: str, data: bytes) -> None:
        with self._call(f"objects.insert gs://{self.bucket}/{key}"):
            self._bucket.blob(key).upload_from_string(data, timeout=self.timeout, retry=None)

    def get(self, key: str) -> bytes:
        with self._call(f"objects.get gs://{self.bucket}/{key}"):
            data: bytes = self._bucket.blob(key).download_as_bytes(timeout=self.timeout, retry=None)
        return data

    def delete(self, key: str) -> None:
        with self._call(f"objects.delete gs://{self.bucket}/{key}"):
            self._bucket.blob(key).delete(timeout=self.timeout, retry=None)

    def exists(self, key: str) -> bool:
        with self._call(f"objects.get gs://{self.bucket}/{key}"):
            return bool(self._bucket.blob(key).exists(timeout=self.timeout, retry=None))


# --------------------------------------------------------------------------- connect


def _authenticate(store: S3Client | GcsClient) -> None:
    """One cheap call that needs valid credentials; refused ones stop the component here."""
    try:
        store.list_buckets()
    except StorageError as exc:
        meaning = REFUSED_CREDENTIALS.get(exc.code)
        if meaning is not None:
            raise CannotEvaluate(
                f"{store.endpoint} refused the credentials ({store.credential_source}): {exc.code}: {meaning}",
                hint="ask the DataOps team for a working key pair and update the credentials file"
                if store.backend == "s3"
                else "the service-account key is revoked or for another project; download a new key",
            ) from None
        if exc.status is None:  # no HTTP answer at all: connection, TLS or timeout
            raise CannotEvaluate(f"{store.endpoint}: {exc}", hint="see the NET checks for this endpoint") from None
        # Any other answer (AccessDenied on listing, ...) is for the checks to judge.


def open_store(storage: ObjectStorage, timeouts: Timeouts, tls: TLS) -> S3Client | GcsClient:
    return S3Client(storage, timeouts, tls) if storage.kind == "s3" else GcsClient(storage, timeouts, tls)


def connect(profile: Profile, run_id: str) -> S3Client | GcsClient:
    """The profile's object store, with its credentials known to be accepted."""
    storage = profile.object_storage
    if storage is None:  # the plugin skips the component first; this is a safety net
        raise CannotEvaluate("the profile has no object_storage section")
    store = open_store(storage, profile.timeouts, profile.tls)
    _authenticate(store)
    return store


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """Delete the ``<prefix>/conformance-<run id>...`` objects of runs started before ``older_than``."""
    store = connect(profile, "cleanup")
    folder = object_key(profile.object_storage, "") if profile.object_storage else ""
    try:
        keys = store.list_all(f"{folder}conformance-")
    except StorageError as exc:
        raise CannotEvaluate(str(exc)) from None
    swept = Swept()
    for key in keys:
        if not eligible(key.removeprefix(folder), older_than):  # a name with a "/" never is
            continue
        where = f"{store.backend}://{store.bucket}/{key}"
        try:
            if not dry_run:
                store.delete(key)
        except StorageError as exc:
            swept.failures.append(f"{where} ({exc})")
            continue
        swept.items.append(where)
    return swept


def timed(evidence: dict[str, Any], name: str, call: Callable[[], T]) -> T:
    """Run ``call`` and record its duration in ``evidence[name + '_s']``, also when it raises."""
    started = time.monotonic()
    try:
        return call()
    finally:
        evidence[f"{name}_s"] = round(time.monotonic() - started, 4)
