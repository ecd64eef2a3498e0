"""Secret references resolve to masked values; the index finds every encoding a client sends."""

from __future__ import annotations

import base64
import copy
import html
import json
import logging
import os
import pickle
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from conformance import credentials
from conformance.secrets import (
    MASK,
    MAX_SECRET_BYTES,
    Secret,
    SecretIndex,
    SecretRefError,
    encodings,
    header_problem,
    resolve_ref,
)

CANARY = "canary-Zx9/q+w=&pw"


def test_env_reference_resolves_and_masks() -> None:
    secret = resolve_ref("env:PW", base_dir=Path(), environ={"PW": CANARY})
    assert secret.reveal() == CANARY
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret}", f"{[secret]}"):
        assert CANARY not in text
        assert "env:PW" in text


def test_file_reference_is_relative_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "pw.txt").write_text(CANARY + "\n")
    assert resolve_ref("file:pw.txt", base_dir=tmp_path, environ={}).reveal() == CANARY


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("hunter2-literal", "must be a reference 'env:NAME' or 'file:PATH', not a literal value"),
        ("env:NOPE", "environment variable NOPE is not set"),
        ("env:EMPTY", "environment variable EMPTY is empty"),
        ("file:missing.txt", "does not exist"),
        ("vault:x", "must be a reference"),
    ],
)
def test_bad_references_name_the_problem_never_the_value(tmp_path: Path, ref: str, message: str) -> None:
    with pytest.raises(SecretRefError) as info:
        resolve_ref(ref, base_dir=tmp_path, environ={"EMPTY": ""})
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


def test_secret_refuses_to_be_pickled_or_copied_across_processes() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(CANARY, "env:X"))
    with pytest.raises(TypeError):
        copy.copy(Secret(CANARY, "env:X"))


def test_secret_in_a_log_record_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").debug("sending %s", Secret(CANARY, "env:X"))
    assert CANARY not in caplog.text


def test_index_finds_value_and_wire_encodings() -> None:
    index = SecretIndex()
    index.add("mlflow.password", Secret(CANARY, "env:X"), username="alice")
    basic = base64.b64encode(f"alice:{CANARY}".encode()).decode()
    for text in (CANARY, urllib.parse.quote(CANARY, safe=""), basic, f"Authorization: Basic {basic}"):
        assert index.find(f"before {text} after") == ["mlflow.password"]
    assert index.find("nothing here") == []


def test_redact_replaces_every_encoding() -> None:
    index = SecretIndex()
    index.add("s3.secret", Secret(CANARY, "env:X"), username="bob")
    basic = base64.b64encode(f"bob:{CANARY}".encode()).decode()
    text = index.redact(f"a {CANARY} b {basic} c")
    assert CANARY not in text
    assert basic not in text
    assert text.count(MASK) == 2


# --------------------------------------------------------------------------- every printable form

# Secrets with what makes their printed forms differ from the value: quotes, backslashes, '&<>',
# non-ASCII letters, a newline (a credential file can hold any of these; the profile refuses some).
AWKWARD = [
    'tok"en-with-double-quote',
    "tok'en-with-single-quote",
    "both'and\"quotes-1",
    "back\\slash\\token",
    "amp&lt<gt>token",
    "t\u00fcken-latin1-letter",
    "token-\u20ac-euro-\U0001f511",
    "line-one\nline-two",
    "tab\there-token",
    "percent%20plus+token",
]


def _forms(value: str) -> dict[str, str]:
    """Each way a report, a log, a traceback or ``-l`` can print ``value``, by name."""
    header = {"PRIVATE-TOKEN": value, "User-Agent": "python-gitlab"}
    return {
        "raw": value,
        "repr": repr(value),
        "ascii": ascii(value),
        "bytes repr": repr(value.encode()),
        "unicode-escape": value.encode("unicode_escape").decode(),
        "json": json.dumps(value),
        "json non-ascii": json.dumps(value, ensure_ascii=False),
        "header dict repr (-l)": repr(header),
        "header dict ascii": ascii(header),
        "exception in JSON": json.dumps({"message": f"Invalid header value {header!r}"}),
        "JUnit XML attribute": html.escape(f"InvalidHeader: {header!r}"),
        "HTML text": html.escape(repr(header), quote=False),
        "URL-encoded": urllib.parse.quote(value, safe=""),
        "form-encoded": urllib.parse.quote_plus(value),
        "base64": base64.b64encode(value.encode()).decode(),
        "repr of a repr": repr(repr(value)),
        "json of a repr": json.dumps(repr(value)),
    }


