"""The container image's Python packages come from requirements-client.lock only: is everything there?

The image runs ``pip install --no-deps -r requirements-client.lock`` (Dockerfile), so a library the
suite imports but the lock lacks is an ImportError in every nightly job and in-cluster run. These
tests read the code and the lock (no image build): scripts/test-image.sh runs the suite in the image.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conformance.sandbox import relocate, workspace
from tests.conftest import REPO

CLIENT_LOCK = REPO / "requirements-client.lock"
IMAGE_LOCK = REPO / "requirements-image.lock"  # -r the client lock, plus what only the cluster vantage's job runs
# Modules that run only inside the cluster vantage's job, in the image: they may import what only the image has,
# inside functions (never at import time: a workspace imports the suite without it).
IMAGE_ONLY_MODULES = {"tuning.py"}
# What the image runs: the suite, and of the sandbox only what attaches to one started outside it
# (scripts/test-image.sh); the sandbox's servers are not client code.
SANDBOX_IN_IMAGE = {"__init__.py", "relocate.py", "runai.py", "workspace.py"}
CLIENT_EXTRAS = ("registry", "object_storage", "mlflow")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path = CLIENT_LOCK) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.startswith("-r "):
            pins.update(locked(path.parent / line[3:].strip()))
        elif line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def image_sources() -> list[Path]:
    files = sorted((REPO / "conformance").rglob("*.py"))
    sandbox = REPO / "conformance" / "sandbox"
    return [f for f in files if f.parent != sandbox or f.name in SANDBOX_IN_IMAGE] + [REPO / "conftest.py"]


def _type_checking_only(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name | ast.Attribute)
        and (ast.unparse(node.test).endswith("TYPE_CHECKING"))
    )


def imported_modules(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """Absolute module names a file imports at run time (``from a import b`` gives a.b: b may be a module)."""
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno
        else:
            yield from imported_modules(node)


@cache
def module_owners() -> dict[str, frozenset[str]]:
    """Module name -> the distributions installing it (mlflow and mlflow-skinny both ship ``mlflow``)."""
    owners: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        name = canonical(dist.metadata["Name"])
        record = dist.read_text("RECORD")  # wheels; read as text, a PackagePath per file is slow
        paths = [line.split(",")[0] for line in record.splitlines()] if record else [str(f) for f in dist.files or []]
        for path in paths:
            if not path.endswith((".py", ".so")) or path.startswith(".."):
                continue
            parts = path.split("/")
            stem = parts[-1].split(".")[0]
            module = ".".join(parts[:-1] if stem == "__init__" else [*parts[:-1], stem])
            owners.setdefault(module, set()).add(name)
    return {module: frozenset(names) for module, names in owners.items()}


def distributions_of(module: str) -> frozenset[str] | None:
    """The distributions of ``module`` or of its nearest parent package; None for the standard library."""
    top = module.split(".", maxsplit=1)[0]
    if top in sys.stdlib_module_names or top in {"conformance", "tests", "__future__"}:
        return None
    owners = module_owners()
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = owners.get(".".join(parts[:end]))
        if found:
            return found
    return frozenset()  # imported, but no installed distribution provides it


def test_every_library_the_image_runs_is_in_the_image_lock() -> None:
    pins = locked(IMAGE_LOCK)
    missing: dict[str, set[str]] = {}
    for path in image_sources():
        for module, line in imported_modules(ast.parse(path.read_text(), str(path))):
            owners = distributions_of(module)
            if owners is not None and not owners & pins.keys():
                name = " or ".join(sorted(owners)) or f"no installed package provides {module}"
                missing.setdefault(name, set()).add(f"{path.relative_to(REPO)}:{line} ({module})")
    assert not missing, "\n".join(f"{d}: imported by {', '.join(sorted(w))}" for d, w in sorted(missing.items()))


@pytest.mark.parametrize("lock", [CLIENT_LOCK, IMAGE_LOCK], ids=["client", "image"])
def test_the_lock_holds_the_dependencies_of_what_it_holds(lock: Path) -> None:
    """pip install --no-deps installs exactly the lock: each locked package's own requirements must be in it."""
    pins = locked(lock)
    environment = {"extra": ""}
    unmet = []
    for name in pins:
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:  # the dev venv pins it in requirements.lock too
            pytest.fail(f"{name}: in requirements-client.lock but not installed from requirements.lock")
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            if canonical(requirement.name) not in pins:
                unmet.append(f"{name} requires {requirement}")
    assert not unmet, "\n".join(unmet)


