"""Malformed inputs for the reliability tests: seeded random mutations plus hand-written nasty cases.

Every case is built to be wrong (never "maybe valid"): a profile or waivers file that the loader
must refuse, or a kubeconfig, AWS credentials file or docker config.json that the component's checks
must report. A case is ``(id, content)`` where content is bytes to write, or one of
:data:`SPECIAL_FILES` to put something other than a regular file in its place (a folder, a FIFO,
``/dev/zero``, a symlink loop, a sparse file past the size cap...). The generator is deterministic
(one seed), so a failing id is reproducible.

Classes covered, for every file kind: broken syntax, not UTF-8, empty, NUL bytes, deep nesting,
binary noise, special files, too large; for YAML kinds also duplicate keys, integers too long to
convert, impossible dates. For profiles also: wrong types (booleans for every number field, found
by walking the models), missing fields, bad values, malformed URL parts of every URL field (with a
canary password that must never be echoed), secrets that cannot go into an HTTP header.
"""

from __future__ import annotations

import base64
import json
import random
import typing
from collections.abc import Callable, Iterator
from copy import deepcopy
from typing import Any

import yaml

SEED = 20261128
DIRECTORY = b"<directory>"  # create a folder where the file should be
# Not a regular file: each is made by tests/test_reliability.py's _write_case in the file's place.
FIFO = b"<fifo>"  # a named pipe no one writes: reading it would block forever
DEV_ZERO = b"<symlink:/dev/zero>"  # an endless character device: reading it would fill memory
DEV_NULL = b"<symlink:/dev/null>"  # a character device that reads as empty
SYMLINK_LOOP = b"<symlink-loop>"  # a link to itself
DANGLING = b"<symlink:/nonexistent/target>"
SPARSE_HUGE = b"<sparse>"  # a regular file one byte past the size cap (sparse: costs no disk)
SPECIAL_FILES = {
    "directory": DIRECTORY,
    "fifo": FIFO,
    "dev-zero": DEV_ZERO,
    "dev-null": DEV_NULL,
    "symlink-loop": SYMLINK_LOOP,
    "dangling-symlink": DANGLING,
    "past-size-cap": SPARSE_HUGE,
}
URL_CANARY = "rel-url-canary-Pw9"  # a password put in URLs: no error line may hold it
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
    for name, special in SPECIAL_FILES.items():
        yield f"{prefix}-{name}", special
    yield f"{prefix}-binary-noise", bytes(rng.randrange(256) for _ in range(512))
    yield f"{prefix}-utf16", valid.decode().encode("utf-16")  # another encoding, with its BOM
    yield f"{prefix}-latin1", valid.replace(b"e", b"\xe9", 1)  # one latin-1 letter


def yaml_classes(prefix: str, valid: bytes, indent: bytes = b"") -> Iterator[Case]:
    """What PyYAML accepts silently or crashes on: duplicate keys, endless integers, impossible dates.

    Extra keys are appended at ``indent`` (into the last mapping of the document).
    """
    lines = valid.splitlines(keepends=True)
    top = [line for line in lines if line[:1].isalpha()]
    if top:
        yield f"{prefix}-duplicate-top-key", valid + top[0]  # the first key again, last line
    nested = next((line for line in lines if line.startswith(b"  ") and b":" in line), None)
    if nested is not None:  # the same key twice in one nested mapping
        at = lines.index(nested)
        yield f"{prefix}-duplicate-nested-key", b"".join([*lines[: at + 1], nested, *lines[at + 1 :]])
    yield f"{prefix}-duplicate-in-flow", valid + indent + b"extra_flow: {a: 1, a: 2}\n"
    for digits in (5001, 101):
        yield f"{prefix}-integer-{digits}-digits", valid + indent + b"extra_int: " + b"9" * digits + b"\n"
    yield f"{prefix}-integer-hex-huge", valid + indent + b"extra_int: 0x" + b"f" * 4000 + b"\n"
    for date in (b"2030-02-31", b"2030-13-01", b"2030-00-10", b"0000-01-01"):
        yield f"{prefix}-date-{date.decode()}", valid + indent + b"extra_date: " + date + b"\n"


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
    cases += list(yaml_classes("profile", valid))
    for path in number_fields():  # booleans are not numbers, in every number field the models have
        for flag in (True, False):
            cases.append((f"profile-bool-{'.'.join(path)}-{flag}", _profile_text(_set(BASE_PROFILE, path, flag))))
    for path in URL_FIELDS:
        for name, url in BAD_URLS.items():
            cases.append((f"profile-url-{'.'.join(path)}-{name}", _profile_text(_set(BASE_PROFILE, path, url))))
    for name in HEADER_UNSAFE:  # through env:
        env = {**BASE_PROFILE["mlflow"], "password": f"env:REL_UNSAFE_{name.upper().replace('-', '_')}"}
        cases.append((f"profile-unsafe-secret-{name}", _profile_text(_set(BASE_PROFILE, ("mlflow",), env))))
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


