#!/usr/bin/env bash
# End-to-end flow against a running berth server, driven by the real `aws` CLI.
#
# Expects ENDPOINT (e.g. http://127.0.0.1:PORT) and dummy AWS credentials in the
# environment (run.sh sets them up).  Prints one "PASS: ..." / "FAIL: ..." line per
# check and, as its last line, "CHECKS passed=N failed=M".  Exit status is 0 only
# when every check passed.
#
# Deliberately no `set -e`: a failing check is recorded and the flow continues.
set -uo pipefail

: "${ENDPOINT:?ENDPOINT must be set (http://127.0.0.1:PORT)}"
STEP_TIMEOUT="${STEP_TIMEOUT:-60}"   # seconds per aws/curl invocation

W="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-cli.XXXXXX")"
trap 'rm -rf "$W"' EXIT

. "$(dirname "$0")/lib.sh"

REPO="cli-e2e/app"
REPO_IMM="cli-e2e/immutable"
MISSING_REPO="cli-e2e/does-not-exist"
OCI_MANIFEST="application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG="application/vnd.oci.image.config.v1+json"
OCI_LAYER="application/vnd.oci.image.layer.v1.tar+gzip"
MIN_PART=5242880    # 5 MiB
MAX_PART=20971520   # 20 MiB (model maximum for layerPartBlob)

echo "== cli_flow: endpoint $ENDPOINT"

# ---------------------------------------------------------------- repositories
if ok "create-repository $REPO with tags" create-repository --repository-name "$REPO" --tags Key=env,Value=dev; then
  eq "create-repository returns repositoryName" "$(jv "$W/out.json" 'd["repository"]["repositoryName"]')" "$REPO"
  REPO_ARN="$(jv "$W/out.json" 'd["repository"]["repositoryArn"]')"
  if [[ "$REPO_ARN" == arn:aws:ecr:*:repository/"$REPO" ]]; then
    pass "repositoryArn has the form arn:aws:ecr:<region>:<acct>:repository/<name> ($REPO_ARN)"
  else
    fail "repositoryArn malformed: '$REPO_ARN'"
  fi
  eq "default imageTagMutability is MUTABLE" "$(jv "$W/out.json" 'd["repository"]["imageTagMutability"]')" "MUTABLE"
  REPO_URI="$(jv "$W/out.json" 'd["repository"]["repositoryUri"]')"
  if [[ "$REPO_URI" == */"$REPO" ]]; then pass "repositoryUri ends with /$REPO"; else fail "repositoryUri malformed: '$REPO_URI'"; fi
else
  REPO_ARN=""
fi

if ok "create-repository $REPO_IMM --image-tag-mutability IMMUTABLE" \
  create-repository --repository-name "$REPO_IMM" --image-tag-mutability IMMUTABLE; then
  eq "second repository is IMMUTABLE" "$(jv "$W/out.json" 'd["repository"]["imageTagMutability"]')" "IMMUTABLE"
fi

if ok "describe-repositories (both names)" describe-repositories --repository-names "$REPO" "$REPO_IMM"; then
  eq "describe-repositories returns both repositories" \
    "$(jv "$W/out.json" 'sorted(r["repositoryName"] for r in d["repositories"])')" \
    "$(python3 -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' "$REPO" "$REPO_IMM")"
  eq "describe-repositories shows IMMUTABLE for $REPO_IMM" \
    "$(jv "$W/out.json" '[r["imageTagMutability"] for r in d["repositories"] if r["repositoryName"]=="'"$REPO_IMM"'"][0]')" "IMMUTABLE"
fi

if ok "describe-repositories (all)" describe-repositories; then
  eq "describe-repositories without names lists $REPO" \
    "$(jv "$W/out.json" '"'"$REPO"'" in [r["repositoryName"] for r in d["repositories"]]')" "true"
fi

if [ -n "$REPO_ARN" ] && ok "list-tags-for-resource" list-tags-for-resource --resource-arn "$REPO_ARN"; then
  eq "repository carries tag env=dev" \
    "$(jv "$W/out.json" '[t["Value"] for t in d["tags"] if t["Key"]=="env"]')" '["dev"]'
