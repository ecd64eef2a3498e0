"""Benchmarks with goals: one command, a printed table.

    .venv/bin/python bench/bench.py            # P1-P4 (P5: bench/fleet_bench.py)
    .venv/bin/python bench/bench.py --only P2
    .venv/bin/python bench/bench.py --only IMG   # the container image (root, buildah); also --image

P1  the whole suite vs the guide's manual procedure with the official tools, same sandbox
P2  time to a full report when every endpoint of the sandbox profile hangs / refuses / does not resolve
P3  start-up: pytest --collect-only of the whole suite
P4  peak RSS of a full run (the suite's process, not the sandbox)
IMG the container image: size, and the time to build it (scripts/build-image.sh, every Dockerfile step)

It starts one sandbox for all measurements and stops it at the end.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conformance.sandbox import Sandbox  # noqa: E402 - after the path set-up above

PY = sys.executable
ROWS: list[tuple[str, str, str, str, str]] = []  # id, what, measured, goal, verdict


def timed(command: list[str], env: dict[str, str], cwd: Path = REPO) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    return time.monotonic() - started, proc


def median_of(runs: int, step: Callable[[], float]) -> float:
    return statistics.median(step() for _ in range(runs))


def suite(env: dict[str, str], profile: str, *args: str) -> tuple[float, dict[str, object]]:
    reports = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    seconds, proc = timed([PY, "-m", "pytest", f"--profile={profile}", f"--reports-dir={reports}", "-q", *args], env)
    found = sorted(reports.glob("*.json"))
    results = json.loads(found[-1].read_text()) if found else {}
    shutil.rmtree(reports, ignore_errors=True)
    if not results:
        raise SystemExit(f"suite run produced no results:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return seconds, results


# --------------------------------------------------------------------------- P1


def manual_steps(env: dict[str, str], work: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """The guide's manual procedure, one official tool after another."""
    s = env
    ca = s["SANDBOX_CA_BUNDLE"]
    aws_env = {
        "AWS_SHARED_CREDENTIALS_FILE": s["SANDBOX_AWS_CREDENTIALS_FILE"],
        "AWS_CONFIG_FILE": s.get("SANDBOX_AWS_CONFIG_FILE", "/dev/null"),
        "AWS_CA_BUNDLE": ca,
    }
    endpoint = ["--profile", "conformance", "--endpoint-url", s["SANDBOX_S3_ENDPOINT_URL"]]
    probe = work / "probe.txt"
    probe.write_text("conformance bench\n")
    bucket = f"s3://{s['SANDBOX_S3_BUCKET']}/conformance/bench-{os.getpid()}.txt"
    mlflow_test = work / "mlflow_test.py"
    mlflow_test.write_text(
        "import mlflow, random\n"
        "mlflow.set_tracking_uri(__import__('os').environ['MLFLOW_TRACKING_URI'])\n"
        "mlflow.set_experiment(__import__('os').environ['EXPERIMENT'])\n"
        "with mlflow.start_run(run_name='bench'):\n"
        "    mlflow.log_param('p', 1)\n"
        "    for step in range(3):\n"
        "        mlflow.log_metric('m', random.random(), step=step)\n"
        "    mlflow.log_text('hello', 'text_artifact.txt')\n"
    )
    mlflow_env = {
        "MLFLOW_TRACKING_URI": s["SANDBOX_MLFLOW_URI"],
        "MLFLOW_TRACKING_USERNAME": s["SANDBOX_MLFLOW_USER"],
        "MLFLOW_TRACKING_PASSWORD": s["SANDBOX_MLFLOW_PASSWORD"],
        "MLFLOW_TRACKING_SERVER_CERT_PATH": ca,
        "EXPERIMENT": s["SANDBOX_MLFLOW_EXPERIMENT"],
    }
    layout = work / "oci"
    _oci_layout(layout)
    certs = work / "certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(ca, certs / "ca.crt")
    target = f"docker://{s['SANDBOX_REGISTRY_HOST']}/{s['SANDBOX_REGISTRY_PROJECT']}/bench:{os.getpid()}"
    skopeo = ["skopeo", "copy", "--authfile", s["SANDBOX_DOCKER_CONFIG"], "--dest-cert-dir", str(certs)]
    steps = [
        ("aws s3 ls", ["aws", "s3", "ls", *endpoint], aws_env),
        ("aws s3 cp", ["aws", "s3", "cp", str(probe), bucket, *endpoint], aws_env),
        ("mlflow_test.py", [PY, str(mlflow_test)], mlflow_env),
        ("skopeo copy", [*skopeo, f"oci:{layout}:v1", target], {"HOME": str(work)}),
    ]
    if "SANDBOX_GIT_SSH_URL" in s:
        ssh = f"ssh -F {s['SANDBOX_SSH_CONFIG']} -o BatchMode=yes"
        steps.append(("git ls-remote ssh", ["git", "ls-remote", s["SANDBOX_GIT_SSH_URL"]], {"GIT_SSH_COMMAND": ssh}))
    if "SANDBOX_GIT_HTTPS_URL" in s:
        # As a user does it: the personal access token as the password of basic auth.
        pair = f"{s['SANDBOX_GITLAB_USER']}:{s['SANDBOX_GITLAB_TOKEN']}".encode()
        header = f"http.extraHeader=Authorization: Basic {base64.b64encode(pair).decode()}"
        https = ["git", "-c", header, "ls-remote", s["SANDBOX_GIT_HTTPS_URL"]]
        steps.append(("git ls-remote https", https, {"GIT_SSL_CAINFO": ca, "GIT_TERMINAL_PROMPT": "0"}))
    if "SANDBOX_KUBECONFIG" in s and shutil.which("kubectl"):
        kubectl = ["kubectl", "--kubeconfig", s["SANDBOX_KUBECONFIG"], "-n", s["SANDBOX_K8S_NAMESPACE"]]
        steps.append(("kubectl auth can-i", [*kubectl, "auth", "can-i", "create", "pods"], {}))
    return steps


