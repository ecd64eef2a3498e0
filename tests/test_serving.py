"""SRV checks against the sandbox: the probe app really runs (conformance/sandbox/pods.py) and each fault is its own."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any

from conformance.probes import serve
from tests.test_kubernetes import kube_profile, message

SRV_IDS = ["SRV-001", "SRV-002", "SRV-003"]
OTHER_IMAGE = "registry.example.org/mlops/model-server:1.0"


def serving_profile(
    directory: Path,
    *,
    namespace: str = "${SANDBOX_K8S_NAMESPACE}",
    kubeconfig: str = "${SANDBOX_KUBECONFIG}",
    image: str | None = None,
) -> Path:
    more = ("serving:", f"  image: '{image}'") if image else ()
    where = {"kubeconfig": kubeconfig, "namespace": namespace}
    return kube_profile(directory, **where, secrets="[s3-credentials]", name="serving.yaml", more=more)


def left_in(env: dict[str, str], namespace: str) -> list[str]:
    """Names of the suite's Deployments, Services and serving pods still in ``namespace`` (read with the token)."""
    context = ssl.create_default_context(cafile=env["SANDBOX_CA_BUNDLE"])
    found = []
    for path in ("apis/apps/v1/namespaces/{ns}/deployments", "api/v1/namespaces/{ns}/services"):
        request = urllib.request.Request(  # noqa: S310 - the sandbox's https URL
            f"{env['SANDBOX_K8S_SERVER']}/{path.format(ns=namespace)}?labelSelector=app.kubernetes.io%2Fcreated-by%3Dconformance-suite",
            headers={"Authorization": f"Bearer {env['SANDBOX_K8S_TOKEN']}"},
        )
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310 - same
            found += [item["metadata"]["name"] for item in json.loads(response.read())["items"]]
    return [name for name in found if name.endswith("-serve")]


def test_all_pass_the_app_answers_and_nothing_is_left(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    run = suite("-m", "serving", profile=serving_profile(tmp_path))
    for check_id in SRV_IDS:
        assert run.check(check_id)["outcome"] == "passed", (check_id, message(run, check_id), run.output[-3000:])
    evidence = run.check("SRV-002")["evidence"]
    assert serve.predict([[1.0, 2.0], [3.0, -1.0]]) == [0.5, 7.5]
    assert "[0.5, 7.5]" in str(evidence["answer"])
    assert serve.MODEL in str(evidence["answer"])
    assert evidence["proxy_path"].endswith("-serve:http/proxy/predict")
    assert run.check("SRV-001")["evidence"]["state"] == "available"
    assert run.check("SRV-003")["evidence"]["state"] == "gone"
    name = run.check("SRV-001")["evidence"]["deployment"]
    assert name not in left_in(sandbox_env, sandbox_env["SANDBOX_K8S_NAMESPACE"])


def test_an_image_that_never_starts(suite: Any, tmp_path: Path) -> None:
    run = suite("-m", "serving", profile=serving_profile(tmp_path, image=OTHER_IMAGE))
    assert run.check("SRV-001")["outcome"] == "failed"
    text = message(run, "SRV-001")
    assert "container serve waiting (ImagePullBackOff)" in text
    assert f'Back-off pulling image "{OTHER_IMAGE}"' in text
    assert "push the suite's image to the platform's registry" in text
    assert run.check("SRV-002")["blocked_by"] == "SRV-001"
    assert run.check("SRV-003")["outcome"] == "passed"


def test_an_app_that_crashes_at_start(suite: Any, tmp_path: Path) -> None:
    run = suite("-m", "serving", profile=serving_profile(tmp_path, namespace="${SANDBOX_K8S_SERVE_CRASH_NAMESPACE}"))
    assert run.check("SRV-001")["outcome"] == "failed"
    text = message(run, "SRV-001")
    assert "container serve waiting (CrashLoopBackOff)" in text
    assert "last exited with code 1" in text
    assert "CONFORMANCE_PROBE_FAULT=crash" in str(run.check("SRV-001")["evidence"]["log_tail"])
    assert run.check("SRV-003")["outcome"] == "passed"


def test_pods_refused_by_the_quota(suite: Any, tmp_path: Path) -> None:
    run = suite("-m", "serving", profile=serving_profile(tmp_path, namespace="${SANDBOX_K8S_QUOTA_NAMESPACE}"))
    assert run.check("SRV-001")["outcome"] == "failed"
    text = message(run, "SRV-001")
    assert "FailedCreate event from replicaset-controller: Error creating: pods" in text
    assert "exceeded quota: compute-resources" in text
    assert "ResourceQuota" in text  # the hint, read from the cluster's words


def test_an_app_that_never_answers(suite: Any, tmp_path: Path) -> None:
    run = suite("-m", "serving", profile=serving_profile(tmp_path, namespace="${SANDBOX_K8S_SERVE_HANG_NAMESPACE}"))
    assert run.check("SRV-001")["outcome"] == "passed"
    assert run.check("SRV-002")["outcome"] == "failed"
    text = message(run, "SRV-002")
    assert "no answer in time" in text
    assert "never answered" in text
    assert run.check("SRV-003")["outcome"] == "passed"


def test_an_app_that_answers_wrongly(suite: Any, tmp_path: Path) -> None:
    run = suite("-m", "serving", profile=serving_profile(tmp_path, namespace="${SANDBOX_K8S_SERVE_WRONG_NAMESPACE}"))
    assert run.check("SRV-002")["outcome"] == "failed"
    text = message(run, "SRV-002")
    assert "predictions [0.5, 7.5]" in text
    assert "HTTP 200: predictions [1.5, 8.5]" in text
    assert "another app answers on the Service's port" in text


def test_a_role_that_may_not_create_or_delete(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    readonly = suite("-m", "serving", profile=serving_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_READONLY}"))
    assert readonly.check("SRV-001")["outcome"] == "failed"
    assert 'cannot create resource "deployments" in API group "apps"' in message(readonly, "SRV-001")
    assert "RoleBinding" in message(readonly, "SRV-001")
    assert readonly.check("SRV-003")["outcome"] == "error"  # nothing was created
    # May create but not delete (an image that never starts: no process is left running).
    profile = serving_profile(tmp_path, kubeconfig="${SANDBOX_KUBECONFIG_NODELETE}", image=OTHER_IMAGE)
    run = suite("-m", "serving", profile=profile)
    assert run.check("SRV-003")["outcome"] == "failed"
    text = message(run, "SRV-003")
    assert 'cannot delete resource "services"' in text
    assert 'cannot delete resource "deployments"' in text
    assert "conformance cleanup" in text
    left = run.check("SRV-001")["evidence"]["deployment"]
    assert left in left_in(sandbox_env, sandbox_env["SANDBOX_K8S_NAMESPACE"])