def test_what_only_the_image_has_is_imported_lazily_by_the_jobs_modules() -> None:
    """The workspace installs the client lock: no module imports an image-only package at import time."""
    client, image = locked(), locked(IMAGE_LOCK)
    extra = image.keys() - client.keys()
    assert "optuna" in extra
    eager = []
    for path in image_sources():
        tree = ast.parse(path.read_text(), str(path))
        at_import = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
        for module, line in imported_modules(tree):
            owners = distributions_of(module) or frozenset()
            if not owners & extra:
                continue
            top_level = any(node.lineno == line for node in at_import)
            if top_level or path.name not in IMAGE_ONLY_MODULES:
                eager.append(f"{path.relative_to(REPO)}:{line} ({module})")
    assert eager == []


def test_the_declared_client_dependencies_are_in_the_client_lock() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in CLIENT_EXTRAS:
        declared += project["optional-dependencies"][extra]
    pins = locked()
    assert [r for r in declared if canonical(Requirement(r).name) not in pins] == []


def test_a_missing_library_is_reported_with_the_importing_file(tmp_path: Path) -> None:
    """The scan itself: an import of a package the lock lacks is named, with file and line."""
    source = tmp_path / "client.py"
    source.write_text(
        "from __future__ import annotations\nimport json\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import moto\n"
        "def f() -> None:\n    import boto3\n"
    )
    found = dict(imported_modules(ast.parse(source.read_text())))
    assert "moto" not in found  # type-checking only: never imported at run time
    assert found["boto3"] == 7
    pins = locked()
    assert distributions_of("json") is None
    assert distributions_of("boto3") == frozenset({"boto3"})
    assert distributions_of("google.cloud.storage.Client") == frozenset({"google-cloud-storage"})  # a class
    assert distributions_of("moto.server") == frozenset({"moto"})  # the sandbox's S3 server: not in the client lock
    assert "moto" not in pins
    assert distributions_of("no_such_module_anywhere") == frozenset()


# --------------------------------------------------------------------------- a sandbox started outside the image


def test_relocate_rewrites_the_sandbox_programs_for_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the image, runai runs on the image's Python, and kubectl/aws are stand-ins when the image has none."""
    (tmp_path / "runai" / "v2").mkdir(parents=True)
    (tmp_path / "runai" / "v2" / "runai").write_text("#!/the/host/python\n")  # what the host's sandbox wrote
    tools = tmp_path / "workspace-tools"
    tools.mkdir()
    state = tmp_path / "sandbox-env.json"
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")  # the new CLI's login copies it
    host = {"SANDBOX_DIR": str(tmp_path), "SANDBOX_WORKSPACE_TOOLS": str(tools), "SANDBOX_MLFLOW_USER": "u"}
    host["SANDBOX_KUBECONFIG"] = str(tmp_path / "kubeconfig")
    state.write_text(json.dumps({**host, "SANDBOX_WORKSPACE_AWS": "/host/venv/bin/aws"}))
    monkeypatch.setattr("conformance.sandbox.workspace.shutil.which", lambda _name: None)  # no kubectl, no aws
    monkeypatch.setattr(workspace, "sys", type("NoVenv", (), {"executable": str(tmp_path / "python")}))

    env = relocate.relocate(state)

    assert json.loads(state.read_text()) == env
    assert env["SANDBOX_MLFLOW_USER"] == "u"  # everything else as the sandbox wrote it
    runai = Path(env["SANDBOX_RUNAI_CLI"])
    assert runai == tmp_path / "runai" / "v2" / "runai"
    assert runai.read_text().startswith(f"#!{sys.executable}\n")
    version = subprocess.run([str(runai), "version"], capture_output=True, text=True, timeout=30, check=True)
    assert "Version:" in version.stdout
    assert Path(env["SANDBOX_RUNAI_V1_CLI"]).is_file()
    assert Path(env["SANDBOX_RUNAI_NEW_CLI"]).is_file()  # every generation, rewritten too
    assert env["SANDBOX_WORKSPACE_KUBECTL"] == str(tools / "kubectl")
    assert env["SANDBOX_WORKSPACE_AWS"] == str(tools / "aws")
    aws = subprocess.run([str(tools / "aws"), "--version"], capture_output=True, text=True, timeout=30, check=True)
    assert re.match(r"aws-cli/2\.\d+\.\d+ ", aws.stdout)  # what WSP-001 parses, major version 2 (no warning)
    assert "Simulated by the conformance sandbox" in (tools / "aws").read_text()


def test_relocate_without_a_sandbox_state_is_a_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.sandbox.relocate"], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "CONFORMANCE_SANDBOX_STATE": str(tmp_path / "none.json")}, check=False,
    )  # fmt: skip
    assert proc.returncode == 4
    assert proc.stderr.strip().splitlines() == [
        f"relocate: CONFORMANCE_SANDBOX_STATE does not name a sandbox state file: '{tmp_path / 'none.json'}'"
    ]
