"""The sandbox's kubelet (conformance/sandbox/pods.py): pods of the suite's image run as real processes."""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.sandbox import Sandbox, pods

SUITE_IMAGE = "registry.example.org/mlops/conformance-suite:0.1.0"


def test_suite_image_is_recognised_by_repository_name() -> None:
    assert pods.is_suite_image(SUITE_IMAGE)
    assert pods.is_suite_image("localhost:5000/conformance-suite")
    assert pods.is_suite_image("harbor.example/p/conformance-suite@sha256:" + "a" * 64)
    assert not pods.is_suite_image("alpine:3.20")
    assert not pods.is_suite_image("registry.example.org/conformance-suite-extras:1")
    assert not pods.is_suite_image("registry.example.org/conformance-suite/other:1")


def pod(name: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": SUITE_IMAGE, **container}], **spec},
    }


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[pods.Runtime]:
    objects = {
        ("secrets", "ns", "creds"): {"kind": "Secret", "data": {"user": base64.b64encode(b"alice").decode()}},
        ("configmaps", "ns", "settings"): {"kind": "ConfigMap", "data": {"mode": "fast", "app.yaml": "a: 1\n"}},
    }
    found = pods.Runtime(tmp_path / "kubelet", lambda kind, ns, name: objects.get((kind, ns, name)))
    yield found
    found.stop()


