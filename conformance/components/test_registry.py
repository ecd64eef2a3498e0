"""REG: can this workspace push to the project's container registry (Harbor on-prem, Artifact Registry on GCP)?

The push goes through the plain Distribution API, without a Docker daemon (workspaces have none):
a generated one-layer OCI image is pushed to ``<project_path>/conformance:<run_id>``, pulled back
by digest, compared byte for byte, and deleted. The SDK and ``requests`` load only when these
checks run (the ``registry`` fixture imports ``conformance.clients.registry``).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from conformance.checks import Blocked, CannotEvaluate, ConformanceWarning, check, expect, expires_in_time
from conformance.profile import Profile, Registry

if TYPE_CHECKING:  # the client imports requests (and docker when asked); the fixtures load it at run time
    from conformance.clients.registry import Credentials, Push, RegistryClient, Reply


def _section(profile: Profile) -> Registry:
    if profile.registry is None:  # the plugin skips REG checks first; this is for direct callers
        raise CannotEvaluate("the profile has no registry section")
    return profile.registry


def _hint(reply: Reply, project: str) -> str:
    """Why the registry said no, in the guide's terms: read from the error body, not the status alone.

    Harbor answers a missing role with 401 (``unauthorized to access repository: <repo>, action: push``),
    so a 401 alone never means a wrong password; see ``Reply.cause``.
    """
    cause = reply.cause
    if cause == "role":
        action = reply.action or "push"
        if action == "delete":
            return f"the login worked, but your role in project '{project}' may not delete (Developer cannot)"
        if action == "pull":
            return f"the login worked, but your user is not a member of project '{project}' (Harbor: web login first)"
        return (
            f"the login worked, but your user is not a member of project '{project}' with role Developer or "
            f"higher, which {action} needs (Harbor adds users only after their first web UI login)"
        )
    if cause == "project":
        return f"project '{project}' does not exist on this registry: check registry.project_path"
    if cause == "credentials":
        return (
            "the registry refused the credentials: wrong password, an expired robot token, "
            "or (Artifact Registry) an expired gcloud login"
        )
    if cause == "unsupported":
        return "the registry does not allow this operation"
    if cause == "server":
        return "the registry failed on its side: send this report to the team that runs it"
    return "the registry answered something the Distribution API does not expect here"


def _project(client: RegistryClient) -> str:
    """The Harbor project (or GCP project) the path starts with."""
    return client.section.repository.split("/", 1)[0]


def _timings(replies: list[Reply]) -> dict[str, str]:
    return {r.step: f"{r.status} in {r.seconds:.3f} s" for r in replies}


@pytest.fixture(scope="session")
def registry_credentials(profile: Profile) -> Credentials:
    """The credential sources, read without touching the network (REG-001 runs when the registry is down)."""
    from conformance.clients.registry import find_credentials  # noqa: PLC0415 - the client loads at run time

    return find_credentials(_section(profile), profile.timeouts.request)


@pytest.fixture(scope="session")
def logged_in(registry: RegistryClient) -> RegistryClient:
    """The client once ``/v2/`` accepted its credentials; blocked otherwise."""
    if not registry.credentials.usable:
        problems = registry.credentials.problems or ["no credentials"]
        raise Blocked("REG-001", problems[0])
    login = registry.login()
    if not login.ok:
        raise Blocked("REG-002", login.problem or (login.failure.summary() if login.failure else "no answer"))
    return registry


@pytest.fixture(scope="session")
def pushed(logged_in: RegistryClient, run_id: str) -> Iterator[Push]:
    """The run's image, pushed once; removed in teardown if a check did not remove it."""
    from conformance.clients.registry import build_image  # noqa: PLC0415 - the client loads at run time

    yield logged_in.push(build_image(run_id))
    removed = logged_in.cleanup()  # None when REG-004 already deleted it (and reported how that went)
    if removed is not None and removed.left_behind:
        warnings.warn(ConformanceWarning(f"REG teardown: {logged_in.reference}: {removed.left_behind}"), stacklevel=1)


