#!/usr/bin/env bash
# Side-by-side benchmark (issue 6): berth and the reference registry (CNCF distribution, Debian's
# docker-registry) on loopback with filesystem storage in the same directory tree, the same
# workload against both, run back to back and repeated; a table of medians with their spread,
# berth/distribution ratios, each client's own ceiling (the same workload against
# `berth-bench null-server`, which does nothing) and each berth figure as a fraction of the machine
# limit that bounds it (bench/limits.sh); plus a JSON file. Not a test; run on demand:
#
#   cargo build --release -p berth -p bench && bench/compare.sh [SIZE_MIB] [REPEAT]
#
# Workloads, against both registries unless marked berth-only:
#   push: a SIZE_MIB blob (default 1024) monolithic (POST + PUT ?digest=), chunked (PATCHes of
#         CHUNK_MIB, default 20, each with Content-Range, then PUT), streamed (one PATCH without
#         Content-Range, then PUT); CONC (8) pushes of CONC_MIB (256) at once (MB/s in all)
#   pull: the blob whole with curl right after its push and again (from the page cache), and in
#         RANGE_MIB (16) Range GETs on one keep-alive connection with bench/pull.py
#   skopeo: an image of IMAGE_LAYERS (10) random layers, IMAGE_MIB (500) in all, copied from a
#         dir: to the registry and back (SKOPEO=0 skips); against berth also `berth push` of the
#         same image from an OCI layout (berth_push: the client CLI, ECR API, 20 MiB parts)
#   small requests per second at concurrency 1, 16 and 64 for SMALL_SECS (5) each: HEAD manifest
#         by tag, GET manifest, HEAD blob, tags/list with `berth-bench load` (wrk cannot do HEAD:
#         it waits for a body after a HEAD answer with Content-Length), and GET manifest with wrk
#         once as a cross-check of the load tool
#   berth-only (ECR=0 skips), all with SigV4 signatures verified: UploadLayerPart throughput in
#         20 MiB parts (`berth-bench upload`), BatchCheckLayerAvailability and BatchGetImage
#         calls/s and parallel UploadLayerPart uploads, and the SDK's ceiling (`berth-bench ecr-rates`)
#   pull-through cache (PTC=0 skips; filesystem storage only): a cold pull through berth's
#         cache of a fresh IMAGE_LAYERS-layer IMAGE_MIB image from a distribution upstream
#         against a direct pull from it, same client (bench/pull_through.sh; its own JSON in
#         target/bench/pull_through.json)
#   replication lag (REPL=0 skips; filesystem storage only): time to COMPLETE of a fresh
#         IMAGE_LAYERS-layer REPL_MIB (1024) image at another account and another region of
#         the same berth and at a second berth over /v2 (bench/replication.sh; its own JSON in
#         target/bench/replication.json)
#   for every workload: server CPU-seconds per GiB or CPU microseconds per request, and the
#         server's peak RSS (reset between workload groups through /proc/PID/clear_refs)
# STORAGE=s3 (issue 13) runs both registries over one S3-compatible server on loopback instead:
# berth with `--metadata postgres://…` (a throwaway cluster from scripts/postgres-server, with
# fsync back on) and `--blobs s3://bench/berth`, distribution with its `s3` storage driver under
# /distribution in the same bucket, both streaming pulls through themselves (no redirects to the
# S3 server). S3_SERVER=moto (the default; pip, Python, in memory: slow, so it bounds both
# registries' transfers) or s3s-fs (`cargo install s3s-fs --features binary`: Rust,
# file-backed, far faster; but s3s-fs 0.14 answers ListMultipartUploads with NotImplemented,
# which distribution 2.8's s3 driver needs to resume every upload, so distribution's pushes
# fail there: use it to see berth's own figures and the server's ceiling). Before
# the registries, the S3 server's own ceiling is measured with the aws CLI (`aws s3 cp`, its
# 8 MiB multipart parts, 10 at a time) and curl (one plain SigV4 PUT and GET): a SIZE_MIB object
# up and down and CONC objects of CONC_MIB up at once. Those figures stand in the "limit"
# column. The skopeo workload needs no change; the ECR workloads (berth-bench, which starts its
# own filesystem berth) are skipped unless ECR=1. Needs psql/initdb (Debian's postgresql).
# The scale curve (tags/list, ListImages, DescribeImages at 10 .. 100,000 tags and with 10,000
# repositories) is `target/release/berth-bench scale`, run separately: it takes minutes.
#
# Needs docker-registry, wrk, curl, jq, bc, python3, openssl, skopeo and the aws CLI
# (apt-get install docker-registry wrk curl jq bc openssl skopeo; pip install awscli).
# Traffic stays on 127.0.0.1; data goes under $TMPDIR (or /tmp), which needs about
# 4 x SIZE_MIB + 3 x CONC x CONC_MIB + 4 x IMAGE_MIB free (some 12 GiB by default). LIMITS_JSON=file reuses a
# bench/limits.sh result instead of measuring the limits first. Writes $OUT
# (default target/bench/compare.json).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
REPEAT=${2:-3}
CHUNK_MIB=${CHUNK_MIB:-20}
RANGE_MIB=${RANGE_MIB:-16}
CONC=${CONC:-8}
CONC_MIB=${CONC_MIB:-256}
SMALL_SECS=${SMALL_SECS:-5}
IMAGE_MIB=${IMAGE_MIB:-500}
IMAGE_LAYERS=${IMAGE_LAYERS:-10}
STORAGE=${STORAGE:-fs}
case $STORAGE in fs | s3) ;; *) echo "STORAGE is fs or s3" >&2; exit 2 ;; esac
ECR=${ECR:-$([ "$STORAGE" = s3 ] && echo 0 || echo 1)}
SKOPEO=${SKOPEO:-1}
PTC=${PTC:-$([ "$STORAGE" = s3 ] && echo 0 || echo 1)}
REPL=${REPL:-$([ "$STORAGE" = s3 ] && echo 0 || echo 1)}
REPL_MIB=${REPL_MIB:-1024}
BERTH=${BERTH:-target/release/berth}
BENCH=${BENCH:-target/release/berth-bench}
OUT=${OUT:-target/bench/compare.json}
W=$(mktemp -d "${TMPDIR:-/tmp}/berth-compare.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if declare -F stop_postgres_server >/dev/null; then stop_postgres_server; fi
  rm -rf "$W"
}
trap cleanup EXIT
tools=(docker-registry wrk curl jq bc python3 aws)
[ "$SKOPEO" = 1 ] && tools+=(skopeo)
if [ "$STORAGE" = s3 ]; then
  S3_SERVER=${S3_SERVER:-moto}
  case $S3_SERVER in
    s3s-fs) tools+=(s3s-fs) ;;
    moto) python3 -c 'import moto.server, flask_cors' 2>/dev/null || { echo "needs moto (pip install 'moto[server]')" >&2; exit 2; } ;;
    *) echo "S3_SERVER is s3s-fs or moto" >&2; exit 2 ;;
  esac
fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
for bin in "$BERTH" "$BENCH"; do
  [ -x "$bin" ] || { echo "$bin not found (cargo build --release -p berth -p bench)" >&2; exit 2; }
done
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=
TICK=$(getconf CLK_TCK)
RESULTS=$W/results # lines: "<registry|ceiling> <metric> <value>"
: >"$RESULTS"
note() { echo "[$(date +%T)] $*" >&2; }
record() { echo "$1 $2 $3" >>"$RESULTS"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# Peak RSS from here on: VmHWM back to the current RSS (needs root or the process's owner).
reset_peak_rss() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }


# Debian's packaged configuration (in-memory blob descriptor cache) less its htpasswd auth, which
# bcrypt-checks every request; no access log, as berth logs only warnings here. berth checks its
# registry token on every /v2 request, so berth does the more work of the two.
# With STORAGE=s3: its s3 driver (path-style requests, as it uses with a regionendpoint; 10 MiB
# multipart chunks, its default), and no redirect to the S3 server, as berth runs here.
start_distribution() {
  local port=$1 dir=$2 driver
  driver="filesystem: {rootdirectory: $dir}"
  if [ "$STORAGE" = s3 ]; then
    driver="s3: {regionendpoint: '$S3_EP', region: us-east-1, bucket: $S3_BUCKET, rootdirectory: /distribution,
      accesskey: $AWS_ACCESS_KEY_ID, secretkey: $AWS_SECRET_ACCESS_KEY, secure: false, v4auth: true}
  redirect: {disable: true}"
  fi
  cat >"$W/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  cache: {blobdescriptor: inmemory}
  $driver
  delete: {enabled: true}
http: {addr: 127.0.0.1:$port}
YML
  # Its aws-sdk-go panics at start on an AWS_CA_BUNDLE it cannot apply to its transport; the
  # endpoint here is plain http anyway.
  env -u AWS_CA_BUNDLE docker-registry serve "$W/registry.yml" >"$W/distribution.log" 2>&1 &
  PIDS+=($!)
  DIST_PID=$!
  DIST_EP=http://127.0.0.1:$port
  for _ in $(seq 1 100); do curl -sf "$DIST_EP/v2/" >/dev/null && return 0; sleep 0.1; done
  echo "distribution did not start" >&2; exit 1
}

start_berth() {
  local dir=$1 storage=()
  [ "$STORAGE" = s3 ] && storage=(--metadata "$BERTH_TEST_POSTGRES_URL" --blobs "s3://$S3_BUCKET/berth" --blob-redirect false)
  # The per-principal quotas off (ECR's request rates, e.g. BatchGetImage's 2,000/s, would
  # throttle the small-request load, and distribution has none).
  BERTH_LOG=warn BERTH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID BERTH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    "$BERTH" serve --listen 127.0.0.1:0 --data-dir "$dir" --gc-interval-secs 0 --create-on-push "${storage[@]}" \
    --rate-limit '*=0' >"$W/berth.out" 2>"$W/berth.log" &
  PIDS+=($!)
  BERTH_PID=$!
  BERTH_EP=$(wait_listening "$W/berth.out")
  BERTH_TOKEN=$(aws ecr get-authorization-token --endpoint-url "$BERTH_EP" \
    --query 'authorizationData[0].authorizationToken' --output text)
  BERTH_AUTH="Authorization: Basic $BERTH_TOKEN"
}

