"""Waivers: a known platform gap, accepted by an owner until a date.

A waivers file is a YAML list; each entry names a check id (optionally one
parametrised instance), why it is accepted, who owns the decision and when
it expires::

    - check: REG-004
      instance: registry          # optional: only test_x[registry]
      justification: Harbor forbids deletion in project mlops (ticket OPS-123)
      owner: platform-team <mlops@aisingapore.org>
      expires: 2026-12-31         # inclusive, UTC

Until the date a failure of that check shows as waived (xfail); after it the
check fails again. Expired and unused waivers are listed in every report.
No pytest import here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from conformance.profile import ProfileError, display, format_error, read_yaml


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    check: Annotated[str, Field(pattern=r"^[A-Z0-9]+-\d{3}$")]
    instance: str | None = None
    justification: Annotated[str, Field(min_length=10)]
    owner: Annotated[str, Field(min_length=2)]
    expires: dt.date

    def matches(self, check_id: str, nodeid: str) -> bool:
        return check_id == self.check and (self.instance is None or nodeid.endswith(f"[{self.instance}]"))

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def reason(self) -> str:
        return f"waived until {self.expires} by {self.owner}: {self.justification}"


_WAIVERS = TypeAdapter(list[Waiver])


def load_waivers(path: Path) -> list[Waiver]:
    """The waivers of ``path``, read like a profile (one reader, strict YAML); problems one line each."""
    where = display(path)
    data = read_yaml(path, "waivers file")
    if data is None:
        return []
    try:
        return _WAIVERS.validate_python(data)
    except ValidationError as exc:
        lines = [f"{where}: {format_error(err)}" for err in exc.errors(include_input=False, include_url=False)]
        raise ProfileError(lines) from None


@dataclass
class WaiverBook:
    """The waivers of one run, and what became of each."""

    waivers: list[Waiver]
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    used: set[int] = field(default_factory=set)  # indexes of waivers that excused a failure

    def active_for(self, check_id: str, nodeid: str) -> Waiver | None:
        for waiver in self.waivers:
            if waiver.matches(check_id, nodeid) and not waiver.expired(self.today):
                return waiver
        return None

    def mark_used(self, waiver_reason: str) -> None:
        for index, waiver in enumerate(self.waivers):
            if waiver.reason() == waiver_reason:
                self.used.add(index)

    def status(self) -> list[dict[str, str]]:
        rows = []
        for index, waiver in enumerate(self.waivers):
            if waiver.expired(self.today):
                state = "expired"
            elif index in self.used:
                state = "used"
            else:
                state = "unused"
            rows.append(
                {
                    "check": waiver.check + (f"[{waiver.instance}]" if waiver.instance else ""),
                    "owner": waiver.owner,
                    "expires": waiver.expires.isoformat(),
                    "justification": waiver.justification,
                    "status": state,
                }
            )
        return rows
