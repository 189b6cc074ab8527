#!/usr/bin/env bash
# ECR Public meets /v2: an image pushed through ECR Public's layer flow and PutImage is pulled
# by skopeo without credentials; skopeo pushes to a public repository after
# `aws ecr-public get-login-password` (and not with ECR's password, nor with none); the image
# it pushed is listed by `aws ecr-public describe-images`.
#
# Expects ENDPOINT and dummy AWS credentials in the environment (run.sh sets them up). Prints
# one "PASS: ..." / "FAIL: ..." line per check and, last, "CHECKS passed=N failed=M".
#
# Deliberately no `set -e`: a failing check is recorded and the flow continues.
set -uo pipefail

: "${ENDPOINT:?ENDPOINT must be set (http://127.0.0.1:PORT)}"
STEP_TIMEOUT="${STEP_TIMEOUT:-60}"

W="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-public-skopeo.XXXXXX")"
trap 'rm -rf "$W"' EXIT

. "$(dirname "$0")/lib.sh"

if ! command -v skopeo >/dev/null 2>&1; then
  fail "skopeo is not installed (apt-get install skopeo)"
  finish
fi

HOST="${ENDPOINT#http://}"
mkdir -p "$W/registries.d" "$W/tmp"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$W/policy.json"
sk() {
  timeout "$STEP_TIMEOUT" skopeo --policy "$W/policy.json" --registries.d "$W/registries.d" --tmpdir "$W/tmp" "$@"
}
pub() {
  timeout "$STEP_TIMEOUT" aws ecr-public "$@" --endpoint-url "$ENDPOINT" --region us-east-1 --output json
}
pok() {
  local desc=$1
  shift
  succeeds "$desc" "$W/out.json" "$W/err.txt" pub "$@"
}

SRC_REPO="pub-sk/base"
PUSH_REPO="pub-sk/pushed"
echo "== public_skopeo_flow: endpoint $ENDPOINT, $(skopeo --version)"

pok "describe-registries" describe-registries
ALIAS="$(jv "$W/out.json" 'd["registries"][0]["aliases"][0]["name"]')"
pok "create-repository $SRC_REPO" create-repository --repository-name "$SRC_REPO"
pok "create-repository $PUSH_REPO" create-repository --repository-name "$PUSH_REPO"

# ------------------------------------------------ an image through ECR Public's API
mkdir -p "$W/gen/files"
head -c 100000 /dev/urandom >"$W/gen/files/data.bin"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$W/gen/files" -cf "$W/gen/layer.tar" .
gzip -1 -n -c "$W/gen/layer.tar" >"$W/gen/layer.tar.gz"
python3 - "$W/gen" "$(sha256_of "$W/gen/layer.tar")" <<'PY'
import json, sys
d, diff_id = sys.argv[1:3]
open(d + "/config.json", "w").write(json.dumps({"architecture": "amd64", "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}}, separators=(",", ":")))
PY
api_push() { # api_push FILE: the ECR Public layer flow, in one part
  local file=$1 id
  pok "initiate-layer-upload" initiate-layer-upload --repository-name "$SRC_REPO" || return 1
  id="$(jv "$W/out.json" 'd["uploadId"]')"
  pok "upload-layer-part $(basename "$file")" upload-layer-part --repository-name "$SRC_REPO" --upload-id "$id" \
    --part-first-byte 0 --part-last-byte $(($(size_of "$file") - 1)) --layer-part-blob "fileb://$file"
  pok "complete-layer-upload $(basename "$file")" complete-layer-upload --repository-name "$SRC_REPO" --upload-id "$id" \
    --layer-digests "$(sha256_of "$file")"
}
api_push "$W/gen/layer.tar.gz"
api_push "$W/gen/config.json"
python3 - "$W/gen" "$(sha256_of "$W/gen/config.json")" "$(size_of "$W/gen/config.json")" \
  "$(sha256_of "$W/gen/layer.tar.gz")" "$(size_of "$W/gen/layer.tar.gz")" <<'PY'
import json, sys
d, cd, cs, ld, ls = sys.argv[1:6]
open(d + "/manifest.json", "w").write(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": int(cs)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": int(ls)}]},
    separators=(",", ":")))
PY
pok "put-image $SRC_REPO:v1" put-image --repository-name "$SRC_REPO" --image-manifest "file://$W/gen/manifest.json" --image-tag v1
MANIFEST_DIGEST="$(sha256_of "$W/gen/manifest.json")"

