"""WSP checks: each passes on the sandbox's workspace and fails for its own fault, locally and through kubectl."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conformance.clients import workspace as client
from conformance.profile import Profile
from conformance.sandbox.workspace import FAKES, write_tool
from conformance.session import open_profile
from tests.conftest import REPO, SuiteRun, write_profile

MODULE = "conformance/components/test_workspace.py"
CANARY = "canary-ssh-key-material-5f1c9e"
GIB = 1024**3

# A kubectl stand-in (feasibility section 7): logs its argv, then runs the command after "--" here,
# with its own folder taken off PATH so that a kubectl inside the "pod" is the real one.
KUBECTL_SHIM = """log="$(dirname "$0")/kubectl.log"
echo "$*" >> "$log"
pod=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in exec) shift; pod="$1" ;; esac
  shift
done
shift
if [ "$pod" = "missing-pod" ]; then
  echo "Error from server (NotFound): pods \\"missing-pod\\" not found" >&2; exit 1
fi
PATH=$(printf %s "$PATH" | tr ':' '\\n' | grep -vx "$(dirname "$0")" | paste -sd: -)
exec "$@"
"""


def _profile(directory: Path, workspace_yaml: str, name: str = "profile.yaml") -> Path:
    base = REPO / "profiles" / "sandbox.yaml"
    return write_profile(directory, f"extends: {base}\nworkspace:\n{workspace_yaml}", name)


def _cgroup(directory: Path, limit: str) -> Path:
    directory.mkdir()
    (directory / "memory.max").write_text(f"{limit}\n")
    return directory


def _home(directory: Path, key_mode: int) -> Path:
    ssh = directory / ".ssh"
    ssh.mkdir(parents=True)
    key = ssh / "id_ed25519"
    key.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{CANARY}\n-----END OPENSSH PRIVATE KEY-----\n")
    key.chmod(key_mode)
    (ssh / "id_ed25519.pub").write_text("ssh-ed25519 AAAA conformance\n")
    return directory


def _no_canary(run: SuiteRun) -> None:
    assert CANARY not in run.output
    for name, text in run.artifact_texts().items():
        assert CANARY not in text, name


# --------------------------------------------------------------------------- unit


def test_cgroup_and_meminfo_parsing() -> None:
    assert client.parse_cgroup_limit("max\n") is None
    assert client.parse_cgroup_limit("4294967296\n") == 4 * GIB
    with pytest.raises(ValueError, match="not a byte count"):
        client.parse_cgroup_limit("lots")
    assert client.parse_meminfo("MemFree: 1 kB\nMemTotal:  2048 kB\n") == 2048 * 1024
    assert client.parse_cgroup_paths("0::/user.slice\n") == ("/user.slice", None)
    assert client.parse_cgroup_paths("4:memory:/docker/abc\n0::/\n") == ("/", "/docker/abc")
    assert client.cgroup_memory_files("/sys/fs/cgroup", "/a", "/b") == [
        "/sys/fs/cgroup/a/memory.max",
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/b/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    # cgroup v1 "unlimited" (2**63 rounded to a page) means: the host's memory.
    unlimited = client.MemoryLimit(9223372036854771712, "v1", 16 * GIB)
    assert unlimited.effective == 16 * GIB
    assert client.MemoryLimit(2 * GIB, "v2", 16 * GIB).effective == 2 * GIB
    assert client.MemoryLimit(None, "none", 8 * GIB).effective == 8 * GIB


def test_versions_and_identity_files() -> None:
    aws = client.spec_of("aws")
    assert client.parse_version(aws, "aws-cli/2.17.20 Python/3.11.9 Linux/6.8 exe/x86_64") == "2.17.20"
    assert client.parse_version(client.spec_of("kubectl"), "Client Version: v1.30.2\n") == "1.30.2"
    assert client.parse_version(client.spec_of("gcloud"), "Google Cloud SDK 470.0.0\n") == "470.0.0"
    config = "Host gitlab\n  IdentityFile ~/.ssh/gitlab_key\n  IdentityFile=%d/.ssh/id_%r\nIdentityFile /k\n"
    assert client.identity_files(config) == ["~/.ssh/gitlab_key", "/k"]


@pytest.mark.parametrize(
    ("platform", "orchestrator", "required"),
    [
        ("onprem", "runai", ["git", "python", "conda", "kubectl", "runai", "aws"]),
        ("gcp", "runai", ["git", "python", "conda", "kubectl", "runai", "gcloud"]),
        ("gcp", "noorch", ["git", "python", "conda", "gcloud", "docker"]),
    ],
)
def test_expected_tools_follow_the_guide(platform: str, orchestrator: str, required: list[str]) -> None:
    profile = Profile.model_validate({"platform": platform, "orchestrator": orchestrator, "workspace": {}})
    tools = client.expected_tools(profile)
    assert [name for name, needed in tools if needed] == required
    assert ("docker", orchestrator == "noorch") in tools  # optional in Kubernetes workspaces (no daemon)
    override = profile.model_copy(update={"workspace": profile.workspace.model_copy(update={"tools": ["git"]})})  # type: ignore[union-attr] # set above
    assert client.expected_tools(override) == [("git", True), ("docker", False)]


# --------------------------------------------------------------------------- against the sandbox


def test_all_checks_pass_on_a_conforming_workspace(suite: Any, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    """GPU (simulated nvidia-smi), 8 GiB cgroup limit, private SSH key, AWS CLI v2 (simulated): all pass."""
    tools = tmp_path / "bin"
    tools.mkdir()
    write_tool(tools, "aws", 'echo "aws-cli/2.17.20 Python/3.11.9 Linux/6.8 exe/x86_64.ubuntu.24"\n')
    cgroup = _cgroup(tmp_path / "cgroup", str(8 * GIB))
    home = _home(tmp_path / "home", 0o600)
    profile = _profile(
        tmp_path,
        f"""  home: {home}
  pvc_mount: ${{SANDBOX_WORKSPACE_PVC}}
  workspace_uid: ${{SANDBOX_WORKSPACE_UID}}
  gpu: true
  cgroup_root: {cgroup}
  tool_paths:
    conda: ${{SANDBOX_WORKSPACE_TOOLS}}/conda
    nvidia-smi: ${{SANDBOX_WORKSPACE_TOOLS}}/nvidia-smi
    kubectl: ${{SANDBOX_WORKSPACE_KUBECTL}}
    aws: {tools}/aws