fi

if [ -n "$REPO_ARN" ]; then
  ok "tag-resource adds team=b and replaces env" tag-resource --resource-arn "$REPO_ARN" \
    --tags Key=team,Value=b Key=env,Value=prod
  ok "untag-resource of team" untag-resource --resource-arn "$REPO_ARN" --tag-keys team
  if ok "list-tags-for-resource after tag/untag" list-tags-for-resource --resource-arn "$REPO_ARN"; then
    eq "tags after tag-resource and untag-resource" \
      "$(jv "$W/out.json" 'sorted((t["Key"], t["Value"]) for t in d["tags"])')" '[["env", "prod"]]'
  fi
  expect_error InvalidTagParameterException "tag-resource with a reserved aws: key" \
    tag-resource --resource-arn "$REPO_ARN" --tags Key=aws:owner,Value=x
  expect_error InvalidParameterException "tag-resource with another region's ARN" \
    tag-resource --resource-arn "${REPO_ARN/:us-east-1:/:eu-west-1:}" --tags Key=k,Value=v
fi

expect_error RepositoryNotFoundException "describe-repositories of a missing repository" \
  describe-repositories --repository-names "$MISSING_REPO"
expect_error RepositoryAlreadyExistsException "create-repository of an existing name" \
  create-repository --repository-name "$REPO"

# ---------------------------------------------------------------- blobs
LAYER_SIZE=$((7 * 1024 * 1024))
head -c "$LAYER_SIZE" /dev/urandom >"$W/layer.bin"
head -c "$MIN_PART" "$W/layer.bin" >"$W/part1"
tail -c +$((MIN_PART + 1)) "$W/layer.bin" >"$W/part2"
LAYER_DIGEST="$(sha256_of "$W/layer.bin")"
if [ "$(size_of "$W/part1")" -eq "$MIN_PART" ] && [ "$(size_of "$W/part2")" -eq $((LAYER_SIZE - MIN_PART)) ] &&
  cat "$W/part1" "$W/part2" | cmp -s - "$W/layer.bin"; then
  :
else
  fail "local error: splitting the layer file went wrong"
fi

printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
  "$LAYER_DIGEST" >"$W/config.json"
CONFIG_SIZE="$(size_of "$W/config.json")"
CONFIG_DIGEST="$(sha256_of "$W/config.json")"

if ok "batch-check-layer-availability before upload" \
  batch-check-layer-availability --repository-name "$REPO" --layer-digests "$LAYER_DIGEST" "$CONFIG_DIGEST"; then
  eq "layer is UNAVAILABLE before upload" \
    "$(jv "$W/out.json" '[l["layerAvailability"] for l in d.get("layers",[]) if l["layerDigest"]=="'"$LAYER_DIGEST"'"]')" '["UNAVAILABLE"]'
  eq "config is UNAVAILABLE before upload" \
    "$(jv "$W/out.json" '[l["layerAvailability"] for l in d.get("layers",[]) if l["layerDigest"]=="'"$CONFIG_DIGEST"'"]')" '["UNAVAILABLE"]'
fi

# --- 7 MiB layer in two parts (5 MiB + 2 MiB)
UPLOAD_ID=""
if ok "initiate-layer-upload (layer)" initiate-layer-upload --repository-name "$REPO"; then
  UPLOAD_ID="$(jv "$W/out.json" 'd["uploadId"]')"
  PART_SIZE="$(jv "$W/out.json" 'd["partSize"]')"
  if [[ "$UPLOAD_ID" =~ ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ ]]; then
    pass "uploadId is a UUID ($UPLOAD_ID)"
  else
    fail "uploadId is not a UUID: '$UPLOAD_ID'"
  fi
  if [[ "$PART_SIZE" =~ ^[0-9]+$ ]] && [ "$PART_SIZE" -ge "$MIN_PART" ] && [ "$PART_SIZE" -le "$MAX_PART" ]; then
    pass "partSize $PART_SIZE within [$MIN_PART, $MAX_PART]"
  else
    fail "partSize out of range: '$PART_SIZE'"
  fi
