"""No silent skips: a check is skipped only for a fact of the platform, never for a missing setting.

A component applies by platform and orchestrator; a profile that leaves out one it needs is a profile
error (exit 4). Here: every skip reason the code can produce, the templates as a new user fills them,
``profile check``'s requirements and offline warnings, and the README's generated field reference.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import fields, offline
from conformance.components import COMPONENTS
from conformance.profile import read_raw, requirements
from conformance.session import open_profile
from tests.conftest import REPO, write_profile

# Every kind of skip the suite may make, each a fact of the platform (or the user's --budget), with why.
ALLOWED_SKIPS = {
    "another platform": r"not applicable: profile \{\} is platform \{\}; this check applies to \{\}",
    "another orchestrator": r"not applicable: profile \{\} has orchestrator \{\}; this check applies to \{\}",
    "an endpoint without TLS or HTTP": r"not applicable: (endpoint \{\} is \{\}://, (without TLS|not HTTP)"
    r"|\{\}:// (has no TLS|is not HTTP))",
    "an endpoint without a service to greet": r"not applicable: (endpoint \{\} is tcp://, a bare port"
    r"|tcp:// is a bare port) with no service protocol to greet",
    "no endpoint behind a VPN": r"not applicable: (the profile marks no endpoint as private"
    r"|no endpoint of the profile is private)",
    "no GPU requested": r"not applicable: the profile does not ask for a GPU \(workspace\.gpu is false\)",
    "no Docker daemon": r"not applicable: (no Docker daemon reachable .*"
    r"|\{\} is optional in this workspace and absent .*no Docker daemon.*)",
    "a registry of another kind": r"not applicable: registry host \{\} is not Artifact Registry.*",
    "a store that takes no credentials": r"not applicable: the profile sends no credentials \(anonymous,"
    r" sandbox emulator only\)",
    "an HTTPS-only workspace": r"not applicable: gitlab\.ssh is false \(this workspace uses git over HTTPS only\)",
    "no service-account key in use": r"not applicable: neither gcp\.key_file nor GOOGLE_APPLICATION_CREDENTIALS"
    r" names a key",
    "the user's --budget": r"not run \(budget\): .*",
}
MISSING_SETTING = re.compile(r"section|names no|sets no|lists no|not set\b", re.IGNORECASE)
SKIP_CALLS = {"skip", "skipif", "importorskip"}
DISPLAY_ONLY = {"verdict.py"}  # shows the reasons the checks gave ("not run (3): ..."), makes none


def _render(node: ast.expr) -> str | None:
    """A string literal, or an f-string with ``{}`` for each expression; None if neither."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_render(v) or "{}" if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):  # "a" + "b" or implicit concatenation
        left, right = _render(node.left), _render(node.right)
        return left + right if left is not None and right is not None else None
    return None


def skip_reasons() -> list[tuple[str, str]]:
    """(file:line, reason) for every skip call and every "not applicable" text in the suite's code."""
    found: list[tuple[str, str]] = []
    for path in sorted((REPO / "conformance").rglob("*.py")):
        if "sandbox" in path.relative_to(REPO).parts or path.name in DISPLAY_ONLY:
            continue
        tree = ast.parse(path.read_text())
        where = path.relative_to(REPO)
        # Parts of an f-string, and reasons already taken from a skip call, are not texts of their own.
        texts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in ast.walk(node)}
        texts -= {id(node) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in SKIP_CALLS:
                keyword = next((k.value for k in node.keywords if k.arg == "reason"), None)
                reason = node.args[0] if node.args else keyword
                text = _render(reason) if reason is not None else None
                found.append((f"{where}:{node.lineno}", text if text is not None else "<not a literal>"))
                if reason is not None:
                    texts.add(id(reason))
            elif isinstance(node, ast.JoinedStr | ast.Constant) and id(node) not in texts:
                text = _render(node)
                if text and text.startswith(("not applicable", "not run")):
                    found.append((f"{where}:{node.lineno}", text))
    return found


def test_every_skip_the_code_can_make_is_a_fact_of_the_platform() -> None:
    reasons = skip_reasons()
    assert len(reasons) >= 10, reasons  # the scan sees the suite's skips
    # The one skip whose reason is not a literal: plugin.py's mark.skip(reason=_not_applicable(...)), scanned above.
    passed_through = [where for where, text in reasons if text == "<not a literal>"]
    assert [where.split(":")[0] for where in passed_through] == ["conformance/plugin.py"]
    unknown = [
        f"{where}: {text!r}"
        for where, text in reasons
        if where not in passed_through
        and not any(re.fullmatch(pattern, text, re.DOTALL) for pattern in ALLOWED_SKIPS.values())
    ]
    assert not unknown, "skips that are not facts of the platform:\n" + "\n".join(unknown)
    assert not [text for _, text in reasons if MISSING_SETTING.search(text)]


@pytest.mark.parametrize("profile", ["sandbox", "sandbox-gcp"])
def test_sandbox_runs_skip_only_for_facts_of_the_platform(suite: Any, profile: str) -> None:
    run = suite(profile=profile)
    assert run.rc == 0, run.output[-3000:]
    skipped = [c for c in run.results["checks"] if c["outcome"] == "skipped"]
    assert skipped  # another platform, endpoints without TLS, no GPU, no Docker daemon
    patterns = [pattern.replace(r"\{\}", ".+") for pattern in ALLOWED_SKIPS.values()]
    other = [
        (c["id"], c["message"]) for c in skipped if not any(re.fullmatch(p, c["message"], re.DOTALL) for p in patterns)
    ]
    assert not other


def test_the_skip_scan_catches_a_skip_for_a_missing_setting(tmp_path: Path) -> None:
    source = 'import pytest\ndef f(s):\n    pytest.skip(f"not applicable: the profile has no {s} section")\n'
    call = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call))
    text = _render(call.args[0])
    assert text == "not applicable: the profile has no {} section"
    assert not any(re.fullmatch(pattern, text) for pattern in ALLOWED_SKIPS.values())


