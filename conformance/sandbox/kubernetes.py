"""The sandbox's Kubernetes: the simulated API server (``kube_api``) and the kubeconfigs that reach it.

SIMULATED: see ``conformance/sandbox/kube_api.py`` for what the server does and does not do, and
``conformance/sandbox/oidc.py`` for the OpenID issuer (Keycloak-shaped) the OIDC users name as
``idp-issuer-url``: it renews an expired id-token for a refresh-token it knows, and refuses
(``invalid_grant``) one whose login has ended.

Kubeconfigs (each names the server with its CA as ``certificate-authority-data``, the trust the
platform's kubeconfig gives too):

* ``$SANDBOX_HOME/.kube/config`` (mode 600), ``SANDBOX_KUBECONFIG``: current context
  ``SANDBOX_K8S_CONTEXT`` with a Run:ai-CLI-v2-shaped OIDC user (``auth-provider: oidc`` carrying an
  ``id-token`` valid for 20 days and a ``refresh-token``), plus context ``conformance-token`` with a
  static bearer token (``SANDBOX_K8S_TOKEN``; the same value in a file, ``SANDBOX_K8S_TOKEN_FILE``).
* One file per fault under ``$SANDBOX_DIR/kube/``, each a complete kubeconfig whose current context
  has the fault, so that tests pick a fault by path and never share mutable state:
  ``SANDBOX_KUBECONFIG_READONLY`` (may only read: create pods/jobs denied),
  ``_BADTOKEN`` (a token the server does not know: 401), ``_INSECURE`` (insecure-skip-tls-verify),
  ``_MODE644`` (group/world-readable), ``_EXEC`` (needs ``gke-gcloud-auth-plugin`` on PATH; a fake
  one is in ``SANDBOX_K8S_PLUGIN_DIR``; the plugin prints the transcript ``exec-credential-token``),
  ``_EXEC_GARBAGE`` (an exec plugin, by absolute path, that prints a login prompt instead of an
  ExecCredential and exits 0: ``exec-credential-not-json``), ``_EXPIRING`` (id-token valid 1 more
  day), ``_EXPIRED`` (id-token expired yesterday, and the issuer refuses its refresh-token:
  ``Token is not active``), ``_REFRESHABLE`` (id-token expired yesterday, refresh-token still
  valid: renewed and written back to the file, as kubectl does; copy it before use, the file
  changes), ``_NOLOGIN`` (oidc user without an id-token or refresh-token: never logged in),
  ``_OTHER_PROJECT`` (namespace ``runai-other``: ``runai config project other``), ``_MALFORMED``.
* ``SANDBOX_K8S_QUOTA_NAMESPACE`` (``runai-quota``: a Job is accepted, its pod refused by the
  ResourceQuota) and ``SANDBOX_K8S_RESTRICTED_NAMESPACE`` (``runai-restricted``: refused by Pod
  Security ``restricted``); the FailedCreate events come from the contract transcripts.

Namespace ``SANDBOX_K8S_NAMESPACE`` (``runai-conformance``, labelled ``runai/queue=conformance``
as Run:ai labels project namespaces) holds PVC ``SANDBOX_K8S_PVC`` (Bound, RWX, nfs-client),
``SANDBOX_K8S_PVC_PENDING`` (Pending) and ``SANDBOX_K8S_PVC_RWO`` (Bound, RWO), and the secrets
the platform provides (``s3-credentials``, ``harbor-credentials``, ``mlflow-credentials``,
``runai-sso``; values random).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from conformance.sandbox import contracts, pods
from conformance.sandbox.kube_api import FULL, READ_ONLY, Cluster, Identity, KubeApiServer
from conformance.sandbox.oidc import OidcIssuer, jwt, refresh_jwt

if TYPE_CHECKING:
    from conformance.sandbox import Sandbox

PROJECT = "conformance"
NAMESPACE = f"runai-{PROJECT}"
OTHER_NAMESPACE = "runai-other"
QUOTA_NAMESPACE = "runai-quota"
RESTRICTED_NAMESPACE = "runai-restricted"
CLIENT_ID = "runai-cli"
PVC = "conformance-pvc"
PVC_PENDING = "pending-pvc"
PVC_RWO = "rwo-pvc"
SECRETS = {
    "s3-credentials": ["accessKeyId", "secretAccessKey", "ecsS3EndpointURL"],
    "mlflow-credentials": ["url", "username", "password"],
    "runai-sso": ["runai-sso.yaml"],
}
CLUSTER = "runai-cluster"
REALM = "conformance"
SMOKE_IMAGE = "alpine:3.20"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def id_token(issuer: str, subject: str, expires: dt.datetime) -> str:
    """A JWT shaped like Run:ai's (Keycloak) id-token. Its signature is random: nobody verifies it here."""
    issued = expires - dt.timedelta(days=30)
    payload = {
        "exp": int(expires.timestamp()),
        "iat": int(issued.timestamp()),
        "auth_time": int(issued.timestamp()),
        "jti": secrets.token_hex(16),
        "iss": issuer,
        "aud": "runai-cli",
        "sub": subject,
        "typ": "ID",
        "azp": "runai-cli",
        "email": f"{subject}@conformance.example",
        "preferred_username": subject,
    }
    return jwt(payload)


