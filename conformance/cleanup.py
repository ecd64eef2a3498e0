"""``python -m conformance cleanup``: remove what killed runs left behind, and nothing else.

A run names everything it writes with its run id (``conformance-<run id>``; the registry tag is
the run id itself; an MLflow run carries the tag ``conformance=<run id>``) and deletes it in
fixture teardown. A run killed with SIGKILL (or interrupted in the middle of a write) leaves
those probes behind. Each writing component's client has a ``sweep(profile, older_than,
dry_run)`` that lists its probes and deletes the eligible ones: a probe is eligible only when
its name carries a run id in the suite's exact format (``YYYYmmddHHMMSS-xxxxxx``, UTC, six
lowercase hex digits) AND that run started before ``older_than``. Anything else in the shared
buckets, registries, experiments and namespaces is never touched.

This module stays light: the clients import it, and it imports them only when sweeping.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from conformance import components
from conformance.checks import CannotEvaluate

if TYPE_CHECKING:
    from conformance.profile import LoadedProfile

# The plugin's run id: f"{started:%Y%m%d%H%M%S}-{uuid4().hex[:6]}" (UTC). What may follow it in a
# probe's name: "-gw0" (an xdist worker), "-daemon", "-rai", "-probe", ".probe".
RUN_ID = r"(?P<run_id>\d{14}-[0-9a-f]{6})"
_SUFFIX = r"(?:[-.][A-Za-z0-9_.-]*)?"
_NAMED = re.compile(rf"conformance-{RUN_ID}{_SUFFIX}")
_TAGGED = re.compile(rf"(?:conformance-)?{RUN_ID}{_SUFFIX}")  # a registry tag: the run id, or named
_DURATION = re.compile(r"(?P<count>\d+)(?P<unit>[smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
STAMP = "%Y%m%d%H%M%S"

# The components that write, in sweep order: the reverse of their declaration, so that Run:ai's jobs
# go through its CLI before the Kubernetes sweep looks at the namespace (in the sandbox they share it).
COMPONENTS = tuple(c.name for c in reversed(components.COMPONENTS.values()) if c.writes)


def parse_duration(text: str) -> dt.timedelta:
    """``30m``, ``6h``, ``2d``, ``0s``; a ValueError (one line) for anything else."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use a whole number and s, m, h or d (30m, 6h, 2d)")
    return dt.timedelta(**{_UNITS[match["unit"]]: int(match["count"])})


def run_id_of(name: str, *, tag: bool = False) -> str | None:
    """The run id that ``name`` carries in the suite's exact format, or None.

    ``name`` is a probe's own name (``conformance-<run id>[-suffix|.suffix]``); with ``tag``, a
    registry tag, which may also be the bare run id.
    """
    match = (_TAGGED if tag else _NAMED).fullmatch(name)
    return match["run_id"] if match else None


def run_started(run_id: str) -> dt.datetime | None:
    """When the run started (UTC), from its id; None when the stamp is no real date."""
    try:
        return dt.datetime.strptime(run_id[:14], STAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def is_old(run_id: str | None, older_than: dt.datetime) -> bool:
    started = run_started(run_id) if run_id else None
    return started is not None and started < older_than


def eligible(name: str, older_than: dt.datetime, *, tag: bool = False) -> bool:
    """Whether a probe named ``name`` may be swept: exact format, started before ``older_than``."""
    return is_old(run_id_of(name, tag=tag), older_than)


@dataclass
class Swept:
    """One component's sweep: what went (or would go), what could not, and remarks."""

    items: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def sweep_component(name: str, loaded: LoadedProfile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """``conformance.clients.<name>.sweep``; a component that cannot be swept raises CannotEvaluate."""
    module = importlib.import_module(f"conformance.clients.{name}")
    swept: Swept = module.sweep(loaded.profile, older_than, dry_run)
    return swept


def sweep_all(
    loaded: LoadedProfile, older_than: dt.datetime, dry_run: bool, out: TextIO = sys.stdout
) -> tuple[int, list[str]]:
    """Sweep every component the profile has; (items swept, components that failed)."""
    verb = "would delete" if dry_run else "deleted"
    count, failed = 0, []
    for name in COMPONENTS:
        needs = (name, components.COMPONENTS[name].endpoint)  # serving and cluster sweep through kubernetes
        if any(getattr(loaded.profile, section, None) is None for section in needs):
            continue
        try:
            swept = sweep_component(name, loaded, older_than, dry_run)
        except CannotEvaluate as exc:
            print(f"{name}: cannot sweep: {exc.reason}", file=out)
            failed.append(name)
            continue
        for item in swept.items:
            print(f"{name}: {verb} {item}", file=out)
        for note in swept.notes:
            print(f"{name}: {note}", file=out)
        for failure in swept.failures:
            print(f"{name}: could not delete {failure}", file=out)
        if swept.failures:
            failed.append(name)
        count += len(swept.items)
    return count, failed


def command(loaded: LoadedProfile, age: dt.timedelta, dry_run: bool, now: dt.datetime | None = None) -> int:
    """The command: 0 when every component was swept, 1 when one could not be."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - age
    count, failed = sweep_all(loaded, cutoff, dry_run)
    what = f"{count} probe(s) {'would be deleted' if dry_run else 'deleted'}"
    scope = f"runs started before {cutoff:%Y-%m-%d %H:%M:%S} UTC"
    tail = f"; could not sweep: {', '.join(failed)}" if failed else ""
    print(f"cleanup: {what} ({scope}){tail}")
    return 1 if failed else 0
