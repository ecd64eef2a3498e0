"""The check catalogue, read from the component modules' source (nothing is imported or run).

``python -m conformance checks`` prints it; ``--markdown`` gives the README's table.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from conformance import graph
from conformance.components import COMPONENTS, ORCHESTRATORS, PLATFORMS

COMPONENTS_DIR = Path(__file__).resolve().parent / "components"
SCOPE_MARKERS = (*PLATFORMS, *ORCHESTRATORS, "writes")


@dataclass(frozen=True)
class Entry:
    check_id: str
    component: str
    name: str
    markers: tuple[str, ...]
    remediation: str

    @property
    def applies(self) -> str:
        scope = [m for m in self.markers if m != "writes"] or ["all"]
        return ", ".join(scope) + (" (writes)" if "writes" in self.markers else "")


def _marker(node: ast.expr) -> str | None:
    """``pytest.mark.NAME`` -> NAME."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "mark":
        return node.attr
    return None


def entries() -> list[Entry]:
    found = []
    for component in COMPONENTS.values():
        tree = ast.parse((COMPONENTS_DIR / f"test_{component.name}.py").read_text())
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            check_id, remediation, markers = None, "", []
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "check":
                    args = [a.value for a in decorator.args if isinstance(a, ast.Constant)]
                    check_id = str(args[0]) if args else None
                    remediation = " ".join(str(args[1]).split()) if len(args) > 1 else ""
                elif (name := _marker(decorator)) in SCOPE_MARKERS:
                    markers.append(str(name))
            if check_id:
                if component.name in SCOPE_MARKERS and component.name not in markers:
                    markers.append(component.name)  # the gcp and runai components are also axis markers
                for axis, scope in ((PLATFORMS, component.platforms), (ORCHESTRATORS, component.orchestrators)):
                    if scope != axis and not any(m in axis for m in markers):  # the component's own scope
                        markers.extend(scope)
                name = node.name.removeprefix("test_").replace("_", " ")
                found.append(Entry(check_id, component.name, name, tuple(markers), remediation))
    return sorted(found, key=lambda e: e.check_id)


def markdown() -> str:
    lines = [
        "| id | component | check | applies to | blocked by | remediation (first sentence) |",
        "|---|---|---|---|---|---|",
    ]
    for entry in entries():
        first = entry.remediation.split(". ")[0].rstrip(".") + "."
        blocked = graph.column(entry.check_id) or "-"
        lines.append(f"| {entry.check_id} | {entry.component} | {entry.name} | {entry.applies} | {blocked} | {first} |")
    return "\n".join(lines)


def text() -> str:
    return "\n".join(
        f"{e.check_id:8} {e.component:15} {e.name:40} {e.applies:22} {graph.column(e.check_id)}".rstrip()
        for e in entries()
    )
