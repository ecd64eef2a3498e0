"""The Kubernetes and OIDC contract transcripts, replayed through conformance/clients/kubernetes.py's parsers.

Each transcript is what the real service answers (its source is named in the YAML); the simulators
answer from the same transcripts, so a parser that misreads the real answer fails here.
"""

from __future__ import annotations

import json
import string
from typing import Any

from conformance.clients import kubernetes as kube
from conformance.sandbox import contracts

VALUES = {
    "issuer": "https://app.run.ai/auth/realms/acme",
    "access_token": "access",
    "refresh_token": "rotated-refresh",
    "id_token": "header.payload.signature",
    "session": "0f1e",
    "rv": "4711",
    "job": "conformance-abc",
    "event_id": "17b0c5d3a4e2f1a0",
    "namespace": "runai-acme",
    "event_uid": "e-uid",
    "time": "2026-12-01T10:00:00Z",
    "job_uid": "job-uid",
    "job_rv": "4710",
    "pod": "conformance-abc-x7k2p",
    "quota": "compute-resources",
    "token": "plugin-token",
    "expires": "2099-01-01T00:00:00Z",
}


def rendered(service: str, name: str) -> tuple[contracts.Transcript, str]:
    transcript = contracts.get(service, name)
    text = transcript.http.body if transcript.http else transcript.cli.stdout  # type: ignore[union-attr] # one is set
    names = {part[1] for part in string.Formatter().parse(text) if part[1]}
    return transcript, transcript.render(text, **{key: VALUES[key] for key in names})


def test_discovery_names_the_token_endpoint() -> None:
    transcript, body = rendered("oidc", "discovery")
    assert transcript.http is not None
    endpoint, problem = kube.parse_discovery(transcript.http.status, body.encode())
    assert problem is None
    assert endpoint == "https://app.run.ai/auth/realms/acme/protocol/openid-connect/token"


def test_discovery_is_the_issuers_greeting_for_the_net_probe() -> None:
    """OpenID Connect Discovery 1.0 4.3: the document names, as its issuer, the issuer it was fetched under."""
    from conformance.clients.network import DISCOVERY, discovery_problem
    from conformance.profile import Endpoint

    transcript, body = rendered("oidc", "discovery")
    assert transcript.http is not None
    at = Endpoint(name="oidc-issuer", url=VALUES["issuer"] + DISCOVERY)
    assert discovery_problem(at, transcript.http.status, body.encode()) is None
    elsewhere = Endpoint(name="oidc-issuer", url="https://app.run.ai/auth/realms/other" + DISCOVERY)
    assert discovery_problem(elsewhere, transcript.http.status, body.encode()) == (
        "issuer 'https://app.run.ai/auth/realms/acme', not 'https://app.run.ai/auth/realms/other'"
    )


def test_refreshed_answer_gives_the_new_id_token_and_refresh_token() -> None:
    transcript, body = rendered("oidc", "token-refreshed")
    assert transcript.http is not None
    answer = kube.parse_token_response(transcript.http.status, body.encode())
    assert answer.problem is None
    assert answer.id_token == VALUES["id_token"]
    assert answer.refresh_token == VALUES["refresh_token"]


def test_refused_refresh_is_the_login_ending() -> None:
    for name, description in (
        ("token-refresh-inactive", "Token is not active"),
        ("token-refresh-session-ended", "Session not active"),
    ):
        transcript, body = rendered("oidc", name)
        assert transcript.http is not None
        answer = kube.parse_token_response(transcript.http.status, body.encode())
        assert answer.refused
        assert answer.id_token is None
        assert answer.problem == f"invalid_grant: {description}"


def test_a_token_answer_without_id_token_is_refused_as_client_go_does() -> None:
    body = json.dumps({"access_token": "a", "token_type": "Bearer", "expires_in": 300}).encode()
    answer = kube.parse_token_response(200, body)
    assert answer.problem == "token response did not contain an id_token"
    assert not answer.refused


def _job(uid: str = "job-uid", status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "conformance-abc", "uid": uid}, "status": status or {}}


def test_quota_refusal_is_read_from_the_failedcreate_event() -> None:
    _, body = rendered("kubernetes", "events-failedcreate-quota")
    trace = kube.admission_trace(_job(), json.loads(body)["items"])
    assert trace is not None
    assert trace.startswith("FailedCreate event from job-controller: Error creating: ")
    assert 'pods "conformance-abc-x7k2p" is forbidden: exceeded quota: compute-resources' in trace
    assert "ResourceQuota" in kube.admission_hint(trace)
    assert kube.admission_trace(_job(uid="another-job"), json.loads(body)["items"]) is None


def test_pod_security_refusal_is_read_from_the_failedcreate_event() -> None:
    _, body = rendered("kubernetes", "events-failedcreate-podsecurity")
    trace = kube.admission_trace(_job(), json.loads(body)["items"])
    assert trace is not None
    assert 'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in trace
    assert "Pod Security" in kube.admission_hint(trace)


