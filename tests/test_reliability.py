"""Reliability: no leak under any fault, clear errors for bad input, concurrency, reruns, xdist.

The fast tests run in every ``pytest tests``; the long ones (every fault profile's leak run,
twenty reruns) only with ``RELIABILITY=1`` (``tox -e reliability``). All are marked
``reliability``, so ``-m reliability`` selects them and ``-m "not reliability"`` leaves them out.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import files
from conformance.checks import CannotEvaluate
from conformance.profile import TLS, ProfileError, display, resolve_profile_path
from conformance.secrets import encodings
from conformance.session import open_profile
from conformance.waivers import load_waivers
from tests import reliability_inputs as inputs
from tests.conftest import REPO, SuiteRun, run_suite, write_profile

pytestmark = pytest.mark.reliability
LONG = pytest.mark.skipif(
    os.environ.get("RELIABILITY") != "1", reason="not run: set RELIABILITY=1 (tox -e reliability)"
)
LOUD = ("-vv", "-l", "--showlocals", "--log-cli-level=DEBUG", "-rA")  # everything a run can print
MIN_NEEDLE = 8  # shorter values would match ordinary text
RUN_ID = re.compile(r"\d{14}-[0-9a-f]{6}")
Suite = Callable[..., SuiteRun]


# --------------------------------------------------------------------------- canaries


def _kube_secrets(path: str) -> Iterator[str]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError:  # the sandbox's deliberately malformed kubeconfig holds no credential
        return
    for entry in data.get("users") or []:
        user = entry.get("user") or {}
        config = (user.get("auth-provider") or {}).get("config") or {}
        for source in (user, config):
            for key in ("token", "id-token", "refresh-token", "password", "client-key-data"):
                if isinstance(source.get(key), str):
                    yield source[key]


def _pem_parts(pem: str) -> Iterator[str]:
    yield pem
    yield from (line for line in pem.splitlines() if len(line) >= 40 and not line.startswith("-----"))


def sandbox_canaries(env: dict[str, str]) -> dict[str, str]:
    """Every credential the sandbox holds, by where it is kept: the values that must never appear."""
    found: dict[str, str] = {}
    for name, value in env.items():
        if re.search(r"PASSWORD|SECRET_ACCESS_KEY|_TOKEN$", name) and not name.endswith("_FILE"):
            found[f"env {name}"] = value
    for name, path in env.items():
        if name.startswith("SANDBOX_KUBECONFIG") and Path(path).is_file():
            for i, value in enumerate(_kube_secrets(path)):
                found[f"{name} credential {i}"] = value
    aws = configparser.RawConfigParser()
    aws.read(env["SANDBOX_AWS_CREDENTIALS_FILE"])
    for section in aws.sections():
        found[f"aws [{section}] secret"] = aws.get(section, "aws_secret_access_key")
    docker = json.loads(Path(env["SANDBOX_DOCKER_CONFIG"]).read_text())
    for host, entry in docker.get("auths", {}).items():
        found[f"docker auths[{host}]"] = entry["auth"]
        found[f"docker auths[{host}] password"] = base64.b64decode(entry["auth"]).decode().partition(":")[2]
    for name in ("SANDBOX_GCP_KEY_FILE", "SANDBOX_GCS_CREDENTIALS_FILE"):
        key = json.loads(Path(env[name]).read_text())
        found[f"{name} private_key_id"] = key["private_key_id"]
        for i, part in enumerate(_pem_parts(key["private_key"])):
            found[f"{name} private_key {i}"] = part
    for i, part in enumerate(_pem_parts(Path(env["SANDBOX_SSH_KEY"]).read_text())):
        found[f"ssh key {i}"] = part
    return found


def _basic(user: str, password: str) -> set[str]:
    pair = f"{user}:{password}".encode()
    return {base64.b64encode(pair).decode(), base64.urlsafe_b64encode(pair).decode()}


def needles(canaries: dict[str, str], pairs: list[tuple[str, str]]) -> dict[str, str]:
    """needle -> canary name: each value raw, URL-encoded, JSON-escaped, base64; Basic pairs."""
    found: dict[str, str] = {}
    for name, value in canaries.items():
        variants = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
        variants |= {json.dumps(value)[1:-1], base64.b64encode(value.encode()).decode()}
        for variant in variants:
            if len(variant) >= MIN_NEEDLE:
                found[variant] = name
    for user, password in pairs:
        for variant in _basic(user, password):
            found[variant] = f"Basic {user}:<password>"
    return found


def basic_pairs(env: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (env["SANDBOX_MLFLOW_USER"], env["SANDBOX_MLFLOW_PASSWORD"]),
        (env["SANDBOX_MLFLOW_READONLY_USER"], env["SANDBOX_MLFLOW_READONLY_PASSWORD"]),
        (env["SANDBOX_REGISTRY_USER"], env["SANDBOX_REGISTRY_PASSWORD"]),
        (env["SANDBOX_REGISTRY_GUEST_USER"], env["SANDBOX_REGISTRY_GUEST_PASSWORD"]),
        (env["SANDBOX_REGISTRY_USER"], WRONG["REL_WRONG_REGISTRY"]),
        (env["SANDBOX_MLFLOW_USER"], WRONG["REL_WRONG_MLFLOW"]),
    ]


def leaks(run: SuiteRun, found: dict[str, str]) -> list[str]:
    """'where: canary name' for every needle in the output or an artifact (never the value)."""
    texts = {"terminal output": run.output, **run.artifact_texts()}
    return sorted({f"{where}: {name}" for where, text in texts.items() for n, name in found.items() if n in text})


# --------------------------------------------------------------------------- 1. leaks

# Wrong credentials a fault profile sends: secrets too (special characters on purpose).
WRONG = {
    "REL_WRONG_MLFLOW": "rel-Wrong/Mlflow+Pass=word&1",
    "REL_WRONG_REGISTRY": "rel-Wrong:Registry/Pass+2",
    "REL_WRONG_AWS": "rel-Wrong/Aws+Secret=Key0123456789abcd",
}


def _aws_file(path: Path, key_id: str, secret: str) -> str:
    path.write_text(f"[conformance]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
    path.chmod(0o600)
    return str(path)


def _bad_key(path: Path, source: str) -> str:
    """The real key with the wrong type: the checks refuse it while it still holds the private key."""
    key = json.loads(Path(source).read_text())
    path.write_text(json.dumps({**key, "type": "authorized_user"}))
    path.chmod(0o600)
    return str(path)


def fault_profiles(directory: Path, env: dict[str, str]) -> dict[str, Path]:
    """Representative faults of every component, grouped so that one run carries several."""
    sandbox, gcp = REPO / "profiles" / "sandbox.yaml", REPO / "profiles" / "sandbox-gcp.yaml"
    admin, readonly = env["SANDBOX_S3_ADMIN_ACCESS_KEY_ID"], env["SANDBOX_S3_READONLY_ACCESS_KEY_ID"]
    groups: dict[str, tuple[Path, dict[str, Any]]] = {
        "wrong-secrets": (
            sandbox,
            {
                "mlflow": {"password": "env:REL_WRONG_MLFLOW"},
                "registry": {"username": "${SANDBOX_REGISTRY_USER}", "password": "env:REL_WRONG_REGISTRY"},
                "object_storage": {
                    "credentials_file": _aws_file(directory / "aws-wrong", admin, WRONG["REL_WRONG_AWS"])
                },
                "gitlab": {"token": "env:SANDBOX_GITLAB_REVOKED_TOKEN"},
                "kubernetes": {"kubeconfig": "${SANDBOX_KUBECONFIG_BADTOKEN}"},
            },
        ),
        "denied-and-expired": (
            sandbox,
            {
                "mlflow": {
                    "username": "${SANDBOX_MLFLOW_READONLY_USER}",
                    "password": "env:SANDBOX_MLFLOW_READONLY_PASSWORD",
                },
                "registry": {
                    "username": "${SANDBOX_REGISTRY_GUEST_USER}",
                    "password": "env:SANDBOX_REGISTRY_GUEST_PASSWORD",
                },
                "object_storage": {
                    "credentials_file": _aws_file(
                        directory / "aws-readonly", readonly, env["SANDBOX_S3_READONLY_SECRET_ACCESS_KEY"]
                    )
                },
                "gitlab": {"token": "env:SANDBOX_GITLAB_EXPIRED_TOKEN"},
                "kubernetes": {"kubeconfig": "${SANDBOX_KUBECONFIG_EXPIRED}"},
            },
        ),
        "missing-and-malformed": (
            sandbox,
            {
                "mlflow": {"username": None, "password": None},
                "registry": {"docker_config": str(directory / "absent" / "config.json")},
                "object_storage": {"credentials_file": str(directory / "absent" / "credentials")},
                "gitlab": {"token": None},
                "kubernetes": {"kubeconfig": "${SANDBOX_KUBECONFIG_MALFORMED}"},
            },
        ),
        "gcp-faults": (
            gcp,
            {
                "object_storage": {
                    "credentials_file": _bad_key(directory / "gcs-key.json", env["SANDBOX_GCS_CREDENTIALS_FILE"])
                },
                "gcp": {
                    "key_file": _bad_key(directory / "gcp-key.json", env["SANDBOX_GCP_KEY_FILE"]),
                    "project": "${SANDBOX_GCP_DENIED_PROJECT}",
                },
                "kubernetes": {"kubeconfig": "${SANDBOX_KUBECONFIG_NOLOGIN}"},
            },
        ),
    }
    return {
        name: write_profile(directory, yaml.safe_dump({"extends": str(base), **changes}), f"{name}.yaml")
        for name, (base, changes) in groups.items()
    }


def assert_no_leak(run: SuiteRun, env: dict[str, str], extra: dict[str, str] | None = None) -> None:
    assert "INTERNALERROR" not in run.output, run.output[-3000:]
    assert len(run.results.get("checks", [])) >= 60, f"the run did not get to the checks:\n{run.output[-3000:]}"
    canaries = {**sandbox_canaries(env), **WRONG, **(extra or {})}
    assert leaks(run, needles(canaries, basic_pairs(env))) == []
    assert "LEAK" not in run.output  # the suite's own scan found nothing to withhold


def test_no_credential_leaks_on_a_healthy_sandbox(alone: SuiteRun, sandbox_env: dict[str, str]) -> None:
    assert_no_leak(alone, sandbox_env)


def test_no_credential_leaks_on_a_healthy_gcp_sandbox(suite: Suite, sandbox_env: dict[str, str]) -> None:
    run = suite(*LOUD, profile="sandbox-gcp")
    assert run.rc == 0, run.output[-3000:]
    assert_no_leak(run, sandbox_env)


FAULT_GROUPS = ["wrong-secrets", "denied-and-expired", "missing-and-malformed", "gcp-faults"]


@pytest.mark.parametrize("group", [pytest.param(g, marks=[] if g == "wrong-secrets" else [LONG]) for g in FAULT_GROUPS])
def test_no_credential_leaks_under_faults(
    suite: Suite, sandbox_env: dict[str, str], tmp_path: Path, group: str
) -> None:
    profile = fault_profiles(tmp_path, sandbox_env)[group]
    run = suite(*LOUD, profile=profile, env=WRONG)
    assert run.rc == 1, run.output[-3000:]  # the faults show
    assert {c["outcome"] for c in run.results["checks"]} >= {"passed", "failed", "error"}
    assert_no_leak(run, sandbox_env)


# Header-safe secrets whose printed forms differ from the value (issue 10, leak 3: quotes, a backslash).
AWKWARD_TOKENS = {
    "REL_QUOTE_TOKEN": 'glpat-"quoted"-token-1',
    "REL_BOTH_QUOTES_PW": "rel-both'quotes\"-pw-2",
    "REL_BACKSLASH_PW": "rel-back\\slash-pw-3",
}


def test_no_leak_of_secrets_whose_repr_differs_from_their_value(suite: Suite, tmp_path: Path) -> None:
    """Sent and refused by the servers, printed with -l and DEBUG logs: no form of them anywhere."""
    sections = {
        "extends": str(REPO / "profiles" / "sandbox.yaml"),
        "gitlab": {"token": "env:REL_QUOTE_TOKEN"},
        "mlflow": {"password": "env:REL_BOTH_QUOTES_PW"},
        "registry": {"username": "${SANDBOX_REGISTRY_USER}", "password": "env:REL_BACKSLASH_PW"},
    }
    run = suite(*LOUD, "-m", "gitlab or mlflow or registry", profile=write_profile(tmp_path, yaml.safe_dump(sections)),
                env=AWKWARD_TOKENS)  # fmt: skip
    assert "INTERNALERROR" not in run.output, run.output[-3000:]
    assert run.rc == 1, run.output[-3000:]  # the wrong secrets show
    found = {form: name for name, value in AWKWARD_TOKENS.items() for form in encodings(value) if len(form) >= 8}
    assert leaks(run, found) == []
    assert "LEAK" not in run.output


def test_canary_search_finds_a_planted_secret(tmp_path: Path, sandbox_env: dict[str, str]) -> None:
    """The search itself works: each encoding of a canary is found where it was planted."""
    password = sandbox_env["SANDBOX_MLFLOW_PASSWORD"]
    user = sandbox_env["SANDBOX_MLFLOW_USER"]
    found = needles(sandbox_canaries(sandbox_env), basic_pairs(sandbox_env))
    for planted in (password, urllib.parse.quote(password, safe=""), *_basic(user, password)):
        (tmp_path / "artifact.html").write_text(f"<td>{planted}</td>")
        run = SuiteRun(0, "", 0.0, tmp_path)
        assert leaks(run, found), planted
    key = json.loads(Path(sandbox_env["SANDBOX_GCP_KEY_FILE"]).read_text())
    run = SuiteRun(0, json.dumps({"key": key["private_key"]}), 0.0, tmp_path / "none")
    (tmp_path / "none").mkdir()
    assert "terminal output: SANDBOX_GCP_KEY_FILE private_key 0" in leaks(run, found)


# --------------------------------------------------------------------------- 2. bad input


def _write_case(path: Path, content: bytes) -> Path:
    """``content`` at ``path``, or the special file it names (see ``inputs.SPECIAL_FILES``)."""
    if content == inputs.DIRECTORY:
        path.mkdir()
    elif content == inputs.FIFO:
        os.mkfifo(path, 0o600)
    elif content == inputs.SYMLINK_LOOP:
        path.symlink_to(path.name)
    elif content == inputs.SPARSE_HUGE:
        with path.open("wb") as handle:
            handle.truncate(files.MAX_BYTES + 1)
        path.chmod(0o600)
    elif content.startswith(b"<symlink:"):
        path.symlink_to(content[len(b"<symlink:") : -1].decode())
    else:
        path.write_bytes(content)
        path.chmod(0o600)
    return path


def within_deadline(work: Callable[[], Any], seconds: float = 60) -> Any:
    """``work()``'s result; fails (instead of hanging the test run) if it takes longer than ``seconds``.

    Generous: parsing a 5,000-level nesting on a loaded machine takes seconds; a FIFO would take forever.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(work)
        try:
            return future.result(timeout=seconds)
        except TimeoutError:
            pytest.fail(f"no answer within {seconds} s: a read that blocks (a FIFO?) or never ends (/dev/zero?)")


