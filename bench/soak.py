"""Soak: a steady load for a long time, watching for anything that grows.

    python bench/soak.py [--database sqlite|postgresql] [--minutes 30] [--rate 100] [--clients 8]
                         [--interval 10] [--workers 1] [--out bench/results/soak]

`sesame serve` (DKIM on, delivery to Postfix's smtp-sink on loopback, or the project's sink without it)
gets SES v2 SendEmail requests at a fixed rate (``--rate`` per second, paced, over ``--clients``
keep-alive connections) for ``--minutes``. Every ``--interval`` seconds it samples:

* accepted/s and delivered/s over the interval, and the p50/p99 latency of the interval's requests;
* the server's resident memory (every process, workers included) and its open file descriptors;
* the database connections the server holds (PostgreSQL: pg_stat_activity rows of its database;
  SQLite: descriptors open on the database file and its -wal).

It writes the samples as CSV and a plot (PNG: rate, p99 and RSS over time) beside each other at
``--out``-DATABASE.csv/.png, and prints a summary: the first and last fifth of the run compared, so
that growth shows as a ratio. The run is bounded in time (``--minutes``) and every wait has a bound.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from delivery import RECIPIENT, SINK_DOMAIN, Signer, request_body, sesame_env, set_up_sender, sink
from send import exchange  # bench/, beside us

from sesame.storage.db import null_pool_engine
from sesame.testing.databases import temporary_database
from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess


class Window:
    """What happened since the last sample."""

    def __init__(self) -> None:
        self.accepted = 0
        self.errors = 0
        self.latencies: list[float] = []

    def take(self) -> tuple[int, int, list[float]]:
        got = (self.accepted, self.errors, self.latencies)
        self.accepted, self.errors, self.latencies = 0, 0, []
        return got


async def load(
    endpoint: str, signer: Signer, rate: float, clients: int, until: float, window: Window
) -> None:
    """``rate`` requests per second in all, each client sending on its own schedule (open loop: a slow
    answer delays only that client's next request, and the latency counts from its scheduled time)."""
    host, port = endpoint.removeprefix("http://").split(":")
    period = clients / rate

    async def client(i: int) -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        due = time.perf_counter() + period * i / clients
        while due < until:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, int(port))
                status, body, keep_alive = await asyncio.wait_for(exchange(*conn, signer.current()), 30)
                if not keep_alive:
                    conn[1].close()
                    conn = None
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                status, body = 0, b""
                if conn is not None:
                    conn[1].close()
                conn = None
            if status == 200 and b"MessageId" in body:
                window.accepted += 1
                window.latencies.append(time.perf_counter() - due)
            else:
                window.errors += 1
            due += period
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(client(i) for i in range(clients)))


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def open_files(pids: list[int]) -> list[str]:
    targets = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
    return targets


async def db_connections(url: str, files: list[str]) -> int:
    if url.startswith("sqlite"):
        return sum(1 for f in files if f.endswith((".db", ".db-wal")))
    engine = null_pool_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.connect() as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            n = (await conn.execute(sa.text(query))).scalar_one()
    finally:
        await engine.dispose()
    return int(n) - 1  # not the connection asking


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--workers", type=int, default=1, help="sesame serve --workers")
    parser.add_argument("--out", default="bench/results/soak", help="CSV and PNG path, without the suffix")
    args = parser.parse_args()
    out = Path(f"{args.out}-{args.database}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="sesame-soak-") as tmp,
        temporary_database(args.database, Path(tmp)) as url,
        DnsServer() as dns_server,
        sink() as the_sink,
    ):
        print(f"sink: {the_sink.name}; database: {args.database}; {args.rate:g}/s for {args.minutes:g} min")
        env = sesame_env(dns_server, 16, f"{SINK_DOMAIN}=127.0.0.1:{the_sink.port}", delivery=True)
        data_dir = Path(tmp) / "data"
        flags = ["--workers", str(args.workers)] if args.workers > 1 else []
        with SesameProcess("serve", data_dir=data_dir, database=url, env=env, args=flags) as sesame:
            account = set_up_sender(sesame, dns_server, data_dir, url)
            if account is None:
                return
            signer = Signer(
                sesame.endpoint, account["AccessKeyId"], account["SecretAccessKey"], request_body(RECIPIENT)
            )
            samples = asyncio.run(soak(sesame, signer, url, the_sink, args))
    write(samples, out)


