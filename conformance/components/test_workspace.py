"""WSP: is this a workspace the guide's steps will work in?

The checks look at one host through testinfra: this machine (``local://``), or the workspace pod when
``workspace.pod`` is set (``kubectl exec``). Tools (WSP-001, one per tool), the shared PVC and its
``workspaces/`` folder (WSP-002..004), the memory limit (WSP-005), a GPU (WSP-006) and
the modes of credential files (WSP-007).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from conformance.checks import Blocked, CannotEvaluate, ConformanceWarning, check, expect
from conformance.profile import Profile
from conformance.state import PROFILE_KEY

if TYPE_CHECKING:  # the client imports testinfra; only the fixture loads it, at run time
    from conformance.clients.workspace import WorkspaceClient

GIB = 1024**3
AWS_CLI_MAJOR = "2"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One WSP-001 item per tool the profile's platform and orchestrator need (plus docker, optional)."""
    if "tool" in metafunc.fixturenames and PROFILE_KEY in metafunc.config.stash:
        from conformance.clients.workspace import expected_tools  # noqa: PLC0415 - keeps testinfra out of collection

        tools = expected_tools(metafunc.config.stash[PROFILE_KEY].profile)
        metafunc.parametrize("tool", tools, ids=[name for name, _ in tools])


@check(
    "WSP-001",
    """
    Install the missing tool named above, as the hint says, and make sure it is on PATH in a new shell
    (the Coder image ships git, Miniconda, kubectl, AWS CLI v2 and the Google Cloud CLI; runai and khull
    come from /pvc-data/utils). docker is optional in Coder and Run:ai workspaces, which have no daemon.
    """,
)
def test_tool_present(workspace: WorkspaceClient, tool: tuple[str, bool], evidence: dict[str, Any]) -> None:
    from conformance.clients.workspace import spec_of  # noqa: PLC0415 - the client module imports testinfra

    name, required = tool
    found = workspace.tool(name)
    evidence.update({"host": workspace.spec, "tool": name, "looked_up": found.command, "path": found.path})
    if not found.found and not required:
        pytest.skip(
            f"not applicable: {name} is optional in this workspace and absent"
            " (Coder/Run:ai workspaces have no Docker daemon: build images with khull kaniko)"
        )
    spec = spec_of(name)
    expect(
        found.found,
        expected=f"{name} is installed and on PATH in {workspace.spec}",
        actual=f"{found.command} not found",
        hint=spec.hint,
    )
    evidence.update({"version": found.version, "version_output": found.first_line})
    expect(
        found.rc == 0 and found.version is not None,
        expected=f"'{name} {spec.version_args}' runs and prints a version",
        actual=f"{found.path} exited {found.rc}: {found.first_line or 'no output'}",
        hint=f"the installation is broken or not the expected program; reinstall: {spec.hint}",
    )
    if name == "aws" and found.version and found.version.split(".")[0] != AWS_CLI_MAJOR:
        # The guide's commands (aws s3 ls/cp --endpoint-url) work on v1 too, so this is a warning, not a failure.
        evidence["warning"] = f"AWS CLI v{found.version} found; the guide and the Coder image use AWS CLI v2"
        warnings.warn(ConformanceWarning(f"WSP-001: {evidence['warning']}"), stacklevel=1)


def _pvc(profile: Profile) -> str:
    section = profile.workspace
    if section is None or not section.pvc_mount:  # a Run:ai profile always has one (the guide's /pvc-data)
        raise CannotEvaluate("the profile sets no workspace.pvc_mount")
    return section.pvc_mount.rstrip("/") or "/"


@pytest.fixture
def workspaces_dir(workspace: WorkspaceClient, profile: Profile) -> str:
    """``<pvc>/workspaces``; the check using it is blocked by WSP-002 when it is not there."""
    directory = f"{_pvc(profile)}/workspaces"
    if not workspace.is_dir(directory):
        raise Blocked("WSP-002", f"{directory} is not a directory")
    return directory


