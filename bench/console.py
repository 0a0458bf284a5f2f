"""Console page-time benchmark: the server time of every console page with N messages stored, on SQLite
and on PostgreSQL.

    python bench/console.py [--messages 100000] [--targets sqlite,postgresql] [--repeat 20]

For each target: a fresh data directory and database and `sesame dev` on a free port. Sample mail goes
in through the API (SendEmail with text and HTML, a templated send, a raw message with an attachment, to
several recipients and domains), then the stored rows (messages, their queue entries and event records)
are copied with new message ids and spread over the past days until --messages are stored, as a busy
account's history would be. Then each page below is fetched --repeat times in a row by one browser-like
client (a dev session, so the account pages show the default account and the operator pages are open).

Measured per page: the server's own time (the ``Server-Timing: app;dur=`` header every console page
sends: from the request's arrival at the page handler to the response's making, including every database
read) as median, p95 and max, and the client's wall time (median). The goal (issue 12): every page under
100 ms of server time with 100,000 messages stored.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import sqlalchemy as sa
from botocore.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from sesame.config import Settings
from sesame.testing.databases import temporary_database
from sesame.testing.servers import SesameProcess

SAMPLES = 60  # real sends through the API, copied to reach --messages
BATCH = 2000


def ses(endpoint: str) -> Any:
    return boto3.client(
        "sesv2",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )


def send_samples(endpoint: str) -> None:
    client = ses(endpoint)
    client.create_email_identity(EmailIdentity="shop.example")
    client.create_email_template(
        TemplateName="receipt",
        TemplateContent={
            "Subject": "Your receipt {{n}}",
            "Text": "Thanks {{name}}",
            "Html": "<p>Thanks {{name}}</p>",
        },
    )
    client.create_configuration_set(ConfigurationSetName="marketing")
    client.create_contact_list(
        ContactListName="readers",
        Topics=[{"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_IN"}],
    )
    client.create_contact(ContactListName="readers", EmailAddress="ann@example.com")
    client.put_suppressed_destination(EmailAddress="gone@example.com", Reason="BOUNCE")
    client.create_tenant(TenantName="acme")
    for i in range(SAMPLES):
        to = [f"customer{i}@mail{i % 7}.example", f"copy{i}@corp.example"]
        if i % 3 == 0:
            client.send_email(
                FromEmailAddress="orders@shop.example",
                Destination={"ToAddresses": to},
                Content={
                    "Template": {
                        "TemplateName": "receipt",
                        "TemplateData": json.dumps({"n": i, "name": "Ann"}),
                    }
                },
            )
        elif i % 3 == 1:
            html = "<html><body><h1>Weekly news</h1>" + "<p>Lorem ipsum dolor sit amet. </p>" * 40
            html += '<a href="https://shop.example/deals">Deals</a><img src="https://shop.example/x.png"></body></html>'
            client.send_email(
                FromEmailAddress="news@shop.example",
                Destination={"ToAddresses": to},
                Content={
                    "Simple": {
                        "Subject": {"Data": f"News {i}"},
                        "Body": {"Html": {"Data": html}, "Text": {"Data": "News"}},
                    }
                },
            )
        else:
            raw = (
                f"From: billing@shop.example\r\nTo: {to[0]}\r\nSubject: Invoice {i}\r\nMIME-Version: 1.0\r\n"
                'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
                "Your invoice is attached.\r\n--b\r\nContent-Type: application/pdf\r\n"
                'Content-Disposition: attachment; filename="invoice.pdf"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\n" + "JVBERi0xLjQK" * 200 + "\r\n--b--\r\n"
            ).encode()
            client.send_email(Content={"Raw": {"Data": raw}})


async def copy_history(url: str, messages: int) -> float:
    """Copy the sample rows (messages, queue entries, event records) until ``messages`` are stored."""
    engine = create_async_engine(Settings(database=url).database_url)
    started = time.perf_counter()
    meta = sa.MetaData()
    async with engine.begin() as conn:
        await conn.run_sync(meta.reflect, only=["messages", "queue", "events"])
    m, q, e = meta.tables["messages"], meta.tables["queue"], meta.tables["events"]
    async with engine.connect() as conn:
        samples = [dict(r._mapping) for r in await conn.execute(sa.select(m))]
        entries = [dict(r._mapping) for r in await conn.execute(sa.select(q))]
        events = [dict(r._mapping) for r in await conn.execute(sa.select(e))]
    by_message: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
        s["id"]: (
            [x for x in entries if x["message_id"] == s["id"]],
            [x for x in events if x["message_id"] == s["id"]],
        )
        for s in samples
    }
    now = dt.datetime.now(dt.UTC)
    todo = messages - len(samples)
    done = 0
    while done < todo:
        rows, queue_rows, event_rows = [], [], []
        for i in range(done, min(todo, done + BATCH)):
            sample = samples[i % len(samples)]
            new_id = f"{uuid.uuid4().hex[:16]}-{uuid.uuid4()}-000000"
            when = now - dt.timedelta(seconds=30 * (i + 1))  # about 35 days of history at 100,000
            rows.append({**sample, "id": new_id, "created_at": when})
            mine, theirs = by_message[sample["id"]]
            queue_rows += [_copy(x, new_id, when) for x in mine]
            event_rows += [_copy(x, new_id, when) for x in theirs]
        async with engine.begin() as conn:
            await conn.execute(m.insert(), rows)
            if queue_rows:
                await conn.execute(q.insert(), queue_rows)
            if event_rows:
                await conn.execute(e.insert(), event_rows)
        done += len(rows)
        print(f"\r  stored {done + len(samples):,} messages", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    async with engine.begin() as conn:  # fresh planner statistics, as a database in use has
        await conn.execute(sa.text("ANALYZE"))
    await engine.dispose()
    return time.perf_counter() - started


def _copy(row: dict[str, Any], message_id: str, when: dt.datetime) -> dict[str, Any]:
    """A queue entry or event record of a copied message (a new id from the database)."""
    out = {k: v for k, v in row.items() if k != "id"}
    out.update(message_id=message_id, created_at=when)
    if "next_attempt_at" in out:
        out["next_attempt_at"] = when
    return out


def pages(http: httpx.Client) -> list[str]:
    """Every console page worth timing, with real ids from the stored data."""
    inbox = http.get("/console/inbox").text
    ids = re.findall(r'href="/console/inbox/([0-9a-f-]{40,})"', inbox)
    message = ids[0] if ids else "none"
    return [
        "/console/inbox",
        "/console/inbox?q=invoice",
        "/console/inbox?q=nobody-has-this-word",
        "/console/inbox?q=to%3Acustomer5%40mail5.example",
        "/console/inbox?identity=shop.example",
        f"/console/inbox/{message}",
        f"/console/inbox/{message}?tab=checks",
        f"/console/inbox/{message}/html",
        "/console/inbox/list",
        "/console/dashboard",
        "/console/identities",
        "/console/identities/shop.example",
        "/console/configuration-sets",
        "/console/configuration-sets/marketing",
        "/console/templates",
        "/console/templates/receipt",
        "/console/messages",
        "/console/messages?subject=invoice",
        "/console/messages?subject=nobody-has-this-word",
        "/console/messages?to=customer5%40mail5.example",
        "/console/messages?status=captured",
        f"/console/messages/{message}",
        "/console/suppression",
        "/console/suppression?q=gone",
        "/console/receiving",
        "/console/contact-lists",
        "/console/contact-lists/readers",
        "/console/tenants",
        "/console/tenants/acme",
        "/console/operator/accounts",
        "/console/operator/accounts/000000000000",
        "/console/operator/queue",
        "/console/operator/events",
        "/console/operator/nodes",
    ]


def time_pages(endpoint: str, repeat: int) -> list[dict[str, Any]]:
    out = []
    with httpx.Client(base_url=endpoint, timeout=60) as http:
        http.get("/console/")
        for path in pages(http):
            server, wall, status = [], [], 0
            for _ in range(repeat):
                started = time.perf_counter()
                r = http.get(path)
                wall.append((time.perf_counter() - started) * 1000)
                status = r.status_code
                found = re.search(r"app;dur=([0-9.]+)", r.headers.get("server-timing", ""))
                server.append(float(found.group(1)) if found else float("nan"))
            server.sort()
            out.append(
                {
                    "page": path,
                    "status": status,
                    "median": statistics.median(server),
                    "p95": server[max(0, int(len(server) * 0.95) - 1)],
                    "max": server[-1],
                    "wall": statistics.median(wall),
                }
            )
    return out


def bench(target: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp, temporary_database(target, Path(tmp)) as url:
        data_dir = Path(tmp) / "data"
        with SesameProcess("dev", data_dir=data_dir, database=url) as proc:
            send_samples(proc.endpoint)
            seconds = asyncio.run(copy_history(url, args.messages))
            print(f"  {target}: {args.messages:,} messages stored in {seconds:.0f} s", file=sys.stderr)
            return time_pages(proc.endpoint, args.repeat)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--targets", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    for target in args.targets.split(","):
        rows = bench(target, args)
        print(
            f"\n{target}, {args.messages:,} messages: server ms (Server-Timing) over {args.repeat} requests"
        )
        print("| page | status | median | p95 | max | wall median |\n|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| `{r['page']}` | {r['status']} | {r['median']:.1f} | {r['p95']:.1f} | {r['max']:.1f} |"
                f" {r['wall']:.1f} |"
            )
        worst = max(rows, key=lambda r: r["p95"])
        print(f"slowest p95: {worst['page']} {worst['p95']:.1f} ms")


if __name__ == "__main__":
    main()
