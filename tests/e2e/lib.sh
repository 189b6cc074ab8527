# Helpers shared by the scripted end-to-end flows: checks counted as PASS/FAIL lines, the aws
# CLI against the server under test, and small JSON and file probes. Source it after setting
# ENDPOINT, STEP_TIMEOUT and the work directory W.

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
# Short excerpt of a file for failure messages (single line).
excerpt() { head -c 600 "$1" 2>/dev/null | tr '\n' ' '; }

# aws ecr <args...> against the server under test, bounded in time.
ecr() {
  timeout "$STEP_TIMEOUT" aws ecr "$@" --endpoint-url "$ENDPOINT" --output json
}

# succeeds DESC OUT ERR command...  -- the command must exit 0; its stdout -> OUT, stderr -> ERR
succeeds() {
  local desc=$1 out=$2 err=$3 rc=0
  shift 3
  "$@" >"$out" 2>"$err" || rc=$?
  if [ "$rc" -eq 0 ]; then
    pass "$desc"
    return 0
  fi
  fail "$desc (exit $rc; stderr: $(excerpt "$err"))"
  return 1
}

# ok DESC ecr-args...   -- run an ecr command that must succeed; stdout -> $W/out.json
ok() {
  local desc=$1
  shift
  succeeds "$desc" "$W/out.json" "$W/err.txt" ecr "$@"
}

# expect_error EXCEPTION DESC ecr-args...  -- command must fail and name EXCEPTION on stderr
expect_error() {
  local exc=$1 desc=$2 rc=0
  shift 2
  ecr "$@" >"$W/out.json" 2>"$W/err.txt" || rc=$?
  if [ "$rc" -ne 0 ] && grep -q "($exc)" "$W/err.txt"; then
    pass "$desc -> $exc"
  else
    fail "$desc: expected $exc, got exit $rc; stderr: $(excerpt "$W/err.txt"); stdout: $(excerpt "$W/out.json")"
  fi
}

# jv FILE EXPR  -- evaluate a Python expression over the parsed JSON `d`; prints the result
# (strings raw, everything else as JSON).  Prints nothing and fails on any error.
jv() {
  python3 - "$1" "$2" <<'PY' 2>/dev/null
import json, sys
with open(sys.argv[1], "rb") as f:
    d = json.load(f)
v = eval(sys.argv[2], {"d": d})
print(v if isinstance(v, str) else json.dumps(v))
PY
}

# eq DESC ACTUAL EXPECTED
eq() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$3', got '$2'"; fi
}

sha256_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
size_of() { stat -c %s "$1"; }

# Host of a URL must be 127.0.0.1 (the tests only talk to the local server).
is_local_url() { [[ "$1" =~ ^https?://127\.0\.0\.1(:[0-9]+)?/ ]]; }

# jv can't write raw bytes; extract the manifest with a dedicated snippet.
manifest_bytes_digest() {
  python3 - "$1" <<'PY' 2>/dev/null
import hashlib, json, sys
d = json.load(open(sys.argv[1], "rb"))
print("sha256:" + hashlib.sha256(d["images"][0]["imageManifest"].encode("utf-8")).hexdigest())
PY
}

# The last line every flow prints; exits 0 only when every check passed.
finish() { echo "CHECKS passed=$PASSED failed=$FAILED"; [ "$FAILED" -eq 0 ]; exit $?; }