def test_env_volumes_and_working_dir_are_mapped(runtime: pods.Runtime) -> None:
    script = (
        "import os, pathlib;"
        "print(os.environ['USER_NAME'], os.environ['MODE'], os.environ['CFG_mode'], os.environ['POD']);"
        "print(pathlib.Path('/etc/app/app.yaml').read_text().strip());"
        "pathlib.Path('/data/out.txt').write_text('kept');"
        "print(pathlib.Path.cwd().name)"
    )
    spec = pod(
        "p1",
        {
            "command": ["python", "-c", script],
            "workingDir": "/data/sub",
            "env": [
                {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/app"}],
        },
        volumes=[
            {"name": "data", "persistentVolumeClaim": {"claimName": "shared"}},
            {"name": "cfg", "configMap": {"name": "settings"}},
        ],
    )
    local = runtime.start(spec)
    assert local.wait(30) == 0, local.log()
    assert local.phase == "Succeeded"
    assert local.log().split("\n")[:3] == ["alice fast fast p1", "a: 1", "sub"]
    assert (pods.pvc_dir(runtime.root, "ns", "shared") / "out.txt").read_text() == "kept"
    terminated = local.container_status()["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")


def test_default_entrypoint_is_the_images_pytest(runtime: pods.Runtime) -> None:
    local = runtime.start(pod("p2", {"args": ["--version"]}))
    assert local.wait(60) == 0, local.log()
    assert "pytest" in local.log()


def test_missing_secret_key_is_a_config_error_and_failures_keep_their_exit_code(runtime: pods.Runtime) -> None:
    missing = pod("p3", {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}}]})
    local = runtime.start(missing)
    assert local.phase == "Pending"
    waiting = local.container_status()["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {"reason": "CreateContainerConfigError", "message": "couldn't find key nope in Secret ns/creds"}
    failing = runtime.start(pod("p4", {"command": ["/bin/sh", "-c", "echo boom; exit 3"]}))
    assert failing.wait(30) == 3
    assert failing.phase == "Failed"
    assert failing.log() == "boom\n"


def test_a_serving_pod_restarts_into_crash_loop_and_is_stopped_on_delete(runtime: pods.Runtime) -> None:
    crash = runtime.start(pod("p5", {"command": ["python", "-c", "raise SystemExit(2)"]}, restartPolicy="Always"))
    crash.wait(30)
    status = crash.container_status()
    assert status["phase"] == "Running"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 2
    server = (
        "import http.server as h, os;"
        "h.HTTPServer((os.environ['HOST'], int(os.environ['PORT'])), h.BaseHTTPRequestHandler).serve_forever()"
    )
    serving = runtime.start(pod("p6", {"command": ["python", "-c", server], "ports": [{"containerPort": 8080}]}))
    deadline = time.monotonic() + 30
    while not serving.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    assert serving.ready, serving.log()
    runtime.delete("ns", "p6")
    assert serving.exit_code is not None
    assert runtime.get("ns", "p6") is None


def test_deadline_bounds_the_process(runtime: pods.Runtime) -> None:
    sleeper = {"command": ["python", "-c", "import time; time.sleep(60)"]}
    local = runtime.start(pod("p7", sleeper, activeDeadlineSeconds=1))
    assert local.wait(20) is not None
    terminated = local.container_status()["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "DeadlineExceeded"
    assert local.phase == "Failed"


# --------------------------------------------------------------------------- through the API server


@pytest.fixture(scope="module")
def kube_sandbox() -> Iterator[dict[str, str]]:
    sandbox = Sandbox().start(("kubernetes",))
    try:
        yield dict(sandbox.env)
    finally:
        sandbox.stop()


def call(env: dict[str, str], method: str, path: str, body: Any = None) -> tuple[int, Any]:
    context = ssl.create_default_context(cafile=env["SANDBOX_CA_BUNDLE"])
    request = urllib.request.Request(  # noqa: S310 - the sandbox's https URL
        env["SANDBOX_K8S_SERVER"] + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {env['SANDBOX_K8S_TOKEN']}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310 - same
            text = response.read().decode()
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        text, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def job(name: str, command: list[str]) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": SUITE_IMAGE,
        "command": command,
        "env": [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": "accessKeyId"}}}],
        "volumeMounts": [{"name": "pvc", "mountPath": "/pvc"}],
    }
    volumes = [{"name": "pvc", "persistentVolumeClaim": {"claimName": "conformance-pvc"}}]
    template = {"spec": {"restartPolicy": "Never", "containers": [container], "volumes": volumes}}
    return {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": template}}


def wait_job(env: dict[str, str], ns: str, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        _, found = call(env, "GET", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}")
        if found["status"].get("succeeded") or found["status"].get("failed") or time.monotonic() > deadline:
            return dict(found)
        time.sleep(0.1)


def test_a_job_of_the_suite_image_runs_for_real(kube_sandbox: dict[str, str]) -> None:
    env, ns = kube_sandbox, kube_sandbox["SANDBOX_K8S_NAMESPACE"]
    script = "import os, pathlib; pathlib.Path('/pvc/result.json').write_text('{}');print('key', len(os.getenv('KEY')))"
    status, _ = call(env, "POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job("real-ok", ["python3", "-c", script]))
    assert status == 201
    found = wait_job(env, ns, "real-ok")
    assert found["status"]["succeeded"] == 1
    assert found["status"]["conditions"][0]["type"] == "Complete"
    _, listed = call(env, "GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3Dreal-ok")
    (pod_obj,) = listed["items"]
    assert pod_obj["status"]["phase"] == "Succeeded"
    _, log = call(env, "GET", f"/api/v1/namespaces/{ns}/pods/{pod_obj['metadata']['name']}/log")
    assert log == "key 16\n"  # the Secret's value reached the process (token_urlsafe(12): 16 characters)
    assert (pods.pvc_dir(Path(env["SANDBOX_DIR"]) / "kubelet", ns, "conformance-pvc") / "result.json").is_file()


def test_a_failing_job_fails_as_the_controller_says_and_delete_stops_it(kube_sandbox: dict[str, str]) -> None:
    env, ns = kube_sandbox, kube_sandbox["SANDBOX_K8S_NAMESPACE"]
    call(env, "POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job("real-bad", ["python", "-c", "raise SystemExit(7)"]))
    found = wait_job(env, ns, "real-bad")
    assert found["status"]["failed"] == 1
    assert found["status"]["conditions"][0]["reason"] == "BackoffLimitExceeded"
    _, listed = call(env, "GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3Dreal-bad")
    terminated = listed["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 7
    call(env, "POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job("real-long", ["python", "-c", "input()"]))
    _, listed = call(env, "GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3Dreal-long")
    name = listed["items"][0]["metadata"]["name"]
    assert listed["items"][0]["status"]["phase"] == "Running"
    status, _ = call(env, "DELETE", f"/apis/batch/v1/namespaces/{ns}/jobs/real-long")
    assert status == 200
    status, _ = call(env, "GET", f"/api/v1/namespaces/{ns}/pods/{name}")
    assert status == 404


def test_configmaps_are_created_read_and_deleted(kube_sandbox: dict[str, str]) -> None:
    env, ns = kube_sandbox, kube_sandbox["SANDBOX_K8S_NAMESPACE"]
    body = {"metadata": {"name": "profile-cm"}, "data": {"p.yaml": "platform: onprem\n"}}
    assert call(env, "POST", f"/api/v1/namespaces/{ns}/configmaps", body)[0] == 201
    assert call(env, "POST", f"/api/v1/namespaces/{ns}/configmaps", body)[0] == 409
    status, found = call(env, "GET", f"/api/v1/namespaces/{ns}/configmaps/profile-cm")
    assert (status, found["data"]) == (200, body["data"])
    assert call(env, "DELETE", f"/api/v1/namespaces/{ns}/configmaps/profile-cm")[0] == 200
    assert call(env, "GET", f"/api/v1/namespaces/{ns}/configmaps/profile-cm")[0] == 404


def test_other_images_keep_the_echo_simulation(kube_sandbox: dict[str, str]) -> None:
    env, ns = kube_sandbox, kube_sandbox["SANDBOX_K8S_NAMESPACE"]
    body = job("echo-only", ["/bin/sh", "-c", "echo hi"])
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "alpine:3.20"
    del body["spec"]["template"]["spec"]["containers"][0]["env"]
    call(env, "POST", f"/apis/batch/v1/namespaces/{ns}/jobs", body)
    assert wait_job(env, ns, "echo-only")["status"]["succeeded"] == 1
    _, listed = call(env, "GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3Decho-only")
    name = listed["items"][0]["metadata"]["name"]
    assert call(env, "GET", f"/api/v1/namespaces/{ns}/pods/{name}/log")[1] == "hi\n"
    assert Path(kube_sandbox["SANDBOX_DIR"], "kubelet", "pods", ns, name).exists() is False
