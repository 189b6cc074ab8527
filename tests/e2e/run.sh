#!/usr/bin/env bash
# Scripted end-to-end tests: start a berth server on 127.0.0.1 and drive it with the
# real `aws` CLI (cli_flow.sh; pull_through_cli_flow.sh for the pull-through cache rules; replication_cli_flow.sh for replication), with boto3 (boto3_flow.py) and, for the OCI Distribution
# API under /v2/, with skopeo (skopeo_flow.sh); ECR Public with `aws ecr-public`
# (public_cli_flow.sh), boto3's `ecr-public` (public_boto3_flow.py) and skopeo's anonymous
# pulls and public pushes (public_skopeo_flow.sh); issue 15's settings, scanning, referrers and
# creation templates with boto3 (ecr_ops_boto3.py); image archival and pull times with boto3
# (archive_boto3.py); regions with `aws ecr --region` (regions_cli_flow.sh).
#
# Usage: tests/e2e/run.sh [path/to/berth] [extra `berth serve` args...]
#   default binary: target/release/berth (relative to the repository root)
# Needs: bash, aws (CLI v1 or v2), python3 with boto3, curl, coreutils (timeout, sha256sum);
# skopeo_flow also needs skopeo (>= 1.9), tar and gzip; podman_flow needs podman (each reports
# one failure when its tool is missing).
# Output ends with "N passed, M failed"; exit status 0 only when M is 0.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

