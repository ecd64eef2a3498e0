"""SRV: can this project serve a model the way the guide's Model Serving stage does?

A Deployment and a Service of the suite's own image (``serving.image``) run a tiny FastAPI model
server (``conformance/probes/serve.py``) in the project's namespace; the workspace reaches it
through the API server's service proxy (``/api/v1/namespaces/NS/services/NAME:http/proxy/...``,
what ``kubectl proxy`` and ``kubectl port-forward`` users rely on) and asks it for a prediction.
Everything is named ``conformance-<run id>-serve``, labelled as the suite's, removed by SRV-003
and again in teardown, and swept by ``conformance cleanup``. On Run:ai too it is a plain
Deployment (see ``conformance/clients/serving.py``). Needs the kubernetes section's kubeconfig.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance.checks import CannotEvaluate, check, expect, wait_for
from conformance.clients import kubernetes as kube_client  # its SDK loads when the fixture connects
from conformance.clients.kubernetes import Failure, ProxyAnswer
from conformance.clients.serving import ServingClient
from conformance.probes import serve
from conformance.profile import Profile

RBAC_HINT = (
    "your user has no RoleBinding in this namespace for it (create deployments.apps, services,"
    " services/proxy); ask the platform team (Run:ai: project membership)"
)
INSTANCES = [[1.0, 2.0], [3.0, -1.0]]  # the probe's model answers serve.predict(INSTANCES)
App = tuple[str, list[str], Failure | None]  # the probe's name, the kinds created, why creating failed
_STUCK = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError")


@pytest.fixture(scope="session")
def serving_app(serving: ServingClient) -> Iterator[App]:
    """The run's Deployment and Service, created once; (name, kinds created, failure); removed in teardown."""
    name = serving.name
    created, failure = kube_client.create_serving(serving.kube, name, serving.section.image)
    yield name, created, failure
    if created:
        kube_client.delete_serving(serving.kube, name)  # after SRV-003: only a 404 each, ignored


@pytest.fixture
def serving_created(serving_app: App) -> tuple[str, list[str]]:
    """What of the probe this run created; nothing created leaves SRV-003 nothing to evaluate."""
    name, created, _ = serving_app
    if not created:
        raise CannotEvaluate(f"nothing of {name} was created, so nothing to remove")
    return name, created


def _state(serving: ServingClient, name: str) -> tuple[bool, str]:
    """(done, what the cluster says): done when available or when the cluster says why it will not be."""
    deployment, failure = kube_client.read_deployment(serving.kube, name)
    if failure is not None or deployment is None:
        summary = failure.summary() if failure else "no answer"
        return bool(failure and failure.status not in (0, 429) and failure.status < 500), f"deployment: {summary}"
    if kube_client.deployment_ready(deployment):
        return True, "available"
    pods, _ = kube_client.serving_pods(serving.kube, name)
    events: list[dict[str, Any]] = []
    if not pods:  # the replicaset controller could not create a pod: it says why in an event
        events, _ = kube_client.replicaset_events(serving.kube, name)
    trace = kube_client.deployment_trace(deployment, pods, events)
    return any(mark in trace for mark in (*_STUCK, "FailedCreate")), f"Deployment {name}: {trace}"


@pytest.mark.writes
@check(
    "SRV-001",
    """
    The serving probe's Deployment did not become available: the message quotes the cluster. 403: you may
    not create Deployments or Services in the namespace (ask for the role). ImagePullBackOff: push the suite's
    image to the platform's registry and set serving.image to it (the namespace's imagePullSecrets must
    cover that registry). CrashLoopBackOff: the image is not the suite's, or its entrypoint changed; read
    the pod's log. A FailedCreate event: the namespace's ResourceQuota or Pod Security refuses the pod.
    """,
)
def test_deployment_available(
    serving: ServingClient, serving_app: App, profile: Profile, evidence: dict[str, Any]
) -> None:
    name, created, failure = serving_app
    evidence.update({"deployment": name, "namespace": serving.namespace, "image": serving.section.image})
    expect(
        failure is None,
        expected=f"Deployment and Service {name} ({serving.section.image}) are accepted in {serving.namespace}",
        actual=f"{'created ' + ', '.join(created) + '; ' if created else ''}{failure.summary() if failure else ''}",
        hint=RBAC_HINT if failure and failure.status == 403 else None,
    )
    state = wait_for(lambda: _state(serving, name), timeout=profile.timeouts.check, describe=f"Deployment {name}")
    evidence["state"] = state
    if state != "available":
        pods, _ = kube_client.serving_pods(serving.kube, name)
        if pods:
            log, _ = serving.kube.pod_log(pods[0]["metadata"]["name"])
            evidence["log_tail"] = (log or "").strip().splitlines()[-5:]
    expect(
        state == "available",
        expected=f"Deployment {name} has 1 available replica (its pod ready)",
        actual=state,
        hint=kube_client.serving_hint(state),
    )