def oidc_user(
    issuer: str, token: str | None, refresh: str | None = None, ca_pem: bytes | None = None
) -> dict[str, Any]:
    """The user entry ``runai login`` (CLI v2) leaves in the kubeconfig; the guide's sample before login."""
    config = {
        "airgapped": "true",
        "auth-flow": "remote-browser",
        "client-id": CLIENT_ID,
        "idp-issuer-url": issuer,
        "realm": REALM,
        "redirect-uri": f"https://{REALM}.run.ai/oauth-code",
    }
    if ca_pem is not None:  # a self-hosted control plane's CA, as client-go's idp-certificate-authority-data
        config["idp-certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    if token is not None:
        config.update({"id-token": token, "refresh-token": refresh or refresh_jwt(issuer)})
    return {"auth-provider": {"name": "oidc", "config": config}}


def kubeconfig(
    server: str,
    ca_pem: bytes | None,
    users: dict[str, dict[str, Any]],
    contexts: dict[str, tuple[str, str]],  # name -> (user, namespace)
    current: str,
) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is None:
        cluster["insecure-skip-tls-verify"] = True
    else:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER, "cluster": cluster}],
        "users": [{"name": name, "user": user} for name, user in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": CLUSTER, "user": user, "namespace": ns}}
            for name, (user, ns) in contexts.items()
        ],
        "current-context": current,
        "preferences": {},
    }


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def write_plugin(directory: Path, transcript: str, **values: str) -> Path:
    """A stand-in for ``gke-gcloud-auth-plugin``: prints what the contract transcript says, exits as it does."""
    directory.mkdir(parents=True, exist_ok=True)
    found = contracts.get("kubernetes", transcript)
    assert found.cli is not None  # noqa: S101 - exec plugin transcripts are CLI answers
    stdout = found.render(found.cli.stdout, **values)
    script = directory / "gke-gcloud-auth-plugin"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({stdout!r})\nsys.exit({found.cli.exit})\n")
    script.chmod(0o700)
    return script


