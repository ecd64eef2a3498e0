"""OBJ: can this workspace list and write its project's bucket (ECS over S3 on-prem, GCS on GCP)?

The same five checks serve both back ends; the profile's ``object_storage.kind`` picks the client.
What the guide does by hand: ``aws --profile P --endpoint-url URL s3 ls`` (or ``gsutil ls``), then
``s3 ls s3://<bucket>/`` because ECS may hide buckets from the listing; the suite adds a probe
object written, read back and deleted, so write permission is proven and not just listing.

Refused credentials stop the component in its fixture (``InvalidAccessKeyId`` and
``SignatureDoesNotMatch`` named as a wrong key id or secret), so they show once, as the cause.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from conformance.checks import Blocked, CannotEvaluate, NonConformance, check, expect
from conformance.clients import object_storage as storage_client  # the SDKs load when a check connects
from conformance.clients.object_storage import ObjectStorageClient, StorageError
from conformance.profile import ObjectStorage, Profile

PROBE_BYTES = 4096
LISTED_IN_EVIDENCE = 20


@pytest.fixture(scope="session")
def storage(profile: Profile) -> ObjectStorage:
    section = profile.object_storage
    if section is None:  # the plugin refuses a run of OBJ checks without the section; this narrows the type
        raise CannotEvaluate("the profile has no object_storage section")
    return section


def _where(store: ObjectStorageClient) -> dict[str, Any]:
    return {
        "backend": store.backend,
        "endpoint": store.endpoint,
        "bucket": store.bucket,
        "credential_source": store.credential_source,
    }


def _hint(error: StorageError, store: ObjectStorageClient) -> str:
    code = error.code
    if code in ("NoSuchBucket", "NotFound"):
        return f"bucket {store.bucket} does not exist at {store.endpoint}: check object_storage.bucket (spelling)"
    if code in ("AccessDenied", "Forbidden"):
        return f"your credentials ({store.credential_source}) have no permission for this on {store.bucket}"
    return "the service answered an error; see actual"


# --------------------------------------------------------------------------- OBJ-001


@check(
    "OBJ-001",
    """
    On-prem (ECS): keep the keys DataOps gave you in ~/.aws/credentials (or the file the profile names),
    readable only by you (chmod 600), under a section [NAME] with aws_access_key_id and
    aws_secret_access_key, and set object_storage.aws_profile to NAME. GCP: point
    object_storage.credentials_file or GOOGLE_APPLICATION_CREDENTIALS at the service-account key JSON
    downloaded from the console (type service_account), or run `gcloud auth application-default login`.
    """,
)
def test_credentials_present(storage: ObjectStorage, evidence: dict[str, Any]) -> None:
    if storage.anonymous and not storage.credentials_file:
        pytest.skip("not applicable: the profile sends no credentials (anonymous, sandbox emulator only)")
    facts = storage_client.credential_facts(storage)
    evidence.update(facts.evidence())
    expect(
        facts.exists,
        expected=f"the {facts.what} {facts.path} exists (chosen by {facts.source})",
        actual=str(facts.problem),
        hint="the path in the profile is wrong, or the file was never created on this machine",
    )
    if facts.owner_only_expected and facts.mode is not None:
        expect(
            facts.mode & 0o077 == 0,
            expected=f"{facts.path} is readable by its owner only (mode 600)",
            actual=f"mode {facts.mode:03o}: group or others may read the keys",
            hint=f"run: chmod 600 {facts.path}",
            blocks=False,  # the keys still work: the other OBJ checks run (WSP-007 folds under it)
        )
    expect(
        facts.problem is None,
        expected=f"the {facts.what} {facts.path} holds usable credentials",
        actual=str(facts.problem),
        hint="a section name that differs from object_storage.aws_profile, or a truncated / wrong file",
    )


# --------------------------------------------------------------------------- OBJ-002


@check(
    "OBJ-002",
    """
    Listing buckets is what `aws --profile P --endpoint-url URL s3 ls` (or `gsutil ls -p PROJECT`) does.
    It must succeed and show at least one bucket. On ECS some buckets can be hidden from the listing:
    if yours is (see OBJ-003), ask DataOps whether your keys should list any bucket at all.
    """,
)
def test_buckets_list(object_storage: ObjectStorageClient, evidence: dict[str, Any]) -> None:
    client = storage_client
    evidence.update(_where(object_storage))
    try:
        buckets = client.timed(evidence, "list_buckets", object_storage.list_buckets)
    except client.StorageError as exc:
        raise NonConformance(
            f"listing buckets at {object_storage.endpoint} succeeds", str(exc), _hint(exc, object_storage)
        ) from None
    evidence.update({"bucket_count": len(buckets), "buckets": buckets[:LISTED_IN_EVIDENCE]})
    expect(
        buckets,
        expected=f"listing buckets at {object_storage.endpoint} shows at least one bucket",
        actual="the listing is empty",
        hint="the keys belong to an account that owns no bucket, or ECS hides them all (see OBJ-003)",
        blocks=False,  # the keys were accepted: OBJ-003 still tells whether the named bucket is usable
    )


# --------------------------------------------------------------------------- OBJ-003


@dataclass
class BucketProbe:
    objects: list[str]
    error: StorageError | None
    listed: bool | None  # None: the bucket listing itself failed


@pytest.fixture(scope="session")
def bucket_probe(object_storage: ObjectStorageClient, storage: ObjectStorage) -> BucketProbe:
    """List the named bucket directly (once), whatever the bucket listing shows."""
    client = storage_client
    try:
        listed: bool | None = object_storage.bucket in object_storage.list_buckets()
    except client.StorageError:
        listed = None
    try:
        return BucketProbe(object_storage.list_objects(storage.prefix, limit=5), None, listed)
    except client.StorageError as exc:
        return BucketProbe([], exc, listed)


@check(
    "OBJ-003",
    """
    Check object_storage.bucket against the bucket name the MLOps/DataOps team gave your project, and
    that your keys (or service account) were granted access to it (list and read at least). A bucket that
    `s3 ls` does not show can still be yours: ECS hides some buckets; what matters is `s3 ls s3://BUCKET/`.
    """,
)
def test_bucket_usable(
    object_storage: ObjectStorageClient, bucket_probe: BucketProbe, storage: ObjectStorage, evidence: dict[str, Any]
) -> None:
    evidence.update({**_where(object_storage), "prefix": storage.prefix, "objects_seen": len(bucket_probe.objects)})
    evidence["in_bucket_listing"] = bucket_probe.listed
    error = bucket_probe.error
    expect(
        error is None,
        expected=f"listing objects in bucket {object_storage.bucket} (prefix {storage.prefix or '/'}) succeeds",
        actual=str(error),
        hint=_hint(error, object_storage) if error else None,
    )
    if bucket_probe.listed is False:
        evidence["note"] = (
            f"bucket {object_storage.bucket} is not in the bucket listing but is usable:"
            " ECS may hide buckets from ListBuckets (guide); this conforms"
        )


# --------------------------------------------------------------------------- OBJ-004 / OBJ-005


@dataclass
class ProbeObject:
    key: str
    data: bytes
    error: StorageError | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False


def _probe_name(request: pytest.FixtureRequest, run_id: str) -> str:
    worker = getattr(request.config, "workerinput", {}).get("workerid")  # one object per xdist worker
    return f"conformance-{run_id}" + (f"-{worker}" if worker else "")


@pytest.fixture(scope="session")
def probe_object(
    request: pytest.FixtureRequest,
    object_storage: ObjectStorageClient,
    bucket_probe: BucketProbe,
    storage: ObjectStorage,
    run_id: str,
) -> Iterator[ProbeObject]:
    """Write ``<prefix>/conformance-<run id>`` once; teardown deletes it unless OBJ-005 already did."""
    client = storage_client
    if bucket_probe.error is not None:
        raise Blocked("OBJ-003", str(bucket_probe.error))
    key = client.object_key(storage, _probe_name(request, run_id))
    data = f"conformance probe {run_id}\n".encode() + os.urandom(PROBE_BYTES)
    probe = ProbeObject(key, data)
    try:
        client.timed(probe.timings, "put", lambda: object_storage.put(key, data))
    except client.StorageError as exc:
        probe.error = exc
    yield probe
    if not probe.deleted:  # only the run's own key; best effort (a read-only key wrote nothing)
        with contextlib.suppress(client.StorageError):
            object_storage.delete(key)


@check(
    "OBJ-004",
    """
    Your keys can list but not write: ask DataOps (on-prem) or the project's GCP admin for write access
    to the bucket (S3: s3:PutObject/GetObject under the prefix; GCS: roles/storage.objectAdmin or
    objectCreator plus objectViewer). Writing is what MLflow artifacts and data uploads need.
    """,
)
@pytest.mark.writes
def test_probe_written_and_read_back(
    object_storage: ObjectStorageClient, probe_object: ProbeObject, evidence: dict[str, Any]
) -> None:
    client = storage_client
    where = f"{object_storage.backend}://{object_storage.bucket}/{probe_object.key}"
    evidence.update({**_where(object_storage), "key": probe_object.key, "size": len(probe_object.data)})
    evidence.update(probe_object.timings)
    checksums = getattr(object_storage, "checksums", None)  # S3 only: SDK settings an S3-compatible store may refuse
    if checksums:
        # Named either way: the suite may pass where the user's own boto3 >= 1.36 / AWS CLI >= 2.23 fails.
        evidence["s3_checksums"] = checksums
        evidence["s3_checksums_note"] = (
            "boto3 >= 1.36 and the AWS CLI >= 2.23 send a CRC32 checksum trailer (aws-chunked) by default, which "
            "S3-compatible stores such as Dell ECS may refuse (boto/botocore#3352); if your own tools fail here, "
            "set AWS_REQUEST_CHECKSUM_CALCULATION=when_required and AWS_RESPONSE_CHECKSUM_VALIDATION=when_required"
        )
    evidence["sha256"] = hashlib.sha256(probe_object.data).hexdigest()
    error = probe_object.error
    expect(
        error is None,
        expected=f"writing {where} ({len(probe_object.data)} bytes) is accepted",
        actual=str(error),
        hint=(
            f"no write permission: the credentials ({object_storage.credential_source}) may read but not write"
            if error and error.code in ("AccessDenied", "Forbidden")
            else (_hint(error, object_storage) if error else None)
        ),
    )
    try:
        back = client.timed(evidence, "get", lambda: object_storage.get(probe_object.key))
    except client.StorageError as exc:
        raise NonConformance(f"reading {where} back succeeds", str(exc), _hint(exc, object_storage)) from None
    evidence["read_sha256"] = hashlib.sha256(back).hexdigest()
    expect(
        back == probe_object.data,
        expected=f"{where} reads back byte-identical ({len(probe_object.data)} bytes)",
        actual=f"{len(back)} bytes, sha256 {evidence['read_sha256'][:16]}...",
        hint="a proxy or gateway rewrote the object, or another writer used the same key",
    )


@pytest.fixture
def written_probe(probe_object: ProbeObject) -> ProbeObject:
    """The probe object, once OBJ-004's write of it succeeded."""
    if probe_object.error is not None:
        raise Blocked("OBJ-004", str(probe_object.error))
    return probe_object


