"""``python -m conformance init`` drafts a loadable profile from a workspace, secrets only as references."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from conformance.init import draft_profile
from conformance.profile import requirements
from conformance.session import open_profile
from tests.conftest import REPO

CANARY = "Init-canary-secret-91"


def workspace(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: aisg\n"
        "contexts: [{name: aisg, context: {cluster: c, user: u, namespace: runai-mlops}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://runai-cluster.example:6443'}}]\n"
        f"users: [{{name: u, user: {{auth-provider: {{name: oidc, config: {{id-token: {CANARY}}}}}}}}}]\n"
    )
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        f"[ecs]\naws_access_key_id = AKIAINIT\naws_secret_access_key = {CANARY}\n"
    )
    (home / ".docker").mkdir()
    auth = base64.b64encode(f"dev:{CANARY}".encode()).decode()
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": {"registry.aisingapore.net": {"auth": auth}}}))
    repo = tmp_path / "project"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "remote", "add", "origin", "ssh://git@gitlab.aisingapore.net:2222/mlops/proj.git"],
        check=True,
    )
    environ = {
        "HOME": str(home),
        "MLFLOW_TRACKING_URI": "https://mlflow.proj.example",
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": CANARY,
    }
    return home, environ, repo


def test_draft_from_an_onprem_runai_workspace_loads_and_holds_no_secret(tmp_path: Path) -> None:
    home, environ, repo = workspace(tmp_path)
    draft = draft_profile(home, environ, repo)
    text = draft.render()
    assert CANARY not in text
    assert base64.b64encode(f"dev:{CANARY}".encode()).decode() not in text
    path = tmp_path / "draft.yaml"
    path.write_text(text)
    profile = open_profile(path, environ).profile
    assert (profile.platform, profile.orchestrator) == ("onprem", "runai")
    assert profile.kubernetes is not None
    assert (profile.kubernetes.namespace, profile.kubernetes.context) == ("runai-mlops", "aisg")
    assert profile.runai is not None
    assert profile.runai.project == "mlops"
    assert profile.object_storage is not None
    assert profile.object_storage.aws_profile == "ecs"
    assert profile.registry is not None
    assert profile.registry.url == "https://registry.aisingapore.net"
    assert profile.mlflow is not None
    assert profile.mlflow.password is not None
    assert profile.mlflow.password.source == "env:MLFLOW_TRACKING_PASSWORD"
    assert profile.gitlab is not None
    assert (profile.gitlab.project, profile.gitlab.ssh_port) == ("mlops/proj", 2222)


def test_service_account_key_makes_a_gcp_draft(tmp_path: Path) -> None:
    home, environ, repo = workspace(tmp_path)
    key = tmp_path / "sa.json"
    key.write_text(json.dumps({"type": "service_account", "project_id": "infratest-311303", "private_key": CANARY}))
    draft = draft_profile(home, {**environ, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}, repo)
    assert draft.sections["platform"] == "gcp"
    assert draft.sections["gcp"] == {"project": "infratest-311303", "key_file": str(key)}
    assert draft.sections["object_storage"]["kind"] == "gcs"
    assert CANARY not in draft.render()


def test_init_command_writes_a_file_that_passes_profile_check(tmp_path: Path) -> None:
    _, environ, repo = workspace(tmp_path)
    out = tmp_path / "mine.yaml"
    env = {**os.environ, **environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "init", "-o", str(out)], cwd=repo, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "it passes profile check" in proc.stdout
    again = subprocess.run(
        [sys.executable, "-m", "conformance", "init", "-o", str(out)], cwd=repo, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 4
    assert "exists; pass --force" in again.stderr


def test_empty_workspace_still_gives_a_loadable_draft(tmp_path: Path) -> None:
    draft = draft_profile(tmp_path, {}, tmp_path)
    path = tmp_path / "d.yaml"
    path.write_text(draft.render())
    loaded = open_profile(path, {})
    assert loaded.profile.orchestrator == "noorch"
    assert requirements(loaded.profile) == []  # every section the platform needs, change-me where unknown
    assert "found nothing to draft from" in draft.render()


def test_init_survives_hostile_files_and_never_prints_a_token(tmp_path: Path) -> None:
    """A FIFO, /dev/zero, non-UTF-8 and huge integers where the guide's files are; a token in the remote."""
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_bytes(b"current-context: \xff\xfe\n")
    (home / ".aws").mkdir()
    os.mkfifo(home / ".aws" / "credentials")
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").symlink_to("/dev/zero")
    key = tmp_path / "key.json"
    key.write_text('{"project_id": ' + "9" * 5001 + "}")
    repo = tmp_path / "project"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for remote in (f"https://oauth2:{CANARY}@gitlab.example/mlops/proj.git", "ssh://git@gitlab.example:99999/a/b.git"):
        subprocess.run(["git", "-C", str(repo), "remote", "remove", "origin"], check=False, capture_output=True)
        subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", remote], check=True)
        environ = {
            "HOME": str(home),
            "GOOGLE_APPLICATION_CREDENTIALS": str(key),
            "MLFLOW_TRACKING_URI": f"https://alice:{CANARY}@mlflow.example",
        }
        draft = draft_profile(home, environ, repo)
        text = draft.render()
        assert CANARY not in text
        assert CANARY not in "\n".join(draft.notes)
        path = tmp_path / "draft.yaml"
        path.write_text(text)
        open_profile(path, {})  # the draft loads: nothing hostile was copied into it
