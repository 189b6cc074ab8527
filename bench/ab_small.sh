#!/usr/bin/env bash
# A/B of two berth builds on small /v2 requests: a regression check for changes on the pull
# path (issue 15 asks that pull-time recording keep the small-request figures within 10%).
# Both builds serve the same tiny image (an OCI manifest, a config blob) from data directories
# of their own, on loopback, side by side, with the per-principal quotas off (ECR's 2,000
# BatchGetImage/s would throttle the load); `berth-bench load` runs each request kind against A
# then B (then B then A in the next round, so neither always goes first) for SECS seconds at
# concurrency C, REPEAT rounds. Prints the medians of requests/s and of server CPU
# microseconds per request, and B/A. Not a test; run on demand, on a quiet machine:
#
#   cargo build --release -p berth -p bench
#   bench/ab_small.sh OLD/berth NEW/berth [REPEAT] [SECS]      (C: concurrencies, "1 16")
#
# BENCH=target/release/berth-bench by default. Needs curl, jq, sha256sum and the aws CLI.
# SERVER_CPUS=0 CLIENT_CPUS=1 pin both servers and the load tool with taskset: at concurrency 1
# on a 2-core VM, where the scheduler puts the server's and the client's threads moves
# requests/s by 30% between runs of one build; pinned, the same build repeats within a few %.
# bench/ab_instructions.sh counts instructions per request, which no scheduling moves.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

A=$1 B=$2 REPEAT=${3:-5} SECS=${4:-3}
C=${C:-1 16}
BENCH=${BENCH:-target/release/berth-bench}
SERVER_PIN=() CLIENT_PIN=()
[ -n "${SERVER_CPUS:-}" ] && SERVER_PIN=(taskset -c "$SERVER_CPUS")
[ -n "${CLIENT_CPUS:-}" ] && CLIENT_PIN=(taskset -c "$CLIENT_CPUS")
W=$(mktemp -d "${TMPDIR:-/tmp}/berth-ab.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1

tiny_image "$W"

declare -A EP AUTH PID
for name in A B; do
  bin=${!name}
  mkdir -p "$W/$name"
  BERTH_LOG=warn BERTH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID BERTH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    "${SERVER_PIN[@]}" "$bin" serve --listen 127.0.0.1:0 --data-dir "$W/$name" --gc-interval-secs 0 --create-on-push \
    --rate-limit '*=0' \
    >"$W/$name.out" 2>"$W/$name.log" &
  PIDS+=($!)
  PID[$name]=$!
  EP[$name]=$(wait_listening "$W/$name.out")
  AUTH[$name]=$(berth_basic_auth "${EP[$name]}")
  push_tiny_image "${EP[$name]}" "${AUTH[$name]}"
done

ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
run() { # NAME OP C -> "rps cpu_us"
  local method path out
  case $2 in
    get_manifest) method=GET path=/v2/bench/small/manifests/v1 ;;
    head_manifest) method=HEAD path=/v2/bench/small/manifests/v1 ;;
    head_blob) method=HEAD path=/v2/bench/small/blobs/$CFG_DIGEST ;;
  esac
  out=$("${CLIENT_PIN[@]}" "$BENCH" load -m "$method" -c "$3" -d "$SECS" --server-pid "${PID[$1]}" \
    -H "${AUTH[$1]}" -H "$ACCEPT" "${EP[$1]}$path")
  [ "$(jq .errors <<<"$out")" = 0 ] || { echo "$2 against $1 saw errors: $out" >&2; exit 1; }
  echo "$(jq .requests_per_s <<<"$out") $(jq .server_cpu_us_per_request <<<"$out")"
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

printf '%-14s %4s %12s %12s %7s %12s %12s %7s\n' request c "A req/s" "B req/s" "B/A" "A cpu us" "B cpu us" "B/A"
for op in get_manifest head_manifest head_blob; do
  for c in $C; do
    : >"$W/A.rps"; : >"$W/B.rps"; : >"$W/A.cpu"; : >"$W/B.cpu"
    for i in $(seq 1 "$REPEAT"); do
      order="A B"; [ $((i % 2)) = 0 ] && order="B A"
      for name in $order; do
        # A command substitution, not `< <(...)`: a failed run then stops the script (and its
        # EXIT trap stops both servers) instead of being swallowed.
        out=$(run "$name" "$op" "$c")
        read -r rps cpu <<<"$out"
        echo "$rps" >>"$W/$name.rps"; echo "$cpu" >>"$W/$name.cpu"
      done
    done
    ar=$(median <"$W/A.rps"); br=$(median <"$W/B.rps")
    ac=$(median <"$W/A.cpu"); bc=$(median <"$W/B.cpu")
    printf '%-14s %4s %12.0f %12.0f %7.3f %12.1f %12.1f %7.3f\n' "$op" "$c" "$ar" "$br" \
      "$(echo "$br / $ar" | bc -l)" "$ac" "$bc" "$(echo "$bc / $ac" | bc -l)"
  done
done