start_null() {
  "$BENCH" null-server >"$W/null.out" 2>&1 &
  PIDS+=($!)
  NULL_PID=$!
  NULL_EP=$(wait_listening "$W/null.out")
}

# time_cmd VAR PID CMD... -- runs CMD, sets VAR_s (seconds), VAR_cpu (server CPU seconds) and
# VAR_client (the CPU seconds of CMD's processes: the client's own cost, which bounds what any
# server can gain where the client is the heavier of the two on this machine's cores).
# Every timed command starts with nothing dirty in the page cache: distribution does not sync
# what it stores, and the gigabytes its pushes leave to be written back would otherwise be
# written under whatever is timed next, berth's or its own.
time_cmd() {
  local var=$1 pid=$2; shift 2
  local c0 t0 t1 c1
  sync
  c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
  times >"$W/times.0" # a builtin with a redirection runs in this shell, not a subshell
  "$@" >/dev/null
  times >"$W/times.1"
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
  printf -v "${var}_s" '%s' "$(echo "$t1 - $t0" | bc -l)"
  printf -v "${var}_cpu" '%s' "$(echo "($c1 - $c0) / $TICK" | bc -l)"
  printf -v "${var}_client" '%s' "$(echo "$(children_cpu "$W/times.1") - $(children_cpu "$W/times.0")" | bc -l)"
}
# The user + system seconds of waited-for children in a `times` listing (its second line).
children_cpu() { awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"; }
mbps() { echo "$1 * 1.048576 / $2" | bc -l; }              # MIB SECONDS -> MB/s
cpu_per_gib() { echo "$1 * 1024 / $2" | bc -l; }           # CPU_S MIB -> CPU s/GiB
record_run() { # NAME METRIC MIB: throughput, server and client CPU per GiB of the last time_cmd r
  record "$1" "$2_MBps" "$(mbps "$3" "$r_s")"
  record "$1" "$2_cpu_s_per_GiB" "$(cpu_per_gib "$r_cpu" "$3")"
  record "$1" "$2_client_cpu_s_per_GiB" "$(cpu_per_gib "$r_client" "$3")"
}

location() { tr -d '\r' | sed -n 's/^location: //Ip'; }
absolute() { case "$2" in http*) echo "$2" ;; "") echo "$3" ;; *) echo "$1$2" ;; esac; }
join_query() { case "$1" in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac; }
upload_location() { # EP AUTH REPO -> absolute URL of a new upload
  absolute "$1" "$(curl -sf -D - -o /dev/null -X POST ${2:+-H "$2"} "$1/v2/$3/blobs/uploads/" | location)" "$1/v2/$3/blobs/uploads/x"
}
# No Expect: 100-continue (docker and containerd do not send it): no extra round trip.
UP=(-sf -H 'Expect:' -H 'Content-Type: application/octet-stream')

push_monolithic() { # EP AUTH REPO FILE DIGEST
  local loc
  loc=$(upload_location "$1" "$2" "$3")
  curl "${UP[@]}" -o /dev/null -X PUT ${2:+-H "$2"} -T "$4" "$(join_query "$loc" "digest=$5")"
}
push_streamed() { # EP AUTH REPO FILE DIGEST
  local loc next
  loc=$(upload_location "$1" "$2" "$3")
  next=$(curl "${UP[@]}" -D - -o /dev/null -X PATCH ${2:+-H "$2"} -H 'Transfer-Encoding: chunked' -T "$4" "$loc" | location)
  curl -sf -o /dev/null -X PUT ${2:+-H "$2"} "$(join_query "$(absolute "$1" "$next" "$loc")" "digest=$5")"
}
push_chunked() { # EP AUTH REPO DIGEST CHUNK_FILES... (one PATCH with Content-Range per chunk)
  local ep=$1 auth=$2 repo=$3 digest=$4 loc next off=0 len f
  shift 4
  loc=$(upload_location "$ep" "$auth" "$repo")
  for f in "$@"; do
    len=$(stat -c%s "$f")
    next=$(curl "${UP[@]}" -D - -o /dev/null -X PATCH ${auth:+-H "$auth"} \
      -H "Content-Range: $off-$((off + len - 1))" -T "$f" "$loc" | location)
    loc=$(absolute "$ep" "$next" "$loc")
    off=$((off + len))
  done
  curl -sf -o /dev/null -X PUT ${auth:+-H "$auth"} "$(join_query "$loc" "digest=$digest")"
}
push_concurrent() { # EP AUTH REPO_PREFIX
  local i pids=() rc=0
  for i in $(seq 1 "$CONC"); do
    push_monolithic "$1" "$2" "$3-$i" "$W/conc.$i" "${CONC_DIGESTS[$i]}" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  return $rc
}

# ---- data ------------------------------------------------------------------------------------
note "preparing data in $W"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$W/blob"
DIGEST=sha256:$(sha256sum "$W/blob" | cut -c1-64)
mkdir "$W/chunks"
split -b $((CHUNK_MIB * 1024 * 1024)) -d -a 5 "$W/blob" "$W/chunks/c."
CHUNKS=("$W"/chunks/c.*)
CONC_DIGESTS=()
for i in $(seq 1 "$CONC"); do
  head -c $((CONC_MIB * 1024 * 1024)) /dev/urandom >"$W/conc.$i"
  CONC_DIGESTS[$i]=sha256:$(sha256sum "$W/conc.$i" | cut -c1-64)
