#!/usr/bin/env bash
# Pull-through cache benchmark (issue 16): a cold pull through berth's cache of an image of
# IMAGE_LAYERS random layers (IMAGE_MIB in all) from an upstream CNCF distribution (Debian's
# docker-registry) on loopback, against a direct pull of the same image from that upstream,
# with the same client (skopeo, into a dir: layout). Each round pushes a fresh image (new
# random layers) so that berth's pull is cold: manifest and every layer come from the
# upstream, streamed to skopeo while berth stores them. The two pulls alternate which goes
# first. Goal (issue 16): the cold pull through the cache takes at most 1.2x the direct pull.
#
#   bench/pull_through.sh [IMAGE_MIB] [REPEAT]     (bench/compare.sh runs it with PTC=1)
#
# BERTH=target/release/berth by default. Needs docker-registry, skopeo, the aws CLI, python3.
# Traffic stays on 127.0.0.1; data under $TMPDIR (or /tmp), about 4 x IMAGE_MIB. Writes $OUT
# (default target/bench/pull_through.json).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE_MIB=${1:-500}
REPEAT=${2:-3}
IMAGE_LAYERS=${IMAGE_LAYERS:-10}
BERTH=${BERTH:-target/release/berth}
OUT=${OUT:-target/bench/pull_through.json}
for tool in docker-registry skopeo aws python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ -x "$BERTH" ] || { echo "$BERTH not found (cargo build --release -p berth)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/berth-ptc-bench.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  [ "$rc" = 0 ] || tail -n 20 "$W"/distribution.log "$W"/berth.log >&2 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=
export AWS_CONFIG_FILE="$W/aws-config" AWS_SHARED_CREDENTIALS_FILE="$W/aws-credentials" AWS_EC2_METADATA_DISABLED=true
: >"$AWS_CONFIG_FILE"; : >"$AWS_SHARED_CREDENTIALS_FILE"
export REGISTRY_AUTH_FILE="$W/auth.json"
note() { echo "[$(date +%T)] $*" >&2; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$W/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  cache: {blobdescriptor: inmemory}
  filesystem: {rootdirectory: $W/distribution}
http: {addr: 127.0.0.1:$port}
YML
# REGISTRY_* variables override its configuration (REGISTRY_AUTH_FILE, for skopeo, would be
# taken as its `auth` section).
env -u AWS_CA_BUNDLE -u REGISTRY_AUTH_FILE docker-registry serve "$W/registry.yml" >"$W/distribution.log" 2>&1 &
PIDS+=($!)
UP=127.0.0.1:$port
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://$UP/v2/" && break; sleep 0.1; done
curl -sf -o /dev/null "http://$UP/v2/" || { echo "distribution did not start" >&2; exit 1; }

BERTH_LOG=warn BERTH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID BERTH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
  "$BERTH" serve --listen 127.0.0.1:0 --data-dir "$W/berth" --gc-interval-secs 0 >"$W/berth.out" 2>"$W/berth.log" &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q '^listening on ' "$W/berth.out" 2>/dev/null && break; sleep 0.1; done
EP=$(sed -n 's/^listening on //p' "$W/berth.out" | head -n1)
# The URL goes in through --cli-input-json: the aws CLI v1 would fetch it as a parameter file.
aws ecr create-pull-through-cache-rule --endpoint-url "$EP" \
  --cli-input-json "{\"ecrRepositoryPrefix\": \"upstream\", \"upstreamRegistryUrl\": \"http://$UP\"}" >/dev/null
PW=$(aws ecr get-login-password --endpoint-url "$EP")

# A fresh image in skopeo's dir: layout (random layers stored as tar+gzip: nobody looks inside).
make_image() {
  rm -rf "$W/image"; mkdir "$W/image"
  local layers="" d i
  for i in $(seq 1 "$IMAGE_LAYERS"); do
    head -c $((IMAGE_MIB * 1024 * 1024 / IMAGE_LAYERS)) /dev/urandom >"$W/image/layer"
    d=$(sha256sum "$W/image/layer" | cut -c1-64)
    mv "$W/image/layer" "$W/image/$d"
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c%s "$W/image/$d")}"
  done
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"created":"%s"}' "$(date +%s%N)" >"$W/cfg"
  d=$(sha256sum "$W/cfg" | cut -c1-64); mv "$W/cfg" "$W/image/$d"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[%s]}' \
    "$d" "$(stat -c%s "$W/image/$d")" "$layers" >"$W/image/manifest.json"
  echo 'Directory Transport Version: 1.1' >"$W/image/version"
}
# seconds of one command
timed() { local t0 t1; sync; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
direct() { rm -rf "$W/direct"; timed skopeo copy -q --src-tls-verify=false "docker://$UP/bench/img$1:v1" "dir:$W/direct"; }
cached() { rm -rf "$W/cached"; timed skopeo copy -q --src-tls-verify=false --src-creds "AWS:$PW" "docker://${EP#http://}/upstream/bench/img$1:v1" "dir:$W/cached"; }

: >"$W/results"
for i in $(seq 1 "$REPEAT"); do
  note "round $i/$REPEAT: a fresh ${IMAGE_LAYERS}-layer image of ${IMAGE_MIB} MiB pushed to the upstream"
  make_image
  skopeo copy -q --dest-tls-verify=false "dir:$W/image" "docker://$UP/bench/img$i:v1"
  if [ $((i % 2)) = 1 ]; then d=$(direct "$i"); c=$(cached "$i"); else c=$(cached "$i"); d=$(direct "$i"); fi
  # What came through the cache is what the upstream serves, byte for byte (skopeo compressed
  # the random layers on the push, so the upstream's image is not the dir: pushed).
  diff -r "$W/direct" "$W/cached" >/dev/null || { echo "the image differs through the cache" >&2; exit 1; }
  note "direct ${d}s, cold through the cache ${c}s"
  echo "$d $c" >>"$W/results"
done

mkdir -p "$(dirname "$OUT")"
python3 - "$W/results" "$OUT" "$IMAGE_MIB" "$IMAGE_LAYERS" "$BERTH" <<'PY'
import json, statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
mib, layers, berth = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
direct = statistics.median(r[0] for r in rows)
cold = statistics.median(r[1] for r in rows)
mbps = lambda s: mib * 1.048576 / s
report = {
    "image_MiB": mib, "layers": layers, "rounds": len(rows), "berth": berth,
    "direct_pull_s": [r[0] for r in rows], "cold_pull_through_cache_s": [r[1] for r in rows],
    "direct_pull_median_s": direct, "cold_pull_median_s": cold,
    "direct_pull_MBps": mbps(direct), "cold_pull_MBps": mbps(cold),
    "ratio_cold_over_direct": cold / direct, "goal_ratio": 1.2,
}
json.dump(report, open(sys.argv[2], "w"), indent=2)
print(f"skopeo pull of a {layers}-layer {mib} MiB image, median of {len(rows)}:")
print(f"  direct from distribution      {direct:7.2f} s  {mbps(direct):7.1f} MB/s")
print(f"  cold through berth's cache    {cold:7.2f} s  {mbps(cold):7.1f} MB/s")
print(f"  ratio {cold / direct:.2f} (goal <= 1.2)")
PY
