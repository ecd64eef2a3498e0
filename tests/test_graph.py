"""The declared dependency graph (conformance/graph.py): sound, documented, and every edge proven by a fault.

The proof walks the graph: a handful of runs of the whole sandbox profile, each with independent
faults in several components (a variant of the sandbox's variables: another kubeconfig, token,
ssh config, credentials file...). In every run, each check with a prerequisite that failed is
``blocked by`` the root cause, and never fails on its own; over all runs, every edge of the graph
is seen blocking.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance import catalogue, graph
from conformance.clients.network import endpoints_of
from conformance.profile import GCP_API_ENDPOINT
from conformance.sandbox import STATE_VAR
from conformance.session import open_profile
from tests.conftest import REPO, SuiteRun, run_suite, ssh_config

CHECK_IDS = {e.check_id for e in catalogue.entries()}
EDGES = sorted(
    {(p, d) for d, needs in graph.PREREQUISITES.items() for p in needs if not p.startswith("CLU-")}
    | {(p, d) for d, repeated in graph.DUPLICATES.items() for p in repeated}
    | {(p, d) for d, conditional in graph.CONDITIONAL.items() for p, _ in conditional}  # the sandbox: kubeconfig CLI
)  # the CLU edges need a job that never reports: tests/test_cluster.py proves them with its own fault


# --------------------------------------------------------------------------- the table itself


def test_graph_names_real_checks_without_cycles() -> None:
    for dependent, prerequisite in [(d, p) for p, d in EDGES]:
        assert dependent in CHECK_IDS, dependent
        assert prerequisite in CHECK_IDS, prerequisite
        assert dependent != prerequisite
    assert set(graph.ENDPOINTS) <= CHECK_IDS
    ordered = graph.order(sorted(CHECK_IDS, reverse=True))  # raises on a cycle
    for prerequisite, dependent in EDGES:
        assert ordered.index(prerequisite) < ordered.index(dependent), (prerequisite, dependent)


def test_order_moves_only_what_must_move() -> None:
    assert graph.order(["K8S-007", "K8S-006", "GIT-001"]) == ["K8S-006", "K8S-007", "GIT-001"]
    assert graph.order(["GIT-001", "WSP-007", "OBJ-001"]) == ["GIT-001", "OBJ-001", "WSP-007"]
    assert graph.dependents("K8S-006") == [
        "K8S-007", "K8S-008", "K8S-009", "K8S-010", "K8S-011", "SRV-001", "SRV-003", "SRV-002",
    ]  # fmt: skip
    assert set(graph.dependents("K8S-005")) >= {"RAI-003", "RAI-004", "RAI-005", "K8S-011"}
    assert graph.group_of("RAI-005") == graph.group_of("K8S-001") == "K8S-001"


def test_workspace_checks_through_a_pod_need_the_api_server(sandbox_env: dict[str, str]) -> None:
    loaded = open_profile(REPO / "profiles" / "sandbox.yaml", dict(sandbox_env))
    assert graph.endpoints_for("WSP-002", loaded.profile) == ()  # this host: no network
    workspace = loaded.profile.workspace
    assert workspace is not None
    in_pod = loaded.profile.model_copy(update={"workspace": workspace.model_copy(update={"pod": "ws-0"})})
    assert graph.endpoints_for("WSP-002", in_pod) == (graph.KUBERNETES_API,)
    assert graph.endpoints_for("K8S-007", in_pod) == (graph.KUBERNETES_API,)


def test_catalogue_has_a_blocked_by_column() -> None:
    table = catalogue.markdown()
    assert "| blocked by |" in table.splitlines()[0]
    row = next(line for line in table.splitlines() if line.startswith("| GIT-008 "))
    assert "| GIT-006 |" in row
    row = next(line for line in table.splitlines() if line.startswith("| WSP-007 "))
    assert "OBJ-001 (same finding), GIT-007 (same finding)" in row
    row = next(line for line in table.splitlines() if line.startswith("| K8S-007 "))
    assert "K8S-006, NET (kubernetes)" in row


def test_every_endpoint_the_graph_names_is_probed(sandbox_env: dict[str, str]) -> None:
    names = set()
    for profile in ("sandbox", "sandbox-gcp"):
        loaded = open_profile(REPO / "profiles" / f"{profile}.yaml", dict(sandbox_env))
        endpoints, contexts = endpoints_of(loaded.profile)
        names |= {e.name for e in endpoints}
        if profile == "sandbox":
            assert graph.KUBERNETES_API in contexts  # the API server is probed with the kubeconfig's CA
    wanted = {name for names_ in graph.ENDPOINTS.values() for name in names_} - {graph.MLFLOW_ARTIFACTS}
    assert wanted <= names, wanted - names
    assert GCP_API_ENDPOINT in names


# --------------------------------------------------------------------------- walking the graph with faults


def _private(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def _aws(directory: Path, key_id: str, secret: str, section: str = "conformance") -> str:
    return _private(
        directory / "aws-credentials", f"[{section}]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    )


def _docker(directory: Path, env: dict[str, str], user: str | None, password: str | None) -> str:
    auths = {}
    if user is not None:
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        auths[env["SANDBOX_REGISTRY_HOST"]] = {"auth": auth}
    return _private(directory / "docker-config.json", json.dumps({"auths": auths}))


def _fault_a(env: dict[str, str], d: Path) -> dict[str, str]:
    """K8S-001, GIT-001, GIT-006, OBJ-001 (and WSP-007's duplicate), REG-001, MLF-002, WSP-002."""
    return {
        "SANDBOX_KUBECONFIG": str(d / "no-kubeconfig"),
        "SANDBOX_GITLAB_TOKEN": "glpat-WrongCanary0123456789",
        "SANDBOX_SSH_CONFIG": ssh_config(env, d, "ssh-config", Port=None),
        "SANDBOX_AWS_CREDENTIALS_FILE": _aws(d, "AKIANOSUCHKEYNOSUCH0", "x" * 40, section="other"),
        "SANDBOX_DOCKER_CONFIG": _docker(d, env, None, None),
        "SANDBOX_MLFLOW_PASSWORD": "not-the-password-123",
        "SANDBOX_WORKSPACE_PVC": str(d / "no-pvc"),
    }


def _fault_b(env: dict[str, str], d: Path) -> dict[str, str]:
    """K8S-002, GIT-002, GIT-007 (and WSP-007's duplicate), OBJ-002, REG-002, MLF-003."""
    key = d / "id_loose"
    shutil.copy(env["SANDBOX_SSH_KEY"], key)
    key.chmod(0o644)
    return {
        "SANDBOX_K8S_CONTEXT": "no-such-context",
        "SANDBOX_GITLAB_TOKEN": env["SANDBOX_GITLAB_EXPIRED_TOKEN"],
        "SANDBOX_SSH_CONFIG": ssh_config(env, d, "ssh-config", IdentityFile=str(key)),
        "SANDBOX_AWS_CREDENTIALS_FILE": _aws(d, env["SANDBOX_S3_ADMIN_ACCESS_KEY_ID"], "w" * 40),
        "SANDBOX_DOCKER_CONFIG": _docker(d, env, env["SANDBOX_REGISTRY_USER"], "not-the-password"),
        "SANDBOX_MLFLOW_USER": env["SANDBOX_MLFLOW_READONLY_USER"],
        "SANDBOX_MLFLOW_PASSWORD": env["SANDBOX_MLFLOW_READONLY_PASSWORD"],
    }


def _fault_c(env: dict[str, str], d: Path) -> dict[str, str]:
    """K8S-005 (an expired Run:ai login), GIT-004, GIT-008, OBJ-003, REG-003."""
    empty = d / "known_hosts"
    empty.write_text("")
    return {
        "SANDBOX_KUBECONFIG": env["SANDBOX_KUBECONFIG_EXPIRED"],
        "SANDBOX_GITLAB_PROJECT": "mlops/no-such-project",
        "SANDBOX_SSH_CONFIG": ssh_config(env, d, "ssh-config", UserKnownHostsFile=str(empty)),
        "SANDBOX_SSH_KNOWN_HOSTS": str(empty),
        "SANDBOX_S3_BUCKET": "conformance-no-such-bucket",
        # the Harbor-like registry (token realm), where the guest may log in but not push
        "SANDBOX_REGISTRY_URL": env["SANDBOX_REGISTRY_TOKEN_URL"],
        "SANDBOX_REGISTRY_HOST": env["SANDBOX_REGISTRY_TOKEN_HOST"],
        "SANDBOX_DOCKER_CONFIG": _docker(
            d,
            {**env, "SANDBOX_REGISTRY_HOST": env["SANDBOX_REGISTRY_TOKEN_HOST"]},
            env["SANDBOX_REGISTRY_GUEST_USER"],
            env["SANDBOX_REGISTRY_GUEST_PASSWORD"],
        ),
    }


def _fault_d(env: dict[str, str], d: Path) -> dict[str, str]:
    """K8S-006 (a token the API server refuses; no Run:ai login: RAI-003), GIT-009, OBJ-004."""
    key = d / "id_stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return {
        "SANDBOX_KUBECONFIG": env["SANDBOX_KUBECONFIG_BADTOKEN"],
        "SANDBOX_SSH_CONFIG": ssh_config(env, d, "ssh-config", IdentityFile=str(key)),
        "SANDBOX_AWS_CREDENTIALS_FILE": _aws(
            d, env["SANDBOX_S3_READONLY_ACCESS_KEY_ID"], env["SANDBOX_S3_READONLY_SECRET_ACCESS_KEY"]
        ),
    }


