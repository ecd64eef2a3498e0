"""GCP: can this workspace act on the GCP project with the credentials the guide sets up?

An active gcloud account or application default credentials (GCP-001), a well-formed service-account
key where one is configured (GCP-002), the project visible to those credentials through Cloud
Resource Manager (GCP-003), and the key enabled and not about to expire (GCP-004: a key file carries
no expiry; IAM's record of the key, read with the key's own credentials, does). The whole component
applies to the gcp platform only (its marker is the platform's). The Artifact Registry credential
helper (``credHelpers`` -> gcloud) is the registry component's to check.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pytest

from conformance.checks import Blocked, CannotEvaluate, ConformanceWarning, check, expect, expires_in_time
from conformance.fixtures import Reachability
from conformance.profile import GCP_API_ENDPOINT, Profile

if TYPE_CHECKING:  # the client imports requests and google-auth; the fixture loads it at run time
    from conformance.clients.gcp import GcpClient, KeyRecord, ProjectReply, ServiceAccountKey

pytestmark = pytest.mark.gcp

HINTS = {
    403: "PERMISSION_DENIED: these credentials have no role on the project, or the id is wrong"
    " (use the project id, not its name or number); ask the platform team for access",
    404: "NOT_FOUND: no project has this id; check gcp.project",
    401: "UNAUTHENTICATED: the access token was refused; log in again",
}


@check(
    "GCP-001",
    """
    Log in: 'gcloud auth login' (your account), or 'gcloud auth activate-service-account --key-file
    $GOOGLE_APPLICATION_CREDENTIALS' (a service account, as Coder workspaces on GKE do), or set
    GOOGLE_APPLICATION_CREDENTIALS to your service-account key, or run 'gcloud auth application-default login'.
    """,
)
def test_credentials_present(gcp: GcpClient, evidence: dict[str, Any]) -> None:
    accounts = gcp.gcloud_accounts()
    key = gcp.key_source()
    sources = []
    if accounts.active:
        sources.append(f"gcloud active account {accounts.active}")
    if key and key[0].is_file():
        sources.append(f"service-account key {key[0]} ({key[1]})")
    if gcp.adc_file.is_file():
        sources.append(f"application default credentials {gcp.adc_file}")
    evidence.update(
        {
            "gcloud": accounts.executable,
            "gcloud_config": str(gcp.config_dir),
            "gcloud_accounts": accounts.accounts,
            "sources": sources,
        }
    )
    if accounts.executable is None:
        gcloud = f"{gcp.section.gcloud} not on PATH"
    else:
        gcloud = accounts.error or f"no ACTIVE account ({len(accounts.accounts)} credentialed) in {gcp.config_dir}"
    key_state = f"{key[0]} ({key[1]}) does not exist" if key else "GOOGLE_APPLICATION_CREDENTIALS is not set"
    expect(
        sources,
        expected="an active gcloud account, a service-account key, or application default credentials",
        actual=f"gcloud: {gcloud}; key: {key_state}; ADC: no {gcp.adc_file}",
        hint="not logged in on this workspace, or CLOUDSDK_CONFIG points at another gcloud configuration",
    )
    evidence["used"] = sources[0]


@check(
    "GCP-002",
    """
    The service-account key named by gcp.key_file or GOOGLE_APPLICATION_CREDENTIALS is missing or not a
    service-account key. Download a new JSON key for the service account (IAM > Service accounts > Keys),
    or point the variable at the file the platform mounts (/var/secret/cloud.google.com/ in Coder on GKE).
    """,
)
def test_key_well_formed(gcp: GcpClient, evidence: dict[str, Any]) -> None:
    from conformance.clients.gcp import KeyFileError  # noqa: PLC0415 - the client module loads at run time

    source = gcp.key_source()
    if source is None:
        pytest.skip("not applicable: neither gcp.key_file nor GOOGLE_APPLICATION_CREDENTIALS names a key")
    evidence.update({"key_file": str(source[0]), "origin": source[1]})
    try:
        key = gcp.key()
    except KeyFileError as exc:
        expect(
            False,
            expected=f"{source[0]} is a readable service-account key (type, project_id, client_email, private key)",
            actual=str(exc),
            hint="a truncated download, a user (authorized_user) credential, or a path that moved",
        )
        return
    if key is not None:  # always: key_source() named one, so key() returned it or raised
        evidence.update(key.summary())


@pytest.fixture
def project_reply(gcp: GcpClient, reachability: Reachability) -> ProjectReply:
    """Resource Manager's answer about the profile's project; unreachable, no credentials or no token: an error."""
    from conformance.clients.gcp import KeyFileError  # noqa: PLC0415 - the client module loads at run time

    reachability.require(GCP_API_ENDPOINT)
    try:
        return gcp.get_project(gcp.section.project)
    except KeyFileError as exc:
        raise Blocked("GCP-002", str(exc)) from None


@check(
    "GCP-003",
    """
    The credentials work but cannot see the project. Check gcp.project (the project id), and ask the
    platform team to grant your account or service account a role on it (at least Viewer). A warning that the
    API is disabled (SERVICE_DISABLED) concerns the credentials' own project, not your role.
    """,
)
def test_project_accessible(gcp: GcpClient, project_reply: ProjectReply, evidence: dict[str, Any]) -> None:
    project = gcp.section.project
    reply = project_reply
    evidence.update(
        {"project": project, "credentials": reply.source, "http_status": reply.status, "seconds": reply.seconds}
    )
    if reply.api_disabled:
        # Not a role problem, and not the workspace's: the call is charged to the credentials' own project
        # (a service-account key's), where this API is off. The guide never calls Resource Manager; the
        # bucket (OBJ-003) and Artifact Registry (REG-003) checks prove access to what it does use.
        consumer = (reply.consumer or "").removeprefix("projects/") or "the credentials' project"
        evidence.update({"reason": reply.reason, "service": reply.service, "consumer": reply.consumer})
        evidence["warning"] = (
            f"{reply.service or 'the Resource Manager API'} is disabled in project {consumer}, which the call is "
            f"charged to: {project} was not looked up (OBJ-003 and REG-003 prove the bucket and registry the "
            f"guide uses). To let GCP-003 read it: gcloud services enable cloudresourcemanager.googleapis.com "
            f"--project {consumer}"
        )
        warnings.warn(ConformanceWarning(f"GCP-003: {evidence['warning']}"), stacklevel=1)
        return
    expect(
        reply.status == 200,
        expected=f"GET {gcp.section.resource_manager_url.rstrip('/')}/v1/projects/{project} answers 200",
        actual=reply.summary(),
        hint=HINTS.get(reply.status, "the Resource Manager API answered an error"),
    )
    evidence["lifecycle_state"] = reply.state
    expect(
        reply.state == "ACTIVE",
        expected=f"project {project} is ACTIVE",
        actual=reply.summary(),
        hint="the project is being deleted (DELETE_REQUESTED); ask the platform team",
    )


KEY_REMEDY = (
    "make a new key for the service account (IAM > Service accounts > Keys > Add key) and point gcp.key_file"
    " or GOOGLE_APPLICATION_CREDENTIALS at it before the old one ends"
)


@pytest.fixture
def key_record(gcp: GcpClient) -> tuple[ServiceAccountKey, KeyRecord]:
    """The configured key and IAM's record of it, asked for with the key's own credentials."""
    from conformance.clients.gcp import KeyFileError, get_key_record  # noqa: PLC0415 - loads at run time

    if gcp.key_source() is None:
        pytest.skip("not applicable: neither gcp.key_file nor GOOGLE_APPLICATION_CREDENTIALS names a key")
    try:
        key = gcp.key()
    except KeyFileError as exc:
        raise Blocked("GCP-002", str(exc)) from None
    if key is None:  # key_source() named one, so key() returned it or raised
        raise CannotEvaluate("the configured service-account key could not be read")
    return key, get_key_record(gcp, key)


@check(
    "GCP-004",
    """
    Make a new key for the service account (IAM > Service accounts > Keys > Add key), point gcp.key_file or
    GOOGLE_APPLICATION_CREDENTIALS at it, and delete the old one. This one is disabled, or ends within the
    profile's expiry_horizon_days (default 7; a warning within twice that). When the service account may not read
    its own key (no iam.serviceAccountKeys.get), this passes with a warning that the expiry is unknown.
    """,
)
def test_key_not_expiring(
    key_record: tuple[ServiceAccountKey, KeyRecord], profile: Profile, evidence: dict[str, Any]
) -> None:
    key, record = key_record
    account = key.client_email
    evidence.update({"client_email": account, "http_status": record.status, "seconds": record.seconds})
    if record.status in (403, 404):
        # No iam.serviceAccountKeys.get on the account (with projects/- IAM answers 403 for a key it will not
        # show, too): the expiry is unknown, which is not a fault of the key.
        evidence.update({"reason": record.reason, "permission": record.permission})
        evidence["warning"] = (
            f"the expiry of the service-account key of {account} could not be read: IAM keys.get answered "
            f"{record.summary()}; to have it checked, grant the service account roles/iam.serviceAccountViewer "
            "on itself (iam.serviceAccountKeys.get)"
        )
        warnings.warn(ConformanceWarning(f"GCP-004: {evidence['warning']}"), stacklevel=1)
        return
    if record.status != 200:
        raise CannotEvaluate(f"IAM keys.get of the key of {account} answered {record.summary()}")
    evidence.update({"key_type": record.key_type, "key_origin": record.key_origin, "disabled": record.disabled})
    if record.valid_after is not None:
        evidence["valid_after"] = f"{record.valid_after:%Y-%m-%d %H:%M} UTC"
    expect(
        not record.disabled,
        expected=f"the service-account key of {account} is enabled",
        actual=f"IAM says the key is disabled ({record.summary()})",
        hint=f"someone disabled the key, or Google did on finding it exposed: {KEY_REMEDY}",
    )
    if record.valid_before is None:
        evidence["warning"] = f"IAM's record of the key of {account} has no readable validBeforeTime"
        warnings.warn(ConformanceWarning(f"GCP-004: {evidence['warning']}"), stacklevel=1)
        return
    if record.never_expires:
        evidence["expires"] = "no expiry (validBeforeTime 9999-12-31: no key expiry policy)"
        return
    expires_in_time(
        f"the service-account key of {account}",
        record.valid_before,
        horizon_days=profile.expiry_horizon_days,
        check_id="GCP-004",
        evidence=evidence,
        remedy=KEY_REMEDY,
    )
