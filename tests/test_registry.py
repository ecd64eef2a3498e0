"""One spelling per component: client, fixture, profile section, test module and marker agree."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import fixtures
from conformance.components import COMPONENTS
from conformance.profile import Profile
from tests.conftest import REPO

PACKAGE = REPO / "conformance"


def check_ids(module: Path) -> list[str]:
    """Ids given to ``@check(...)`` in a component module, read without importing it."""
    ids = []
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                ids.append(first.value)
    return ids


def all_check_ids() -> dict[str, list[str]]:
    return {name: check_ids(PACKAGE / "components" / f"test_{name}.py") for name in COMPONENTS}


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_component_has_client_fixture_section_and_module(name: str) -> None:
    assert (PACKAGE / "clients" / f"{name}.py").is_file(), f"conformance/clients/{name}.py is missing"
    assert callable(getattr(fixtures, name, None)), f"no fixture {name} in conformance/fixtures.py"
    assert name in Profile.model_fields, f"no {name} section in the profile schema"
    assert (PACKAGE / "components" / f"test_{name}.py").is_file()


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_component_module_uses_only_its_own_prefix(name: str) -> None:
    ids = check_ids(PACKAGE / "components" / f"test_{name}.py")
    assert ids, f"test_{name}.py defines no checks"
    prefix = COMPONENTS[name].prefix
    assert all(i.startswith(f"{prefix}-") for i in ids), ids


def test_no_stray_modules_outside_the_registry() -> None:
    modules = {p.stem.removeprefix("test_") for p in (PACKAGE / "components").glob("test_*.py")}
    clients = {p.stem for p in (PACKAGE / "clients").glob("*.py") if p.stem != "__init__"}
    assert modules == set(COMPONENTS)
    assert clients == set(COMPONENTS)


def test_check_ids_are_unique() -> None:
    ids = [i for per in all_check_ids().values() for i in per]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_check_id_is_exercised_by_the_project_tests() -> None:
    """Each id must appear in tests/ (its pass and fail tests assert on it by id)."""
    text = "\n".join(p.read_text() for p in (REPO / "tests").glob("test_*.py") if p.name != "test_registry.py")
    missing = [i for per in all_check_ids().values() for i in per if text.count(f'"{i}"') < 2]
    assert not missing, f"check ids without a passing and a failing test: {missing}"


def test_component_markers_are_registered() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--markers", "-p", "no:cacheprovider", "--profile=onprem-runai"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if k != "CONFORMANCE_PROFILE"},
    )  # fmt: skip
    for name in [*COMPONENTS, "onprem", "gcp", "runai", "noorch", "polyaxon", "writes", "slow"]:
        assert f"@pytest.mark.{name}:" in proc.stdout, name


def test_collection_imports_no_heavy_sdk() -> None:
    code = (
        "import sys, pytest\n"
        "pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', '--no-reports', '--profile=onprem-runai'])\n"
        "heavy = ['boto3', 'mlflow', 'docker', 'google.cloud.storage', 'kubernetes', 'gitlab', 'requests']\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert "HEAVY []" in proc.stdout, proc.stdout[-2000:]


def test_readme_catalogue_is_the_generated_one() -> None:
    from conformance import catalogue

    readme = (REPO / "README.md").read_text()
    start, end = readme.index("<!-- catalogue:start -->\n"), readme.index("<!-- catalogue:end -->")
    assert readme[start + len("<!-- catalogue:start -->\n") : end].strip() == catalogue.markdown(), (
        "README's check table is stale: python -m conformance checks --markdown"
    )
    ids = sorted(i for per in all_check_ids().values() for i in per)
    assert [e.check_id for e in catalogue.entries()] == ids
    assert f"{len(ids)} checks over" in readme
