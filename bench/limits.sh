#!/usr/bin/env bash
# The machine's own limits, the ceilings berth's benchmark figures are read against (issue 6).
# Not a test; run on demand (bench/compare.sh runs it first unless LIMITS_JSON names a result):
#
#   cargo build --release -p berth -p bench && bench/limits.sh [SIZE_MIB] [DIR]
#
# Measures, each with SIZE_MIB (default 1024) of data:
#   sha256_MBps              single-core SHA-256, the sha2 crate berth uses (berth-bench limits)
#   sha256_openssl_MBps      the same with OpenSSL (openssl speed -evp sha256), for reference
#   base64_decode_MBps       base64-simd decoding of 20 MiB parts, as UploadLayerPart does
#   loopback_copy_MBps       one TCP stream over 127.0.0.1 with read/write copies (berth's pull path)
#   loopback_sendfile_MBps   the same with sendfile(2) from a cached file (python socket.sendfile)
#   disk_write_fdatasync_MBps  dd of SIZE_MIB to DIR (default: $TMPDIR or /tmp, where compare.sh
#                            keeps both registries' data) with conv=fdatasync, through the page cache
#   disk_write_direct_MBps   the same with oflag=direct (1 MiB writes past the page cache, as berth
#                            stages parts), still with conv=fdatasync: the durable write bound
#   disk_read_MBps           reading that file back with iflag=direct (none of it cached)
# and writes them to $OUT (default target/bench/limits.json). Needs openssl, python3, dd, jq.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
DIR=${2:-${TMPDIR:-/tmp}}
BENCH=${BENCH:-target/release/berth-bench}
OUT=${OUT:-target/bench/limits.json}
for tool in openssl python3 dd jq; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ -x "$BENCH" ] || { echo "$BENCH not found (cargo build --release -p bench)" >&2; exit 2; }
W=$(mktemp -d "$DIR/berth-limits.XXXXXX")
trap 'rm -rf "$W"' EXIT

echo "machine limits, $SIZE_MIB MiB each ($(nproc) CPUs: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo))" >&2
own=$("$BENCH" limits --bytes "${SIZE_MIB}M")

secs=$(( SIZE_MIB / 512 + 1 ))
openssl_sha=$(openssl speed -evp sha256 -bytes 1048576 -seconds "$secs" 2>/dev/null |
  awk '$1 == "sha256" { sub(/k$/, "", $2); printf "%.1f", $2 / 1000 }')
echo "sha256 (openssl) $openssl_sha MB/s" >&2

# Sequential write with fdatasync, to the filesystem the registries' data directories are on,
# through the page cache and past it (O_DIRECT), from random bytes already cached (a virtual
# disk may treat zeros specially). Both are durable at the end; the faster is the bound a
# durable push is read against.
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$W/src"
disk_write() { # DD_FLAGS... -> MB/s
  local t0 t1
  sync
  t0=$(date +%s.%N)
  dd if="$W/src" of="$W/dd" bs=1M conv=fdatasync status=none "$@"
  t1=$(date +%s.%N)
  echo "$SIZE_MIB * 1.048576 / ($t1 - $t0)" | bc -l
}
disk=$(disk_write)
direct=$(disk_write oflag=direct)
rm -f "$W/src"
# Reading back what O_DIRECT wrote (so none of it is cached): what a pull of a blob that is
# not in the page cache is bounded by.
t0=$(date +%s.%N)
dd if="$W/dd" of=/dev/null bs=8M iflag=direct status=none
t1=$(date +%s.%N)
rm -f "$W/dd"
disk_read=$(echo "$SIZE_MIB * 1.048576 / ($t1 - $t0)" | bc -l)
printf 'disk write with fdatasync %.0f MB/s, with O_DIRECT and fdatasync %.0f MB/s, read %.0f MB/s (%s)\n' \
  "$disk" "$direct" "$disk_read" "$(df -P "$W" | awk 'NR == 2 {print $1}')" >&2

# Loopback with sendfile(2): the file is read once first so that it comes from the page cache.
sendfile=$(python3 - "$W/sf" "$SIZE_MIB" <<'PY'
import os, socket, sys, threading, time
path, mib = sys.argv[1], int(sys.argv[2])
chunk = os.urandom(1 << 20)
with open(path, "wb") as f:
    for _ in range(mib):
        f.write(chunk)
with open(path, "rb") as f:
    while f.read(1 << 24):
        pass
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def send():
    c = socket.create_connection(srv.getsockname())
    with open(path, "rb") as f:
        c.sendfile(f)
    c.close()
t = threading.Thread(target=send); t.start()
conn, _ = srv.accept()
buf = bytearray(1 << 20); got = 0; t0 = time.monotonic()
while True:
    n = conn.recv_into(buf)
    if not n:
        break
    got += n
secs = time.monotonic() - t0
t.join(); os.unlink(path)
print(f"{got / secs / 1e6:.1f}")
PY
)
echo "loopback sendfile $sendfile MB/s" >&2

mkdir -p "$(dirname "$OUT")"
echo "$own" | jq --argjson disk "$disk" --argjson direct "$direct" --argjson read "$disk_read" --argjson sf "$sendfile" --argjson ossl "${openssl_sha:-0}" \
  --arg dir "$DIR" --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  '. + {disk_write_fdatasync_MBps: $disk, disk_write_direct_MBps: $direct, disk_read_MBps: $read, loopback_sendfile_MBps: $sf, sha256_openssl_MBps: $ossl,
        disk_dir: $dir, cpu: $cpu, cpus: '"$(nproc)"'}' >"$OUT"
echo "limits written to $OUT" >&2