async def soak(
    sesame: SesameProcess, signer: Signer, url: str, the_sink: Any, args: argparse.Namespace
) -> list[dict[str, float]]:
    window = Window()
    start = time.perf_counter()
    until = start + args.minutes * 60
    loader = asyncio.create_task(load(sesame.endpoint, signer, args.rate, args.clients, until, window))
    samples: list[dict[str, float]] = []
    delivered_before = the_sink.count()
    cpu_before = sesame.cpu_seconds()
    while not loader.done():
        await asyncio.wait({loader}, timeout=args.interval)
        now = time.perf_counter()
        accepted, errors, latencies = window.take()
        delivered = the_sink.count()
        cpu = sesame.cpu_seconds()
        pids = sesame.pids()
        files = open_files(pids)
        elapsed = now - (samples[-1]["t"] + start if samples else start)
        latencies.sort()
        sample = {
            "t": now - start,
            "accepted_s": accepted / elapsed,
            "delivered_s": (delivered - delivered_before) / elapsed,
            "errors": errors,
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
            "rss_mb": rss_mb(pids),
            "fds": len(files),
            "db_connections": await db_connections(url, files),
            "cpu_ms_per_message": 1000 * (cpu - cpu_before) / accepted if accepted else float("nan"),
        }
        delivered_before, cpu_before = delivered, cpu
        samples.append(sample)
        print(
            f"{sample['t']:7.0f} s  accepted {sample['accepted_s']:6.1f}/s"
            f"  delivered {sample['delivered_s']:6.1f}/s"
            f"  p99 {sample['p99_ms']:6.1f} ms  RSS {sample['rss_mb']:6.1f} MB  fds {sample['fds']:4d}"
            f"  db conns {sample['db_connections']:3d}  errors {errors}",
            flush=True,
        )
    return samples


def write(samples: list[dict[str, float]], out: Path) -> None:
    if not samples:
        return
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(samples[0]))
        writer.writeheader()
        writer.writerows(samples)
    fifth = max(1, len(samples) // 5)
    first, last = samples[1 : fifth + 1] or samples[:1], samples[-fifth:]
    print("\nfirst fifth -> last fifth (medians):")
    for key in (
        "accepted_s",
        "delivered_s",
        "p99_ms",
        "rss_mb",
        "fds",
        "db_connections",
        "cpu_ms_per_message",
    ):
        a = statistics.median(s[key] for s in first)
        b = statistics.median(s[key] for s in last)
        print(f"  {key:20s} {a:10.1f} -> {b:10.1f}  ({b / a if a else float('nan'):.2f}x)")
    plot(samples, out.with_suffix(".png"))


def plot(samples: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t"] / 60 for s in samples]
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(9, 7))
    axes[0].plot(minutes, [s["accepted_s"] for s in samples], label="accepted/s")
    axes[0].plot(minutes, [s["delivered_s"] for s in samples], label="delivered/s")
    axes[0].set_ylabel("messages/s")
    axes[0].legend(loc="lower right")
    axes[1].plot(minutes, [s["p99_ms"] for s in samples], color="tab:red", label="p99")
    axes[1].plot(minutes, [s["p50_ms"] for s in samples], color="tab:orange", label="p50")
    axes[1].set_ylabel("SendEmail latency, ms")
    axes[1].legend(loc="upper right")
    axes[2].plot(minutes, [s["rss_mb"] for s in samples], color="tab:green")
    axes[2].set_ylabel("server RSS, MB")
    axes[2].set_xlabel("minutes")
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.suptitle(path.stem)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path} and {path.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