done
CFG="$W/cfg.json"; printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$CFG"
CFG_DIGEST=sha256:$(sha256sum "$CFG" | cut -c1-64)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
  "$CFG_DIGEST" "$(stat -c%s "$CFG")" "$DIGEST" "$((SIZE_MIB * 1024 * 1024))" >"$W/manifest.json"
if [ "$SKOPEO" = 1 ]; then
  # An OCI image in skopeo's dir: layout, IMAGE_LAYERS layers of random bytes (as incompressible as
  # gzip output), each stored as a "tar+gzip" layer: neither registry looks inside.
  mkdir "$W/image"
  layers=""
  for i in $(seq 1 "$IMAGE_LAYERS"); do
    head -c $((IMAGE_MIB * 1024 * 1024 / IMAGE_LAYERS)) /dev/urandom >"$W/image/layer"
    d=$(sha256sum "$W/image/layer" | cut -c1-64)
    mv "$W/image/layer" "$W/image/$d"
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c%s "$W/image/$d")}"
  done
  cp "$CFG" "$W/image/${CFG_DIGEST#sha256:}"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[%s]}' \
    "$CFG_DIGEST" "$(stat -c%s "$CFG")" "$layers" >"$W/image/manifest.json"
  echo 'Directory Transport Version: 1.1' >"$W/image/version"
  IMAGE_MIB_EXACT=$(echo "$(du -cb "$W"/image/* | tail -n1 | cut -f1) / 1048576" | bc -l)
  # The same image as an OCI layout, for `berth push`.
  skopeo copy -q "dir:$W/image" "oci:$W/oci-image:v1"
fi

# ---- S3 and PostgreSQL (STORAGE=s3) -----------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The same keys sign berth's ECR calls, berth's S3 calls and distribution's: one set of names.
S3_BUCKET=bench
# curl 7.88 signs no payload hash of its own: say it is unsigned, as S3 allows.
s3_sigv4() { curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"; }
start_s3() {
  local port
  port=$(free_port)
  S3_EP=http://127.0.0.1:$port
  export AWS_ENDPOINT_URL_S3=$S3_EP AWS_REGION=us-east-1 # berth's S3 client
  if [ "$S3_SERVER" = s3s-fs ]; then
    mkdir -p "$W/s3"
    s3s-fs --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
      --secret-key "$AWS_SECRET_ACCESS_KEY" "$W/s3" >"$W/s3.log" 2>&1 &
  else
    python3 -m moto.server -H 127.0.0.1 -p "$port" >"$W/s3.log" 2>&1 &
  fi
  PIDS+=($!)
  S3_PID=$!
  for _ in $(seq 1 100); do
    s3_sigv4 -X PUT -o /dev/null "$S3_EP/$S3_BUCKET" && return 0 # CreateBucket
    kill -0 "$S3_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "the S3 server did not start:" >&2; cat "$W/s3.log" >&2; exit 1
}
# The S3 server's own ceiling: the same sizes up and down with the aws CLI (multipart, parts in
# parallel) and with curl (one stream, one plain PUT; CONC of them at once for the concurrent
# pushes). Neither registry can pass these.
s3_ceiling() {
  local url=$S3_EP/$S3_BUCKET/ceiling/plain s3=(aws s3 --endpoint-url "$S3_EP")
  note "S3 server ($S3_SERVER) ceiling"
  time_cmd r "$S3_PID" "${s3[@]}" cp --quiet "$W/blob" "s3://$S3_BUCKET/ceiling/blob"
  record s3 s3_put_multipart_MBps "$(mbps "$SIZE_MIB" "$r_s")"
  record s3 s3_put_multipart_server_cpu_s_per_GiB "$(cpu_per_gib "$r_cpu" "$SIZE_MIB")"
  time_cmd r "$S3_PID" "${s3[@]}" cp --quiet "s3://$S3_BUCKET/ceiling/blob" - 
  record s3 s3_get_multipart_MBps "$(mbps "$SIZE_MIB" "$r_s")"
  time_cmd r "$S3_PID" s3_sigv4 -T "$W/blob" -o /dev/null "$url"
  record s3 s3_put_plain_MBps "$(mbps "$SIZE_MIB" "$r_s")"
  record s3 s3_put_plain_server_cpu_s_per_GiB "$(cpu_per_gib "$r_cpu" "$SIZE_MIB")"
  time_cmd r "$S3_PID" s3_sigv4 -o /dev/null "$url"
  record s3 s3_get_plain_MBps "$(mbps "$SIZE_MIB" "$r_s")"
  record s3 s3_get_plain_server_cpu_s_per_GiB "$(cpu_per_gib "$r_cpu" "$SIZE_MIB")"
  s3_conc() {
    local i pids=() rc=0
    for i in $(seq 1 "$CONC"); do s3_sigv4 -T "$W/conc.$i" -o /dev/null "$url.$i" & pids+=($!); done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    return $rc
  }
  time_cmd r "$S3_PID" s3_conc
  record s3 "s3_put_concurrent${CONC}x${CONC_MIB}M_MBps" "$(mbps $((CONC * CONC_MIB)) "$r_s")"
  "${s3[@]}" rm --quiet --recursive "s3://$S3_BUCKET/ceiling" >/dev/null
}
if [ "$STORAGE" = s3 ]; then
  start_s3
  # A throwaway cluster; scripts/postgres-server turns fsync off for tests, a registry's
  # metadata runs with it on here.
  . scripts/postgres-server >&2
  psql -q "$BERTH_TEST_POSTGRES_URL" -c 'ALTER SYSTEM SET fsync = on' -c 'SELECT pg_reload_conf()' >/dev/null
  s3_ceiling
fi

# ---- machine limits --------------------------------------------------------------------------
if [ "$STORAGE" = s3 ]; then
  # The bound of every transfer here is the S3 server (s3_ceiling), not the disk.
  awk '$1 == "s3" && $2 ~ /_MBps$/ { printf "%s\"%s\": %s", (n++ ? ", " : "{"), $2, $3 } END { print "}" }' \
    "$RESULTS" >"$W/limits.json"
elif [ -n "${LIMITS_JSON:-}" ]; then
  cp "$LIMITS_JSON" "$W/limits.json"
else
  note "machine limits (bench/limits.sh $SIZE_MIB)"
  OUT="$W/limits.json" BENCH="$BENCH" bench/limits.sh "$SIZE_MIB" "$(dirname "$W")"
fi

# ---- servers ---------------------------------------------------------------------------------
start_distribution 5099 "$W/dist-data"
start_berth "$W/berth-data"
start_null
note "distribution $DIST_EP (pid $DIST_PID), berth $BERTH_EP (pid $BERTH_PID), null-server $NULL_EP${S3_EP:+, S3 ($S3_SERVER) $S3_EP (pid $S3_PID)}"
ep_of() { case $1 in distribution) echo "$DIST_EP" ;; berth) echo "$BERTH_EP" ;; ceiling) echo "$NULL_EP" ;; esac; }
auth_of() { [ "$1" = berth ] && echo "$BERTH_AUTH" || true; }
pid_of() { case $1 in distribution) echo "$DIST_PID" ;; berth) echo "$BERTH_PID" ;; ceiling) echo "$NULL_PID" ;; esac; }
declare -A PEAK=([distribution]=0 [berth]=0)
peak() { # NAME GROUP: record the peak RSS since the last reset, keep the overall maximum
  local pid mib
  pid=$(pid_of "$1"); mib=$(peak_rss_mib "$pid")
  record "$1" "peak_rss_MiB_$2" "$mib"
  PEAK[$1]=$(awk -v a="$mib" -v b="${PEAK[$1]}" 'BEGIN { print (a > b) ? a : b }')
}

