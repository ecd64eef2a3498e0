"""Secrets: references in profiles, masked values in code.

A profile never holds a credential. It holds a reference, ``env:NAME`` or
``file:PATH``, which resolves to a :class:`Secret`. A ``Secret`` prints as
``Secret('env:NAME')`` in every repr, str, f-string, log line and traceback;
only the client that sends it calls :meth:`Secret.reveal`.

:class:`SecretIndex` remembers every value the profile resolved, under the
profile field it came from, together with the encodings a client sends on
the wire (base64 of ``user:pass`` for Basic auth, URL-encoding). The report
scrubs and scans artifacts against it.
"""

from __future__ import annotations

import base64
import html
import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MASK = "********"
# Values shorter than this are not scanned for: a 2-character "secret" would
# match half the report. Profiles are validated to reject them (see profile.py).
MIN_SCAN_LENGTH = 6


class SecretRefError(ValueError):
    """A reference that cannot be resolved; the message never holds a value."""


class Secret:
    """A credential whose value only :meth:`reveal` returns."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Refuse to travel (pickle, copy to xdist workers): each process
        # resolves its own profile.
        raise TypeError("Secret values are not serialisable")


def resolve_ref(ref: str, *, base_dir: Path, environ: Mapping[str, str]) -> Secret:
    """Resolve ``env:NAME`` or ``file:PATH`` (relative to ``base_dir``)."""
    kind, sep, target = ref.partition(":")
    if not sep or kind not in ("env", "file") or not target:
        raise SecretRefError("must be a reference 'env:NAME' or 'file:PATH', not a literal value")
    if kind == "env":
        value = environ.get(target)
        if value is None:
            raise SecretRefError(f"environment variable {target} is not set")
        if value == "":
            raise SecretRefError(f"environment variable {target} is empty")
    else:
        path = Path(os.path.expanduser(target))
        if not path.is_absolute():
            path = base_dir / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise SecretRefError(f"file {path} does not exist") from None
        except OSError as exc:
            raise SecretRefError(f"file {path} is not readable ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise SecretRefError(f"file {path} is not UTF-8 text") from None
        if not value:
            raise SecretRefError(f"file {path} is empty")
    return Secret(value, ref)


@dataclass
class SecretIndex:
    """Every secret value a profile resolved, by the field it came from."""

    needles: dict[str, str] = field(default_factory=dict)  # needle -> field

    def add(self, field_name: str, secret: Secret, *, username: str | None = None) -> None:
        value = secret.reveal()
        # As sent (URL-encoded, base64) and as stored (escaped in JSON, XML and HTML artifacts).
        json_escaped = json.dumps(value)[1:-1]
        variants = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
        variants |= {json_escaped, html.escape(value), html.escape(json_escaped)}
        variants.add(base64.b64encode(value.encode()).decode())
        if username is not None:
            pair = f"{username}:{value}".encode()
            variants.add(base64.b64encode(pair).decode())
            variants.add(base64.urlsafe_b64encode(pair).decode())
        for needle in variants:
            if len(needle) >= MIN_SCAN_LENGTH:
                self.needles.setdefault(needle, field_name)

    def find(self, text: str) -> list[str]:
        """Profile fields whose secret appears in ``text`` (never the value)."""
        return sorted({name for needle, name in self.needles.items() if needle in text})

    def redact(self, text: str) -> str:
        # Longest first, so that an encoding containing a shorter needle is
        # replaced whole.
        for needle in sorted(self.needles, key=len, reverse=True):
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self.needles)

    def __repr__(self) -> str:
        return f"SecretIndex({len(self.needles)} needles)"
