#!/usr/bin/env bash
# Install the suite in a workspace: no root, no sudo, no apt, no Docker; Python 3.11+ (system or conda).
# Creates .venv from requirements-client.lock only (the clients the checks use, pinned; pip never
# re-resolves), then this checkout without dependencies, so `.venv/bin/conformance` exists.
# The sandbox's servers and the development tools are not installed: scripts/setup.sh does that.
# Another Python: PYTHON=/opt/conda/bin/python bash scripts/install-workspace.sh
# Safe to run again: it installs only when the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "install-workspace: $PYTHON is not Python 3.11 or newer ($("$PYTHON" --version 2>&1 || echo 'not found'));" \
    "point PYTHON at one: PYTHON=/path/to/python3.11 bash scripts/install-workspace.sh" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "install-workspace: creating .venv with $("$PYTHON" --version 2>&1)"
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "install-workspace: '$PYTHON -m venv' failed (on Debian the python3-venv package is missing);" \
      "use conda's Python (PYTHON=\$CONDA_PREFIX/bin/python) or ask for python3-venv" >&2
    exit 1
  fi
fi

stamp=.venv/.requirements-client.lock
if ! cmp -s requirements-client.lock "$stamp"; then
  echo "install-workspace: installing requirements-client.lock into .venv"
  .venv/bin/python -m pip install --disable-pip-version-check -q --no-deps -r requirements-client.lock
  echo "install-workspace: installing the suite (editable: the checkout is the suite)"
  .venv/bin/python -m pip install --disable-pip-version-check -q --no-deps -e .
  cp requirements-client.lock "$stamp"
fi
.venv/bin/conformance --help >/dev/null
echo "install-workspace: ready: .venv/bin/conformance run --profile PROFILE (from any folder)"
