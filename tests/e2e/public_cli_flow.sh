#!/usr/bin/env bash
# End-to-end flow of ECR Public (`aws ecr-public ...`) against a running berth server: every
# operation of the API and some of its refusals, with the real aws CLI.
#
# Expects ENDPOINT and dummy AWS credentials in the environment (run.sh sets them up). Prints
# one "PASS: ..." / "FAIL: ..." line per check and, last, "CHECKS passed=N failed=M".
#
# Deliberately no `set -e`: a failing check is recorded and the flow continues.
set -uo pipefail

: "${ENDPOINT:?ENDPOINT must be set (http://127.0.0.1:PORT)}"
STEP_TIMEOUT="${STEP_TIMEOUT:-60}"

W="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-public-cli.XXXXXX")"
trap 'rm -rf "$W"' EXIT

. "$(dirname "$0")/lib.sh"

# aws ecr-public <args...>: ECR Public answers in us-east-1 only.
pub() {
  timeout "$STEP_TIMEOUT" aws ecr-public "$@" --endpoint-url "$ENDPOINT" --region us-east-1 --output json
}
pok() {
  local desc=$1
  shift
  succeeds "$desc" "$W/out.json" "$W/err.txt" pub "$@"
}
# pub_error EXCEPTION DESC args...  -- must fail naming EXCEPTION
pub_error() {
  local exc=$1 desc=$2 rc=0
  shift 2
  pub "$@" >"$W/out.json" 2>"$W/err.txt" || rc=$?
  if [ "$rc" -ne 0 ] && grep -q "($exc)" "$W/err.txt"; then
    pass "$desc -> $exc"
  else
    fail "$desc: expected $exc, got exit $rc; stderr: $(excerpt "$W/err.txt"); stdout: $(excerpt "$W/out.json")"
  fi
}

REPO="pub-cli/app"
HOST="${ENDPOINT#http://}"
OCI_MANIFEST="application/vnd.oci.image.manifest.v1+json"

echo "== public_cli_flow: endpoint $ENDPOINT"

# ---------------------------------------------------------------- the registry
ALIAS=""
if pok "describe-registries" describe-registries; then
  ALIAS="$(jv "$W/out.json" 'd["registries"][0]["aliases"][0]["name"]')"
  ACCOUNT="$(jv "$W/out.json" 'd["registries"][0]["registryId"]')"
  eq "the registry's URI is <host>/<alias>" "$(jv "$W/out.json" 'd["registries"][0]["registryUri"]')" "$HOST/$ALIAS"
  eq "the alias is ACTIVE, primary and default" \
    "$(jv "$W/out.json" '[d["registries"][0]["aliases"][0][k] for k in ("status","primaryRegistryAlias","defaultRegistryAlias")]')" \
    '["ACTIVE", true, true]'
  eq "registryArn" "$(jv "$W/out.json" 'd["registries"][0]["registryArn"]')" "arn:aws:ecr-public::$ACCOUNT:registry/$ACCOUNT"
fi
if pok "put-registry-catalog-data --display-name" put-registry-catalog-data --display-name "Acme Images"; then
  eq "put-registry-catalog-data answers the name" "$(jv "$W/out.json" 'd["registryCatalogData"]["displayName"]')" "Acme Images"
fi
if pok "get-registry-catalog-data" get-registry-catalog-data; then
  eq "get-registry-catalog-data reads it back" "$(jv "$W/out.json" 'd["registryCatalogData"]["displayName"]')" "Acme Images"
fi

# ---------------------------------------------------------------- repositories
printf '{"description":"CLI app","architectures":["x86-64"],"operatingSystems":["Linux"],"aboutText":"About","usageText":"Usage"}' >"$W/catalog.json"
if pok "create-repository $REPO with catalog data and tags" create-repository --repository-name "$REPO" \
  --catalog-data "file://$W/catalog.json" --tags Key=team,Value=core; then
  eq "repositoryUri is <host>/<alias>/<name>" "$(jv "$W/out.json" 'd["repository"]["repositoryUri"]')" "$HOST/$ALIAS/$REPO"
  ARN="$(jv "$W/out.json" 'd["repository"]["repositoryArn"]')"
  eq "repositoryArn is ECR Public's" "$ARN" "arn:aws:ecr-public::$ACCOUNT:repository/$REPO"
  eq "catalogData echoed" "$(jv "$W/out.json" 'd["catalogData"]["description"]')" "CLI app"
else
  ARN=""
fi
pub_error RepositoryAlreadyExistsException "create-repository $REPO again" create-repository --repository-name "$REPO"
if pok "describe-repositories" describe-repositories; then
  eq "describe-repositories lists the public repository" "$(jv "$W/out.json" '[r["repositoryName"] for r in d["repositories"]]')" "[\"$REPO\"]"
