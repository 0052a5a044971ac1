#!/usr/bin/env python3
"""Memory per live-status (SSE) stream held open: `bench/sse-held.py [GATEWAY_BINARY] [N...]`.

Starts `prefer-gateway demo` on a free loopback port, submits one 10-minute render job
(`Prefer: respond-async`), warms up (opens and closes 50 streams), then for each N opens N
HTTP/1.1 connections that each `GET` the job's status URL with `Accept: text/event-stream`,
waits until every one has read its first `event: status`, and reads the gateway's VmRSS. It
prints KiB per held stream and streams per MiB of RSS, then closes the streams. Standard
library only; run it on a quiet machine (RSS is not a timing, but a build beside it
allocates nothing in the gateway, so the figure is stable either way).
"""
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/prefer-gateway"
COUNTS = [int(n) for n in sys.argv[2:]] or [1000, 4000]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


async def open_stream(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    buf = b""
    while b"event: status" not in buf:
        chunk = await reader.read(4096)
        if not chunk:
            raise RuntimeError(f"stream closed early: {buf[:200]!r}")
        buf += chunk
    return writer


async def hold(port, path, n):
    writers = []
    for i in range(0, n, 200):  # in batches, so the accept queue never overflows
        writers += await asyncio.gather(*(open_stream(port, path) for _ in range(min(200, n - i))))
    return writers


async def main():
    port = free_port()
    gw = subprocess.Popen(
        [BIN, "demo", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/jobs?limit=1", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        req = urllib.request.Request(
            f"{base}/v1/render",
            data=b'{"duration": 600}',
            headers={"Content-Type": "application/json", "Prefer": "respond-async"},
            method="POST",
        )
        doc = json.load(urllib.request.urlopen(req, timeout=5))
        path = doc["status_url"].split(str(port), 1)[-1]
        for w in await hold(port, path, 50):
            w.close()
        await asyncio.sleep(1)
        for n in COUNTS:
            before = rss_kib(gw.pid)
            writers = await hold(port, path, n)
            await asyncio.sleep(1)
            after = rss_kib(gw.pid)
            per = (after - before) / n
            print(
                f"{n} streams held: RSS {before} → {after} KiB, {per:.1f} KiB per stream, "
                f"{1024 / per if per > 0 else float('inf'):.0f} streams per MiB"
            )
            for w in writers:
                w.close()
            await asyncio.sleep(2)
    finally:
        gw.terminate()
        gw.wait()


asyncio.run(main())