# Every field holding a URL, and URLs wrong in one part each (the canary password must never be echoed).
URL_FIELDS = [
    ("mlflow", "tracking_uri"),
    ("registry", "url"),
    ("object_storage", "endpoint_url"),
    ("gitlab", "url"),
    ("gcp", "resource_manager_url"),
]
BAD_URLS = {
    "userinfo-password": f"https://user:{URL_CANARY}@host.example",
    "userinfo-password-only": f"https://:{URL_CANARY}@host.example",
    "userinfo-password-with-port": f"https://user:{URL_CANARY}@host.example:8443/path",
    "userinfo-user-only": "https://user@host.example",
    "password-as-port": f"https://host.example:{URL_CANARY}",
    "port-70000": "https://host.example:70000",
    "port-0": "https://host.example:0",
    "port-negative": "https://host.example:-1",
    "port-huge": "https://host.example:" + "9" * 30,
    "port-empty": "https://host.example:",
    "space-in-host": "https://host .example",
    "tab-in-host": "https://host\t.example",
    "newline-in-url": "https://host.example/\nX-Injected: 1",
    "control-char": "https://host.example/\x07",
    "unclosed-ipv6": "https://[::1",
    "unclosed-ipv6-port": "https://[::1:8080/",
    "bad-ipv6": "https://[zz::1]/",
    "closing-bracket-only": "https://::1]/",
    "no-host": "https:///path",
    "no-scheme": "host.example",
    "scheme-only": "https://",
    "ftp": "ftp://host.example",
    "single-slash": "https:/host.example",
    "bad-host-chars": "https://ho$t!.example",
    "unicode-host-space": "https://host\u3000.example",
    "token-in-query": f"https://host.example/api?private_token={URL_CANARY}",
    "signature-in-query": f"https://host.example/o?X-Amz-Signature={URL_CANARY}&X-Amz-Credential=a",
    "key-in-query": f"https://host.example/?key={URL_CANARY}",
}
# Secrets that cannot go into an HTTP header (set in PROFILE_ENV under REL_UNSAFE_<NAME>).
HEADER_UNSAFE = {
    "newline": "rel-token\nsecond-line",
    "carriage-return": "rel-token\rX-Injected: 1",
    "tab": "rel-token\tvalue",
    "nul": "rel-token\x00value",
    "escape": "rel-token\x1b[31mred",
    "delete": "rel-token\x7fvalue",
    "latin1-letter": "rel-t\u00f6ken-value",
    "euro": "rel-token-\u20ac-value",
    "emoji": "rel-token-\U0001f511-value",
    "line-separator": "rel-token\u2028value",
    "c1-control": "rel-token\x85value",
}
PROFILE_ENV.update({f"REL_UNSAFE_{name.upper().replace('-', '_')}": value for name, value in HEADER_UNSAFE.items()})


def number_fields() -> list[tuple[str, ...]]:
    """Every number field of the profile models under BASE_PROFILE's sections, found by walking them."""
    from pydantic import BaseModel

    from conformance.profile import Profile, _is_number_type

    found: list[tuple[str, ...]] = []

    def walk(model: type[BaseModel], path: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if _is_number_type(annotation):
                found.append((*path, name))
            elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, (*path, name))
            else:
                inner = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
                if inner:  # an optional section
                    walk(inner[0], (*path, name))

    walk(Profile, ())
    return [path for path in found if path[0] in BASE_PROFILE]


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
AWS_SESSION_TOKEN = "rel-aws-session-token-value-0123456789"  # noqa: S105 - a made-up test value
PAD_PAST_CAP = b"# " + b"x" * 1_000_001 + b"\n"  # comments: still a valid file, just too large


def aws_credentials_cases() -> list[Case]:
    rng = _rng(SEED + 2)
    valid = f"[{AWS_SECTION}]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n".encode()
    cases: list[Case] = []
    for i in range(4):
        cases.append((f"aws-non-utf8-{i}", _non_utf8(rng, valid)))
    cases += [
        ("aws-empty", b""),
        ("aws-whitespace", b"   \n\n"),
        *((f"aws-{name}", special) for name, special in SPECIAL_FILES.items()),
        ("aws-utf16", valid.decode().encode("utf-16")),
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
        # A valid file with a session token, padded past the cap: too large for the secret index to scan,
        # so the check must refuse it rather than let botocore send the token (issue 10, leak 2).
        ("aws-valid-but-past-cap", valid + f"aws_session_token = {AWS_SESSION_TOKEN}\n".encode() + PAD_PAST_CAP),
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
    cases.append(("docker-huge-integer", b'{"auths": {}, "n": ' + b"9" * 5001 + b"}"))
    return cases


# --------------------------------------------------------------------------- waivers

VALID_WAIVERS = (
    b"- check: REG-004\n  justification: Harbor forbids deletion here\n"
    b"  owner: platform-team <ops@example.org>\n  expires: 2030-12-31\n"
)


def waivers_cases() -> list[Case]:
    rng = _rng(SEED + 4)
    # An empty waivers file is valid: no waivers.
    cases = [c for c in _common("waivers", rng, VALID_WAIVERS, json_format=False) if c[1].strip()]
    cases += list(yaml_classes("waivers", VALID_WAIVERS, indent=b"  "))
    for date in (b"2030-02-31", b"2030-02-30", b"2029-02-29", b"2030-04-31", b"not-a-date", b"31/12/2030"):
        cases.append((f"waivers-expires-{date.decode().replace('/', '-')}", VALID_WAIVERS.replace(b"2030-12-31", date)))
    cases += [
        ("waivers-top-mapping", b"check: REG-004\n"),
        ("waivers-entry-string", b"- REG-004\n"),
        ("waivers-bad-check-id", VALID_WAIVERS.replace(b"REG-004", b"reg_4")),
        ("waivers-short-justification", VALID_WAIVERS.replace(b"Harbor forbids deletion here", b"ok")),
        ("waivers-unknown-key", VALID_WAIVERS + b"  colour: blue\n"),
        ("waivers-missing-owner", VALID_WAIVERS.replace(b"  owner: platform-team <ops@example.org>\n", b"")),
        ("waivers-expires-bool", VALID_WAIVERS.replace(b"2030-12-31", b"true")),
        ("waivers-duplicate-entry-key", VALID_WAIVERS + b"  check: REG-005\n"),
    ]
    return cases