def _fault_e(env: dict[str, str], d: Path) -> dict[str, str]:
    """K8S-007 (no such namespace), RAI-001 (no CLI)."""
    return {"SANDBOX_K8S_NAMESPACE": "runai-missing", "SANDBOX_RUNAI_CLI": str(d / "no" / "runai")}


def _fault_srv(env: dict[str, str], d: Path) -> dict[str, str]:
    """SRV-001 (the serving probe crashes at start: a namespace of the sandbox where its pods get that fault)."""
    return {"SANDBOX_K8S_NAMESPACE": env["SANDBOX_K8S_SERVE_CRASH_NAMESPACE"]}


def _fault_gcp(env: dict[str, str], d: Path) -> dict[str, str]:
    """GCP-002 (a key without its private key)."""
    key = json.loads(Path(env["SANDBOX_GCP_KEY_FILE"]).read_text())
    key["private_key"] = ""
    return {"SANDBOX_GCP_KEY_FILE": _private(d / "key.json", json.dumps(key))}


FAULTS: dict[str, tuple[Callable[[dict[str, str], Path], dict[str, str]], str, tuple[str, ...]]] = {
    "a": (_fault_a, "sandbox", ()),
    "b": (_fault_b, "sandbox", ()),
    "c": (_fault_c, "sandbox", ()),
    "d": (_fault_d, "sandbox", ()),
    "e": (_fault_e, "sandbox", ()),
    "srv": (_fault_srv, "sandbox", ("-m", "serving")),
    "gcp": (_fault_gcp, "sandbox-gcp", ("conformance/components/test_gcp.py",)),
}