# ---- blob push and pull: registries back to back, REPEAT rounds; the client ceiling once ------
blob_round() { # NAME ROUND
  local name=$1 i=$2 ep auth pid repo
  ep=$(ep_of "$name"); auth=$(auth_of "$name"); pid=$(pid_of "$name")
  # A fresh repository for each push, so that no registry can answer from an existing link.
  time_cmd r "$pid" push_monolithic "$ep" "$auth" "bench/mono$i" "$W/blob" "$DIGEST"
  record_run "$name" push_monolithic "$SIZE_MIB"
  time_cmd r "$pid" push_chunked "$ep" "$auth" "bench/chunked$i" "$DIGEST" "${CHUNKS[@]}"
  record_run "$name" "push_chunked${CHUNK_MIB}M" "$SIZE_MIB"
  time_cmd r "$pid" push_streamed "$ep" "$auth" "bench/stream$i" "$W/blob" "$DIGEST"
  record_run "$name" push_streamed "$SIZE_MIB"
  local url="$ep/v2/bench/stream$i/blobs/$DIGEST"
  [ "$name" = ceiling ] && url="$ep/bytes/$((SIZE_MIB * 1024 * 1024))"
  # The first pull follows the push at once: berth stages parts with O_DIRECT, so a new blob
  # is read from the disk (ahead of the sender); distribution wrote it through the page cache.
  # The second is served from the cache, as most pulls are.
  time_cmd r "$pid" curl -sf ${auth:+-H "$auth"} -o /dev/null "$url"
  record_run "$name" pull_after_push "$SIZE_MIB"
  time_cmd r "$pid" curl -sf ${auth:+-H "$auth"} -o /dev/null "$url"
  record_run "$name" pull "$SIZE_MIB"
  # Ranges one after another on one keep-alive connection (bench/pull.py), not one curl each.
  time_cmd r "$pid" python3 bench/pull.py "$url" "$auth" $((RANGE_MIB * 1024 * 1024))
  record_run "$name" "pull_range${RANGE_MIB}M" "$SIZE_MIB"
}
conc_round() { # NAME ROUND
  local name=$1 i=$2 pid
  pid=$(pid_of "$name")
  time_cmd r "$pid" push_concurrent "$(ep_of "$name")" "$(auth_of "$name")" "bench/conc$i"
  record_run "$name" "push_concurrent${CONC}x${CONC_MIB}M" $((CONC * CONC_MIB))
}
skopeo_round() { # NAME ROUND
  local name=$1 i=$2 pid ep creds=()
  pid=$(pid_of "$name"); ep=$(ep_of "$name")
  [ "$name" = berth ] && creds=(--dest-creds "AWS:$BERTH_PASSWORD")
  # skopeo remembers where it has seen each blob (its blob-info cache) and mounts it from
  # there instead of uploading it: every round after the first, and every run after the
  # first, would time a mount. The cache has no flag; it is only a cache, so it goes.
  rm -f /var/lib/containers/cache/blob-info-cache-v1.{boltdb,sqlite} \
    "${XDG_DATA_HOME:-$HOME/.local/share}"/containers/cache/blob-info-cache-v1.{boltdb,sqlite}
  time_cmd r "$pid" skopeo copy -q --dest-tls-verify=false "${creds[@]}" "dir:$W/image" "docker://${ep#http://}/bench/image$i:v1"
  record_run "$name" skopeo_push "$IMAGE_MIB_EXACT"
  if [ "$name" = berth ]; then
    # The client CLI, the same image, a fresh repository (ECR checks blobs per repository).
    aws ecr create-repository --endpoint-url "$ep" --repository-name "bench/client$i" >/dev/null
    time_cmd r "$pid" "$BERTH" push -q --endpoint-url "$ep" "oci:$W/oci-image:v1" "bench/client$i:v1"
    record_run "$name" berth_push "$IMAGE_MIB_EXACT"
  fi
  creds=()
  [ "$name" = berth ] && creds=(--src-creds "AWS:$BERTH_PASSWORD")
  rm -rf "$W/pulled"
  time_cmd r "$pid" skopeo copy -q --src-tls-verify=false "${creds[@]}" "docker://${ep#http://}/bench/image$i:v1" "dir:$W/pulled"
  record_run "$name" skopeo_pull "$IMAGE_MIB_EXACT"
  rm -rf "$W/pulled"
}

