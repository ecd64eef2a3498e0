"""A component is declared once: adding one touches only the files README's walkthrough lists.

The first test adds a toy component to a copy of the package by editing exactly those files, then
shows that the check-id pattern, the markers, the fixture, the catalogue, the report's libraries,
cleanup and the sandbox pick it up, and that its check runs (and fails for the right reason). The
scan below keeps other modules from listing the components again.
"""

from __future__ import annotations

import ast
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.components import COMPONENTS
from tests.conftest import REPO

PACKAGE = REPO / "conformance"
TOY = 'Component("toy", "TOY", "Toy service", "toy team", libraries=("toy-sdk",), writes=True),'
TOY_CHECKS = '''"""TOY: does the toy service answer 42?"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks import check, expect


@pytest.mark.writes
@check("TOY-001", "Set toy.answer to 42.")
def test_answer(toy: Any) -> None:
    expect(toy.answer == 42, expected="the answer 42", actual=f"the answer {toy.answer}")
'''
TOY_CLIENT = '''"""How to talk to the toy service."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from conformance.cleanup import Swept
from conformance.profile import Profile


@dataclass
class Toy:
    answer: int


def connect(profile: Profile, run_id: str) -> Toy:
    assert profile.toy is not None
    return Toy(profile.toy.answer)


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    return Swept(items=["toy probe conformance-20200101000000-abcdef"])
'''
TOY_SIMULATOR = '''"""The toy service, simulated."""


def start(sandbox: object) -> None:
    pass
'''
# What a fresh interpreter in the copy derives from the declaration.
DERIVED = """
import json
from conformance import catalogue, checks, cleanup, fixtures, report, sandbox
from conformance.profile import requirements, Profile
print(json.dumps({
    "check_id": bool(checks.CHECK_ID.match("TOY-001")),
    "libraries": "toy-sdk" in report.CLIENT_LIBRARIES,
    "catalogue": [[e.check_id, e.component, list(e.markers)] for e in catalogue.entries() if e.component == "toy"],
    "cleanup": cleanup.COMPONENTS[0],
    "sandbox": sandbox.SERVICES[-1],
    "fixture": callable(getattr(fixtures, "toy", None)),
    "requirements": requirements(Profile(platform="onprem", orchestrator="noorch"), {"toy"}),
}))
"""


def walkthrough() -> list[str]:
    """The files README's "Adding a component" lists, in its numbered steps."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Adding a component\n", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\d+\. `([^`]+)`", section, flags=re.MULTILINE)


def add_toy(root: Path) -> None:
    """The walkthrough's five edits, for a component named ``toy``."""
    declaration = root / "conformance/components/__init__.py"
    text = declaration.read_text()
    assert text.count("\n    )\n}\n") == 1, "the COMPONENTS table no longer ends as the toy edit expects"
    declaration.write_text(text.replace("\n    )\n}\n", f"\n        {TOY}\n    )\n}}\n"))
    (root / "conformance/components/test_toy.py").write_text(TOY_CHECKS)
    (root / "conformance/clients/toy.py").write_text(TOY_CLIENT)
    profile = root / "conformance/profile.py"
    text = profile.read_text()
    assert text.count("\nclass Profile(Model):\n") == 1
    profile.write_text(
        text.replace(
            "\nclass Profile(Model):\n",
            "\nclass Toy(Model):\n    answer: int\n\n\nclass Profile(Model):\n    toy: Toy | None = None\n",
        )
    )
    (root / "conformance/sandbox/toy.py").write_text(TOY_SIMULATOR)


