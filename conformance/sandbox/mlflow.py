"""The sandbox's MLflow tracking server: a real ``mlflow server --app-name basic-auth``.

One uvicorn worker, job execution off (otherwise about ten processes and 2 GB),
TLS from the sandbox CA, a sqlite backend store and auth DB under the sandbox
folder, and artifacts proxied by the server (``--serve-artifacts``) to a bucket
of the sandbox's S3 server, so workspaces need no bucket credentials
(``mlflow-artifacts:`` locations), as on the platform.

Users (created through the auth app's REST API):

* ``SANDBOX_MLFLOW_USER`` owns the experiment ``SANDBOX_MLFLOW_EXPERIMENT``
  (an owner may write to it);
* ``SANDBOX_MLFLOW_READONLY_USER`` gets the server's ``default_permission =
  READ`` there: it can read the experiment, and ``create_run`` in it answers
  403 PERMISSION_DENIED, as on the platform for a user not granted the experiment.

Faults: ``SANDBOX_MLFLOW_BROKEN_ARTIFACTS_EXPERIMENT`` is an experiment whose
artifact location is ``s3://<a bucket that does not exist>/``: tracking
(runs, params, metrics) works there, artifact upload goes from the client
straight to S3 and fails. With ``MLFLOW_S3_ENDPOINT_URL`` and keys for the
sandbox S3 in the environment it fails with NoSuchBucket (the artifact store
is broken while tracking works); without them it shows which piece a
workspace lacks for direct-to-bucket locations.

Other variables: SANDBOX_MLFLOW_URI, SANDBOX_MLFLOW_PASSWORD,
SANDBOX_MLFLOW_READONLY_PASSWORD, SANDBOX_MLFLOW_ARTIFACTS (the proxied
destination), SANDBOX_MLFLOW_MISSING_BUCKET.
"""

from __future__ import annotations

import importlib
import os
import secrets
import ssl
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.clients.mlflow import scoped_environ
from conformance.sandbox.process import Process, http_ok
from conformance.sandbox.web import free_port

if TYPE_CHECKING:
    from conformance.sandbox import Sandbox

START_TIMEOUT = 60.0  # about 6-8 s on an idle machine; generous for a loaded CI runner
USER = "mlops-engineer"
READONLY_USER = "mlops-visitor"
EXPERIMENT = "conformance-sandbox"
BROKEN_EXPERIMENT = "conformance-sandbox-broken-artifacts"
ARTIFACTS_BUCKET = "sandbox-mlflow-artifacts"

_AUTH_INI = """\
[mlflow]
default_permission = READ
database_uri = sqlite:///{db}
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
grant_default_workspace_access = false
auth_cache_ttl_seconds = 60
"""


def _artifacts_destination(sandbox: Sandbox, server_env: dict[str, str]) -> str:
    """The sandbox S3 bucket when the object-storage service runs, else a folder (said so in the variables)."""
    endpoint = sandbox.env.get("SANDBOX_S3_ENDPOINT_URL")
    if not endpoint:
        folder = sandbox.dir / "mlflow" / "artifacts"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)
    boto3 = importlib.import_module("boto3")  # only the sandbox needs it, and only here; untyped

    key_id = sandbox.env["SANDBOX_S3_ADMIN_ACCESS_KEY_ID"]
    secret = sandbox.env["SANDBOX_S3_ADMIN_SECRET_ACCESS_KEY"]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        verify=str(sandbox.ca_bundle),
    )
    s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    server_env.update(
        {
            "MLFLOW_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CA_BUNDLE": str(sandbox.ca_bundle),
        }
    )
    return f"s3://{ARTIFACTS_BUCKET}/"


def _server_env(sandbox: Sandbox, work: Path, admin_password: str) -> dict[str, str]:
    # Nothing of the caller's MLflow, AWS or Google settings leaks into the server.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "GOOGLE_", "CLOUDSDK_"))}
    return {
        **inherited,
        "HOME": str(sandbox.home),
        "MLFLOW_AUTH_CONFIG_PATH": str(work / "basic_auth.ini"),
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(24),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def _populate(uri: str, ca_bundle: Path, admin_password: str, env: dict[str, str]) -> None:
    """Users and experiments, made the way the platform team makes them (the auth REST API)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's deprecation of its WSGI middleware, on import
        import mlflow.server  # noqa: PLC0415 - full mlflow, sandbox only
    from mlflow.tracking import MlflowClient  # noqa: PLC0415 - same

    def as_user(user: str, password: str) -> dict[str, str | None]:
        return {
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password,
            "MLFLOW_TRACKING_SERVER_CERT_PATH": str(ca_bundle),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
        }

    with scoped_environ(as_user("admin", admin_password)), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's deprecation warning, from get_app_client
        admin: Any = mlflow.server.get_app_client("basic-auth", tracking_uri=uri)
        admin.create_user(USER, env["SANDBOX_MLFLOW_PASSWORD"])
        admin.create_user(READONLY_USER, env["SANDBOX_MLFLOW_READONLY_PASSWORD"])
    with scoped_environ(as_user(USER, env["SANDBOX_MLFLOW_PASSWORD"])):
        client = MlflowClient(tracking_uri=uri)
        client.create_experiment(EXPERIMENT)
        client.create_experiment(BROKEN_EXPERIMENT, artifact_location=f"s3://{env['SANDBOX_MLFLOW_MISSING_BUCKET']}/")


def start(sandbox: Sandbox) -> None:
    work = sandbox.dir / "mlflow"
    work.mkdir(exist_ok=True)
    (work / "basic_auth.ini").write_text(_AUTH_INI.format(db=work / "auth.db"))
    cert, key = sandbox.ca.issue(sandbox.pki_dir, "mlflow")
    admin_password = secrets.token_urlsafe(18)
    server_env = _server_env(sandbox, work, admin_password)
    destination = _artifacts_destination(sandbox, server_env)
    port = free_port()
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--app-name", "basic-auth",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination", destination,
        "--uvicorn-opts", f"--ssl-keyfile {key} --ssl-certfile {cert}",
    ]  # fmt: skip
    process = sandbox.add(Process("mlflow", argv, log_dir=work, env=server_env, cwd=work))
    uri = f"https://localhost:{port}"
    process.wait_ready(
        http_ok(f"{uri}/health", ssl.create_default_context(cafile=str(sandbox.ca_bundle))), START_TIMEOUT
    )
    env = {
        "SANDBOX_MLFLOW_URI": uri,
        "SANDBOX_MLFLOW_USER": USER,
        "SANDBOX_MLFLOW_PASSWORD": secrets.token_urlsafe(18),
        "SANDBOX_MLFLOW_READONLY_USER": READONLY_USER,
        "SANDBOX_MLFLOW_READONLY_PASSWORD": secrets.token_urlsafe(18),
        "SANDBOX_MLFLOW_EXPERIMENT": EXPERIMENT,
        "SANDBOX_MLFLOW_BROKEN_ARTIFACTS_EXPERIMENT": BROKEN_EXPERIMENT,
        "SANDBOX_MLFLOW_MISSING_BUCKET": f"sandbox-missing-{secrets.token_hex(4)}",
        "SANDBOX_MLFLOW_ARTIFACTS": destination,
    }
    _populate(uri, sandbox.ca_bundle, admin_password, env)
    sandbox.env.update(env)
