#!/usr/bin/env bash
# Side-by-side benchmark: berth and the reference registry (CNCF distribution, Debian's
# docker-registry) on loopback with filesystem storage, the same workload against both, and a
# table of figures with berth/distribution ratios (plus a JSON file). Not a test; run on demand:
#
#   cargo build --release -p berth && bench/compare.sh [SIZE_MIB] [REPEAT]
#
# Workloads (first version): a SIZE_MIB blob (default 1024) pushed monolithically (POST +
# PUT ?digest) and streamed (one PATCH without Content-Range), pulled whole and in 16 MiB
# ranges, and GET manifest by tag with wrk at concurrency 1, 16 and 64 (wrk cannot do HEAD); server CPU-seconds
# and peak RSS for each. Needs docker-registry, wrk, curl and the aws CLI (apt-get install
# docker-registry wrk curl; pip install awscli). Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
REPEAT=${2:-3}
BERTH=${BERTH:-target/release/berth}
OUT=${OUT:-target/bench/compare.json}
W=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
for tool in docker-registry wrk curl aws; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=
TICK=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

start_distribution() {
  local port=$1 dir=$2
  cat >"$W/registry.yml" <<YML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $dir}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$port}
YML
  docker-registry serve "$W/registry.yml" >"$W/distribution.log" 2>&1 &
  PIDS+=($!)
  DIST_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return 0; sleep 0.1; done
  echo "distribution did not start" >&2; exit 1
}

start_berth() {
  local dir=$1
  mkfifo "$W/ready"
  BERTH_LOG=warn BERTH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID BERTH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    "$BERTH" serve --listen 127.0.0.1:0 --data-dir "$dir" --gc-interval-secs 0 >"$W/ready" 2>"$W/berth.log" &
  PIDS+=($!)
  BERTH_PID=$!
  read -r line <"$W/ready"; rm "$W/ready"
  BERTH_EP=${line#listening on }
  aws ecr create-repository --repository-name bench/blob --endpoint-url "$BERTH_EP" >/dev/null
  BERTH_AUTH="Authorization: Basic $(aws ecr get-authorization-token --endpoint-url "$BERTH_EP" \
    --query 'authorizationData[0].authorizationToken' --output text)"
}

# time_cmd VAR PID CMD... -- runs CMD, sets VAR_s (seconds) and VAR_cpu (server CPU seconds).
time_cmd() {
  local var=$1 pid=$2; shift 2
  local c0 t0 t1 c1
  c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
  printf -v "${var}_s" '%s' "$(echo "$t1 - $t0" | bc -l)"
  printf -v "${var}_cpu" '%s' "$(echo "($c1 - $c0) / $TICK" | bc -l)"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

upload_location() { # EP AUTH-HEADER REPO -> Location of a new upload
  curl -sf -D - -o /dev/null -X POST ${2:+-H "$2"} "$1/v2/$3/blobs/uploads/" | tr -d '\r' | sed -n 's/^location: //Ip'
}
absolute() { case "$2" in http*) echo "$2" ;; *) echo "$1$2" ;; esac; }
join_query() { case "$1" in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac; }

head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$W/blob"
DIGEST=sha256:$(sha256sum "$W/blob" | cut -c1-64)
MANIFEST_CFG="$W/cfg.json"; printf '{"architecture":"amd64","os":"linux"}' >"$MANIFEST_CFG"
CFG_DIGEST=sha256:$(sha256sum "$MANIFEST_CFG" | cut -c1-64)

