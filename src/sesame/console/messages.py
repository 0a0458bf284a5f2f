"""Console pages: the account's sent messages (``/console/messages``): search and one message's timeline.

Every query names the session's account (and the list its region): a message id of another account
is answered 404, as one that does not exist, so that ids cannot be probed.

The list is newest first, paged by keyset (created_at, id) rather than OFFSET, walking the
``ix_messages_account_id_region_created_at`` index, so that page 500 costs what page 1 does; the
recipients and their states of a page's messages come in one more query. Text filters match
case-insensitively anywhere in the field (LIKE on SQLite, ILIKE on PostgreSQL), and no index helps with
that: a word that matches almost nothing would read every message of the account (105 ms at 100,000 on
both databases). So a text search reads a bounded window, the account's newest
``console.search_window`` messages from where the page starts; when the window runs out before the page
fills, the page says how far back it looked and "Search older messages" goes on from there (the dev
inbox does the same, for bodies).

The timeline is the message, its queue entries (one per recipient: state, attempts, the remote
server's last reply) and its event records (Send, Delivery, Bounce, DeliveryDelay, Complaint, Reject,
Open, Click…, with SES's own detail), three queries.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sesame.console.web import PREFIX, Ctx, page
from sesame.storage.models import DeliveryEvent, Message, QueueEntry, table

if TYPE_CHECKING:
    from sesame.console import Console

#: Recipient states (the queue's) and message states (never queued) a search may ask for.
RECIPIENT_STATES = ("queued", "deferred", "delivered", "bounced", "suppressed", "unsubscribed", "expired",
                    "failed", "captured")  # fmt: skip
MESSAGE_STATES = ("rejected", "rendering-failure")
LEVELS = {
    "Delivery": "ok", "Open": "ok", "Click": "ok", "Subscription": "ok",
    "Bounce": "bad", "Complaint": "bad", "Reject": "bad", "RenderingFailure": "bad",
    "DeliveryDelay": "warn",
}  # fmt: skip
STATE_LEVELS = {"delivered": "ok", "captured": "ok", "queued": "warn", "deferred": "warn"}


def routes(console: Console) -> list[BaseRoute]:
    base = f"{PREFIX}/messages"
    return [
        Route(base, page(console, "account", search), methods=["GET"]),
        Route(base + "/{message_id}", page(console, "account", timeline), methods=["GET"]),
    ]


def _like(value: str) -> str:
    """A LIKE pattern matching ``value`` anywhere, its own % and _ taken literally."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, value: str, is_sqlite: bool) -> Any:
    """``column`` contains ``value``, ignoring case: SQLite's LIKE ignores ASCII case already (and its
    lower() knows no other letters); PostgreSQL's ILIKE is its case-insensitive LIKE."""
    pattern = _like(value)
    return column.like(pattern, escape="\\") if is_sqlite else column.ilike(pattern, escape="\\")


def _date(value: str) -> dt.datetime | None:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(), dt.UTC)


@dataclass(frozen=True)
class Filters:
    source: str = ""
    to: str = ""
    subject: str = ""
    message_id: str = ""
    status: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def of(cls, query: dict[str, str]) -> Filters:
        return cls(**{k: query.get(k, "").strip()[:320] for k in cls.__dataclass_fields__})

    def where(self, m: sa.Table, q: sa.Table, is_sqlite: bool) -> list[Any]:
        def contains(column: Any, value: str) -> Any:
            return _contains(column, value, is_sqlite)

        out: list[Any] = []
        if self.source:
            out.append(contains(m.c.from_address, self.source))
        if self.subject:
            out.append(contains(m.c.subject, self.subject))
        if self.message_id:
            out.append(m.c.id == self.message_id)
        if self.to:
            # Asked of each message in turn (a scalar subquery with LIMIT, through ix_queue_message_id):
            # written as EXISTS, PostgreSQL makes it a semi-join that reads every queue entry with
            # ILIKE first (170 ms at 166,000 entries), however few messages the window holds.
            one = sa.select(sa.literal(1)).where(q.c.message_id == m.c.id, contains(q.c.recipient, self.to))
            out.append(one.limit(1).scalar_subquery().is_not(None))
        if self.status in MESSAGE_STATES:
            out.append(m.c.status == self.status)
        elif self.status in RECIPIENT_STATES:
            out.append(sa.exists().where(q.c.message_id == m.c.id, q.c.state == self.status))
        since, until = _date(self.since), _date(self.until)
        if since:
            out.append(m.c.created_at >= since)
        if until:
            out.append(m.c.created_at < until + dt.timedelta(days=1))  # the whole "until" day
        return out

    @property
    def text(self) -> bool:
        """Whether a condition matches text anywhere in a field (no index helps: a window is read)."""
        return bool(self.source or self.subject or self.to)

    def query(self, **extra: str) -> str:
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return urlencode({k: v for k, v in {**fields, **extra}.items() if v})


