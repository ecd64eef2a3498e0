"""The whole network down three ways, with every component of the sandbox profile configured.

Each outage (conformance/sandbox/outage.py) moves every endpoint of the sandbox (the API server of
the kubeconfig and the SSH port included) behind one fault: accept-and-hang, refused, no DNS.
Then one check fails, NET-005, naming the way and the VPN; every other check that needs the
network is ``blocked by`` it; none outside NET fails on its own; and the verdict comes within
1.5 x (connect + request) after the session's fixed start cost (a collect-only run).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.sandbox.outage import outage
from tests.conftest import SuiteRun, run_suite

CONNECT, REQUEST = 2.0, 5.0  # profiles/sandbox.yaml
BOUND = 1.5 * (CONNECT + REQUEST)
WAY = {"hung": "accepted and silent", "refused": "refused", "nodns": "no DNS"}


@pytest.fixture(scope="module")
def start_cost(tmp_path_factory: pytest.TempPathFactory, sandbox_env: dict[str, str]) -> float:
    directory = tmp_path_factory.mktemp("collect")
    run = run_suite("--collect-only", "-q", profile="sandbox", reports=directory / "reports", env=sandbox_env)
    assert run.rc == 0, run.output[-2000:]
    return run.seconds


@pytest.fixture(scope="module", params=list(WAY))
def down(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sandbox_env: dict[str, str]
) -> Iterator[tuple[str, SuiteRun]]:
    mode = str(request.param)
    variables, undo = outage(dict(sandbox_env), mode)
    try:
        directory = tmp_path_factory.mktemp(f"outage-{mode}")
        yield mode, run_suite(profile="sandbox", reports=directory / "reports", env=variables)
    finally:
        undo()


def test_one_failure_names_the_way_and_the_vpn(down: tuple[str, SuiteRun]) -> None:
    mode, run = down
    assert run.rc == 1, run.output[-3000:]
    assert "Traceback" not in run.output
    own = [c for c in run.results["checks"] if c["outcome"] in ("failed", "error") and not c["blocked_by"]]
    assert [c["id"] for c in own] == ["NET-005"], [(c["nodeid"], c["message"]) for c in own]
    message = own[0]["message"]
    assert "every private endpoint" in message
    assert "fails the same way at" in message
    assert WAY[mode] in message
    assert "the sandbox's loopback network is probably down (a heuristic)" in message


def test_every_other_check_that_needs_the_network_is_blocked_by_it(down: tuple[str, SuiteRun]) -> None:
    _, run = down
    checks = run.results["checks"]
    assert not [c["nodeid"] for c in checks if c["outcome"] == "failed" and c["id"] != "NET-005"]
    blocked = [c for c in checks if c["outcome"] == "error"]
    assert {c["blocked_by"] for c in blocked} == {"NET-005"}
    ids = {c["id"] for c in blocked}
    # every component that talks to a server, the Kubernetes API server and git over SSH among them
    assert {"GIT-001", "GIT-009", "K8S-006", "K8S-011", "RAI-004", "RAI-005", "REG-002", "OBJ-002", "MLF-001"} <= ids
    probed = {c["nodeid"].rsplit("[", 1)[-1].rstrip("]") for c in checks if c["id"] == "NET-001"}
    assert {"kubernetes", "gitlab-ssh", "gitlab", "registry", "object_storage", "mlflow", "oidc-issuer"} <= probed
    # the login's issuer is down too, but the id-token is valid: nothing renews, so the login check still passes
    assert run.check("K8S-005")["outcome"] == "passed", run.check("K8S-005")["message"]
    assert "root cause 1: NET-005" in run.output  # the terminal verdict folds them under it
    assert f"    blocks {len(blocked)}: " in run.output
    slow = [c["nodeid"] for c in blocked if c["duration_s"] >= 0.5]
    assert len(slow) <= 1, slow  # the first to ask waits for the probes; the rest are blocked at once


def test_the_verdict_comes_within_the_bound(down: tuple[str, SuiteRun], start_cost: float) -> None:
    mode, run = down
    assert run.seconds - start_cost < BOUND, (mode, run.seconds, start_cost)