def variant(env: dict[str, str], overrides: dict[str, str], directory: Path) -> dict[str, str]:
    """The sandbox's variables with ``overrides``, as a state file a run attaches to (like ``sandbox up``)."""
    variables = {**env, **overrides}
    state = directory / "sandbox-env.json"
    variables[STATE_VAR] = str(state)
    state.write_text(json.dumps(variables))
    return variables


@pytest.fixture(scope="module")
def fault_runs(tmp_path_factory: pytest.TempPathFactory, sandbox_env: dict[str, str]) -> dict[str, SuiteRun]:
    runs = {}
    for name, (make, profile, args) in FAULTS.items():
        directory = tmp_path_factory.mktemp(f"graph-{name}")
        env = variant(sandbox_env, make(sandbox_env, directory), directory)
        runs[name] = run_suite(*args, profile=profile, reports=directory / "reports", env=env)
        assert "Traceback" not in runs[name].output, runs[name].output[-3000:]
    return runs


def _by_id(run: SuiteRun) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in run.results["checks"] if not c["id"].startswith("NET-")}


def _failed(record: dict[str, Any] | None) -> bool:
    return record is not None and record["outcome"] in ("failed", "error")


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_check_whose_prerequisite_failed_is_blocked_by_the_root_cause(
    fault_runs: dict[str, SuiteRun], name: str
) -> None:
    checks = _by_id(fault_runs[name])
    for check_id, record in checks.items():
        failed = [p for p, _ in graph.blocking(check_id) if _failed(checks.get(p))]  # the sandbox's CLI: kubeconfig
        failed += [p for p in graph.DUPLICATES.get(check_id, ()) if _failed(checks.get(p))]
        if not failed:
            continue
        first = checks[failed[0]]
        root = first["blocked_by"] or first["id"]
        assert record["outcome"] == "error", (name, check_id, record["outcome"], record["message"])
        assert record["blocked_by"] == root, (name, check_id, record["message"])
        assert record["message"].startswith(f"blocked by {root} ("), record["message"]


