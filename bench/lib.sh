# Shared by the bench scripts (sourced, not run). Needs curl, sha256sum and the aws CLI.

# wait_listening LOGFILE [TRIES] -> the URL after "listening on " in its first line; waits
# TRIES x 0.1 s (default 100: a server under valgrind needs more).
wait_listening() {
  local line=
  for _ in $(seq 1 "${2:-100}"); do
    line=$(head -n1 "$1" 2>/dev/null || true)
    case "$line" in "listening on "*) echo "${line#listening on }"; return 0 ;; esac
    sleep 0.1
  done
  echo "no 'listening on' in $1" >&2; exit 1
}

# tiny_image DIR: writes the small-request benchmarks' image (a config blob and an OCI
# manifest with no layers) under DIR and sets CFG, CFG_DIGEST, CFG_SIZE and MANIFEST.
tiny_image() {
  CFG="$1/cfg.json"
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$CFG"
  CFG_DIGEST=sha256:$(sha256sum "$CFG" | cut -c1-64)
  CFG_SIZE=$(stat -c %s "$CFG")
  MANIFEST="$1/manifest.json"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
    "$CFG_DIGEST" "$CFG_SIZE" >"$MANIFEST"
}

# berth_basic_auth ENDPOINT -> the "Authorization: Basic …" header GetAuthorizationToken gives.
berth_basic_auth() {
  echo "Authorization: Basic $(aws ecr get-authorization-token --endpoint-url "$1" \
    --query 'authorizationData[0].authorizationToken' --output text)"
}

# push_tiny_image ENDPOINT AUTH_HEADER: pushes tiny_image's blob and manifest over /v2 as
# bench/small:v1 (the repository is created on push).
push_tiny_image() {
  local loc
  loc=$(curl -sf -D - -o /dev/null -X POST -H "$2" "$1/v2/bench/small/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^location: //Ip')
  case $loc in http*) ;; *) loc="$1$loc" ;; esac
  case $loc in *\?*) loc="$loc&digest=$CFG_DIGEST" ;; *) loc="$loc?digest=$CFG_DIGEST" ;; esac
  curl -sf -o /dev/null -X PUT -H "$2" --data-binary @"$CFG" "$loc"
  curl -sf -o /dev/null -X PUT -H "$2" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$MANIFEST" "$1/v2/bench/small/manifests/v1"
}
