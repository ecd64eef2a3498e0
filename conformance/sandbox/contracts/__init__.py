"""Contract transcripts: what a real service answers, pinned to its published source.

A simulator is a claim about a real service. Each behaviour a check relies on is written down
here once, as a transcript taken from the real service's published source or documentation
(named, with its version, in the transcript's ``source``), and then used twice:

* the simulators in ``conformance/sandbox/`` answer from it, so they cannot drift from it;
* ``tests/contracts/`` replays it through the clients' parsers, so a check that misreads the
  real answer fails there.

One YAML file per service (``<service>.yaml`` beside this module)::

    service: harbor
    transcripts:
      push-denied-no-role:            # a name the simulator and the tests both use
        source: goharbor/harbor v2.10.0 src/server/middleware/v2auth/auth.go
        versions: ["2.7", "2.10"]     # the real versions this transcript holds for (optional)
        http:                         # an HTTP answer ...
          status: 401
          headers: {Www-Authenticate: 'Bearer realm="..."'}
          body: '{"errors": [...]}'
        # ... or a command's: cli: {argv: [...], stdout: "...", stderr: "", exit: 0}

Transcripts are data: plain strings and numbers, no code. ``{placeholders}`` in bodies and
outputs are filled by the simulator with :meth:`Transcript.render` (names, ids, times).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


class ContractError(Exception):
    """A transcript file is missing a field or names a transcript that does not exist."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass(frozen=True)
class CliAnswer:
    argv: tuple[str, ...]
    stdout: str = ""
    stderr: str = ""
    exit: int = 0


@dataclass(frozen=True)
class Transcript:
    service: str
    name: str
    source: str
    versions: tuple[str, ...]
    http: HttpAnswer | None
    cli: CliAnswer | None

    def render(self, text: str, **values: object) -> str:
        """Fill ``{name}`` placeholders; a placeholder without a value is an error, never left raw."""
        names = {part[1] for part in string.Formatter().parse(text) if part[1]}
        missing = names - values.keys()
        if missing:
            raise ContractError(f"{self.service}/{self.name}: no value for {sorted(missing)}")
        return text.format(**values)


def _transcript(service: str, name: str, raw: dict[str, Any]) -> Transcript:
    where = f"{service}.yaml: transcripts.{name}"
    if not raw.get("source"):
        raise ContractError(f"{where}.source: every transcript names the real service's source and version")
    http = raw.get("http")
    cli = raw.get("cli")
    if (http is None) == (cli is None):
        raise ContractError(f"{where}: exactly one of http or cli")
    return Transcript(
        service=service,
        name=name,
        source=str(raw["source"]),
        versions=tuple(str(v) for v in raw.get("versions") or ()),
        http=None
        if http is None
        else HttpAnswer(
            status=int(http["status"]),
            headers={str(k): str(v) for k, v in (http.get("headers") or {}).items()},
            body=str(http.get("body") or ""),
        ),
        cli=None
        if cli is None
        else CliAnswer(
            argv=tuple(str(a) for a in cli.get("argv") or ()),
            stdout=str(cli.get("stdout") or ""),
            stderr=str(cli.get("stderr") or ""),
            exit=int(cli.get("exit") or 0),
        ),
    )


@cache
def load(service: str) -> dict[str, Transcript]:
    """Every transcript of one service, by name."""
    path = HERE / f"{service}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path.name}: {type(exc).__name__}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("transcripts"), dict):
        raise ContractError(f"{path.name}: transcripts: a mapping of name to transcript is required")
    return {str(name): _transcript(service, str(name), body) for name, body in raw["transcripts"].items()}


def get(service: str, name: str) -> Transcript:
    """One transcript; a name the file does not define is an error (simulator and tests agree on names)."""
    transcripts = load(service)
    if name not in transcripts:
        raise ContractError(f"{service}.yaml: no transcript named {name!r}")
    return transcripts[name]


def services() -> list[str]:
    return sorted(path.stem for path in HERE.glob("*.yaml"))