""",
    )
    run = suite(MODULE, profile=profile)
    for tool in ("git", "python", "conda", "kubectl", "runai", "aws"):
        record = run.check("WSP-001", tool)
        assert record["outcome"] == "passed", record
        assert record["evidence"]["version"], record
    assert "warning" not in run.check("WSP-001", "aws")["evidence"]
    for check_id in ("WSP-002", "WSP-003", "WSP-004", "WSP-005", "WSP-006", "WSP-007"):
        assert run.check(check_id)["outcome"] == "passed", run.check(check_id)
    assert run.check("WSP-005")["evidence"]["effective_gib"] == 8.0
    assert run.check("WSP-006")["evidence"]["gpus"] == ["GPU 0: NVIDIA A100-SXM4-40GB"]
    modes = run.check("WSP-007")["evidence"]["checked"]
    assert modes[f"{home}/.ssh/id_ed25519"] == "0600 (~/.ssh private key)"
    # Other tests share this PVC folder (the cleanup tests leave decoys there): look for this run's probe.
    probe = run.check("WSP-003")["evidence"]
    run_id = run.results["run_id"]
    workspaces = Path(sandbox_env["SANDBOX_WORKSPACE_PVC"]) / "workspaces"
    assert not [p for p in workspaces.iterdir() if run_id in p.name], f"probe left behind ({probe})"
    _no_canary(run)


def test_faults_fail_with_their_cause(suite: Any, tmp_path: Path) -> None:
    """Missing conda, broken runai, AWS CLI v1, no PVC, 2 GiB limit, nvidia-smi without a driver, key 0644."""
    tools = tmp_path / "bin"
    tools.mkdir()
    write_tool(tools, "aws", 'echo "aws-cli/1.33.9 Python/3.11.9 Linux/6.8 botocore/1.34.9" >&2\n')
    write_tool(tools, "runai", 'echo "runai: error while loading shared libraries" >&2; exit 127\n')
    write_tool(
        tools,
        "nvidia-smi",
        'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9\n',
    )
    cgroup = _cgroup(tmp_path / "cgroup", str(2 * GIB))
    home = _home(tmp_path / "home", 0o644)
    (tmp_path / "pvc-elsewhere").mkdir()
    profile = _profile(
        tmp_path,
        f"""  home: {home}
  pvc_mount: {tmp_path}/pvc-data
  workspace_uid: 2222
  gpu: true
  cgroup_root: {cgroup}
  tool_paths:
    conda: {tmp_path}/no-such-dir/conda
    runai: {tools}/runai
    aws: {tools}/aws
    nvidia-smi: {tools}/nvidia-smi
    kubectl: ${{SANDBOX_WORKSPACE_KUBECTL}}