fi

if ok "upload-layer-part 1 (bytes 0-$((MIN_PART - 1)))" upload-layer-part --repository-name "$REPO" --upload-id "$UPLOAD_ID" \
  --part-first-byte 0 --part-last-byte $((MIN_PART - 1)) --layer-part-blob "fileb://$W/part1"; then
  eq "part 1 lastByteReceived" "$(jv "$W/out.json" 'd["lastByteReceived"]')" "$((MIN_PART - 1))"
  eq "part 1 echoes uploadId" "$(jv "$W/out.json" 'd["uploadId"]')" "$UPLOAD_ID"
fi
if ok "upload-layer-part 2 (bytes $MIN_PART-$((LAYER_SIZE - 1)))" upload-layer-part --repository-name "$REPO" --upload-id "$UPLOAD_ID" \
  --part-first-byte "$MIN_PART" --part-last-byte $((LAYER_SIZE - 1)) --layer-part-blob "fileb://$W/part2"; then
  eq "part 2 lastByteReceived" "$(jv "$W/out.json" 'd["lastByteReceived"]')" "$((LAYER_SIZE - 1))"
fi
if ok "complete-layer-upload (layer)" complete-layer-upload --repository-name "$REPO" --upload-id "$UPLOAD_ID" \
  --layer-digests "$LAYER_DIGEST"; then
  eq "complete-layer-upload returns the sha256 of the layer" "$(jv "$W/out.json" 'd["layerDigest"]')" "$LAYER_DIGEST"
fi

# --- config blob in a single part
CFG_UPLOAD=""
if ok "initiate-layer-upload (config)" initiate-layer-upload --repository-name "$REPO"; then
  CFG_UPLOAD="$(jv "$W/out.json" 'd["uploadId"]')"
fi
if ok "upload-layer-part (config, single part)" upload-layer-part --repository-name "$REPO" --upload-id "$CFG_UPLOAD" \
  --part-first-byte 0 --part-last-byte $((CONFIG_SIZE - 1)) --layer-part-blob "fileb://$W/config.json"; then
  eq "config lastByteReceived" "$(jv "$W/out.json" 'd["lastByteReceived"]')" "$((CONFIG_SIZE - 1))"
fi
if ok "complete-layer-upload (config)" complete-layer-upload --repository-name "$REPO" --upload-id "$CFG_UPLOAD" \
  --layer-digests "$CONFIG_DIGEST"; then
  eq "config layerDigest" "$(jv "$W/out.json" 'd["layerDigest"]')" "$CONFIG_DIGEST"
fi

if ok "batch-check-layer-availability after upload" \
  batch-check-layer-availability --repository-name "$REPO" --layer-digests "$LAYER_DIGEST" "$CONFIG_DIGEST"; then
  eq "layer is AVAILABLE with layerSize $LAYER_SIZE" \
    "$(jv "$W/out.json" '[[l["layerAvailability"], l.get("layerSize")] for l in d["layers"] if l["layerDigest"]=="'"$LAYER_DIGEST"'"]')" \
    "[[\"AVAILABLE\", $LAYER_SIZE]]"
  eq "config is AVAILABLE with layerSize $CONFIG_SIZE" \
    "$(jv "$W/out.json" '[[l["layerAvailability"], l.get("layerSize")] for l in d["layers"] if l["layerDigest"]=="'"$CONFIG_DIGEST"'"]')" \
    "[[\"AVAILABLE\", $CONFIG_SIZE]]"
fi

# --- upload error cases (on their own uploads so the main flow is unaffected)
head -c 1000 /dev/urandom >"$W/small.bin"
BAD_UPLOAD=""
if ok "initiate-layer-upload (for wrong partFirstByte)" initiate-layer-upload --repository-name "$REPO"; then
  BAD_UPLOAD="$(jv "$W/out.json" 'd["uploadId"]')"
fi
expect_error InvalidLayerPartException "upload-layer-part with partFirstByte 1 as first part" \
  upload-layer-part --repository-name "$REPO" --upload-id "$BAD_UPLOAD" \
  --part-first-byte 1 --part-last-byte 1000 --layer-part-blob "fileb://$W/small.bin"

