"""The operator's view of delivery: the queue by destination site (``sesame queue``), a site's pending
entries with retry, bounce and delete (``mta/queue.py``, as the admin API calls it), event publishing
(``sesame events``: ``events/inspect.py``) and this node."""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from typing import Any

import sqlalchemy as sa
from starlette.responses import Response

from sesame.console.web import PREFIX, Ctx
from sesame.events import inspect, outbox
from sesame.mta import bounce
from sesame.mta import queue as q
from sesame.mta.engine import helo_name
from sesame.storage.models import DeliveryEvent, Message, Publication, QueueEntry

BASE = f"{PREFIX}/operator"
#: The order a site's states are shown in; others (a newer state) follow by name.
STATES = ("queued", "deferred", "delivering", "suppressed", "unsubscribed", "delivered", "bounced")
#: When this process started serving pages (the module is imported as the server starts).
STARTED = time.time()
#: Publication ids retried per statement (bound parameters have limits).
RETRY_CHUNK = 1000


def _ordered(states: set[str]) -> list[str]:
    return [s for s in STATES if s in states] + sorted(states - set(STATES))


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 0 < int(text) < 1_000_000 else 1


# -- the queue --------------------------------------------------------------------------------------


async def queue(ctx: Ctx) -> Response:
    """Entries waiting for delivery by destination site and state, sites with the most waiting first,
    read through the state index. Settled entries are left to ``sesame queue``: counting them reads every
    row of the queue (180 ms at 160,000 entries on SQLite, past the console's 100 ms a page)."""
    async with ctx.sesame.db.read() as s:
        rows = list(
            await s.execute(
                sa.select(QueueEntry.domain, QueueEntry.state, sa.func.count())
                .where(QueueEntry.state.in_(q.PENDING_STATES))
                .group_by(QueueEntry.domain, QueueEntry.state)
            )
        )
    sites: dict[str, dict[str, int]] = {}
    for domain, state, n in rows:
        sites.setdefault(domain, {})[state] = int(n)
    pending = set(q.PENDING_STATES)
    ranked = sorted(
        sites.items(), key=lambda kv: (-sum(n for st, n in kv[1].items() if st in pending), kv[0])
    )
    size = ctx.console.settings.console.page_size
    number = _page_number(ctx.query.get("page", ""))
    shown = ranked[(number - 1) * size : number * size]
    totals: dict[str, int] = {}
    for _, counts in ranked:
        for st, n in counts.items():
            totals[st] = totals.get(st, 0) + n
    return ctx.render(
        "operator_queue.html",
        sites=shown,
        states=_ordered({st for _, counts in ranked for st in counts} or set(q.PENDING_STATES[:2])),
        totals=totals,
        number=number,
        more=len(ranked) > number * size,
        site_count=len(ranked),
    )


async def site(ctx: Ctx) -> Response:
    """One destination site's pending entries, oldest first, a page at a time (after an entry id),
    each with its message's sender, subject and account (one joined query)."""
    domain = ctx.request.path_params["domain"].lower()
    size = ctx.console.settings.console.page_size
    after = ctx.query.get("after", "")
    query = (
        sa.select(
            QueueEntry.id,
            QueueEntry.message_id,
            QueueEntry.recipient,
            QueueEntry.state,
            QueueEntry.attempts,
            QueueEntry.next_attempt_at,
            QueueEntry.last_reply,
            QueueEntry.created_at,
            Message.account_id,
            Message.source,
            Message.subject,
        )
        .join(Message, Message.id == QueueEntry.message_id)
        .where(QueueEntry.domain == domain, QueueEntry.state.in_(q.PENDING_STATES))
        .order_by(QueueEntry.id)
        .limit(size + 1)
    )
    if after.isdigit():
        query = query.where(QueueEntry.id > int(after))
    async with ctx.sesame.db.read() as s:
        entries = list(await s.execute(query))
    return ctx.render(
        "operator_site.html",
        domain=domain,
        entries=entries[:size],
        next_after=entries[size - 1].id if len(entries) > size else None,
        paged=after.isdigit(),
        back=str(ctx.request.url.path) + (f"?after={after}" if after.isdigit() else ""),
    )