def test_every_edge_is_proven_by_a_fault(fault_runs: dict[str, SuiteRun]) -> None:
    proven = set()
    for run in fault_runs.values():
        checks = _by_id(run)
        for prerequisite, dependent in EDGES:
            cause, blocked = checks.get(prerequisite), checks.get(dependent)
            on_its_own = _failed(cause) and cause is not None and cause["blocked_by"] is None
            if on_its_own and blocked is not None and blocked["blocked_by"] == prerequisite:
                proven.add((prerequisite, dependent))
    assert sorted(set(EDGES) - proven) == []


def test_one_failure_per_cause_the_expired_login(fault_runs: dict[str, SuiteRun]) -> None:
    """The issue's example: an expired Run:ai login was four failures (K8S-005, RAI-003, RAI-004, RAI-005)."""
    checks = _by_id(fault_runs["c"])
    assert checks["K8S-005"]["outcome"] == "failed"
    assert "expired" in checks["K8S-005"]["message"]
    for check_id in ("RAI-003", "RAI-004", "RAI-005", "K8S-006", "K8S-011"):
        assert checks[check_id]["blocked_by"] == "K8S-005", (check_id, checks[check_id]["message"])


def test_one_failure_per_cause_a_wrong_ssh_port(fault_runs: dict[str, SuiteRun]) -> None:
    """GIT-008 no longer looks up the host key at the port a broken ssh config gives."""
    checks = _by_id(fault_runs["a"])
    assert checks["GIT-006"]["outcome"] == "failed"
    for check_id in ("GIT-007", "GIT-008", "GIT-009", "GIT-010"):
        assert checks[check_id]["blocked_by"] == "GIT-006", (check_id, checks[check_id]["message"])
        assert "gives port 22" in checks[check_id]["message"]


def test_under_xdist_the_graph_holds(
    fault_runs: dict[str, SuiteRun], tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """-n 2: each connected part of the graph runs in one worker, so the same checks are blocked by the same causes."""
    make, profile, args = FAULTS["c"]
    env = variant(sandbox_env, make(sandbox_env, tmp_path), tmp_path)
    run = run_suite("-n", "2", *args, profile=profile, reports=tmp_path / "reports", env=env)
    serial = {c["nodeid"]: (c["outcome"], c["blocked_by"]) for c in fault_runs["c"].results["checks"]}
    parallel = {c["nodeid"]: (c["outcome"], c["blocked_by"]) for c in run.results["checks"]}
    assert parallel == serial


# --------------------------------------------------------------------------- conditional edges


def test_a_conditional_edge_holds_only_where_its_fact_says_so() -> None:
    ((needed, when),) = graph.CONDITIONAL["RAI-003"]
    assert needed == "K8S-005"
    asked: list[str] = []

    def fact_of(values: dict[str, str]) -> Any:
        def fact(name: str) -> str | None:
            asked.append(name)
            return values.get(name)

        return fact

    assert when.holds(fact_of({graph.RUNAI_CLI: "kubeconfig"}))
    assert not when.holds(fact_of({graph.RUNAI_CLI: "new"}))
    assert not when.holds(fact_of({}))  # the CLI cannot be told: the edge is not known to hold, so it does not
    assert asked == [graph.RUNAI_CLI] * 3
    assert ("K8S-005", when) in graph.blocking("RAI-003")
    assert "K8S-005" in graph.prerequisites("RAI-003")  # still ordered after it, whichever CLI
    renewing = dict(graph.CONDITIONAL_ENDPOINTS["K8S-005"])[graph.OIDC_ISSUER]
    assert str(renewing) == "when the login is renewed"


def test_the_catalogue_names_each_conditional_edge_with_its_condition() -> None:
    table = catalogue.markdown()
    row = next(line for line in table.splitlines() if line.startswith("| RAI-003 "))
    assert "| K8S-005 (with the kubeconfig CLI), NET (kubernetes, oidc-issuer when the login is renewed and with" in row
    row = next(line for line in table.splitlines() if line.startswith("| K8S-005 "))
    assert "NET (oidc-issuer when the login is renewed)" in row