@check(
    "REG-001",
    """
    On-prem: run `docker login <registry host>` with your Harbor user (Azure user name without the domain),
    or point registry.robot_creds_json at the robot-account file MLOps gave your team. GCP: run
    `gcloud auth configure-docker <region>-docker.pkg.dev`. Fix or re-create any file named as malformed.
    """,
)
def test_credentials_found(registry_credentials: Credentials, profile: Profile, evidence: dict[str, Any]) -> None:
    found = registry_credentials
    credential = found.credential
    evidence.update({"registry_host": found.host, "sources_consulted": found.consulted})
    if credential is not None:
        evidence.update({"credential_source": credential.source, "username": credential.username})
    if found.helper:
        evidence["credential_helper"] = f"docker-credential-{found.helper} ({found.helper_path or 'not on PATH'})"
    expect(
        found.usable,
        expected=f"well-formed credentials for {found.host} in the sources the profile names",
        actual="; ".join(found.problems) or "no credentials",
        hint="a file was edited by hand or truncated, or docker login / the robot file was never set up",
    )
    if credential is not None and credential.expires is not None:  # a Harbor robot account ends on a date
        expires_in_time(
            f"robot account {credential.username}",
            credential.expires,
            horizon_days=profile.expiry_horizon_days,
            check_id="REG-001",
            evidence=evidence,
            remedy="ask MLOps to extend the robot account (Harbor: Projects > Robot Accounts) or issue a new one",
        )


@check(
    "REG-002",
    """
    `docker login <registry host>` fails the same way. 401: the password or robot token is wrong or expired
    (Harbor robot tokens expire; GCP: run `gcloud auth login` again). Anything else: send this report to MLOps.
    """,
)
def test_authentication(registry: RegistryClient, registry_credentials: Credentials, evidence: dict[str, Any]) -> None:
    if not registry_credentials.usable or registry.credentials.credential is None:
        raise Blocked("REG-001", (registry_credentials.problems or ["no credentials"])[0])
    login = registry.login()
    evidence.update({"url": f"{registry.base}/v2/", "api_version": login.api_version, "scheme": login.scheme})
    evidence.update({"timings": _timings(login.replies), "credential_source": registry.credentials.credential.source})
    if login.realm:
        evidence["token_realm"] = login.realm
    failure = login.failure
    expect(
        login.ok,
        expected=f"GET {registry.base}/v2/ answers 200 once authenticated ({login.scheme})",
        actual=login.problem or (failure.summary() + f" at {failure.step}" if failure else "no answer"),
        hint=_hint(failure, _project(registry)) if failure else None,
    )
    expect(
        login.api_version == "registry/2.0",
        expected="the registry announces Docker-Distribution-API-Version: registry/2.0",
        actual=f"Docker-Distribution-API-Version: {login.api_version or 'absent'}",
        hint="registry.url points at something that is not the registry API (a UI, a proxy page)",
    )


@pytest.mark.writes
@check(
    "REG-003",
    """
    Harbor: log in to Harbor's web UI once, then ask MLOps to add you to the project with role Developer or
    higher. NAME_UNKNOWN: registry.project_path names a project or repository that does not exist.
    Artifact Registry: your account needs roles/artifactregistry.writer on the repository.
    """,
)
def test_push_accepted(logged_in: RegistryClient, pushed: Push, evidence: dict[str, Any]) -> None:
    evidence.update({"reference": pushed.reference, "image_size_bytes": pushed.image.size})
    evidence.update({"manifest_digest": pushed.image.digest, "timings": _timings(pushed.replies)})
    failure = pushed.failure
    actual = pushed.problem or (f"{failure.summary()} at {failure.step}" if failure else "accepted")
    expect(
        pushed.ok,
        expected=f"push of a 1-layer image to {pushed.reference} is accepted",
        actual=actual,
        hint=_hint(failure, _project(logged_in)) if failure else None,
    )


