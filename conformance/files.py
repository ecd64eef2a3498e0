"""Reading the user's small credential and config files, with one-line errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class FileProblem(ValueError):
    """A file that cannot be used; the message is one line naming the file, never its content."""


def read_text(path: Path, what: str, error: type[Exception] = FileProblem) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} does not exist") from None
    except IsADirectoryError:
        raise error(f"{path}: {what} is a directory, not a file") from None
    except PermissionError:
        raise error(f"{path}: {what} is not readable (permission denied)") from None
    except OSError as exc:
        raise error(f"{path}: {what} is not readable ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: {what} is not UTF-8 text") from None


def read_json_object(path: Path, what: str, error: type[Exception] = FileProblem) -> dict[str, Any]:
    text = read_text(path, what, error)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise error(f"{path}: {what} is nested too deeply to be one") from None
    if not isinstance(data, dict):
        raise error(f"{path}: {what} must be a JSON object, not {type(data).__name__}")
    return data
