"""The dev inbox's reads (console/inbox_query.py) on both databases, in-process: a text search reads a
bounded window of messages and goes on from where it stopped; identity filters take either plan."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from sesame import config
from sesame.console import inbox_query
from sesame.console.inbox_query import Filters, InboxQuery
from sesame.mail import mime
from sesame.runtime import Sesame
from sesame.storage.models import Message, QueueEntry


async def _fill(sesame: Sesame, subjects: list[tuple[str, str]]) -> None:
    """One message per (sender, subject), a second apart, oldest first."""
    await sesame.accounts.ensure("000000000000")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows, queue = [], []
    for i, (sender, subject) in enumerate(subjects):
        when = start + dt.timedelta(seconds=i)
        body = mime.build_simple(source=sender, to=["ann@example.test"], subject=subject,
                                 text=f"body of {subject}", message_id=f"m{i:03d}", date=when)  # fmt: skip
        rows.append({
            "id": f"m{i:03d}", "account_id": "000000000000", "region": "us-east-1", "created_at": when,
            "operation": "SendEmail", "source": sender, "from_address": sender, "subject": subject,
            "tags": {}, "summary": {}, "status": "captured", "size": len(body), "body": body,
        })  # fmt: skip
        queue.append({
            "message_id": f"m{i:03d}", "recipient": "ann@example.test", "domain": "example.test",
            "state": "captured", "next_attempt_at": when, "attempts": 0, "created_at": when,
        })  # fmt: skip
    async with sesame.db.write() as s:
        await s.execute(Message.__table__.insert(), rows)
        await s.execute(QueueEntry.__table__.insert(), queue)


def test_search_window_goes_on_where_it_stopped(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_query, "SCAN_WINDOW", {"sqlite": 4, "postgresql": 4})
    # m000 and m009 hold "needle" in their bodies (via the subject); the rest do not.
    subjects = [("a@one.test", "Needle first")] + [("b@two.test", f"hay {i}") for i in range(8)]
    subjects.append(("c@sub.one.test", "last NEEDLE"))

    async def go() -> None:
        sesame = Sesame(config.load("dev", data_dir=tmp_path, database=database))
        await sesame.open()
        try:
            await _fill(sesame, subjects)
            query = InboxQuery(sesame.db)
            found = await query.page(Filters(q="body:needle"), "", 50)
            assert [r.id for r in found.rows] == ["m009"]  # the newest four looked at: m009..m006
            assert found.searched_to == dt.datetime(2026, 1, 1, 0, 0, 6, tzinfo=dt.UTC)
            found = await query.page(Filters(q="body:needle"), found.next, 50)
            assert [r.id for r in found.rows] == []  # m005..m002
            found = await query.page(Filters(q="body:needle"), found.next, 50)
            assert [r.id for r in found.rows] == ["m000"] and not found.next  # m001, m000: the end
            # Without a text search there is no window: plain keyset pages.
            first = await query.page(Filters(), "", 3)
            assert [r.id for r in first.rows] == ["m009", "m008", "m007"] and first.searched_to is None
            second = await query.page(Filters(), first.next, 3)
            assert [r.id for r in second.rows] == ["m006", "m005", "m004"]
            # An account: on SQLite a row-only condition like a search word, so windowed; not on PostgreSQL.
            got = await query.page(Filters(account_id="000000000000"), "", 3)
            assert [r.id for r in got.rows] == ["m009", "m008", "m007"] and got.searched_to is None
            other = await query.page(Filters(account_id="999999999999"), "", 3)
            assert other.rows == []
            if sesame.db.is_sqlite:
                assert other.searched_to == dt.datetime(2026, 1, 1, 0, 0, 6, tzinfo=dt.UTC)
            else:
                assert other.searched_to is None and not other.next
            # An identity: a domain covers its subdomains; an address is itself; both plans give the same.
            for window in (4, 1000):
                monkeypatch.setattr(inbox_query, "SCAN_WINDOW", {"sqlite": window, "postgresql": window})
                assert [r.id for r in (await query.page(Filters(identity="ONE.test"), "", 50)).rows] == [
                    "m009", "m000"
                ]  # fmt: skip
                got = await query.page(Filters(identity="b@two.test"), "", 3)
                assert [r.id for r in got.rows] == ["m008", "m007", "m006"]
            assert (await query.page(Filters(identity="none.test"), "", 50)).rows == []
            assert (await query.page(Filters(q="to:ann@example"), "", 2)).rows[0].recipients == [
                "ann@example.test"
            ]
        finally:
            await sesame.close()

    asyncio.run(go())