# ------------------------------------------------ anonymous pull
if succeeds "skopeo inspect without credentials" "$W/sk.out" "$W/sk.err" \
  sk inspect --tls-verify=false --no-creds --raw "docker://$HOST/$ALIAS/$SRC_REPO:v1"; then
  eq "the manifest pulled anonymously is the one PutImage stored" "$(sha256_of "$W/sk.out")" "$MANIFEST_DIGEST"
fi
if succeeds "skopeo copy (anonymous) to an OCI layout" "$W/sk.out" "$W/sk.err" \
  sk copy --src-tls-verify=false --src-no-creds "docker://$HOST/$ALIAS/$SRC_REPO:v1" "oci:$W/pulled:v1"; then
  eq "the pulled layer is the pushed one" \
    "$(sha256sum "$W/pulled/blobs/sha256/$(basename "$(sha256_of "$W/gen/layer.tar.gz" | cut -d: -f2)")" 2>/dev/null | cut -d' ' -f1)" \
    "$(sha256_of "$W/gen/layer.tar.gz" | cut -d: -f2)"
fi

# ------------------------------------------------ pushes need ECR Public's password
rc=0
sk copy --dest-tls-verify=false --dest-no-creds "oci:$W/pulled:v1" "docker://$HOST/$ALIAS/$PUSH_REPO:anon" >"$W/sk.out" 2>"$W/sk.err" || rc=$?
if [ "$rc" -ne 0 ] && grep -Eiq "unauthorized|authentication required|401" "$W/sk.err"; then
  pass "an anonymous skopeo push is refused"
else
  fail "anonymous push: exit $rc; $(excerpt "$W/sk.err")"
fi
PRIVATE="$(timeout "$STEP_TIMEOUT" aws ecr get-login-password --endpoint-url "$ENDPOINT" --region us-east-1 2>/dev/null)"
rc=0
sk copy --dest-tls-verify=false --dest-creds "AWS:$PRIVATE" "oci:$W/pulled:v1" "docker://$HOST/$ALIAS/$PUSH_REPO:private" >"$W/sk.out" 2>"$W/sk.err" || rc=$?
if [ "$rc" -ne 0 ] && grep -Eiq "unauthorized|authentication required|401" "$W/sk.err"; then
  pass "a push with ECR's (private) password is refused"
else
  fail "push with the private password: exit $rc; $(excerpt "$W/sk.err")"
fi
PASSWORD="$(timeout "$STEP_TIMEOUT" aws ecr-public get-login-password --endpoint-url "$ENDPOINT" --region us-east-1 2>"$W/err.txt")"
rc=0
printf '%s' "$PASSWORD" | sk login --tls-verify=false --authfile "$W/auth.json" --username AWS --password-stdin "$HOST" \
  >"$W/sk.out" 2>"$W/sk.err" || rc=$?
if [ "$rc" -eq 0 ] && grep -q "Login Succeeded" "$W/sk.out"; then
  pass "aws ecr-public get-login-password | skopeo login --username AWS --password-stdin"
else
  fail "skopeo login with the public password: exit $rc; $(excerpt "$W/sk.err")"
fi
succeeds "skopeo copy to $ALIAS/$PUSH_REPO:v2 after the login" "$W/sk.out" "$W/sk.err" \
  sk copy --dest-tls-verify=false --authfile "$W/auth.json" "oci:$W/pulled:v1" "docker://$HOST/$ALIAS/$PUSH_REPO:v2"
if pok "describe-images $PUSH_REPO" describe-images --repository-name "$PUSH_REPO"; then
  eq "the image skopeo pushed is listed with its tag" "$(jv "$W/out.json" '[i.get("imageTags") for i in d["imageDetails"]]')" '[["v2"]]'
fi
# No creation on push, as ECR Public.
rc=0
sk copy --dest-tls-verify=false --authfile "$W/auth.json" "oci:$W/pulled:v1" "docker://$HOST/$ALIAS/pub-sk/never-created:v1" >"$W/sk.out" 2>"$W/sk.err" || rc=$?
if [ "$rc" -ne 0 ]; then pass "a push to a repository never created is refused"; else fail "push to a missing public repository succeeded"; fi

pok "delete-repository $SRC_REPO" delete-repository --repository-name "$SRC_REPO" --force
pok "delete-repository $PUSH_REPO" delete-repository --repository-name "$PUSH_REPO" --force
finish