@pytest.mark.parametrize("value", AWKWARD, ids=[ascii(v) for v in AWKWARD])
def test_index_finds_and_redacts_every_printed_form(value: str) -> None:
    index = SecretIndex()
    index.add("gitlab.token", Secret(value, "env:X"))
    for name, form in _forms(value).items():
        text = f"E   before {form} after"
        assert index.find(text) == ["gitlab.token"], name
        redacted = index.redact(text)
        assert index.find(redacted) == [], (name, redacted)
        assert MASK in redacted, name


def test_encodings_of_a_plain_secret_are_few() -> None:
    # A token of letters and digits prints the same in every form: one needle, plus base64.
    assert encodings("glpat-abcDEF123456") == {"glpat-abcDEF123456", base64.b64encode(b"glpat-abcDEF123456").decode()}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("line-one\nline-two", "holds a line break (character 9)"),
        ("carriage\rreturn", "holds a carriage return"),
        ("tab\tinside", "holds a tab"),
        ("nul\x00inside", "holds a control character"),
        ("esc\x1b[31m", "holds a control character"),
        ("del\x7finside", "holds a control character"),
        ("t\u00fcken-value", "holds a non-ASCII character (character 2)"),
        ("euro-\u20ac-value", "holds a non-ASCII character"),
        ("c1\x85control", "holds a non-ASCII character"),
    ],
)
def test_secrets_that_cannot_go_into_a_header_are_refused_without_the_value(
    tmp_path: Path, value: str, problem: str
) -> None:
    (tmp_path / "token.txt").write_text(f"{value}\n")  # file: strips the final newline only
    for ref in ("env:TOKEN", "file:token.txt"):
        with pytest.raises(SecretRefError) as info:
            resolve_ref(ref, base_dir=tmp_path, environ={"TOKEN": value})
        message = str(info.value)
        assert message.startswith(f"the value of {ref} {problem}"), message
        assert "cannot be sent in an HTTP header" in message
        assert not any(form in message for form in encodings(value) if len(form) >= 4), message


def test_header_safe_secrets_pass() -> None:
    for value in ('tok"en-quote', "sp ace-token", "~!@#$%^&*()_+{}|:<>?-=[]\\;',./`"):
        assert header_problem(value) is None, value


@pytest.mark.parametrize(
    "special",
    ["fifo", "dev-zero", "directory", "symlink-loop", "past-cap"],
)
def test_file_reference_to_a_special_file_is_refused_at_once(tmp_path: Path, special: str) -> None:
    target = tmp_path / "secret"
    if special == "fifo":
        os.mkfifo(target)
    elif special == "dev-zero":
        target.symlink_to("/dev/zero")
    elif special == "directory":
        target.mkdir()
    elif special == "symlink-loop":
        target.symlink_to("secret")
    else:
        target.write_text("x" * (MAX_SECRET_BYTES + 1))
    started = time.monotonic()
    with pytest.raises(SecretRefError) as info:
        resolve_ref("file:secret", base_dir=tmp_path, environ={})
    assert time.monotonic() - started < 2
    assert str(info.value).startswith(f"file {target} ")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- credential files


