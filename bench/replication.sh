#!/usr/bin/env bash
# Replication lag benchmark (issue 16): how long after a push an image is COMPLETE at each
# destination of a replication rule: another account of the same berth and the same account in
# another region of it (local destinations), and a second berth process reached over /v2 (a
# remote destination). Each round pushes a fresh image of IMAGE_LAYERS
# random layers (IMAGE_MIB in all) with skopeo, then polls DescribeImageReplicationStatus
# every 50 ms from the moment skopeo returned. Two figures per destination:
#   - observed: from skopeo's return to the first poll that saw COMPLETE (the client's view;
#     it overstates the lag by at most one poll interval plus one call);
#   - server: the source's own `lag_ms` log line, from the push's commit to the destination's
#     COMPLETE (exact, to the millisecond).
#
#   bench/replication.sh [IMAGE_MIB] [REPEAT]     (bench/compare.sh runs it with REPL=1)
#
# BERTH=target/release/berth by default. Needs skopeo, python3 with boto3, the aws CLI.
# Traffic stays on 127.0.0.1; data under $TMPDIR (or /tmp), about 6 x IMAGE_MIB. Writes $OUT
# (default target/bench/replication.json).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE_MIB=${1:-1024}
REPEAT=${2:-3}
IMAGE_LAYERS=${IMAGE_LAYERS:-10}
BERTH=${BERTH:-target/release/berth}
OUT=${OUT:-target/bench/replication.json}
for tool in skopeo aws python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ -x "$BERTH" ] || { echo "$BERTH not found (cargo build --release -p berth)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/berth-repl-bench.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  [ "$rc" = 0 ] || tail -n 20 "$W"/source.log "$W"/remote.log >&2 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=
export AWS_CONFIG_FILE="$W/aws-config" AWS_SHARED_CREDENTIALS_FILE="$W/aws-credentials" AWS_EC2_METADATA_DISABLED=true
: >"$AWS_CONFIG_FILE"; : >"$AWS_SHARED_CREDENTIALS_FILE"
export REGISTRY_AUTH_FILE="$W/auth.json"
note() { echo "[$(date +%T)] $*" >&2; }

# start NAME ARGS...: a berth on a free port; prints its endpoint
start() {
  local name=$1; shift
  BERTH_LOG=info BERTH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID BERTH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    "$BERTH" serve --listen 127.0.0.1:0 --data-dir "$W/$name" --gc-interval-secs 0 "$@" \
    >"$W/$name.out" 2>"$W/$name.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do grep -q '^listening on ' "$W/$name.out" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$W/$name.out" | head -n1
}
REMOTE_EP=$(start remote --create-on-push)
REMOTE_PW=$(aws ecr get-login-password --endpoint-url "$REMOTE_EP")
cat >"$W/source.toml" <<TOML
[[access-keys]]
id = "AKIDOTHER"
secret = "other-secret"
account-id = "111111111111"

[[replication-remotes]]
region = "eu-west-1"
registry-id = "222222222222"
url = "$REMOTE_EP"
username = "AWS"
password = "$REMOTE_PW"
TOML
EP=$(start source --config "$W/source.toml")
PW=$(aws ecr get-login-password --endpoint-url "$EP")
AWS_ACCESS_KEY_ID=AKIDOTHER AWS_SECRET_ACCESS_KEY=other-secret aws ecr put-registry-policy --endpoint-url "$EP" \
  --policy-text '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"*"}]}' >/dev/null
aws ecr put-replication-configuration --endpoint-url "$EP" --replication-configuration \
  '{"rules":[{"destinations":[{"region":"us-east-1","registryId":"111111111111"},{"region":"eu-west-1","registryId":"222222222222"},{"region":"eu-central-1","registryId":"000000000000"}]}]}' >/dev/null

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

# poll REPO T0: seconds from T0 to COMPLETE per destination, "<other account> <remote> <other
# region>" (bounded: 1 h)
poll() {
  python3 - "$EP" "$1" "$2" <<'PY'
import sys, time, boto3
ep, repo, t0 = sys.argv[1], sys.argv[2], float(sys.argv[3])
ecr = boto3.client("ecr", endpoint_url=ep, region_name="us-east-1")
done = {}
deadline = time.time() + 3600
while len(done) < 3 and time.time() < deadline:
    out = ecr.describe_image_replication_status(repositoryName=repo, imageId={"imageTag": "v1"})
    now = time.time()
    for s in out["replicationStatuses"]:
        if s["status"] == "FAILED":
            sys.exit(f"replication to {s['registryId']} FAILED: {s.get('failureCode')}")
        if s["status"] == "COMPLETE":
            done.setdefault(s["registryId"], now - t0)
    time.sleep(0.05)
print(done["111111111111"], done["222222222222"], done["000000000000"])
PY
}

: >"$W/results"
for i in $(seq 1 "$REPEAT"); do
  note "round $i/$REPEAT: a fresh ${IMAGE_LAYERS}-layer image of ${IMAGE_MIB} MiB pushed with skopeo"
  make_image
  aws ecr create-repository --endpoint-url "$EP" --repository-name "bench/img$i" >/dev/null
  skopeo copy -q --dest-tls-verify=false --dest-creds "AWS:$PW" "dir:$W/image" "docker://${EP#http://}/bench/img$i:v1"
  t0=$(date +%s.%N)
  read -r local remote region < <(poll "bench/img$i" "$t0")
  # The source's own figures for this image, from its log.
  digest=$(aws ecr describe-images --endpoint-url "$EP" --repository-name "bench/img$i" --query 'imageDetails[0].imageDigest' --output text)
  lags=$(grep 'image replicated' "$W/source.log" | grep "$digest" | sed -E 's/\x1b\[[0-9;]*m//g' \
    | sed -nE 's/.*registry=([0-9]+).*lag_ms=([0-9]+).*/\1 \2/p')
  slocal=$(awk '$1=="111111111111"{print $2/1000}' <<<"$lags" | head -n1)
  sremote=$(awk '$1=="222222222222"{print $2/1000}' <<<"$lags" | head -n1)
  sregion=$(awk '$1=="000000000000"{print $2/1000}' <<<"$lags" | head -n1)
  # The remote serves what the source serves, byte for byte (skopeo compressed the random
  # layers on the push, so the source's image is not the dir: pushed).
  rm -rf "$W/pulled" "$W/source-copy"
  skopeo copy -q --src-tls-verify=false --src-creds "AWS:$PW" "docker://${EP#http://}/bench/img$i:v1" "dir:$W/source-copy"
  skopeo copy -q --src-tls-verify=false --src-creds "AWS:$REMOTE_PW" "docker://${REMOTE_EP#http://}/bench/img$i:v1" "dir:$W/pulled"
  diff -r "$W/source-copy" "$W/pulled" >/dev/null || { echo "the remote's image differs" >&2; exit 1; }
  note "COMPLETE after: other account ${local}s (server ${slocal:-?}s), other region ${region}s (server ${sregion:-?}s), remote berth ${remote}s (server ${sremote:-?}s)"
  echo "$local $remote ${slocal:-nan} ${sremote:-nan} $region ${sregion:-nan}" >>"$W/results"
done

mkdir -p "$(dirname "$OUT")"
python3 - "$W/results" "$OUT" "$IMAGE_MIB" "$IMAGE_LAYERS" "$BERTH" <<'PY'
import json, statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
mib, layers, berth = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
col = lambda i: [r[i] for r in rows]
med = lambda i: statistics.median(col(i))
report = {
    "image_MiB": mib, "layers": layers, "rounds": len(rows), "berth": berth,
    "poll_interval_s": 0.05,
    "other_account_observed_s": col(0), "remote_berth_observed_s": col(1),
    "other_account_server_s": col(2), "remote_berth_server_s": col(3),
    "other_account_observed_median_s": med(0), "remote_berth_observed_median_s": med(1),
    "other_account_server_median_s": med(2), "remote_berth_server_median_s": med(3),
    "remote_berth_MBps": mib * 1.048576 / med(3),
    "other_region_observed_s": col(4), "other_region_server_s": col(5),
    "other_region_observed_median_s": med(4), "other_region_server_median_s": med(5),
}
json.dump(report, open(sys.argv[2], "w"), indent=2)
print(f"replication lag of a {layers}-layer {mib} MiB image, median of {len(rows)}:")
print(f"  another account (local)  observed {med(0):7.2f} s  server {med(2):7.2f} s")
print(f"  another region (local)   observed {med(4):7.2f} s  server {med(5):7.2f} s")
print(f"  a second berth (/v2)     observed {med(1):7.2f} s  server {med(3):7.2f} s  ({report['remote_berth_MBps']:.1f} MB/s)")
print("  observed = skopeo's return to the first 50 ms poll seeing COMPLETE; server = push commit to COMPLETE")
PY
