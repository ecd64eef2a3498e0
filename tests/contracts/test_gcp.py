"""Google's Resource Manager transcripts (contracts/gcp.yaml) replayed through the GCP client's parser."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import requests

from conformance.clients import gcp as client
from conformance.profile import Gcp, Profile
from conformance.sandbox import contracts
from conformance.secrets import Secret


class Answer:
    """A ``requests`` session whose every request returns one transcript."""

    def __init__(self, name: str, **values: object) -> None:
        transcript = contracts.get("gcp", name)
        assert transcript.http is not None
        self.response = requests.Response()
        self.response.status_code = transcript.http.status
        self.response._content = transcript.render(transcript.http.body, **values).encode()
        self.response.reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden"}[transcript.http.status]

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return self.response


def replay(name: str, **values: object) -> client.ProjectReply:
    profile = Profile.model_validate({"platform": "gcp", "orchestrator": "runai", "gcp": {"project": "my-project"}})
    assert isinstance(profile.gcp, Gcp)
    gcp = client.GcpClient(profile.gcp, profile, {})
    gcp.http = Answer(name, **values)  # type: ignore[assignment] # a stand-in session: one canned answer
    gcp._token = lambda: (Secret("t", "test"), "test key")  # type: ignore[method-assign] # no token grant
    return gcp.get_project("my-project")


def test_service_disabled_names_the_consumer_not_a_role() -> None:
    reply = replay("service-disabled", consumer="210987654321")
    assert (reply.status, reply.error_status, reply.reason) == (403, "PERMISSION_DENIED", "SERVICE_DISABLED")
    assert reply.api_disabled
    assert reply.service == "cloudresourcemanager.googleapis.com"
    assert reply.consumer == "projects/210987654321"
    assert (
        reply.message
        == "Cloud Resource Manager API has not been used in project 210987654321 before or it is disabled."
    )


@pytest.mark.parametrize(("name", "status"), [("permission-denied", 403), ("unauthenticated", 401)])
def test_other_refusals_carry_no_reason(name: str, status: int) -> None:
    reply = replay(name)
    assert reply.status == status
    assert not reply.api_disabled
    assert reply.reason is None


def test_a_visible_project() -> None:
    reply = replay("project", project="my-project")
    assert (reply.status, reply.project_id, reply.state) == (200, "my-project", "ACTIVE")


KEY = {
    "project": "p",
    "email": "sa@p.iam.gserviceaccount.com",
    "key_id": "0123abcd",
    "valid_after": "2026-01-05T08:00:00Z",
}


def key_record(name: str, **values: object) -> client.KeyRecord:
    """IAM's keys.get transcript through the client's parser, as the GCP-004 check gets it."""
    transcript = contracts.get("gcp", name)
    assert transcript.http is not None
    body = json.loads(transcript.render(transcript.http.body, **values))
    return client.parse_key_record(transcript.http.status, body)


def test_a_key_without_an_expiry_policy_never_expires() -> None:
    record = key_record("service-account-key", **KEY, valid_before="9999-12-31T23:59:59Z")
    assert (record.status, record.key_type, record.key_origin, record.disabled) == (
        200, "USER_MANAGED", "GOOGLE_PROVIDED", False,
    )  # fmt: skip
    assert record.never_expires
    assert record.valid_after == dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC)
    assert record.summary() == "HTTP 200, USER_MANAGED enabled, valid until no expiry"


def test_a_key_with_an_expiry_reads_its_date_to_the_second() -> None:
    record = key_record("service-account-key", **KEY, valid_before="2026-12-05T10:30:00.123456789Z")
    assert not record.never_expires
    assert record.valid_before == dt.datetime(2026, 12, 5, 10, 30, 0, 123456, tzinfo=dt.UTC)
    assert record.summary() == "HTTP 200, USER_MANAGED enabled, valid until 2026-12-05 10:30 UTC"


def test_a_disabled_key_says_so() -> None:
    record = key_record("service-account-key-disabled", **KEY, valid_before="9999-12-31T23:59:59Z")
    assert record.disabled


def test_no_permission_to_read_the_key_is_read_as_such() -> None:
    record = key_record("service-account-key-denied")
    assert (record.status, record.error_status, record.reason) == (403, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED")
    assert record.permission == "iam.serviceAccountKeys.get"
    assert record.valid_before is None
    assert not record.never_expires


@pytest.mark.parametrize("text", ["", "not a date", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00", 7])
def test_timestamps_that_are_not_rfc3339_with_a_zone_are_unreadable(text: object) -> None:
    assert client.parse_timestamp(text) is None


def test_the_key_url_uses_the_wildcard_project_and_quotes_the_account() -> None:
    assert client.key_record_url("https://iam.googleapis.com/", "sa@p.iam.gserviceaccount.com", "ab/c") == (
        "https://iam.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com/keys/ab%2Fc"
    )
