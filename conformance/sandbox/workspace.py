"""The sandbox's workspace: a fake shared PVC folder and labelled stand-ins for tools this machine lacks.

The WSP checks run against this host for real (its git, python, kubectl, memory limit, file modes);
the profile points them at:

* ``<sandbox>/pvc-data`` with a ``workspaces/`` folder owned by UID 2222 (the Coder/Run:ai user), as
  the guide's workspace-prep job leaves it; when the sandbox cannot chown (not root) it stays owned by
  the current user and ``SANDBOX_WORKSPACE_UID`` says so.
* ``<sandbox>/workspace-tools/``: small shell scripts standing in for conda and nvidia-smi (and
  kubectl and the AWS CLI, when none is installed); runai is the sandbox's simulated Run:ai CLI (``runai.cli``).
  They print what the real tools print for the commands the checks run and say in every file that
  they are simulated; the report lists them as the simulated component "workspace-tools". The check
  logic is the same for them as for real executables: ``workspace.tool_paths`` only changes which
  file is run.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from conformance.sandbox import Sandbox

WORKSPACE_UID = 2222
_HEADER = "#!/bin/sh\n# Simulated by the conformance sandbox (workspace-tools): not the real {name}.\n"
FAKES: dict[str, str] = {
    "conda": """case "$1" in
  --version|-V) echo "conda 24.7.1" ;;
  *) echo "simulated conda: only --version is supported" >&2; exit 2 ;;
esac
""",
    "nvidia-smi": """case "$1" in
  -L) echo "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-00000000-0000-0000-0000-000000000000)" ;;
  --version) printf 'NVIDIA-SMI version  : 550.54.15\\nDRIVER version      : 550.54.15\\n' ;;
  *) echo "simulated nvidia-smi: only -L and --version are supported" >&2; exit 2 ;;
esac
""",
    # The first line AWS CLI v2 prints for --version (aws-cli/<version> Python/<version> <platform>).
    "aws": """case "$1" in
  --version) echo "aws-cli/2.17.20 Python/3.11.9 Linux/6.1.0 exe/x86_64.debian.12 prompt/off" ;;
  *) echo "simulated aws: only --version is supported" >&2; exit 2 ;;
esac
""",
    "kubectl": """case "$*" in
  "version --client"*) printf 'Client Version: v1.30.2\\nKustomize Version: v5.0.4\\n' ;;
  *) echo "simulated kubectl: only 'version --client' is supported" >&2; exit 2 ;;
esac
""",
}


def write_tool(directory: Path, name: str, body: str) -> Path:
    """An executable shell script ``directory/name`` (also used by the project's tests for faults)."""
    path = directory / name
    path.write_text(_HEADER.format(name=name) + body)
    path.chmod(0o755)
    return path


def _pvc(sandbox: Sandbox) -> tuple[Path, int]:
    mount = sandbox.dir / "pvc-data"
    workspaces = mount / "workspaces"
    workspaces.mkdir(parents=True)
    try:
        os.chown(workspaces, WORKSPACE_UID, WORKSPACE_UID)
        uid = WORKSPACE_UID
    except PermissionError:  # not root (a developer's laptop): the folder stays the current user's
        uid = os.getuid()
    workspaces.chmod(0o777)  # RWX for users, as the guide's /pvc-data/workspaces is
    return mount, uid


def start(sandbox: Sandbox) -> None:
    mount, uid = _pvc(sandbox)
    tools = sandbox.dir / "workspace-tools"
    tools.mkdir()
    for name in ("conda", "nvidia-smi"):
        write_tool(tools, name, FAKES[name])
    sandbox.env.update(
        {
            "SANDBOX_WORKSPACE_PVC": str(mount),
            "SANDBOX_WORKSPACE_UID": str(uid),
            "SANDBOX_WORKSPACE_TOOLS": str(tools),
            **machine_tools(tools),
        }
    )
    sandbox.simulated.append("workspace-tools")


def machine_tools(tools: Path) -> dict[str, str]:
    """This machine's kubectl and AWS CLI, or labelled stand-ins written into ``tools`` when it has none."""
    kubectl = shutil.which("kubectl") or str(write_tool(tools, "kubectl", FAKES["kubectl"]))
    venv_aws = Path(sys.executable).with_name("aws")  # the real AWS CLI from the suite's environment
    aws = str(venv_aws) if venv_aws.is_file() else (shutil.which("aws") or str(write_tool(tools, "aws", FAKES["aws"])))
    return {"SANDBOX_WORKSPACE_KUBECTL": kubectl, "SANDBOX_WORKSPACE_AWS": aws}
