#!/usr/bin/env bash
# TLS end to end: a test CA signs a certificate for 127.0.0.1, berth serves HTTPS with it, and
# the aws CLI, curl and skopeo talk to it with certificate verification on.
#
# Usage: tls_flow.sh BERTH   (run.sh calls it; it starts and stops its own server by PID).
# Prints PASS/FAIL lines and, last, "CHECKS passed=N failed=M".
set -uo pipefail

BERTH=${1:?path to the berth binary}
STEP_TIMEOUT="${STEP_TIMEOUT:-60}"
W="$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-tls.XXXXXX")"
PID=
. "$(dirname "$0")/lib.sh"
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; fi
  rm -rf "$W"
}
trap cleanup EXIT

# A CA and a server certificate for 127.0.0.1.
mkdir -p "$W/certs"
if openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=berth test CA" \
     -keyout "$W/ca.key" -out "$W/certs/ca.crt" >/dev/null 2>&1 &&
   openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$W/server.key" -out "$W/server.csr" >/dev/null 2>&1 &&
   printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$W/ext" &&
   openssl x509 -req -in "$W/server.csr" -CA "$W/certs/ca.crt" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
     -extfile "$W/ext" -out "$W/server.crt" >/dev/null 2>&1; then
  pass "made a test CA and a certificate for 127.0.0.1"
else
  fail "openssl could not make the test certificates"
  finish
fi

BERTH_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" BERTH_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" BERTH_LOG=warn \
  "$BERTH" serve --listen 127.0.0.1:0 --data-dir "$W/data" --tls-cert "$W/server.crt" --tls-key "$W/server.key" \
  >"$W/out" 2>"$W/err" &
PID=$!
EP=
for _ in $(seq 1 300); do
  EP=$(sed -n 's/^listening on //p' "$W/out" 2>/dev/null)
  [ -n "$EP" ] && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
case "$EP" in
  https://127.0.0.1:*) pass "berth serves HTTPS ($EP)" ;;
  *) fail "berth did not start with TLS: $(head -c 400 "$W/err")"; finish ;;
esac
HOST=${EP#https://}
ecr() { timeout "$STEP_TIMEOUT" aws ecr "$@" --endpoint-url "$EP" --ca-bundle "$W/certs/ca.crt"; }

ecr create-repository --repository-name tls/app >/dev/null && pass "aws CLI over HTTPS with the test CA" || fail "aws CLI over HTTPS"
if timeout "$STEP_TIMEOUT" aws ecr describe-repositories --endpoint-url "$EP" >/dev/null 2>"$W/noca.err"; then
  fail "the aws CLI accepted the certificate without the test CA"
else
  grep -qi 'certificate' "$W/noca.err" && pass "without the CA the aws CLI refuses the certificate" \
    || fail "without the CA: unexpected error $(head -c 300 "$W/noca.err")"
fi

# A small OCI layout pushed and pulled by skopeo with verification on.
mkdir -p "$W/img/blobs/sha256" && cd "$W" || finish
head -c 100000 /dev/urandom | gzip -1 >layer.gz
L=$(sha256sum layer.gz | cut -c1-64); cp layer.gz "img/blobs/sha256/$L"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >config.json
C=$(sha256sum config.json | cut -c1-64); cp config.json "img/blobs/sha256/$C"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
  "$C" "$(stat -c%s config.json)" "$L" "$(stat -c%s layer.gz)" >manifest.json
M=$(sha256sum manifest.json | cut -c1-64); cp manifest.json "img/blobs/sha256/$M"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
  "$M" "$(stat -c%s manifest.json)" >img/index.json
echo '{"imageLayoutVersion":"1.0.0"}' >img/oci-layout
printf '{"default":[{"type":"insecureAcceptAnything"}]}' >policy.json
export REGISTRY_AUTH_FILE="$W/auth.json"
sk() { timeout "$STEP_TIMEOUT" skopeo --policy "$W/policy.json" "$@"; }

if command -v skopeo >/dev/null; then
  PW=$(ecr get-login-password)
  printf '%s' "$PW" | sk login --cert-dir "$W/certs" --username AWS --password-stdin "$HOST" >/dev/null 2>"$W/login.err" \
    && pass "skopeo login over HTTPS, verifying the certificate" || fail "skopeo login: $(head -c 300 "$W/login.err")"
  sk copy --dest-cert-dir "$W/certs" oci:img:v1 "docker://$HOST/tls/app:v1" >/dev/null 2>"$W/push.err" \
    && pass "skopeo push over HTTPS with verification on" || fail "skopeo push: $(head -c 300 "$W/push.err")"
  GOT=$(sk inspect --cert-dir "$W/certs" --format '{{.Digest}}' "docker://$HOST/tls/app:v1" 2>/dev/null)
  [ "$GOT" = "sha256:$M" ] && pass "skopeo inspect over HTTPS returns the pushed digest" || fail "inspect digest '$GOT' != sha256:$M"
  if sk inspect "docker://$HOST/tls/app:v1" >/dev/null 2>"$W/unknown.err"; then
    fail "skopeo trusted the certificate without the test CA"
  else
    grep -qiE 'x509|certificate' "$W/unknown.err" && pass "without the CA skopeo refuses the certificate" \
      || fail "without the CA: unexpected error $(head -c 300 "$W/unknown.err")"
  fi
else
  fail "skopeo is not installed"
fi

URL=$(ecr get-download-url-for-layer --repository-name tls/app --layer-digest "sha256:$L" --query downloadUrl --output text 2>/dev/null)
case "$URL" in https://*) pass "download URLs use https" ;; *) fail "download URL '$URL' is not https" ;; esac
[ "$(curl -sf --cacert "$W/certs/ca.crt" "$URL" | sha256sum | cut -c1-64)" = "$L" ] \
  && pass "the layer downloads over HTTPS with the right sha256" || fail "layer download over HTTPS"
PROXY=$(ecr get-authorization-token --query 'authorizationData[0].proxyEndpoint' --output text 2>/dev/null)
[ "$PROXY" = "$EP" ] && pass "proxyEndpoint is the https endpoint" || fail "proxyEndpoint '$PROXY' != '$EP'"
finish
