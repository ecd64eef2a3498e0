"""The profile field reference, generated from the schema in ``conformance/profile.py``.

Names, types, defaults and whether a field is required come from the pydantic models; what a field
is comes from its ``Field(description=...)`` or else the comment on its line in the model's source;
which sections a platform needs comes from ``conformance.components``; the guide's defaults from
``profile.GUIDE_DEFAULTS``. ``python -m conformance profile fields --markdown`` prints the README's
table (a test keeps the two identical).
"""

from __future__ import annotations

import ast
import inspect
import io
import tokenize
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from conformance import profile as schema
from conformance.components import COMPONENTS
from conformance.secrets import Secret


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the ``# comment`` on its line (or the last line of its statement) in the class body."""
    source = inspect.getsource(model)
    by_line: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            by_line[token.start[0]] = token.string.lstrip("#").strip()
    found: dict[str, str] = {}
    tree = ast.parse(source)
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = by_line.get(node.lineno) or by_line.get(node.end_lineno or node.lineno)
            if text:
                found[node.target.id] = text
    return found


def _validator_kind(metadata: list[Any]) -> str | None:
    for item in metadata:
        func = getattr(item, "func", None)
        if func is schema._local_path:
            return "path"
        if func is schema._existing_file:
            return "file (must exist)"
        if func is schema._secret:
            return "secret ref (`env:`/`file:`)"
    return None


def type_name(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A reader's name for a field's type: ``path``, ``onprem \\| gcp``, ``list of str``..."""
    kind = _validator_kind(metadata or [])
    if kind:
        return kind
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return type_name(base, list(extra))
    if origin is Literal:
        return " | ".join(str(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        parts = [type_name(a) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(parts)
    if origin is list:
        (item,) = get_args(annotation)
        return f"list of {type_name(item)}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"map {type_name(key)} -> {type_name(value)}"
    if annotation is Secret:
        return "secret ref (`env:`/`file:`)"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__.lower()
    if annotation in (Path,):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _default(path: str, info: FieldInfo) -> str:
    guide = schema.GUIDE_DEFAULTS.get(path)
    if info.is_required():
        return f"required; guide default: {guide}" if guide else "**required**"
    default = info.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        shown = "defaults below"
    elif default is None or default in ([], {}):
        shown = "unset"
    elif default == "":
        shown = '`""`'
    elif isinstance(default, bool):
        shown = f"`{str(default).lower()}`"
    elif isinstance(default, list):
        shown = f"`[{', '.join(str(v) for v in default)}]`"
    else:
        shown = f"`{default}`"
    return f"{shown}; guide default: {guide}" if guide else shown


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    comments = _comments(model)
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        section = schema.section_model(name) if not prefix and name in schema.Profile.model_fields else None
        what = info.description or comments.get(name, "")
        if section is not None:
            doc = inspect.getdoc(section) or ""
            what = doc.split("\n\n", 1)[0]
            component = COMPONENTS.get(name)
            all_defaults = not any(f.is_required() for f in section.model_fields.values())
            if component is not None and not all_defaults:
                guide = schema.GUIDE_DEFAULTS.get(path)
                need = f"required for {component.scope}" + (f"; guide default: {guide}" if guide else "")
            else:
                need = _default(path, info)
            yield f"**`{path}`**", "section", need, what
            yield from _rows(section, f"{path}.")
            continue
        yield f"`{path}`", type_name(info.annotation, list(info.metadata)), _default(path, info), what
        item = get_args(info.annotation)[0] if get_origin(info.annotation) is list else None
        if isinstance(item, type) and issubclass(item, BaseModel):  # network.endpoints: each entry's fields
            yield from _rows(item, f"{path}[].")


def markdown() -> str:
    lines = ["| field | type | default | what it is |", "|---|---|---|---|"]
    for field, kind, default, what in _rows(schema.Profile):
        lines.append(f"| {field} | {_cell(kind)} | {_cell(default)} | {_cell(what)} |")
    return "\n".join(lines)


def text() -> str:
    return "\n".join(f"{field.strip('*`'):36} {kind:28} {default}" for field, kind, default, _ in _rows(schema.Profile))
