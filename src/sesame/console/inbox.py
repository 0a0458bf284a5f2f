"""The dev inbox (``/console/inbox``, dev mode only): every message captured instead of sent, searchable,
updated live, each one readable as HTML (sandboxed), text, headers and source, with its attachments,
the template it came from, its DKIM result, link checks and event records; deleted (as ``DELETE
/_aws/ses`` does) or released to a real SMTP server.

Reads go through console/inbox_query.py, the message's parts through mail/reading.py, the checks and
the release through console/inbox_checks.py; deleting is ``Sending.forget``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from sesame.console import inbox_checks
from sesame.console.inbox_query import Filters, InboxQuery
from sesame.console.web import HEADERS, PREFIX, Ctx, page
from sesame.mail import reading

if TYPE_CHECKING:
    from sesame.console import Console

BASE = PREFIX + "/inbox"
TABS = (
    ("html", "HTML"),
    ("text", "Text"),
    ("headers", "Headers"),
    ("raw", "Raw"),
    ("attachments", "Attachments"),
    ("checks", "Checks"),
    ("events", "Events"),
)
#: How often a live list asks whether the newest message changed; how often it says it is alive; how
#: long one stream lasts before the browser's EventSource reconnects (so none is held forever).
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
STREAM_SECONDS = 300.0
#: The frame's own policy: no script, nothing fetched but inline styles and data: (and cid:) images,
#: framed only by the console itself. ``sandbox`` again in the header, for a frame opened on its own.
FRAME_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src {images}; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
RAW_PREVIEW_BYTES = 512 * 1024


def routes(console: Console) -> list[BaseRoute]:
    inbox = Inbox(console)
    return [
        Route(BASE, page(console, "dev", inbox.index), methods=["GET"]),
        Route(BASE + "/list", page(console, "dev", inbox.fragment), methods=["GET"]),
        Route(BASE + "/stream", page(console, "dev", inbox.stream), methods=["GET"]),
        Route(BASE + "/delete-all", page(console, "dev", inbox.delete_all), methods=["POST"]),
        Route(BASE + "/{id}", page(console, "dev", inbox.show), methods=["GET"]),
        Route(BASE + "/{id}/html", page(console, "dev", inbox.html), methods=["GET"]),
        Route(BASE + "/{id}/raw", page(console, "dev", inbox.raw), methods=["GET"]),
        Route(BASE + "/{id}/parts/{index:int}", page(console, "dev", inbox.part), methods=["GET"]),
        Route(BASE + "/{id}/delete", page(console, "dev", inbox.delete), methods=["POST"]),
        Route(BASE + "/{id}/release", page(console, "dev", inbox.release), methods=["POST"]),
        Route(BASE + "/{id}/check-links", page(console, "dev", inbox.check_links), methods=["POST"]),
    ]


def _day(text: str, *, end: bool = False) -> dt.datetime | None:
    try:
        day = dt.datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return day + dt.timedelta(days=1) if end else day


def _filters(ctx: Ctx) -> Filters:
    q = ctx.query
    return Filters(
        q=q.get("q", "").strip()[:500],
        account_id=q.get("account", "").strip(),
        identity=q.get("identity", "").strip()[:320],
        since=_day(q.get("since", "")),
        until=_day(q.get("until", ""), end=True),
    )


class Inbox:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.query = InboxQuery(console.sesame.db)

    # -- the list ---------------------------------------------------------------------------------

    async def _list_values(self, ctx: Ctx) -> dict[str, Any]:
        filters = _filters(ctx)
        found = await self.query.page(
            filters, ctx.query.get("after", ""), self.console.settings.console.page_size
        )
        keep = {
            k: v for k, v in ctx.query.items() if k in ("q", "account", "identity", "since", "until") and v
        }
        return {
            "page": found,
            "filters": filters,
            "base": BASE,
            "next_url": f"{BASE}?{urlencode({**keep, 'after': found.next})}" if found.next else "",
            "first_url": f"{BASE}?{urlencode(keep)}" if ctx.query.get("after") else "",
        }

    async def index(self, ctx: Ctx) -> Response:
        values = await self._list_values(ctx)
        accounts = [a["AccountId"] for a in await ctx.sesame.accounts.list()][:200]
        identities, _ = await ctx.sesame.identities.page(ctx.account_id, ctx.region, None, None, 100)
        return ctx.render(
            "inbox.html",
            form=ctx.query,
            accounts=accounts,
            identities=[i.identity for i in identities],
            relay=self.console.settings.console.relay,
            **values,
        )

    async def fragment(self, ctx: Ctx) -> Response:
        return ctx.fragment("inbox_list.html", **await self._list_values(ctx))

    async def stream(self, ctx: Ctx) -> Response:
        """Server-sent events: ``change`` when the newest message is another one (a send in any process,
        a delete), a comment as a heartbeat, and an end after STREAM_SECONDS (EventSource reconnects).
        A client that goes away ends it: Starlette stops the generator at the disconnect, or the next
        write fails."""
        headers = {**HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(changes(self.query.latest), media_type="text/event-stream", headers=headers)

    async def delete_all(self, ctx: Ctx) -> Response:
        await ctx.sesame.sending.forget(None)
        return ctx.redirect(BASE, "Every captured message is deleted.")

    # -- one message ------------------------------------------------------------------------------

    async def _load(self, ctx: Ctx) -> tuple[Any, list[str]] | None:
        return await self.query.message(ctx.request.path_params["id"])

    async def show(self, ctx: Ctx, *, link_results: list[inbox_checks.LinkStatus] | None = None,
                   tab: str | None = None) -> Response:  # fmt: skip
        found = await self._load(ctx)
        if found is None:
            return ctx.error(404, "There is no such message: it may have been deleted.")
        message, recipients = found
        raw = bytes(message.body)
        parsed = reading.read(raw)
        tab = tab or ctx.query.get("tab") or ("html" if parsed.html is not None else "text")
        if tab not in dict(TABS):
            tab = "html"
        values: dict[str, Any] = {}
        if tab == "checks":
            values["dkim"] = await self._dkim(ctx, message, raw)
            values["links"] = reading.links_of(parsed.html)
            values["link_results"] = link_results
        elif tab == "events":
            values["events"] = [
                (e.event_type, e.created_at, json.dumps(e.detail, indent=2, sort_keys=True))
                for e in await self.query.events(message.id)
            ]
        elif tab == "raw":
            values["raw_text"] = raw[:RAW_PREVIEW_BYTES].decode("utf-8", "replace")
            values["raw_cut"] = len(raw) > RAW_PREVIEW_BYTES
        summary = message.summary or {}
        template_data = summary.get("TemplateData")
        if isinstance(template_data, str):
            try:
                template_data = json.dumps(json.loads(template_data), indent=2, sort_keys=True)
            except ValueError:
                pass
        images = ctx.query.get("images") == "1"
        return ctx.render(
            "inbox_message.html",
            m=message,
            r=parsed,
            recipients=recipients or _destinations(summary),
            tab=tab,
            tabs=TABS,
            base=f"{BASE}/{message.id}",
            images=images,
            template_name=summary.get("Template"),
            template_data=template_data,
            relay=self.console.settings.console.relay,
            **values,
        )

    async def _dkim(self, ctx: Ctx, message: Any, raw: bytes) -> inbox_checks.DkimResult:
        domain = message.from_address.rpartition("@")[2].lower()
        identity = await ctx.sesame.identities.get(message.account_id, message.region, domain)
        pem = ctx.sesame.identities.private_key(identity) if identity is not None else None
        return await asyncio.to_thread(inbox_checks.dkim_check, raw, identity, pem)

    async def html(self, ctx: Ctx) -> Response:
        """The HTML body for the sandboxed frame, under its own Content-Security-Policy."""
        found = await self._load(ctx)
        if found is None:
            return Response("Not found", 404, media_type="text/plain", headers=HEADERS)
        parsed = reading.read(bytes(found[0].body))
        images = "* data: cid:" if ctx.query.get("images") == "1" else "data: cid:"
        headers = {**HEADERS, "Content-Security-Policy": FRAME_CSP.format(images=images)}
        return Response(reading.framed(parsed), media_type="text/html; charset=utf-8", headers=headers)

    async def raw(self, ctx: Ctx) -> Response:
        found = await self._load(ctx)
        if found is None:
            return ctx.error(404, "There is no such message: it may have been deleted.")
        headers = {**HEADERS, "Content-Disposition": reading.content_disposition(f"{found[0].id}.eml")}
        return Response(bytes(found[0].body), media_type="message/rfc822", headers=headers)

    async def part(self, ctx: Ctx) -> Response:
        found = await self._load(ctx)
        if found is None:
            return ctx.error(404, "There is no such message: it may have been deleted.")
        parsed = reading.read(bytes(found[0].body))
        index = ctx.request.path_params["index"]
        wanted = [p for p in [*parsed.attachments, *parsed.inline.values()] if p.index == index]
        if not wanted:
            return ctx.error(404, "The message has no such attachment.")
        part = wanted[0]
        disposition = reading.content_disposition(part.filename or part.download_name)
        headers = {**HEADERS, "Content-Disposition": disposition}
        return Response(part.content, media_type=part.download_type, headers=headers)

    async def delete(self, ctx: Ctx) -> Response:
        await ctx.sesame.sending.forget(ctx.request.path_params["id"])
        return ctx.redirect(BASE, "The message is deleted.")

    async def release(self, ctx: Ctx) -> Response:
        found = await self._load(ctx)
        if found is None:
            return ctx.error(404, "There is no such message: it may have been deleted.")
        message, recipients = found
        back = f"{BASE}/{message.id}"
        target = inbox_checks.parse_hostport(ctx.form.get("relay", "") or self.console.settings.console.relay)
        if target is None:
            return ctx.redirect(back, "Release: give the SMTP server as HOST:PORT.")
        wanted = [a.strip() for a in ctx.form.get("recipients", "").replace(";", ",").split(",") if a.strip()]
        wanted = wanted or recipients or _destinations(message.summary or {})
        if not wanted or any("@" not in a for a in wanted):
            return ctx.redirect(back, "Release: give the recipients as addresses, separated by commas.")
        refused = await inbox_checks.release(bytes(message.body), message.source, wanted, *target)
        if refused:
            return ctx.redirect(back, "Release failed: " + "; ".join(refused)[:500])
        return ctx.redirect(back, f"Released to {target[0]}:{target[1]} for {', '.join(wanted)}.")

    async def check_links(self, ctx: Ctx) -> Response:
        found = await self._load(ctx)
        if found is None:
            return ctx.error(404, "There is no such message: it may have been deleted.")
        links = reading.links_of(reading.read(bytes(found[0].body)).html).links
        results = await inbox_checks.check_links(links)
        return await self.show(ctx, link_results=results, tab="checks")


async def changes(
    latest: Callable[[], Awaitable[str]],
    *,
    poll: float = POLL_SECONDS,
    heartbeat: float = HEARTBEAT_SECONDS,
    lifetime: float = STREAM_SECONDS,
) -> AsyncIterator[str]:
    """The event stream's text: ``change`` each time ``latest()`` answers something new, a comment every
    ``heartbeat`` seconds (proxies close silent connections; a write to a gone client fails), and the end
    after ``lifetime`` seconds."""
    started = last_beat = time.monotonic()
    seen = await latest()
    yield "retry: 2000\n\n"
    while time.monotonic() - started < lifetime:
        await asyncio.sleep(poll)
        now = await latest()
        if now != seen:
            seen = now
            yield "event: change\ndata: {}\n\n"
        if time.monotonic() - last_beat >= heartbeat:
            last_beat = time.monotonic()
            yield ": heartbeat\n\n"


def _destinations(summary: dict[str, Any]) -> list[str]:
    """The recipients the request named (for a message that has no queue rows, a rendering failure)."""
    if summary.get("Destinations"):
        return [str(a) for a in summary["Destinations"]]
    dest = summary.get("Destination") or {}
    return [str(a) for key in ("ToAddresses", "CcAddresses", "BccAddresses") for a in dest.get(key) or []]