@pytest.mark.runai  # the shared PVC and its workspaces/ folder belong to Run:ai workspaces
@check(
    "WSP-002",
    """
    The shared PVC is not mounted where the profile says, or has no workspaces/ folder. Run
    'ls -la / | grep pvc' in the workspace terminal: fix workspace.pvc_mount if the mount has another
    name (/pvc-data in Coder, /<project>-pvc on Run:ai), otherwise ask the MLOps team to attach the PVC.
    Create the folder with 'mkdir -p <mount>/workspaces'.
    """,
)
def test_pvc_mounted(workspace: WorkspaceClient, profile: Profile, evidence: dict[str, Any]) -> None:
    mount = _pvc(profile)
    parent = mount.rsplit("/", 1)[0] or "/"
    evidence.update({"host": workspace.spec, "pvc_mount": mount})
    if not workspace.is_dir(mount):
        lookalikes = [n for n in workspace.listdir(parent) if "pvc" in n.lower() or n.lower().endswith("-data")]
        seen = ", ".join(f"{parent.rstrip('/')}/{n}" for n in lookalikes) or "none"
        expect(
            False,
            expected=f"the PVC is mounted at {mount}",
            actual=f"{mount} does not exist or is not a directory; PVC-like folders in {parent}: {seen}",
            hint="the mount path differs between guides (/pvc-data, /<project>-pvc, /<project>_pvc)",
        )
    entries = workspace.listdir(mount)
    evidence["entries"] = len(entries)
    expect(
        workspace.is_dir(f"{mount}/workspaces"),
        expected=f"{mount}/workspaces exists (the guide: cd {mount}/workspaces; mkdir <your-name>)",
        actual=f"{mount} has no workspaces folder ({len(entries)} entries)",
        hint="the PVC is new or another one is mounted; create workspaces/ or fix workspace.pvc_mount",
    )


@pytest.fixture
def probe_file(workspace: WorkspaceClient, workspaces_dir: str) -> Iterator[str]:
    """A run-id-named file in ``<pvc>/workspaces``; removed in teardown should the check stop midway."""
    path = workspace.probe_path(workspaces_dir)
    yield path
    workspace.remove(path)


@pytest.mark.runai  # the shared PVC and its workspaces/ folder belong to Run:ai workspaces
@check(
    "WSP-003",
    """
    You cannot write to the shared PVC's workspaces/ folder. Ask the MLOps team to make it writable by the
    workspace user (UID 2222 on Coder and Run:ai: chown -R 2222:2222 <mount>/workspaces), or mount it
    read-write.
    """,
)
@pytest.mark.writes
def test_pvc_writable(workspace: WorkspaceClient, probe_file: str, evidence: dict[str, Any]) -> None:
    evidence.update({"host": workspace.spec, "probe": probe_file})
    failure = workspace.write_probe(probe_file)
    expect(
        not failure,
        expected=f"a file can be written, read back and deleted in {probe_file.rsplit('/', 1)[0]}",
        actual=f"{probe_file}: {failure}",
        hint="the folder belongs to another UID, or the PVC is mounted read-only",
    )


@pytest.fixture
def owner_uid(profile: Profile) -> int:
    section = profile.workspace
    if section is None or section.workspace_uid is None:  # a Run:ai profile always has one (the guide's 2222)
        raise CannotEvaluate("the profile sets no workspace.workspace_uid")
    return section.workspace_uid


@pytest.mark.runai  # the shared PVC and its workspaces/ folder belong to Run:ai workspaces
@check(
    "WSP-004",
    """
    The workspaces/ folder on the PVC must belong to the workspace user (UID 2222 in Coder and Run:ai
    images). Ask the MLOps team to run 'chown -R 2222:2222 <mount>/workspaces' (the guide's
    workspace-prep job does this).
    """,
)
def test_workspaces_owner(
    workspace: WorkspaceClient, owner_uid: int, workspaces_dir: str, evidence: dict[str, Any]
) -> None:
    directory = workspaces_dir
    owner = workspace.uid_of(directory)
    evidence.update({"host": workspace.spec, "directory": directory, "owner_uid": owner})
    expect(
        owner == owner_uid,
        expected=f"{directory} is owned by UID {owner_uid}",
        actual=f"owned by UID {owner}",
        hint="created by root (or another user) and never handed over with chown -R 2222:2222",
    )