# run_workloads NAME EP AUTH PID -> appends "NAME metric value" lines to $W/results
run_workloads() {
  local name=$1 ep=$2 auth=$3 pid=$4 repo=bench/blob i loc
  for i in $(seq 1 "$REPEAT"); do
    # Monolithic push: POST + PUT ?digest= with the body. A fresh repository each time, so a
    # registry cannot answer from an existing blob.
    repo="bench/mono$i"
    [ "$name" = berth ] && aws ecr create-repository --repository-name "$repo" --endpoint-url "$ep" >/dev/null
    loc=$(absolute "$ep" "$(upload_location "$ep" "$auth" "$repo")")
    time_cmd r "$pid" curl -sf -X PUT ${auth:+-H "$auth"} -H 'Content-Type: application/octet-stream' \
      -T "$W/blob" "$(join_query "$loc" "digest=$DIGEST")"
    echo "$name push_monolithic_MBps $(echo "$SIZE_MIB * 1.048576 / $r_s" | bc -l)" >>"$W/results"
    echo "$name push_cpu_s_per_GiB $(echo "$r_cpu * 1024 / $SIZE_MIB" | bc -l)" >>"$W/results"
    # Streamed push: one PATCH without Content-Range, then PUT ?digest=.
    repo="bench/stream$i"
    [ "$name" = berth ] && aws ecr create-repository --repository-name "$repo" --endpoint-url "$ep" >/dev/null
    loc=$(absolute "$ep" "$(upload_location "$ep" "$auth" "$repo")")
    stream_push() {
      local next
      next=$(curl -sf -D - -o /dev/null -X PATCH ${auth:+-H "$auth"} -H 'Transfer-Encoding: chunked' \
        -H 'Content-Type: application/octet-stream' -T "$W/blob" "$loc" | tr -d '\r' | sed -n 's/^location: //Ip')
      curl -sf -X PUT ${auth:+-H "$auth"} "$(join_query "$(absolute "$ep" "$next")" "digest=$DIGEST")"
    }
    time_cmd r "$pid" stream_push
    echo "$name push_streamed_MBps $(echo "$SIZE_MIB * 1.048576 / $r_s" | bc -l)" >>"$W/results"
    # Pull, whole and in 16 MiB ranges.
    time_cmd r "$pid" curl -sf ${auth:+-H "$auth"} -o /dev/null "$ep/v2/$repo/blobs/$DIGEST"
    echo "$name pull_MBps $(echo "$SIZE_MIB * 1.048576 / $r_s" | bc -l)" >>"$W/results"
    echo "$name pull_cpu_s_per_GiB $(echo "$r_cpu * 1024 / $SIZE_MIB" | bc -l)" >>"$W/results"
    ranged_pull() {
      local off=0 step=$((16 * 1024 * 1024)) total=$((SIZE_MIB * 1024 * 1024))
      while [ "$off" -lt "$total" ]; do
        curl -sf ${auth:+-H "$auth"} -r "$off-$((off + step - 1))" -o /dev/null "$ep/v2/$repo/blobs/$DIGEST"
        off=$((off + step))
      done
    }
    time_cmd r "$pid" ranged_pull
    echo "$name pull_range16M_MBps $(echo "$SIZE_MIB * 1.048576 / $r_s" | bc -l)" >>"$W/results"
  done
  # A manifest to HEAD: config blob + the big blob, tagged v1 in the last repository.
  loc=$(absolute "$ep" "$(upload_location "$ep" "$auth" "$repo")")
  curl -sf -X PUT ${auth:+-H "$auth"} -H 'Content-Type: application/octet-stream' --data-binary @"$MANIFEST_CFG" \
    "$(join_query "$loc" "digest=$CFG_DIGEST")" >/dev/null
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
    "$CFG_DIGEST" "$(stat -c%s "$MANIFEST_CFG")" "$DIGEST" "$((SIZE_MIB * 1024 * 1024))" >"$W/manifest.json"
  curl -sf -X PUT ${auth:+-H "$auth"} -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$W/manifest.json" "$ep/v2/$repo/manifests/v1" >/dev/null
  local c
  for c in 1 16 64; do
    local c0 c1 rps
    c0=$(cpu_ticks "$pid")
    wrk -t $((c < 2 ? 1 : 2)) -c "$c" -d 5s ${auth:+-H "$auth"} -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
      "$ep/v2/$repo/manifests/v1" >"$W/wrk-$name-$c.txt" 2>&1 || true
    rps=$(awk '/Requests\/sec/ {print $2}' "$W/wrk-$name-$c.txt")
    if grep -q "Non-2xx" "$W/wrk-$name-$c.txt" || [ -z "$rps" ]; then
      echo "wrk against $name failed or saw errors:" >&2; cat "$W/wrk-$name-$c.txt" >&2; exit 1
    fi
    c1=$(cpu_ticks "$pid")
    echo "$name get_manifest_rps_c$c $rps" >>"$W/results"
    echo "$name get_manifest_cpu_us_per_req_c$c $(echo "($c1 - $c0) / $TICK / ($rps * 5) * 1000000" | bc -l)" >>"$W/results"
  done
  echo "$name peak_rss_MiB $(peak_rss_mib "$pid")" >>"$W/results"
}

: >"$W/results"
start_distribution 5099 "$W/dist-data"
run_workloads distribution http://127.0.0.1:5099 "" "$DIST_PID"
start_berth "$W/berth-data"
run_workloads berth "$BERTH_EP" "$BERTH_AUTH" "$BERTH_PID"

mkdir -p "$(dirname "$OUT")"
printf '%-36s %14s %14s %8s\n' metric distribution berth ratio
json="{"
sep=""
for m in $(awk '{print $2}' "$W/results" | awk '!seen[$0]++'); do
  d=$(awk -v m="$m" '$1 == "distribution" && $2 == m {print $3}' "$W/results" | median)
  b=$(awk -v m="$m" '$1 == "berth" && $2 == m {print $3}' "$W/results" | median)
  ratio=$(awk -v d="$d" -v b="$b" 'BEGIN { if (d > 0) printf "%.3f", b / d; else print 0 }')
  printf '%-36s %14.1f %14.1f %8.2f\n' "$m" "$d" "$b" "$ratio"
  json+="$sep\"$m\": {\"distribution\": $d, \"berth\": $b, \"ratio\": $ratio}"
  sep=", "
done
echo "$json}" >"$OUT"
echo "medians of $REPEAT runs for the blob workloads; JSON in $OUT"
