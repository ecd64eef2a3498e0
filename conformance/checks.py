"""Outcomes of a check, and the helpers checks use to produce them.

| situation                               | raise              | pytest outcome |
|-----------------------------------------|--------------------|----------------|
| target answered, answer is wrong        | NonConformance     | failed         |
| could not evaluate (unreachable, 401)   | CannotEvaluate     | error          |
| a prerequisite check failed             | Blocked            | error          |

Skips are for facts of the platform only (another platform or orchestrator, an
endpoint without TLS, no GPU requested, no Docker daemon: ``tests/test_skips.py``
lists them), never for a missing setting, and a check never skips itself to hide a
failure. A profile without a section its platform needs is a profile error.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

CHECK_ID = re.compile(r"^(NET|GIT|K8S|RAI|REG|OBJ|MLF|WSP|GCP|CI|CLU)-\d{3}$")


class ConformanceWarning(UserWarning):
    """Conforms today, but will not for long (a certificate or token about to expire)."""


class NonConformance(Exception):
    """The target answered, and the answer is not what the guide needs.

    ``blocks=False``: a finding the checks that depend on this one (``conformance/graph.py``) do not
    share, so they still run (an empty bucket listing does not make the named bucket unusable).
    """

    def __init__(self, expected: str, actual: str, hint: str | None = None, *, blocks: bool = True) -> None:
        super().__init__(expected, actual, hint)
        self.expected = expected
        self.actual = actual
        self.hint = hint
        self.blocks = blocks

    def __str__(self) -> str:
        lines = [f"expected: {self.expected}", f"actual:   {self.actual}"]
        if self.hint:
            lines.append(f"hint:     {self.hint}")
        return "\n".join(lines)


class CannotEvaluate(Exception):
    """The check could not be evaluated: unreachable, refused credentials, tool missing."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason, hint)
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        text = f"cannot evaluate: {self.reason}"
        return f"{text}\nhint:     {self.hint}" if self.hint else text


class Blocked(CannotEvaluate):
    """A prerequisite failed; this check reports it instead of timing out again."""

    def __init__(self, blocked_by: str, reason: str) -> None:
        super().__init__(reason)
        self.blocked_by = blocked_by

    def __str__(self) -> str:
        return f"blocked by {self.blocked_by} ({self.reason})"


def check(check_id: str, remediation: str) -> pytest.MarkDecorator:
    """Give a test its stable check id and the remediation shown when it fails."""
    if not CHECK_ID.match(check_id):
        raise ValueError(f"check id {check_id!r} does not match {CHECK_ID.pattern}")
    return pytest.mark.check(check_id, remediation=remediation.strip())


def expect(condition: object, *, expected: str, actual: str, hint: str | None = None, blocks: bool = True) -> None:
    """Raise :class:`NonConformance` unless ``condition`` holds."""
    __tracebackhide__ = True
    if not condition:
        raise NonConformance(expected, actual, hint, blocks=blocks)


def expires_in_time(
    what: str,
    expires: dt.datetime,
    *,
    horizon_days: float,
    check_id: str,
    evidence: dict[str, Any],
    remedy: str,
    now: dt.datetime | None = None,
) -> None:
    """Fail when ``what`` expires within the profile's ``expiry_horizon_days``; warn within twice that.

    Either way the date goes into the evidence. The failure does not block the checks that depend on
    this one (``blocks=False``): the credential still works today.
    """
    __tracebackhide__ = True
    left = (expires - (now or dt.datetime.now(dt.UTC))).total_seconds() / 86400
    date = f"{expires.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    evidence.update({"expires": date, "days_left": round(left, 1), "expiry_horizon_days": horizon_days})
    if left < horizon_days:
        raise NonConformance(
            f"{what} stays valid for longer than the expiry horizon ({horizon_days:g} days, expiry_horizon_days)",
            f"{what} expires on {date}, in {left:.1f} days",
            remedy,
            blocks=False,
        )
    if left < 2 * horizon_days:
        evidence["warning"] = f"{what} expires on {date}, in {left:.1f} days"
        warnings.warn(ConformanceWarning(f"{check_id}: {evidence['warning']}"), stacklevel=2)


@dataclass
class Deadline:
    """A point in time that several steps share."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def left(self, cap: float | None = None) -> float:
        remaining = max(0.0, self.at - time.monotonic())
        return remaining if cap is None else min(cap, remaining)


def wait_for(
    probe: Callable[[], tuple[bool, T]],
    *,
    timeout: float,
    describe: str,
    interval: float = 0.2,
) -> T:
    """Poll ``probe`` (returning ``(done, state)``) until done or ``timeout``.

    On timeout raises :class:`NonConformance` naming the last state seen, so
    "still Pending after 60 s" reads as such rather than as a bare timeout.
    """
    __tracebackhide__ = True
    deadline = Deadline.after(timeout)
    pause = threading.Event()
    while True:
        done, state = probe()
        if done:
            return state
        if deadline.left() <= 0:
            raise NonConformance(describe, f"after {timeout:g} s the last state seen was: {state}")
        pause.wait(deadline.left(interval))
