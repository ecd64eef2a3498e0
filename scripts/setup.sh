#!/usr/bin/env bash
# Set up this checkout on Debian 12: the Debian packages the sandbox runs, and a virtual
# environment in .venv installed from requirements.lock (pinned, so pip never re-resolves).
# Safe to run again: it installs only what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# The sandbox's real servers, plus skopeo for bench/bench.py's manual-procedure baseline.
APT_PACKAGES=(python3-venv docker-registry apache2-utils openssh-server nginx-light fcgiwrap skopeo)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements.lock
if ! cmp -s requirements.lock "$stamp"; then
  echo "setup: installing requirements.lock into .venv"
  .venv/bin/pip install --disable-pip-version-check -q --no-deps -r requirements.lock
  cp requirements.lock "$stamp"
fi
echo "setup: ready (.venv/bin/pytest)"