fi
if pok "get-repository-catalog-data" get-repository-catalog-data --repository-name "$REPO"; then
  eq "aboutText" "$(jv "$W/out.json" 'd["catalogData"]["aboutText"]')" "About"
fi
# The aws CLI v1 sends a blob given inline as the bytes of its text (base64-encoding them on
# the wire), so the logo stored and served is exactly this text.
printf 'berth-logo-bytes' >"$W/logo.png"
if pok "put-repository-catalog-data with a logo" put-repository-catalog-data --repository-name "$REPO" \
  --catalog-data '{"description":"Changed","logoImageBlob":"berth-logo-bytes"}'; then
  LOGO_URL="$(jv "$W/out.json" 'd["catalogData"]["logoUrl"]')"
  if is_local_url "$LOGO_URL" && curl -sf --max-time "$STEP_TIMEOUT" "$LOGO_URL" -o "$W/logo.got" && cmp -s "$W/logo.got" "$W/logo.png"; then
    pass "the logo is served at logoUrl without credentials"
  else
    fail "logo at '$LOGO_URL' not served back"
  fi
fi

# ---------------------------------------------------------------- tags
if [ -n "$ARN" ]; then
  pok "tag-resource" tag-resource --resource-arn "$ARN" --tags Key=env,Value=prod
  pok "untag-resource" untag-resource --resource-arn "$ARN" --tag-keys team
  if pok "list-tags-for-resource" list-tags-for-resource --resource-arn "$ARN"; then
    eq "tags after tag and untag" "$(jv "$W/out.json" 'd["tags"]')" '[{"Key": "env", "Value": "prod"}]'
  fi
fi
pub_error InvalidTagParameterException "tag-resource with a 129-character key" \
  tag-resource --resource-arn "arn:aws:ecr-public::$ACCOUNT:repository/$REPO" --tags "Key=$(printf 'k%.0s' $(seq 129)),Value=v"
pub_error InvalidParameterException "list-tags-for-resource with a private ARN" \
  list-tags-for-resource --resource-arn "arn:aws:ecr:us-east-1:$ACCOUNT:repository/$REPO"

# ---------------------------------------------------------------- layers and images
head -c 3000 /dev/urandom >"$W/layer.bin"
printf '{"architecture":"amd64","os":"linux"}' >"$W/config.json"
push_blob() { # push_blob FILE -> digest on stdout; checks recorded
  local file=$1 id
  pok "initiate-layer-upload ($(basename "$file"))" initiate-layer-upload --repository-name "$REPO" || return 1
  id="$(jv "$W/out.json" 'd["uploadId"]')"
  pok "upload-layer-part ($(basename "$file"))" upload-layer-part --repository-name "$REPO" --upload-id "$id" \
    --part-first-byte 0 --part-last-byte $(($(size_of "$file") - 1)) --layer-part-blob "fileb://$file" || return 1
  pok "complete-layer-upload ($(basename "$file"))" complete-layer-upload --repository-name "$REPO" --upload-id "$id" \
    --layer-digests "$(sha256_of "$file")" || return 1
  eq "complete-layer-upload answers the digest" "$(jv "$W/out.json" 'd["layerDigest"]')" "$(sha256_of "$file")"
}
push_blob "$W/layer.bin" >/dev/null
push_blob "$W/config.json" >/dev/null
if pok "batch-check-layer-availability" batch-check-layer-availability --repository-name "$REPO" \
  --layer-digests "$(sha256_of "$W/layer.bin")" "sha256:0000000000000000000000000000000000000000000000000000000000000000"; then
  eq "the pushed layer is AVAILABLE, the other UNAVAILABLE" "$(jv "$W/out.json" '[l["layerAvailability"] for l in d["layers"]]')" '["AVAILABLE", "UNAVAILABLE"]'
fi
python3 - "$W" "$(sha256_of "$W/config.json")" "$(size_of "$W/config.json")" "$(sha256_of "$W/layer.bin")" "$(size_of "$W/layer.bin")" <<'PY'
import json, sys
w, cd, cs, ld, ls = sys.argv[1:6]
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": int(cs)},
     "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": int(ls)}]}
open(w + "/manifest.json", "w").write(json.dumps(m, separators=(",", ":")))
PY
if pok "put-image v1" put-image --repository-name "$REPO" --image-manifest "file://$W/manifest.json" --image-tag v1 --image-manifest-media-type "$OCI_MANIFEST"; then
  DIGEST="$(jv "$W/out.json" 'd["image"]["imageId"]["imageDigest"]')"
  eq "put-image digest is the manifest's sha256" "$DIGEST" "$(sha256_of "$W/manifest.json")"