def test_failed_condition_is_read_from_the_job() -> None:
    _, body = rendered("kubernetes", "job-failed-backoff")
    trace = kube.admission_trace(_job(status=json.loads(body)), [])
    assert trace == "Job condition Failed (BackoffLimitExceeded): Job has reached the specified backoff limit"


def test_exec_credential_with_a_token_is_accepted() -> None:
    _, stdout = rendered("kubernetes", "exec-credential-token")
    status, problem = kube.parse_exec_credential(stdout, "client.authentication.k8s.io/v1beta1")
    assert problem is None
    assert status is not None
    assert status["token"] == VALUES["token"]
    status, problem = kube.parse_exec_credential(stdout, "client.authentication.k8s.io/v1")
    assert status is None
    assert problem == (
        "exec plugin is configured to use API version client.authentication.k8s.io/v1, "
        "plugin returned version client.authentication.k8s.io/v1beta1"
    )


def test_exec_output_that_is_no_execcredential_is_refused() -> None:
    transcript, stdout = rendered("kubernetes", "exec-credential-not-json")
    assert transcript.cli is not None
    assert transcript.cli.exit == 0  # exits 0: only the output shows that nothing usable came back
    status, problem = kube.parse_exec_credential(stdout, "client.authentication.k8s.io/v1beta1")
    assert status is None
    assert problem is not None
    assert problem.startswith("decoding stdout: not an ExecCredential")
    _, stdout = rendered("kubernetes", "exec-credential-no-status")
    assert kube.parse_exec_credential(stdout, "client.authentication.k8s.io/v1beta1") == (
        None,
        "exec plugin didn't return a status field",
    )


# --------------------------------------------------------------------------- serving (SRV)


SERVING_VALUES = {"rs": "conformance-abc-serve-7d4b9c8f6d", "replicas": 1, "ready": 1, "time": VALUES["time"]}


def test_available_deployment_is_ready() -> None:
    body = contracts.get("kubernetes", "deployment-status-available")
    status = json.loads(body.render(body.http.body, **SERVING_VALUES))  # type: ignore[union-attr] # http
    deployment = {"spec": {"replicas": 1}, "status": status}
    assert kube.deployment_ready(deployment)
    unavailable = contracts.get("kubernetes", "deployment-status-unavailable")
    status = json.loads(unavailable.render(unavailable.http.body, **{**SERVING_VALUES, "ready": 0}))  # type: ignore[union-attr] # http
    deployment = {"spec": {"replicas": 1}, "status": status}
    assert not kube.deployment_ready(deployment)
    trace = kube.deployment_trace(deployment, [], [])
    assert trace.startswith("replicas=1 ready=0 available=0")
    assert "condition Available=False (MinimumReplicasUnavailable)" in trace


def test_image_pull_backoff_is_quoted_from_the_pod() -> None:
    transcript = contracts.get("kubernetes", "pod-status-imagepullbackoff")
    image = "registry.example.org/mlops/conformance-suite:0.1.0"
    status = json.loads(transcript.render(transcript.http.body, time=VALUES["time"], container="serve", image=image))  # type: ignore[union-attr] # http
    waiting = kube.pod_waiting({"status": status})
    assert waiting == f'container serve waiting (ImagePullBackOff): Back-off pulling image "{image}"'
    trace = kube.deployment_trace({"spec": {"replicas": 1}, "status": {}}, [{"status": status}], [])
    assert "cannot pull serving.image" in kube.serving_hint(trace)


def test_replicaset_quota_refusal_is_read_from_its_event() -> None:
    _, body = rendered("kubernetes", "events-failedcreate-replicaset-quota")
    events = json.loads(body)["items"]
    assert events[0]["involvedObject"]["kind"] == "ReplicaSet"
    trace = kube.deployment_trace({"spec": {"replicas": 1}, "status": {}}, [], events)
    assert "FailedCreate event from replicaset-controller: Error creating: pods" in trace
    assert "exceeded quota: compute-resources" in trace
    assert "ResourceQuota" in kube.serving_hint(trace)


def test_service_proxy_errors_are_the_api_servers_status() -> None:
    for name, values, message in (
        ("service-proxy-no-endpoints", {"service": "svc"}, 'no endpoints available for service "svc"'),
        (
            "service-proxy-no-port",
            {"service": "svc", "port": '\\"http\\"'},  # %q of a port name, as it sits in the JSON
            'no service port "http" found for service "svc"',
        ),
        (
            "service-proxy-unreachable",
            {"address": "10.42.0.17:8080", "reason": "i/o timeout"},
            "error trying to reach service: dial tcp 10.42.0.17:8080: i/o timeout",
        ),
    ):
        transcript = contracts.get("kubernetes", name)
        assert transcript.http is not None
        answer = kube.ProxyAnswer(transcript.http.status, transcript.render(transcript.http.body, **values).encode())
        assert answer.summary() == f"HTTP 503 from the API server: {message}", name