@check(
    "WSP-005",
    """
    Give the workspace more memory: pick a larger memory option in the Coder template or Run:ai workspace
    (the guide asks for at least 4 GB, otherwise pip install gets killed), or install with
    'pip install --no-cache-dir'.
    """,
)
def test_memory_limit(workspace: WorkspaceClient, profile: Profile, evidence: dict[str, Any]) -> None:
    minimum = profile.workspace.min_memory_gib if profile.workspace else 4.0
    memory = workspace.memory()
    effective = memory.effective
    evidence.update(
        {
            "host": workspace.spec,
            "source": memory.source,
            "cgroup_limit_bytes": memory.limit_bytes,
            "mem_total_bytes": memory.mem_total,
        }
    )
    expect(
        effective is not None,
        expected="a memory limit (cgroup) or the host's MemTotal can be read",
        actual=f"{memory.source}; no MemTotal in /proc/meminfo",
    )
    gib = (effective or 0) / GIB
    evidence["effective_gib"] = round(gib, 2)
    limited = memory.limit_bytes is not None and effective == memory.limit_bytes
    where = f"cgroup limit from {memory.source}" if limited else "no cgroup limit; the host's MemTotal"
    expect(
        gib >= minimum,
        expected=f"at least {minimum:g} GiB of memory for the workspace",
        actual=f"{gib:.2f} GiB ({where})",
        hint="the workspace was created with a small memory option; pip install will be OOM-killed",
    )


@check(
    "WSP-006",
    """
    The profile expects a GPU but none is visible. Create the workspace with a GPU (Run:ai: --gpu 1 or a
    GPU compute resource; Coder: a GPU template), and check that nvidia-smi runs in its terminal.
    """,
)
def test_gpu_visible(workspace: WorkspaceClient, profile: Profile, evidence: dict[str, Any]) -> None:
    if profile.workspace is None or not profile.workspace.gpu:
        pytest.skip("not applicable: the profile does not ask for a GPU (workspace.gpu is false)")
    found, gpus, error = workspace.gpus()
    evidence.update({"host": workspace.spec, "nvidia_smi": found.path, "driver": found.version, "gpus": gpus})
    expect(
        found.found,
        expected="nvidia-smi is on PATH (the NVIDIA driver is mounted into the workspace)",
        actual=f"{found.command} not found",
        hint="a CPU-only workspace, or the image lacks the driver utilities",
    )
    expect(
        not error and gpus,
        expected="nvidia-smi -L lists at least one GPU",
        actual=error or "nvidia-smi -L listed no GPU",
        hint="no GPU was allocated to this workspace, or the driver does not match the kernel module",
    )


@check(
    "WSP-007",
    """
    A credential file can be read by other users. Make it private: 'chmod 600 <file>' (SSH keys and
    ~/.aws/credentials must be 600 or 400). In Kubernetes secret volumes set defaultMode: 0400.
    """,
)
def test_credential_file_modes(workspace: WorkspaceClient, evidence: dict[str, Any]) -> None:
    files = [workspace.credential_file(path, origin) for path, origin in workspace.credential_candidates()]
    present = [f for f in files if f.exists]
    evidence.update(
        {
            "host": workspace.spec,
            "home": workspace.home(),
            "checked": {f.path: f"{f.mode:04o} ({f.origin})" for f in present if f.mode is not None},
            "absent (optional)": {f.path: f.origin for f in files if not f.exists},
        }
    )
    # None present: nothing is exposed, which is what this check asks (the files' absence is for the component
    # checks that need them, e.g. OBJ-001, K8S-001).
    unsafe = [f for f in present if not f.safe]
    expect(
        not unsafe,
        expected="every credential file is readable by its owner only (no group/other permission)",
        actual="; ".join(f"{f.describe()} ({f.origin})" for f in unsafe),
        hint="created with the default umask (0644) or copied from a secret volume",
    )