def build_cluster(tokens: dict[str, Identity]) -> Cluster:
    cluster = Cluster(identities=tokens)
    cluster.add_namespace("default")
    cluster.add_namespace("kube-system")
    cluster.add_namespace(NAMESPACE, {"runai/queue": PROJECT})
    cluster.add_namespace(OTHER_NAMESPACE, {"runai/queue": "other"})
    cluster.add_namespace(QUOTA_NAMESPACE, {"runai/queue": "quota"})
    cluster.add_namespace(RESTRICTED_NAMESPACE, {"pod-security.kubernetes.io/enforce": "restricted"})
    cluster.admission[QUOTA_NAMESPACE] = "events-failedcreate-quota"
    cluster.admission[RESTRICTED_NAMESPACE] = "events-failedcreate-podsecurity"
    cluster.add_pvc(NAMESPACE, PVC, phase="Bound", modes=["ReadWriteMany"], storage_class="nfs-client")
    cluster.add_pvc(NAMESPACE, PVC_PENDING, phase="Pending", modes=["ReadWriteMany"], storage_class="nfs-client")
    cluster.add_pvc(NAMESPACE, PVC_RWO, phase="Bound", modes=["ReadWriteOnce"], storage_class="local-path")
    for name, keys in SECRETS.items():
        cluster.add_secret(NAMESPACE, name, keys)
    cluster.add_secret(NAMESPACE, "harbor-credentials", [".dockerconfigjson"], "kubernetes.io/dockerconfigjson")
    return cluster


def kubelet(sandbox: Sandbox, cluster: Cluster, port: int) -> pods.Runtime:
    """What runs the pods of the suite's own image (conformance/sandbox/pods.py); stopped before the server."""
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "PYTHONPATH": str(pods.CHECKOUT),
        "LANG": "C.UTF-8",
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",  # what the kubelet sets: the API server, as seen from a pod
        "KUBERNETES_SERVICE_PORT": str(port),
    }
    return pods.Runtime(sandbox.dir / "kubelet", cluster.lookup, base_env)


