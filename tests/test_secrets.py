"""Secret references resolve to masked values; the index finds every encoding a client sends."""

from __future__ import annotations

import base64
import copy
import logging
import pickle
import urllib.parse
from pathlib import Path

import pytest

from conformance.secrets import MASK, Secret, SecretIndex, SecretRefError, resolve_ref

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
