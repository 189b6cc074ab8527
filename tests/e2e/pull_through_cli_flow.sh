#!/usr/bin/env bash
# The pull-through cache rule operations (issue 16) through the real `aws` CLI: create,
# describe, update, validate, delete, and ECR's errors for bad input. Every upstream named here
# is on 127.0.0.1 (nothing listens on port 1) or is never contacted.
#
# Expects ENDPOINT and dummy AWS credentials (run.sh sets them up). Prints PASS/FAIL lines and
# "CHECKS passed=N failed=M" last. No `set -e`: a failing check is recorded and the flow goes on.
set -uo pipefail

: "${ENDPOINT:?ENDPOINT must be set (http://127.0.0.1:PORT)}"
STEP_TIMEOUT="${STEP_TIMEOUT:-60}"

W="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-ptc.XXXXXX")"
trap 'rm -rf "$W"' EXIT

. "$(dirname "$0")/lib.sh"

UNKNOWN_ARN="arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/not-configured"

echo "== pull_through_cli_flow: endpoint $ENDPOINT"

# The aws CLI v1 fetches a parameter that looks like a URL and sends what it got: URLs go in
# through --cli-input-json, so that the CLI never reaches for them.
rule_json() { printf '{"ecrRepositoryPrefix": "%s", "upstreamRegistryUrl": "%s"}' "$1" "$2"; }

if ok "create-pull-through-cache-rule cli-quay" create-pull-through-cache-rule \
  --ecr-repository-prefix cli-quay/ --upstream-registry-url quay.io --upstream-registry quay \
  --upstream-repository-prefix prometheus; then
  eq "the assumed trailing / is not part of the prefix" "$(jv "$W/out.json" 'd["ecrRepositoryPrefix"]')" "cli-quay"
  eq "upstreamRepositoryPrefix is answered" "$(jv "$W/out.json" 'd["upstreamRepositoryPrefix"]')" "prometheus"
  eq "upstreamRegistry is answered" "$(jv "$W/out.json" 'd["upstreamRegistry"]')" "quay"
fi
expect_error PullThroughCacheRuleAlreadyExistsException "create the same prefix again" \
  create-pull-through-cache-rule --ecr-repository-prefix cli-quay --upstream-registry-url quay.io
expect_error UnsupportedUpstreamRegistryException "http:// upstream off loopback" \
  create-pull-through-cache-rule --cli-input-json "$(rule_json cli-http http://mirror.example)"
expect_error UnsupportedUpstreamRegistryException "upstream URL with a path" \
  create-pull-through-cache-rule --cli-input-json "$(rule_json cli-path https://quay.io/x)"
expect_error InvalidParameterException "upstream prefix that breaks the model's pattern" \
  create-pull-through-cache-rule --ecr-repository-prefix cli-bad --upstream-registry-url quay.io \
  --upstream-repository-prefix Upper/Case
expect_error SecretNotFoundException "credentialArn that no [[upstream-credentials]] names" \
  create-pull-through-cache-rule --ecr-repository-prefix cli-secret --upstream-registry-url quay.io \
  --credential-arn "$UNKNOWN_ARN"

if ok "describe-pull-through-cache-rules by prefix" describe-pull-through-cache-rules \
  --ecr-repository-prefixes cli-quay; then
  eq "the rule's upstream URL" "$(jv "$W/out.json" 'd["pullThroughCacheRules"][0]["upstreamRegistryUrl"]')" "quay.io"
fi
expect_error PullThroughCacheRuleNotFoundException "describe a prefix without a rule" \
  describe-pull-through-cache-rules --ecr-repository-prefixes cli-none
expect_error PullThroughCacheRuleNotFoundException "update a prefix without a rule" \
  update-pull-through-cache-rule --ecr-repository-prefix cli-none --custom-role-arn arn:aws:iam::000000000000:role/x
if ok "update-pull-through-cache-rule sets customRoleArn" update-pull-through-cache-rule \
  --ecr-repository-prefix cli-quay --custom-role-arn arn:aws:iam::000000000000:role/puller; then
  eq "customRoleArn is answered" "$(jv "$W/out.json" 'd["customRoleArn"]')" "arn:aws:iam::000000000000:role/puller"
fi

# An upstream that is not there: validation says so instead of failing the call.
if ok "create a rule for a loopback upstream that is down" create-pull-through-cache-rule \
  --cli-input-json "$(rule_json cli-down http://127.0.0.1:1)"; then
  if ok "validate-pull-through-cache-rule cli-down" validate-pull-through-cache-rule --ecr-repository-prefix cli-down; then
    eq "isValid is false" "$(jv "$W/out.json" 'd["isValid"]')" "false"
    [ -n "$(jv "$W/out.json" 'd["failure"]')" ] && pass "failure says why" || fail "no failure reason"
  fi
  # A pull of a repository under it answers ECR's upstream error and creates nothing.
  expect_error UnableToGetUpstreamImageException "batch-get-image through a down upstream" \
    batch-get-image --repository-name cli-down/app --image-ids imageTag=v1
  expect_error RepositoryNotFoundException "nothing was created by the refused pull" \
    describe-repositories --repository-names cli-down/app
fi

for p in cli-quay cli-down; do
  ok "delete-pull-through-cache-rule $p" delete-pull-through-cache-rule --ecr-repository-prefix "$p"
done
expect_error PullThroughCacheRuleNotFoundException "delete it again" \
  delete-pull-through-cache-rule --ecr-repository-prefix cli-quay
expect_error PullThroughCacheRuleNotFoundException "validate a deleted rule" \
  validate-pull-through-cache-rule --ecr-repository-prefix cli-quay

finish