# Values no message may hold: a password in a URL, secrets that cannot go into a header, the profile's.
CANARIES = [inputs.URL_CANARY, *inputs.HEADER_UNSAFE.values(), inputs.PROFILE_ENV["REL_PW"]]


def assert_no_canary(text: str) -> None:
    for canary in CANARIES:
        leaked = sorted(form for form in encodings(canary) if len(form) >= MIN_NEEDLE and form in text)
        assert not leaked, f"a canary appears in: {text[:300]}"


def assert_one_line(message: str, names: str | None = None) -> None:
    assert message.strip(), "empty message"
    assert "\n" not in message.strip(), message[:500]
    assert "Traceback" not in message
    assert len(message) <= 2000, f"{len(message)} characters: {message[:300]}..."
    if names is not None:
        assert names in message, message


# Cases that show a real defect in conformance/ today (see the reliability report): strict, so that
# the fix makes them pass and this list must shrink.
# Inputs that once broke the suite (a traceback or an unbounded line); each is now a regular case.
# Put a case here, with the reason, only while its bug is open: xfail(strict) fails once it is fixed.
KNOWN_BUGS: dict[str, str] = {}


def _cases(cases: list[inputs.Case]) -> list[Any]:
    return [
        pytest.param(content, id=name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[name])])
        if name in KNOWN_BUGS
        else pytest.param(content, id=name)
        for name, content in cases
    ]