async def message(ctx: Ctx) -> Response:
    """One queued message (``sesame queue show``): recipients, attempts, last replies, records."""
    found = await q.show(ctx.sesame.db, ctx.request.path_params["message_id"])
    if found is None:
        return ctx.error(404, "There is no such message in the queue (it may have been deleted).")
    found["CreatedAt"] = dt.datetime.fromisoformat(found["CreatedAt"])
    for r in found["Recipients"]:
        r["NextAttemptAt"] = dt.datetime.fromisoformat(r["NextAttemptAt"])
    for e in found["Events"]:
        e["At"] = dt.datetime.fromisoformat(e["At"])
    return ctx.render("operator_message.html", m=found, back=str(ctx.request.url.path))


async def act(ctx: Ctx) -> Response:
    """Retry now, bounce or delete one message (all its recipients), as ``sesame queue retry|bounce|
    delete`` do; then back to the page the form was on."""
    message_id = ctx.request.path_params["message_id"]
    action = ctx.request.path_params["action"]
    back = ctx.form.get("back", "")
    if not back.startswith(BASE + "/queue") or back.startswith("//"):
        back = f"{BASE}/queue"
    if action == "retry":
        n = await q.retry_now(ctx.sesame.db, message_id)
        if ctx.sesame.engine is not None:
            ctx.sesame.engine.wake()
        notice = f"{n} deferred recipient(s) of {message_id} will be tried again now."
        if n == 0:
            notice = f"{message_id} has no deferred recipient to retry."
    elif action == "bounce":
        verdict = bounce.local("operator", "bounced by the operator")
        n = await q.bounce_now(ctx.sesame.db, message_id, verdict, helo_name(ctx.console.settings.delivery))
        notice = f"{n} pending recipient(s) of {message_id} bounced."
    elif action == "delete":
        if not await q.delete(ctx.sesame.db, message_id):
            return ctx.redirect(back, f"{message_id} was not in the queue any more.")
        notice = f"{message_id} deleted: nothing more of it is delivered."
        if back.startswith(f"{BASE}/queue/messages/"):
            back = f"{BASE}/queue"
    else:
        return ctx.error(404, "There is no such action.")
    return ctx.redirect(back, notice)


# -- event publishing -------------------------------------------------------------------------------


async def events(ctx: Ctx) -> Response:
    """Publications waiting or failed by state and kind, records not yet dispatched, destinations with
    publications waiting or failed (counted, with the newest one's error), the newest of those
    publications, and the newest event records. Every read goes through an index on state (published
    publications, the bulk of the table, are not counted: ``sesame events`` counts those)."""
    size = ctx.console.settings.console.page_size
    db = ctx.sesame.db
    counts = await inspect.waiting_counts(db)
    waiting = Publication.state.in_(("pending", "failed"))
    async with db.read() as s:
        undispatched = await s.scalar(
            sa.select(sa.func.count()).select_from(DeliveryEvent).where(outbox.undispatched(db))
        )
        grouped = list(
            await s.execute(
                sa.select(
                    Publication.destination,
                    Publication.kind,
                    Publication.state,
                    sa.func.count(),
                    sa.func.max(Publication.id),
                )
                .where(waiting)
                .group_by(Publication.destination, Publication.kind, Publication.state)
            )
        )
        newest_ids: dict[str, int] = {}
        for destination, _, _, _, top in grouped:
            newest_ids[destination] = max(newest_ids.get(destination, 0), top)
        newest: dict[str, Publication] = {}
        if newest_ids:
            for p in await s.scalars(
                sa.select(Publication).where(Publication.id.in_(list(newest_ids.values())))
            ):
                newest[p.destination] = p
        stuck = list(
            await s.scalars(sa.select(Publication).where(waiting).order_by(Publication.id.desc()).limit(size))
        )
    destinations: dict[str, dict[str, Any]] = {}
    for destination, kind, state, n, _ in grouped:
        d = destinations.setdefault(
            destination, {"destination": destination, "kind": kind, "pending": 0, "failed": 0}
        )
        d[state] = d.get(state, 0) + int(n)
        p = newest.get(destination)
        d["last_error"] = p.last_error if p else None
        d["attempts"] = p.attempts if p else 0
    failing = sorted(destinations.values(), key=lambda d: (-d["failed"], -d["pending"], d["destination"]))
    recent = list(reversed(await inspect.recent(db, 0, limit=size)))
    for record in recent:
        record["At"] = dt.datetime.fromisoformat(record["At"])
    return ctx.render(
        "operator_events.html",
        counts=[{"State": st, "Kind": k, "Count": n} for (st, k), n in sorted(counts.items())],
        undispatched=int(undispatched or 0),
        failing=failing[:size],
        more_failing=max(0, len(failing) - size),
        stuck=stuck,
        recent=recent,
    )