def test_kubeconfig_exec_plugin_secrets_are_indexed(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    plugin = {
        "command": "kubelogin",
        "args": ["get-token", "--client-secret=rel-exec-arg-secret-1", "--password", "rel-exec-arg-secret-2", "-v"],
        "env": [
            {"name": "OIDC_CLIENT_SECRET", "value": "rel-exec-env-secret-3"},
            {"name": "API_TOKEN", "value": "rel-exec-env-secret-4"},
            {"name": "OIDC_ISSUER", "value": "https://issuer.example"},
        ],
    }
    kubeconfig.write_text(yaml.safe_dump({"users": [{"name": "u", "user": {"exec": plugin}}]}))
    found = {secret.reveal(): where for where, secret, _user in credentials.kubeconfig(kubeconfig)}
    assert set(found) == {f"rel-exec-{kind}-secret-{i}" for kind, i in (("arg", 1), ("arg", 2), ("env", 3), ("env", 4))}
    assert found["rel-exec-env-secret-3"].endswith("users[u] exec env OIDC_CLIENT_SECRET")
    assert all("rel-exec" not in where for where in found.values())


def test_a_long_token_shortened_the_way_pytest_prints_locals_is_still_found() -> None:
    from _pytest._io.saferepr import saferepr

    token = "ya29." + "Ab3dEf9hIj" * 40  # a 405-character access token
    index = SecretIndex()
    index.add("GCP access token", Secret(token, "gcloud"))
    shown = saferepr({"Authorization": f"Bearer {token}", "other": 1})  # as `-l` prints a local
    assert token not in shown  # shortened: 'head...tail'
    assert index.find(shown) == ["GCP access token"]
    assert token[-40:] not in index.redact(shown)  # the tail (a signature, in a JWT) is masked


def test_shared_heads_of_long_secrets_are_not_needles() -> None:
    """The start of base64('user:password') encodes the user name; a JWT's start is its common header."""
    user = "conformance-robot-account"
    index = SecretIndex()
    for name, value in (
        ("docker auth", base64.b64encode(f"{user}:Real-password-1234567890".encode()).decode()),
        ("id-token", "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"),
    ):
        index.add(name, Secret(value, name))
    other_pair = base64.b64encode(f"{user}:Wrong-password-0987654321".encode()).decode()
    other_jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2IifQ.b3RoZXItc2lnbmF0dXJlLW90aGVy"
    assert index.find(f"{other_pair} {other_jwt}") == []


@pytest.mark.parametrize("value", [" leading-space-token", "trailing-space-token "])
def test_a_secret_with_spaces_at_its_ends_is_refused(value: str) -> None:
    assert header_problem(value) == "starts or ends with a space; it cannot be sent in an HTTP header as it is"


def test_the_index_is_complete_once_the_profile_is_open(tmp_path: Path) -> None:
    from conformance.session import open_profile

    profile = tmp_path / "p.yaml"
    profile.write_text("platform: onprem\norchestrator: runai\n")
    index = open_profile(profile, {}).secrets
    with pytest.raises(RuntimeError, match="complete once the profile is open"):
        index.add("late", Secret("late-token-1234", "late"))
    assert not index.find("late-token-1234")


def test_no_fixture_or_check_writes_to_the_secret_index() -> None:
    """Checks run in xdist workers: what they added, the controller's leak scan would never know."""
    import ast

    root = Path(__file__).resolve().parent.parent / "conformance"
    modules = [root / "fixtures.py", *sorted((root / "components").glob("*.py"))]
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = ast.unparse(node.func.value)
                assert not (node.func.attr == "add" and "secret" in target.lower()), f"{path.name}: {ast.unparse(node)}"


def test_the_index_reads_the_credential_files_the_clients_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One answer per component (conformance/locate.py): what a client may send, the leak scan knows."""
    from conformance.clients import gcp, object_storage
    from conformance.session import open_profile

    (tmp_path / ".aws").mkdir()
    home_file = "[default]\naws_access_key_id = AK\naws_secret_access_key = home-aws-1\n"
    (tmp_path / ".aws" / "credentials").write_text(home_file)
    (tmp_path / "other").write_text("[x]\naws_access_key_id = AK\naws_secret_access_key = variable-aws-2\n")
    gcloud = tmp_path / "gcloud"
    gcloud.mkdir()
    (gcloud / "application_default_credentials.json").write_text(json.dumps({"refresh_token": "adc-refresh-3"}))
    environ = {"HOME": str(tmp_path), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "other")}
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "platform: onprem\norchestrator: runai\n"
        "object_storage: {kind: s3, bucket: b1, endpoint_url: 'https://s3.example'}\n"
        f"gcp: {{project: my-project, config_dir: '{gcloud}'}}\n"
    )
    loaded = open_profile(profile, environ)
    for value in ("home-aws-1", "variable-aws-2", "adc-refresh-3"):
        assert loaded.secrets.find(value), value
    monkeypatch.setenv("HOME", str(tmp_path))
    assert loaded.profile.object_storage is not None
    assert loaded.profile.gcp is not None
    assert object_storage.aws_facts(loaded.profile.object_storage).path == tmp_path / ".aws" / "credentials"
    client = gcp.GcpClient(loaded.profile.gcp, loaded.profile, environ)
    assert client.adc_file == gcloud / "application_default_credentials.json"
