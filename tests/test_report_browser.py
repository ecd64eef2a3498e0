"""The HTML report as a person sees it: Debian's chromium, headless, driven by selenium.

A failing and a passing sandbox run; for each: the verdict line on the first screen, the first
root cause above every blocked row, the headline proofs with their evidence, evidence readable
after at most one click, no console errors, and a screenshot under the test's folder.

Outside CI the test skips, saying why, when chromium, chromium-driver or selenium is missing
(``scripts/setup.sh`` installs the first two; selenium comes from the lock). In CI (``CI=true``)
it fails instead: a report nobody opened in a browser is not tested.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SuiteRun, write_profile

CHROMIUM = ("chromium", "/usr/bin/chromium")
CHROMEDRIVER = ("chromedriver", "/usr/bin/chromedriver")
FIRST_SCREEN = 1000  # pixels: the window is 1400 x 1000


def _found(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


@pytest.fixture(scope="session")  # session: set up before the session sandbox, so a skip costs nothing
def browser() -> Iterator[Any]:
    chromium, driver_path = _found(CHROMIUM), _found(CHROMEDRIVER)
    try:  # imported by name: selenium is a test dependency only, and may be absent outside CI
        webdriver: Any = importlib.import_module("selenium.webdriver")
        service: Any = importlib.import_module("selenium.webdriver.chrome.service")
    except ImportError:
        webdriver = service = None
    missing = [
        what
        for what, ok in (("chromium", chromium), ("chromium-driver", driver_path), ("selenium", webdriver))
        if not ok
    ]
    if missing:
        setup = "scripts/setup.sh installs chromium and chromium-driver, and selenium from requirements.lock"
        reason = f"{', '.join(missing)} not installed ({setup})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = str(chromium)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=service.Service(str(driver_path)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser: Any, run: SuiteRun, screenshot: Path) -> str:
    (html_path,) = run.reports.glob("*.html")
    browser.get(html_path.as_uri())
    browser.find_element("id", "verdict")
    browser.save_screenshot(str(screenshot))
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], severe
    return html_path.read_text()


def _top(browser: Any, element: Any) -> float:
    return float(browser.execute_script("return arguments[0].getBoundingClientRect().top + window.scrollY", element))


def _visible_text(browser: Any, css: str) -> str:
    return str(browser.find_element("css selector", css).text)


def _row(browser: Any, check_id: str) -> Any:
    return next(
        body
        for body in browser.find_elements("css selector", "#results-table tbody")
        if body.find_elements("css selector", ".col-check")
        and body.find_element("css selector", ".col-check").text == check_id
    )


def _assert_no_machine_paths(source: str) -> None:
    assert f"{REPO}/conformance/" not in source  # the suite's code: node ids and locations stay relative
    assert "('/" not in source  # pytest's (path, line, reason) tuple of a skip
    assert "Skipped: " not in source


BROKEN = f"""\
extends: {REPO / "profiles" / "sandbox.yaml"}
network:
  endpoints:
    - {{name: vpn-only, url: "https://no-such-host.invalid/", private: true}}
object_storage:
  aws_profile: no-such-section
