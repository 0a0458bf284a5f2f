"""PostgreSQL's cost per message: statements, commits, rows and WAL bytes for one message accepted
(SES v2 SendEmail), DKIM-signed, delivered and its events recorded.

    python bench/pgcost.py [--messages 2000] [--clients 16] [--workers N] [--roles ROLES]

`sesame serve` on a fresh PostgreSQL database delivers to Postfix's smtp-sink on loopback (or the
project's sink). After the sender is set up, the database's statistics are reset; then ``--messages``
sends are made and the run waits until every one is delivered, then reads:

* pg_stat_statements (when the server preloads it: ``shared_preload_libraries = 'pg_stat_statements'``,
  a restart; without it the statement figures are skipped, saying so): calls per message of every
  statement on this database, the top ones listed;
* pg_stat_database: commits, rows inserted/updated/deleted per message;
* pg_current_wal_lsn() before and after: WAL bytes per message (cluster-wide: run it alone).

``docs/scaling.md`` is written from these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from delivery import (  # bench/, beside us
    RECIPIENT,
    SINK_DOMAIN,
    Signer,
    inject,
    request_body,
    sesame_env,
    set_up_sender,
    sink,
)

from sesame.storage.db import null_pool_engine
from sesame.testing.databases import temporary_database
from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess

STATS = """SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched
           FROM pg_stat_database WHERE datname = current_database()"""
STATEMENTS = """SELECT calls, rows, total_exec_time, query FROM pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY calls DESC"""


async def sql(url: str, query: str) -> list[dict[str, Any]]:
    engine = null_pool_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(query))
            return [dict(r) for r in result.mappings()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def has_statements(url: str) -> bool:
    preload = (await sql(url, "SHOW shared_preload_libraries"))[0]["shared_preload_libraries"]
    if "pg_stat_statements" not in preload:
        return False
    await sql(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return True


async def snapshot(url: str) -> dict[str, Any]:
    stats = (await sql(url, STATS))[0]
    wal = (await sql(url, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS wal"))[0]["wal"]
    return {**stats, "wal": wal}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--seconds", type=float, default=120.0, help="time bound for sending, then delivering"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--roles", default="", help="sesame serve --roles (default: all)")
    parser.add_argument("--top", type=int, default=15, help="statements listed")
    args = parser.parse_args()
    flags = (["--workers", str(args.workers)] if args.workers > 1 else []) + (
        ["--roles", args.roles] if args.roles else []
    )
    with (
        tempfile.TemporaryDirectory(prefix="sesame-pgcost-") as tmp,
        temporary_database("postgresql", Path(tmp)) as url,
        DnsServer() as dns_server,
        sink() as the_sink,
    ):
        env = sesame_env(dns_server, 16, f"{SINK_DOMAIN}=127.0.0.1:{the_sink.port}", delivery=True)
        data_dir = Path(tmp) / "data"
        with SesameProcess("serve", data_dir=data_dir, database=url, env=env, args=flags) as sesame:
            account = set_up_sender(sesame, dns_server, data_dir, url)
            if account is None:
                return
            statements = asyncio.run(has_statements(url))
            if statements:
                asyncio.run(sql(url, "SELECT pg_stat_statements_reset()"))
            else:
                print("pg_stat_statements is not preloaded: statement figures skipped (see the docstring)")
            before, base = asyncio.run(snapshot(url)), the_sink.count()
            signer = Signer(
                sesame.endpoint, account["AccessKeyId"], account["SecretAccessKey"], request_body(RECIPIENT)
            )
            start = time.perf_counter()
            sent = asyncio.run(inject(sesame.endpoint, signer, args.messages, args.clients, args.seconds))[
                "accepted"
            ]
            if the_sink.wait_for(base + sent, args.seconds) is None:
                print(f"only {the_sink.count() - base} of {sent} delivered in time")
            time.sleep(2.0)  # the last settles and event records commit after the sink's 250
            elapsed = time.perf_counter() - start
            after = asyncio.run(snapshot(url))
            rows = asyncio.run(sql(url, STATEMENTS)) if statements else []
    report(sent, elapsed, before, after, rows, args.top)


def report(
    n: int,
    elapsed: float,
    before: dict[str, Any],
    after: dict[str, Any],
    rows: list[dict[str, Any]],
    top: int,
) -> None:
    if not n:
        print("nothing was sent")
        return
    delta = {k: after[k] - before[k] for k in before}
    print(f"\n{n} messages accepted and delivered in {elapsed:.1f} s; per message:")
    print(
        f"  commits            {delta['xact_commit'] / n:8.2f}   (rollbacks {delta['xact_rollback'] / n:.2f})"
    )
    print(f"  rows inserted      {delta['tup_inserted'] / n:8.2f}")
    print(f"  rows updated       {delta['tup_updated'] / n:8.2f}")
    print(f"  rows deleted       {delta['tup_deleted'] / n:8.2f}")
    print(f"  WAL bytes          {delta['wal'] / n:8.0f}   (cluster-wide)")
    if rows:
        calls, executing = sum(r["calls"] for r in rows), sum(r["total_exec_time"] for r in rows)
        print(f"  statements         {calls / n:8.2f}   ({executing / n:.3f} ms executing)")
        print(f"\ntop {top} statements by calls per message:")
        for r in rows[:top]:
            query = " ".join(r["query"].split())
            print(
                f"  {r['calls'] / n:6.2f}  {r['total_exec_time'] / max(r['calls'], 1):7.3f} ms  {query[:110]}"
            )


if __name__ == "__main__":
    main()
