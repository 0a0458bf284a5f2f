"""Dev inbox benchmark: how long the inbox's list and search take with many captured messages stored.

    python bench/inbox.py [--messages 100000] [--database postgresql://…] [--keep DIR] [--pages]

Fills a fresh database (SQLite in a temporary directory unless ``--database``) with ``--messages``
captured messages built the way SendEmail builds them: a text and an HTML body (~3 KB), every tenth
with a 20 KB attachment, two accounts, five sender domains, two recipients each. Then it times, five
times each, the inbox's own reads (console/inbox_query.py), and reports the median:

* the first page, and a page 1,000 pages deep (keyset paging);
* a filter per account and per identity;
* a search for a word in the subjects, and a body search for a word no message holds (the worst case:
  nothing stops the scan early), within the bounded window the inbox uses (``SCAN_WINDOW``) and, for
  comparison, over every message (what an unbounded scan would cost).

With ``--pages`` it then starts ``sesame dev`` on that storage and reports each inbox page's server time
(the median ``Server-Timing`` of five requests): the list, searched and filtered, and a message's tabs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sesame import config
from sesame.console import inbox_query
from sesame.console.inbox_query import Filters, InboxQuery
from sesame.mail import mime
from sesame.runtime import Sesame
from sesame.storage.models import Message, QueueEntry

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar".split()
DOMAINS = ["shop.test", "news.test", "billing.test", "alerts.test", "team.test"]


def build(i: int, when: dt.datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rnd = random.Random(i)
    domain = DOMAINS[i % len(DOMAINS)]
    sender = f"noreply@{domain}"
    to = [f"user{rnd.randrange(10000)}@example.test", f"other{i % 97}@example.test"]
    subject = f"Order {i} " + " ".join(rnd.choices(WORDS, k=4))
    text = "\n".join(" ".join(rnd.choices(WORDS, k=12)) for _ in range(20))
    html = (
        "<html><body>"
        + "".join(f"<p>{' '.join(rnd.choices(WORDS, k=12))}</p>" for _ in range(20))
        + "</body></html>"
    )
    attachments = [mime.Attachment(rnd.randbytes(20000), "invoice.pdf")] if i % 10 == 0 else []
    message_id = f"{i:012d}-bench"
    body = mime.build_simple(
        source=sender, to=to, subject=subject, text=text, html=html, attachments=attachments,
        message_id=message_id, date=when,
    )  # fmt: skip
    row = {
        "id": message_id, "account_id": "000000000000" if i % 3 else "111111111111", "region": "us-east-1",
        "created_at": when, "operation": "SendEmail", "source": sender, "from_address": sender,
        "subject": subject, "tags": {}, "summary": {}, "status": "captured", "size": len(body), "body": body,
    }  # fmt: skip
    queue = [
        {"message_id": message_id, "recipient": r, "domain": "example.test", "state": "captured",
         "next_attempt_at": when, "attempts": 0, "created_at": when}
        for r in to
    ]  # fmt: skip
    return row, queue


async def fill(sesame: Sesame, n: int) -> None:
    for account in ("000000000000", "111111111111"):
        await sesame.accounts.ensure(account)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=n)
    batch = 2000
    for first in range(0, n, batch):
        rows, queue = [], []
        for i in range(first, min(n, first + batch)):
            row, entries = build(i, start + dt.timedelta(seconds=i))
            rows.append(row)
            queue += entries
        async with sesame.db.write() as s:
            await s.execute(Message.__table__.insert(), rows)
            await s.execute(QueueEntry.__table__.insert(), queue)


async def timed(label: str, fn: Any, runs: int = 5) -> float:
    times = []
    result = None
    for _ in range(runs):
        t = time.perf_counter()
        result = await fn()
        times.append((time.perf_counter() - t) * 1000)
    median = statistics.median(times)
    extra = f"{len(result.rows)} rows" if hasattr(result, "rows") else ""
    print(f"{label:58s} {median:8.1f} ms   {extra}")
    return median


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--database", default="")
    parser.add_argument("--keep", type=Path, default=None, help="data dir to keep (and reuse if filled)")
    parser.add_argument("--pages", action="store_true", help="then time the console's inbox pages")
    args = parser.parse_args()
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="sesame-inbox-bench-"))
    settings = config.load("dev", data_dir=data_dir, database=args.database or None)
    sesame = Sesame(settings)
    await sesame.open()
    try:
        have = (await sesame.db.fetch([("SELECT count(*) AS n FROM messages", {})]))[0][0]["n"]
        if have < args.messages:
            t = time.perf_counter()
            await fill(sesame, args.messages - have)
            print(f"filled {args.messages} messages in {time.perf_counter() - t:.0f} s")
        size = (await sesame.db.fetch([("SELECT sum(size) AS n FROM messages", {})]))[0][0]["n"]
        print(f"{args.messages} messages, {size / 1e6:.0f} MB of bodies, {sesame.db.url.split(':')[0]}")
        query = InboxQuery(sesame.db)
        page = 50
        window = inbox_query.SCAN_WINDOW["sqlite" if sesame.db.is_sqlite else "postgresql"]
        await timed("first page", lambda: query.page(Filters(), "", page))
        deep = await query.page(Filters(), inbox_query.cursor_of(
            dt.datetime.now(dt.UTC) - dt.timedelta(seconds=args.messages // 2), "~"), page)  # fmt: skip
        assert deep.rows
        await timed("a page half way down (keyset)", lambda: query.page(Filters(), deep.next, page))
        await timed("filter: account", lambda: query.page(Filters(account_id="111111111111"), "", page))
        await timed("filter: identity (domain)", lambda: query.page(Filters(identity="team.test"), "", page))
        await timed(
            "search: subject word 'Order 99999'",
            lambda: query.page(Filters(q='subject:"Order 99999"'), "", page),
        )
        await timed("search: common word (any field)", lambda: query.page(Filters(q="kilo"), "", page))
        await timed(f"search: absent word, body, window {window}",
                    lambda: query.page(Filters(q="body:zyxwvut"), "", page))  # fmt: skip
        await timed(f"search: absent word, any field, window {window}",
                    lambda: query.page(Filters(q="zyxwvut"), "", page))  # fmt: skip
        await timed("latest (the live stream's probe)", query.latest)
        inbox_query.SCAN_WINDOW = dict.fromkeys(inbox_query.SCAN_WINDOW, args.messages + 1)
        await timed("search: absent word, body, every message (unbounded)",
                    lambda: query.page(Filters(q="body:zyxwvut"), "", page), runs=3)  # fmt: skip
    finally:
        await sesame.close()
    if args.pages:
        await asyncio.to_thread(pages, data_dir, args.database)


def pages(data_dir: Path, database: str) -> None:
    import re

    import httpx

    from sesame.testing.servers import SesameProcess

    with SesameProcess("dev", data_dir=data_dir, database=database or None) as proc:
        http = httpx.Client(base_url=proc.endpoint, follow_redirects=True, timeout=60)
        http.get("/console/")
        newest = re.search(r'href="/console/inbox/([^"]+)"', http.get("/console/inbox").text)
        assert newest
        message = f"/console/inbox/{newest[1]}"
        paths = {
            "inbox": "/console/inbox",
            "inbox ?q=kilo": "/console/inbox?q=kilo",
            "inbox ?q=body:zyxwvut (absent)": "/console/inbox?q=body:zyxwvut",
            "inbox ?identity=team.test": "/console/inbox?identity=team.test",
            "inbox ?account=111111111111": "/console/inbox?account=111111111111",
            "inbox ?account=999999999999 (none)": "/console/inbox?account=999999999999",
            "list fragment": "/console/inbox/list",
            "message (HTML tab)": message,
            "message ?tab=raw": f"{message}?tab=raw",
            "message ?tab=checks (signs and verifies)": f"{message}?tab=checks",
            "message with attachment ?tab=attachments": "/console/inbox/000000000000-bench?tab=attachments",
            "frame /html": f"{message}/html",
        }
        for name, path in paths.items():
            times = []
            for _ in range(5):
                answer = http.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
                times.append(float(re.findall(r"dur=([\d.]+)", answer.headers["server-timing"])[0]))
            print(f"page: {name:52s} {statistics.median(times):8.1f} ms")
        http.close()


if __name__ == "__main__":
    asyncio.run(main())
