#!/usr/bin/env bash
# End-to-end flow for the OCI Distribution API under /v2/, driven by `skopeo` (with the
# `aws` CLI for login and for the ECR-side view of the same images).
#
# Expects ENDPOINT (e.g. http://127.0.0.1:PORT) and dummy AWS credentials in the
# environment (run.sh sets them up).  Prints one "PASS: ..." / "FAIL: ..." line per
# check and, as its last line, "CHECKS passed=N failed=M".  Exit status is 0 only
# when every check passed.
#
# Needs: skopeo (tested with 1.9.3), aws, python3, curl, tar, gzip, coreutils.
# Everything skopeo reads or writes lives in a private temp dir (auth file, trust policy,
# registries.d, tmpdir); berth speaks plain http, hence the --*tls-verify=false flags.
# (skopeo as root still keeps its blob-info cache in /var/lib/containers/cache; it has no
# switch for that in 1.9.)
#
# Deliberately no `set -e`: a failing check is recorded and the flow continues.
set -uo pipefail

: "${ENDPOINT:?ENDPOINT must be set (http://127.0.0.1:PORT)}"
STEP_TIMEOUT="${STEP_TIMEOUT:-60}"   # seconds per aws/curl/skopeo invocation

W="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-skopeo.XXXXXX")"
trap 'rm -rf "$W"' EXIT

. "$(dirname "$0")/lib.sh"

if ! command -v skopeo >/dev/null 2>&1; then
  fail "skopeo is not installed (apt-get install skopeo)"
  finish
fi

HOST="${ENDPOINT#http://}"           # 127.0.0.1:PORT, the registry host skopeo talks to
export REGISTRY_AUTH_FILE="$W/auth.json"
AUTHFILE="$REGISTRY_AUTH_FILE"
mkdir -p "$W/registries.d" "$W/tmp"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$W/policy.json"

# skopeo <args...>, bounded in time, with a private policy, registries.d and tmpdir.
sk() {
  timeout "$STEP_TIMEOUT" skopeo --policy "$W/policy.json" --registries.d "$W/registries.d" --tmpdir "$W/tmp" "$@"
}
# sk_ok DESC skopeo-args...  -- must succeed; stdout -> $W/sk.out, stderr -> $W/sk.err
sk_ok() {
  local desc=$1
  shift
  succeeds "$desc" "$W/sk.out" "$W/sk.err" sk "$@"
}
# sk_fails DESC REGEX skopeo-args...  -- must exit non-zero with stderr matching REGEX (grep -Ei)
sk_fails() {
  local desc=$1 re=$2 rc=0
  shift 2
  sk "$@" >"$W/sk.out" 2>"$W/sk.err" || rc=$?
  if [ "$rc" -ne 0 ] && grep -Eiq "$re" "$W/sk.err"; then
    pass "$desc (exit $rc, stderr matches /$re/)"
  else
    fail "$desc: expected a non-zero exit and stderr matching /$re/, got exit $rc; stderr: $(excerpt "$W/sk.err")"
  fi
}


# Tags of an image as a sorted JSON list, from `skopeo list-tags` ("" when the call fails).
list_tags() {
  sk list-tags --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$1" >"$W/tags.json" 2>"$W/sk.err" || return 1
  jv "$W/tags.json" 'sorted(d["Tags"] or [])'
}

# The manifest digest an OCI layout's index.json names for ref NAME ("" when absent).
layout_digest() {
  jv "$1/index.json" '[m["digest"] for m in d["manifests"] if m.get("annotations",{}).get("org.opencontainers.image.ref.name")=="'"$2"'"][0]'
}

