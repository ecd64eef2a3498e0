#!/usr/bin/env bash
# Build the suite's container image without Docker: the same Dockerfile, with buildah, on a local
# Debian 12 base made with debootstrap (no registry is needed). Root on Debian 12; installs
# buildah, podman and debootstrap when they are missing.
#
#   scripts/build-image.sh                 # builds $IMAGE (default localhost/conformance-suite:0.1.0)
#   NO_CACHE=1 scripts/build-image.sh      # every Dockerfile step again (the base and wheels stay cached)
#
# Steps, each cached so a second run takes seconds:
#   1. base: debootstrap bookworm (Debian's python3.11 in a venv at /opt/python, git, openssh-client,
#      ca-certificates) from the Debian mirror apt uses here, imported as localhost/conformance-base:<key>.
#      The tarball is kept under $CACHE keyed by the base's recipe in this script (make_base, the
#      packages, the environment): change the recipe, get a new base.
#   2. wheels: the host's pip (its configured index) downloads requirements-image.lock (the client lock
#      and Optuna for the cluster vantage's job), --no-deps,
#      into $CACHE/wheels-<lock hash>.
#   3. buildah bud --isolation chroot --build-arg BASE=... with that folder mounted; pip in the
#      Dockerfile installs requirements-image.lock from it with --no-index (the locks stay the only
#      source of the image's Python packages).
# Prints one "image:" line with the size and the seconds each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/conformance-suite:0.1.0}
CACHE=${CONFORMANCE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/conformance-image}
PYTHON=${PYTHON:-.venv/bin/python}
UID_ARG=${IMAGE_UID:-10001}
SUITE=bookworm
BASE_PACKAGES="python3.11 python3.11-venv git openssh-client ca-certificates"

[ "$(id -u)" = 0 ] || { echo "build-image: run as root (debootstrap and buildah's chroot isolation need it)" >&2; exit 2; }
missing=()
for tool in buildah podman debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-image: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Debian mirror apt uses on this machine (deb822 .sources or one-line .list), unless DEBIAN_MIRROR is set.
mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local found
  found=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n' |
    grep -E '/debian/?$' | head -n 1 || true)
  [ -n "$found" ] || found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' |
    grep -E '/debian/?$' | head -n 1 || true)
  echo "${found:-http://deb.debian.org/debian}"
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }
mkdir -p "$CACHE"

# 1. base: the root file system, made in $1 (its recipe, this function, keys the cache).
make_base() {
  local root=$1
  debootstrap --variant=minbase "$SUITE" "$root" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -n 20 "$CACHE/debootstrap.log" >&2; return 1; }
  mount -t proc proc "$root/proc"
  chroot "$root" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends $BASE_PACKAGES" >>"$CACHE/debootstrap.log" 2>&1 ||
    { tail -n 20 "$CACHE/debootstrap.log" >&2; return 1; }
  # python and pip on PATH as in the official python image (a venv of Debian's python3.11).
  chroot "$root" python3.11 -m venv /opt/python
  umount "$root/proc"
  # No apt lists or package caches in the base (the Dockerfile runs apt-get update itself).
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
}
BASE_ENV="PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

t0=$(now)
key=$( (declare -f make_base; echo "$SUITE $BASE_PACKAGES $BASE_ENV") | sha256sum | cut -c1-16)
BASE="localhost/conformance-base:$key"
tarball="$CACHE/base-$key.tar"
if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  if [ ! -s "$tarball" ]; then
    root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$root"' EXIT
    echo "build-image: debootstrap $SUITE from $(mirror)"
    make_base "$root"
    tar --numeric-owner -C "$root" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    find "$CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "base-$key.tar" -delete  # older recipes
    rm -rf "$root"
    trap - EXIT
  fi
  podman import --quiet --change "ENV $BASE_ENV" --change "ENV LANG=C.UTF-8" --change 'CMD ["python3"]' \
    "$tarball" "$BASE" >/dev/null
fi
base_s=$(since "$t0")

# 2. wheels
t0=$(now)
lock_key=$(cat requirements-client.lock requirements-image.lock | sha256sum | cut -c1-16)
wheels="$CACHE/wheels-$lock_key"
if [ ! -f "$wheels/.complete" ]; then
  rm -rf "$wheels"
  # (this machine's pip configuration may name local indexes that lack some packages: not worth a warning)
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -r requirements-image.lock -d "$wheels" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  touch "$wheels/.complete"
fi
wheels_s=$(since "$t0")

# 3. the Dockerfile
t0=$(now)
cache_flag=--layers  # reuse unchanged layers; NO_CACHE=1 builds every step again (bench/bench.py)
[ "${NO_CACHE:-0}" = 1 ] && cache_flag=--no-cache
buildah bud --quiet --isolation chroot "$cache_flag" \
  --build-arg "BASE=$BASE" --build-arg "UID=$UID_ARG" \
  --build-arg PIP_FIND_LINKS=/wheels --build-arg PIP_NO_INDEX=1 \
  --volume "$wheels:/wheels:ro" \
  -t "$IMAGE" -f Dockerfile . >/dev/null
build_s=$(since "$t0")

size=$(buildah inspect --type image --format '{{.Size}}' "$IMAGE" 2>/dev/null || true)
if ! [[ "$size" =~ ^[0-9]+$ ]] || [ "$size" = 0 ]; then
  size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
fi
echo "image: $IMAGE size_mb=$((size / 1000000)) base_s=$base_s wheels_s=$wheels_s build_s=$build_s"
