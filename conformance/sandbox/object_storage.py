"""The sandbox's object storage: a real S3 server (moto) with enforced keys, and the GCS emulator.

S3 (what ECS looks like to a workspace): ``moto.server`` over TLS from the sandbox CA. While its
authentication is still off, IAM users, access keys and policies are created; then
``POST /moto-api/reset-auth`` switches enforcement on, so wrong keys get ``InvalidAccessKeyId`` /
``SignatureDoesNotMatch`` and a read-only key gets ``AccessDenied`` on a put, as from a real server.
moto generates the keys; they are written to ``$SANDBOX_HOME/.aws/credentials`` (mode 600) as
named sections, the way the guide keeps them:

- ``[conformance]``: the writer (policy ``s3:*``), also the admin key other sandbox services use;
- ``[readonly]``: policy ``s3:Get*`` and ``s3:List*`` only;
- ``[unlisted]``: a user of a second account, policy ``s3:*``: its ``ListBuckets`` is empty, yet it
  may use the buckets of the first account.

Hidden buckets (the guide: ECS "may hide" buckets from listing) are simulated with moto's accounts:
``ListBuckets`` lists only the caller's account, while with auth on moto evaluates only the caller's
identity policy, so the writer can use ``SANDBOX_S3_HIDDEN_BUCKET`` (owned by a third account) that
its listing never shows. Real S3 would also want a bucket policy; ECS's behaviour is what matters.

One fidelity patch: moto answers a request without an ``Authorization`` header with a 500 (a
``KeyError``) once auth is on; real S3 and ECS answer ``403 AccessDenied``. :func:`serve` (run as
this module's ``__main__``) makes moto do the same, so the reachability probe sees a 403.

GCS: ``gcp-storage-emulator`` in memory, over plain HTTP, with no authentication at all. The
``sandbox-gcp`` profile therefore sets ``anonymous: true``; its service-account key file (a real
RSA key, never accepted by anything) exists so that OBJ-001 has a key to check.

Variables: SANDBOX_S3_ENDPOINT_URL, SANDBOX_S3_BUCKET, SANDBOX_S3_HIDDEN_BUCKET,
SANDBOX_AWS_CREDENTIALS_FILE, SANDBOX_AWS_CONFIG_FILE, SANDBOX_S3_ADMIN_ACCESS_KEY_ID,
SANDBOX_S3_ADMIN_SECRET_ACCESS_KEY, SANDBOX_S3_READONLY_ACCESS_KEY_ID, SANDBOX_S3_READONLY_SECRET_ACCESS_KEY,
SANDBOX_GCS_ENDPOINT_URL, SANDBOX_GCS_BUCKET, SANDBOX_GCS_PROJECT, SANDBOX_GCS_CREDENTIALS_FILE.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.sandbox.process import Process, http_ok
from conformance.sandbox.web import free_port

if TYPE_CHECKING:
    from conformance.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
BUCKET = "conformance-bucket"
HIDDEN_BUCKET = "conformance-hidden-bucket"
GCS_BUCKET = "conformance-gcs-bucket"
GCS_PROJECT = "conformance-sandbox"
REGION = "us-east-1"
UNLISTED_ACCOUNT = "210987654321"  # has users, owns no bucket
HIDDEN_OWNER_ACCOUNT = "222233334444"  # owns the hidden bucket, has no users
READY_SECONDS = 30

WRITE_ALL = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]
READ_ONLY = [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}]
# section in the credentials file -> (moto account, IAM user, policy statements)
USERS: dict[str, tuple[str | None, str, list[dict[str, Any]]]] = {
    "conformance": (None, "conformance-writer", WRITE_ALL),
    "readonly": (None, "conformance-reader", READ_ONLY),
    "unlisted": (UNLISTED_ACCOUNT, "conformance-unlisted", WRITE_ALL),
}


def start(sandbox: Sandbox) -> None:
    _start_s3(sandbox)
    _start_gcs(sandbox)


# --------------------------------------------------------------------------- S3


def _client(service: str, endpoint: str, ca_bundle: Path, account: str | None = None) -> Any:
    """A boto3 client for bootstrapping while moto's auth is off (any key is accepted then)."""
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 - no stubs; only the sandbox needs it

    client = boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bootstrap-key-id",
        aws_secret_access_key="bootstrap-secret",  # noqa: S106 - moto ignores keys until auth is switched on
        verify=str(ca_bundle),
    )
    if account is not None:

        def in_account(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account  # moto's documented way to act as another account

        client.meta.events.register("before-sign.*.*", in_account)
    return client


def _create_user(endpoint: str, ca_bundle: Path, account: str | None, name: str, policy: list[Any]) -> dict[str, str]:
    iam = _client("iam", endpoint, ca_bundle, account)
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName=f"{name}-s3",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": policy}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": str(key["AccessKeyId"]), "aws_secret_access_key": str(key["SecretAccessKey"])}


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _ini(sections: dict[str, dict[str, str]]) -> str:
    blocks = (f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()) for name, values in sections.items())
    return "\n".join(blocks)


