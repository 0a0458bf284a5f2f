"""The dev inbox's reads: captured messages newest first, searched and filtered, a page at a time.

Pages are keyset-paged on (created_at, id), walking the ``ix_messages_created_at`` index backwards, so
page 2,000 costs what page 1 does. A text search matches each word (or "quoted phrase") against the
sender, the recipients (queue rows), the subject and the raw body; ``from:``, ``to:``, ``subject:`` and
``body:`` confine a word to one of them. Every word must match (AND); case does not matter.

Matching a body means reading it, and no index helps with a substring of a MIME body: with 100,000
messages (660 MB of bodies, bench/inbox.py) a search for a word no body holds reads every one, 1.2-1.9 s
on SQLite and 7-8.5 s on PostgreSQL (which decompresses each body and folds case slowly). So a text
search looks at a bounded *window*: the newest ``SCAN_WINDOW`` messages that pass the other filters (an
index walk, no bodies read), and reads only those rows, 25-45 ms however many are stored. When the
window holds fewer matches than a page, the page says how far back it looked and goes on from there on
request ("Search older messages"). On SQLite an account filter is read from the rows the same way (no
index has account_id). The body is searched as stored: words in 7bit and quoted-printable
parts are found (unless a soft line break splits them), words inside base64 parts are not.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from sesame.mail.reading import has_attachments
from sesame.storage.db import Database
from sesame.storage.models import DeliveryEvent, Message, QueueEntry

#: Messages one text search reads per request (see the module docstring for why, and the measurement):
#: PostgreSQL decompresses each body (pglz) and its ILIKE folds case character by character, some four
#: times slower per message than SQLite's LIKE.
SCAN_WINDOW = {"sqlite": 2000, "postgresql": 500}
#: How much of each body the list reads to mark messages with attachments.
HEAD_BYTES = 4096
FIELDS = ("from", "to", "subject", "body")
MAX_TERMS = 10  # each is a condition on every row of the window

M = Message.__table__
Q = QueueEntry.__table__


@dataclass(frozen=True)
class Filters:
    q: str = ""
    account_id: str = ""
    #: An identity: an address (the From address itself) or a domain (any address at it).
    identity: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @property
    def terms(self) -> list[tuple[str, str]]:
        """(field or "", text) for each word or quoted phrase of the query."""
        try:
            words = shlex.split(self.q)
        except ValueError:  # an unbalanced quote: take the words as they are
            words = self.q.split()
        out = []
        for word in words:
            name, sep, rest = word.partition(":")
            if sep and name.lower() in FIELDS and rest:
                out.append((name.lower(), rest))
            elif word:
                out.append(("", word))
        return out[:MAX_TERMS]


@dataclass(frozen=True)
class Row:
    id: str
    account_id: str
    region: str
    created_at: dt.datetime
    from_address: str
    subject: str
    size: int
    status: str
    attachments: bool
    recipients: list[str] = field(default_factory=list)


@dataclass
class Page:
    rows: list[Row]
    #: Where the next page starts ("created_at|id"), or "" at the end.
    next: str = ""
    #: For a text search that stopped at its window: the oldest message it looked at.
    searched_to: dt.datetime | None = None


def cursor_of(created_at: dt.datetime, message_id: str) -> str:
    return f"{created_at.astimezone(dt.UTC).isoformat()}|{message_id}"


def parse_cursor(text: str) -> tuple[dt.datetime, str] | None:
    stamp, sep, message_id = text.partition("|")
    if not sep:
        return None
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)), message_id


def _like(text: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


class InboxQuery:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _contains(self, column: Any, text: str) -> sa.ColumnElement[bool]:
        # SQLite's LIKE ignores ASCII case already (and then can stay a plain scan); PostgreSQL needs ILIKE.
        if self.db.is_sqlite:
            return column.like(_like(text), escape="\\")
        return column.ilike(_like(text), escape="\\")

    def _body_contains(self, text: str) -> sa.ColumnElement[bool]:
        if self.db.is_sqlite:  # LIKE never matches a BLOB as it is: read it as the text it holds
            return sa.cast(M.c.body, sa.Text).like(_like(text), escape="\\")
        # bytea has no ILIKE: read its bytes as Latin-1 (any byte is a character, so nothing fails to
        # convert) and look for the query's UTF-8 bytes read the same way.
        needle = text.encode("utf-8").decode("latin-1")
        return sa.func.convert_from(M.c.body, "LATIN1").ilike(_like(needle), escape="\\")

    def _term(self, name: str, text: str) -> sa.ColumnElement[bool]:
        to = sa.exists().where(Q.c.message_id == M.c.id, self._contains(Q.c.recipient, text))
        matches = {
            "from": self._contains(M.c.from_address, text),
            "to": to,
            "subject": self._contains(M.c.subject, text),
            "body": self._body_contains(text),
        }
        return matches[name] if name else sa.or_(*matches.values())

    def _filtered(
        self,
        filters: Filters,
        after: tuple[dt.datetime, str] | None,
        addresses: tuple[list[str], bool] | None,
    ) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if addresses is not None:
            found, walk = addresses
            # On SQLite, ``+from_address`` keeps the planner off the from_address index (see _senders);
            # PostgreSQL weighs the two plans from its statistics itself.
            column = sa.literal_column("+messages.from_address") if walk else M.c.from_address
            where.append(column.in_(found))
        if filters.since:
            where.append(M.c.created_at >= filters.since)
        if filters.until:
            where.append(M.c.created_at < filters.until)
        if after:
            when, message_id = after
            where.append(sa.or_(M.c.created_at < when, sa.and_(M.c.created_at == when, M.c.id < message_id)))
        return where

    async def page(self, filters: Filters, after: str, limit: int) -> Page:
        start = parse_cursor(after) if after else None
        addresses = await self._senders(filters.identity) if filters.identity.strip() else None
        where = self._filtered(filters, start, addresses)
        newest = (M.c.created_at.desc(), M.c.id.desc())
        columns = (
            M.c.id, M.c.account_id, M.c.region, M.c.created_at, M.c.from_address, M.c.subject, M.c.size,
            M.c.status, sa.func.substr(M.c.body, 1, HEAD_BYTES).label("head"),
        )  # fmt: skip
        # Conditions only a row can answer, checked on a bounded window of rows (the module docstring):
        # the search words, and on SQLite the account too. No index has account_id, and SQLite keeps each
        # body's first 4 KB in its row, so a scan for an account with few messages reads the whole table
        # (1.8 s for 100,000); PostgreSQL keeps bodies apart (TOAST) and scans the rows in 70 ms, but not
        # before a search's window as well.
        checked = [self._term(n, t) for n, t in filters.terms]
        if filters.account_id:
            (checked if self.db.is_sqlite or checked else where).append(M.c.account_id == filters.account_id)
        boundary = None
        if checked:
            size = SCAN_WINDOW["sqlite" if self.db.is_sqlite else "postgresql"]
            window = sa.select(M.c.id).where(*where).order_by(*newest).limit(size).subquery()
            q = (
                sa.select(*columns)
                .where(M.c.id.in_(sa.select(window.c.id)), *checked)
                .order_by(*newest)
                .limit(limit + 1)
            )
            # The window's oldest message, when the window is full: where "Search older" goes on from.
            last = sa.select(M.c.created_at, M.c.id).where(*where).order_by(*newest).offset(size - 1).limit(1)
        else:
            q = sa.select(*columns).where(*where).order_by(*newest).limit(limit + 1)
        async with self.db.read() as s:
            found = list((await s.execute(q)).mappings())
            if checked and len(found) <= limit:
                boundary = (await s.execute(last)).first()
            ids = [r["id"] for r in found[:limit]]
            recipients: dict[str, list[str]] = {}
            if ids:
                rq = sa.select(Q.c.message_id, Q.c.recipient).where(Q.c.message_id.in_(ids)).order_by(Q.c.id)
                for message_id, rcpt in await s.execute(rq):
                    recipients.setdefault(message_id, []).append(rcpt)
        rows = [
            Row(
                id=r["id"],
                account_id=r["account_id"],
                region=r["region"],
                created_at=r["created_at"],
                from_address=r["from_address"],
                subject=r["subject"] or "",
                size=r["size"] or 0,
                status=r["status"],
                attachments=has_attachments(bytes(r["head"] or b"")),
                recipients=recipients.get(r["id"], []),
            )  # fmt: skip
            for r in found[:limit]
        ]
        if len(found) > limit:
            return Page(rows, cursor_of(rows[-1].created_at, rows[-1].id))
        if boundary is not None:  # the window ran out before the page filled: go on from its end
            when = boundary[0]
            return Page(rows, cursor_of(when, boundary[1]), searched_to=when)
        return Page(rows)

    async def _senders(self, identity: str) -> tuple[list[str], bool]:
        """The From addresses an identity covers (the address itself, or every address at the domain and
        its subdomains, as a domain identity covers them), read from the from_address index alone; and
        whether to walk the created_at index for them (many matches: newest first, stopping at a page)
        rather than look each up and sort them all (few matches)."""
        given = identity.strip()
        identity = given.lower()
        if "@" in identity:  # an index lookup
            match: sa.ColumnElement[bool] = M.c.from_address.in_(sorted({given, identity}))
        else:
            # Domains are kept lower-case, as SES keeps domain identities. A plain LIKE: PostgreSQL's
            # ILIKE and lower() cost some ten times as much per row (measured: 200 ms for 100,000).
            escaped = re.sub(r"([\\%_])", r"\\\1", identity)
            column = M.c.from_address
            match = sa.or_(column.like("%@" + escaped, escape="\\"), column.like("%." + escaped, escape="\\"))
        async with self.db.read() as s:
            found = list(await s.scalars(sa.select(M.c.from_address).where(match).distinct().limit(1000)))
            walk = False
            if self.db.is_sqlite and found:
                count = sa.select(sa.func.count()).where(M.c.from_address.in_(found))
                walk = (await s.scalar(count) or 0) > SCAN_WINDOW["sqlite"]
        return found, walk

    async def latest(self) -> str:
        """What changes when a message arrives or the newest goes: the newest message's stamp (one index
        probe, cheap enough for every open inbox to ask each second)."""
        rows = await self.db.fetch(
            [("SELECT id, created_at FROM messages ORDER BY created_at DESC, id DESC LIMIT 1", {})]
        )
        return f"{rows[0][0]['created_at']}|{rows[0][0]['id']}" if rows[0] else ""

    async def message(self, message_id: str) -> tuple[Message, list[str]] | None:
        async with self.db.read() as s:
            row = await s.get(Message, message_id)
            if row is None:
                return None
            rq = sa.select(Q.c.recipient).where(Q.c.message_id == message_id).order_by(Q.c.id)
            return row, list(await s.scalars(rq))

    async def events(self, message_id: str) -> list[DeliveryEvent]:
        async with self.db.read() as s:
            q = (
                sa.select(DeliveryEvent)
                .where(DeliveryEvent.message_id == message_id)
                .order_by(DeliveryEvent.id)
            )
            return list(await s.scalars(q))