""",
    )
    run = suite(MODULE, profile=profile)
    conda = run.check("WSP-001", "conda")
    assert conda["outcome"] == "failed"
    assert f"actual:   {tmp_path}/no-such-dir/conda not found" in conda["message"]
    assert "Miniconda" in conda["message"]
    runai = run.check("WSP-001", "runai")
    assert runai["outcome"] == "failed"
    assert "exited 127: runai: error while loading shared libraries" in runai["message"]
    aws = run.check("WSP-001", "aws")
    assert aws["outcome"] == "passed"  # the guide's aws s3 commands work on v1: a warning, not a failure
    assert aws["evidence"]["warning"] == "AWS CLI v1.33.9 found; the guide and the Coder image use AWS CLI v2"
    pvc = run.check("WSP-002")
    assert pvc["outcome"] == "failed"
    assert f"{tmp_path}/pvc-data does not exist or is not a directory" in pvc["message"]
    assert f"PVC-like folders in {tmp_path}: {tmp_path}/pvc-elsewhere" in pvc["message"]
    assert "the mount path differs between guides" in pvc["message"]
    for blocked in ("WSP-003", "WSP-004"):
        record = run.check(blocked)
        assert record["outcome"] == "error"
        assert record["blocked_by"] == "WSP-002"
    memory = run.check("WSP-005")
    assert memory["outcome"] == "failed"
    assert f"actual:   2.00 GiB (cgroup limit from {cgroup}/memory.max)" in memory["message"]
    assert "pip install will be OOM-killed" in memory["message"]
    gpu = run.check("WSP-006")
    assert gpu["outcome"] == "failed"
    assert "couldn't communicate with the NVIDIA driver" in gpu["message"]
    keys = run.check("WSP-007")
    assert keys["outcome"] == "failed"
    assert f"{home}/.ssh/id_ed25519 mode 0644 (~/.ssh private key)" in keys["message"]
    assert "id_ed25519.pub" not in keys["message"]
    _no_canary(run)


def test_unwritable_and_wrongly_owned_workspaces(suite: Any, tmp_path: Path) -> None:
    """workspaces/ is a folder nobody can create files in (/proc) and belongs to root, not UID 2222."""
    mount = tmp_path / "pvc-data"
    mount.mkdir()
    (mount / "workspaces").symlink_to("/proc")
    profile = _profile(tmp_path, f"  pvc_mount: {mount}\n  workspace_uid: 2222\n  tools: [git]\n")
    run = suite(MODULE, "-k", "pvc or owner", profile=profile)
    assert run.check("WSP-002")["outcome"] == "passed"
    writable = run.check("WSP-003")
    assert writable["outcome"] == "failed"
    assert f"actual:   {mount}/workspaces/conformance-" in writable["message"]
    assert ".probe: write failed:" in writable["message"]
    owner = run.check("WSP-004")
    assert owner["outcome"] == "failed"
    assert f"expected: {mount}/workspaces is owned by UID 2222" in owner["message"]
    assert "actual:   owned by UID 0" in owner["message"] or os.getuid() != 0


def test_checks_run_inside_a_pod_through_kubectl(suite: Any, tmp_path: Path) -> None:
    """testinfra's kubectl backend, driven by a kubectl shim: the same checks pass; a missing pod errors."""
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    write_tool(shim_dir, "kubectl", KUBECTL_SHIM)
    env = {"PATH": f"{shim_dir}:{os.environ['PATH']}"}
    pod_yaml = """  pod: {pod}
  namespace: runai-conformance
  home: ${{SANDBOX_HOME}}
  pvc_mount: ${{SANDBOX_WORKSPACE_PVC}}
  workspace_uid: ${{SANDBOX_WORKSPACE_UID}}
  tool_paths:
    conda: ${{SANDBOX_WORKSPACE_TOOLS}}/conda
    kubectl: ${{SANDBOX_WORKSPACE_KUBECTL}}
    aws: ${{SANDBOX_WORKSPACE_AWS}}
"""
    good = _profile(tmp_path, pod_yaml.format(pod="coder-ws-0"), "pod.yaml")
    run = suite(MODULE, profile=good, env=env)
    for check_id in ("WSP-002", "WSP-003", "WSP-004", "WSP-005", "WSP-007"):
        record = run.check(check_id)
        assert record["outcome"] == "passed", record
        assert record["evidence"]["host"].startswith("kubectl://coder-ws-0?namespace=runai-conformance"), record
    assert run.check("WSP-001", "git")["outcome"] == "passed"
    log = (shim_dir / "kubectl.log").read_text()
    assert "-n runai-conformance exec coder-ws-0 -- /bin/sh -c" in log
    assert "--context=" in log  # from the profile's kubernetes section

    missing = _profile(tmp_path, pod_yaml.format(pod="missing-pod"), "missing.yaml")
    run = suite(MODULE, "-k", "pvc_mounted or memory", profile=missing, env=env)
    for check_id in ("WSP-002", "WSP-005"):
        record = run.check(check_id)
        assert record["outcome"] == "error"
        assert "cannot run commands in pod missing-pod" in record["message"]
        assert 'pods "missing-pod" not found' in record["message"]