@check(
    "OBJ-005",
    """
    The probe object could not be deleted, so runs leave objects behind: ask for delete permission on
    the prefix (S3: s3:DeleteObject; GCS: roles/storage.objectAdmin), then remove leftover
    conformance-* objects under the prefix by hand.
    """,
)
@pytest.mark.writes
def test_probe_deleted(
    object_storage: ObjectStorageClient, written_probe: ProbeObject, evidence: dict[str, Any]
) -> None:
    client = storage_client
    probe_object = written_probe
    where = f"{object_storage.backend}://{object_storage.bucket}/{probe_object.key}"
    evidence.update({**_where(object_storage), "key": probe_object.key})
    try:
        client.timed(evidence, "delete", lambda: object_storage.delete(probe_object.key))
        still_there = client.timed(evidence, "verify", lambda: object_storage.exists(probe_object.key))
        listed = object_storage.list_objects(probe_object.key, limit=1)
    except client.StorageError as exc:
        raise NonConformance(f"deleting {where} succeeds", str(exc), _hint(exc, object_storage)) from None
    probe_object.deleted = not still_there
    evidence["left_over"] = still_there or bool(listed)
    expect(
        not still_there and not listed,
        expected=f"after the delete, {where} no longer exists",
        actual="the object still answers" if still_there else f"the listing still shows {', '.join(listed)}",
        hint="the bucket keeps deleted objects visible (a retention rule, or an eventually consistent gateway)",
    )
