"""Account console benchmark: the server time (``Server-Timing: app``) of the dashboard, the message
search and a message's timeline with N messages stored for one account, on SQLite and on PostgreSQL.

    python bench/console_account.py [--messages 100000] [--targets sqlite,postgresql] [--runs 5]

For each target: a fresh database, `sesame serve` (delivery off) on a free port, one account made by
`sesame accounts create`, then N messages written straight into the database (spread over the last 14
days, one recipient each, 90% delivered and 10% bounced, a Send and a Delivery or Bounce event record
each) as the API would have stored them, plus a second account with the same number so that every
query has to pick one account's rows out of a table that is not all its own. Then a signed-in console
session asks each page --runs times; the median and the worst of the server's own figures are printed.
The goal (issue 12): every page under 100 ms with 100,000 messages stored.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa
from cryptography.fernet import Fernet

from sesame.storage.db import null_pool_engine
from sesame.storage.models import DeliveryEvent, Message, QueueEntry, table
from sesame.testing.databases import temporary_database
from sesame.testing.servers import SesameProcess, sesame_cli

BATCH = 5000


async def seed(url: str, account_id: str, n: int, region: str = "us-east-1") -> list[str]:
    """N messages of one account, as the API stores them (ids of the newest few returned)."""
    url = url.replace("postgresql://", "postgresql+asyncpg://").replace("sqlite://", "sqlite+aiosqlite://")
    engine = null_pool_engine(url)
    now = dt.datetime.now(dt.UTC)
    span = dt.timedelta(days=14).total_seconds()
    ids: list[str] = []
    try:
        for start in range(0, n, BATCH):
            messages, entries, events = [], [], []
            for i in range(start, min(n, start + BATCH)):
                mid = f"0100{uuid.uuid4().hex[:12]}-{uuid.uuid4()}-000000"
                when = now - dt.timedelta(seconds=span * (n - i) / n)
                bounced = i % 10 == 0
                rcpt = f"customer{i}@example{i % 50}.test"
                messages.append(
                    {"id": mid, "account_id": account_id, "region": region, "created_at": when,
                     "operation": "SendEmail", "source": f"news{i % 5}@shop.test",
                     "from_address": f"news{i % 5}@shop.test", "subject": f"Order {i} has shipped",
                     "configuration_set": None, "tags": {}, "summary": {}, "status": "queued", "size": 900,
                     "source_ip": None, "tenant_name": None, "body": b"x" * 64}
                )  # fmt: skip
                entries.append(
                    {"message_id": mid, "recipient": rcpt, "domain": rcpt.rpartition("@")[2],
                     "state": "bounced" if bounced else "delivered", "next_attempt_at": when, "attempts": 1,
                     "last_reply": "550 5.1.1 user unknown" if bounced else "250 2.0.0 OK",
                     "created_at": when}
                )  # fmt: skip
                outcome = "Bounce" if bounced else "Delivery"
                for kind in ("Send", outcome):
                    events.append(
                        {"message_id": mid, "account_id": account_id, "region": region, "event_type": kind,
                         "created_at": when, "detail": {}, "dispatched": True}
                    )  # fmt: skip
                ids.append(mid)
            async with engine.begin() as conn:
                await conn.execute(sa.insert(table(Message)), messages)
                await conn.execute(sa.insert(table(QueueEntry)), entries)
                await conn.execute(sa.insert(table(DeliveryEvent)), events)
        async with engine.begin() as conn:
            if url.startswith("postgresql"):
                for name in ("messages", "queue", "events"):
                    await conn.execute(sa.text(f"ANALYZE {name}"))
            else:
                await conn.execute(sa.text("ANALYZE"))
    finally:
        await engine.dispose()
    return ids[-3:]


def timed(web: httpx.Client, path: str, runs: int, **params: str) -> tuple[float, float]:
    figures = []
    for _ in range(runs):
        r = web.get(path, params=params)
        assert r.status_code == 200, (path, r.status_code)
        found = re.search(r"app;dur=([\d.]+)", r.headers["server-timing"])
        assert found
        figures.append(float(found.group(1)))
    return statistics.median(figures), max(figures)


def run(target: str, n: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        with temporary_database(target, Path(tmp)) as url:
            data_dir = Path(tmp) / "data"
            data_dir.mkdir()
            env = {"SESAME_DELIVERY__ENABLED": "false"}
            with SesameProcess("serve", data_dir=data_dir, database=url, env=env) as proc:
                mine = json.loads(sesame_cli("accounts", "create", "bench", data_dir=data_dir, database=url))
                other = json.loads(sesame_cli("accounts", "create", "other", data_dir=data_dir, database=url))
                asyncio.run(seed(url, other["AccountId"], n))
                newest = asyncio.run(seed(url, mine["AccountId"], n))
                web = httpx.Client(base_url=proc.endpoint, timeout=60)
                r = web.post(
                    "/console/sign-in",
                    data={"access_key_id": mine["AccessKeyId"], "secret_access_key": mine["SecretAccessKey"]},
                )
                assert r.status_code == 303
                page = web.get("/console/messages").text
                older = re.search(r'href="(/console/messages\?before=[^"]+)"', page)
                assert older
                page_two = older.group(1).replace("&amp;", "&")
                today = str(dt.date.today())
                cases = [
                    ("dashboard", "/console/dashboard", {}),
                    ("messages, newest", "/console/messages", {}),
                    ("messages, page 2", page_two, {}),
                    ("messages, subject", "/console/messages", {"subject": "order 99999"}),
                    ("messages, to", "/console/messages", {"to": "customer12345@"}),
                    ("messages, from", "/console/messages", {"source": "news3@"}),
                    ("messages, bounced", "/console/messages", {"status": "bounced"}),
                    ("messages, one day", "/console/messages", {"since": today, "until": today}),
                    ("message timeline", f"/console/messages/{newest[-1]}", {}),
                    ("identities", "/console/identities", {}),
                ]  # fmt: skip
                print(f"{target}: {n:,} messages of this account (+{n:,} of another), {runs} runs each")
                for name, path, params in cases:
                    median, worst = timed(web, path, runs, **params)
                    print(f"  {name:22} median {median:7.1f} ms   worst {worst:7.1f} ms")
                web.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--targets", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("SESAME_SECRET_KEY", Fernet.generate_key().decode())
    for target in args.targets.split(","):
        run(target, args.messages, args.runs)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
