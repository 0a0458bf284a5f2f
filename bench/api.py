"""API benchmark: a cheap authenticated call (v2 GetAccount) against `sesame serve`, SigV4 verified.

    python bench/api.py [--database sqlite|postgresql] [--seconds 5] [--max-requests 20000]

Starts `sesame serve` on a free port with a fresh database, creates an account with the CLI, then
for each concurrency level (1, 8, 32) keeps that many requests in flight over keep-alive
connections and reports requests per second and p50/p99 latency. Every request carries a real
SigV4 signature that the server verifies in full (signing happens once, before the clock starts,
so the client's signing cost is not counted: a signature stays valid for 15 minutes).
Each level is bounded both in time and in request count. Client and server share this machine's
cores, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sesame.testing.databases import temporary_database
from sesame.testing.servers import SesameProcess, sesame_cli


def signed_headers(endpoint: str, key: str, secret: str) -> dict[str, str]:
    req = AWSRequest("GET", f"{endpoint}/v2/email/account")
    SigV4Auth(Credentials(key, secret), "ses", "us-east-1").add_auth(req)
    return dict(req.headers.items())


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive HTTP/1.1 exchange; returns the status. Sesame always sends Content-Length."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def level(endpoint: str, headers: dict[str, str], concurrency: int, seconds: float, cap: int) -> dict:
    """Keep ``concurrency`` requests in flight, one per connection, until the time or count bound.

    The client is raw asyncio over keep-alive sockets with the request bytes built once: httpx spent more
    CPU per request than the server did and capped the figures at its own speed (on two shared cores).
    """
    host, port = endpoint.removeprefix("http://").split(":")
    lines = ["GET /v2/email/account HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    errors = 0
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]
    for reader, writer in conns:  # warm up each connection and the server's caches
        await _exchange(reader, writer, request)
    deadline = time.perf_counter() + seconds

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        while time.perf_counter() < deadline and len(latencies) < cap:
            t0 = time.perf_counter()
            status = await _exchange(reader, writer, request)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in conns))
    elapsed = time.perf_counter() - start
    for _, writer in conns:
        writer.close()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=5.0, help="time bound per concurrency level")
    parser.add_argument("--max-requests", type=int, default=20000, help="count bound per concurrency level")
    parser.add_argument("--concurrency", default="1,8,32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, temporary_database(args.database, Path(tmp)) as url:
        data_dir = Path(tmp) / "data"
        with SesameProcess("serve", data_dir=data_dir, database=url) as sesame:
            account = json.loads(sesame_cli("accounts", "create", "bench", data_dir=data_dir, database=url))
            headers = signed_headers(sesame.endpoint, account["AccessKeyId"], account["SecretAccessKey"])
            print(f"GetAccount (SigV4 verified), sesame serve on {args.database}")
            print(
                f"{'concurrency':>11} {'requests':>9} {'errors':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
            )
            for c in (int(x) for x in args.concurrency.split(",")):
                r = asyncio.run(level(sesame.endpoint, headers, c, args.seconds, args.max_requests))
                print(
                    f"{r['concurrency']:>11} {r['requests']:>9} {r['errors']:>6} {r['rps']:>8.0f} "
                    f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}"
                )


if __name__ == "__main__":
    main()
