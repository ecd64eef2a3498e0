"""Outcome types and their messages."""

from __future__ import annotations

import pytest

from conformance.checks import Blocked, CannotEvaluate, NonConformance, check, expect, wait_for


def test_nonconformance_reads_expected_actual_hint() -> None:
    with pytest.raises(NonConformance) as info:
        expect(
            False,
            expected="push of a 1-layer image is accepted",
            actual="HTTP 403 denied",
            hint="not a member of the project",
        )
    assert str(info.value).splitlines() == [
        "expected: push of a 1-layer image is accepted",
        "actual:   HTTP 403 denied",
        "hint:     not a member of the project",
    ]


def test_expect_passes_silently() -> None:
    expect(True, expected="x", actual="y")


def test_hint_is_optional() -> None:
    assert str(NonConformance("a", "b")) == "expected: a\nactual:   b"


def test_cannot_evaluate_and_blocked_messages() -> None:
    assert str(CannotEvaluate("registry unreachable", "connect the VPN")) == (
        "cannot evaluate: registry unreachable\nhint:     connect the VPN"
    )
    blocked = Blocked("NET-002", "localhost: TCP: connection to 127.0.0.1:9 refused")
    assert str(blocked) == "blocked by NET-002 (localhost: TCP: connection to 127.0.0.1:9 refused)"
    assert isinstance(blocked, CannotEvaluate)


def test_check_ids_are_validated() -> None:
    mark = check("NET-001", "  do this\n  then that ")
    assert mark.args == ("NET-001",)
    assert mark.kwargs == {"remediation": "do this\n  then that"}
    with pytest.raises(ValueError, match="does not match"):
        check("NET-1", "x")
    with pytest.raises(ValueError, match="does not match"):
        check("FOO-001", "x")


def test_wait_for_returns_the_state_when_done() -> None:
    states = iter(["Pending", "Pending", "Bound"])

    def probe() -> tuple[bool, str]:
        state = next(states)
        return state == "Bound", state

    assert wait_for(probe, timeout=5, describe="PVC becomes Bound", interval=0.01) == "Bound"


def test_wait_for_reports_the_last_state_seen() -> None:
    with pytest.raises(NonConformance) as info:
        wait_for(lambda: (False, "Pending"), timeout=0.05, describe="PVC becomes Bound", interval=0.01)
    assert info.value.expected == "PVC becomes Bound"
    assert info.value.actual == "after 0.05 s the last state seen was: Pending"


def test_expires_in_time_fails_within_the_horizon_warns_within_twice_and_is_silent_beyond() -> None:
    import datetime as dt
    import warnings

    from conformance.checks import ConformanceWarning, NonConformance, expires_in_time

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    evidence: dict[str, object] = {}
    with pytest.raises(NonConformance) as failure:
        expires_in_time(
            "the token", now + dt.timedelta(days=3), horizon_days=7, check_id="GIT-002", evidence=evidence,
            remedy="renew it", now=now,
        )  # fmt: skip
    assert "actual:   the token expires on 2026-01-04 00:00 UTC, in 3.0 days" in str(failure.value)
    assert "expiry horizon (7 days, expiry_horizon_days)" in str(failure.value)
    assert failure.value.blocks is False  # it still works today: its dependents run
    assert evidence["days_left"] == 3.0
    with pytest.warns(ConformanceWarning, match="GIT-002: the token expires on 2026-01-11 00:00 UTC, in 10.0 days"):
        expires_in_time(
            "the token", now + dt.timedelta(days=10), horizon_days=7, check_id="GIT-002", evidence={},
            remedy="renew it", now=now,
        )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expires_in_time(
            "the token", now + dt.timedelta(days=20), horizon_days=7, check_id="GIT-002", evidence={},
            remedy="renew it", now=now,
        )  # fmt: skip
