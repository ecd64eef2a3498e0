"""pytest wiring only: options, markers, profile loading, report hooks.

What a check means lives in ``components/``, how to reach a service in
``clients/``, report formats in ``report.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from pytest_metadata.plugin import metadata_key

from conformance import graph, results, vantage
from conformance import report as reports
from conformance import verdict as verdicts
from conformance.checks import Blocked, CannotEvaluate, NonConformance
from conformance.clients.network import endpoints_of
from conformance.components import CHECK_ID, COMPONENTS, ORCHESTRATORS, PLATFORMS, component_of_check
from conformance.profile import LoadedProfile, ProfileError, available_profiles, display, requirements
from conformance.session import open_profile, profiles_dir
from conformance.state import EVIDENCE_KEY, PROFILE_KEY, RUN_ID_KEY
from conformance.waivers import WaiverBook, load_waivers

pytest_plugins = ["conformance.fixtures"]

ENV_PROFILE = "CONFORMANCE_PROFILE"
ENV_RUN_ID = "CONFORMANCE_RUN_ID"
ENV_RUN_STARTED = "CONFORMANCE_RUN_STARTED"  # epoch seconds of the controller's start (budget)

MARKERS = {
    "onprem": "applies to the on-prem platform (Rancher, Harbor, ECS)",
    "gcp": "applies to the GCP platform (GKE, Artifact Registry, GCS)",
    "runai": "applies where the orchestrator is Run:ai (also the Run:ai component)",
    "noorch": "applies where there is no orchestrator",
    "polyaxon": "applies to the legacy GCP + Polyaxon guide",
    "writes": "creates something on the platform (run-id named, cleaned up in teardown)",
    "slow": "takes more than a few seconds",
    "check(id, remediation)": "the stable check id and the remediation shown when it fails",
}


@dataclass
class RunState:
    """What one pytest process keeps between hooks (in ``config.stash``)."""

    started: dt.datetime
    monotonic_start: float
    no_profile: str | None = None
    results: reports.Results = field(default_factory=reports.Results)
    artifacts: dict[str, Path] = field(default_factory=dict)
    stream: reports.RedactingStream | None = None
    waivers: WaiverBook = field(default_factory=lambda: WaiverBook([]))


STATE_KEY = pytest.StashKey[RunState]()
APPLIES_KEY = pytest.StashKey[str]()  # on a check that applies to the profile: its component
RUN_PLUGIN = "conformance-run"
MAX_CAUSE = 200  # characters of a failure quoted by the checks it blocks
LOADGROUP_INPUT = "conformance_loadgroup"  # workerinput key: the controller switched -n to loadgroup
EXEC_INPUT = "conformance_exec"  # workerinput key: the exec plugin outputs the controller's secret index holds
XDIST_GROUP_SUFFIX = re.compile(rf"@{CHECK_ID}$")  # what --dist loadgroup appends to a grouped check's id


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "environment conformance")
    group.addoption("--profile", metavar="NAME|PATH", help=f"profile to check (else ${ENV_PROFILE}, else ini)")
    group.addoption("--reports-dir", metavar="DIR", help="where reports go (default: reports/)")
    group.addoption("--results-json", metavar="PATH", help="JSON results file (default: next to the HTML)")
    group.addoption("--no-reports", action="store_true", help="write no HTML/JUnit/JSON by default")
    group.addoption("--waivers", metavar="PATH", help="waivers file (default: the profile's waivers:)")
    group.addoption(
        "--workspace-pod",
        metavar="POD[@NAMESPACE]",
        help="run the workspace checks inside this pod (kubectl exec) instead of on this host",
    )
    group.addoption(
        "--budget", type=float, metavar="SECONDS", help="stop starting checks after this; the rest are 'not run'"
    )
    parser.addini("conformance_profile", "default profile (name or path)", default="")
    parser.addini("conformance_profiles_dir", "folder of named profiles", default="profiles")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    for component in COMPONENTS.values():
        if component.name not in MARKERS:
            config.addinivalue_line("markers", f"{component.name}: {component.title} checks")
    state = RunState(started=dt.datetime.now(dt.UTC), monotonic_start=time.monotonic())
    config.stash[STATE_KEY] = state

    ref = config.getoption("profile") or os.environ.get(ENV_PROFILE) or str(config.getini("conformance_profile"))
    profiles = profiles_dir(Path(config.rootpath), str(config.getini("conformance_profiles_dir")))
    if not ref:
        names = ", ".join(available_profiles(profiles)) or "none"
        state.no_profile = (
            f"no profile given: use --profile NAME|PATH, ${ENV_PROFILE} or the ini option conformance_profile "
            f"(profiles in {display(profiles)}/: {names})"
        )
        return

    def start_sandbox(_path: Path) -> dict[str, str]:
        from conformance import sandbox  # noqa: PLC0415 - only sandbox profiles pay for it

        try:
            running = sandbox.ensure_running(config.add_cleanup)
        except (OSError, RuntimeError) as exc:  # a server that would not start: say which, no traceback
            raise pytest.UsageError(f"the sandbox could not start: {exc}") from None
        _set_env(config, running)  # xdist workers inherit them
        return running

    handed = getattr(config, "workerinput", {}).get(EXEC_INPUT)  # the controller's exec plugin outputs
    if handed:  # one token for the whole run, the one the controller's secret index holds
        from conformance.clients import kubernetes  # noqa: PLC0415 - only runs with an exec plugin pay for it

        kubernetes.reuse_exec_cache(handed)
    try:
        loaded = open_profile(
            ref, profiles=profiles, sandbox=start_sandbox, workspace_pod=config.getoption("workspace_pod"), obtain=True
        )
        waivers_path = config.getoption("waivers") or loaded.profile.waivers
        if waivers_path:
            state.waivers = WaiverBook(load_waivers(Path(waivers_path)))
    except ProfileError as exc:
        raise pytest.UsageError(*exc.lines) from None

    run_id = os.environ.get(ENV_RUN_ID) or f"{state.started:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    started = os.environ.get(ENV_RUN_STARTED) or str(time.time())
    _set_env(config, {ENV_RUN_ID: run_id, ENV_RUN_STARTED: started})  # xdist workers inherit them
    config.stash[PROFILE_KEY] = loaded
    config.stash[RUN_ID_KEY] = run_id
    config.add_cleanup(reports.install_log_redaction(loaded.secrets))
    if not hasattr(config, "workerinput"):
        _default_report_paths(config, loaded, state)
    _install_signal_handlers(config)
    if getattr(config.option, "dist", "no") == "load" and not hasattr(config, "workerinput"):
        # -n N sets --dist load: make it loadgroup, so that each connected part of the dependency graph
        # (conformance/graph.py) goes to one worker and a check sees its prerequisites' outcomes.
        config.option.dist = "loadgroup"
    if getattr(config, "workerinput", {}).get(LOADGROUP_INPUT):
        config.option.loadgroup = True  # a worker knows --dist from its own arguments only: tell it
    config.pluginmanager.register(RunPlugin(config, loaded, state), RUN_PLUGIN)


def _set_env(config: pytest.Config, values: dict[str, str]) -> None:
    """Set environment variables for this run and restore them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)

    def restore() -> None:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old

    config.add_cleanup(restore)


