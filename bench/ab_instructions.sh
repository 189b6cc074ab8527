#!/usr/bin/env bash
# A/B of two berth builds by instructions per small /v2 request, counted by callgrind: a
# regression check that does not depend on how busy the machine is. Wall-clock figures at
# concurrency 1 move by 30% between runs of one build on a shared 2-core VM (bench/ab_small.sh
# says so); the instruction count of a request moves by well under 1%. Counts user-space
# instructions only (no kernel time, no waits), so read it beside ab_small.sh, not instead.
#
# Each build serves the same tiny image (an OCI manifest, a config blob) from a data directory
# of its own on loopback, under `valgrind --tool=callgrind`, with the per-principal quotas off.
# For HEAD and GET manifest by tag and HEAD blob: a warm-up, then counters zeroed, SECS seconds
# of `berth-bench load` at concurrency 1, a dump; instructions / requests. Background jobs
# (pull-time flush, replication and event polls) run inside that window too, at a rate that
# does not depend on the load, and under callgrind the requests are few, so they would be
# charged to the requests unevenly (a busier machine: fewer requests, more per request). An
# idle window of the same length is measured first and subtracted; its rate is printed.
#
#   cargo build --release -p berth -p bench
#   bench/ab_instructions.sh OLD/berth NEW/berth [SECS]
#
# BENCH=target/release/berth-bench by default. Needs valgrind (apt-get install valgrind),
# curl, jq, sha256sum and the aws CLI. KEEP=dir keeps the callgrind files there (for
# callgrind_annotate).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

A=$1 B=$2 SECS=${3:-6}
BENCH=${BENCH:-target/release/berth-bench}
W=$(mktemp -d "${TMPDIR:-/tmp}/berth-abi.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1

tiny_image "$W"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'

declare -A RESULT IDLE
# read_dump NAME [OP]: the instructions of the newest callgrind dump of NAME (kept under
# $KEEP as NAME.OP.callgrind when asked), then the dump is removed.
read_dump() {
  local dump= ir
  for _ in $(seq 1 100); do
    dump=$(ls -t "$W/$1/cg/"out.* 2>/dev/null | head -n1 || true)
    [ -n "$dump" ] && grep -q '^totals:' "$dump" && break
    sleep 0.1
  done
  ir=$(awk '/^totals:/ {print $2}' "$dump")
  if [ -n "${KEEP:-}" ] && [ -n "${2:-}" ]; then mkdir -p "$KEEP"; cp "$dump" "$KEEP/$1.$2.callgrind"; fi
  rm -f "$dump"
  echo "$ir"
}
for name in A B; do
  bin=${!name}
  mkdir -p "$W/$name/cg"
  BERTH_LOG=warn BERTH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID BERTH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    valgrind --tool=callgrind --callgrind-out-file="$W/$name/cg/out" \
    "$bin" serve --listen 127.0.0.1:0 --data-dir "$W/$name/data" --gc-interval-secs 0 \
    --create-on-push --rate-limit '*=0' >"$W/$name.out" 2>"$W/$name.log" &
  pid=$!
  PIDS+=("$pid")
  ep=$(wait_listening "$W/$name.out" 600)
  auth=$(berth_basic_auth "$ep")
  push_tiny_image "$ep" "$auth"
  # Instructions of an idle window: the background jobs' share, subtracted below.
  callgrind_control -z "$pid" >/dev/null 2>&1
  sleep "$SECS"
  callgrind_control -d "$pid" >/dev/null 2>&1
  IDLE[$name]=$(read_dump "$name")
  for op in head_manifest get_manifest head_blob; do
    case $op in
      get_manifest) method=GET path=/v2/bench/small/manifests/v1 ;;
      head_manifest) method=HEAD path=/v2/bench/small/manifests/v1 ;;
      head_blob) method=HEAD path=/v2/bench/small/blobs/$CFG_DIGEST ;;
    esac
    "$BENCH" load -m "$method" -c 1 -d 2 -H "$auth" -H "$ACCEPT" "$ep$path" >/dev/null 2>&1
    callgrind_control -z "$pid" >/dev/null 2>&1
    out=$("$BENCH" load -m "$method" -c 1 -d "$SECS" -H "$auth" -H "$ACCEPT" "$ep$path" 2>/dev/null)
    callgrind_control -d "$pid" >/dev/null 2>&1
    [ "$(jq .errors <<<"$out")" = 0 ] || { echo "$op against $name saw errors: $out" >&2; exit 1; }
    ir=$(read_dump "$name" "$op")
    RESULT[$name.$op]=$(echo "($ir - ${IDLE[$name]}) / $(jq .requests <<<"$out")" | bc -l)
  done
done

printf 'background (idle) instructions per second: A %.0f, B %.0f\n' \
  "$(echo "${IDLE[A]} / $SECS" | bc -l)" "$(echo "${IDLE[B]} / $SECS" | bc -l)"
printf '%-14s %14s %14s %7s\n' request "A instr/req" "B instr/req" "B/A"
for op in head_manifest get_manifest head_blob; do
  a=${RESULT[A.$op]} b=${RESULT[B.$op]}
  printf '%-14s %14.0f %14.0f %7.3f\n' "$op" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