for name in distribution berth; do reset_peak_rss "$(pid_of $name)"; done
# Each round: distribution, berth, then the same clients against null-server (their ceiling).
for i in $(seq 1 "$REPEAT"); do
  for name in distribution berth ceiling; do note "blob push/pull, $name, round $i/$REPEAT"; blob_round "$name" "$i"; done
done
for name in distribution berth; do peak "$name" blob; reset_peak_rss "$(pid_of $name)"; done

for i in $(seq 1 "$REPEAT"); do
  for name in distribution berth ceiling; do note "$CONC concurrent pushes, $name, round $i/$REPEAT"; conc_round "$name" "$i"; done
done
for name in distribution berth; do peak "$name" concurrent; reset_peak_rss "$(pid_of $name)"; done

if [ "$SKOPEO" = 1 ]; then
  BERTH_PASSWORD=$(aws ecr get-login-password --endpoint-url "$BERTH_EP")
  for i in $(seq 1 "$REPEAT"); do
    for name in distribution berth; do note "skopeo $IMAGE_LAYERS-layer image, $name, round $i/$REPEAT"; skopeo_round "$name" "$i"; done
  done
  for name in distribution berth; do peak "$name" skopeo; reset_peak_rss "$(pid_of $name)"; done
fi

# ---- small requests ---------------------------------------------------------------------------
for name in distribution berth; do
  ep=$(ep_of "$name"); auth=$(auth_of "$name")
  push_monolithic "$ep" "$auth" bench/small "$CFG" "$CFG_DIGEST"
  push_monolithic "$ep" "$auth" bench/small "$W/conc.1" "${CONC_DIGESTS[1]}"
  sed "s/$DIGEST/${CONC_DIGESTS[1]}/; s/\"size\":$((SIZE_MIB * 1024 * 1024))}/\"size\":$((CONC_MIB * 1024 * 1024))}/" \
    "$W/manifest.json" >"$W/small.json"
  curl -sf -o /dev/null -X PUT ${auth:+-H "$auth"} -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$W/small.json" "$ep/v2/bench/small/manifests/v1"