def _install_terminal_redaction(config: pytest.Config, loaded: LoadedProfile, state: RunState) -> None:
    """Everything the terminal reporter prints passes through a scrubber that counts what it scrubbed."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    writer = getattr(terminal, "_tw", None)
    if writer is not None and loaded.secrets:
        original = writer._file
        state.stream = reports.RedactingStream(original, loaded.secrets)
        writer._file = state.stream

        def restore() -> None:
            writer._file = original

        config.add_cleanup(restore)


def _default_report_paths(config: pytest.Config, loaded: LoadedProfile, state: RunState) -> None:
    directory = Path(config.getoption("reports_dir") or Path(config.rootpath) / "reports")
    stem = f"{loaded.name}-{reports.utc_stamp(state.started)}"
    if config.getoption("no_reports"):
        return
    if not config.option.htmlpath:
        config.option.htmlpath = str(directory / f"{stem}.html")
        config.option.self_contained_html = True
    if not config.option.xmlpath:
        config.option.xmlpath = str(directory / f"{stem}.xml")
    json_path = config.getoption("results_json") or str(Path(config.option.htmlpath).with_suffix(".json"))
    state.artifacts = {
        "HTML report": Path(config.option.htmlpath),
        "JUnit XML": Path(config.option.xmlpath),
        "JSON results": Path(json_path),
    }


def _install_signal_handlers(config: pytest.Config) -> None:
    """SIGTERM (a CI job cancelled, a pod evicted) unwinds like Ctrl-C, so teardown and reports run."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (pytester in a thread): nothing to install
        return

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)