def _environ(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**inputs.PROFILE_ENV, "HOME": str(home), "PATH": os.environ.get("PATH", "")}


def _refusal(work: Callable[[], object]) -> ProfileError:
    def run() -> ProfileError:
        with pytest.raises(ProfileError) as caught:
            work()
        return caught.value

    error: ProfileError = within_deadline(run)
    return error


@pytest.mark.parametrize("content", _cases(inputs.profile_cases()))
def test_malformed_profile_is_refused_in_one_line_per_problem(tmp_path: Path, content: bytes) -> None:
    path = _write_case(tmp_path / "case.yaml", content)
    error = _refusal(lambda: open_profile(path, _environ(tmp_path)))
    assert error.lines
    for line in error.lines:
        assert_one_line(line)
        assert line.startswith(f"{display(path)}: "), line[:300]
        assert_no_canary(line)


@pytest.mark.parametrize("content", _cases(inputs.waivers_cases()))
def test_malformed_waivers_file_is_refused_in_one_line_per_problem(tmp_path: Path, content: bytes) -> None:
    path = _write_case(tmp_path / "waivers.yaml", content)
    error = _refusal(lambda: load_waivers(path))
    assert error.lines
    for line in error.lines:
        assert_one_line(line)
        assert line.startswith(f"{display(path)}: "), line[:300]


