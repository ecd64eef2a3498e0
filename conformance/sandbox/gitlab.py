"""The sandbox's GitLab: real git over SSH and HTTPS, and a simulated REST API.

Real:
* ``sshd`` (OpenSSH) on a loopback port with a standalone config, public-key login for root only.
  Like GitLab's ``authorized_keys``, the key runs a forced command (a gitlab-shell stand-in): with no
  command it prints ``Welcome to GitLab, @conformance!``; ``git-upload-pack``/``git-receive-pack``
  ``'group/project.git'`` run on the bare repository of that path; anything else is refused. The
  repository holds the ``.gitlab-ci.yml`` the simulated API's CI lint reads.
* nginx + fcgiwrap + ``git http-backend`` over TLS (sandbox CA), HTTP Basic authentication whose
  password is the user's GitLab token, as with a real GitLab personal access token. Only the good
  token (SANDBOX_GITLAB_TOKEN) is in the htpasswd file: the fault tokens are for the API.

Simulated (``gitlab-api``): the REST API, see :mod:`conformance.sandbox.gitlab_api`, in two versions:
the current one (SANDBOX_GITLAB_URL) and one from before GitLab 15.5 (SANDBOX_GITLAB_OLD_URL), which has
no ``/personal_access_tokens/self``. Both serve the same users, tokens and projects.

The SSH client side lives in the sandbox HOME: a key pair, ``.ssh/config`` (``Host localhost`` with
the port, ``IdentityFile``, ``UserKnownHostsFile``) and ``.ssh/known_hosts``. ssh expands ``~`` from
the password database, not ``$HOME``, so every path in it is absolute.

Variables: SANDBOX_GITLAB_URL, SANDBOX_GITLAB_PROJECT, SANDBOX_GITLAB_BROKEN_PROJECT,
SANDBOX_GITLAB_USER, SANDBOX_GITLAB_TOKEN and SANDBOX_GITLAB_<KIND>_TOKEN (EXPIRED, EXPIRING, REVOKED,
READ_ONLY, GIT_ONLY, REPORTER; DEVELOPER: a Developer through the project's group; SHARED: through a group
the project is shared with; ADMIN: an administrator with no membership), SANDBOX_GITLAB_OLD_URL,
SANDBOX_GITLAB_API_STATE, SANDBOX_GIT_HTTPS_URL, SANDBOX_GIT_SSH_URL,
SANDBOX_SSH_HOST, SANDBOX_SSH_PORT, SANDBOX_SSH_USER, SANDBOX_SSH_CONFIG, SANDBOX_SSH_KEY,
SANDBOX_SSH_KNOWN_HOSTS, SANDBOX_GIT_CHECKOUT.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.sandbox.gitlab_api import SANDBOX_CI_YML, GitLabApi, default_state, new_token
from conformance.sandbox.process import Process, ServiceError, port_open
from conformance.sandbox.web import free_port

if TYPE_CHECKING:
    from conformance.sandbox import Sandbox

PROJECT = "mlops/kapitan-hull-sandbox"
BROKEN_PROJECT = "mlops/broken-ci"
USER = "conformance"
SSH_USER = "root"  # sshd only lets the user it runs as log in without privileges; we run as root
PRIVSEP_DIR = Path("/run/sshd")  # compiled into Debian's sshd; it refuses to start without it
TOKEN_KINDS = (
    "good",
    "expiring",
    "expired",
    "revoked",
    "read_only",
    "git_only",
    "reporter",
    "developer",
    "shared",
    "admin",
)
READY_SECONDS = 10.0
# git without the user's or the machine's configuration, and a fixed identity for the seed commit.
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Conformance Sandbox",
    "GIT_AUTHOR_EMAIL": "sandbox@conformance.invalid",
    "GIT_COMMITTER_NAME": "Conformance Sandbox",
    "GIT_COMMITTER_EMAIL": "sandbox@conformance.invalid",
}

SHELL = """#!/bin/sh
# gitlab-shell stand-in: a greeting, or git on a repository below the sandbox's repository root.
set -f
case "$SSH_ORIGINAL_COMMAND" in
  "") echo "Welcome to GitLab, @{user}!"; exit 0 ;;
  "git-upload-pack "*|"git-receive-pack "*|"git-upload-archive "*) ;;
  *) echo "Disallowed command" >&2; exit 1 ;;