WRONG_UPLOAD=""
if ok "initiate-layer-upload (for wrong digest)" initiate-layer-upload --repository-name "$REPO"; then
  WRONG_UPLOAD="$(jv "$W/out.json" 'd["uploadId"]')"
fi
ok "upload-layer-part (for wrong digest)" upload-layer-part --repository-name "$REPO" --upload-id "$WRONG_UPLOAD" \
  --part-first-byte 0 --part-last-byte 999 --layer-part-blob "fileb://$W/small.bin"
WRONG_DIGEST="sha256:$(printf 'not the uploaded bytes' | sha256sum | cut -d' ' -f1)"
expect_error InvalidLayerException "complete-layer-upload with a wrong digest" \
  complete-layer-upload --repository-name "$REPO" --upload-id "$WRONG_UPLOAD" --layer-digests "$WRONG_DIGEST"

# ---------------------------------------------------------------- put-image
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%d},"layers":[{"mediaType":"%s","digest":"%s","size":%d}]}' \
  "$OCI_MANIFEST" "$OCI_CONFIG" "$CONFIG_DIGEST" "$CONFIG_SIZE" "$OCI_LAYER" "$LAYER_DIGEST" "$LAYER_SIZE" >"$W/manifest.json"
MANIFEST_DIGEST="$(sha256_of "$W/manifest.json")"

if ok "put-image (OCI manifest, tag v1)" put-image --repository-name "$REPO" --image-manifest "file://$W/manifest.json" \
  --image-manifest-media-type "$OCI_MANIFEST" --image-tag v1; then
  eq "put-image imageDigest is sha256 of the manifest bytes" "$(jv "$W/out.json" 'd["image"]["imageId"]["imageDigest"]')" "$MANIFEST_DIGEST"
  eq "put-image imageTag" "$(jv "$W/out.json" 'd["image"]["imageId"].get("imageTag")')" "v1"
  eq "put-image imageManifestMediaType" "$(jv "$W/out.json" 'd["image"].get("imageManifestMediaType")')" "$OCI_MANIFEST"
fi

# manifest referencing a layer that was never uploaded
MISSING_LAYER="sha256:$(printf 'this layer was never uploaded' | sha256sum | cut -d' ' -f1)"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%d},"layers":[{"mediaType":"%s","digest":"%s","size":29}]}' \
  "$OCI_MANIFEST" "$OCI_CONFIG" "$CONFIG_DIGEST" "$CONFIG_SIZE" "$OCI_LAYER" "$MISSING_LAYER" >"$W/bad-manifest.json"
expect_error LayersNotFoundException "put-image referencing a missing layer" \
  put-image --repository-name "$REPO" --image-manifest "file://$W/bad-manifest.json" \
  --image-manifest-media-type "$OCI_MANIFEST" --image-tag missing

# ---------------------------------------------------------------- pull side
if ok "batch-get-image by tag" batch-get-image --repository-name "$REPO" --image-ids imageTag=v1 \
  --accepted-media-types "$OCI_MANIFEST"; then
  eq "batch-get-image returns one image, no failures" "$(jv "$W/out.json" '[len(d["images"]), len(d.get("failures", []))]')" "[1, 0]"
  eq "batch-get-image manifest bytes hash to the image digest" "$(manifest_bytes_digest "$W/out.json")" "$MANIFEST_DIGEST"
  eq "batch-get-image imageId.imageDigest" "$(jv "$W/out.json" 'd["images"][0]["imageId"]["imageDigest"]')" "$MANIFEST_DIGEST"
  eq "batch-get-image imageManifestMediaType" "$(jv "$W/out.json" 'd["images"][0].get("imageManifestMediaType")')" "$OCI_MANIFEST"
fi
if ok "batch-get-image by digest" batch-get-image --repository-name "$REPO" --image-ids imageDigest="$MANIFEST_DIGEST"; then
  eq "batch-get-image by digest: manifest bytes hash to the digest" "$(manifest_bytes_digest "$W/out.json")" "$MANIFEST_DIGEST"