done
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
small_run() { # NAME OP C
  local name=$1 op=$2 c=$3 ep auth method path out
  ep=$(ep_of "$name"); auth=$(auth_of "$name")
  case $op in
    head_manifest) method=HEAD path=/v2/bench/small/manifests/v1 ;;
    get_manifest) method=GET path=/v2/bench/small/manifests/v1 ;;
    head_blob) method=HEAD path=/v2/bench/small/blobs/$CFG_DIGEST ;;
    tags_list) method=GET path=/v2/bench/small/tags/list ;;
  esac
  out=$("$BENCH" load -m "$method" -c "$c" -d "$SMALL_SECS" --server-pid "$(pid_of "$name")" \
    ${auth:+-H "$auth"} -H "$ACCEPT" "$ep$path" 2>"$W/load.err") || {
    echo "berth-bench load against $name ($op c=$c) failed:" >&2; cat "$W/load.err" >&2; exit 1; }
  if [ "$(jq .errors <<<"$out")" != 0 ]; then
    echo "$op against $name saw errors: $out" >&2; exit 1
  fi
  record "$name" "${op}_rps_c$c" "$(jq .requests_per_s <<<"$out")"
  record "$name" "${op}_cpu_us_per_req_c$c" "$(jq .server_cpu_us_per_request <<<"$out")"
  record "$name" "${op}_client_cpu_us_per_req_c$c" "$(jq .client_cpu_us_per_request <<<"$out")"
}
OPS=(head_manifest get_manifest head_blob tags_list)
for c in 1 16 64; do
  for i in $(seq 1 "$REPEAT"); do
    for op in "${OPS[@]}"; do
      for name in distribution berth ceiling; do note "$op c=$c, $name, round $i/$REPEAT"; small_run "$name" "$op" "$c"; done
    done
  done
  # wrk as a cross-check of berth-bench load (GET only: wrk hangs on HEAD).
  for name in distribution berth ceiling; do
    ep=$(ep_of "$name"); auth=$(auth_of "$name")
    wrk -t $((c < 2 ? 1 : 2)) -c "$c" -d "${SMALL_SECS}s" ${auth:+-H "$auth"} -H "$ACCEPT" \
      "$ep/v2/bench/small/manifests/v1" >"$W/wrk.txt" 2>&1 || true
    rps=$(awk '/Requests\/sec/ {print $2}' "$W/wrk.txt")
    if grep -q "Non-2xx" "$W/wrk.txt" || [ -z "$rps" ]; then
      echo "wrk against $name failed or saw errors:" >&2; cat "$W/wrk.txt" >&2; exit 1
    fi
    record "$name" "get_manifest_wrk_rps_c$c" "$rps"
  done
done
for name in distribution berth; do peak "$name" small; record "$name" peak_rss_MiB "${PEAK[$name]}"; done

# ---- berth only: the ECR API ------------------------------------------------------------------
if [ "$ECR" = 1 ]; then
  note "berth-bench: UploadLayerPart, ${SIZE_MIB} MiB in 20 MiB parts, $REPEAT runs"
  "$BENCH" --berth "$BERTH" --sizes "${SIZE_MIB}M" --repeat "$REPEAT" --verify-signatures \
    --json "$W/upload.json" >&2
  note "berth-bench ecr-rates"
  "$BENCH" ecr-rates --berth "$BERTH" --duration "$SMALL_SECS" --parallel-uploads 4 \
    --upload-size "${CONC_MIB}M" --json "$W/ecr-rates.json" >&2
fi

# ---- report -----------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
python3 - "$W" "$OUT" "$SIZE_MIB" "$REPEAT" "$STORAGE" "${S3_SERVER:-}" <<'PY'
import json, os, statistics, sys
w, out, size_mib, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
storage, s3_server = sys.argv[5], sys.argv[6]
vals = {}
order = []
s3_ceiling = {}
for line in open(os.path.join(w, "results")):
    who, metric, value = line.split()
    if who == "s3":  # the S3 server's own ceiling, measured once (STORAGE=s3)
        s3_ceiling[metric] = float(value)
        continue
    if metric not in vals:
        vals[metric] = {}
        order.append(metric)
    vals[metric].setdefault(who, []).append(float(value))
limits = json.load(open(os.path.join(w, "limits.json")))
def load(name):
    p = os.path.join(w, name)
    return json.load(open(p)) if os.path.exists(p) else None
upload, rates = load("upload.json"), load("ecr-rates.json")
if upload:
    r = upload["results"][0]
    vals["ecr_upload_layer_part_MBps"] = {"berth": [r["size_bytes"] / x["seconds"] / 1e6 for x in r["runs"]]}
    vals["ecr_upload_layer_part_cpu_s_per_GiB"] = {"berth": [x["server_cpu_seconds"] * 2**30 / r["size_bytes"] for x in r["runs"]]}
    vals["ecr_upload_layer_part_peak_rss_MiB"] = {"berth": [x["server_peak_rss_kib"] / 1024 for x in r["runs"]]}
    order += ["ecr_upload_layer_part_MBps", "ecr_upload_layer_part_cpu_s_per_GiB", "ecr_upload_layer_part_peak_rss_MiB"]
if rates:
    for k, v in rates["berth"].items():
        ceil = rates["client_ceiling_null_server"] or {}
        if "calls_per_s" in v:
            m = "ecr_" + k
            vals[m] = {"berth": [v["calls_per_s"]]}
            if k in ceil:
                vals[m]["ceiling"] = [ceil[k]["calls_per_s"]]
            vals["ecr_" + k.replace("_per_s_", "_cpu_us_per_call_")] = {"berth": [v["server_cpu_us_per_call"]]}
            order += [m, "ecr_" + k.replace("_per_s_", "_cpu_us_per_call_")]
        else:
            m = "ecr_parallel%dx_upload_layer_part_MBps" % v["uploads"]
            vals[m] = {"berth": [v["mb_per_s"]]}
            if k in ceil:
                vals[m]["ceiling"] = [ceil[k]["mb_per_s"]]
            vals[m.replace("_MBps", "_cpu_s_per_GiB")] = {"berth": [v["server_cpu_s_per_gib"]]}
            vals[m.replace("_MBps", "_peak_rss_MiB")] = {"berth": [v["server_peak_rss_mib"]]}
            order += [m, m.replace("_MBps", "_cpu_s_per_GiB"), m.replace("_MBps", "_peak_rss_MiB")]