@pytest.mark.writes
@check(
    "REG-004",
    """
    The registry accepted the image but returns other bytes, or cannot serve it back: a proxy or cache between
    the workspace and the registry alters or drops content. Send this report to MLOps.
    """,
)
def test_pull_by_digest(logged_in: RegistryClient, pushed: Push, evidence: dict[str, Any]) -> None:
    if not pushed.ok:
        raise Blocked("REG-003", pushed.problem or (pushed.failure.summary() if pushed.failure else "no digest"))
    pulled = logged_in.pull(pushed)
    removed = logged_in.delete(pushed.image.digest, pushed.image.blobs)
    evidence.update({"reference": f"{pushed.reference.rpartition(':')[0]}@{pushed.digest}"})
    evidence.update({"timings": _timings(pulled.replies), "cleanup_timings": _timings(removed.replies)})
    left = removed.left_behind
    evidence["cleanup"] = "manifest deleted by digest" if left is None else f"NOT deleted: {left}"
    if removed.not_permitted is not None:
        # Not a fault of the platform (the guide's role is Developer), but never a clean teardown either.
        evidence["left_behind"] = f"{pushed.reference.rpartition(':')[0]}@{pushed.digest}"
        evidence["warning"] = f"the probe image {evidence['left_behind']} was left in the registry: {left}"
        warnings.warn(ConformanceWarning(f"REG-004: {evidence['warning']}"), stacklevel=1)
    failure = pulled.failure
    expect(
        failure is None and not pulled.different,
        expected=f"pull of {pushed.digest} returns the manifest and blobs byte for byte",
        actual=f"{failure.summary()} at {failure.step}"
        if failure
        else "different bytes: " + ", ".join(pulled.different),
        hint=_hint(failure, _project(logged_in)) if failure else None,
    )


@pytest.mark.writes
@check(
    "REG-005",
    """
    The Docker daemon could not push what the plain registry API could: check the daemon's own proxy and
    certificate settings (/etc/docker/daemon.json, /etc/docker/certs.d/<host>/ca.crt) and `docker login`.
    """,
)
def test_push_with_docker_daemon(
    profile: Profile, run_id: str, request: pytest.FixtureRequest, evidence: dict[str, Any]
) -> None:
    from conformance.clients.registry import build_image, docker_daemon, push_with_daemon  # noqa: PLC0415 - run time

    daemon = docker_daemon(profile.timeouts.connect)
    if daemon is None:
        pytest.skip("not applicable: no Docker daemon reachable (workspaces have none)")
    logged_in: RegistryClient = request.getfixturevalue("logged_in")
    digest, error = push_with_daemon(daemon, logged_in, build_image(run_id))
    if digest:
        removed = logged_in.delete(digest)
        evidence.update({"daemon_digest": digest, "cleanup_timings": _timings(removed.replies)})
    expect(
        digest is not None,
        expected=f"docker push of a 1-layer image to {logged_in.reference}-daemon is accepted",
        actual=error or "the daemon reported no digest",
        hint="the daemon uses its own proxy, CA and credentials settings, not the workspace's",
    )


@pytest.mark.gcp
@check(
    "REG-006",
    """
    Run `gcloud auth configure-docker <region>-docker.pkg.dev` (it adds credHelpers to ~/.docker/config.json)
    and make sure the Google Cloud CLI's bin folder, which holds docker-credential-gcloud, is on PATH.
    """,
)
def test_artifact_registry_helper(
    profile: Profile, registry_credentials: Credentials, evidence: dict[str, Any]
) -> None:
    from conformance.clients.registry import is_artifact_registry  # noqa: PLC0415 - the client loads at run time

    section = _section(profile)
    if not is_artifact_registry(section.host):
        pytest.skip(f"not applicable: registry host {section.host} is not Artifact Registry (*-docker.pkg.dev)")
    found = registry_credentials
    on_path = shutil.which("docker-credential-gcloud")
    evidence.update({"docker_config": section.docker_config, "cred_helper": found.helper, "helper_on_path": on_path})
    expect(
        section.docker_config is not None and found.docker_config_read,
        expected="the profile's registry.docker_config names a readable docker config.json",
        actual=f"registry.docker_config is {section.docker_config or 'not set'}"
        + ("" if found.docker_config_read else " (not read: see REG-001)"),
        hint="set registry.docker_config: ~/.docker/config.json",
    )
    expect(
        found.helper == "gcloud" and on_path is not None,
        expected=f'credHelpers["{section.host}"] is "gcloud" and docker-credential-gcloud is on PATH',
        actual=f"helper for {section.host}: {found.helper or 'none'}; docker-credential-gcloud: "
        + (on_path or "not on PATH"),
        hint=f"gcloud auth configure-docker {section.host} was not run, or the gcloud SDK is not on PATH",
    )