def start(sandbox: Sandbox) -> None:
    namespaces = frozenset({NAMESPACE, OTHER_NAMESPACE, QUOTA_NAMESPACE, RESTRICTED_NAMESPACE})
    day = dt.timedelta(days=1)
    at = dt.datetime.now(dt.UTC)
    static = secrets.token_urlsafe(32)
    readonly = secrets.token_urlsafe(32)
    plugin = secrets.token_urlsafe(32)
    holder: list[Cluster] = []

    def mint() -> str:
        """A renewed id-token (Keycloak's default lifespan here: 1 hour) that the API server accepts."""
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        token = id_token(issuer, "researcher", expires)
        with holder[0].lock:
            holder[0].identities[token] = Identity(
                "researcher@conformance.example", FULL, namespaces, expires.timestamp()
            )
        return token

    idp = sandbox.add(OidcIssuer(sandbox.ca.issue(sandbox.pki_dir, "oidc"), REALM, CLIENT_ID, mint).start())
    issuer = idp.issuer
    oidc = {
        "valid": (id_token(issuer, "researcher", at + 20 * day), at + 20 * day),
        "expiring": (id_token(issuer, "researcher", at + day), at + day),
        "expired": (id_token(issuer, "researcher", at - day), at - day),
    }
    tokens = {
        static: Identity("researcher-token", FULL, namespaces),
        readonly: Identity("viewer", READ_ONLY, namespaces),
        plugin: Identity("researcher@conformance.iam.gserviceaccount.com", FULL, namespaces),
    }
    for token, expires in oidc.values():
        tokens[token] = Identity("researcher@conformance.example", FULL, namespaces, expires.timestamp())
    pki = sandbox.ca.issue(sandbox.pki_dir, "kube-api")
    holder.append(build_cluster(tokens))
    server = sandbox.add(KubeApiServer(holder[0], pki).start())
    holder[0].runtime = sandbox.add(kubelet(sandbox, holder[0], server.port))
    ca = sandbox.ca.pem()

    def config(users: dict[str, dict[str, Any]], namespace: str = NAMESPACE, ca_pem: bytes | None = ca) -> str:
        contexts = {PROJECT: (next(iter(users)), namespace)}
        return yaml.safe_dump(kubeconfig(server.url, ca_pem, users, contexts, PROJECT), sort_keys=False)

    main = kubeconfig(
        server.url,
        ca,
        {
            "runai-researcher": oidc_user(issuer, oidc["valid"][0], idp.refresh_token()),
            "researcher-token": {"token": static},
        },
        {PROJECT: ("runai-researcher", NAMESPACE), f"{PROJECT}-token": ("researcher-token", NAMESPACE)},
        PROJECT,
    )
    home_config = write_private(sandbox.home / ".kube" / "config", yaml.safe_dump(main, sort_keys=False))
    kube = sandbox.dir / "kube"
    plugin_dir = sandbox.dir / "kube-plugins"
    write_plugin(plugin_dir, "exec-credential-token", token=plugin, expires="2099-01-01T00:00:00Z")
    garbage = write_plugin(sandbox.dir / "kube-plugins-garbage", "exec-credential-not-json")
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "gke-gcloud-auth-plugin",
            "installHint": "Install gke-gcloud-auth-plugin for use with kubectl by following "
            "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin",
            "provideClusterInfo": True,
            "interactiveMode": "IfAvailable",
        }
    }
    variants = {
        "READONLY": config({"viewer": {"token": readonly}}),
        "BADTOKEN": config({"stranger": {"token": secrets.token_urlsafe(32)}}),
        "INSECURE": config({"researcher-token": {"token": static}}, ca_pem=None),
        "EXEC": config({"gke-user": exec_user}),
        "EXPIRING": config(  # the login itself (its refresh-token) ends in a day
            {"runai-researcher": oidc_user(issuer, oidc["expiring"][0], idp.refresh_token(expires=at + day))}
        ),
        "EXEC_GARBAGE": config({"gke-user": {"exec": {**exec_user["exec"], "command": str(garbage)}}}),
        "EXPIRED": config(
            {"runai-researcher": oidc_user(issuer, oidc["expired"][0], idp.refresh_token("token-refresh-inactive"))}
        ),
        "REFRESHABLE": config({"runai-researcher": oidc_user(issuer, oidc["expired"][0], idp.refresh_token())}),
        "NOLOGIN": config({"runai-researcher": oidc_user(issuer, None)}),
        "OTHER_PROJECT": config({"runai-researcher": oidc_user(issuer, oidc["valid"][0])}, OTHER_NAMESPACE),
        "MALFORMED": "apiVersion: v1\nkind: Config\nclusters:\n- name: broken\n  cluster: {server: [unclosed\n",
    }
    for name, text in variants.items():
        write_private(kube / f"{name.lower()}.yaml", text)
        sandbox.env[f"SANDBOX_KUBECONFIG_{name}"] = str(kube / f"{name.lower()}.yaml")
    mode644 = write_private(kube / "mode644.yaml", home_config.read_text(), 0o644)
    token_file = write_private(sandbox.dir / "secrets" / "k8s-token", static + "\n")
    sandbox.env.update(
        {
            "SANDBOX_KUBECONFIG": str(home_config),
            "SANDBOX_KUBECONFIG_MODE644": str(mode644),
            "SANDBOX_K8S_SERVER": server.url,
            "SANDBOX_K8S_CONTEXT": PROJECT,
            "SANDBOX_K8S_TOKEN_CONTEXT": f"{PROJECT}-token",
            "SANDBOX_K8S_NAMESPACE": NAMESPACE,
            "SANDBOX_K8S_QUOTA_NAMESPACE": QUOTA_NAMESPACE,
            "SANDBOX_K8S_RESTRICTED_NAMESPACE": RESTRICTED_NAMESPACE,
            "SANDBOX_OIDC_ISSUER": issuer,
            "SANDBOX_K8S_PVC": PVC,
            "SANDBOX_K8S_PVC_PENDING": PVC_PENDING,
            "SANDBOX_K8S_PVC_RWO": PVC_RWO,
            "SANDBOX_K8S_SECRETS": ",".join([*SECRETS, "harbor-credentials"]),
            "SANDBOX_K8S_TOKEN": static,
            "SANDBOX_K8S_TOKEN_FILE": str(token_file),
            "SANDBOX_K8S_PLUGIN_DIR": str(plugin_dir),
            "SANDBOX_K8S_SMOKE_IMAGE": SMOKE_IMAGE,
        }
    )
    sandbox.simulated.extend(["kubernetes-api", "oidc-issuer"])
