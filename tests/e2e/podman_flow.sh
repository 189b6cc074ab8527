#!/usr/bin/env bash
# End-to-end flow for /v2 with podman (no daemon): login with the GetAuthorizationToken
# password, push an image built with `podman import`, remove it locally, pull it back, and see
# it through the ECR API. podman keeps its storage (vfs driver) in a private temp dir.
#
# Expects ENDPOINT and dummy AWS credentials (run.sh sets them). Prints PASS/FAIL lines and,
# last, "CHECKS passed=N failed=M".
set -uo pipefail

: "${ENDPOINT:?ENDPOINT must be set (http://127.0.0.1:PORT)}"
STEP_TIMEOUT="${STEP_TIMEOUT:-60}"
W="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-podman.XXXXXX")"
HOST="${ENDPOINT#http://}"
. "$(dirname "$0")/lib.sh"

if ! command -v podman >/dev/null 2>&1; then
  fail "podman is not installed (apt-get install podman)"
  finish
fi
pm() {
  timeout "$STEP_TIMEOUT" podman --root "$W/root" --runroot "$W/runroot" --storage-driver vfs \
    --cgroup-manager cgroupfs --events-backend none "$@"
}
cleanup() { pm system reset --force >/dev/null 2>&1; rm -rf "$W"; }
trap cleanup EXIT
export REGISTRY_AUTH_FILE="$W/auth.json"
ecr() { timeout "$STEP_TIMEOUT" aws ecr "$@" --endpoint-url "$ENDPOINT"; }

ecr create-repository --repository-name e2e/podman >/dev/null && pass "create-repository e2e/podman" || fail "create-repository e2e/podman"

if ecr get-login-password | pm login --tls-verify=false -u AWS --password-stdin "$HOST" >"$W/login.out" 2>&1; then
  pass "podman login with the GetAuthorizationToken password"
else
  fail "podman login: $(head -c 400 "$W/login.out")"
fi
if pm login --tls-verify=false -u AWS -p not-a-token "$HOST" >/dev/null 2>&1; then
  fail "podman login with a wrong password succeeded"
else
  pass "podman login with a wrong password is refused"
fi

mkdir -p "$W/rootfs/etc"
head -c 300000 /dev/urandom >"$W/rootfs/data.bin"
echo "berth e2e" >"$W/rootfs/etc/motd"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
if pm import "$W/rootfs.tar" localhost/e2e:1 >"$W/import.out" 2>&1; then pass "podman import"; else fail "podman import: $(head -c 400 "$W/import.out")"; fi
ID_BEFORE=$(pm images --format '{{.ID}}' localhost/e2e:1 2>/dev/null | head -1)

if pm push --tls-verify=false --digestfile "$W/digest" localhost/e2e:1 "$HOST/e2e/podman:v1" >"$W/push.out" 2>&1; then
  pass "podman push"
else
  fail "podman push: $(head -c 400 "$W/push.out")"
fi
PUSHED=$(cat "$W/digest" 2>/dev/null)

LISTED=$(ecr describe-images --repository-name e2e/podman --image-ids imageTag=v1 --query 'imageDetails[0].imageDigest' --output text 2>/dev/null)
[ -n "$PUSHED" ] && [ "$LISTED" = "$PUSHED" ] && pass "describe-images shows the pushed digest ($PUSHED)" \
  || fail "describe-images digest '$LISTED' != pushed '$PUSHED'"

pm rmi -f localhost/e2e:1 >/dev/null 2>&1
if pm pull --tls-verify=false "$HOST/e2e/podman:v1" >"$W/pull.out" 2>&1; then pass "podman pull"; else fail "podman pull: $(head -c 400 "$W/pull.out")"; fi
ID_AFTER=$(pm images --format '{{.ID}}' "$HOST/e2e/podman:v1" 2>/dev/null | head -1)
[ -n "$ID_BEFORE" ] && [ "$ID_AFTER" = "$ID_BEFORE" ] && pass "pulled image id equals the pushed one ($ID_AFTER)" \
  || fail "pulled image id '$ID_AFTER' != '$ID_BEFORE'"
PULLED=$(pm inspect --format '{{.Digest}}' "$HOST/e2e/podman:v1" 2>/dev/null)
[ "$PULLED" = "$PUSHED" ] && pass "pulled manifest digest equals the pushed one" || fail "pulled digest '$PULLED' != '$PUSHED'"

if pm pull --tls-verify=false "$HOST/e2e/missing:v1" >"$W/miss.out" 2>&1; then
  fail "pulling a missing repository succeeded"
else
  grep -qiE 'name unknown|NAME_UNKNOWN|not found|404' "$W/miss.out" && pass "pulling a missing repository fails with name unknown" \
    || fail "pulling a missing repository: unexpected error $(head -c 300 "$W/miss.out")"
fi
finish
