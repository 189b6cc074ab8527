#!/usr/bin/env bash
# Replication (issue 16) through the real `aws` CLI: put-replication-configuration and its
# refusals, describe-registry showing the rules, and a push that a rule matches reported by
# describe-image-replication-status (FAILED with PERMISSION_DENIED: the destination account
# 111111111111 has no registry policy allowing ecr:ReplicateImage). The configuration is
# cleared at the end, so the flows after this one push without replication.
#
# Expects ENDPOINT and dummy AWS credentials (run.sh sets them up). Prints PASS/FAIL lines and
# "CHECKS passed=N failed=M" last. No `set -e`: a failing check is recorded and the flow goes on.
set -uo pipefail

: "${ENDPOINT:?ENDPOINT must be set (http://127.0.0.1:PORT)}"
STEP_TIMEOUT="${STEP_TIMEOUT:-60}"

W="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-repl.XXXXXX")"
trap 'rm -rf "$W"' EXIT

. "$(dirname "$0")/lib.sh"

echo "== replication_cli_flow: endpoint $ENDPOINT"

rules() { printf '{"rules":[{"destinations":[{"region":"%s","registryId":"%s"}],"repositoryFilters":[{"filter":"%s","filterType":"PREFIX_MATCH"}]}]}' "$1" "$2" "$3"; }

GOOD="$(rules us-east-1 111111111111 cli-repl/)"
if ok "put-replication-configuration" put-replication-configuration --replication-configuration "$GOOD"; then
  eq "the configuration is answered as given" \
    "$(jv "$W/out.json" 'd["replicationConfiguration"]["rules"][0]["destinations"][0]["registryId"]')" "111111111111"
fi
if ok "describe-registry" describe-registry; then
  eq "describe-registry shows the rule's filter" \
    "$(jv "$W/out.json" 'd["replicationConfiguration"]["rules"][0]["repositoryFilters"][0]["filter"]')" "cli-repl/"
fi
expect_error InvalidParameterException "the source registry as its own destination" \
  put-replication-configuration --replication-configuration "$(rules us-east-1 000000000000 cli-repl/)"
expect_error InvalidParameterException "a registry id that is not 12 digits" \
  put-replication-configuration --replication-configuration "$(rules us-east-1 1234 cli-repl/)"
expect_error InvalidParameterException "an upper-case repository filter" \
  put-replication-configuration --replication-configuration "$(rules us-east-1 111111111111 Cli)"
expect_error InvalidParameterException "filterType SUFFIX_MATCH" \
  put-replication-configuration --replication-configuration \
  '{"rules":[{"destinations":[],"repositoryFilters":[{"filter":"cli","filterType":"SUFFIX_MATCH"}]}]}'
if ok "describe-registry after the refusals" describe-registry; then
  eq "the refusals changed nothing" \
    "$(jv "$W/out.json" 'd["replicationConfiguration"]["rules"][0]["destinations"][0]["region"]')" "us-east-1"
fi

# A push the rule matches: a config blob, no layers, then put-image.
REPO=cli-repl/app
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/config.json"
CONFIG_DIGEST="$(sha256_of "$W/config.json")"
CONFIG_SIZE="$(size_of "$W/config.json")"
ok "create-repository $REPO" create-repository --repository-name "$REPO"
UPLOAD=""
if ok "initiate-layer-upload (config)" initiate-layer-upload --repository-name "$REPO"; then
  UPLOAD="$(jv "$W/out.json" 'd["uploadId"]')"
fi
ok "upload-layer-part (config)" upload-layer-part --repository-name "$REPO" --upload-id "$UPLOAD" \
  --part-first-byte 0 --part-last-byte $((CONFIG_SIZE - 1)) --layer-part-blob "fileb://$W/config.json"
ok "complete-layer-upload (config)" complete-layer-upload --repository-name "$REPO" --upload-id "$UPLOAD" \
  --layer-digests "$CONFIG_DIGEST"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
  "$CONFIG_DIGEST" "$CONFIG_SIZE" >"$W/manifest.json"
DIGEST=""
if ok "put-image $REPO:v1" put-image --repository-name "$REPO" --image-tag v1 \
  --image-manifest "file://$W/manifest.json"; then
  DIGEST="$(jv "$W/out.json" 'd["image"]["imageId"]["imageDigest"]')"
fi
STATUS=""
for _ in $(seq 1 60); do
  if ecr describe-image-replication-status --repository-name "$REPO" --image-id imageTag=v1 \
    >"$W/status.json" 2>"$W/err.txt"; then
    STATUS="$(jv "$W/status.json" '[s["status"] for s in d["replicationStatuses"]]')"
    [ "$STATUS" = '["FAILED"]' ] && break
  fi
  sleep 0.5
done
eq "the replication to an account that does not allow it FAILED" "$STATUS" '["FAILED"]'
eq "its failure code" "$(jv "$W/status.json" 'd["replicationStatuses"][0]["failureCode"]')" "PERMISSION_DENIED"
eq "the status names the destination" \
  "$(jv "$W/status.json" '[d["replicationStatuses"][0]["region"], d["replicationStatuses"][0]["registryId"]]')" \
  '["us-east-1", "111111111111"]'
eq "the status names the image by digest" "$(jv "$W/status.json" 'd["imageId"]["imageDigest"]')" "$DIGEST"
expect_error ImageNotFoundException "describe-image-replication-status of a missing tag" \
  describe-image-replication-status --repository-name "$REPO" --image-id imageTag=nope
expect_error RepositoryNotFoundException "describe-image-replication-status of a missing repository" \
  describe-image-replication-status --repository-name cli-repl/none --image-id imageTag=v1

if ok "put-replication-configuration with no rules" put-replication-configuration \
  --replication-configuration '{"rules":[]}'; then
  ok "describe-registry after clearing" describe-registry
  eq "no rules are left" "$(jv "$W/out.json" 'd["replicationConfiguration"]["rules"]')" "[]"
fi
ok "delete-repository $REPO" delete-repository --repository-name "$REPO" --force

finish
