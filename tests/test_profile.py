"""Profile loading: every problem is one line, ``file: field: what is wrong``."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.profile import ProfileError, resolve_profile_path
from conformance.session import open_profile
from tests.conftest import REPO, write_profile

MINIMAL = "platform: onprem\norchestrator: runai\n"


def problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ProfileError) as info:
        open_profile(path, environ or {})
    return info.value.lines


def test_minimal_profile_gets_defaults(tmp_path: Path) -> None:
    loaded = open_profile(write_profile(tmp_path, MINIMAL), {})
    assert loaded.name == "profile"
    assert loaded.profile.timeouts.connect == 5.0
    assert loaded.profile.tls.insecure is False
    assert loaded.profile.endpoints() == []


def test_every_problem_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        """
platform: onprem
orchestrator: kubeflow
colour: blue
timeouts: {connect: fast}
mlflow: {tracking_uri: "https://mlflow.example", username: me, password: env:MLFLOW_PW}
""",
    )
    lines = problems(path)
    where = str(path)
    assert all(line.startswith(f"{where}: ") for line in lines), lines
    text = "\n".join(lines)
    assert f"{where}: orchestrator: input should be 'runai', 'noorch' or 'polyaxon'" in text
    assert f"{where}: colour: unknown key" in text
    assert f"{where}: timeouts.connect: input should be a valid number" in text
    assert f"{where}: mlflow.password: environment variable MLFLOW_PW is not set" in text
    assert len(lines) == 4


def test_literal_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write_profile(tmp_path, MINIMAL + "mlflow: {tracking_uri: 'https://m.example', password: 'Sup3r-s3cret'}\n")
    (line,) = problems(path)
    assert "mlflow.password: must be a reference 'env:NAME' or 'file:PATH', not a literal value" in line
    assert "Sup3r" not in line


def test_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    path = write_profile(tmp_path, MINIMAL + "mlflow: {tracking_uri: 'https://m.example', password: file:nope.txt}\n")
    (line,) = problems(path)
    assert f"mlflow.password: file {tmp_path / 'nope.txt'} does not exist" in line


def test_short_secret_is_refused_because_it_cannot_be_scanned_for(tmp_path: Path) -> None:
    path = write_profile(tmp_path, MINIMAL + "mlflow: {tracking_uri: 'https://m.example', password: env:PW}\n")
    (line,) = problems(path, {"PW": "abc"})
    assert "shorter than 6 characters" in line


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "platform: onprem\norchestrator: [runai\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}: line ")
    assert "YAML syntax error" in line


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "file is empty"), ("- a\n- b\n", "top level must be a mapping of sections, not list")],
)
def test_wrong_shape(tmp_path: Path, text: str, message: str) -> None:
    (line,) = problems(write_profile(tmp_path, text))
    assert line.endswith(message)


def test_missing_required_field(tmp_path: Path) -> None:
    (line,) = problems(write_profile(tmp_path, "platform: gcp\n"))
    assert line.endswith("orchestrator: required field is missing")


def test_unset_interpolation_variable_is_named(tmp_path: Path) -> None:
    path = write_profile(tmp_path, MINIMAL + "tls: {ca_bundle: '${NO_SUCH_VAR}'}\n")
    (line,) = problems(path)
    assert "tls.ca_bundle: environment variable NO_SUCH_VAR is not set (used as ${NO_SUCH_VAR})" in line


def test_missing_ca_bundle_is_named(tmp_path: Path) -> None:
    (line,) = problems(write_profile(tmp_path, MINIMAL + "tls: {ca_bundle: /nonexistent/ca.pem}\n"))
    assert line.endswith("tls.ca_bundle: file /nonexistent/ca.pem does not exist")


def test_endpoint_url_with_credentials_is_refused(tmp_path: Path) -> None:
    path = write_profile(tmp_path, MINIMAL + "network: {endpoints: [{name: git, url: 'https://me:pw@git.example/'}]}\n")
    (line,) = problems(path)
    assert "network.endpoints.0.url: value error" not in line
    assert "must not hold credentials" in line
    assert "pw@" not in line


def test_extends_merges_and_child_wins(tmp_path: Path) -> None:
    write_profile(tmp_path, MINIMAL + "timeouts: {connect: 3, request: 7}\n", "base.yaml")
    child = write_profile(tmp_path, "extends: base\nplatform: gcp\ntimeouts: {connect: 1}\n", "child.yaml")
    profile = open_profile(child, {}).profile
    assert (profile.platform, profile.orchestrator) == ("gcp", "runai")
    assert (profile.timeouts.connect, profile.timeouts.request) == (1, 7)


def test_extends_cycle_is_an_error(tmp_path: Path) -> None:
    write_profile(tmp_path, "extends: b\n" + MINIMAL, "a.yaml")
    b = write_profile(tmp_path, "extends: a\n", "b.yaml")
    (line,) = problems(b)
    assert "extends: cycle through" in line


def test_extends_unknown_profile(tmp_path: Path) -> None:
    (line,) = problems(write_profile(tmp_path, "extends: nowhere\n"))
    assert "extends: profile 'nowhere' not found" in line


def test_duplicate_endpoint_names(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        MINIMAL + "network: {endpoints: [{name: a, url: 'https://a.example'}, {name: a, url: 'https://b.example'}]}\n",
    )
    (line,) = problems(path)
    assert "endpoint name 'a' is used twice" in line


def test_name_resolves_in_profiles_dir_and_lists_available(tmp_path: Path) -> None:
    write_profile(tmp_path, MINIMAL, "alpha.yaml")
    assert resolve_profile_path("alpha", tmp_path) == tmp_path / "alpha.yaml"
    with pytest.raises(ProfileError) as info:
        resolve_profile_path("beta", tmp_path)
    assert "profile 'beta' not found" in str(info.value)
    assert "available: alpha" in str(info.value)


@pytest.mark.parametrize("name", ["onprem-runai", "gcp-runai"])
def test_shipped_templates_load_without_any_credential_set(name: str) -> None:
    loaded = open_profile(REPO / "profiles" / f"{name}.yaml", {})
    hosts = {e.host for e in loaded.profile.endpoints()}
    assert "gitlab.aisingapore.net" in hosts
    ssh = [e for e in loaded.profile.endpoints() if e.scheme == "ssh"]
    assert [e.port for e in ssh] == [2222]


def test_ambient_guide_credentials_join_the_index(tmp_path: Path) -> None:
    environ = {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "ambient-pw-123"}
    loaded = open_profile(write_profile(tmp_path, MINIMAL), environ)
    assert loaded.secrets.find("x ambient-pw-123 y") == ["environment variable MLFLOW_TRACKING_PASSWORD"]


def test_secrets_in_the_credential_files_the_profile_names_join_the_index(tmp_path: Path) -> None:
    """The guide keeps most credentials in files; the report must scrub and scan for those too."""
    import base64
    import json

    docker = tmp_path / "config.json"
    docker.write_text(json.dumps({"auths": {"reg.example": {"auth": base64.b64encode(b"dev:Docker-pw-1").decode()}}}))
    aws = tmp_path / "credentials"
    aws.write_text("[conformance]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = S3-secret-key-2\n")
    kube = tmp_path / "kubeconfig"
    kube.write_text(
        "users:\n- name: u\n  user:\n    auth-provider:\n      name: oidc\n"
        "      config: {id-token: Id-token-333, refresh-token: Refresh-444}\n"
    )
    path = write_profile(
        tmp_path,
        MINIMAL
        + f"registry: {{url: 'https://reg.example', project_path: reg.example/p, docker_config: {docker}}}\n"
        + f"object_storage: {{kind: s3, endpoint_url: 'https://s3.example', bucket: b-1, credentials_file: {aws},"
        + " aws_profile: conformance}\n"
        + f"kubernetes: {{kubeconfig: {kube}, namespace: runai-x}}\n",
    )
    index = open_profile(path, {}).secrets
    for value in ("Docker-pw-1", "S3-secret-key-2", "Id-token-333", "Refresh-444"):
        assert index.find(f"..{value}.."), value
    assert index.find(base64.b64encode(b"dev:Docker-pw-1").decode())
    assert index.find("S3-secret-key-2") == [f"{aws} [conformance] aws_secret_access_key"]


def test_unreadable_credential_files_are_left_to_the_checks(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    path = write_profile(
        tmp_path, MINIMAL + f"registry: {{url: 'https://r.example', project_path: r.example/p, docker_config: {bad}}}\n"
    )
    assert not open_profile(path, {}).secrets  # no error at load: REG-001 reports the broken file


def test_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    path = write_profile(tmp_path, MINIMAL + "\n".join(levels) + "\n")
    (line,) = problems(path)
    assert "expands to 54481017 values through YAML aliases (at most 100000)" in line


def test_ordinary_yaml_anchors_still_work(tmp_path: Path) -> None:
    text = MINIMAL + "timeouts: &t {connect: 2, request: 3}\nnetwork: {endpoints: []}\n"
    assert open_profile(write_profile(tmp_path, text), {}).profile.timeouts.connect == 2


# --------------------------------------------------------------------------- issue 10: hardening


@pytest.mark.parametrize("field", ["mlflow: {tracking_uri: URL}", "registry: {url: URL, project_path: r.example/p}"])
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://u:Pw-canary-77@host.example", "must not hold credentials (user:password@)"),
        ("https://host.example:70000", "has an invalid port (a number from 1 to 65535)"),
        ("https://host.example:Pw-canary-77", "has an invalid port"),
        ("'https://ho st.example'", "holds a space or a control character"),
        ("'https://[::1'", "has an unclosed '[' or ']' around its host"),
        ("ftp://host.example", "must start with https:// or http://"),
    ],
)
def test_component_url_is_checked_with_the_other_fields_never_quoted(
    tmp_path: Path, field: str, url: str, message: str
) -> None:
    path = write_profile(tmp_path, MINIMAL + "timeouts: {connect: fast}\n" + field.replace("URL", url) + "\n")
    lines = problems(path)  # one collection: the URL's line comes with the other field's
    section = field.split(":", maxsplit=1)[0]
    key = "tracking_uri" if section == "mlflow" else "url"
    assert any(line.startswith(f"{path}: {section}.{key}: {message}") for line in lines), lines
    assert any(line.startswith(f"{path}: timeouts.connect: input should be a valid number") for line in lines)
    assert not any("canary" in line for line in lines), lines


def test_ipv6_and_ports_that_are_fine_still_load(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "mlflow: {tracking_uri: 'http://[::1]:5000'}\n"
        + "registry: {url: 'https://r.example:8443/', project_path: r.example/p}\n"
    )
    profile = open_profile(write_profile(tmp_path, text), {}).profile
    assert [e.port for e in profile.endpoints()] == [5000, 8443]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL + "platform: gcp\n", "line 3, column 1: YAML error: duplicate key 'platform' (first at line 1)"),
        (MINIMAL + "timeouts: {connect: 1, connect: 2}\n", "duplicate key 'connect'"),
        (MINIMAL + "timeouts: {connect: " + "9" * 5001 + "}\n", "YAML error: an integer of 5001 digits (at most 100)"),
        (MINIMAL + "description: 2030-02-31\n", "'2030-02-31' is not a valid date (day is out of range for month)"),
    ],
    ids=["duplicate-top", "duplicate-nested", "huge-integer", "bad-date"],
)
def test_strict_yaml(tmp_path: Path, text: str, message: str) -> None:
    (line,) = problems(write_profile(tmp_path, text))
    assert message in line


NUMBER_FIELDS = ["timeouts: {connect: V}", "gitlab: {url: 'https://g.example', project: p, ssh_port: V}"]


@pytest.mark.parametrize("value", ["true", "false", "yes"])
@pytest.mark.parametrize("field", NUMBER_FIELDS)
def test_booleans_are_not_numbers(tmp_path: Path, field: str, value: str) -> None:
    (line,) = problems(write_profile(tmp_path, MINIMAL + field.replace("V", value) + "\n"))
    assert line.endswith("must be a number, not true or false") or "valid integer" in line, line


def test_extends_through_a_symlink_loop_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    (line,) = problems(write_profile(tmp_path, "extends: ./a.yaml\n" + MINIMAL))
    assert line.endswith(f"extends: {tmp_path / 'a.yaml'} is a symbolic link loop")


def test_password_equal_to_the_user_name_is_refused(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path, MINIMAL + "mlflow: {tracking_uri: 'https://m.example', username: alice-dev, password: env:PW}\n"
    )
    (line,) = problems(path, {"PW": "alice-dev"})
    assert line.endswith("mlflow.password: the value of env:PW equals the user name; use a real password")


@pytest.mark.parametrize("word", ["password", "connection", "timeouts", "conformance"])
def test_secret_that_is_a_word_of_the_suites_messages_is_refused(tmp_path: Path, word: str) -> None:
    path = write_profile(tmp_path, MINIMAL + "mlflow: {tracking_uri: 'https://m.example', password: env:PW}\n")
    (line,) = problems(path, {"PW": word})
    assert "is a word of the suite's own messages" in line
    assert word not in line.split("mlflow.password:", 1)[1].replace("password)", "")


def test_ambient_token_that_cannot_go_into_a_header_is_refused_before_any_request(tmp_path: Path) -> None:
    (line,) = problems(write_profile(tmp_path, MINIMAL), {"GITLAB_TOKEN": "glpat-abc\ndef-123"})
    assert line.endswith(
        "environment variable GITLAB_TOKEN holds a line break (character 10); it cannot be sent in an HTTP header;"
        " fix or unset it"
    )
    assert "def-123" not in line


def test_secret_that_appears_in_another_value_of_the_profile_is_refused(tmp_path: Path) -> None:
    section = "mlflow: {tracking_uri: 'https://m.example/team-pw-77889', username: alice, password: env:PW}\n"
    (line,) = problems(write_profile(tmp_path, MINIMAL + section), {"PW": "team-pw-77889"})
    assert line.endswith(
        "mlflow.password: the value of env:PW appears in another value of the profile (a user name, a URL, a path),"
        " which the report shows; use a real password"
    )


def test_project_path_error_never_quotes_the_value(tmp_path: Path) -> None:
    section = "registry: {url: 'https://r.example', project_path: 'u:Canary-pw-1@r.example/a/b'}\n"
    (line,) = problems(write_profile(tmp_path, MINIMAL + section))
    assert "registry.project_path: is not host[:port]/segment" in line
    assert "Canary" not in line


def test_a_line_break_in_a_file_name_keeps_the_error_on_one_line(tmp_path: Path) -> None:
    path = write_profile(tmp_path, MINIMAL + "platform: gcp\n", "odd\nname.yaml")
    (line,) = problems(path)
    assert "\n" not in line
    assert line.startswith(f"{tmp_path}/odd\\nname.yaml: line 3")
    secret_dir = tmp_path / "a\rb"
    secret_dir.mkdir()
    section = "mlflow: {tracking_uri: 'https://m.example', password: 'file:${SECRET_PATH}'}\n"
    (line,) = problems(write_profile(tmp_path, MINIMAL + section), {"SECRET_PATH": f"{secret_dir}/none"})
    assert line.endswith(f"file {tmp_path}/a\\rb/none does not exist")


def conformance_imports(path: Path) -> set[str]:
    """The ``conformance`` modules ``path`` imports, wherever in the file (also under TYPE_CHECKING)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "conformance":
            module = str(node.module)
            found |= {f"{module}.{a.name}" if module == "conformance" else module for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "conformance"}
    return found


def test_profile_module_is_schema_and_yaml_only() -> None:
    """profile.py sits below everything that opens a profile: it imports only modules below it."""
    below = {"conformance.files", "conformance.secrets", "conformance.components"}
    assert conformance_imports(REPO / "conformance" / "profile.py") <= below
    for module in below:  # and those import nothing above them either
        path = REPO / f"{module.replace('.', '/')}.py"
        assert conformance_imports(path if path.exists() else path.with_suffix("") / "__init__.py") <= below


def test_a_profile_is_read_once_and_its_text_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance import profile as profiles

    reads: list[Path] = []
    real = profiles.read_yaml

    def read_yaml(path: Path, what: str = "profile") -> object:
        reads.append(path)
        return real(path, what)

    monkeypatch.setattr(profiles, "read_yaml", read_yaml)
    loaded = open_profile(write_profile(tmp_path, MINIMAL + "sandbox: false\n"), {})
    assert reads == [tmp_path / "profile.yaml"]
    assert loaded.raw == {"platform": "onprem", "orchestrator": "runai", "sandbox": False}