# The machine limit that bounds each throughput figure.
def limit_of_s3(m):
    # Over S3 the server under both registries bounds every transfer: the faster of its two
    # clients' figures (one plain stream, or multipart parts in parallel).
    if m.startswith("push_concurrent"):
        return ("S3 server, concurrent PUTs", max(v for k, v in limits.items() if k.startswith("s3_put")))
    if m.startswith("push") or m.startswith("skopeo_push"):
        return ("S3 server PUT", max(limits["s3_put_plain_MBps"], limits["s3_put_multipart_MBps"]))
    if m.startswith("pull") or m.startswith("skopeo_pull"):
        return ("S3 server GET", max(limits["s3_get_plain_MBps"], limits["s3_get_multipart_MBps"]))
    return None
if storage != "s3":
    b64_sha = 1 / (1 / limits["base64_decode_MBps"] + 1 / limits["sha256_MBps"])
def limit_of(m):
    if not m.endswith("_MBps"):
        return None
    if storage == "s3":
        return limit_of_s3(m)
    if (m.startswith("ecr_") and "upload" in m) or m.startswith("berth_push"):
        return ("base64+sha256 on one core", b64_sha)
    if m.startswith("push") or m.startswith("skopeo_push"):
        # The faster durable write: through the page cache, or past it as berth stages parts.
        best = max(limits["disk_write_fdatasync_MBps"], limits.get("disk_write_direct_MBps", 0))
        return ("durable disk write", best)
    if m.startswith("pull_after_push") and "disk_read_MBps" in limits:
        # berth reads a blob it has just staged past the page cache from the disk.
        return ("disk read", limits["disk_read_MBps"])
    if m.startswith("pull") or m.startswith("skopeo_pull"):
        # berth serves whole and ranged blobs with sendfile on plain HTTP/1.
        return ("loopback sendfile", limits["loopback_sendfile_MBps"])
    return None
def stat(xs):
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}
def fmt(s):
    if not s:
        return "-"
    med = s["median"]
    spread = (s["max"] - s["min"]) / 2 / med * 100 if med and s["n"] > 1 else 0
    num = f"{med:.1f}" if abs(med) < 1e5 else f"{med:.0f}"
    return num + (f" ±{spread:.0f}%" if s["n"] > 1 else "")
report = {}
print(f"\n{'metric':<50} {'distribution':>16} {'berth':>16} {'b/d':>6} {'client ceiling':>14} {'berth/limit':>12}  limit")
for m in order:
    v = vals[m]
    d, b, c = stat(v.get("distribution")), stat(v.get("berth")), stat(v.get("ceiling"))
    ratio = b["median"] / d["median"] if b and d and d["median"] else None
    lim = limit_of(m)
    frac = b["median"] / lim[1] if b and lim else None
    row = {"distribution": d, "berth": b, "ratio": ratio, "client_ceiling": c}
    if lim:
        row.update({"limit": lim[0], "limit_MBps": lim[1], "berth_fraction_of_limit": frac})
    report[m] = row
    cells = [fmt(d), fmt(b), f"{ratio:.2f}" if ratio else "-",
             fmt(c) if c and "cpu" not in m else "-",
             f"{frac:.2f}" if frac else "-", lim[0] if lim else ""]
    print(f"{m:<50} {cells[0]:>16} {cells[1]:>16} {cells[2]:>6} {cells[3]:>14} {cells[4]:>12}  {cells[5]}")
if storage == "s3":
    print(f"\nS3 server ({s3_server}) ceiling: " + ", ".join(f"{k} {v:.1f}" for k, v in s3_ceiling.items()))
else:
    print("\nmachine limits (MB/s): " + ", ".join(f"{k} {v:.0f}" for k, v in limits.items() if k.endswith("MBps")))
json.dump({"size_mib": size_mib, "repeat": repeat, "storage": storage, "s3_server": s3_server or None,
           "s3_ceiling": s3_ceiling or None, "limits": limits, "metrics": report,
           "upload_layer_part": upload, "ecr_rates": rates}, open(out, "w"), indent=1)
print(f"medians of {repeat} rounds (± half the min-max spread); client ceiling = the same client "
      f"against berth-bench null-server; JSON in {out}")
PY

# ---- pull-through cache -----------------------------------------------------------------------
if [ "$PTC" = 1 ]; then
  note "pull-through cache: cold pull of a $IMAGE_LAYERS-layer ${IMAGE_MIB} MiB image vs direct, $REPEAT rounds"
  BERTH="$BERTH" IMAGE_LAYERS="$IMAGE_LAYERS" OUT="$(dirname "$OUT")/pull_through.json" \
    bench/pull_through.sh "$IMAGE_MIB" "$REPEAT"
fi

# ---- replication lag --------------------------------------------------------------------------
if [ "$REPL" = 1 ]; then
  note "replication: time to COMPLETE of a $IMAGE_LAYERS-layer ${REPL_MIB} MiB image, $REPEAT rounds"
  BERTH="$BERTH" IMAGE_LAYERS="$IMAGE_LAYERS" OUT="$(dirname "$OUT")/replication.json" \
    bench/replication.sh "$REPL_MIB" "$REPEAT"
fi
