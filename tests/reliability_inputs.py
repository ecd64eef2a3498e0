"""Malformed inputs for the reliability tests: seeded random mutations plus hand-written nasty cases.

Every case is built to be wrong (never "maybe valid"): a profile that ``load_profile`` must refuse,
or a kubeconfig, AWS credentials file or docker config.json that the component's checks must
report. A case is ``(id, content)`` where content is bytes to write, or ``DIRECTORY`` to create a
folder in the file's place. The generator is deterministic (one seed), so a failing id is
reproducible.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from copy import deepcopy
from typing import Any

import yaml

SEED = 20261128
DIRECTORY = b"<directory>"  # create a folder where the file should be
DEEP = 5000  # nesting levels: far past any parser's recursion limit

Case = tuple[str, bytes]


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test inputs, not cryptography


# --------------------------------------------------------------------------- shared mutations


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False).encode()


def _broken_syntax(rng: random.Random, text: bytes) -> bytes:
    """Valid text with an unclosed flow collection spliced in at a random line."""
    lines = text.splitlines(keepends=True)
    at = rng.randrange(len(lines) + 1)
    junk = rng.choice([b"key: [unclosed, list\n", b"{a: 1\n", b"  - ]\n", b"x: 'open\n", b": : :\n\tbad: tab\n"])
    return b"".join([*lines[:at], junk, *lines[at:]])


def _non_utf8(rng: random.Random, text: bytes) -> bytes:
    at = rng.randrange(len(text) + 1)
    junk = bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randint(1, 8)))
    return text[:at] + b"\xff" + junk + text[at:]


def _common(prefix: str, rng: random.Random, valid: bytes, json_format: bool) -> Iterator[Case]:
    """Cases every file kind shares: syntax, encoding, emptiness, shape, depth, size, a folder."""
    for i in range(6):
        yield (
            f"{prefix}-syntax-{i}",
            (b"{" + valid[: rng.randrange(1, len(valid))] if json_format else b"") or (_broken_syntax(rng, valid)),
        )
    for i in range(4):
        yield f"{prefix}-non-utf8-{i}", _non_utf8(rng, valid)
    yield f"{prefix}-empty", b""
    yield f"{prefix}-whitespace", b"  \n\n   \n"
    yield f"{prefix}-nul-bytes", b"\x00" * 64
    yield f"{prefix}-deep-nesting", b"[" * DEEP + b"]" * DEEP if json_format else b"a: " + b"[" * DEEP + b"]" * DEEP
    yield f"{prefix}-directory", DIRECTORY
    yield f"{prefix}-binary-noise", bytes(rng.randrange(256) for _ in range(512))


# --------------------------------------------------------------------------- profiles

# A profile that loads (with REL_PW set): every section, nothing that needs a server.
BASE_PROFILE: dict[str, Any] = {
    "platform": "onprem",
    "orchestrator": "runai",
    "timeouts": {"connect": 2, "request": 5, "check": 60},
    "tls": {"insecure": False},
    "network": {"endpoints": [{"name": "web", "url": "https://web.example/"}]},
    "mlflow": {"tracking_uri": "https://mlflow.example", "username": "u", "password": "env:REL_PW"},
    "registry": {"url": "https://reg.example", "project_path": "reg.example/mlops/app"},
    "object_storage": {"kind": "s3", "endpoint_url": "https://s3.example", "bucket": "bucket-1"},
    "gitlab": {"url": "https://gitlab.example", "project": "mlops/app"},
    "kubernetes": {"namespace": "runai-app"},
    "runai": {"project": "app"},
    "workspace": {"home": "/nonexistent-home"},
    "gcp": {"project": "my-project-1"},
}
PROFILE_ENV = {"REL_PW": "rel-password-value", "REL_EMPTY": ""}

# (path, wrong values): each value is refused by the field's type.
WRONG_TYPES: list[tuple[tuple[str, ...], list[Any]]] = [
    (("platform",), ["aws", 3, [], {"a": 1}]),
    (("orchestrator",), ["kubeflow", True, ["runai"]]),
    (("timeouts", "connect"), ["soon", -1, 0, [1], {"s": 1}]),
    (("timeouts", "check"), ["forever", -5, [], {}]),
    (("tls",), ["yes", 1, ["a"]]),
    (("tls", "insecure"), ["maybe", 2, [True]]),
    (("network", "endpoints"), ["https://x", 5, {"name": "x"}]),
    (("mlflow", "tracking_uri"), [[1], {"u": 1}, 42]),
    (("mlflow", "password"), [12345678, ["env:REL_PW"], {"env": "REL_PW"}]),
    (("registry", "project_path"), [["a"], 7, {"h": 1}]),
    (("object_storage", "kind"), ["azure", 1, ["s3"]]),
    (("object_storage", "bucket"), [[1], 3.5, {"b": 1}]),
    (("gitlab", "ssh_port"), [0, 70000, "ssh", [22]]),
    (("gitlab", "ssh"), ["sometimes", [1]]),
    (("kubernetes", "namespace"), [["ns"], 5]),
    (("kubernetes", "expected_secrets"), ["one", 5, [["x"]]]),
    (("kubernetes", "required_access"), ["all", [5]]),
    (("workspace", "min_memory_gib"), ["lots", -4, []]),
    (("workspace", "tool_paths"), [["git"], "git", {"git": ""}]),
    (("workspace", "tools"), ["git", [1.5], [{"a": 1}]]),
    (("gcp", "project"), [123456, ["p"], {}]),
    (("mlflow",), ["https://mlflow.example", 1, ["x"]]),
]

REQUIRED = [
    ("platform",),
    ("orchestrator",),
    ("mlflow", "tracking_uri"),
    ("registry", "url"),
    ("registry", "project_path"),
    ("object_storage", "kind"),
    ("object_storage", "bucket"),
    ("gitlab", "url"),
    ("gitlab", "project"),
    ("runai", "project"),  # kubernetes.namespace is not here: on Run:ai the guide's runai-<project> fills it
    ("gcp", "project"),
]

BAD_VALUES: list[tuple[tuple[str, ...], Any]] = [
    (("mlflow", "password"), "hunter2-literal-password"),  # a literal, not a reference
    (("mlflow", "password"), "env:REL_UNSET_VARIABLE"),
    (("mlflow", "password"), "env:REL_EMPTY"),
    (("mlflow", "password"), "file:/nonexistent/secret.txt"),
    (("mlflow", "password"), "file:"),
    (("mlflow", "password"), "vault:secret/x"),
    (("mlflow", "tracking_uri"), "${REL_UNSET_URL}"),
    (("tls", "ca_bundle"), "/nonexistent/ca.pem"),
    (("waivers",), "/nonexistent/waivers.yaml"),
    (("extends",), "no-such-parent-profile"),
    (("extends",), "/nonexistent/parent.yaml"),
    (("extends",), 5),
    (("registry", "project_path"), "https://reg.example/mlops/app"),
    (("registry", "project_path"), "reg.example/MLOps/App:latest"),
    (("object_storage", "bucket"), "-leading-dash"),
    (("object_storage", "bucket"), "b" * 300),
    (("object_storage", "endpoint_url"), None),  # required for s3
    (("object_storage", "anonymous"), True),  # only for a GCS emulator
    (("kubernetes", "namespace"), "Not_A_Namespace"),
    (("kubernetes", "required_access"), ["delete everything please"]),
    (("runai", "project"), "UPPER"),
    (("gcp", "project"), "1-starts-with-digit"),
    (("network", "endpoints"), [{"name": "x", "url": "ftp://x.example/"}]),
    (("network", "endpoints"), [{"name": "x", "url": "https://user:pw@x.example/"}]),
    (("network", "endpoints"), [{"name": "x", "url": "tcp://x.example"}]),
    (("network", "endpoints"), [{"name": "x", "url": "https://x.example:99999/"}]),
    (("network", "endpoints"), [{"name": "Bad Name", "url": "https://x.example/"}]),
    (("network", "endpoints"), [{"name": "mlflow", "url": "https://dup.example/"}]),  # twice with the section's
    (("gitlab", "url"), "https://token:glpat-x@gitlab.example"),
    (("timeouts", "connect"), ".inf"),  # an unbounded network call
]


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy = deepcopy(data)
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def _delete(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    copy = deepcopy(data)
    node = copy
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return copy


def _profile_text(data: dict[str, Any]) -> bytes:
    text = _dump(data)
    return text.replace(b"'.inf'", b".inf")  # YAML's infinity, not the string


def profile_cases() -> list[Case]:
    rng = _rng(SEED)
    valid = _profile_text(BASE_PROFILE)
    cases: list[Case] = list(_common("profile", rng, valid, json_format=False))
    for path, values in WRONG_TYPES:
        for i, value in enumerate(values):
            cases.append((f"profile-type-{'.'.join(path)}-{i}", _profile_text(_set(BASE_PROFILE, path, value))))
    for path in REQUIRED:
        cases.append((f"profile-missing-{'.'.join(path)}", _profile_text(_delete(BASE_PROFILE, path))))
    for i, (path, value) in enumerate(BAD_VALUES):
        cases.append((f"profile-value-{i}-{'.'.join(path)}", _profile_text(_set(BASE_PROFILE, path, value))))
    sections = [k for k, v in BASE_PROFILE.items() if isinstance(v, dict)]
    for i in range(12):  # unknown keys, random names, at the top or in a random section
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(3, 12)))
        where: tuple[str, ...] = (rng.choice(sections), name) if i % 2 else (name,)
        cases.append((f"profile-unknown-key-{i}", _profile_text(_set(BASE_PROFILE, where, rng.randint(0, 9)))))
    cases += [
        ("profile-top-list", b"- platform: onprem\n- orchestrator: runai\n"),
        ("profile-top-scalar", b"just a string\n"),
        ("profile-only-comments", b"# nothing here\n# at all\n"),
        ("profile-null-document", b"---\nnull\n"),
        ("profile-huge-key", _profile_text(_set(BASE_PROFILE, ("k" * 100_000,), 1))),
        ("profile-huge-project-path", _profile_text(_set(BASE_PROFILE, ("registry", "project_path"), "h/" * 200_000))),
        ("profile-deep-section", _profile_text(BASE_PROFILE) + b"deep: " + b"{n: " * 300 + b"x" + b"}" * 300 + b"\n"),
        ("profile-anchor-fanout", _anchor_fanout()),
        ("profile-duplicate-extends-self", b"extends: ./case.yaml\nplatform: onprem\norchestrator: runai\n"),
        ("profile-tab-indent", b"platform: onprem\norchestrator: runai\nmlflow:\n\ttracking_uri: https://m\n"),
        ("profile-bom-then-junk", b"\xef\xbb\xbfplatform: [\n"),
        ("profile-sections-null-everywhere", b"platform:\norchestrator:\nmlflow:\n  tracking_uri:\n"),
    ]
    return cases


def _anchor_fanout() -> bytes:
    """A YAML alias fan-out (a small 'billion laughs'): 6 levels of 8 references, plus unknown keys."""
    lines = ["platform: onprem", "orchestrator: runai", "l0: &l0 [x, x, x, x, x, x, x, x]"]
    for level in range(1, 6):
        refs = ", ".join([f"*l{level - 1}"] * 8)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return ("\n".join(lines) + "\n").encode()


# --------------------------------------------------------------------------- kubeconfigs

JWT_HEADER = base64.urlsafe_b64encode(b'{"alg": "RS256"}').decode().rstrip("=")


def _jwt(claims: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{JWT_HEADER}.{body}.c2ln"


def base_kubeconfig(user: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": "rel-kube-token-value"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": "runai-app"}}],
        "current-context": "ctx",
    }


def _kube_variants(rng: random.Random) -> Iterator[tuple[str, dict[str, Any]]]:
    wrong = [5, "text", True, {"a": 1}, 3.25]
    for key in ("clusters", "users", "contexts"):
        for value in rng.sample(wrong, 3):
            yield f"{key}-is-{type(value).__name__}", {**base_kubeconfig(), key: value}
        yield f"{key}-entries-wrong", {**base_kubeconfig(), key: [rng.choice([1, "x", None, [1]])]}
    yield "no-clusters", {**base_kubeconfig(), "clusters": []}
    yield "cluster-without-server", {**base_kubeconfig(), "clusters": [{"name": "c", "cluster": {}}]}
    yield "cluster-body-list", {**base_kubeconfig(), "clusters": [{"name": "c", "cluster": [1, 2]}]}
    for value in ("nope", 7, ["ctx"], {"a": 1}, None):
        yield f"current-context-{value!r}", {**base_kubeconfig(), "current-context": value}
    yield "context-names-missing-user", _kube_context(user="ghost")
    yield "context-names-missing-cluster", _kube_context(cluster="ghost")
    yield "context-body-string", {**base_kubeconfig(), "contexts": [{"name": "ctx", "context": "c"}]}
    users: list[tuple[str, Any]] = [
        ("user-string", "token"),
        ("user-empty", {}),
        ("auth-provider-string", {"auth-provider": "oidc"}),
        ("auth-provider-list", {"auth-provider": ["oidc"]}),
        ("oidc-config-string", {"auth-provider": {"name": "oidc", "config": "id-token"}}),
        ("oidc-config-list", {"auth-provider": {"name": "oidc", "config": [1, 2]}}),
        ("oidc-no-id-token", {"auth-provider": {"name": "oidc", "config": {"refresh-token": "rel-refresh-123456"}}}),
        ("oidc-id-token-int", {"auth-provider": {"name": "oidc", "config": {"id-token": 12345678}}}),
        ("oidc-id-token-not-jwt", {"auth-provider": {"name": "oidc", "config": {"id-token": "not.a.jwt!"}}}),
        ("oidc-exp-string", {"auth-provider": {"name": "oidc", "config": {"id-token": _jwt({"exp": "tomorrow"})}}}),
        ("oidc-claims-list", {"auth-provider": {"name": "oidc", "config": {"id-token": _jwt([1, 2])}}}),  # type: ignore[arg-type] # a JWT body that is not an object
        ("oidc-expired", {"auth-provider": {"name": "oidc", "config": {"id-token": _jwt({"exp": 1_000_000})}}}),
        ("oidc-exp-huge", {"auth-provider": {"name": "oidc", "config": {"id-token": _jwt({"exp": 10**30})}}}),
        ("auth-provider-gcp", {"auth-provider": {"name": "gcp", "config": {}}}),
        ("exec-string", {"exec": "kubelogin"}),
        ("exec-no-command", {"exec": {"apiVersion": "client.authentication.k8s.io/v1"}}),
        ("exec-command-list", {"exec": {"command": ["a", "b"]}}),
        ("exec-missing-plugin", {"exec": {"command": "rel-no-such-plugin", "installHint": ["a", {"b": 1}]}}),
    ]
    yield from ((name, base_kubeconfig(user)) for name, user in users)


def _kube_context(cluster: str = "c", user: str = "u") -> dict[str, Any]:
    return {**base_kubeconfig(), "contexts": [{"name": "ctx", "context": {"cluster": cluster, "user": user}}]}


def kubeconfig_cases() -> list[Case]:
    rng = _rng(SEED + 1)
    valid = _dump(base_kubeconfig())
    cases = list(_common("kubeconfig", rng, valid, json_format=False))
    cases += [(f"kubeconfig-{name}", _dump(data)) for name, data in _kube_variants(rng)]
    cases.append(("kubeconfig-top-list", b"- clusters\n- users\n"))
    cases.append(("kubeconfig-huge", b"# " + b"x" * 2_000_000 + b"\n"))
    return cases


# --------------------------------------------------------------------------- AWS credentials

AWS_SECTION = "conformance"
AWS_KEY_ID = "AKIARELIABILITYTEST0"
AWS_SECRET = "rel-aws-secret-access-key-value"  # noqa: S105 - a made-up test value


def aws_credentials_cases() -> list[Case]:
    rng = _rng(SEED + 2)
    valid = f"[{AWS_SECTION}]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n".encode()
    cases: list[Case] = []
    for i in range(4):
        cases.append((f"aws-non-utf8-{i}", _non_utf8(rng, valid)))
    cases += [
        ("aws-empty", b""),
        ("aws-whitespace", b"   \n\n"),
        ("aws-directory", DIRECTORY),
        ("aws-binary-noise", bytes(rng.randrange(256) for _ in range(512))),
        ("aws-no-section-header", b"aws_access_key_id = a\naws_secret_access_key = b\n"),
        ("aws-unclosed-section", f"[{AWS_SECTION}\naws_access_key_id = a\n".encode()),
        ("aws-duplicate-section", valid + valid),
        ("aws-duplicate-key", valid + f"aws_secret_access_key = {AWS_SECRET}2\n".encode()),
        ("aws-other-section", valid.replace(AWS_SECTION.encode(), b"default")),
        ("aws-section-case", valid.replace(AWS_SECTION.encode(), AWS_SECTION.upper().encode())),
        ("aws-missing-secret", f"[{AWS_SECTION}]\naws_access_key_id = {AWS_KEY_ID}\n".encode()),
        ("aws-missing-key-id", f"[{AWS_SECTION}]\naws_secret_access_key = {AWS_SECRET}\n".encode()),
        ("aws-empty-values", f"[{AWS_SECTION}]\naws_access_key_id =\naws_secret_access_key =\n".encode()),
        ("aws-json-instead", json.dumps({"aws_access_key_id": AWS_KEY_ID}).encode()),
        ("aws-yaml-instead", f"{AWS_SECTION}:\n  aws_access_key_id: {AWS_KEY_ID}\n".encode()),
        ("aws-line-continuation-only", f"[{AWS_SECTION}]\n    continued line\n".encode()),
        ("aws-nul-bytes", b"\x00" * 64),
        ("aws-huge", b"[x]\n" + b"k = " + b"v" * 2_000_000 + b"\n"),
        ("aws-only-default", b"[DEFAULT]\naws_access_key_id = a\naws_secret_access_key = b\n"),
    ]
    for i in range(8):  # random junk lines spliced into a valid file
        lines = valid.splitlines(keepends=True)
        junk = rng.choice([b"=== \n", b"[\n", b"[]\n", b"= value without key\n", b"key without value\n"])
        at = rng.randrange(len(lines) + 1)
        cases.append((f"aws-junk-line-{i}", b"".join([*lines[:at], junk, *lines[at:]])))
    return cases


# --------------------------------------------------------------------------- docker config.json

DOCKER_HOST = "reg.example"
DOCKER_AUTH = base64.b64encode(b"rel-user:rel-docker-password").decode()


def docker_config_cases() -> list[Case]:
    rng = _rng(SEED + 3)
    valid = json.dumps({"auths": {DOCKER_HOST: {"auth": DOCKER_AUTH}}}).encode()
    cases = list(_common("docker", rng, valid, json_format=True))
    shapes: list[tuple[str, Any]] = [
        ("top-list", [{"auths": {}}]),
        ("top-string", "auths"),
        ("auths-list", {"auths": [DOCKER_HOST]}),
        ("auths-string", {"auths": DOCKER_HOST}),
        ("auths-int", {"auths": 5}),
        ("auths-entry-string", {"auths": {DOCKER_HOST: DOCKER_AUTH}}),
        ("auths-entry-list", {"auths": {DOCKER_HOST: [DOCKER_AUTH]}}),
        ("auth-not-base64", {"auths": {DOCKER_HOST: {"auth": "%%%not-base64%%%"}}}),
        ("auth-no-colon", {"auths": {DOCKER_HOST: {"auth": base64.b64encode(b"no-colon-here").decode()}}}),
        ("auth-int", {"auths": {DOCKER_HOST: {"auth": 12345}}}),
        ("auth-binary", {"auths": {DOCKER_HOST: {"auth": base64.b64encode(b"\xff\xfe:\x80").decode()}}}),
        ("auth-empty-password", {"auths": {DOCKER_HOST: {"auth": base64.b64encode(b"user:").decode()}}}),
        ("other-host-only", {"auths": {"other.example": {"auth": DOCKER_AUTH}}}),
        ("empty-auths", {"auths": {}}),
        ("empty-object", {}),
        ("cred-helpers-list", {"credHelpers": [DOCKER_HOST]}),
        ("cred-helper-int", {"credHelpers": {DOCKER_HOST: 5}}),
        ("cred-helper-missing", {"credHelpers": {DOCKER_HOST: "rel-no-such-helper"}}),
        ("creds-store-missing", {"credsStore": "rel-no-such-store"}),
        ("identity-token", {"auths": {DOCKER_HOST: {"identitytoken": "rel-identity-token-123"}}}),
        ("username-without-password", {"auths": {DOCKER_HOST: {"username": "u"}}}),
        ("username-int", {"auths": {DOCKER_HOST: {"username": 5, "password": "rel-password-123"}}}),
    ]
    cases += [(f"docker-{name}", json.dumps(data).encode()) for name, data in shapes]
    for i in range(6):  # random keys dropped or values replaced by random wrong types
        data: Any = {"auths": {DOCKER_HOST: {"auth": DOCKER_AUTH}}}
        mutate: Callable[[Any], Any] = rng.choice(
            [lambda d: {"auths": rng.choice([[], 1, "s", None, True])}, lambda d: {"auths": {DOCKER_HOST: None}}]
        )
        cases.append((f"docker-random-{i}", json.dumps(mutate(data)).encode()))
    cases.append(("docker-huge", b'{"auths": {}, "pad": "' + b"x" * 2_000_000 + b'"}'))
    return cases
