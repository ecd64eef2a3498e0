"""Google's Resource Manager transcripts (contracts/gcp.yaml) replayed through the GCP client's parser."""

from __future__ import annotations

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