# A special file named by each field of a profile that names a file: refused in one line, at once.
FILE_FIELDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "secret-file": lambda p: {"mlflow": {**inputs.BASE_PROFILE["mlflow"], "password": f"file:{p}"}},
    "ca-bundle": lambda p: {"tls": {"ca_bundle": p}},
    "waivers": lambda p: {"waivers": p},
    "extends": lambda p: {"extends": p},
}


@pytest.mark.parametrize("special", inputs.SPECIAL_FILES)
@pytest.mark.parametrize("field", FILE_FIELDS)
def test_special_file_named_by_a_profile_field_is_refused_in_one_line(tmp_path: Path, field: str, special: str) -> None:
    target = _write_case(tmp_path / f"target-{special}.yaml", inputs.SPECIAL_FILES[special])
    path = write_profile(tmp_path, yaml.safe_dump({**inputs.BASE_PROFILE, **FILE_FIELDS[field](str(target))}))
    error = _refusal(lambda: open_profile(path, _environ(tmp_path)))
    (line,) = error.lines
    assert_one_line(line, names=str(target))


@pytest.mark.parametrize("special", inputs.SPECIAL_FILES)
def test_special_file_as_the_profile_itself_is_refused_in_one_line(tmp_path: Path, special: str) -> None:
    path = _write_case(tmp_path / "case.yaml", inputs.SPECIAL_FILES[special])
    error = _refusal(lambda: resolve_profile_path(str(path), tmp_path) and open_profile(path, _environ(tmp_path)))
    (line,) = error.lines
    assert_one_line(line, names=str(path))