def _start_s3(sandbox: Sandbox) -> None:
    cert, key = sandbox.ca.issue(sandbox.pki_dir, "s3")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "conformance.sandbox.object_storage", "-H", "127.0.0.1", "-p", str(port)]
    server = sandbox.add(
        Process("s3", [*argv, "-s", "-c", str(cert), "-k", str(key)], log_dir=sandbox.dir, env=env, cwd=sandbox.dir)
    )
    endpoint = f"https://localhost:{port}"
    trust = ssl.create_default_context(cafile=str(sandbox.ca_bundle))
    server.wait_ready(http_ok(f"{endpoint}/moto-api/", trust), READY_SECONDS)

    _client("s3", endpoint, sandbox.ca_bundle).create_bucket(Bucket=BUCKET)
    _client("s3", endpoint, sandbox.ca_bundle, HIDDEN_OWNER_ACCOUNT).create_bucket(Bucket=HIDDEN_BUCKET)
    keys = {section: _create_user(endpoint, sandbox.ca_bundle, *user) for section, user in USERS.items()}
    switch_on = urllib.request.Request(  # noqa: S310 - loopback URL built here
        f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(switch_on, timeout=5, context=trust):  # noqa: S310 - loopback URL built here
        pass

    aws = sandbox.home / ".aws"
    _write_private(aws / "credentials", _ini(keys))
    _write_private(aws / "config", _ini({f"profile {name}": {"region": REGION} for name in keys}))
    sandbox.env.update(
        {
            "SANDBOX_S3_ENDPOINT_URL": endpoint,
            "SANDBOX_S3_BUCKET": BUCKET,
            "SANDBOX_S3_HIDDEN_BUCKET": HIDDEN_BUCKET,
            "SANDBOX_AWS_CREDENTIALS_FILE": str(aws / "credentials"),
            "SANDBOX_AWS_CONFIG_FILE": str(aws / "config"),
            "SANDBOX_S3_ADMIN_ACCESS_KEY_ID": keys["conformance"]["aws_access_key_id"],
            "SANDBOX_S3_ADMIN_SECRET_ACCESS_KEY": keys["conformance"]["aws_secret_access_key"],
            "SANDBOX_S3_READONLY_ACCESS_KEY_ID": keys["readonly"]["aws_access_key_id"],
            "SANDBOX_S3_READONLY_SECRET_ACCESS_KEY": keys["readonly"]["aws_secret_access_key"],
        }
    )


def serve(argv: list[str]) -> None:
    """``moto.server``, answering unsigned requests with 403 AccessDenied as S3 does (see module doc)."""
    from moto import server, settings  # noqa: PLC0415 - only in the server's own process
    from moto.core.authorization import ActionAuthenticatorMixin  # noqa: PLC0415 - same
    from moto.s3.exceptions import S3AccessDeniedError  # noqa: PLC0415 - same

    checked = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        enforcing = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
        if enforcing and "Authorization" not in self.headers and "X-Amz-Credential" not in self.querystring:
            raise S3AccessDeniedError()
        checked(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate  # type: ignore[method-assign] # the patch
    server.main(argv)


# --------------------------------------------------------------------------- GCS


def _service_account_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - only the sandbox needs it
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415 - same

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key = {
        "type": "service_account",
        "project_id": GCS_PROJECT,
        "private_key_id": "0" * 40,
        "private_key": pem,
        "client_email": f"conformance@{GCS_PROJECT}.iam.gserviceaccount.com",
        "client_id": "100000000000000000000",
        "token_uri": "https://127.0.0.1:9/token",  # nothing answers: the emulator is used anonymously
    }
    _write_private(path, json.dumps(key, indent=2))


def _start_gcs(sandbox: Sandbox) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = sandbox.add(Process("gcs", [*argv, "--in-memory"], log_dir=sandbox.dir, cwd=sandbox.dir))
    endpoint = f"http://127.0.0.1:{port}"
    server.wait_ready(http_ok(f"{endpoint}/storage/v1/b"), READY_SECONDS)
    create = urllib.request.Request(  # noqa: S310 - loopback URL built here
        f"{endpoint}/storage/v1/b?project={GCS_PROJECT}",
        data=json.dumps({"name": GCS_BUCKET}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(create, timeout=5):  # noqa: S310 - loopback URL built here
        pass
    key_file = sandbox.home / ".config" / "gcloud" / "conformance-sa.json"
    _service_account_key(key_file)
    sandbox.env.update(
        {
            "SANDBOX_GCS_ENDPOINT_URL": endpoint,
            "SANDBOX_GCS_BUCKET": GCS_BUCKET,
            "SANDBOX_GCS_PROJECT": GCS_PROJECT,
            "SANDBOX_GCS_CREDENTIALS_FILE": str(key_file),
        }
    )


if __name__ == "__main__":
    serve(sys.argv[1:])