# --------------------------------------------------------------------------- collection


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "endpoint" in metafunc.fixturenames and PROFILE_KEY in metafunc.config.stash:
        endpoints, _ = endpoints_of(metafunc.config.stash[PROFILE_KEY].profile)
        metafunc.parametrize("endpoint", endpoints, ids=[e.name for e in endpoints])


def _not_applicable(item: pytest.Item, loaded: LoadedProfile) -> str | None:
    """Why the check does not apply to the profile's platform or orchestrator; the only skip made here.

    Whether the profile describes the component never decides it: a run that selects a component the
    profile leaves out stops with a profile error (``RunPlugin.pytest_collection_modifyitems``).
    """
    profile = loaded.profile
    platforms = [p for p in PLATFORMS if item.get_closest_marker(p)]
    if profile.platform not in platforms:
        return (
            f"not applicable: profile {loaded.name} is platform {profile.platform}; "
            f"this check applies to {', '.join(platforms)}"
        )
    orchestrators = [o for o in ORCHESTRATORS if item.get_closest_marker(o)]
    if profile.orchestrator not in orchestrators:
        return (
            f"not applicable: profile {loaded.name} has orchestrator {profile.orchestrator}; "
            f"this check applies to {', '.join(orchestrators)}"
        )
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Complete the marker axes (before -m selects), then skip what does not apply."""
    checks = [(item, mark) for item in items if (mark := item.get_closest_marker("check"))]
    loaded = config.stash.get(PROFILE_KEY, None)
    if loaded is None:
        if checks:
            raise pytest.UsageError(config.stash[STATE_KEY].no_profile or "no profile loaded")
        return
    for item, mark in checks:
        check_id = str(mark.args[0])
        component = component_of_check(check_id)
        if component is None:
            raise pytest.UsageError(f"{item.nodeid}: check id {check_id} names no registered component")
        if not item.get_closest_marker(component.name):
            item.add_marker(component.name)
        if not any(item.get_closest_marker(p) for p in PLATFORMS):
            for name in component.platforms:  # the component's scope: every platform unless it says otherwise
                item.add_marker(name)
        if not any(item.get_closest_marker(o) for o in ORCHESTRATORS):
            for name in component.orchestrators:
                item.add_marker(name)
        item.user_properties.append(("check_id", check_id))
        item.user_properties.append(("component", component.name))
        reason = _not_applicable(item, loaded)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
            continue
        item.stash[APPLIES_KEY] = component.name
        waiver = config.stash[STATE_KEY].waivers.active_for(check_id, item.nodeid)
        if waiver is not None:
            item.add_marker(pytest.mark.xfail(reason=waiver.reason(), strict=False))
        if config.pluginmanager.hasplugin("xdist") and (graph.prerequisites(check_id) or graph.dependents(check_id)):
            item.add_marker(pytest.mark.xdist_group(graph.group_of(check_id)))  # --dist loadgroup: one worker
    items[:] = _prerequisites_first(items)
    items.sort(key=lambda item: _check_id(item) in graph.LAST)  # stable: the waiting checks last, in order


def _check_id(item: pytest.Item) -> str:
    mark = item.get_closest_marker("check")
    return str(mark.args[0]) if mark else ""


def _prerequisites_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with each check after the checks it depends on; otherwise unmoved (stable)."""
    ids = {item: str(mark.args[0]) for item in items if (mark := item.get_closest_marker("check"))}
    waiting: dict[str, int] = {}
    for check_id in ids.values():
        waiting[check_id] = waiting.get(check_id, 0) + 1
    placed: list[pytest.Item] = []
    pending = list(items)
    while pending:
        ready = next(
            (i for i in pending if all(waiting.get(n, 0) == 0 for n in graph.prerequisites(ids.get(i, "")))), None
        )
        if ready is None:  # a cycle cannot be declared (tests/test_graph.py); keep the rest as they are
            return placed + pending
        pending.remove(ready)
        placed.append(ready)
        if ready in ids:
            waiting[ids[ready]] -= 1
    return placed


# --------------------------------------------------------------------------- running