CLI_SAMPLE = [
    "profile-syntax-0",
    "profile-non-utf8-0",
    "profile-type-timeouts.connect-0",
    "profile-value-3-mlflow.password",
    "profile-url-mlflow.tracking_uri-userinfo-password",  # issue 10 case 1
    "profile-url-registry.url-port-70000",  # case 5
    "profile-url-object_storage.endpoint_url-unclosed-ipv6",
    "profile-integer-5001-digits",  # case 6
    "profile-fifo",
    "profile-duplicate-top-key",  # case 13
    "profile-bool-timeouts.connect-True",
]


@pytest.mark.parametrize("name", CLI_SAMPLE)
def test_profile_check_command_exits_4_with_file_field_problem_lines(tmp_path: Path, name: str) -> None:
    content = dict(inputs.profile_cases())[name]
    path = _write_case(tmp_path / "case.yaml", content)
    env = {k: v for k, v in {**os.environ, **_environ(tmp_path)}.items() if "\x00" not in v}
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "profile", "check", str(path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 4, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines
    assert all(re.match(rf"(ERROR: )?{re.escape(str(path))}: \S", line) for line in lines), lines
    assert_no_canary(output)


# Profiles that once ended pytest in INTERNALERROR, exit 3, no reports (issue 10 cases 1, 5, 6, 13).
PYTEST_SAMPLE = [
    "profile-url-mlflow.tracking_uri-userinfo-password",
    "profile-url-object_storage.endpoint_url-port-70000",
    "profile-url-registry.url-space-in-host",
    "profile-integer-5001-digits",
    "profile-duplicate-top-key",
]


@pytest.mark.parametrize("name", PYTEST_SAMPLE)
def test_pytest_exits_4_with_one_line_per_problem_on_a_bad_profile(tmp_path: Path, name: str) -> None:
    path = _write_case(tmp_path / "case.yaml", dict(inputs.profile_cases())[name])
    env = {k: v for k, v in {**os.environ, **_environ(tmp_path)}.items() if "\x00" not in v}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--profile={path}", "--collect-only", "-q"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 4, output[-2000:]
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    assert f"{path}: " in output
    assert_no_canary(output)


# Waivers that once ended pytest in INTERNALERROR and passed `profile check` (issue 10 cases 11, 12).
WAIVER_SAMPLE = ["waivers-expires-2030-02-31", "waivers-non-utf8-0", "waivers-fifo", "waivers-duplicate-top-key"]


@pytest.mark.parametrize("name", [n for n in WAIVER_SAMPLE if n in dict(inputs.waivers_cases())])
@pytest.mark.parametrize("command", ["profile check", "pytest"])
def test_bad_waivers_file_exits_4_in_one_line(tmp_path: Path, name: str, command: str) -> None:
    waivers = _write_case(tmp_path / "waivers.yaml", dict(inputs.waivers_cases())[name])
    path = write_profile(tmp_path, f"platform: onprem\norchestrator: runai\nwaivers: {waivers}\n")
    argv = ["-m", "conformance", "profile", "check", str(path)]
    if command == "pytest":
        argv = ["-m", "pytest", "-p", "no:cacheprovider", f"--profile={path}", "--collect-only", "-q"]
    proc = subprocess.run(
        [sys.executable, *argv], cwd=REPO, env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 4, output[-2000:]
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    assert str(waivers) in output, output[-2000:]


def _profile_for(kind: str, file: Path, directory: Path) -> Path:
    sections = {
        "kubeconfig": {"kubernetes": {"kubeconfig": str(file), "namespace": "runai-app"}, "runai": {"project": "app"}},
        "aws": {
            "object_storage": {
                "kind": "s3", "endpoint_url": "https://127.0.0.1:9", "bucket": "bucket-1",
                "credentials_file": str(file), "aws_profile": inputs.AWS_SECTION,
            }
        },
        "docker": {
            "registry": {
                "url": f"https://{inputs.DOCKER_HOST}", "project_path": f"{inputs.DOCKER_HOST}/mlops/app",
                "docker_config": str(file),
            }
        },
    }  # fmt: skip
    data = {"platform": "onprem", "orchestrator": "runai", "timeouts": {"connect": 1, "request": 2}, **sections[kind]}
    return write_profile(directory, yaml.safe_dump(data), f"{kind}-profile.yaml")


def kubeconfig_problem(profile_path: Path, environ: dict[str, str]) -> str:
    """What the K8S/RAI checks would report, from the functions their fixtures call."""
    from conformance.clients import kubernetes as kube

    profile = open_profile(profile_path, environ).profile
    kc = kube.find_kubeconfig(profile.kubernetes, environ, Path(environ["HOME"]))
    kc.credential_values()
    kc.trust(TLS())
    if kc.problem:
        assert profile.kubernetes is not None
        assert str(profile.kubernetes.kubeconfig) in kc.problem, kc.problem
        return kc.problem
    if kc.context_problem:
        return kc.context_problem
    found = kube.credential(kc, environ)
    if found.problem:
        return found.problem
    try:
        kube.connect(profile, "reliability")
    except CannotEvaluate as exc:
        return str(exc)
    return ""


def aws_problem(profile_path: Path, environ: dict[str, str]) -> str:
    from conformance.clients import object_storage

    profile = open_profile(profile_path, environ).profile
    assert profile.object_storage is not None
    facts = object_storage.credential_facts(profile.object_storage)
    assert facts.problem is None or str(facts.path) in facts.problem, facts.problem
    return facts.problem or ""


def docker_problem(profile_path: Path, environ: dict[str, str]) -> str:
    from conformance.clients import registry

    profile = open_profile(profile_path, environ).profile
    assert profile.registry is not None
    found = registry.find_credentials(profile.registry, 2)
    assert found.credential is None or found.problems, "a malformed config gave a credential"
    assert all(str(profile.registry.docker_config) in problem for problem in found.problems), found.problems
    return " | ".join(found.problems)


PROBLEM_OF: dict[str, Callable[[Path, dict[str, str]], str]] = {
    "kubeconfig": kubeconfig_problem,
    "aws": aws_problem,
    "docker": docker_problem,
}
FILE_CASES = [
    *(("kubeconfig", name, content) for name, content in inputs.kubeconfig_cases()),
    *(("aws", name, content) for name, content in inputs.aws_credentials_cases()),
    *(("docker", name, content) for name, content in inputs.docker_config_cases()),
]


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        pytest.param(kind, content, id=name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[name])])
        if name in KNOWN_BUGS
        else pytest.param(kind, content, id=name)
        for kind, name, content in FILE_CASES
    ],
)
def test_malformed_credential_file_is_reported_in_one_line(tmp_path: Path, kind: str, content: bytes) -> None:
    file = _write_case(tmp_path / f"{kind}-file", content)
    environ = _environ(tmp_path)
    problem = within_deadline(lambda: PROBLEM_OF[kind](_profile_for(kind, file, tmp_path), environ))
    assert_one_line(problem)