def _cursor(value: str) -> tuple[dt.datetime, str] | None:
    when, _, message_id = value.partition("~")
    try:
        parsed = dt.datetime.fromisoformat(when)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)), message_id


@dataclass
class Found:
    rows: list[dict[str, Any]]
    #: Where the next page starts ("created_at~id"), if there is one.
    next: str | None
    #: A text search whose window ran out before the page filled: the oldest message it looked at.
    searched_to: dt.datetime | None = None


async def find(ctx: Ctx, filters: Filters, before: str, size: int) -> Found:
    """A page of the account's messages in this region, newest first, and the next page's cursor."""
    m, q = table(Message), table(QueueEntry)
    db = ctx.sesame.db
    where = [m.c.account_id == ctx.account_id, m.c.region == ctx.region]
    cursor = _cursor(before) if before else None
    if cursor:
        when, message_id = cursor
        # The plain bound first: it is what lets the index walk start at the cursor (an OR alone
        # would make SQLite read from the newest message on).
        where.append(m.c.created_at <= when)
        where.append(sa.or_(m.c.created_at < when, sa.and_(m.c.created_at == when, m.c.id < message_id)))
    newest = (m.c.created_at.desc(), m.c.id.desc())
    conditions = filters.where(m, q, db.is_sqlite)
    edge: dt.datetime | None = None
    async with db.read() as s:
        if filters.text:
            # The window (the module docstring): the messages from the start of the page back to the
            # time of the window's last one, a range of the index. The first page after it starts
            # strictly before that time, so nothing is read twice or skipped.
            span = ctx.console.settings.console.search_window
            last = sa.select(m.c.created_at).where(*where).order_by(*newest).offset(span - 1).limit(1)
            edge = await s.scalar(last)
            if edge is not None:
                conditions.append(m.c.created_at >= edge)
        query = (
            sa.select(m.c.id, m.c.created_at, m.c.from_address, m.c.subject, m.c.status, m.c.operation)
            .where(*where, *conditions)
            .order_by(*newest)
            .limit(size + 1)
        )
        rows = [dict(r._mapping) for r in await s.execute(query)]
        more = len(rows) > size
        rows = rows[:size]
        recipients: dict[str, list[tuple[str, str]]] = defaultdict(list)
        if rows:
            found = await s.execute(
                sa.select(q.c.message_id, q.c.recipient, q.c.state)
                .where(q.c.message_id.in_([r["id"] for r in rows]))
                .order_by(q.c.id)
            )
            for message_id, recipient, state in found:
                recipients[message_id].append((recipient, state))
    for r in rows:
        r["recipients"] = recipients.get(r["id"], [])
    if more:
        return Found(rows, f"{rows[-1]['created_at'].isoformat()}~{rows[-1]['id']}")
    if edge is not None:  # the window is full and the page is not: go on from before the window's time
        return Found(rows, f"{edge.isoformat()}~", searched_to=edge)
    return Found(rows, None)


async def search(ctx: Ctx) -> Response:
    filters = Filters.of(ctx.query)
    size = ctx.console.settings.console.page_size
    found = await find(ctx, filters, ctx.query.get("before", ""), size)
    return ctx.render(
        "messages.html",
        rows=found.rows,
        searched_to=found.searched_to,
        filters=filters,
        next_query=filters.query(before=found.next) if found.next else "",
        first_query=filters.query() if ctx.query.get("before") else None,
        statuses=RECIPIENT_STATES + MESSAGE_STATES,
        levels=STATE_LEVELS,
    )


