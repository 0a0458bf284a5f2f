"""API benchmark: a cheap authenticated call (v2 GetAccount) against `sesame serve`, SigV4 verified.

    python bench/api.py [--database sqlite|postgresql] [--seconds 5] [--max-requests 20000]

Starts `sesame serve` on a free port with a fresh database, creates an account with the CLI, then
for each concurrency level (1, 8, 32) keeps that many requests in flight over keep-alive
connections and reports requests per second and p50/p99 latency. Every request carries a real
SigV4 signature that the server verifies in full (signing happens once per worker, before the
clock starts, so the client's signing cost is not counted: a signature stays valid for 15 minutes).
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

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sesame.testing.databases import temporary_database
from sesame.testing.servers import SesameProcess, sesame_cli


def signed_headers(endpoint: str, key: str, secret: str) -> dict[str, str]:
    req = AWSRequest("GET", f"{endpoint}/v2/email/account")
    SigV4Auth(Credentials(key, secret), "ses", "us-east-1").add_auth(req)
    return dict(req.headers.items())


async def level(endpoint: str, headers: dict[str, str], concurrency: int, seconds: float, cap: int) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=endpoint, limits=limits, timeout=30) as client:
        await client.get("/v2/email/account", headers=headers)  # warm up the connection and caches

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and len(latencies) < cap:
                t0 = time.perf_counter()
                r = await client.get("/v2/email/account", headers=headers)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
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