def test_credential_file_past_the_cap_is_refused_not_used(tmp_path: Path) -> None:
    """Too large for the secret index to scan, so the check refuses it: botocore never sends its token."""
    file = _write_case(tmp_path / "aws-file", dict(inputs.aws_credentials_cases())["aws-valid-but-past-cap"])
    profile = _profile_for("aws", file, tmp_path)
    loaded = open_profile(profile, _environ(tmp_path))
    assert loaded.secrets.find(inputs.AWS_SESSION_TOKEN) == []  # the index could not read it...
    problem = aws_problem(profile, _environ(tmp_path))
    assert f"{file} is not readable" in problem  # ...so OBJ-001 reports it and the S3 client is never built
    assert str(files.MAX_BYTES) in problem


def test_at_least_200_malformed_inputs() -> None:
    assert len(inputs.profile_cases()) + len(FILE_CASES) + len(inputs.waivers_cases()) >= 200
    assert inputs.profile_cases() == inputs.profile_cases()  # seeded: the same cases every run


# One suite run carries a malformed kubeconfig, AWS file and docker config at once.
E2E_SAMPLES = [
    ("kubeconfig-syntax-0", "aws-unclosed-section", "docker-syntax-0"),
    ("kubeconfig-non-utf8-1", "aws-non-utf8-1", "docker-non-utf8-1"),
    ("kubeconfig-users-entries-wrong", "aws-missing-secret", "docker-auth-not-base64"),
    ("kubeconfig-directory", "aws-directory", "docker-directory"),
    ("kubeconfig-oidc-id-token-not-jwt", "aws-other-section", "docker-other-host-only"),
    # Issue 10: a FIFO blocked the registry fixture forever; /dev/zero filled memory; a credential file
    # too large for the secret index was still used (its session token in botocore's DEBUG log).
    ("kubeconfig-fifo", "aws-valid-but-past-cap", "docker-fifo"),
    ("kubeconfig-past-size-cap", "aws-dev-zero", "docker-dev-zero"),
]
# The credentials these files hold: none may be printed, whatever the file's fault.
FILE_CANARIES = {
    inputs.AWS_SECRET: "AWS secret",
    inputs.AWS_SESSION_TOKEN: "AWS session token",
    "rel-docker-password": "docker password",
    inputs.DOCKER_AUTH: "docker auth",
    "rel-kube-token-value": "kubeconfig token",
}
COMPONENT_CHECKS = {"kubeconfig": ("K8S-", "RAI-"), "aws": ("OBJ-",), "docker": ("REG-",)}