fi
if ok "batch-get-image of a missing tag" batch-get-image --repository-name "$REPO" --image-ids imageTag=nope; then
  eq "missing tag reported as failure ImageNotFound" \
    "$(jv "$W/out.json" '[len(d.get("images", [])), [f["failureCode"] for f in d["failures"]]]')" '[0, ["ImageNotFound"]]'
fi

DL_URL=""
if ok "get-download-url-for-layer (layer)" get-download-url-for-layer --repository-name "$REPO" --layer-digest "$LAYER_DIGEST"; then
  DL_URL="$(jv "$W/out.json" 'd["downloadUrl"]')"
  eq "get-download-url-for-layer echoes layerDigest" "$(jv "$W/out.json" 'd["layerDigest"]')" "$LAYER_DIGEST"
fi
if is_local_url "$DL_URL"; then
  pass "downloadUrl points at 127.0.0.1"
  if timeout "$STEP_TIMEOUT" curl -fsS --max-time "$STEP_TIMEOUT" -o "$W/download.bin" "$DL_URL" 2>"$W/err.txt"; then
    eq "downloaded layer sha256 equals layer digest" "$(sha256_of "$W/download.bin")" "$LAYER_DIGEST"
  else
    fail "curl GET of downloadUrl failed: $(excerpt "$W/err.txt")"
  fi
  # Over HTTP/2 (prior knowledge, h2c) the body is copied rather than sent with sendfile.
  if timeout "$STEP_TIMEOUT" curl -fsS --http2-prior-knowledge --max-time "$STEP_TIMEOUT" -o "$W/download-h2.bin" -w '%{http_version}' "$DL_URL" >"$W/h2.txt" 2>"$W/err.txt"; then
    eq "layer downloaded over h2c: HTTP version" "$(cat "$W/h2.txt")" "2"
    eq "layer downloaded over h2c: sha256 equals layer digest" "$(sha256_of "$W/download-h2.bin")" "$LAYER_DIGEST"
  else
    fail "curl GET of downloadUrl over h2c failed: $(excerpt "$W/err.txt")"
  fi
  HTTP_CODE="$(timeout "$STEP_TIMEOUT" curl -sS --max-time "$STEP_TIMEOUT" -r 100-199 -o "$W/range.bin" -w '%{http_code}' "$DL_URL" 2>"$W/err.txt")"
  eq "range request 100-199 answers 206" "$HTTP_CODE" "206"
  tail -c +101 "$W/layer.bin" | head -c 100 >"$W/expected-range.bin"
  if [ -f "$W/range.bin" ] && [ "$(size_of "$W/range.bin")" -eq 100 ] && cmp -s "$W/range.bin" "$W/expected-range.bin"; then
    pass "range request returns exactly bytes 100-199"
  else
    fail "range request 100-199: got $(size_of "$W/range.bin" 2>/dev/null || echo no) bytes, expected the 100-byte slice"
  fi
else
  fail "downloadUrl is not an http://127.0.0.1 URL: '$DL_URL'"
fi

if ok "get-download-url-for-layer (config)" get-download-url-for-layer --repository-name "$REPO" --layer-digest "$CONFIG_DIGEST"; then
  CFG_URL="$(jv "$W/out.json" 'd["downloadUrl"]')"
  if is_local_url "$CFG_URL" && timeout "$STEP_TIMEOUT" curl -fsS --max-time "$STEP_TIMEOUT" -o "$W/config-dl.json" "$CFG_URL" 2>"$W/err.txt" &&
    cmp -s "$W/config-dl.json" "$W/config.json"; then
    pass "downloaded config blob equals the uploaded bytes"
  else
    fail "config blob download (url '$CFG_URL'): $(excerpt "$W/err.txt")"
  fi
fi
expect_error LayersNotFoundException "get-download-url-for-layer of an unknown digest" \
  get-download-url-for-layer --repository-name "$REPO" --layer-digest "$MISSING_LAYER"

