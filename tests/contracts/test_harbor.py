"""Harbor's transcripts (contracts/harbor.yaml) replayed through the registry client's parsers.

Each answer is read as REG-002..004 read it: the error body decides the cause (a missing role is a
401 in Harbor 2.x, and an ``insufficient_scope`` Bearer challenge in Distribution's token controller),
never the status alone; and every challenge Harbor sends parses (Bearer without credentials, Basic
with them, an empty one for a project that does not exist).
"""

from __future__ import annotations

import pytest
from requests.structures import CaseInsensitiveDict

from conformance import transport
from conformance.clients import registry as client
from conformance.components.test_registry import _hint
from conformance.sandbox import contracts

REALM = "https://harbor.example/service/token"
REPO = "mlops/kapitan-hull/conformance"
VALUES = {
    "realm": REALM,
    "service": "harbor-registry",
    "scope": f"repository:{REPO}:pull,push",
    "repository": REPO,
    "project": "nosuch",
    "token": "tok",
    "issued": "2026-01-01T00:00:00Z",
}


def answer(name: str, **values: str) -> transport.Answer:
    """The transcript as the answer the client would get from the real Harbor."""
    transcript = contracts.get("harbor", name)
    assert transcript.http is not None
    filled = {**VALUES, **values}
    headers = CaseInsensitiveDict({k: transcript.render(v, **filled) for k, v in transcript.http.headers.items()})
    content = transcript.render(transcript.http.body, **filled).encode()
    return transport.Answer(transcript.http.status, headers, content, "https://harbor.example/v2/", 0.1)


def reply(name: str, **values: str) -> client.Reply:
    return client._reply("PUT manifest", answer(name, **values), 0.1)


@pytest.mark.parametrize("action", ["push", "delete"])
def test_a_missing_role_is_a_401_that_names_the_action(action: str) -> None:
    got = reply("no-role", action=action)
    assert got.status == 401
    assert got.code == "UNAUTHORIZED"
    assert got.message == f"unauthorized to access repository: {REPO}, action: {action}"  # Harbor's doubled text, once
    assert got.action == action
    assert got.cause == client.CAUSE_ROLE
    hint = _hint(got, "mlops")
    assert "password" not in hint
    assert ("may not delete" in hint) if action == "delete" else ("role Developer or higher" in hint)


def test_the_role_answer_carries_a_basic_challenge_that_the_client_answers() -> None:
    response = answer("no-role", action="push")
    assert client.parse_challenge(response.headers["WWW-Authenticate"]) == ("basic", {"realm": "harbor"})


def test_an_unknown_project_is_a_401_naming_it_with_no_challenge() -> None:
    response = answer("project-not-found")
    assert client.parse_challenge(response.headers["WWW-Authenticate"]) is None
    got = client._reply("HEAD layer blob", response, 0.1)
    assert got.message == "project nosuch not found"
    assert got.cause == client.CAUSE_PROJECT
    assert "does not exist" in _hint(got, "nosuch")


@pytest.mark.parametrize("name", ["challenge-anonymous", "challenge-repository"])
def test_without_credentials_harbor_challenges_with_its_token_realm(name: str) -> None:
    response = answer(name)
    scheme, params = client.parse_challenge(response.headers["WWW-Authenticate"]) or ("", {})
    assert scheme == "bearer"
    assert params["realm"] == REALM
    assert params["service"] == "harbor-registry"
    assert ("scope" in params) == (name == "challenge-repository")
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_the_realm_refusing_the_password_is_about_credentials() -> None:
    got = client._reply("GET token realm (no scope)", answer("token-refused"), 0.1)
    assert (got.status, got.code, got.message) == (401, None, "Unauthorized")
    assert got.cause == client.CAUSE_CREDENTIALS
    assert "refused the credentials" in _hint(got, "mlops")


def test_the_realm_token_is_read() -> None:
    body = answer("token-issued").body
    assert (body.get("token") or body.get("access_token")) == VALUES["token"]


def test_denied_is_a_role_not_a_password() -> None:
    got = reply("denied")
    assert (got.status, got.code, got.message) == (403, "DENIED", "requested access to the resource is denied")
    assert got.cause == client.CAUSE_ROLE
    assert "not a member of project 'mlops' with role Developer or higher" in _hint(got, "mlops")


def test_distribution_insufficient_scope_generation_is_a_role() -> None:
    response = answer("insufficient-scope", action="push")
    scheme, params = client.parse_challenge(response.headers["WWW-Authenticate"]) or ("", {})
    assert (scheme, params["error"]) == ("bearer", "insufficient_scope")
    got = client._reply("PUT manifest", response, 0.1)
    assert (got.message, got.action, got.challenge_error) == ("authentication required", "push", "insufficient_scope")
    assert got.cause == client.CAUSE_ROLE


def test_a_delete_refused_for_the_role_is_reported_with_who_can_delete() -> None:
    refused = reply("no-role", action="delete")
    removed = client.Delete(not_permitted=refused)
    assert removed.left_behind is not None
    assert "your role may not delete it (HTTP 401 UNAUTHORIZED: unauthorized to access" in removed.left_behind
    assert "Maintainer or ProjectAdmin" in removed.left_behind


def test_distribution_challenges_without_a_token_are_about_the_login() -> None:
    response = answer("distribution-challenge", scope_param=f',scope="{VALUES["scope"]}"', detail="null")
    scheme, params = client.parse_challenge(response.headers["WWW-Authenticate"]) or ("", {})
    assert (scheme, params["scope"]) == ("bearer", VALUES["scope"])
    got = client._reply("GET /v2/ (anonymous)", response, 0.1)
    assert (got.message, got.action, got.challenge_error) == ("authentication required", None, None)
    assert got.cause == client.CAUSE_CREDENTIALS  # once the client has no usable token, it is the login