@pytest.mark.parametrize("names", E2E_SAMPLES, ids=["-".join(n.split("-", 1)[1] for n in s) for s in E2E_SAMPLES])
def test_malformed_files_end_to_end(suite: Suite, tmp_path: Path, names: tuple[str, str, str]) -> None:
    by_name = {name: (kind, content) for kind, name, content in FILE_CASES}
    sections: dict[str, Any] = {
        "platform": "onprem",
        "orchestrator": "runai",
        "tls": {"ca_bundle": "${SANDBOX_CA_BUNDLE}"},
    }
    files: dict[str, Path] = {}
    for name in names:
        kind, content = by_name[name]
        files[kind] = _write_case(tmp_path / f"{kind}-{name}", content)
        sections.update(yaml.safe_load(_profile_for(kind, files[kind], tmp_path).read_text()))
    sections["timeouts"] = {"connect": 2, "request": 5, "check": 60}
    run = suite(
        *LOUD,
        "-m",
        # RAI checks: "runai" alone is also the orchestrator, which every component's checks apply to
        "kubernetes or object_storage or registry or (runai and not noorch and not gitlab and not workspace)",
        profile=write_profile(tmp_path, yaml.safe_dump(sections)),
    )
    assert leaks(run, FILE_CANARIES) == []
    assert "Traceback" not in run.output
    assert "INTERNALERROR" not in run.output
    assert run.rc == 1, run.output[-3000:]
    for kind, prefixes in COMPONENT_CHECKS.items():
        records = [c for c in run.results["checks"] if c["id"].startswith(prefixes)]
        reported = [c for c in records if c["outcome"] in ("failed", "error")]
        assert reported, (kind, [(c["id"], c["outcome"]) for c in records])
        # The failing check names the file, in its message or (for a problem inside it) its evidence.
        named = [c for c in reported if str(files[kind]) in c["message"]]
        assert named or str(files[kind]) in json.dumps([c["evidence"] for c in records]), reported
        for record in reported:
            assert_one_line(record["message"].replace("\n", " "))


