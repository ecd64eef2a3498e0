"""Benchmark ``python -m conformance merge`` over a fleet of results files.

Generates realistic ``conformance-results/1`` files (40-80 checks each, several profiles and
vantages, runs spread over two weeks, evidence and messages the size the suite writes) into a
temporary folder, then times the merge: in-process (load + matrix + render) and as the command
a user runs (``python -m conformance merge DIR -o fleet.html``), median of 3 each.

    .venv/bin/python bench/fleet_bench.py [--files 1000] [--repeat 3] [--keep DIR]

Goal: the command finishes in at most 3 s for 1,000 files on a 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conformance import fleet  # noqa: E402 - after the path set-up above, so the script runs from anywhere
from conformance.components import COMPONENTS  # noqa: E402 - same

PROFILES = {
    "onprem-runai": ("onprem", "runai"),
    "gcp-runai": ("gcp", "runai"),
    "onprem-noorch": ("onprem", "noorch"),
    "sandbox": ("onprem", "runai"),
}
VANTAGES = [
    ("ws-alice", False),
    ("ws-bob", False),
    ("ci-runner-3", False),
    ("conformance-job-7f9c", True),
    ("coder-ws-12", True),
]
ENDPOINTS = ["gitlab", "gitlab-ssh", "registry", "object_storage", "mlflow", "rancher", "kubernetes-api", "runai"]
FUNCTIONS = [
    "test_credentials_found",
    "test_authentication",
    "test_push_accepted",
    "test_pull_by_digest",
    "test_health",
    "test_experiment_writable",
    "test_smoke_run",
    "test_artifact_store",
    "test_versions",
]
REMEDIATION = (
    "Harbor: log in to Harbor's web UI once, then ask MLOps to add you to the project with role Developer or "
    "higher. NAME_UNKNOWN: registry.project_path names a project or repository that does not exist. "
    "Artifact Registry: your account needs roles/artifactregistry.writer on the repository."
)


def _record(rng: random.Random, check_id: str, component: str, nodeid: str, bad_rate: float) -> dict[str, Any]:
    roll = rng.random()
    outcome = "passed" if roll > bad_rate else rng.choice(["failed", "failed", "error", "skipped"])
    message = ""
    if outcome in ("failed", "error"):
        message = (
            f"expected: {nodeid.rsplit('::', 1)[-1]} answers within 10 s\n"
            f"actual:   TCP connect to {component}.aisingapore.net:443 timed out after 5 s\n"
            "hint:     the VPN is down, or a NetworkPolicy blocks egress from this namespace"
        )
    elif outcome == "skipped":
        message = "not applicable: profile has no section for this component"
    return {
        "id": check_id,
        "component": component,
        "nodeid": nodeid,
        "outcome": outcome,
        "duration_s": round(rng.uniform(0.001, 2.5), 4),
        "message": message,
        "remediation": REMEDIATION,
        "blocked_by": None,
        "evidence": {
            "url": f"https://{component}.aisingapore.net/v2/",
            "manifest_digest": f"sha256:{rng.getrandbits(256):064x}",
            "timings": {"GET /v2/ (anonymous)": "401 in 0.004 s", "GET /v2/ (basic)": "200 in 0.004 s"},
            "server_version": "2.8.3",
        },
    }


def _checks(rng: random.Random, bad_rate: float) -> list[dict[str, Any]]:
    records = []
    for number, name in enumerate(
        ("test_dns_resolves", "test_tcp_connects", "test_tls_handshake", "test_service_answers"), start=1
    ):
        for endpoint in ENDPOINTS:
            nodeid = f"conformance/components/test_network.py::{name}[{endpoint}]"
            records.append(_record(rng, f"NET-{number:03d}", "network", nodeid, bad_rate))
    for component in list(COMPONENTS.values())[1:]:
        for number in range(1, rng.randint(3, 7)):
            nodeid = f"conformance/components/test_{component.name}.py::{rng.choice(FUNCTIONS)}_{number}"
            records.append(_record(rng, f"{component.prefix}-{number:03d}", component.name, nodeid, bad_rate))
    return records[: rng.randint(40, 80)]


def document(rng: random.Random, profile: str, vantage: tuple[str, bool], started: dt.datetime) -> dict[str, Any]:
    checks = _checks(rng, bad_rate=0.03 if not vantage[1] else 0.12)
    summary = dict.fromkeys(("passed", "failed", "error", "skipped", "xfailed", "xpassed"), 0)
    for record in checks:
        summary[record["outcome"]] += 1
    return {
        "schema": "conformance-results/1",
        "profile": profile,
        "platform": PROFILES[profile][0],
        "orchestrator": PROFILES[profile][1],
        "guide_version": "v0.5.2",
        "suite_version": "0.1.0",
        "run_id": f"{started:%Y%m%d%H%M%S}-{rng.getrandbits(24):06x}",
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": round(rng.uniform(8, 140), 3),
        "vantage": {"hostname": vantage[0], "in_cluster": vantage[1]},
        "tls_insecure": False,
        "simulated": [],
        "checks": checks,
        "summary": summary,
    }


def generate(folder: Path, count: int, seed: int = 7) -> int:
    """``count`` results files in ``folder``; returns their total size in bytes."""
    rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
    start = dt.datetime(2026, 11, 14, tzinfo=dt.UTC)
    total = 0
    for number in range(count):
        profile = rng.choice(list(PROFILES))
        vantage = rng.choice(VANTAGES)
        started = start + dt.timedelta(seconds=rng.randint(0, 14 * 86400))
        text = json.dumps(document(rng, profile, vantage, started), indent=2) + "\n"
        (folder / f"{profile}-{started:%Y%m%dT%H%M%SZ}-{number:04d}.json").write_text(text)
        total += len(text)
    return total


def time_in_process(folder: Path, output: Path) -> tuple[float, float, float]:
    """(load, matrix + render, total) seconds."""
    began = time.perf_counter()
    runs, unreadable = fleet.load_many([folder], io.StringIO())
    loaded = time.perf_counter()
    output.write_text(fleet.render_html(fleet.matrix(runs, unreadable)))
    done = time.perf_counter()
    return loaded - began, done - loaded, done - began


def time_command(folder: Path, output: Path) -> float:
    began = time.perf_counter()
    files = sorted(str(p) for p in folder.glob("*.json"))  # as the shell expands reports/*.json
    subprocess.run(
        [sys.executable, "-m", "conformance", "merge", *files, "-o", str(output)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description="time `python -m conformance merge` over generated results files")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        size = generate(folder, args.files)
        output = Path(temp) / "fleet.html"
        in_process = [time_in_process(folder, output) for _ in range(args.repeat)]
        command = [time_command(folder, output) for _ in range(args.repeat)]
        page = output.stat().st_size
    load, render, total = (statistics.median(t[i] for t in in_process) for i in range(3))
    print(
        f"fleet merge benchmark: {args.files} files, {size / 1e6:.1f} MB of JSON, "
        f"{os.cpu_count()} CPU(s), median of {args.repeat}"
    )
    rows = [
        ("in-process: load + parse", load),
        ("in-process: matrix + HTML", render),
        ("in-process: total", total),
        ("command: python -m conformance merge", statistics.median(command)),
    ]
    for label, seconds in rows:
        print(f"  {label:<40} {seconds:6.2f} s")
    print(f"  page size: {page / 1e3:.0f} kB; goal: command <= 3.00 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
