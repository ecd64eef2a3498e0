#!/usr/bin/env bash
# Set up this checkout on Debian 12 for the sandbox and development: the Debian packages the
# sandbox runs, and a virtual environment in .venv installed from requirements.lock (pinned, so
# pip never re-resolves). Installing Debian packages needs root; as another user it names them
# and stops. A workspace that only checks a real platform needs none of this:
# scripts/install-workspace.sh. Safe to run again: it installs only what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# The sandbox's real servers, skopeo for bench/bench.py's manual-procedure baseline, and the
# headless browser tests/test_report_browser.py opens the HTML report in.
APT_PACKAGES=(python3-venv docker-registry apache2-utils openssh-server nginx-light fcgiwrap skopeo chromium chromium-driver)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root:" >&2
    echo "  apt-get install --no-install-recommends ${missing[*]}" >&2
    echo "setup: ask for them (or run this script as root); to check a real platform without root," \
      "use scripts/install-workspace.sh instead" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
if [ ! -x .venv/bin/conformance ]; then
  echo "setup: installing the suite itself (editable, no dependencies) for the conformance command"
  .venv/bin/pip install --disable-pip-version-check -q --no-deps -e .
fi
echo "setup: ready (.venv/bin/pytest, .venv/bin/conformance)"