@pytest.mark.writes
@check(
    "SRV-002",
    """
    The serving probe runs but did not answer a prediction through the API server's service proxy.
    HTTP 403: you may not use services/proxy (ask for the role, or use `kubectl port-forward`). 503 "error
    trying to reach service" or no answer in time: a NetworkPolicy in the namespace drops the API server's
    traffic to pods, or the app hangs (read its log). A wrong answer: another app answers on the Service's
    port, or serving.image is not the suite's version.
    """,
)
def test_prediction_through_service_proxy(
    serving: ServingClient, serving_app: App, profile: Profile, evidence: dict[str, Any]
) -> None:
    name, _, failure = serving_app
    if failure is not None:
        raise CannotEvaluate(f"Deployment or Service {name} was not created: {failure.summary()}")
    path = f"/api/v1/namespaces/{serving.namespace}/services/{name}:{kube_client.SERVE_PORT_NAME}/proxy/predict"
    wanted = serve.predict(INSTANCES)

    def ask() -> tuple[bool, ProxyAnswer]:
        answer = kube_client.proxy_post(serving.kube, name, "predict", {"instances": INSTANCES})
        body = answer.json()
        transient = answer.failure is None and answer.status == 503 and isinstance(body, dict)
        transient = transient and body.get("kind") == "Status" and "no endpoints available" in str(body.get("message"))
        return not transient, answer

    answer = wait_for(ask, timeout=profile.timeouts.check, describe=f"POST {path}")
    body = answer.json()
    found = body.get("predictions") if isinstance(body, dict) else None
    evidence.update({"proxy_path": path, "request": {"instances": INSTANCES}, "status": answer.status})
    evidence.update({"answer": body if isinstance(body, dict) else answer.summary(), "expected": wanted})
    if answer.failure is not None:
        hint = "the app accepted the request and never answered: read its log; a NetworkPolicy dropping the API server's traffic looks alike"  # noqa: E501 - one hint
    elif answer.status == 403:
        hint = RBAC_HINT
    elif answer.status == 503:
        hint = "the API server cannot reach the pod: a NetworkPolicy in the namespace, or the pod is not ready"
    else:
        hint = "another app answers on the Service's port, or serving.image is not the suite's version"
    expect(
        answer.failure is None and answer.status == 200 and found == wanted,
        expected=f"POST {path} answers {serve.MODEL}'s predictions {wanted}",
        actual=answer.summary() if found is None else f"HTTP {answer.status}: predictions {found}",
        hint=hint,
    )


@pytest.mark.writes
@check(
    "SRV-003",
    """
    The serving probe could not be removed: delete it by hand (`kubectl delete deploy,svc <name>` in the
    namespace) or with `python -m conformance cleanup`; a 403 means you may create but not delete, which
    leaves every run's probe behind: ask for the delete permission.
    """,
)
def test_serving_removed(
    serving: ServingClient, serving_created: tuple[str, list[str]], profile: Profile, evidence: dict[str, Any]
) -> None:
    name, created = serving_created
    problems = kube_client.delete_serving(serving.kube, name)
    evidence.update({"deleted": created, "namespace": serving.namespace, "problems": problems})
    expect(
        not problems,
        expected=f"{' and '.join(created)} {name} are deleted",
        actual="; ".join(problems),
        hint=(
            "you may create but not delete them, so every run leaves its probe behind: ask for the delete"
            " permission; remove this one with `kubectl delete deploy,svc <name>` or `python -m conformance cleanup`"
        )
        if any("403" in p for p in problems)
        else "remove it with `python -m conformance cleanup` once the API server answers",
    )

    def gone() -> tuple[bool, str]:
        left, failure = kube_client.serving_left(serving.kube, name)
        if failure is not None:
            return failure.status not in (0, 429) and failure.status < 500, failure.summary()
        return not left, f"still there: {', '.join(left)}" if left else "gone"

    state = wait_for(gone, timeout=profile.timeouts.check, describe=f"{name} removed")
    evidence["state"] = state
    expect(state == "gone", expected=f"no Deployment, Service or pod {name} is left", actual=state)
