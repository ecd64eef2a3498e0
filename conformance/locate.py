"""Where each component's credentials live, one answer used by its client and the secret index alike.

So the report scrubs every value a check may send (:mod:`conformance.credentials`). Standard library
only, no network; the kubeconfig's files are :mod:`conformance.kubeconfig`'s (client-go's rules).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path

ADC_NAME = "application_default_credentials.json"


def home(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("HOME") or os.path.expanduser("~"))


def docker_config(configured: str | None, environ: Mapping[str, str]) -> Path:
    """The ``config.json`` docker reads: the profile's, else ``$DOCKER_CONFIG/config.json``, else ``~/.docker``'s."""
    folder = environ.get("DOCKER_CONFIG")
    return Path(configured or (Path(folder) if folder else home(environ) / ".docker") / "config.json")


def basic_pair(value: object) -> tuple[str, str] | None:
    """``(user, password)`` from a docker ``auth`` value (base64 of ``user:password``), or None."""
    if not isinstance(value, str):
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep and user and password else None


def aws_credentials(configured: str | None, environ: Mapping[str, str]) -> list[Path]:
    """The file the S3 client reads first; then ``$AWS_SHARED_CREDENTIALS_FILE`` (other boto3 users read it)."""
    if configured:
        return [Path(os.path.expanduser(configured))]
    variable = environ.get("AWS_SHARED_CREDENTIALS_FILE")
    return [home(environ) / ".aws" / "credentials", *([Path(os.path.expanduser(variable))] if variable else [])]


def google_key(configured: str | None, field: str, environ: Mapping[str, str]) -> tuple[Path, str] | None:
    """A service-account key and what chose it: the profile's ``field``, else ``GOOGLE_APPLICATION_CREDENTIALS``."""
    if configured:
        return Path(configured), field
    variable = environ.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    return (Path(variable).expanduser(), "GOOGLE_APPLICATION_CREDENTIALS") if variable else None


def gcloud_adc(config_dir: str | None, environ: Mapping[str, str]) -> Path:
    """gcloud's application-default credentials: ``<config dir>/application_default_credentials.json``."""
    configured = config_dir or environ.get("CLOUDSDK_CONFIG")
    return (Path(configured) if configured else home(environ) / ".config" / "gcloud") / ADC_NAME
