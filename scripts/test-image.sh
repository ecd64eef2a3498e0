#!/usr/bin/env bash
# Run the suite inside its image (scripts/build-image.sh builds it), against the sandbox started
# outside the image, with buildah's chroot isolation (host network: the sandbox is on loopback).
#
#   scripts/test-image.sh            # exit 0 only if every run below passes
#
# 1. `python -m conformance sandbox up` on the host, detached; its variables go to a state file.
# 2. For UID 10001 (the image's user) and UID 2222 (the Run:ai/Coder workspace user, no passwd
#    entry in the image), each in a fresh container:
#      - a private copy of the sandbox folder, owned by that UID (as a runner hands a job its File
#        variables), is mounted at the sandbox's own path, so every SANDBOX_* path is right;
#      - `python -m conformance.sandbox.relocate` rewrites the programs the sandbox made for the host
#        (the simulated runai, kubectl, AWS CLI) for the image;
#      - `pytest --profile sandbox --reports-dir <mounted folder>`, then `python -m conformance bundle`.
# 3. The GitLab CI template's job script (ci/conformance.gitlab-ci.yml), resolved by gitlab-emulator,
#    run inside the image as its user, in a project folder mounted at the same path.
# Reports stay outside the image in $REPORTS (default: a temporary folder, removed unless KEEP=1);
# the containers are removed, so nothing of the sandbox (keys, tokens) is ever in an image.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/conformance-suite:0.1.0}
PYTHON=${PYTHON:-.venv/bin/python}
UIDS=${UIDS:-10001 2222}
CI_MARKERS=${CI_MARKERS:-onprem and runai}  # the template matrix's first entry (PROFILE onprem-runai)

work=$(mktemp -d /tmp/conformance-image-test.XXXXXX)
chmod 755 "$work"
REPORTS=${REPORTS:-$work/reports}
sandbox_pid=""
containers=()
cleanup() {
  for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  if [ -n "$sandbox_pid" ]; then kill -TERM "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "test-image: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }
# A fresh container of $IMAGE in $c (not in a subshell: cleanup must see it to remove it).
new_container() {
  c=$(buildah from --quiet --pull-never "$IMAGE") || { echo "test-image: no image $IMAGE (build-image.sh)" >&2; exit 1; }
  containers+=("$c")
}

# 1. The sandbox, on the host.
t0=$(now)
"$PYTHON" -m conformance sandbox up --env-file "$work/sandbox.env" >/dev/null 2>"$work/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 180); do
  [ -s "$work/sandbox.env" ] && break
  kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/sandbox.log" >&2; echo "test-image: the sandbox did not start" >&2; exit 1; }
  sleep 1
done
[ -s "$work/sandbox.env" ] || { echo "test-image: the sandbox did not start in 180 s" >&2; exit 1; }
sandbox_dir=$(sed -n "s/^export SANDBOX_DIR=//p" "$work/sandbox.env" | tr -d "'")
state="$sandbox_dir/sandbox-env.json"
echo "test-image: sandbox up in $(since "$t0") s at $sandbox_dir"

# A private copy of the sandbox folder for one UID; the PVC's workspaces/ keeps its owner (WSP-004).
sandbox_copy() {
  local uid=$1 copy=$work/sandbox-$1
  cp -a "$sandbox_dir" "$copy"
  local owner
  owner=$(stat -c %u:%g "$sandbox_dir/pvc-data/workspaces")
  chown -R "$uid:$uid" "$copy"
  chown "$owner" "$copy/pvc-data/workspaces"
  echo "$copy"
}

failed=0
summary=()
mkdir -p "$REPORTS"

# 2. pytest --profile sandbox and the bundle, per UID.
for uid in $UIDS; do
  t0=$(now)
  copy=$(sandbox_copy "$uid")
  out="$REPORTS/uid-$uid"
  mkdir -p "$out"
  chown "$uid:$uid" "$out"
  new_container
  rc=0
  buildah run --isolation chroot --network host --user "$uid:$uid" \
    --volume "$copy:$sandbox_dir" --volume "$out:/reports" \
    --env "CONFORMANCE_SANDBOX_STATE=$state" \
    "$c" -- sh -ec '
      cd "$CONFORMANCE_HOME"
      python -m conformance.sandbox.relocate
      status=0
      python -m pytest --profile=sandbox --reports-dir=/reports || status=$?
      latest=$(ls -t /reports/*.json | head -n 1)
      python -m conformance bundle "$latest" --profile=sandbox
      ls /reports/*-bundle.tar.gz >/dev/null
      exit $status' >"$out/output.txt" 2>&1 || rc=$?
  tail -n 3 "$out/output.txt"
  [ "$rc" = 0 ] || { failed=1; tail -n 60 "$out/output.txt" >&2; }
  summary+=("uid $uid: pytest --profile sandbox + bundle rc=$rc in $(since "$t0") s")
done

# 3. The CI template's job script, in the image, as its user.
t0=$(now)
uid=$(echo "$UIDS" | cut -d' ' -f1)
copy="$work/sandbox-$uid"
[ -d "$copy" ] || copy=$(sandbox_copy "$uid")
project="$work/platform-repo"
mkdir -p "$project/profiles"
cp ci/conformance.gitlab-ci.yml "$project/.gitlab-ci.yml"
cp profiles/sandbox.yaml "$project/profiles/onprem-runai.yaml"
"$PYTHON" scripts/ci_job_script.py "$project" "$work/ci-job.sh" "$work/ci-job.env" \
  CI_PIPELINE_SOURCE=schedule PROFILE=onprem-runai "CONFORMANCE_MARKERS=$CI_MARKERS" \
  "CONFORMANCE_SANDBOX_STATE=$state" >/dev/null  # (it prints gitlab-emulator's ANTLR version notice)
chown -R "$uid:$uid" "$project"
env_args=()
while IFS= read -r line; do env_args+=(--env "$line"); done <"$work/ci-job.env"
new_container
rc=0
buildah run --isolation chroot --network host --user "$uid:$uid" \
  --volume "$copy:$sandbox_dir" --volume "$project:$project" --volume "$work/ci-job.sh:/ci-job.sh:ro" \
  "${env_args[@]}" "$c" -- sh -ec 'python -m conformance.sandbox.relocate >/dev/null; exec bash /ci-job.sh' \
  >"$project/output.txt" 2>&1 || rc=$?
tail -n 3 "$project/output.txt"
if [ "$rc" = 0 ] && ls "$project"/reports/*.xml "$project"/reports/*-bundle.tar.gz >/dev/null 2>&1; then
  :
else
  failed=1
  tail -n 60 "$project/output.txt" >&2
  echo "test-image: the CI job failed (rc=$rc) or left no JUnit report and bundle in $project/reports" >&2
fi
[ -d "$project/reports" ] && cp -r "$project/reports" "$REPORTS/ci-job"
summary+=("CI template job (markers: $CI_MARKERS): rc=$rc in $(since "$t0") s")

printf 'test-image: %s\n' "${summary[@]}"
exit $failed