async def events_retry(ctx: Ctx) -> Response:
    """``sesame events retry``: every waiting or failed publication (``all``), one destination's, or
    one publication; due now, with a new day of retries."""
    db = ctx.sesame.db
    destination = ctx.form.get("destination", "")
    publication = ctx.form.get("id", "")
    if ctx.form.get("all") == "true":
        n = await inspect.retry(db, None)
        what = "every waiting or failed publication"
    elif publication.isdigit():
        n = await inspect.retry(db, [int(publication)])
        what = f"publication #{publication}"
    elif destination:
        async with db.read() as s:
            ids = list(
                await s.scalars(
                    sa.select(Publication.id).where(
                        Publication.destination == destination, Publication.state.in_(("pending", "failed"))
                    )
                )
            )
        n = 0
        for i in range(0, len(ids), RETRY_CHUNK):
            n += await inspect.retry(db, ids[i : i + RETRY_CHUNK])
        what = destination
    else:
        return ctx.redirect(f"{BASE}/events", "Nothing was chosen to retry.")
    ctx.sesame.publisher.wake()
    return ctx.redirect(f"{BASE}/events", f"{n} publication(s) of {what} will be tried again now.")


# -- nodes ------------------------------------------------------------------------------------------


async def nodes(ctx: Ctx) -> Response:
    """The deployment's nodes (sesame/nodes.py, the registry each process heartbeats), then this node:
    what it is and what it runs."""
    settings = ctx.console.settings
    sesame = ctx.sesame
    # The HTTP socket that took this request: its real port, when the settings said "any free port".
    server = ctx.request.scope.get("server") or settings.http_address()
    listeners = [
        ("api", f"HTTP {_address(str(server[0]), int(server[1] or 0))}", "the SES APIs, SNS and this console")
    ]
    for name, address in settings.smtp_addresses().items():
        role = {"smtp": "smtp", "smtps": "smtp", "mx": "mx"}.get(name, name)
        what = "mail for Sesame's return paths and receipt rules" if name == "mx" else "SMTP submission"
        listeners.append((role, f"{name.upper()} {_address(*address)}", what))
    tasks = []
    if sesame.delivers:
        tasks.append(("delivery", "delivers the queue to the recipients' mail servers"))
    else:
        tasks.append(("capture", "keeps sent mail (dev mode's inbox) instead of delivering it"))
    tasks.append(("events", "publishes event records and notifications; delivers SNS messages"))
    tasks.append(("receiving", "applies receipt rules to mail the MX accepted"))
    if settings.jobs.enabled:
        tasks.append(("jobs", "runs import and export jobs"))
    uptime = int(time.time() - STARTED)
    return ctx.render(
        "operator_nodes.html",
        registry=await sesame.nodes.list(),
        this_node=settings.node_name,  # the --node-id, else HOST:PID: the id its registry row has
        host=socket.gethostname(),
        pid=os.getpid(),
        node_mode=settings.mode,
        database="SQLite" if settings.is_sqlite else "PostgreSQL",
        listeners=listeners,
        tasks=tasks,
        started=dt.datetime.fromtimestamp(STARTED, dt.UTC),
        uptime=_duration(uptime),
        public_url=settings.public_url,
    )


def _address(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else f"{shown}, a free port chosen at start"


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {minutes} min"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"
