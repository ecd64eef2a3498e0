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

from conformance import files

MASK = "********"
# Values shorter than this are not scanned for: a 2-character "secret" would
# match half the report. Profiles are validated to reject them (see profile.py).
MIN_SCAN_LENGTH = 6
TRUNCATED_WINDOW = 20  # characters of each end of a long token looked for on their own
MAX_SECRET_BYTES = 64 * 1024  # a password, token or key; a bigger "secret" file is the wrong file


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
        # The one reader: a FIFO, /dev/zero or a folder is refused at once, a huge file is not read.
        content = files.read_or_problem(path, max_bytes=MAX_SECRET_BYTES)
        if isinstance(content, str):
            raise SecretRefError(f"file {files.shown(path)} {content}")
        value = files.decode(content, path, "file", SecretRefError).strip()
        if not value:
            raise SecretRefError(f"file {path} is empty")
    problem = header_problem(value)
    if problem:
        raise SecretRefError(f"the value of {ref} {problem}")
    return Secret(value, ref)


def header_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent in an HTTP header (as a token or in Basic auth), or None.

    HTTP clients send header values as latin-1 and refuse line breaks; they would raise with the
    header (and so the value) in the exception, which ``-l`` prints in Python's escaped form.
    Refused here, before any request, with a message that never holds the value.
    """
    if value != value.strip(" "):  # requests refuses a leading space; servers strip both ends
        return "starts or ends with a space; it cannot be sent in an HTTP header as it is"
    for index, char in enumerate(value):
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            name = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab"}.get(char, "a control character")
            return f"holds {name} (character {index + 1}); it cannot be sent in an HTTP header"
        if code > 0x7E:
            # requests sends header values and Basic credentials as latin-1 (or refuses them): a server
            # never reads back the same text, and the exception would print the value escaped.
            return f"holds a non-ASCII character (character {index + 1}); it cannot be sent in an HTTP header"
    return None


def _escaped(value: str) -> set[str]:
    """``value`` as Python and JSON print it inside a str or bytes: repr, ascii, unicode-escape, JSON."""
    encoded = value.encode("utf-8", errors="surrogatepass")
    forms = {
        repr(value)[1:-1],  # repr / -l / tracebacks: \n, \t, \' and friends
        ascii(value)[1:-1],  # ascii(): \xfc, \u20ac
        repr(encoded)[2:-1],  # bytes repr: \xc3\xbc
        value.encode("unicode_escape").decode("ascii"),
        json.dumps(value)[1:-1],  # JSON, ensure_ascii: \u00fc
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    # The other quote: repr picks '...' unless the value holds ' and no ".
    forms.add(repr(value + "'\"")[1:-4])
    return forms


def encodings(value: str) -> set[str]:
    """Every form a secret can take in an artifact or the terminal, as sent and as stored."""
    stored = _escaped(value) | {value}
    # Escaped once more when an escaped form is itself printed in a repr or JSON (a header dict in a
    # repr inside a JSON report), and as HTML/XML (both quote styles) and URL-encoding of each.
    for form in list(stored):
        stored |= _escaped(form)
    found = set(stored)
    for form in stored:
        found |= {html.escape(form), html.escape(form, quote=False), html.escape(form).replace("&#x27;", "&#39;")}
        found |= {urllib.parse.quote(form, safe=""), urllib.parse.quote_plus(form), urllib.parse.quote(form)}
    found.add(base64.b64encode(value.encode("utf-8", errors="surrogatepass")).decode())
    if len(value) >= 2 * TRUNCATED_WINDOW and not any(ch.isspace() for ch in value) and not value.startswith("LS0t"):
        # A long token in a local shown by `-l`, or a shortened exception text, prints as 'head...tail':
        # the tail alone must still be found and masked. Not the head: heads are shared (a JWT's header,
        # base64 of "user:..." whose start encodes the user name, base64 of a PEM's "-----BEGIN" ("LS0t").
        found.add(value[-TRUNCATED_WINDOW:])
    return found


@dataclass
class SecretIndex:
    """Every secret value a profile resolved, by the field it came from; complete (frozen) before any check runs."""

    needles: dict[str, str] = field(default_factory=dict)  # needle -> field
    frozen: bool = False  # set by :meth:`freeze`: every process of a run (xdist's controller too) knows the same

    def freeze(self) -> SecretIndex:
        self.frozen = True
        return self

    def add(self, field_name: str, secret: Secret, *, username: str | None = None) -> None:
        if self.frozen:
            raise RuntimeError("the secret index is complete once the profile is open; obtain the secret there")
        value = secret.reveal()
        variants = set(encodings(value))
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