# --------------------------------------------------------------------------- the templates, as a new user fills them

FILL = {
    "onprem-runai": {"mlops-test": "vision", "<your-name>": "alice"},
    "gcp-runai": {"test-proj": "vision", "infratest-311303": "vision-gcp-1234", "<your-name>": "alice"},
}
DUMP_PLUGIN = """
import json, os

def pytest_collection_finish(session):
    rows = []
    for item in session.items:
        mark = item.get_closest_marker("check")
        if mark is not None:
            skip = item.get_closest_marker("skip")
            rows.append([str(mark.args[0]), skip.kwargs.get("reason") if skip else None])
    with open(os.environ["SKIP_DUMP"], "w") as out:
        json.dump(rows, out)
"""


def filled(name: str, directory: Path, drop: tuple[str, ...] = ()) -> Path:
    """The template with the sample project replaced by the user's, optionally without some keys."""
    text = (REPO / "profiles" / f"{name}.yaml").read_text()
    for sample, own in FILL[name].items():
        text = text.replace(sample, own)
    for key in drop:  # a top-level section, or "section.field"
        section, _, field = key.partition(".")
        if field:
            text = re.sub(rf"(?m)^  {field}:.*\n", "", text) if f"\n{section}:" in text else text
        else:
            text = re.sub(rf"(?ms)^{section}:.*?(?=^\S|\Z)", "", text)
    return write_profile(directory, text, f"my-{name}.yaml")


def isolated_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "KUBECONFIG", "DOCKER_"))}
    env.pop("PYTEST_ADDOPTS", None)
    return {**env, "HOME": str(home)}


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )


def collect(profile: Path, markers: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    """``pytest --collect-only -m markers``; (process, [check id, skip reason or None] per selected check)."""
    (tmp_path / "skipdump.py").write_text(DUMP_PLUGIN)
    dump = tmp_path / "dump.json"
    env = {**isolated_env(tmp_path), "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "SKIP_DUMP": str(dump)}
    command = [
        sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "skipdump",
        "--no-reports", f"--profile={profile}", "-m", markers,
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc, json.loads(dump.read_text()) if dump.is_file() else []


@pytest.mark.parametrize(("name", "platform"), [("onprem-runai", "onprem"), ("gcp-runai", "gcp")])
def test_filled_template_passes_profile_check_and_selects_every_component_without_a_skip(
    name: str, platform: str, tmp_path: Path
) -> None:
    profile = filled(name, tmp_path)
    check = run_cli("profile", "check", str(profile), env=isolated_env(tmp_path))
    assert check.returncode == 0, check.stderr
    assert f"OK ({platform} + runai, guide v0.5.2)" in check.stdout
    assert "placeholder" not in check.stdout
    assert "warning:" not in check.stdout  # nothing here contradicts it; the absent files are notes only
    assert "note: no kubeconfig" in check.stdout

    proc, rows = collect(profile, f"{platform} and runai", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    selected = {check_id.split("-")[0] for check_id, _ in rows}
    needed = {c.prefix for c in COMPONENTS.values() if c.applies(platform, "runai")}
    assert selected == needed  # K8S and RAI included, GCP on gcp only
    assert len([r for r in rows if r[0].startswith(("K8S-", "RAI-"))]) >= 16
    assert [r for r in rows if r[1] is not None] == []  # nothing skipped, least of all for a missing section
    assert {"GIT-011", "GIT-012", "WSP-002"} <= {check_id for check_id, _ in rows}


@pytest.mark.parametrize("name", ["onprem-runai", "gcp-runai"])
def test_shipped_template_warns_about_its_placeholder_only(name: str, tmp_path: Path) -> None:
    check = run_cli("profile", "check", name, env=isolated_env(tmp_path))
    assert check.returncode == 0, check.stderr
    warnings = [line.strip() for line in check.stdout.splitlines() if line.strip().startswith("warning:")]
    assert warnings == ["warning: gitlab.checkout: still holds the template's placeholder <your-name>"]


def test_runai_profile_without_runai_settings_exits_4_with_one_line(tmp_path: Path) -> None:
    profile = filled("onprem-runai", tmp_path, drop=("runai", "kubernetes"))
    line = f"{profile}: runai: required for orchestrator runai (set runai.project)"
    check = run_cli("profile", "check", str(profile), env=isolated_env(tmp_path))
    assert (check.returncode, check.stderr.splitlines(), check.stdout) == (4, [line], "")
    proc, rows = collect(profile, "onprem and runai", tmp_path)
    assert proc.returncode == 4
    assert [x for x in proc.stderr.splitlines() if x.strip()] == [f"ERROR: {line}"]
    assert rows  # collected, then refused before anything ran


def test_the_same_profile_error_stops_a_parallel_run(tmp_path: Path) -> None:
    """Under xdist the workers collect; the controller refuses the run once, with the same line."""
    profile = filled("onprem-runai", tmp_path, drop=("runai", "kubernetes"))
    command = [
        sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "--no-reports",
        f"--profile={profile}", "-m", "onprem and runai",
    ]  # fmt: skip
    env = isolated_env(tmp_path)
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 4, proc.stdout[-2000:]
    assert f"ERROR: {profile}: runai: required for orchestrator runai (set runai.project)" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "INTERNALERROR" not in proc.stdout + proc.stderr
    assert " passed" not in proc.stdout


def test_guide_defaults_fill_the_kubernetes_section_from_the_runai_project(tmp_path: Path) -> None:
    profile = open_profile(filled("onprem-runai", tmp_path, drop=("kubernetes", "workspace")), {}).profile
    assert requirements(profile) == []
    assert profile.kubernetes is not None
    assert profile.workspace is not None
    assert (profile.kubernetes.namespace, profile.kubernetes.pvc) == ("runai-vision", "pvc-data")
    assert profile.kubernetes.expected_secrets == ["s3-credentials", "harbor-credentials"]
    assert profile.kubernetes.kubeconfig is None  # $KUBECONFIG, else ~/.kube/config: resolved by K8S-001
    assert (profile.workspace.pvc_mount, profile.workspace.workspace_uid) == ("/pvc-data", 2222)


def test_guide_defaults_take_the_pvc_from_the_mount_and_never_override_the_profile(tmp_path: Path) -> None:
    text = "platform: gcp\norchestrator: runai\nrunai: {project: vision}\nworkspace: {pvc_mount: /vision-pvc/}\n"
    profile = open_profile(write_profile(tmp_path, text), {}).profile
    assert profile.kubernetes is not None
    assert (profile.kubernetes.pvc, profile.kubernetes.expected_secrets) == ("vision-pvc", ["gcp-sa-credentials"])
    text += "kubernetes: {namespace: team-ns, pvc: shared, expected_secrets: [a]}\n"
    profile = open_profile(write_profile(tmp_path, text), {}).profile
    assert profile.kubernetes is not None
    assert (profile.kubernetes.namespace, profile.kubernetes.pvc, profile.kubernetes.expected_secrets) == (
        "team-ns",
        "shared",
        ["a"],
    )


def test_git_011_applies_to_every_runai_workspace(tmp_path: Path) -> None:
    profile = filled("onprem-runai", tmp_path, drop=("gitlab.checkout",))
    check = run_cli("profile", "check", str(profile), env=isolated_env(tmp_path))
    assert check.returncode == 4
    assert check.stderr.splitlines() == [
        f"{profile}: gitlab.checkout: required for orchestrator runai (your clone in the shared workspace,"
        " e.g. /pvc-data/workspaces/<your-name>/<project>, whose origin GIT-011 checks)"
    ]


def test_components_need_their_sections_only_where_they_apply(tmp_path: Path) -> None:
    text = "platform: onprem\norchestrator: noorch\n"
    profile = open_profile(write_profile(tmp_path, text), {}).profile
    lines = requirements(profile)
    assert [line.split(":")[0] for line in lines] == ["registry", "object_storage", "mlflow", "gitlab"]
    assert requirements(profile, {"network", "workspace"}) == []  # a run of these needs nothing more
    gcp = open_profile(write_profile(tmp_path, "platform: gcp\norchestrator: runai\n"), {}).profile
    assert "gcp: required for platform gcp (set gcp.project)" in requirements(gcp)
    assert not any(line.startswith("kubernetes") for line in requirements(gcp))  # runai.project fills it


# --------------------------------------------------------------------------- profile check: offline warnings


def _offline(tmp_path: Path, profile_text: str) -> list[str]:
    path = write_profile(tmp_path, profile_text)
    environ = {"HOME": str(tmp_path)}
    return offline.warnings(open_profile(path, environ).profile, read_raw(path), environ)


def test_offline_warnings_name_what_the_local_files_contradict(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[other]\naws_access_key_id = a\naws_secret_access_key = b\n")
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("contexts:\n- name: prod\ncurrent-context: prod\n")
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"auths": {"https://other.example/v1/": {}}}))
    text = (
        "platform: onprem\norchestrator: runai\n"
        "registry: {url: 'https://reg.example', project_path: reg.example/team/app}\n"
        "object_storage: {kind: s3, endpoint_url: 'https://s3.example', bucket: b1, aws_profile: team}\n"
        "kubernetes: {namespace: runai-team, context: staging}\nrunai: {project: team}\n"
    )
    assert _offline(tmp_path, text) == [
        f"warning: object_storage.aws_profile: {tmp_path}/.aws/credentials has no section [team] (sections: [other])",
        f"warning: kubernetes.context: 'staging' is not a context of {tmp_path}/.kube/config (contexts: prod)",
        f"warning: registry: {tmp_path}/.docker/config.json has no login for reg.example (entries: other.example);"
        " run `docker login reg.example`",
    ]
    (tmp_path / ".aws" / "credentials").write_text("[team]\naws_access_key_id = a\naws_secret_access_key = b\n")
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"credHelpers": {"reg.example": "x"}}))
    assert _offline(tmp_path, text.replace("staging", "prod")) == []