def test_fake_tools_say_they_are_simulated() -> None:
    for name, body in FAKES.items():
        assert "simulated" in body, name


def test_workspace_pod_option_points_the_same_profile_at_a_pod(suite: Any, tmp_path: Path) -> None:
    """``--workspace-pod POD@NAMESPACE`` turns a local workspace profile into an in-pod check."""
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    write_tool(shim_dir, "kubectl", KUBECTL_SHIM)
    env = {"PATH": f"{shim_dir}:{os.environ['PATH']}"}
    local = _profile(tmp_path, "  pvc_mount: ${SANDBOX_WORKSPACE_PVC}\n  tools: [git]\n")
    run = suite(MODULE, "-k", "pvc_mounted", "--workspace-pod=coder-ws-9@runai-other", profile=local, env=env)
    record = run.check("WSP-002")
    assert record["outcome"] == "passed", record
    assert record["evidence"]["host"].startswith("kubectl://coder-ws-9?namespace=runai-other")
    assert "-n runai-other exec coder-ws-9 -- /bin/sh -c" in (shim_dir / "kubectl.log").read_text()


def test_workspace_pod_option_works_without_a_workspace_section(tmp_path: Path) -> None:
    """The workspace applies everywhere and its section is all defaults (the guide's on Run:ai)."""
    profile = write_profile(tmp_path, "platform: onprem\norchestrator: runai\n")
    workspace = open_profile(profile, {}, workspace_pod="ws-0@runai-x").profile.workspace
    assert workspace is not None
    assert (workspace.pod, workspace.namespace, workspace.pvc_mount) == ("ws-0", "runai-x", "/pvc-data")
