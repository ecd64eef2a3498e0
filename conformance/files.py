"""The one reader for every file the suite opens: profiles, waivers, ``file:`` secrets, credential files.

Every file a user names is read here, so that every one gets the same guarantees:

- a regular file only: a FIFO, a device (``/dev/zero``), a socket or a directory is refused
  (a FIFO is opened without blocking, so naming one never hangs the run);
- at most :data:`MAX_BYTES`: the same cap for the secret index (``credentials.py``) and for
  what the clients use, so no credential the report cannot scan for is ever sent;
- a deadline (:data:`READ_DEADLINE` seconds) for the whole open and read: a file on a hung
  network mount gives an error, not a hang;
- UTF-8 text, with the line of the first bad byte in the message.

Each problem is one line naming the file, never its content. YAML goes through
:func:`parse_yaml`: duplicate keys, alias bombs, integers too long to convert and impossible
dates are one line each too.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1_000_000  # a profile, waiver list or credential file is small; anything bigger is a mistake
READ_DEADLINE = 5.0  # seconds to open and read one file
MAX_VALUES = 100_000  # values a YAML document may expand to through aliases; a real profile has a few hundred
MAX_INT_DIGITS = 100  # no setting needs more; Python refuses to convert past 4300 anyway


class FileProblem(ValueError):
    """A file that cannot be used; the message is one line naming the file, never its content."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def shown(path: Path | str) -> str:
    """``path`` for a one-line message: a line break or other control character in a name is escaped."""
    text = str(path)
    if all(ch.isprintable() for ch in text):
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    return next((name for test, name in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "does not exist"
    if exc.errno == errno.ELOOP:
        return "is a symbolic link loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "is not readable (permission denied)"
    if exc.errno == errno.ENOTDIR:
        return "does not exist (a parent is not a folder)"
    if exc.errno == errno.ENAMETOOLONG:
        return "has a name too long for the file system"
    return f"is not readable ({exc.strerror or type(exc).__name__})"


def regular_file_problem(path: Path, *, max_bytes: int = MAX_BYTES) -> str | None:
    """Why ``path`` is not a regular file the reader would read (``does not exist``, ``is a FIFO...``), or None."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return _os_problem(exc)
    except ValueError:  # a NUL byte in the name
        return "is not a valid file name"
    kind = _kind(info.st_mode)
    if kind is not None:
        return f"is {kind}, not a regular file" if kind != "not a regular file" else "is not a regular file"
    if info.st_size > max_bytes:
        return _too_large(info.st_size, max_bytes)
    return None


def _too_large(size: int, max_bytes: int) -> str:
    return f"is {size} bytes; at most {max_bytes} are read (is it the right file?)"


def _read_regular(path: Path, max_bytes: int) -> bytes | str:
    """The bytes of ``path``, or the problem (a str)."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return _os_problem(exc)
    except ValueError:
        return "is not a valid file name"
    try:
        info = os.fstat(fd)
        kind = _kind(info.st_mode)
        if kind is not None:
            return f"is {kind}, not a regular file" if kind != "not a regular file" else "is not a regular file"
        if info.st_size > max_bytes:
            return _too_large(info.st_size, max_bytes)
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= max_bytes:
            # What the file holds (plus one, to see it end), not the whole cap: no needless big buffers.
            chunk = os.read(fd, min(max_bytes + 1 - size, max(info.st_size + 1 - size, 64 * 1024)))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:  # it grew while being read
            return f"is more than {max_bytes} bytes; at most {max_bytes} are read (is it the right file?)"
        return b"".join(chunks)
    except OSError as exc:
        return _os_problem(exc)
    finally:
        os.close(fd)


def read_or_problem(path: Path, *, max_bytes: int = MAX_BYTES) -> bytes | str:
    """The bytes of the regular file ``path``, or why not (``does not exist``, ``is a FIFO...``: a str)."""
    result: list[bytes | str] = []
    reader = threading.Thread(target=lambda: result.append(_read_regular(path, max_bytes)), daemon=True)
    reader.start()
    reader.join(READ_DEADLINE)
    if not result:  # the thread is left to finish on its own: a blocked read cannot be cancelled
        return f"could not be read within {READ_DEADLINE:g} s (a hung network file system?)"
    return result[0]


def read_bytes(path: Path, what: str, error: type[Exception] = FileProblem, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The content of the regular file ``path``; else ``error('<path>: <what> <problem>')``."""
    content = read_or_problem(path, max_bytes=max_bytes)
    if isinstance(content, str):
        raise error(f"{shown(path)}: {what} {content}")
    return content


def decode(content: bytes, path: Path, what: str, error: type[Exception] = FileProblem) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise error(f"{shown(path)}: {what} is not UTF-8 text (line {line}, byte {exc.start + 1})") from None


def read_text(path: Path, what: str, error: type[Exception] = FileProblem, *, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (at most ``max_bytes``); else one line naming the file."""
    return decode(read_bytes(path, what, error, max_bytes=max_bytes), path, what, error)


class Unreadable(OSError):
    """Raised by :func:`read_utf8`: ``strerror`` is the problem, without the file's name."""


def read_utf8(path: Path, *, max_bytes: int = MAX_BYTES) -> str:
    """``path.read_text(encoding="utf-8")`` through the one reader, raising as it does.

    For code that handles ``OSError`` (here :class:`Unreadable`, its ``strerror`` saying why: a FIFO,
    a device, too large, too slow) and ``UnicodeDecodeError`` already.
    """
    content = read_or_problem(path, max_bytes=max_bytes)
    if isinstance(content, str):
        raise Unreadable(0, content.removeprefix("is "))
    return content.decode("utf-8")


def read_json_object(path: Path, what: str, error: type[Exception] = FileProblem) -> dict[str, Any]:
    text = read_text(path, what, error)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{shown(path)}: {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise error(f"{shown(path)}: {what} is nested too deeply to be one") from None
    except ValueError as exc:  # an integer too long to convert
        raise error(f"{shown(path)}: {what} is not usable JSON ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise error(f"{shown(path)}: {what} must be a JSON object, not {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- YAML


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what it would silently accept or crash on.

    Duplicate keys (PyYAML keeps the last), integers too long to convert, impossible dates
    (2030-02-31): each a :class:`yaml.constructor.ConstructorError` with the position.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {_short(key)} (first at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(ch.isalnum() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {digits} digits (at most {MAX_INT_DIGITS})", node.start_mark
            )
        value: int = super().construct_yaml_int(node)
        return value

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> dt.date | dt.datetime:
        try:
            value: dt.date | dt.datetime = super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{_short(node.value)} is not a valid date ({exc})", node.start_mark
            ) from None
        return value


StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)
StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", StrictLoader.construct_yaml_timestamp)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:45] + "...(truncated)"


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` becomes once every alias is expanded (shared nodes counted once each use)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once instead of forever
    total = 1
    if isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(item, memo) for item in node.value)
    memo[id(node)] = total
    return total


def parse_yaml(text: str, where: str, error: type[Exception] = FileProblem) -> Any:
    """One YAML document, strictly (see :class:`StrictLoader`); a problem is ``error('<where>: ...')``."""
    size = 0
    try:
        loader = StrictLoader(text)
        try:
            node = loader.get_single_node()
            size = _expanded_size(node, {}) if node is not None else 0
            # YAML aliases can expand a small file without bound ("billion laughs"): not constructed.
            data = None if node is None or size > MAX_VALUES else loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError:
        raise error(f"{where}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise error(f"{where}: {at}{kind}: {problem}") from None
    except (ValueError, OverflowError, TypeError) as exc:  # a constructor PyYAML leaves unguarded
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise error(f"{where}: YAML value that cannot be read ({first})") from None
    if size > MAX_VALUES:
        raise error(f"{where}: expands to {size} values through YAML aliases (at most {MAX_VALUES})")
    return data