esac
command=${{SSH_ORIGINAL_COMMAND%% *}}
path=$(printf '%s' "${{SSH_ORIGINAL_COMMAND#* }}" | tr -d "'\\"")
path=${{path#/}}
case "$path" in *..*|"") echo "Disallowed path" >&2; exit 1 ;; esac
if [ ! -d "{root}/$path" ]; then echo "ERROR: The project you were looking for could not be found." >&2; exit 1; fi
exec "$command" "{root}/$path"
"""

SSHD_CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers {user}
AcceptEnv GIT_PROTOCOL
"""

CLIENT_CONFIG = """Host {host}
    Port {port}
    User {user}
    IdentityFile {key}
    IdentitiesOnly yes
    UserKnownHostsFile {known_hosts}
"""

NGINX_CONFIG = """user root;
daemon off;
working_directory {dir};
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{}}
http {{
    access_log off;
    client_max_body_size 0;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            auth_basic "GitLab";
            auth_basic_user_file {dir}/htpasswd;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
            fastcgi_param GIT_PROJECT_ROOT {repositories};
            fastcgi_param GIT_HTTP_EXPORT_ALL "";
            fastcgi_param PATH_INFO $uri;
            fastcgi_param REMOTE_USER $remote_user;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_pass unix:{socket};
        }}
    }}
}}
"""


def _run(argv: list[str], *, stdin: str | None = None, cwd: Path | None = None) -> None:
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=30, check=False, cwd=cwd,
        env={**os.environ, **GIT_ENV},
    )  # fmt: skip
    if done.returncode != 0:
        raise ServiceError(f"sandbox gitlab: {argv[0]} {argv[1]} failed: {done.stderr.strip()[-500:]}")


def _program(name: str, *, sbin: bool = False) -> str:
    found = shutil.which(name) or (shutil.which(name, path="/usr/sbin:/sbin") if sbin else None)
    if found is None:
        raise ServiceError(f"sandbox gitlab: {name} is not installed (Debian: openssh-server, nginx-light, fcgiwrap)")
    return found


def make_repository(repositories: Path, path: str) -> Path:
    """A bare repository ``<path>.git`` with one commit on ``main``, pushable over HTTP."""
    bare = repositories / f"{path}.git"
    seed = repositories.parent / "seed"
    if not seed.exists():
        _run(["git", "init", "-q", "-b", "main", str(seed)])
        (seed / "README.md").write_text("Conformance sandbox repository\n")
        (seed / ".gitlab-ci.yml").write_text(SANDBOX_CI_YML)  # what the simulated API's CI lint reads (CI-002)
        _run(["git", "-C", str(seed), "add", "README.md", ".gitlab-ci.yml"])
        _run(["git", "-C", str(seed), "commit", "-q", "-m", "Initial commit"])
    bare.parent.mkdir(parents=True, exist_ok=True)
    _run(["git", "clone", "-q", "--bare", str(seed), str(bare)])
    _run(["git", "-C", str(bare), "config", "http.receivepack", "true"])
    return bare


def _keygen(path: Path, comment: str) -> str:
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return Path(f"{path}.pub").read_text().strip()


def _privsep_dir() -> None:
    """sshd needs /run/sshd; create it if missing (and leave it: other sshds may use it)."""
    if PRIVSEP_DIR.is_dir():
        return
    try:
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
    except OSError as exc:
        raise ServiceError(
            f"sandbox gitlab: sshd needs {PRIVSEP_DIR} and it cannot be created ({exc.strerror}); "
            f"run `mkdir -m 0755 {PRIVSEP_DIR}` as root once"
        ) from None


def start_sshd(sandbox: Sandbox, root: Path, repositories: Path) -> dict[str, str]:
    """sshd with a gitlab-shell stand-in, and the client's key, config and known_hosts in the sandbox HOME."""
    _privsep_dir()
    work = root / "ssh"
    work.mkdir()
    host_key = work / "host_ed25519"
    host_public = _keygen(host_key, "sandbox-gitlab-host")
    ssh_dir = sandbox.home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    client_key = ssh_dir / "id_ed25519"
    client_public = _keygen(client_key, USER)
    shell = work / "gitlab-shell"
    shell.write_text(SHELL.format(user=USER, root=repositories))
    shell.chmod(0o755)
    options = "no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty"
    (work / "authorized_keys").write_text(f'command="{shell}",{options} {client_public}\n')
    port = free_port()
    config = work / "sshd_config"
    config.write_text(SSHD_CONFIG.format(port=port, host_key=host_key, dir=work, user=SSH_USER))
    sshd = sandbox.add(Process("sshd", [_program("sshd", sbin=True), "-D", "-e", "-f", str(config)], log_dir=root))
    sshd.wait_ready(port_open(port), READY_SECONDS)
    known_hosts = ssh_dir / "known_hosts"
    key_type, key_data = host_public.split()[:2]
    known_hosts.write_text(f"[localhost]:{port} {key_type} {key_data}\n[127.0.0.1]:{port} {key_type} {key_data}\n")
    client_config = ssh_dir / "config"
    client_config.write_text(
        CLIENT_CONFIG.format(host="localhost", port=port, user=SSH_USER, key=client_key, known_hosts=known_hosts)
    )
    client_config.chmod(0o600)
    return {
        "SANDBOX_SSH_HOST": "localhost",
        "SANDBOX_SSH_PORT": str(port),
        "SANDBOX_SSH_USER": SSH_USER,
        "SANDBOX_SSH_CONFIG": str(client_config),
        "SANDBOX_SSH_KEY": str(client_key),
        "SANDBOX_SSH_KNOWN_HOSTS": str(known_hosts),
        "SANDBOX_GIT_SSH_URL": f"{SSH_USER}@localhost:{PROJECT}.git",
    }


def start_git_https(sandbox: Sandbox, root: Path, repositories: Path, password: str) -> dict[str, str]:
    """nginx + fcgiwrap + git http-backend over TLS, Basic auth with the user's token as the password."""
    work = root / "nginx"
    (work / "tmp").mkdir(parents=True)
    _run([_program("htpasswd"), "-i", "-B", "-C", "4", "-c", str(work / "htpasswd"), USER], stdin=password)
    # A socket path has at most 107 bytes and the sandbox folder may be deep (TMPDIR): both programs run in
    # the folder and name the socket relative to it.
    socket = "fcgiwrap.sock"
    argv = [_program("fcgiwrap", sbin=True), "-c", "2", "-s", f"unix:{socket}"]
    fcgiwrap = Process("fcgiwrap", argv, log_dir=root, cwd=work)
    sandbox.add(fcgiwrap)  # stop() kills its whole process group: the workers ignore the parent's SIGTERM
    fcgiwrap.wait_ready((work / socket).exists, READY_SECONDS)
    cert, key = sandbox.ca.issue(sandbox.pki_dir, "gitlab-git")
    port = free_port()
    config = work / "nginx.conf"
    config.write_text(
        NGINX_CONFIG.format(dir=work, port=port, cert=cert, key=key, repositories=repositories, socket=socket)
    )
    nginx = [_program("nginx", sbin=True), "-e", str(work / "error.log"), "-p", str(work), "-c", str(config)]
    sandbox.add(Process("nginx", nginx, log_dir=root, cwd=work)).wait_ready(port_open(port), READY_SECONDS)
    return {"SANDBOX_GIT_HTTPS_URL": f"https://localhost:{port}/{PROJECT}.git"}


def make_checkout(sandbox: Sandbox, remote: str) -> Path:
    """A working copy whose ``origin`` is the HTTPS remote, as the guide sets it up in a shared workspace."""
    checkout = sandbox.home / "workspace" / "kapitan-hull-sandbox"
    checkout.mkdir(parents=True)
    _run(["git", "init", "-q", "-b", "main", str(checkout)])
    _run(["git", "-C", str(checkout), "remote", "add", "origin", remote])
    return checkout


def start(sandbox: Sandbox) -> None:
    root = sandbox.dir / "gitlab"
    repositories = root / "repositories"
    repositories.mkdir(parents=True)
    make_repository(repositories, PROJECT)
    tokens = {kind: new_token() for kind in TOKEN_KINDS}
    state = root / "api-state.json"
    state.write_text(json.dumps(default_state(tokens, PROJECT, BROKEN_PROJECT), indent=2))
    state.chmod(0o600)
    api = sandbox.add(GitLabApi(state, sandbox.ca.issue(sandbox.pki_dir, "gitlab-api")))
    old_state = root / "api-state-15.4.json"
    old = {**default_state(tokens, PROJECT, BROKEN_PROJECT), "version": "15.4.6", "personal_access_tokens_self": False}
    old_state.write_text(json.dumps(old, indent=2))
    old_state.chmod(0o600)
    old_api = sandbox.add(GitLabApi(old_state, sandbox.ca.issue(sandbox.pki_dir, "gitlab-api-old")))
    sandbox.simulated.append("gitlab-api")
    env = {
        "SANDBOX_GITLAB_URL": api.url,
        "SANDBOX_GITLAB_OLD_URL": old_api.url,
        "SANDBOX_GITLAB_PROJECT": PROJECT,
        "SANDBOX_GITLAB_BROKEN_PROJECT": BROKEN_PROJECT,
        "SANDBOX_GITLAB_USER": USER,
        "SANDBOX_GITLAB_API_STATE": str(state),
        "SANDBOX_GITLAB_TOKEN": tokens["good"],
        **{f"SANDBOX_GITLAB_{kind.upper()}_TOKEN": tokens[kind] for kind in TOKEN_KINDS if kind != "good"},
    }
    env.update(start_sshd(sandbox, root, repositories))
    env.update(start_git_https(sandbox, root, repositories, tokens["good"]))
    env["SANDBOX_GIT_CHECKOUT"] = str(make_checkout(sandbox, env["SANDBOX_GIT_HTTPS_URL"]))
    sandbox.env.update(env)