@dataclass(frozen=True)
class Step:
    when: dt.datetime
    title: str
    level: str
    lines: list[str]
    detail: str = ""


def _event_step(kind: str, when: dt.datetime, detail: dict[str, Any]) -> Step:
    """One event record as the timeline tells it: what happened, to whom, what the server said."""
    lines: list[str] = []
    if kind == "Delivery":
        lines.append("To " + ", ".join(detail.get("recipients") or []))
        if detail.get("smtpResponse"):
            lines.append(f"Remote server: {detail['smtpResponse']}")
    elif kind == "Bounce":
        lines.append(f"{detail.get('bounceType', '')} / {detail.get('bounceSubType', '')}")
        for r in detail.get("bouncedRecipients") or []:
            lines.append(f"{r.get('emailAddress', '')}: {r.get('diagnosticCode') or r.get('status') or ''}")
    elif kind == "DeliveryDelay":
        lines.append(str(detail.get("delayType", "")))
        for r in detail.get("delayedRecipients") or []:
            lines.append(f"{r.get('emailAddress', '')}: {r.get('diagnosticCode', '')}")
    elif kind == "Complaint":
        lines.append(str(detail.get("complaintFeedbackType") or detail.get("complaintSubType") or ""))
    elif kind == "Reject":
        lines.append(str(detail.get("reason", "")))
    elif kind == "RenderingFailure":
        lines.append(str(detail.get("errorMessage", "")))
    elif kind in ("Open", "Click"):
        if detail.get("link"):
            lines.append(f"Link: {detail['link']}")
        if detail.get("userAgent"):
            lines.append(f"User agent: {detail['userAgent']}")
        if detail.get("ipAddress"):
            lines.append(f"From {detail['ipAddress']}")
    return Step(when, kind, LEVELS.get(kind, ""), [x for x in lines if x.strip()],
                json.dumps(detail, indent=2, sort_keys=True, default=str) if detail else "")  # fmt: skip


async def timeline(ctx: Ctx) -> Response:
    message_id = ctx.request.path_params["message_id"]
    m, q, e = table(Message), table(QueueEntry), table(DeliveryEvent)
    async with ctx.sesame.db.read() as s:
        found = (
            await s.execute(
                sa.select(
                    m.c.id, m.c.region, m.c.created_at, m.c.operation, m.c.source, m.c.from_address,
                    m.c.subject, m.c.configuration_set, m.c.tags, m.c.summary, m.c.status, m.c.size,
                    m.c.tenant_name,
                ).where(m.c.id == message_id, m.c.account_id == ctx.account_id)
            )
        ).first()  # fmt: skip
        if found is None:
            return ctx.error(404, "There is no such message in this account.")
        entries = [
            dict(r._mapping)
            for r in await s.execute(
                sa.select(q.c.recipient, q.c.state, q.c.attempts, q.c.last_reply, q.c.next_attempt_at)
                .where(q.c.message_id == message_id)
                .order_by(q.c.id)
            )
        ]
        events = list(
            await s.execute(
                sa.select(e.c.event_type, e.c.created_at, e.c.detail)
                .where(e.c.message_id == message_id, e.c.account_id == ctx.account_id)
                .order_by(e.c.created_at, e.c.id)
            )
        )
    message = dict(found._mapping)
    recipients = ", ".join(x["recipient"] for x in entries)
    accepted = [f"{message['operation']} from {message['from_address']}"]
    if recipients:
        accepted.append(f"To {recipients}")
    steps = [Step(message["created_at"], "Accepted", "", accepted)]
    steps += [_event_step(kind, when, detail or {}) for kind, when, detail in events if kind != "Send"]
    tracking = {
        "opens": sum(1 for kind, _, _ in events if kind == "Open"),
        "clicks": sum(1 for kind, _, _ in events if kind == "Click"),
    }
    return ctx.render(
        "message.html",
        message=message,
        entries=entries,
        steps=steps,
        tracking=tracking,
        levels=STATE_LEVELS,
        template_name=(message["summary"] or {}).get("Template"),
    )
