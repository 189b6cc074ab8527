#!/usr/bin/env bash
# End-to-end flow of regions with the aws CLI (`--region`): one server, each (account, region)
# a registry of its own. Repositories, images, policies and tokens of one region are not seen
# from another; ARNs carry the region; a malformed region name is refused as AWS refuses it.
#
# Expects ENDPOINT and AWS credentials in the environment (run.sh sets them up). Prints one
# "PASS: ..." / "FAIL: ..." line per check and, last, "CHECKS passed=N failed=M".
#
# Deliberately no `set -e`: a failing check is recorded and the flow continues.
set -uo pipefail

: "${ENDPOINT:?ENDPOINT must be set (http://127.0.0.1:PORT)}"
STEP_TIMEOUT="${STEP_TIMEOUT:-60}"

W="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-regions-cli.XXXXXX")"
trap 'rm -rf "$W"' EXIT

. "$(dirname "$0")/lib.sh"

REPO="regions-cli/app"
# in REGION ecr-args...  -- aws ecr signed for REGION
in_region() {
  local region=$1
  shift
  timeout "$STEP_TIMEOUT" aws ecr "$@" --endpoint-url "$ENDPOINT" --region "$region" --output json
}
# rok REGION DESC args...  -- must succeed; stdout -> $W/out.json
rok() {
  local region=$1 desc=$2
  shift 2
  succeeds "$desc ($region)" "$W/out.json" "$W/err.txt" in_region "$region" "$@"
}
# rerr REGION EXCEPTION DESC args...  -- must fail naming EXCEPTION
rerr() {
  local region=$1 exc=$2 desc=$3 rc=0
  shift 3
  in_region "$region" "$@" >"$W/out.json" 2>"$W/err.txt" || rc=$?
  if [ "$rc" -ne 0 ] && grep -q "($exc)" "$W/err.txt"; then
    pass "$desc ($region) -> $exc"
  else
    fail "$desc ($region): expected $exc, got exit $rc; stderr: $(excerpt "$W/err.txt")"
  fi
}

# One repository name in two regions; a third region has none.
for region in us-west-2 eu-central-1; do
  if rok "$region" "create $REPO" create-repository --repository-name "$REPO"; then
    eq "ARN names $region" "$(jv "$W/out.json" 'd["repository"]["repositoryArn"]')" \
      "arn:aws:ecr:$region:000000000000:repository/$REPO"
  fi
done
rok us-west-2 "create regions-cli/only-west" create-repository --repository-name regions-cli/only-west
rerr eu-central-1 RepositoryNotFoundException "the other region's repository is not there" \
  describe-repositories --repository-names regions-cli/only-west
rerr ap-northeast-1 RepositoryNotFoundException "a third region has neither" \
  describe-repositories --repository-names "$REPO"
if rok ap-northeast-1 "list repositories" describe-repositories; then
  eq "a third region lists none of them" \
    "$(jv "$W/out.json" 'len([r for r in d["repositories"] if r["repositoryName"].startswith("regions-cli/")])')" "0"
fi

# Different images under the same name: a config blob uploaded in one region only.
printf '{"region":"us-west-2"}' >"$W/config.json"
digest=$(sha256_of "$W/config.json")
if rok us-west-2 "initiate an upload" initiate-layer-upload --repository-name "$REPO"; then
  upload=$(jv "$W/out.json" 'd["uploadId"]')
  rok us-west-2 "upload the config" upload-layer-part --repository-name "$REPO" --upload-id "$upload" \
    --part-first-byte 0 --part-last-byte $(($(size_of "$W/config.json") - 1)) \
    --layer-part-blob "fileb://$W/config.json"
  rok us-west-2 "complete the upload" complete-layer-upload --repository-name "$REPO" \
    --upload-id "$upload" --layer-digests "$digest"
fi
if rok us-west-2 "the blob is there" batch-check-layer-availability --repository-name "$REPO" \
  --layer-digests "$digest"; then
  eq "available in us-west-2" "$(jv "$W/out.json" 'd["layers"][0]["layerAvailability"]')" "AVAILABLE"
fi
if rok eu-central-1 "check the blob" batch-check-layer-availability --repository-name "$REPO" \
  --layer-digests "$digest"; then
  eq "unavailable in eu-central-1" "$(jv "$W/out.json" 'd["layers"][0]["layerAvailability"]')" "UNAVAILABLE"
fi

# Registry policies are per registry.
policy='{"Version":"2012-10-17","Statement":[{"Sid":"r","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"ecr:CreateRepository","Resource":"*"}]}'
rok eu-central-1 "put a registry policy" put-registry-policy --policy-text "$policy"
rerr us-west-2 RegistryPolicyNotFoundException "the other region has no registry policy" get-registry-policy
rok eu-central-1 "delete the registry policy" delete-registry-policy

# TagResource by another region's ARN is refused; by its own, it works.
rerr us-west-2 InvalidParameterException "tag another region's repository" tag-resource \
  --resource-arn "arn:aws:ecr:eu-central-1:000000000000:repository/$REPO" --tags Key=k,Value=v
rok us-west-2 "tag its own repository" tag-resource \
  --resource-arn "arn:aws:ecr:us-west-2:000000000000:repository/$REPO" --tags Key=k,Value=v
if rok eu-central-1 "list the other's tags" list-tags-for-resource \
  --resource-arn "arn:aws:ecr:eu-central-1:000000000000:repository/$REPO"; then
  eq "the other region's repository is untagged" "$(jv "$W/out.json" 'len(d["tags"])')" "0"
fi

# A token per region: a us-west-2 password opens us-west-2's registry on /v2, not the default.
pw=$(timeout "$STEP_TIMEOUT" aws ecr get-login-password --endpoint-url "$ENDPOINT" --region us-west-2 2>"$W/err.txt")
status=$(curl -s -o /dev/null -w '%{http_code}' -u "AWS:$pw" "$ENDPOINT/v2/$REPO/tags/list")
eq "a us-west-2 token is no token on the default region's host" "$status" "401"

# A malformed region name is refused, with AWS's wording.
rerr us-east "InvalidSignatureException" "sign for 'us-east'" describe-repositories
if grep -q "Credential should be scoped to a valid region, not 'us-east'" "$W/err.txt"; then
  pass "the refusal names the region"
else
  fail "the refusal names the region: $(excerpt "$W/err.txt")"
fi

for region in us-west-2 eu-central-1; do
  rok "$region" "delete $REPO" delete-repository --repository-name "$REPO" --force
done
rok us-west-2 "delete regions-cli/only-west" delete-repository --repository-name regions-cli/only-west

echo "CHECKS passed=$PASSED failed=$FAILED"
[ "$FAILED" -eq 0 ]