def changed(before: Path, after: Path, at: str = "") -> list[str]:
    """Files of ``after`` that are new or differ from ``before``, relative paths."""
    found = []
    compared = filecmp.dircmp(before, after, ignore=["__pycache__"])
    found += [f"{at}{name}" for name in compared.right_only]
    found += [f"{at}{name}" for name in compared.diff_files]
    for name in compared.common_dirs:
        found += changed(before / name, after / name, f"{at}{name}/")
    return found


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFORMANCE_")}
    return subprocess.run(
        [sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def toy_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    shutil.copytree(PACKAGE, root / "conformance", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    add_toy(root)
    return root


def test_the_walkthrough_lists_at_most_five_files_and_the_toy_edits_exactly_those(toy_copy: Path) -> None:
    files = walkthrough()
    assert 0 < len(files) <= 5, files
    assert sorted(changed(PACKAGE, toy_copy / "conformance")) == sorted(
        f.replace("<name>", "toy").removeprefix("conformance/") for f in files
    )


def test_everything_derived_picks_the_toy_up(toy_copy: Path) -> None:
    proc = run(toy_copy, "-c", DERIVED)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "check_id": True,
        "libraries": True,
        "catalogue": [["TOY-001", "toy", ["writes"]]],
        "cleanup": "toy",  # declared last: swept first
        "sandbox": "toy",
        "fixture": True,
        "requirements": ["toy: required for every platform (set toy.answer)"],
    }
    checks = run(toy_copy, "-m", "conformance", "checks")
    assert re.search(r"^TOY-001\s+toy\s+answer\s+all \(writes\)", checks.stdout, flags=re.MULTILINE), checks.stdout


def test_the_plugin_registers_the_toy_marker_and_runs_its_check(toy_copy: Path) -> None:
    markers = run(toy_copy, "-m", "pytest", "--markers", "-p", "no:cacheprovider")
    assert "@pytest.mark.toy: Toy service checks" in markers.stdout, markers.stdout + markers.stderr
    outcomes = {}
    for answer in (42, 7):
        profile = toy_copy / f"toy-{answer}.yaml"
        profile.write_text(f"platform: onprem\norchestrator: noorch\ntoy:\n  answer: {answer}\n")
        proc = run(toy_copy, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "toy", "--no-reports",
                   f"--profile={profile}", "conformance/components/test_toy.py")  # fmt: skip
        outcomes[answer] = proc.returncode, proc.stdout
    assert outcomes[42][0] == 0, outcomes[42][1]
    assert outcomes[7][0] == 1, outcomes[7][1]
    assert "TOY-001" in outcomes[7][1]
    assert "the answer 7" in outcomes[7][1]
    swept = run(toy_copy, "-m", "conformance", "cleanup", f"--profile={toy_copy / 'toy-42.yaml'}",
                "--older-than", "1d", "--dry-run")  # fmt: skip
    assert "toy: would delete toy probe conformance-20200101000000-abcdef" in swept.stdout, swept.stdout + swept.stderr


# --------------------------------------------------------------------------- no second list


def listed(node: ast.AST) -> list[str]:
    """The string constants a collection literal (or a dict's keys) holds."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        items: list[ast.expr | None] = list(node.elts)
    elif isinstance(node, ast.Dict):  # a map of profile field paths ("ci.runner_tags") is a field reference
        items = list(node.keys)
        if any(isinstance(k, ast.Constant) and "." in str(k.value) for k in items):
            return []
    else:
        return []
    return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]


def second_lists(source: str) -> list[str]:
    """Literals naming three or more components, or three or more check-id prefixes (a list or a regex)."""
    names, prefixes = set(COMPONENTS), {c.prefix for c in COMPONENTS.values()}
    found = []
    for node in ast.walk(ast.parse(source)):
        strings = listed(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings = re.findall(r"[A-Z0-9]+", node.value) if "|" in node.value else []
        if len(names & set(strings)) >= 3 or len(prefixes & set(strings)) >= 3:
            found.append(f"line {getattr(node, 'lineno', '?')}: {ast.unparse(node)[:80]}")
    return found


# Per-section knowledge that is no list of the components: init's drafts fill the sections it has guide
# values for (a component without a template gets requirements()' line in `profile check`).
TEMPLATES = {"conformance/init.py"}


def test_no_other_module_lists_the_components() -> None:
    declaration = PACKAGE / "components" / "__init__.py"
    found = {
        name: lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != declaration
        and (name := str(path.relative_to(REPO))) not in TEMPLATES
        and (lines := second_lists(path.read_text()))
    }
    assert found == {}


def test_the_scan_finds_a_second_list() -> None:
    assert second_lists('SERVICES = ("registry", "mlflow", "gitlab")')
    assert second_lists('CHECK_ID = re.compile(r"^(NET|GIT|K8S)-\\d{3}$")')
    assert not second_lists('GUIDE_SECRETS = {("gcp", "runai"): ["gcp-sa-credentials"]}')


def test_writes_is_declared_where_checks_write_and_the_client_sweeps() -> None:
    writing = {e.component for e in catalogue.entries() if "writes" in e.markers}
    declared = {c.name for c in COMPONENTS.values() if c.writes}
    sweeping = {p.stem for p in (PACKAGE / "clients").glob("*.py") if "\ndef sweep(" in p.read_text()}
    assert writing == declared == sweeping