def test_offline_notes_what_this_machine_lacks_without_failing(tmp_path: Path) -> None:
    text = (
        "platform: onprem\norchestrator: runai\n"
        "object_storage: {kind: s3, endpoint_url: 'https://s3.example', bucket: b1}\n"
        "kubernetes: {namespace: runai-team}\nrunai: {project: team}\n"
    )
    lines = _offline(tmp_path, text)
    assert [line.split(":")[0] for line in lines] == ["note", "note"]
    assert "OBJ-001 checks it where the suite runs" in lines[0]
    assert "K8S-001 checks it where the suite runs" in lines[1]


# --------------------------------------------------------------------------- the README's field reference


def test_readme_field_reference_is_generated_from_the_schema() -> None:
    readme = (REPO / "README.md").read_text()
    match = re.search(r"<!-- fields:start -->\n(.*?)\n<!-- fields:end -->", readme, re.DOTALL)
    assert match, "README.md has no <!-- fields:start --> ... <!-- fields:end --> block"
    assert match.group(1) == fields.markdown(), "regenerate: python -m conformance profile fields --markdown"
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "profile", "fields", "--markdown"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout.strip() == fields.markdown()


def test_field_reference_names_every_field_and_the_sections_each_platform_needs() -> None:
    table = fields.markdown()
    for row in ("`runai.project`", "`kubernetes.namespace`", "`gitlab.checkout`", "`network.endpoints[].url`"):
        assert f"| {row} |" in table
    assert "| **`runai`** | section | required for orchestrator runai |" in table
    assert "| **`gcp`** | section | required for platform gcp |" in table
    assert "runai-<runai.project>" in table  # the guide's default, where it fills a field
