#!/usr/bin/env python3
"""Pull one blob over one keep-alive HTTP/1.1 connection.

    bench/pull.py URL [HEADER] [RANGE_BYTES]

Reads into a reused 1 MiB buffer (recv_into). With RANGE_BYTES, the blob is fetched in
`Range` requests of that size, one after another on the same connection, as a client resuming
or fetching in pieces does (one curl process per range would measure process start-up).
Follows no redirects; exits 1 on any status but 200/206 or a short body. Prints bytes read."""
import socket
import sys
import urllib.parse

url = urllib.parse.urlsplit(sys.argv[1])
header = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
step = int(sys.argv[3]) if len(sys.argv) > 3 else 0
path = url.path + (f"?{url.query}" if url.query else "")
conn = socket.create_connection((url.hostname, url.port or 80))
buf = bytearray(1 << 20)
view = memoryview(buf)
pending = b""


def get(first=None, last=None):
    """One GET; returns (status, total size from Content-Range or Content-Length)."""
    global pending
    lines = [f"GET {path} HTTP/1.1", f"Host: {url.netloc}"]
    if header:
        lines.append(header)
    if first is not None:
        lines.append(f"Range: bytes={first}-{last}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    while b"\r\n\r\n" not in pending:
        n = conn.recv_into(view)
        if not n:
            sys.exit("connection closed before the response head")
        pending += bytes(view[:n])
    head, _, pending = pending.partition(b"\r\n\r\n")
    fields = head.decode("latin-1").split("\r\n")
    status = int(fields[0].split()[1])
    h = {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in fields[1:])}
    if status not in (200, 206):
        sys.exit(f"status {status}")
    length = int(h["content-length"])
    got = min(len(pending), length)
    pending = pending[got:]
    while got < length:
        n = conn.recv_into(view[: min(len(buf), length - got)])
        if not n:
            sys.exit(f"short body: {got} of {length} bytes")
        got += n
    total = int(h["content-range"].rsplit("/", 1)[1]) if "content-range" in h else length
    return length, total


if step:
    length, total = get(0, step - 1)
    read = length
    while read < total:
        length, _ = get(read, min(read + step, total) - 1)
        read += length
else:
    read, _ = get()
print(read)