# check_layout DESC DIR  -- every file under DIR/blobs/sha256 hashes to its name; prints the
# sorted blob digests, one a line, to DIR.blobs
check_layout() {
  local desc=$1 dir=$2 f bad=0 n=0
  : >"$dir.blobs"
  for f in "$dir"/blobs/sha256/*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    if [ "$(sha256sum "$f" | cut -d' ' -f1)" != "$(basename "$f")" ]; then
      bad=$((bad + 1))
      echo "  blob $(basename "$f") does not hash to its name" >&2
    fi
    echo "sha256:$(basename "$f")" >>"$dir.blobs"
  done
  sort -o "$dir.blobs" "$dir.blobs"
  if [ "$n" -gt 0 ] && [ "$bad" -eq 0 ]; then
    pass "$desc: all $n blob files hash to their names"
  else
    fail "$desc: $n blob files, $bad of them do not hash to their names"
  fi
}

REPO="e2e/skopeo"
API_REPO="e2e/api"
MISSING_REPO="e2e/does-not-exist"
OCI_MANIFEST="application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG="application/vnd.oci.image.config.v1+json"
OCI_LAYER="application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX="application/vnd.oci.image.index.v1+json"

echo "== skopeo_flow: endpoint $ENDPOINT, registry host $HOST, $(skopeo --version)"

# ------------------------------------------------------------------ 1. login
PASSWORD="$(timeout "$STEP_TIMEOUT" aws ecr get-login-password --endpoint-url "$ENDPOINT" 2>"$W/err.txt")"
rc=$?
if [ "$rc" -eq 0 ] && [ -n "$PASSWORD" ]; then
  pass "aws ecr get-login-password"
else
  fail "aws ecr get-login-password (exit $rc; stderr: $(excerpt "$W/err.txt"))"
fi
rc=0
printf '%s' "$PASSWORD" | sk login --tls-verify=false --authfile "$AUTHFILE" --username AWS --password-stdin "$HOST" \
  >"$W/sk.out" 2>"$W/sk.err" || rc=$?
if [ "$rc" -eq 0 ] && grep -q "Login Succeeded" "$W/sk.out"; then
  pass "get-login-password | skopeo login --username AWS --password-stdin $HOST"
else
  fail "skopeo login with the ECR password (exit $rc; stdout: $(excerpt "$W/sk.out"); stderr: $(excerpt "$W/sk.err"))"
fi
eq "the private auth file holds AWS:<password> for $HOST" \
  "$(jv "$AUTHFILE" '__import__("base64").b64decode(d["auths"]["'"$HOST"'"]["auth"]).decode() == "AWS:'"$PASSWORD"'"')" "true"
cp "$AUTHFILE" "$W/auth.good.json" 2>/dev/null
# a refused login goes to a scratch auth file, so the good one cannot be disturbed
sk_fails "skopeo login with a wrong password is refused" "invalid username/password|unauthorized" \
  login --tls-verify=false --authfile "$W/auth.wrong.json" --username AWS --password wrong "$HOST"
sk_fails "skopeo login as a user other than AWS (right password) is refused" "invalid username/password|unauthorized" \
  login --tls-verify=false --authfile "$W/auth.wrong.json" --username admin --password "$PASSWORD" "$HOST"

# ------------------------------------------------------------------ 2. local OCI layout
# Three gzip layers of different sizes, each a real tar with one random file: the config's
# diff_ids are the sha256 of the uncompressed tars, the manifest names the gzip blobs.
SRC="$W/src"
mkdir -p "$SRC/blobs/sha256" "$W/gen"
LAYER_SIZES=(1048576 6291456 204800)   # 1 MiB, 6 MiB, 200 KiB of random content
LAYER_DIGESTS=()
LAYER_BLOB_SIZES=()
DIFF_IDS=()
build_ok=1
for i in 0 1 2; do
  d="$W/gen/layer$i"
  mkdir -p "$d/files"
  head -c "${LAYER_SIZES[$i]}" /dev/urandom >"$d/files/data$i.bin"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$d/files" -cf "$d/layer.tar" . || build_ok=0
  DIFF_IDS+=("$(sha256_of "$d/layer.tar")")
  gzip -1 -n -c "$d/layer.tar" >"$d/layer.tar.gz" || build_ok=0
  dg="$(sha256_of "$d/layer.tar.gz")"
  LAYER_DIGESTS+=("$dg")
  LAYER_BLOB_SIZES+=("$(size_of "$d/layer.tar.gz")")
  cp "$d/layer.tar.gz" "$SRC/blobs/sha256/${dg#sha256:}" || build_ok=0
done
# config, manifest, a variant manifest (same blobs, one annotation more: another digest),
# index.json naming v1 and variant, and oci-layout; exact bytes, compact JSON
python3 - "$SRC" "${DIFF_IDS[@]}" "${LAYER_DIGESTS[@]}" "${LAYER_BLOB_SIZES[@]}" <<'PY' || build_ok=0
import hashlib, json, os, sys
src = sys.argv[1]
diff_ids, digests, sizes = sys.argv[2:5], sys.argv[5:8], [int(s) for s in sys.argv[8:11]]
def put(obj):
    b = json.dumps(obj, separators=(",", ":")).encode()
    h = hashlib.sha256(b).hexdigest()
    with open(os.path.join(src, "blobs", "sha256", h), "wb") as f:
        f.write(b)
    return "sha256:" + h, len(b)
config = {
    "created": "2024-01-01T00:00:00Z",
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"berth e2e layer {i}"} for i in range(3)],
}
cdig, csize = put(config)
def manifest(extra):
    m = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s}
                   for d, s in zip(digests, sizes)],
        "annotations": {"org.opencontainers.image.title": "berth skopeo e2e", **extra},
    }
    return put(m)
mdig, msize = manifest({})
vdig, vsize = manifest({"org.opencontainers.image.description": "variant"})
def desc(d, s, ref):
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": s,
            "annotations": {"org.opencontainers.image.ref.name": ref}}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [desc(mdig, msize, "v1"), desc(vdig, vsize, "variant")]}
with open(os.path.join(src, "index.json"), "w") as f:
    json.dump(index, f, separators=(",", ":"))
with open(os.path.join(src, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
PY
MANIFEST_DIGEST="$(layout_digest "$SRC" v1)"
VARIANT_DIGEST="$(layout_digest "$SRC" variant)"
MANIFEST_FILE="$SRC/blobs/sha256/${MANIFEST_DIGEST#sha256:}"
CONFIG_DIGEST="$(jv "$MANIFEST_FILE" 'd["config"]["digest"]')"
CONFIG_SIZE="$(jv "$MANIFEST_FILE" 'd["config"]["size"]')"
if [ "$build_ok" -eq 1 ] && [ -f "$MANIFEST_FILE" ] && [ -n "$CONFIG_DIGEST" ] && [ -n "$VARIANT_DIGEST" ] &&
  [ "${LAYER_DIGESTS[0]}" != "${LAYER_DIGESTS[1]}" ] && [ "${LAYER_DIGESTS[1]}" != "${LAYER_DIGESTS[2]}" ]; then
  pass "local OCI layout built: 3 gzip layers (${LAYER_BLOB_SIZES[*]} bytes), config, manifest $MANIFEST_DIGEST"
else
  fail "local error: building the OCI layout in $SRC went wrong"
fi
check_layout "source layout" "$SRC"
EXPECTED_BLOBS="$(printf '%s\n' "${LAYER_DIGESTS[@]}" "$CONFIG_DIGEST" "$MANIFEST_DIGEST" | sort)"

ok "create-repository $REPO" create-repository --repository-name "$REPO"

# push
sk_ok "skopeo copy oci:<layout>:v1 docker://$HOST/$REPO:v1 (push)" \
  copy --dest-tls-verify=false --dest-authfile "$AUTHFILE" "oci:$SRC:v1" "docker://$HOST/$REPO:v1"

# pull back into a fresh layout
OUT="$W/out"
if sk_ok "skopeo copy docker://$HOST/$REPO:v1 oci:<out>:v1 (pull)" \
  copy --src-tls-verify=false --src-authfile "$AUTHFILE" "docker://$HOST/$REPO:v1" "oci:$OUT:v1"; then
  eq "pulled index.json names the pushed manifest digest" "$(layout_digest "$OUT" v1)" "$MANIFEST_DIGEST"
  check_layout "pulled layout" "$OUT"
  eq "pulled layout holds exactly the pushed blobs (3 layers, config, manifest)" "$(cat "$OUT.blobs")" "$EXPECTED_BLOBS"
  if cmp -s "$OUT/blobs/sha256/${MANIFEST_DIGEST#sha256:}" "$MANIFEST_FILE"; then
    pass "pulled manifest bytes are the pushed manifest bytes"
  else
    fail "pulled manifest bytes differ from the pushed ones"
  fi
fi

# ------------------------------------------------------------------ 3. inspect, tags
if sk_ok "skopeo inspect --raw docker://$HOST/$REPO:v1" \
  inspect --raw --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$REPO:v1"; then
  eq "inspect --raw returns the exact manifest bytes (sha256)" "$(sha256_of "$W/sk.out")" "$MANIFEST_DIGEST"
fi
if sk_ok "skopeo inspect (parsed) docker://$HOST/$REPO:v1" \
  inspect --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$REPO:v1"; then
  cp "$W/sk.out" "$W/inspect.json"
  eq "inspect Digest" "$(jv "$W/inspect.json" 'd["Digest"]')" "$MANIFEST_DIGEST"
  eq "inspect Layers are the three layer digests in order" "$(jv "$W/inspect.json" 'd["Layers"]')" \
    "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${LAYER_DIGESTS[@]}")"
  eq "inspect Architecture/Os from the config" "$(jv "$W/inspect.json" '[d["Architecture"], d["Os"]]')" '["amd64", "linux"]'
fi
eq "skopeo list-tags shows v1" "$(list_tags "$REPO")" '["v1"]'

sk_ok "skopeo copy the same image again to :v2" \
  copy --dest-tls-verify=false --dest-authfile "$AUTHFILE" "oci:$SRC:v1" "docker://$HOST/$REPO:v2"
eq "skopeo list-tags shows v1 and v2" "$(list_tags "$REPO")" '["v1", "v2"]'
if sk_ok "skopeo inspect --raw :v2" inspect --raw --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$REPO:v2"; then
  eq ":v2 resolves to the same manifest digest as :v1" "$(sha256_of "$W/sk.out")" "$MANIFEST_DIGEST"
fi

# ------------------------------------------------------------------ 4. ECR view of the skopeo push
if ok "describe-images $REPO" describe-images --repository-name "$REPO"; then
  eq "describe-images: one image, the pushed digest, tags v1+v2" \
    "$(jv "$W/out.json" '[[i["imageDigest"], sorted(i.get("imageTags", []))] for i in d["imageDetails"]]')" \
    "[[\"$MANIFEST_DIGEST\", [\"v1\", \"v2\"]]]"
  eq "describe-images imageManifestMediaType" "$(jv "$W/out.json" 'd["imageDetails"][0].get("imageManifestMediaType")')" "$OCI_MANIFEST"
  eq "describe-images imageSizeInBytes > 0" "$(jv "$W/out.json" 'd["imageDetails"][0].get("imageSizeInBytes", 0) > 0')" "true"
fi
if ok "batch-check-layer-availability (3 layers + config)" batch-check-layer-availability --repository-name "$REPO" \
  --layer-digests "${LAYER_DIGESTS[@]}" "$CONFIG_DIGEST"; then
  for i in 0 1 2; do
    eq "layer $i AVAILABLE with layerSize ${LAYER_BLOB_SIZES[$i]}" \
      "$(jv "$W/out.json" '[[l["layerAvailability"], l.get("layerSize")] for l in d["layers"] if l["layerDigest"]=="'"${LAYER_DIGESTS[$i]}"'"]')" \
      "[[\"AVAILABLE\", ${LAYER_BLOB_SIZES[$i]}]]"
  done
  eq "config AVAILABLE with layerSize $CONFIG_SIZE" \
    "$(jv "$W/out.json" '[[l["layerAvailability"], l.get("layerSize")] for l in d["layers"] if l["layerDigest"]=="'"$CONFIG_DIGEST"'"]')" \
    "[[\"AVAILABLE\", $CONFIG_SIZE]]"
  eq "batch-check-layer-availability: no failures" "$(jv "$W/out.json" 'len(d.get("failures", []))')" "0"
fi
if ok "get-download-url-for-layer (6 MiB layer)" get-download-url-for-layer --repository-name "$REPO" --layer-digest "${LAYER_DIGESTS[1]}"; then
  DL_URL="$(jv "$W/out.json" 'd["downloadUrl"]')"
  if is_local_url "$DL_URL" &&
    timeout "$STEP_TIMEOUT" curl -fsS --max-time "$STEP_TIMEOUT" -o "$W/download.bin" "$DL_URL" 2>"$W/err.txt"; then
    eq "downloaded layer sha256 equals the layer digest" "$(sha256_of "$W/download.bin")" "${LAYER_DIGESTS[1]}"
  else
    fail "download of the layer (url '$DL_URL'): $(excerpt "$W/err.txt")"
  fi
fi
if ok "batch-get-image $REPO:v1" batch-get-image --repository-name "$REPO" --image-ids imageTag=v1 \
  --accepted-media-types "$OCI_MANIFEST"; then
  eq "batch-get-image manifest hashes to the skopeo-pushed digest" "$(manifest_bytes_digest "$W/out.json")" "$MANIFEST_DIGEST"
  eq "batch-get-image imageId.imageDigest" "$(jv "$W/out.json" 'd["images"][0]["imageId"]["imageDigest"]')" "$MANIFEST_DIGEST"
fi

# ------------------------------------------------------------------ 5. push via ECR API, pull via skopeo
ok "create-repository $API_REPO" create-repository --repository-name "$API_REPO"
# upload_blob FILE  -- initiate / upload-layer-part(s) of at most 5 MiB / complete; echoes nothing
API_PART=5242880
upload_blob() {
  local file=$1 digest size id first=0 last part n=0
  digest="$(sha256_of "$file")"
  size="$(size_of "$file")"
  ok "initiate-layer-upload for $(basename "$file")" initiate-layer-upload --repository-name "$API_REPO" || return 1
  id="$(jv "$W/out.json" 'd["uploadId"]')"
  while [ "$first" -lt "$size" ]; do
    last=$((first + API_PART - 1))
    [ "$last" -ge "$size" ] && last=$((size - 1))
    part="$W/part.$n"
    tail -c +$((first + 1)) "$file" | head -c $((last - first + 1)) >"$part"
    ok "upload-layer-part $(basename "$file") bytes $first-$last" upload-layer-part --repository-name "$API_REPO" \
      --upload-id "$id" --part-first-byte "$first" --part-last-byte "$last" --layer-part-blob "fileb://$part" || return 1
    first=$((last + 1))
    n=$((n + 1))
  done
  if ok "complete-layer-upload $(basename "$file")" complete-layer-upload --repository-name "$API_REPO" \
    --upload-id "$id" --layer-digests "$digest"; then
    eq "complete-layer-upload digest of $(basename "$file")" "$(jv "$W/out.json" 'd["layerDigest"]')" "$digest"
  fi
}
mkdir -p "$W/api/files"
head -c 5500000 /dev/urandom >"$W/api/files/big.bin"     # > 5 MiB gzip: two parts
head -c 300000 /dev/urandom >"$W/api/files/small.bin"
tar --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$W/api/files" -cf "$W/api/l1.tar" big.bin
tar --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$W/api/files" -cf "$W/api/l2.tar" small.bin
gzip -1 -n -c "$W/api/l1.tar" >"$W/api/layer1.tar.gz"
gzip -1 -n -c "$W/api/l2.tar" >"$W/api/layer2.tar.gz"
A_L1="$(sha256_of "$W/api/layer1.tar.gz")"; A_L1_SIZE="$(size_of "$W/api/layer1.tar.gz")"
A_L2="$(sha256_of "$W/api/layer2.tar.gz")"; A_L2_SIZE="$(size_of "$W/api/layer2.tar.gz")"
printf '{"architecture":"arm64","os":"linux","config":{"Env":["PATH=/usr/bin"]},"rootfs":{"type":"layers","diff_ids":["%s","%s"]}}' \
  "$(sha256_of "$W/api/l1.tar")" "$(sha256_of "$W/api/l2.tar")" >"$W/api/config.json"
A_CFG="$(sha256_of "$W/api/config.json")"; A_CFG_SIZE="$(size_of "$W/api/config.json")"
upload_blob "$W/api/layer1.tar.gz"
upload_blob "$W/api/layer2.tar.gz"
upload_blob "$W/api/config.json"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%d},"layers":[{"mediaType":"%s","digest":"%s","size":%d},{"mediaType":"%s","digest":"%s","size":%d}]}' \
  "$OCI_MANIFEST" "$OCI_CONFIG" "$A_CFG" "$A_CFG_SIZE" "$OCI_LAYER" "$A_L1" "$A_L1_SIZE" "$OCI_LAYER" "$A_L2" "$A_L2_SIZE" \
  >"$W/api/manifest.json"
A_MANIFEST="$(sha256_of "$W/api/manifest.json")"
if ok "put-image $API_REPO:v1 (OCI manifest)" put-image --repository-name "$API_REPO" \
  --image-manifest "file://$W/api/manifest.json" --image-manifest-media-type "$OCI_MANIFEST" --image-tag v1; then
  eq "put-image imageDigest" "$(jv "$W/out.json" 'd["image"]["imageId"]["imageDigest"]')" "$A_MANIFEST"
fi
if sk_ok "skopeo inspect --raw docker://$HOST/$API_REPO:v1" \
  inspect --raw --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$API_REPO:v1"; then
  if cmp -s "$W/sk.out" "$W/api/manifest.json"; then
    pass "inspect --raw of the API-pushed image returns the put-image bytes"
  else
    fail "inspect --raw of $API_REPO:v1 differs from the put-image manifest: $(excerpt "$W/sk.out")"
  fi
fi
OUT2="$W/out2"
if sk_ok "skopeo copy docker://$HOST/$API_REPO:v1 oci:<dir2>:v1 (pull of an ECR-API push)" \
  copy --src-tls-verify=false --src-authfile "$AUTHFILE" "docker://$HOST/$API_REPO:v1" "oci:$OUT2:v1"; then
  eq "pulled index.json names the put-image digest" "$(layout_digest "$OUT2" v1)" "$A_MANIFEST"
  check_layout "layout pulled from $API_REPO" "$OUT2"
  eq "pulled blobs are exactly the API-uploaded ones (2 layers, config, manifest)" "$(cat "$OUT2.blobs")" \
    "$(printf '%s\n' "$A_L1" "$A_L2" "$A_CFG" "$A_MANIFEST" | sort)"
  if cmp -s "$OUT2/blobs/sha256/${A_L1#sha256:}" "$W/api/layer1.tar.gz" &&
    cmp -s "$OUT2/blobs/sha256/${A_CFG#sha256:}" "$W/api/config.json"; then
    pass "pulled 2-part layer and config are byte-identical to the uploaded files"
  else
    fail "pulled layer/config bytes differ from the uploaded files"
  fi
fi

# registry-to-registry copy between two repositories of berth (skopeo mounts or re-uploads)
if sk_ok "skopeo copy docker://$HOST/$REPO:v1 docker://$HOST/$API_REPO:copied (repository to repository)" \
  copy --src-tls-verify=false --dest-tls-verify=false --authfile "$AUTHFILE" \
  "docker://$HOST/$REPO:v1" "docker://$HOST/$API_REPO:copied"; then
  if sk_ok "skopeo inspect --raw $API_REPO:copied" inspect --raw --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$API_REPO:copied"; then
    eq "$API_REPO:copied has the manifest digest of $REPO:v1" "$(sha256_of "$W/sk.out")" "$MANIFEST_DIGEST"
  fi
  if ok "batch-check-layer-availability in $API_REPO for the copied layers" batch-check-layer-availability \
    --repository-name "$API_REPO" --layer-digests "${LAYER_DIGESTS[@]}" "$CONFIG_DIGEST"; then
    eq "all copied blobs AVAILABLE in $API_REPO" \
      "$(jv "$W/out.json" 'sorted(set(l["layerAvailability"] for l in d["layers"])) + [len(d["layers"])]')" '["AVAILABLE", 4]'
  fi
fi
eq "list-tags $API_REPO shows copied and v1" "$(list_tags "$API_REPO")" '["copied", "v1"]'

# ------------------------------------------------------------------ 6. delete
# `skopeo delete docker://...:TAG` resolves TAG to its digest and DELETEs
# /v2/<name>/manifests/<digest>: that removes the manifest with *all* its tags (distribution
# semantics, ECR too).  Shown first on $API_REPO: a second tag on the API-pushed image, then
# deleting that tag takes v1 with it.
sk_ok "skopeo copy $API_REPO:v1 to $API_REPO:shared (same digest)" \
  copy --src-tls-verify=false --dest-tls-verify=false --authfile "$AUTHFILE" \
  "docker://$HOST/$API_REPO:v1" "docker://$HOST/$API_REPO:shared"
eq "list-tags $API_REPO shows copied, shared, v1" "$(list_tags "$API_REPO")" '["copied", "shared", "v1"]'
sk_ok "skopeo delete docker://$HOST/$API_REPO:shared" delete --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$API_REPO:shared"
eq "deleting a tag by skopeo deletes its manifest: shared and v1 gone, copied stays" "$(list_tags "$API_REPO")" '["copied"]'

# So that $REPO:v1 survives the deletion of v2, v2 is first moved to a different manifest
# (same blobs, one annotation more); deleting v2 then removes that manifest only.
sk_ok "skopeo copy the variant manifest to :v2 (moves the tag)" \
  copy --dest-tls-verify=false --dest-authfile "$AUTHFILE" "oci:$SRC:variant" "docker://$HOST/$REPO:v2"
if sk_ok "skopeo inspect --raw :v2 after the move" inspect --raw --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$REPO:v2"; then
  eq ":v2 now resolves to the variant digest" "$(sha256_of "$W/sk.out")" "$VARIANT_DIGEST"
fi
eq "list-tags still v1 and v2 after moving v2" "$(list_tags "$REPO")" '["v1", "v2"]'
sk_ok "skopeo delete docker://$HOST/$REPO:v2" delete --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$REPO:v2"
eq "list-tags after delete shows only v1" "$(list_tags "$REPO")" '["v1"]'
if sk_ok "skopeo inspect --raw :v1 after deleting v2" inspect --raw --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$REPO:v1"; then
  eq ":v1 still resolves to the original manifest" "$(sha256_of "$W/sk.out")" "$MANIFEST_DIGEST"
fi
sk_fails "skopeo inspect :v2 after delete fails with manifest unknown" "manifest unknown|not found|404" \
  inspect --raw --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$REPO:v2"
sk_fails "skopeo inspect @<variant digest> after delete fails with manifest unknown" "manifest unknown|not found|404" \
  inspect --raw --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$REPO@$VARIANT_DIGEST"
if ok "describe-images $REPO after delete" describe-images --repository-name "$REPO"; then
  eq "describe-images after delete: only the original image, tag v1" \
    "$(jv "$W/out.json" '[[i["imageDigest"], sorted(i.get("imageTags", []))] for i in d["imageDetails"]]')" \
    "[[\"$MANIFEST_DIGEST\", [\"v1\"]]]"
fi
# the variant's blobs are shared with v1, so v1 must still pull completely
OUT3="$W/out3"
if sk_ok "skopeo copy :v1 again after the delete" \
  copy --src-tls-verify=false --src-authfile "$AUTHFILE" "docker://$HOST/$REPO:v1" "oci:$OUT3:v1"; then
  check_layout "layout pulled after the delete" "$OUT3"
  eq "after the delete :v1 still pulls all its blobs" "$(cat "$OUT3.blobs")" "$EXPECTED_BLOBS"
fi

# ------------------------------------------------------------------ 7. missing repository
# berth answers 404 {"errors":[{"code":"NAME_UNKNOWN",...}]}; skopeo prints "name unknown: ..."
sk_fails "skopeo copy to a repository that does not exist fails with name unknown" "name unknown" \
  copy --dest-tls-verify=false --dest-authfile "$AUTHFILE" "oci:$SRC:v1" "docker://$HOST/$MISSING_REPO:v1"
sk_fails "skopeo inspect of a repository that does not exist fails with name unknown" "name unknown" \
  inspect --raw --tls-verify=false --authfile "$AUTHFILE" "docker://$HOST/$MISSING_REPO:v1"
expect_error RepositoryNotFoundException "the failed push did not create $MISSING_REPO" \
  describe-repositories --repository-names "$MISSING_REPO"

# ------------------------------------------------------------------ 8. bad credentials
sk_fails "skopeo inspect --creds AWS:garbage is unauthorized" "unauthorized" \
  inspect --raw --tls-verify=false --creds AWS:garbage "docker://$HOST/$REPO:v1"
# forged: a real password whose payload (account, region, key, expiry) was rewritten but
# whose MAC was kept -- here with an expiry in the past
FORGED="$(python3 - "$PASSWORD" <<'PY' 2>/dev/null
import base64, sys
p = sys.argv[1]
prefix, payload, mac = p.split(".")
pad = "=" * (-len(payload) % 4)
raw = base64.urlsafe_b64decode(payload + pad)
try:
    fields = raw.decode().split("\n")
    fields[-1] = "1000"          # expired long ago
    raw2 = "\n".join(fields).encode()
except Exception:
    raw2 = raw[:-1] + bytes([raw[-1] ^ 1])
enc = base64.urlsafe_b64encode(raw2).decode()
if "=" not in payload:
    enc = enc.rstrip("=")
print(f"{prefix}.{enc}.{mac}")
PY
)"
if [ -n "$FORGED" ] && [ "$FORGED" != "$PASSWORD" ]; then
  sk_fails "skopeo inspect with a forged password (payload rewritten, MAC kept) is unauthorized" "unauthorized" \
    inspect --raw --tls-verify=false --creds "AWS:$FORGED" "docker://$HOST/$REPO:v1"
else
  fail "local error: could not forge a password from '${PASSWORD:0:20}...' (format berth1.<payload>.<mac> expected)"
fi
sk_fails "skopeo copy (push) with --dest-creds AWS:garbage is unauthorized" "unauthorized" \
  copy --dest-tls-verify=false --dest-creds AWS:garbage "oci:$SRC:v1" "docker://$HOST/$REPO:v9"
sk_fails "skopeo list-tags without any credentials is unauthorized" "unauthorized" \
  list-tags --tls-verify=false --authfile "$W/empty-auth.json" "docker://$HOST/$REPO"
eq "no tag v9 appeared through the refused push" "$(list_tags "$REPO")" '["v1"]'

finish