fi
pok "put-image latest (same manifest), registry named by alias" put-image --registry-id "$ALIAS" --repository-name "$REPO" \
  --image-manifest "file://$W/manifest.json" --image-tag latest
if pok "describe-images" describe-images --repository-name "$REPO"; then
  eq "describe-images: one image with both tags" "$(jv "$W/out.json" '[len(d["imageDetails"]), sorted(d["imageDetails"][0]["imageTags"])]')" '[1, ["latest", "v1"]]'
fi
if pok "describe-image-tags" describe-image-tags --repository-name "$REPO"; then
  eq "describe-image-tags: both tags" "$(jv "$W/out.json" 'sorted(t["imageTag"] for t in d["imageTagDetails"])')" '["latest", "v1"]'
fi
if pok "batch-delete-image latest" batch-delete-image --repository-name "$REPO" --image-ids imageTag=latest; then
  eq "one image id deleted" "$(jv "$W/out.json" 'len(d["imageIds"])')" "1"
fi

# ---------------------------------------------------------------- policies
POLICY='{"Version":"2012-10-17","Statement":[{"Sid":"ci","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":["ecr-public:PutImage"]}]}'
pub_error RepositoryPolicyNotFoundException "get-repository-policy before any" get-repository-policy --repository-name "$REPO"
pok "set-repository-policy" set-repository-policy --repository-name "$REPO" --policy-text "$POLICY"
if pok "get-repository-policy" get-repository-policy --repository-name "$REPO"; then
  eq "the policy reads back" "$(jv "$W/out.json" '__import__("json").loads(d["policyText"])["Statement"][0]["Sid"]')" "ci"
fi
pok "delete-repository-policy" delete-repository-policy --repository-name "$REPO"

# ---------------------------------------------------------------- tokens
PASSWORD="$(timeout "$STEP_TIMEOUT" aws ecr-public get-login-password --endpoint-url "$ENDPOINT" --region us-east-1 2>"$W/err.txt")"
if [ -n "$PASSWORD" ]; then pass "aws ecr-public get-login-password"; else fail "get-login-password: $(excerpt "$W/err.txt")"; fi
if pok "get-authorization-token" get-authorization-token; then
  eq "the token is AWS:<password>" "$(jv "$W/out.json" '__import__("base64").b64decode(d["authorizationData"]["authorizationToken"]).decode().startswith("AWS:")')" "true"
fi
# Basic auth with the public password against /v2 of the public repository.
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time "$STEP_TIMEOUT" -u "AWS:$PASSWORD" "$ENDPOINT/v2/$ALIAS/$REPO/manifests/v1" -H "Accept: $OCI_MANIFEST")"
eq "GET /v2/<alias>/<name>/manifests/v1 with the public password" "$code" "200"
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time "$STEP_TIMEOUT" "$ENDPOINT/v2/$ALIAS/$REPO/manifests/v1" -H "Accept: $OCI_MANIFEST")"
eq "GET /v2/<alias>/<name>/manifests/v1 anonymously" "$code" "200"

# ---------------------------------------------------------------- refusals
pub_error InvalidParameterException "create-repository with a 206-character name" create-repository --repository-name "$(printf 'a%.0s' $(seq 206))"
pub_error InvalidParameterException "create-repository with a__b" create-repository --repository-name "a__b"
pub_error InvalidParameterException "create-repository with a 1025-character description" create-repository --repository-name pub-cli/long \
  --catalog-data "description=$(printf 'd%.0s' $(seq 1025))"
pub_error RepositoryNotFoundException "describe-images of a missing repository" describe-images --repository-name pub-cli/missing
pub_error RegistryNotFoundException "initiate-layer-upload in an unknown alias" initiate-layer-upload --registry-id nosuchalias --repository-name "$REPO"
pub_error RepositoryNotEmptyException "delete-repository holding an image" delete-repository --repository-name "$REPO"
rc=0
timeout "$STEP_TIMEOUT" aws ecr-public describe-registries --endpoint-url "$ENDPOINT" --region us-west-2 --output json >"$W/out.json" 2>"$W/err.txt" || rc=$?
if [ "$rc" -ne 0 ] && grep -q "(UnsupportedCommandException)" "$W/err.txt" && grep -q "only supported in us-east-1" "$W/err.txt"; then
  pass "describe-registries in us-west-2 -> UnsupportedCommandException"
else
  fail "describe-registries in us-west-2: exit $rc; stderr: $(excerpt "$W/err.txt")"
fi

if pok "delete-repository --force" delete-repository --repository-name "$REPO" --force; then
  eq "delete-repository answers the repository" "$(jv "$W/out.json" 'd["repository"]["repositoryName"]')" "$REPO"
fi
pub_error RepositoryNotFoundException "describe-repositories after the delete" describe-repositories --repository-names "$REPO"

finish