# --------------------------------------------------------------------------- 3-5. concurrency, reruns, xdist


def _outcomes(run: SuiteRun) -> dict[str, str]:
    return {c["nodeid"]: c["outcome"] for c in run.results.get("checks", [])}


def _normalised(run: SuiteRun) -> dict[str, tuple[Any, ...]]:
    """Per check: everything but durations and evidence values, with the run id blanked."""
    found: dict[str, tuple[Any, ...]] = {}
    for c in run.results["checks"]:
        message = RUN_ID.sub("<run id>", c["message"])
        found[c["nodeid"]] = (c["id"], c["outcome"], message, c["remediation"], c["blocked_by"], sorted(c["evidence"]))
    return found


def _run_ids_in_evidence(run: SuiteRun) -> set[str]:
    return set(RUN_ID.findall(json.dumps([c["evidence"] for c in run.results["checks"]])))


@pytest.fixture(scope="module")
def alone(sandbox_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """The whole suite on the sandbox, serial, by itself, printing all it can: what other runs must equal."""
    run = run_suite(*LOUD, profile="sandbox", reports=tmp_path_factory.mktemp("alone"), env=sandbox_env)
    assert run.rc == 0, run.output[-3000:]
    return run


def test_four_suites_at_once_match_a_run_alone(suite: Suite, alone: SuiteRun) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda _: suite(profile="sandbox"), range(4)))
    run_ids = [run.results.get("run_id") for run in runs]
    assert len(set(run_ids)) == 4, run_ids
    for run in runs:
        assert _outcomes(run) == _outcomes(alone), run.output[-3000:]
        assert run.rc == 0
        # Each names (and so creates and deletes) only its own probes: no other run's id in its evidence
        # (its cluster vantage's job has an id of its own, named by CLU-002).
        own = {run.results["run_id"], run.check("CLU-002")["evidence"].get("run_id")}
        assert _run_ids_in_evidence(run) <= own, _run_ids_in_evidence(run)
    assert _run_ids_in_evidence(alone), "no probe names in the evidence: the interference check saw nothing"


@LONG
def test_twenty_reruns_change_no_outcome(suite: Suite, alone: SuiteRun) -> None:
    changes: list[str] = []
    for i in range(20):
        run = suite(profile="sandbox")
        now = _outcomes(run)
        changes += [
            f"rerun {i}: {k} {alone.results and _outcomes(alone).get(k)} -> {v}"
            for k, v in now.items()
            if _outcomes(alone).get(k) != v
        ]
        changes += [f"rerun {i}: {k} missing" for k in _outcomes(alone) if k not in now]
    assert changes == []


def test_xdist_gives_the_same_outcomes_and_report(suite: Suite, alone: SuiteRun) -> None:
    run = suite("-n", "2", profile="sandbox")
    assert run.rc == alone.rc, run.output[-3000:]
    assert _normalised(run) == _normalised(alone)
    assert run.results["summary"] == alone.results["summary"]
    assert set(run.results) == set(alone.results)
    html = next(p for name, p in run.artifact_texts().items() if name.endswith(".html"))
    assert all(c["id"] in html for c in alone.results["checks"])
