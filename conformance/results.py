"""The results document (``conformance-results/1``): one typed model for its writer and every reader.

``report.py`` writes it at the end of a run; ``diff``, ``merge`` (fleet.py), ``bundle`` and the verdict
read it with ``read(path)``, which treats the file as untrusted: a bad one is one ``ResultsError`` line
naming the file and the field. Outcomes, worst first (a fleet cell shows the worst of its checks):

    error > failed > xpassed > passed > xfailed > skipped

``error``: nothing could be proven (unreachable, blocked by a failed prerequisite); ``failed``: a proven
non-conformance; ``xpassed``: a known-broken check now passes (its xfail marker is stale); ``xfailed``
(a known, marked problem) and ``skipped`` (not applicable) do not colour a cell that has passing checks.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from conformance import files
from conformance.components import component_of_check

SCHEMA: Final = "conformance-results/1"
Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")  # the summary's order
ORDER: tuple[Outcome, ...] = ("error", "failed", "xpassed", "passed", "xfailed", "skipped")  # worst first
RANK: dict[str, int] = {outcome: len(ORDER) - i for i, outcome in enumerate(ORDER)}  # higher is worse
PROBLEMS = frozenset({"error", "failed", "xpassed"})  # listed as failures
MAX_BYTES = 256 * 1024 * 1024  # a results file of thousands of checks is a few MB
_PARAM = re.compile(r"\[(.*)\]$")


class ResultsError(Exception):
    """A file that cannot be used as a results document; the message is one line."""


def worst(outcomes: Iterable[str]) -> str | None:
    return max(outcomes, key=RANK.__getitem__, default=None)


def count(checks: Iterable[Check]) -> dict[str, int]:
    """Checks per outcome, every outcome named (the document's ``summary``)."""
    counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for check in checks:
        counts[check.outcome] += 1
    return counts


class Check(BaseModel):
    """One check's record, merged over its setup, call and teardown."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    component: str
    nodeid: str
    outcome: Outcome
    duration_s: float = 0.0
    message: str = ""
    remediation: str = ""
    blocked_by: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _as_read(cls, data: Any) -> Any:
        """A null outcome is an error (no phase said anything); no component: the one its id names."""
        if not isinstance(data, dict):
            return data
        data = {**data, "outcome": data.get("outcome") or "error"}
        if not isinstance(data.get("component"), str) or not data["component"]:
            known = component_of_check(data["id"]) if isinstance(data.get("id"), str) else None
            data["component"] = known.name if known else "unknown"
        return data

    @property
    def param(self) -> str:
        match = _PARAM.search(self.nodeid)
        return match.group(1) if match else ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.param)

    @property
    def label(self) -> str:
        return f"{self.id}[{self.param}]" if self.param else self.id


class Vantage(BaseModel):
    model_config = ConfigDict(extra="allow")

    hostname: str
    in_cluster: bool = False


class Run(BaseModel):
    """One run's results document; ``path`` is where it was read from (or the profile it ran)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_name: Literal["conformance-results/1"] = Field(SCHEMA, alias="schema")
    profile: str
    platform: str = "?"
    orchestrator: str = "?"
    guide_version: str = "?"
    suite_version: str = "?"
    run_id: str
    started: str
    duration_s: float = 0.0
    vantage: Vantage
    tls_insecure: bool = False
    simulated: list[str] = Field(default_factory=list)
    client_libraries: dict[str, str] = Field(default_factory=dict)
    checks: list[Check]
    summary: dict[str, int] = Field(default_factory=dict)
    waivers: list[dict[str, str]] = Field(default_factory=list)
    _path: str = PrivateAttr("")

    @field_validator("started")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not an ISO-8601 time") from None
        return value

    @property
    def path(self) -> str:
        return self._path

    @property
    def started_at(self) -> dt.datetime:
        started = dt.datetime.fromisoformat(self.started)
        return (started if started.tzinfo else started.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)

    @property
    def started_text(self) -> str:
        return self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def environment(self) -> tuple[str, str, bool]:
        return (self.profile, self.vantage.hostname, self.vantage.in_cluster)

    @property
    def where(self) -> str:
        return f"{self.vantage.hostname} ({'inside' if self.vantage.in_cluster else 'outside'} Kubernetes)"

    @property
    def label(self) -> str:
        return f"{self.profile} @ {self.where}"

    def counts(self) -> dict[str, int]:
        return count(self.checks)

    def worst(self) -> str | None:
        return worst(check.outcome for check in self.checks)

    def document(self) -> dict[str, Any]:
        """The JSON document: the keys given (or read), in the schema's order."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.document(), indent=2) + "\n", encoding="utf-8")


def _problem(exc: ValidationError) -> str:
    """The first validation error as ``field problem``; how many more there are."""
    errors = exc.errors()
    first = errors[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    value = first.get("input")
    if first["type"] == "missing":
        problem = "is missing"
    elif first["type"] == "literal_error" and where.endswith("outcome"):
        problem = f"{str(value)[:40]!r} is not one of {', '.join(OUTCOMES)}"
    elif first["type"] == "value_error":
        problem = str(first["ctx"]["error"])
    else:  # "Input should be a valid string" -> "should be a valid string"
        problem = first["msg"].replace("Input should", "should")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'document'} {problem}{more}"


def parse(data: Mapping[str, Any], path: str | Path) -> Run:
    """A results document already in memory; ``path`` names it in errors and in ``Run.path``."""
    try:
        run = Run.model_validate(data)
    except ValidationError as exc:
        raise ResultsError(f"{path}: {_problem(exc)}") from None
    run._path = str(path)
    return run


def read(path: Path) -> Run:
    """The results document in ``path``; ResultsError (one line) when it is not one."""
    raw = files.read_or_problem(path, max_bytes=MAX_BYTES)  # a FIFO or /dev/zero: refused at once
    if raw == "is a directory, not a regular file":
        raise ResultsError(f"{path}: is a directory, not a results file")
    if isinstance(raw, str):
        raise ResultsError(f"{path}: cannot read ({raw.removeprefix('is ')})")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not a results file (not JSON: {exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a results file (not UTF-8 text)") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: not a results file (JSON {type(data).__name__}, not an object)")
    if data.get("withheld") is True:
        raise ResultsError(f"{path}: withheld by the suite's leak scan; it holds no results")
    if "schema" not in data:
        raise ResultsError(f"{path}: not a results file (no 'schema' key)")
    if data["schema"] != SCHEMA:
        raise ResultsError(f"{path}: schema {str(data['schema'])[:60]!r} is not supported (this tool reads {SCHEMA})")
    return parse(data, path)


# Run-to-run noise in a message: loopback ports, run ids, times, durations, temporary paths.
_NOISE = (
    (re.compile(r"\b(localhost|127\.0\.0\.1|\[::1\]):\d+"), r"\1:PORT"),
    (re.compile(r"\b\d{14}-[0-9a-f]{6}\b"), "RUN_ID"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?"), "TIME"),
    (re.compile(r"\b\d+(\.\d+)? ?(ms|s|seconds?)\b"), "N s"),
    (re.compile(r"/(tmp|var/folders)/[^\s'\",;)]+"), "TMP"),
)


def fingerprint(run: Run) -> dict[str, dict[str, Any]]:
    """What a refactor must not change, per check (by nodeid): id, outcome, message without noise, evidence keys."""
    prints = {}
    for check in run.checks:
        message = check.message
        for pattern, replacement in _NOISE:
            message = pattern.sub(replacement, message)
        prints[check.nodeid] = {
            "id": check.id,
            "outcome": check.outcome,
            "message": message,
            "evidence": sorted(check.evidence),
        }
    return prints
