"""GIT: can this workspace use the project's GitLab: API, git over HTTPS and SSH (port 2222), and CI?

The API checks read only (``GET /user``, ``/personal_access_tokens/self``, the project, its CI/CD
variables, schedules and pipelines). git is probed with ``git ls-remote``, which changes nothing.
SSH checks read the user's own ``~/.ssh/config`` through ``ssh -G``, so they check what
``git clone git@gitlab.aisingapore.net:group/project.git`` would do (AISG's GitLab: SSH on port 2222, not 22).
python-gitlab loads only when these checks run (the ``gitlab`` fixture imports the client).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.checks import Blocked, CannotEvaluate, check, expect, expires_in_time
from conformance.fixtures import Reachability
from conformance.profile import GitLab, Profile

if TYPE_CHECKING:  # the client imports python-gitlab and requests; the fixtures load it at run time
    from conformance.clients.gitlab import GitLabClient, Reply, SshConfig, VariableLevel

OLD_GITLAB = "personal_access_tokens/self unavailable"  # token_info's key on GitLab before 15.5
DEVELOPER = 30
# CI/CD variables the guide's .gitlab-ci.yml reads with `cat $VAR`, so they must be of type File.
CI_FILE_VARIABLES = {"onprem": ["HARBOR_ROBOT_CREDS_JSON"], "gcp": ["GCP_SERVICE_ACCOUNT_KEY"]}
API_SCOPES = {"api", "read_api"}
PUSH_SCOPES = {"api", "write_repository"}


def _section(profile: Profile) -> GitLab:
    if profile.gitlab is None:  # the plugin skips GIT checks first; this is for direct callers
        raise CannotEvaluate("the profile has no gitlab section")
    return profile.gitlab


def _role(level: int) -> str:
    from conformance.clients.gitlab import ACCESS_LEVELS  # noqa: PLC0415 - python-gitlab loads at run time

    return f"{ACCESS_LEVELS.get(level, 'access level')} ({level})"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def gitlab_local(profile: Profile, run_id: str) -> GitLabClient:
    """The client, for checks that need no GitLab endpoint (files on this machine)."""
    from conformance.clients.gitlab import connect  # noqa: PLC0415 - python-gitlab loads at run time

    return connect(profile, run_id)


@pytest.fixture(scope="session")
def authenticated(gitlab: GitLabClient) -> GitLabClient:
    """The client once the token is accepted (an API scope is GIT-003's concern)."""
    gitlab.require_token()
    return gitlab


@pytest.fixture(scope="session")
def gitlab_project(authenticated: GitLabClient) -> dict[str, Any]:
    return authenticated.readable_project()


@pytest.fixture(scope="session")
def ssh_config(profile: Profile, gitlab_local: GitLabClient) -> SshConfig:
    if not _section(profile).ssh:
        pytest.skip("not applicable: gitlab.ssh is false (this workspace uses git over HTTPS only)")
    return gitlab_local.ssh_config()


def _config_problem(config: SshConfig, section: GitLab) -> str | None:
    if config.error:
        return str(config.error)
    if config.port != section.ssh_port:
        return f"{config.path} gives port {config.port} for host {section.host}, not {section.ssh_port}"
    return None


def _identity_problem(config: SshConfig) -> str | None:
    from conformance.clients.gitlab import file_mode  # noqa: PLC0415 - python-gitlab loads at run time

    existing = [p for p in config.identity_files if p.is_file()]
    if not existing:
        listed = ", ".join(str(p) for p in config.identity_files) or "none"
        return f"no IdentityFile for {config.host} exists (ssh would try: {listed})"
    modes = {p: file_mode(p) for p in existing}
    loose = [f"{p} has mode {mode:o}" for p, mode in modes.items() if mode & 0o077]
    return "; ".join(loose) or None


@pytest.fixture(scope="session")
def ssh_ready(
    profile: Profile, gitlab_local: GitLabClient, ssh_config: SshConfig, reachability: Reachability
) -> GitLabClient:
    """The client once the SSH settings are sound; blocked by the check that says why not."""
    reachability.require("gitlab-ssh")
    problem = _config_problem(ssh_config, _section(profile))
    if problem:
        raise Blocked("GIT-006", problem)
    identity = _identity_problem(ssh_config)
    if identity:
        raise Blocked("GIT-007", identity)
    found, files = gitlab_local.host_key_known(ssh_config)
    if found is None:
        raise Blocked("GIT-008", f"no key for {ssh_config.known_hosts_name} in {', '.join(map(str, files))}")
    return gitlab_local


@pytest.fixture(scope="session")
def token_info(gitlab: GitLabClient) -> dict[str, Any] | None:
    """GitLab's record of the token (``/personal_access_tokens/self``); None when GitLab refused it as expired."""
    user = gitlab.current_user()
    if user.token_state:
        return None
    if not user.ok and not user.insufficient_scope:
        raise Blocked("GIT-001", user.summary())
    info = gitlab.token_info()
    if info.route_missing:
        # GitLab before 15.5 has no /personal_access_tokens/self: what /user proved is all there is.
        return {OLD_GITLAB: f"GET {gitlab.api_url}/personal_access_tokens/self answered {info.summary()}"}
    if not info.ok:
        raise CannotEvaluate(
            f"GET {gitlab.api_url}/personal_access_tokens/self answered {info.summary()}",
            hint="it knows only personal access tokens: a project, group or OAuth token has no such record",
        )
    data: dict[str, Any] = info.data
    return data


@pytest.fixture(scope="session")
def token_scopes(token_info: dict[str, Any] | None) -> list[str]:
    """The token's scopes, as GitLab 15.5+ tells them; before 15.5 there is no way to read them."""
    if token_info is not None and OLD_GITLAB in token_info:
        raise CannotEvaluate(
            f"this GitLab (before 15.5) does not tell a token its scopes ({token_info[OLD_GITLAB]})",
            hint="GIT-004 proves read_api (the API answered); GIT-005 proves git access; only a push proves "
            "write_repository: check the token's scopes in GitLab (Edit profile > Access tokens)",
        )
    return [str(scope) for scope in (token_info or {}).get("scopes") or []]


@pytest.fixture(scope="session")
def project_reply(authenticated: GitLabClient) -> Reply:
    reply = authenticated.project()
    if reply.insufficient_scope:
        raise Blocked("GIT-003", reply.summary())
    return reply


@pytest.fixture
def git_https(authenticated: GitLabClient, reachability: Reachability) -> GitLabClient:
    reachability.require("gitlab-git")
    return authenticated


@pytest.fixture(scope="session")
def parsed_ssh_config(ssh_config: SshConfig) -> SshConfig:
    if ssh_config.error:
        raise Blocked("GIT-006", ssh_config.error)
    return ssh_config


@pytest.fixture(scope="session")
def origin(profile: Profile, gitlab_local: GitLabClient) -> tuple[str, str]:
    """(checkout, origin URL) of the clone the profile names."""
    checkout = _section(profile).checkout
    if checkout is None:  # required on Run:ai (profile.requirements), where GIT-011 applies
        raise CannotEvaluate("gitlab.checkout names no clone to inspect")
    if not Path(checkout).is_dir():
        raise CannotEvaluate(f"gitlab.checkout {checkout} is not a directory on this machine")
    result = gitlab_local.origin_url(Path(checkout))
    if not result.ok:
        raise CannotEvaluate(f"`git remote get-url origin` in {checkout} failed: {result.message}")
    return checkout, result.stdout.strip()


@pytest.fixture(scope="session")
def pvc_root(profile: Profile) -> Path:
    workspace = profile.workspace
    if workspace is None or workspace.pvc_mount is None:  # a Run:ai profile always has one (the guide's /pvc-data)
        raise CannotEvaluate("the profile names no shared volume (workspace.pvc_mount)")
    if workspace.pod is not None:
        raise CannotEvaluate(
            f"the shared volume is inside pod {workspace.pod}; this check reads files on the machine running pytest",
            hint="run the suite inside the workspace to scan its volume",
        )
    root = Path(workspace.pvc_mount)
    if not root.is_dir():
        raise Blocked("WSP-002", f"{root} is not mounted on this machine")
    return root


def _listing(reply: Reply, what: str, project: str, role: str = "Reporter") -> Any:
    """A CI listing's data, or CannotEvaluate saying why GitLab would not give it."""
    if reply.status == 403:
        raise CannotEvaluate(
            f"GitLab refused to list the {what} of {project} ({reply.summary()})",
            hint=f"listing {what} needs the {role} role; ask a {role} of the project to run this check",
        )
    if not reply.ok:
        raise CannotEvaluate(f"listing the {what} of {project} answered {reply.summary()}")
    return reply.data


@pytest.fixture(scope="session")
def ci_variables(authenticated: GitLabClient, gitlab_project: dict[str, Any]) -> list[VariableLevel]:
    """Every level a CI job takes variables from (project, groups, instance), most specific first.

    When a required variable is on no level the token may list, and some level could not be listed,
    GIT-013 cannot tell: it says which levels it could not read and who may read them.
    """
    levels = authenticated.variable_levels(gitlab_project)
    seen = {key for level in levels for key in level.variables}
    missing = [k for k in _required_file_variables(authenticated) if k not in seen]
    unread = [level.unread for level in levels if not level.reply.ok]
    if missing and unread:
        readable = ", ".join(level.name for level in levels if level.reply.ok) or "none"
        raise CannotEvaluate(
            f"{', '.join(missing)} not found on the levels this token may list ({readable}); could not read: "
            + "; ".join(unread),
            hint="variables are listed only by a project Maintainer, a group Owner or an administrator: ask one "
            "to run GIT-013, or look in Settings > CI/CD > Variables",
        )
    return levels


def _required_file_variables(gitlab: GitLabClient) -> list[str]:
    required: list[str] = gitlab.section.ci_file_variables or CI_FILE_VARIABLES[gitlab.platform]
    return required


@pytest.fixture(scope="session")
def ci_schedules(authenticated: GitLabClient, gitlab_project: dict[str, Any]) -> list[dict[str, Any]]:
    data = _listing(authenticated.schedules(), "pipeline schedules", authenticated.section.project)
    return [s for s in data if isinstance(s, dict)]


@pytest.fixture(scope="session")
def latest_pipeline(authenticated: GitLabClient, gitlab_project: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    branch = str(gitlab_project.get("default_branch") or "main")
    reply = authenticated.latest_pipeline(branch)
    return branch, _listing(reply, "pipelines", authenticated.section.project)


# --------------------------------------------------------------------------- API and token


@check(
    "GIT-001",
    """
    401: the token is wrong, or was never created. Create a personal access token in GitLab (Edit profile >
    Access tokens) with scopes read_api and write_repository, and put it where the profile says (gitlab.token,
    else the GITLAB_TOKEN variable). Anything else: check gitlab.url; send this report to MLOps.
    """,
)
def test_token_authenticates(gitlab: GitLabClient, evidence: dict[str, Any]) -> None:
    user = gitlab.current_user()
    evidence.update({"api": f"{gitlab.api_url}/user", "token_source": gitlab.token_source, "seconds": user.seconds})
    if user.ok:
        evidence.update({"username": user.data.get("username"), "user_state": user.data.get("state")})
    elif user.insufficient_scope:
        evidence["note"] = "the token is valid but has no API scope (see GIT-003)"
    hint = (
        "the token was revoked or has expired (see GIT-002)"
        if user.token_state
        else ("the token is wrong, or belongs to another GitLab instance than gitlab.url")
    )
    expect(
        user.ok or user.insufficient_scope,
        expected=f"GET {gitlab.api_url}/user answers 200 for the profile's token",
        actual=user.summary(),
        hint=hint if user.status == 401 else "gitlab.url does not point at GitLab, or GitLab is failing",
    )


@check(
    "GIT-002",
    """
    Create a new personal access token (tokens expire; GitLab allows at most a year) and replace the old one
    wherever you keep it: the profile's gitlab.token, GITLAB_TOKEN, and your git credential store.
    """,
)
def test_token_not_expired(
    gitlab: GitLabClient, token_info: dict[str, Any] | None, profile: Profile, evidence: dict[str, Any]
) -> None:
    from conformance.clients.gitlab import days_until  # noqa: PLC0415 - python-gitlab loads at run time

    hint = "GitLab refuses expired and revoked tokens for the API and for git over HTTPS alike"
    if token_info is None:
        expect(False, expected="the token is active and not expired", actual=gitlab.current_user().summary(), hint=hint)
    token = token_info or {}
    if OLD_GITLAB in token:
        # GitLab refuses an expired or revoked token on /user (the fixture got past it): active today.
        evidence.update({"expires_at": "unknown (GitLab before 15.5)", "note": token[OLD_GITLAB]})
        evidence["active"] = f"GET {gitlab.api_url}/user accepted the token"
        return
    expires = token.get("expires_at")
    evidence.update({"token_name": token.get("name"), "expires_at": expires or "never", "active": token.get("active")})
    evidence["revoked"] = token.get("revoked")
    days = days_until(expires) if expires else None
    expect(
        token.get("active", True) and not token.get("revoked") and (days is None or days >= 0),
        expected="the token is active and not expired",
        actual=f"active={token.get('active')}, revoked={token.get('revoked')}, expires_at={expires}",
        hint=hint,
    )
    if expires:  # GitLab's expires_at is a date: the token stops working when that day starts (UTC)
        when = dt.datetime.combine(dt.date.fromisoformat(expires[:10]), dt.time(), dt.UTC)
        what, renew = "the GitLab token", "create a new token now and replace the old one where you keep it"
        expires_in_time(
            what, when, horizon_days=profile.expiry_horizon_days, check_id="GIT-002", evidence=evidence, remedy=renew
        )


@check(
    "GIT-003",
    """
    The token lacks a scope the guide needs. Create a token with read_api (or api) for the API and
    write_repository (or api) to push over HTTPS; a token's scopes cannot be changed after creation.
    """,
)
def test_token_scopes(authenticated: GitLabClient, token_scopes: list[str], evidence: dict[str, Any]) -> None:
    scopes = set(token_scopes)
    evidence["scopes"] = sorted(scopes)
    needs = {"read_api or api": API_SCOPES, "write_repository or api": PUSH_SCOPES}
    missing = [need for need, accepted in needs.items() if not scopes & accepted]
    expect(
        not missing,
        expected="token scopes include read_api (or api) and write_repository (or api)",
        actual=f"scopes {', '.join(sorted(scopes)) or 'none'}: lacks {' and '.join(missing) or 'nothing'}",
        hint="without write_repository, git push over HTTPS is refused; without read_api, these checks cannot read CI",
    )


@check(
    "GIT-004",
    """
    404: the project path in the profile is wrong, or you are not a member. Ask the project's Maintainer (or
    MLOps) to add you with role Developer or higher; Reporter and Guest cannot push.
    """,
)
def test_project_access(authenticated: GitLabClient, project_reply: Reply, evidence: dict[str, Any]) -> None:
    section = authenticated.section
    reply = project_reply
    evidence.update({"project": section.project, "seconds": reply.seconds})
    expect(
        reply.ok,
        expected=f"project {section.project} is visible to the token's user",
        actual=reply.summary(),
        hint="GitLab answers 404 both for a project that does not exist and for one you are not a member of",
    )
    access = authenticated.access(reply.data)
    role = "Administrator (is_admin)" if access.admin else _role(access.level)
    evidence.update({"path_with_namespace": reply.data.get("path_with_namespace"), "role": role})
    evidence.update({"role_from": access.via, "default_branch": reply.data.get("default_branch")})
    expect(
        access.level >= DEVELOPER,
        expected=f"role Developer (30) or higher on {section.project}",
        actual=f"role {role}, from {access.via}",
        hint="Reporter and Guest may clone but not push",
        blocks=False,  # the project is visible: the CI checks still read it
    )


# --------------------------------------------------------------------------- git over HTTPS


@check(
    "GIT-005",
    """
    git cannot read the repository over HTTPS with your token. Authentication failed: the token is wrong,
    expired or lacks read_repository. Certificate problems: set tls.ca_bundle (git uses GIT_SSL_CAINFO).
    Not found: check gitlab.project / gitlab.https_remote.
    """,
)
def test_git_https(git_https: GitLabClient, evidence: dict[str, Any]) -> None:
    user = git_https.current_user()
    username = git_https.section.username or (user.data or {}).get("username") or "oauth2"
    result = git_https.ls_remote_https(username)
    refs = [line.split("\t", 1)[-1] for line in result.stdout.splitlines() if "\t" in line]
    evidence.update({"command": result.command, "username": username, "seconds": result.seconds, "refs": len(refs)})
    expect(
        result.ok,
        expected=f"`{result.command}` succeeds with the token as the password",
        actual=f"exit {result.rc}: {result.message}" if result.rc is not None else result.message,
        hint="a 401 from git means the token, not the network: GIT-001 and GIT-002 say more",
    )


# --------------------------------------------------------------------------- git over SSH


@check(
    "GIT-006",
    """
    Add to ~/.ssh/config (AISG's GitLab listens for SSH on 2222, not 22):
        Host gitlab.aisingapore.net
            Port 2222
            IdentityFile ~/.ssh/<your private key>
    A line ssh cannot parse must be fixed first: `ssh -G gitlab.aisingapore.net` names it.
    """,
)
def test_ssh_config(profile: Profile, ssh_config: SshConfig, evidence: dict[str, Any]) -> None:
    section = _section(profile)
    evidence.update({"ssh_config": str(ssh_config.path), "host": section.host})
    if not ssh_config.error:
        evidence.update({"port": ssh_config.port, "hostname": ssh_config.hostname, "user": ssh_config.first("user")})
        evidence["identityfile"] = [str(p) for p in ssh_config.identity_files]
    problem = _config_problem(ssh_config, section)
    expect(
        problem is None,
        expected=f"ssh_config {ssh_config.path} has a Host block for {section.host} with Port {section.ssh_port}",
        actual=problem or "",
        hint="without `Port 2222`, ssh and git try port 22, which AISG's GitLab does not serve"
        if not ssh_config.error
        else "the file has a line ssh cannot parse, or does not exist",
    )


@check(
    "GIT-007",
    """
    Point IdentityFile at your private key and restrict it: `chmod 600 ~/.ssh/<key>`. ssh refuses a key that
    others can read ("UNPROTECTED PRIVATE KEY FILE"). No key yet: `ssh-keygen -t ed25519` and add the public
    key in GitLab (Edit profile > SSH Keys).
    """,
)
def test_ssh_identity(parsed_ssh_config: SshConfig, evidence: dict[str, Any]) -> None:
    from conformance.clients.gitlab import file_mode  # noqa: PLC0415 - python-gitlab loads at run time

    ssh_config = parsed_ssh_config
    files = [p for p in ssh_config.identity_files if p.is_file()]
    evidence["identity_files"] = {str(p): f"{file_mode(p):o}" for p in files}
    expect(
        not (problem := _identity_problem(ssh_config)),
        expected="an IdentityFile that exists and only its owner can read (mode 600 or 400)",
        actual=problem or "",
        hint="ssh ignores a private key that group or others can read",
    )


@check(
    "GIT-008",
    """
    Connect once interactively and compare the fingerprint with the one MLOps publishes:
    `ssh -p 2222 git@gitlab.aisingapore.net`, then answer yes; or add it with
    `ssh-keyscan -p 2222 gitlab.aisingapore.net >> ~/.ssh/known_hosts` after checking the fingerprint.
    """,
)
def test_ssh_host_key_known(gitlab_local: GitLabClient, parsed_ssh_config: SshConfig, evidence: dict[str, Any]) -> None:
    ssh_config = parsed_ssh_config
    found, files = gitlab_local.host_key_known(ssh_config)
    evidence.update({"lookup": ssh_config.known_hosts_name, "known_hosts_files": [str(p) for p in files]})
    if found is not None:
        evidence["found_in"] = str(found)
    expect(
        found is not None,
        expected=f"a host key for {ssh_config.known_hosts_name} in known_hosts",
        actual=f"none in {', '.join(str(p) for p in files)}",
        hint="in batch mode (git, CI) ssh cannot ask you to accept an unknown host key, so it fails",
    )


@check(
    "GIT-009",
    """
    `ssh -T git@gitlab.aisingapore.net` must print "Welcome to GitLab, @<you>!". Permission denied
    (publickey): add your public key in GitLab (Edit profile > SSH Keys). Host key verification failed: the
    key in known_hosts is not this server's; ask MLOps before replacing it.
    """,
)
def test_ssh_greeting(ssh_ready: GitLabClient, evidence: dict[str, Any]) -> None:
    from conformance.clients.gitlab import GREETING  # noqa: PLC0415 - python-gitlab loads at run time

    result = ssh_ready.ssh_greeting()
    greeting = GREETING.search(result.stdout + "\n" + result.message)
    evidence.update({"command": result.command, "seconds": result.seconds})
    if greeting:
        evidence["gitlab_user"] = greeting["user"]
    expect(
        greeting is not None,
        expected=f"`{result.command}` prints GitLab's greeting (Welcome to GitLab, @user!)",
        actual=f"exit {result.rc}: {result.message or 'no greeting'}",
        hint="publickey: the key is not registered in GitLab; refused or timed out: the port (2222, not 22) or the VPN",
    )


@check(
    "GIT-010",
    """
    git over SSH fails although ssh itself may work: check the project path in the remote
    (git@gitlab.aisingapore.net:<group>/<project>.git) and that your role lets you read it (GIT-004).
    """,
)
def test_git_ssh(ssh_ready: GitLabClient, evidence: dict[str, Any]) -> None:
    result = ssh_ready.ls_remote_ssh()
    evidence.update({"command": result.command, "seconds": result.seconds})
    evidence["refs"] = sum(1 for line in result.stdout.splitlines() if "\t" in line)
    expect(
        result.ok,
        expected=f"`{result.command}` succeeds through ssh_config in batch mode",
        actual=f"exit {result.rc}: {result.message}" if result.rc is not None else result.message,
        hint="the project path is wrong or not visible to your user, or the SSH settings above are off",
    )


# --------------------------------------------------------------------------- shared workspaces: HTTPS only


@pytest.mark.runai
@check(
    "GIT-011",
    """
    In a shared workspace use HTTPS, not SSH (the guide: the PVC is readable by the whole team):
    `git remote set-url origin https://gitlab.aisingapore.net/<group>/<project>.git`. Never put the token in
    the URL: it would be stored in .git/config on the shared volume; let git ask, or use a credential helper.
    """,
)
def test_workspace_remote_https(origin: tuple[str, str], evidence: dict[str, Any]) -> None:
    from conformance.clients.gitlab import redact_url  # noqa: PLC0415 - python-gitlab loads at run time

    checkout, remote = origin
    url, with_password = redact_url(remote)
    evidence.update({"checkout": checkout, "origin": url})
    expect(
        url.startswith("https://"),
        expected=f"origin of {checkout} is an https:// URL",
        actual=f"origin is {url}",
        hint="an SSH remote needs a private key, which in a shared workspace lies on the shared volume: use HTTPS",
    )
    expect(
        not with_password,
        expected="origin holds no credentials",
        actual="origin's URL holds a user name and password (shown here without them)",
        hint=".git/config on the shared volume is readable by the whole team",
    )


@pytest.mark.runai
@check(
    "GIT-012",
    """
    Remove private keys from the shared volume (the guide: use HTTPS in shared workspaces) and revoke them in
    GitLab (Edit profile > SSH Keys): anyone with access to the PVC may have copied them.
    """,
)
def test_no_private_key_on_pvc(profile: Profile, pvc_root: Path, evidence: dict[str, Any]) -> None:
    from conformance.clients.gitlab import find_private_keys  # noqa: PLC0415 - python-gitlab loads at run time

    root = pvc_root
    scan = find_private_keys(root, seconds=profile.timeouts.check / 4)
    evidence.update({"pvc_mount": str(root), "files_scanned": scan.scanned, "complete": scan.complete})
    evidence["private_keys"] = scan.keys
    expect(
        not scan.keys,
        expected=f"no private key file under the shared volume {root}",
        actual=f"{len(scan.keys)} found: {', '.join(scan.keys[:5])}",
        hint="someone kept an SSH key on the PVC, which the whole team can read",
    )


# --------------------------------------------------------------------------- CI (section 14)


@check(
    "GIT-013",
    """
    In GitLab: Settings > CI/CD > Variables, add the variable with Type "File": the guide's jobs run
    `cat $HARBOR_ROBOT_CREDS_JSON` (on-prem) or `cat $GCP_SERVICE_ACCOUNT_KEY` (GCP), which only works when
    the variable holds a file path. A variable of the project's group (or a group above it, or the instance)
    counts too. Listing needs Maintainer on the project, Owner on a group, administrator for the instance.
    """,
)
def test_ci_file_variables(
    authenticated: GitLabClient, ci_variables: list[VariableLevel], evidence: dict[str, Any]
) -> None:
    required = _required_file_variables(authenticated)
    read = [level for level in ci_variables if level.reply.ok]
    unread = [level for level in ci_variables if not level.reply.ok]
    # A job sees the most specific definition: project over group over ancestor group over instance.
    found = {key: (level.variables[key], level.name) for level in reversed(read) for key in level.variables}
    evidence.update({"required": required, "types": {k: found[k][0] if k in found else "missing" for k in required}})
    evidence["set_on"] = {k: found[k][1] for k in required if k in found}
    evidence["levels_read"] = [level.name for level in read]
    if unread:
        evidence["levels_unread"] = [level.unread for level in unread]
    missing = [k for k in required if k not in found]  # every level was read (else the fixture stopped)
    wrong = [f"{k} is of type {found[k][0]} ({found[k][1]})" for k in required if k in found and found[k][0] != "file"]
    wrong += [f"{k} is missing (read: {', '.join(evidence['levels_read'])})" for k in missing]
    expect(
        not wrong,
        expected=f"CI/CD variable(s) {', '.join(required)} of type File (on the project, a group above it, or the "
        "instance)",
        actual="; ".join(wrong),
        hint="with type Variable, `cat $VAR` reads a file named after the JSON's content and the push fails",
    )


@check(
    "GIT-014",
    """
    Create a pipeline schedule (Build > Pipeline schedules) on the default branch, e.g. nightly, so that
    image builds and this suite run regularly, and make sure it is active.
    """,
)
def test_pipeline_schedule(
    authenticated: GitLabClient, ci_schedules: list[dict[str, Any]], evidence: dict[str, Any]
) -> None:
    schedules = ci_schedules
    evidence["schedules"] = [
        {"description": s.get("description"), "cron": s.get("cron"), "ref": s.get("ref"), "active": s.get("active")}
        for s in schedules
    ]
    active = [s for s in schedules if s.get("active")]
    expect(
        active,
        expected=f"an active pipeline schedule in {authenticated.section.project}",
        actual=f"{len(schedules)} schedule(s), none active" if schedules else "no pipeline schedule",
        hint="a schedule's owner who left the project deactivates it",
    )


@check(
    "GIT-015",
    """
    The latest pipeline on the default branch failed: open it (link in the evidence), fix the failing job,
    and run the pipeline again. A failed build job often means a missing or mistyped CI/CD variable (GIT-013).
    """,
)
def test_latest_pipeline(latest_pipeline: tuple[str, dict[str, Any] | None], evidence: dict[str, Any]) -> None:
    branch, found = latest_pipeline
    pipeline = found or {}
    evidence["ref"] = branch
    if pipeline:
        evidence.update({"pipeline": pipeline.get("id"), "status": pipeline.get("status")})
        evidence.update({"web_url": pipeline.get("web_url"), "source": pipeline.get("source")})
    expect(
        found,
        expected=f"a pipeline has run on {branch}",
        actual=f"no pipeline on {branch}",
        hint=".gitlab-ci.yml is missing on the default branch, or CI/CD is disabled for the project",
    )
    expect(
        pipeline.get("status") != "failed",
        expected=f"the latest pipeline on {branch} did not fail",
        actual=f"pipeline {pipeline.get('id')} on {branch}: {pipeline.get('status')}",
        hint="see the failed job's log in GitLab",
    )