"""


def test_failing_report_gives_the_verdict_and_root_causes_first(browser: Any, suite: Any, tmp_path: Path) -> None:
    profile = write_profile(tmp_path, BROKEN, "broken.yaml")
    run = suite("-p", "no:cacheprovider", profile=profile)
    assert run.rc == 1, run.output
    source = _open(browser, run, tmp_path / "failing-report.png")

    verdict = browser.find_element("id", "verdict")
    assert verdict.text.startswith("NOT CONFORMANT: ")
    assert "root cause" in verdict.text
    assert _top(browser, verdict) < FIRST_SCREEN / 3
    assert "platform onprem, orchestrator runai, vantage " in _visible_text(browser, ".context")

    causes = browser.find_elements("css selector", "#root-causes .cause")
    labels = [c.get_attribute("data-root-cause") for c in causes]
    assert "OBJ-001" in labels
    assert "NET-001[vpn-only]" in labels
    assert _top(browser, causes[0]) < FIRST_SCREEN
    assert "Fix:" in causes[labels.index("OBJ-001")].text  # remediation under its root cause
    net = causes[labels.index("NET-001[vpn-only]")]
    assert "blocks 3 checks" in net.text  # the blocked checks folded under it, counted
    assert not net.find_element("css selector", "[data-blocked]").is_displayed()
    net.find_element("css selector", "details summary").click()
    assert net.find_element("css selector", "[data-blocked='NET-002[vpn-only]']").is_displayed()
    blocked_rows = [
        row
        for row in browser.find_elements("css selector", "#results-table tbody tr.collapsible")
        if row.find_element("css selector", ".col-message").text.startswith("blocked by")
    ]
    assert blocked_rows, "no row reads 'blocked by'"
    assert all(_top(browser, causes[0]) < _top(browser, row) for row in blocked_rows)

    grid = {
        cell.get_attribute("data-component"): cell.get_attribute("data-state")
        for cell in browser.find_elements("css selector", "#components .cell")
    }
    assert grid["object_storage"] in {"failed", "error"}  # OBJ-001 failed; OBJ-002.. could not evaluate
    assert grid["network"] == "failed"
    assert grid["gcp"] == "skipped"
    assert "Not run" in _visible_text(browser, "#not-run")
    assert "profile broken is platform onprem; this check applies to gcp" in _visible_text(browser, "#not-run")

    # a failed row is open: its message, and evidence of a passed one is one click away
    failed = browser.find_elements("css selector", "#results-table tbody.failed")
    assert failed
    assert "actual:" in failed[0].find_element("css selector", ".log").text
    _assert_no_machine_paths(source)


def test_passing_report_shows_the_headline_proofs_with_their_evidence(browser: Any, suite: Any, tmp_path: Path) -> None:
    run = suite("-p", "no:cacheprovider", profile="sandbox")
    assert run.rc == 0, run.output
    source = _open(browser, run, tmp_path / "passing-report.png")

    verdict = browser.find_element("id", "verdict")
    assert verdict.text.startswith("CONFORMANT: every check that ran passed")
    assert not browser.find_elements("id", "root-causes")
    proofs = {p.get_attribute("data-proof"): p.text for p in browser.find_elements("css selector", "#proofs .proof")}
    assert set(proofs) == {
        "Image pushed and pulled back",
        "Buckets listed and probe written",
        "MLflow run logged and read back",
        "Run:ai job run",
    }
    assert all(": proven" in text for text in proofs.values()), proofs
    assert "manifest_digest" in proofs["Image pushed and pulled back"]
    assert "sha256:" in proofs["Image pushed and pulled back"]
    assert run.check("OBJ-002")["evidence"]["buckets"][0] in proofs["Buckets listed and probe written"]
    assert run.check("MLF-004")["evidence"]["mlflow_run_id"] in proofs["MLflow run logged and read back"]
    assert run.check("RAI-005")["evidence"]["job"] in proofs["Run:ai job run"]
    for proof in browser.find_elements("css selector", "#proofs .proof"):
        assert _top(browser, proof) < FIRST_SCREEN * 1.5

    # evidence of a passed check: one click on its row opens it, as text
    assert not _row(browser, "REG-003").find_element("css selector", ".evidence").is_displayed()
    browser.execute_script("arguments[0].scrollIntoView()", _row(browser, "REG-003"))
    _row(browser, "REG-003").find_element("css selector", ".col-result").click()
    evidence = _row(browser, "REG-003").find_element("css selector", ".evidence pre")  # the table is redrawn
    assert evidence.is_displayed()
    assert "manifest_digest" in evidence.text
    assert "data:application/json" not in source
    _assert_no_machine_paths(source)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(tmp_path / "passing-report.png"))