def _cause(exc: BaseException | None, message: str) -> str:
    """What a failed check found, in one line (what its dependents' ``blocked by`` quotes)."""
    if isinstance(exc, Blocked):
        text = exc.reason
    elif isinstance(exc, NonConformance):
        text = exc.actual or exc.expected
    elif isinstance(exc, CannotEvaluate):
        text = exc.reason
    else:
        text = message
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else "failed"
    return first if len(first) <= MAX_CAUSE else first[: MAX_CAUSE - 3] + "..."


def _message(call: pytest.CallInfo[None], rep: pytest.TestReport) -> tuple[str, str | None]:
    exc = call.excinfo.value if call.excinfo else None
    if isinstance(exc, Blocked):
        return str(exc), exc.blocked_by
    if isinstance(exc, NonConformance | CannotEvaluate):
        return str(exc), None
    if rep.skipped and isinstance(rep.longrepr, tuple):
        return str(rep.longrepr[2]).removeprefix("Skipped: "), None
    if rep.failed:
        text = rep.longreprtext.strip().splitlines()
        return (text[-1] if text else "failed"), None
    return "", None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    rep: pytest.TestReport = outcome.get_result()
    loaded = item.config.stash.get(PROFILE_KEY, None)
    mark = item.get_closest_marker("check")
    if loaded is None or mark is None:
        return
    exc = call.excinfo.value if call.excinfo else None
    run = item.config.pluginmanager.get_plugin(RUN_PLUGIN)
    if isinstance(exc, Blocked) and isinstance(run, RunPlugin):
        run.to_root(exc)  # blocked by a check that was itself blocked: name the root cause
    if isinstance(exc, NonConformance | CannotEvaluate):
        rep.longrepr = str(exc)  # the message is the whole story; no traceback, no locals
    check_id = str(mark.args[0])
    remediation = str(mark.kwargs.get("remediation", ""))
    component = component_of_check(check_id)
    if rep.failed and not isinstance(exc, Blocked):  # a blocked check's fix is its blocker's
        rep.sections.append((f"Remediation [{check_id}]", " ".join(remediation.split())))
    message, blocked_by = _message(call, rep)
    cause = _cause(exc, message)
    if getattr(rep, "wasxfail", None):  # waived: say by whom and until when, then what failed
        message = f"{rep.wasxfail}\n{message}".strip()
    evidence = reports.bounded(item.stash.get(EVIDENCE_KEY, {})) if rep.when == "call" else {}
    index = loaded.secrets
    if index:
        text = str(rep.longrepr) if rep.longrepr is not None and not isinstance(rep.longrepr, tuple) else ""
        if text and index.find(text):
            rep.longrepr = index.redact(text)
        rep.sections = [(title, index.redact(body)) for title, body in rep.sections]
        message = index.redact(message)
        cause = index.redact(cause)
        try:
            evidence = json.loads(index.redact(json.dumps(evidence)))
        except ValueError:  # a secret that spanned JSON syntax: drop the evidence rather than risk it
            evidence = {"withheld": "this check's evidence held a secret of the profile"}
    rep.conformance = {  # type: ignore[attr-defined] # travels with the report (xdist serialises __dict__)
        "id": check_id,
        "component": component.name if component else None,
        "remediation": " ".join(remediation.split()),
        "message": message,
        "blocked_by": blocked_by,
        "evidence": evidence,
        "cause": cause,  # for the plugin's blocked-by (not in the JSON results)
        "blocks": getattr(exc, "blocks", True),
    }
    if rep.when == "call" and (cluster := item.stash.get(vantage.DOCUMENT_KEY, None)) is not None:
        rep.cluster_results = cluster  # type: ignore[attr-defined] # travels like rep.conformance (vantage.keep)
    if evidence:
        from pytest_html import extras  # noqa: PLC0415 - pytest-html is loaded by now

        shown = reports.evidence_html(check_id, evidence)  # readable in the row: no data: link to click
        rep.extras = [*getattr(rep, "extras", []), extras.html(shown)]  # type: ignore[attr-defined] # pytest-html's documented attribute