BERTH="${1:-target/release/berth}"
[ "$#" -gt 0 ] && shift
case "$BERTH" in
  /*) ;;
  *) if [ -e "$BERTH" ]; then BERTH="$PWD/$BERTH"; else BERTH="$ROOT/$BERTH"; fi ;;
esac
if [ ! -x "$BERTH" ]; then
  echo "berth binary not found or not executable: $BERTH" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"   # seconds to wait for "listening on ..."
FLOW_TIMEOUT="${FLOW_TIMEOUT:-900}"        # seconds per flow script
export STEP_TIMEOUT="${STEP_TIMEOUT:-60}"  # seconds per aws/curl call inside the flows

for tool in aws python3 curl timeout sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing required tool: $tool" >&2; echo "0 passed, 1 failed"; exit 1; }
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e.XXXXXX")"
PID=""

cleanup() {
  local rc=$?
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    # give it 10 s to shut down gracefully, then force
    for _ in $(seq 1 100); do
      kill -0 "$PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$PID" 2>/dev/null; then
      echo "server (pid $PID) did not stop after SIGTERM; sending SIGKILL" >&2
      kill -9 "$PID" 2>/dev/null || true
    fi
    wait "$PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -s "$TMP/server.err" ]; then
    echo "---- last lines of server stderr ----" >&2
    tail -n 40 "$TMP/server.err" | sed -E 's/\x1b\[[0-9;]*m//g' >&2 || true
  fi
  if [ -n "${KEEP_TMP:-}" ]; then
    echo "keeping $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Only local traffic: never route 127.0.0.1 through a proxy, never consult IMDS or real config.
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy AWS_PROFILE AWS_SESSION_TOKEN || true
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=secret
export AWS_DEFAULT_REGION=us-east-1
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=
export AWS_CONFIG_FILE="$TMP/aws-config"        # empty: ignore the user's ~/.aws
export AWS_SHARED_CREDENTIALS_FILE="$TMP/aws-credentials"
export AWS_MAX_ATTEMPTS=1                        # no client retries: see the server's first answer
export AWS_RETRY_MODE=standard
export REGISTRY_AUTH_FILE="$TMP/registry-auth.json"  # skopeo/podman: never the user's auth.json
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"

mkdir -p "$TMP/data"
echo "starting: $BERTH serve --listen 127.0.0.1:0 --data-dir $TMP/data $*"
# The server knows the clients' key, so every aws CLI and boto3 call is really SigV4-verified.
BERTH_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" BERTH_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  "$BERTH" serve --listen 127.0.0.1:0 --data-dir "$TMP/data" "$@" >"$TMP/server.out" 2>"$TMP/server.err" &
PID=$!

PORT=""
deadline=$((SECONDS + STARTUP_TIMEOUT))
while [ "$SECONDS" -lt "$deadline" ]; do
  line="$(grep -m1 -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$TMP/server.out" 2>/dev/null || true)"
  if [ -n "$line" ]; then
    PORT="${line##*:}"
    break
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "server exited before it was ready; stdout:" >&2
    cat "$TMP/server.out" >&2 || true
    echo "0 passed, 1 failed"
    exit 1
  fi
  sleep 0.1
done
if [ -z "$PORT" ]; then
  echo "server did not print 'listening on http://127.0.0.1:PORT' within ${STARTUP_TIMEOUT}s; stdout:" >&2
  cat "$TMP/server.out" >&2 || true
  echo "0 passed, 1 failed"
  exit 1
fi
export ENDPOINT="http://127.0.0.1:$PORT"
echo "server pid $PID ready at $ENDPOINT"

TOTAL_PASSED=0
TOTAL_FAILED=0

# true while the server process exists and is not a zombie
server_alive() {
  kill -0 "$PID" 2>/dev/null || return 1
  local st
  st="$(ps -o stat= -p "$PID" 2>/dev/null || true)"
  [[ "$st" != Z* ]]
}

# run_flow NAME CMD...   -- runs a flow under `timeout`, tees its output, adds up its checks
run_flow() {
  local name=$1 rc=0 p f summary
  shift
  echo
  echo "======== $name"
  timeout --kill-after=10 "$FLOW_TIMEOUT" "$@" 2>&1 | tee "$TMP/$name.log" || rc=$?
  summary="$(grep -E '^CHECKS passed=[0-9]+ failed=[0-9]+$' "$TMP/$name.log" | tail -n1 || true)"
  if [ -n "$summary" ]; then
    p="$(sed -E 's/^CHECKS passed=([0-9]+) failed=([0-9]+)$/\1/' <<<"$summary")"
    f="$(sed -E 's/^CHECKS passed=([0-9]+) failed=([0-9]+)$/\2/' <<<"$summary")"
  else
    # the flow died (timeout, crash): count what it printed, plus one failure for the crash
    p="$(grep -c '^PASS: ' "$TMP/$name.log" || true)"
    f="$(grep -c '^FAIL: ' "$TMP/$name.log" || true)"
    f=$((f + 1))
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      echo "FAIL: $name timed out after ${FLOW_TIMEOUT}s"
    else
      echo "FAIL: $name did not finish (exit $rc)"
    fi
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
    echo "FAIL: $name exited with status $rc although all its checks passed"
  fi
  if ! server_alive; then
    f=$((f + 1))
    echo "FAIL: server process $PID died during $name"
  fi
  echo "-------- $name: $p passed, $f failed"
  TOTAL_PASSED=$((TOTAL_PASSED + p))
  TOTAL_FAILED=$((TOTAL_FAILED + f))
}

run_flow cli_flow bash "$HERE/cli_flow.sh"
if server_alive; then
  run_flow pull_through_cli_flow bash "$HERE/pull_through_cli_flow.sh"
else
  echo "FAIL: pull_through_cli_flow not run because the server is gone"
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi
if server_alive; then
  run_flow replication_cli_flow bash "$HERE/replication_cli_flow.sh"
else
  echo "FAIL: replication_cli_flow not run because the server is gone"
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi
if server_alive; then
  run_flow boto3_flow python3 "$HERE/boto3_flow.py"
else
  echo "FAIL: boto3_flow not run because the server is gone"
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi
if server_alive; then
  run_flow skopeo_flow bash "$HERE/skopeo_flow.sh"
else
  echo "FAIL: skopeo_flow not run because the server is gone"
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi
for flow in "public_cli_flow bash $HERE/public_cli_flow.sh" \
  "public_boto3_flow python3 $HERE/public_boto3_flow.py" \
  "ecr_ops_boto3 python3 $HERE/ecr_ops_boto3.py" \
  "archive_boto3 python3 $HERE/archive_boto3.py" \
  "public_skopeo_flow bash $HERE/public_skopeo_flow.sh" \
  "regions_cli_flow bash $HERE/regions_cli_flow.sh"; do
  # shellcheck disable=SC2086 # the words of $flow are the name and the command
  if server_alive; then
    run_flow $flow
  else
    echo "FAIL: ${flow%% *} not run because the server is gone"
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
  fi
done
# The TLS flow starts its own HTTPS server.
run_flow tls_flow bash "$HERE/tls_flow.sh" "$BERTH"
if server_alive; then
  run_flow podman_flow bash "$HERE/podman_flow.sh"
else
  echo "FAIL: podman_flow not run because the server is gone"
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi

echo
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" -eq 0 ]
