#!/usr/bin/env bash
# End-to-end test of the web UI (issue 17 §2): starts a berth server on 127.0.0.1 with an
# admin key and a reader key limited to team-a/*, pushes images with boto3 (seed.py: one
# archived, one pulled, one in a second region), then drives /ui/ in headless Chromium with
# playwright-core (ui_flow.mjs).
#
# Usage: tests/ui/run.sh [path/to/berth] [extra `berth serve` args...]
# Needs: node (>= 20) with `npm ci` done in tests/ui, Debian's chromium (or CHROMIUM=path),
# python3 with boto3. UI_SCREENSHOTS=<dir> also writes PNGs of the main pages.
# Output ends with "CHECKS passed=N failed=M"; exit status 0 only when M is 0.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BERTH="${1:-target/debug/berth}"
[ "$#" -gt 0 ] && shift
case "$BERTH" in /*) ;; *) BERTH="$ROOT/$BERTH" ;; esac

fail() { echo "FAIL: $*"; echo "CHECKS passed=0 failed=1"; exit 1; }
[ -x "$BERTH" ] || fail "berth binary not found: $BERTH"
command -v node >/dev/null || fail "node is missing"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || fail "chromium is missing (apt-get install chromium)"
if [ ! -d "$HERE/node_modules/playwright-core" ]; then
  # The version package-lock.json pins; playwright-core downloads no browser.
  (cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) ||
    fail "npm ci in tests/ui (playwright-core)"
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/berth-ui.XXXXXX")"
PID=""
cleanup() {
  local rc=$?
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -s "$TMP/server.err" ]; then tail -n 30 "$TMP/server.err" >&2; fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT

unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy AWS_PROFILE || true
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

cat >"$TMP/berth.toml" <<'TOML'
[[access-keys]]
id = "AKIDADMIN"
secret = "AKIDADMIN-secret"
arn = "arn:aws:iam::000000000000:user/admin"
policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}'

[[access-keys]]
id = "AKIDREADER"
secret = "AKIDREADER-secret"
arn = "arn:aws:iam::000000000000:user/reader"
policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:Describe*","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:ListImages","ecr:GetRepositoryPolicy","ecr:GetLifecyclePolicy"],"Resource":"arn:aws:ecr:us-east-1:000000000000:repository/team-a/*"},{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}'
TOML

mkdir -p "$TMP/data"
# Pull times are written every second (seed.py waits for one); two regions are served, and
# registry host names (<account>.dkr.ecr.<region>.localhost) tell their registries apart.
"$BERTH" serve --listen 127.0.0.1:0 --data-dir "$TMP/data" --config "$TMP/berth.toml" \
  --pull-time-flush-secs 1 --regions us-east-1,eu-west-1 --registry-domain localhost "$@" \
  >"$TMP/server.out" 2>"$TMP/server.err" &
PID=$!
PORT=""
for _ in $(seq 1 300); do
  line="$(grep -m1 -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$TMP/server.out" 2>/dev/null || true)"
  if [ -n "$line" ]; then PORT="${line##*:}"; break; fi
  kill -0 "$PID" 2>/dev/null || fail "the server exited at start"
  sleep 0.1
done
[ -n "$PORT" ] || fail "the server did not start within 30 s"
export ENDPOINT="http://127.0.0.1:$PORT"
echo "server pid $PID ready at $ENDPOINT"

SEED="$(timeout 120 python3 "$HERE/seed.py")" || fail "seeding images with boto3"
export SEED
# A relative screenshot directory names one under the caller's directory, not tests/ui.
if [ -n "${UI_SCREENSHOTS:-}" ]; then
  mkdir -p "$UI_SCREENSHOTS"
  UI_SCREENSHOTS="$(cd "$UI_SCREENSHOTS" && pwd)"
  export UI_SCREENSHOTS
fi
cd "$HERE"
timeout --kill-after=10 240 node ui_flow.mjs