class RunPlugin:
    """Hooks that need the loaded profile; registered once one is loaded."""

    def __init__(self, config: pytest.Config, loaded: LoadedProfile, state: RunState) -> None:
        self.config = config
        self.loaded = loaded
        self.state = state
        self.html_report: Any = None  # pytest-html's report data, titled once the verdict is known
        # check id -> (the check at the root of its failure, what that check found, whether it blocks dependents)
        self.failures: dict[str, tuple[str, str, bool]] = {}
        self.facts: dict[str, str | None] = {}  # graph.FACTS read so far

    def _missing(self, components: set[str]) -> list[str]:
        return [f"{display(self.loaded.path)}: {line}" for line in requirements(self.loaded.profile, components)]

    @pytest.hookimpl(trylast=True)  # after -m and -k deselected: only what this run will do
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """A selected check whose component the profile leaves out stops the run (exit 4): never a silent skip."""
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller decides, once
            return
        lines = self._missing({name for item in items if (name := item.stash.get(APPLIES_KEY, None))})
        if lines:
            raise pytest.UsageError(*lines)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under xdist the controller sees the workers' selection as node ids, ``components/test_<name>.py::...``."""
        modules = {Path(nodeid.split("::", 1)[0]).stem.removeprefix("test_") for nodeid in ids}
        lines = self._missing(modules & set(COMPONENTS))
        if lines:
            terminal = self.config.pluginmanager.get_plugin("terminalreporter")
            for line in lines:
                if terminal is not None:
                    terminal.write_line(f"ERROR: {line}", red=True)
            pytest.exit("the profile lacks what the selected checks need", returncode=pytest.ExitCode.USAGE_ERROR)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        budget = self.config.getoption("budget")
        if budget is not None and time.time() - float(os.environ[ENV_RUN_STARTED]) > budget:
            pytest.skip(f"not run (budget): the run's budget of {budget:g} s was spent before this check")
        mark = item.get_closest_marker("check")
        if mark is not None and not item.get_closest_marker("skip"):
            self.block_if_needed(str(mark.args[0]))

    def block_if_needed(self, check_id: str) -> None:
        """Raise :class:`Blocked` at once when a prerequisite failed, or an endpoint this check contacts is down."""
        for needed, when in graph.blocking(check_id):
            if needed in self.failures and self.failures[needed][2] and (when is None or when.holds(self.fact)):
                raise Blocked(*self.failures[needed][:2])
        for repeated in graph.DUPLICATES.get(check_id, ()):
            if repeated in self.failures:
                raise Blocked(*self.failures[repeated][:2])
        endpoints = graph.contacts(check_id, self.loaded.profile)
        if endpoints:
            from conformance.fixtures import reachability_of  # noqa: PLC0415 - a pytest plugin: pytest imports it first

            reachability = reachability_of(self.config)
            for name, when in endpoints:
                probe = reachability.probes.get(name)
                if probe is not None and probe.failure() is not None and (when is None or when.holds(self.fact)):
                    reachability.require(name)

    def fact(self, name: str) -> str | None:
        """A fact of this workspace a conditional edge depends on (``graph.FACTS``), read once per run."""
        if name not in self.facts:
            try:
                self.facts[name] = graph.FACTS[name](self.loaded.profile)
            except (OSError, ValueError, CannotEvaluate):  # cannot be told: the edge does not hold
                self.facts[name] = None
        return self.facts[name]

    def to_root(self, exc: Blocked) -> None:
        """Point ``exc`` at the check that failed on its own, when what it names was itself blocked."""
        found = self.failures.get(exc.blocked_by) if graph.dependents(exc.blocked_by) else None  # NET: per endpoint
        if found is not None and found[0] != exc.blocked_by:
            exc.blocked_by, exc.reason = found[:2]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "wasxfail", None) and report.skipped:
            self.state.waivers.mark_used(str(report.wasxfail))
        cluster = getattr(report, "cluster_results", None)
        if cluster is not None:  # CLU-002's report, from whichever worker ran it
            vantage.keep(self.config, cluster)
        info = getattr(report, "conformance", None)
        if info is not None:
            outcome = reports.phase_outcome(report.when, report.outcome, hasattr(report, "wasxfail"))
            nodeid = XDIST_GROUP_SUFFIX.sub("", report.nodeid)  # loadgroup's "@<group>": the same id as without -n
            self.state.results.add(nodeid, outcome, report.duration, info)
            if report.failed and report.when in ("setup", "call"):
                root = info.get("blocked_by") or info["id"]
                cause = str(info.get("cause") or "failed")
                self.failures.setdefault(info["id"], (root, cause, bool(info.get("blocks", True))))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        _install_terminal_redaction(self.config, self.loaded, self.state)
        if metadata_key in self.config.stash:
            metadata = self.config.stash[metadata_key]
            _keep_safe_metadata(metadata)
            metadata.update(reports.environment(self.loaded))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """(xdist controller) Tell each worker to group checks when the run distributes by group."""
        if self.config.getoption("dist", "no") == "loadgroup":
            node.workerinput[LOADGROUP_INPUT] = True
        if "kubernetes" in self.loaded.logins:  # the workers send the token the controller's leak scan knows
            from conformance.clients import kubernetes  # noqa: PLC0415 - imported by the profile's opening already

            node.workerinput[EXEC_INPUT] = kubernetes.exec_cache()

    def pytest_report_header(self) -> list[str]:
        profile = self.loaded.profile
        lines = [
            f"profile: {self.loaded.name} ({profile.platform} + {profile.orchestrator}, "
            f"guide {profile.guide_version}) from {display(self.loaded.path)}; run id {self.config.stash[RUN_ID_KEY]}"
        ]
        if profile.tls.insecure:
            lines.append("WARNING: tls.insecure is set: TLS certificates are NOT verified in this run")
        return lines

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        self.html_report = report
        report.title = f"Conformance report: {self.loaded.name}"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        reports.html_header(cells)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        reports.html_row(getattr(report, "conformance", None) or {}, report.failed, cells)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        reports.html_log(getattr(report, "conformance", None) or {}, report.skipped, data)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str]) -> None:
        found = self.verdict()
        notes: list[str] = []
        reports.html_summary(self.loaded, notes, self.state.waivers.status())
        two = vantage.html_table(self.config, self._document())
        prefix.append(verdicts.html_block(found, notes, [two] if two else []))
        if self.html_report is not None:
            state = "conformant" if found.conformant else "NOT CONFORMANT"
            self.html_report.title = f"Conformance report: {self.loaded.name} ({state})"

    def _document(self) -> results.Run:
        elapsed = time.monotonic() - self.state.monotonic_start
        return self.state.results.document(self.loaded, self.config.stash[RUN_ID_KEY], self.state.started, elapsed)

    def verdict(self) -> verdicts.Verdict:
        return verdicts.build(self._document())

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Generator[None, None, None]:
        """After pytest's short summary, right before its last line: the same verdict as the report."""
        yield
        if hasattr(self.config, "workerinput") or not self.state.results.checks:
            return
        found = self.verdict()
        colour = {"green": True} if found.conformant else {"red": True}
        terminalreporter.write_sep("=", "conformance verdict", bold=True, **colour)
        for number, line in enumerate(verdicts.terminal_lines(found, terminalreporter._tw.fullwidth)):
            terminalreporter.write_line(line, bold=number == 0, **(colour if number == 0 else {}))
        for line in vantage.terminal_lines(self.config, self._document()):
            terminalreporter.write_line(line)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        """After every other writer: write the JSON, scan all artifacts, withhold leaks."""
        yield
        if hasattr(self.config, "workerinput"):
            return
        state = self.state
        json_path = state.artifacts.get("JSON results")
        if json_path is not None:
            elapsed = time.monotonic() - state.monotonic_start
            run_id, waivers = self.config.stash[RUN_ID_KEY], state.waivers.status()
            run = state.results.document(self.loaded, run_id, state.started, elapsed, waivers)
            vantage.attach(self.config, run).write(json_path)  # with the cluster vantage's column when it reported
        leaks = reports.scan_and_withhold(state.artifacts.values(), self.loaded.secrets)
        if state.stream is not None and state.stream.hits:
            leaks.append(reports.Leak("terminal output", sorted(state.stream.hits), "it was redacted before printing"))
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            for name, path in state.artifacts.items():
                if path.is_file():
                    terminal.write_line(f"{name}: {display(path)}")
            for row in state.waivers.status():
                if row["status"] != "used":
                    terminal.write_line(f"waiver {row['check']} ({row['owner']}, {row['expires']}): {row['status']}")
            for leak in leaks:
                terminal.write_line(leak.line(), red=True, bold=True)
        if leaks:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


SAFE_METADATA = ("Python", "Platform", "Packages", "Plugins")


def _keep_safe_metadata(metadata: dict[str, Any]) -> None:
    """Drop what pytest-metadata collects from CI variables (e-mails, user names, tokens)."""
    for key in list(metadata):
        if key not in SAFE_METADATA:
            del metadata[key]


@pytest.hookimpl(optionalhook=True)
def pytest_metadata(metadata: dict[str, Any], config: pytest.Config) -> None:
    _keep_safe_metadata(metadata)