if ok "list-images" list-images --repository-name "$REPO"; then
  eq "list-images returns exactly {v1 -> digest}" \
    "$(jv "$W/out.json" '[[i.get("imageTag"), i.get("imageDigest")] for i in d["imageIds"]]')" "[[\"v1\", \"$MANIFEST_DIGEST\"]]"
fi
if ok "describe-images" describe-images --repository-name "$REPO"; then
  eq "describe-images returns one image with the digest" \
    "$(jv "$W/out.json" '[i["imageDigest"] for i in d["imageDetails"]]')" "[\"$MANIFEST_DIGEST\"]"
  eq "describe-images imageTags contains v1" "$(jv "$W/out.json" '"v1" in d["imageDetails"][0].get("imageTags", [])')" "true"
  eq "describe-images imageSizeInBytes > 0" "$(jv "$W/out.json" 'd["imageDetails"][0].get("imageSizeInBytes", 0) > 0')" "true"
  eq "describe-images imageManifestMediaType" "$(jv "$W/out.json" 'd["imageDetails"][0].get("imageManifestMediaType")')" "$OCI_MANIFEST"
  eq "describe-images imagePushedAt present" "$(jv "$W/out.json" '"imagePushedAt" in d["imageDetails"][0]')" "true"
fi
if ok "describe-images --image-ids imageTag=v1" describe-images --repository-name "$REPO" --image-ids imageTag=v1; then
  eq "describe-images by tag returns the digest" "$(jv "$W/out.json" '[i["imageDigest"] for i in d["imageDetails"]]')" "[\"$MANIFEST_DIGEST\"]"
fi

# ---------------------------------------------------------------- auth
PASSWORD="$(timeout "$STEP_TIMEOUT" aws ecr get-login-password --endpoint-url "$ENDPOINT" 2>"$W/err.txt")"
rc=$?
if [ "$rc" -eq 0 ] && [ -n "$PASSWORD" ] && [[ "$PASSWORD" != *:* ]]; then
  pass "get-login-password prints a non-empty password without ':'"
else
  fail "get-login-password (exit $rc, output '${PASSWORD:0:80}', stderr: $(excerpt "$W/err.txt"))"
fi
if ok "get-authorization-token" get-authorization-token; then
  PROXY="$(jv "$W/out.json" 'd["authorizationData"][0]["proxyEndpoint"]')"
  if [ -n "$PROXY" ]; then pass "get-authorization-token returns proxyEndpoint ($PROXY)"; else fail "no proxyEndpoint in get-authorization-token"; fi
  eq "authorizationToken decodes to AWS:<password>" \
    "$(jv "$W/out.json" '__import__("base64").b64decode(d["authorizationData"][0]["authorizationToken"]).decode().startswith("AWS:")')" "true"
fi

# ---------------------------------------------------------------- delete
expect_error RepositoryNotEmptyException "delete-repository of a non-empty repository without --force" \
  delete-repository --repository-name "$REPO"
if ok "delete-repository --force" delete-repository --repository-name "$REPO" --force; then
  eq "delete-repository returns the deleted repository" "$(jv "$W/out.json" 'd["repository"]["repositoryName"]')" "$REPO"
fi
expect_error RepositoryNotFoundException "describe-repositories after delete" describe-repositories --repository-names "$REPO"
ok "delete-repository of the empty IMMUTABLE repository (no --force)" delete-repository --repository-name "$REPO_IMM"

# ---------------------------------------------------------------- signatures
# The server verifies SigV4 against the key run.sh gave it: a wrong secret, an unknown key and
# a request signed for a malformed region are refused with AWS's exceptions (every well-formed
# region is served, each its own registry: regions_cli_flow.sh).
AWS_SECRET_ACCESS_KEY=wrong-secret expect_error InvalidSignatureException "a request signed with the wrong secret" \
  describe-repositories
AWS_ACCESS_KEY_ID=AKIDUNKNOWN expect_error UnrecognizedClientException "a request signed with an unknown access key" \
  describe-repositories
AWS_DEFAULT_REGION=us-east AWS_REGION=us-east expect_error InvalidSignatureException "a request signed for a malformed region" \
  describe-repositories

finish