def _oci_layout(path: Path) -> None:
    """A one-layer OCI image layout for skopeo, like the suite pushes."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = b"bench\n"
        info = tarfile.TarInfo("bench.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = raw.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(layer),
                        "size": len(layer)}],
        }
    ).encode()  # fmt: skip
    index = {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(manifest),
             "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "v1"}}
        ],
    }  # fmt: skip
    (path / "index.json").write_text(json.dumps(index))
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))


def p1(env: dict[str, str], runs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-manual-"))
    steps = manual_steps(env, work)
    base = {**os.environ, **env}
    for name, command, extra in steps:  # one warm-up, and every step must succeed
        _, proc = timed(command, {**base, **extra})
        if proc.returncode != 0:
            raise SystemExit(f"manual step {name} failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")

    def manual() -> float:
        return sum(timed(command, {**base, **extra})[0] for _, command, extra in steps)

    manual_s = median_of(runs, manual)
    _, results = suite(base, "sandbox")
    counts = results["summary"]
    assert isinstance(counts, dict)
    suite_s = median_of(runs, lambda: suite(base, "sandbox")[0])
    checks = int(counts["passed"])
    ratio = suite_s / manual_s
    ROWS.append(("P1", f"manual procedure ({len(steps)} tool runs, {len(steps)} facts)", f"{manual_s:.2f} s", "", ""))
    ok = ratio <= 0.25 and checks >= 3 * len(steps)
    ROWS.append(
        (
            "P1",
            f"whole suite, sandbox ({checks} checks passed)",
            f"{suite_s:.2f} s (ratio {ratio:.2f}, {checks / len(steps):.1f}x checks)",
            "ratio <= 0.25, >= 3x checks",
            "met" if ok else "NOT met",
        )
    )
    shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- P2


OUTAGES = {
    "hung": "accepts TCP and never answers",
    "refused": "refuses connections",
    "nodns": "does not resolve",
}


def p2(env: dict[str, str]) -> None:
    """The sandbox profile (every component) with every endpoint behind one outage (conformance/sandbox/outage.py)."""
    from conformance.sandbox.outage import outage  # noqa: PLC0415 - bench only

    connect, request = 2.0, 5.0  # profiles/sandbox.yaml
    goal = 1.5 * (connect + request)
    collect = [PY, "-m", "pytest", "--collect-only", "-q", "--no-reports", "--profile=sandbox"]
    start = timed(collect, {**os.environ, **env})[0]  # the session's fixed start cost
    for mode, what in OUTAGES.items():
        variables, undo = outage(env, mode)
        try:
            seconds, results = suite({**os.environ, **variables}, "sandbox")
        finally:
            undo()
        checks: list[dict[str, object]] = results["checks"]  # type: ignore[assignment] # a list in the schema
        own = sorted({str(c["id"]) for c in checks if c["outcome"] in ("failed", "error") and not c["blocked_by"]})
        blocked = sum(1 for c in checks if c["blocked_by"])
        after = seconds - start
        roots = ", ".join(own)
        row = f"every endpoint of the sandbox profile {what} ({len(checks)} checks, {blocked} blocked by {roots})"
        measured = f"{seconds:.1f} s: {after:.1f} s after the {start:.1f} s start"
        ROWS.append(("P2", row, measured, f"<= {goal:g} s after the start", _v(after <= goal)))


# --------------------------------------------------------------------------- P3, P4


def p3(env: dict[str, str], runs: int) -> None:
    base = {**os.environ, **env}
    command = [PY, "-m", "pytest", "--collect-only", "-q", "--no-reports", "--profile=sandbox"]
    seconds = median_of(runs, lambda: timed(command, base)[0])
    ROWS.append(("P3", "pytest --collect-only, whole suite", f"{seconds:.2f} s", "<= 1.0 s", _v(seconds <= 1.0)))


def p4(env: dict[str, str]) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    suite({**os.environ, **env}, "sandbox")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    note = "" if peak_mb > before / 1024 else " (an earlier child was larger)"
    ROWS.append(("P4", f"peak RSS, full sandbox run{note}", f"{peak_mb:.0f} MB", "<= 400 MB", _v(peak_mb <= 400)))


# --------------------------------------------------------------------------- IMG


def image() -> None:
    """Build the image with every Dockerfile step (the cached Debian base and wheels reused); size and times."""
    seconds, proc = timed(["bash", "scripts/build-image.sh"], {**os.environ, "NO_CACHE": "1"})
    found = re.search(r"^image: \S+ size_mb=(\d+) base_s=(\d+) wheels_s=(\d+) build_s=(\d+)$", proc.stdout, re.M)
    if proc.returncode != 0 or found is None:
        ROWS.append(("IMG", "container image", f"build failed: {(proc.stderr or proc.stdout)[-200:]!r}", "", ""))
        return
    size, base, wheels, build = (int(g) for g in found.groups())
    ROWS.append(("IMG", "container image size (Debian 12 base from debootstrap, client lock)", f"{size} MB", "", ""))
    ROWS.append(
        (
            "IMG",
            f"image build, every Dockerfile step with buildah (base {base} s and wheels {wheels} s, cached)",
            f"{build} s ({seconds:.0f} s in all)", "", "",
        )
    )  # fmt: skip


def _v(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["P1", "P2", "P3", "P4", "IMG"], help="run only these")
    parser.add_argument("--image", action="store_true", help="also build the container image (root, buildah)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions for medians (default 5)")
    args = parser.parse_args()
    chosen = args.only or ["P4", "P3", "P2", "P1"]
    if args.image or "IMG" in chosen:
        image()
    if not set(chosen) - {"IMG"}:
        chosen = []
    sandbox = Sandbox().start() if chosen else None
    try:
        env = dict(sandbox.env) if sandbox else {}
        if "P4" in chosen:  # first, so no larger child process skews the maximum
            p4(env)
        if "P3" in chosen:
            p3(env, args.runs)
        if "P2" in chosen:
            p2(env)
        if "P1" in chosen:
            p1(env, args.runs)
    finally:
        if sandbox:
            sandbox.stop()
    print(f"\nMachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}\n")
    print("| goal | what | measured | target | verdict |")
    print("|---|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
