"""Console pages: email templates (``/console/templates``): the list, an editor (subject, text, HTML)
with a preview rendered with sample data, and a test send.

The preview renders what the editor holds (saved or not) with ``handlebars.render_parts`` under
``Templates.run``'s budget: the renderer TestRenderEmailTemplate uses, so a rendering error reads as
SES words it. The rendered HTML is shown in a sandboxed iframe whose document comes from a route of
its own with a strict policy (no script, nothing remote, only this console may frame it). That
document is kept in this process for a few minutes under an unguessable id and the session that made
it: previews are one person's scratch work, not data.

A test send is SendEmail with a Template: the stored template rendered by ``render_for_send``, composed
by ``compose.templated`` and accepted by ``Sending.send``, so it is counted, tracked and delivered like
any other message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from sesame.console.web import PREFIX, Ctx, page
from sesame.domain import compose
from sesame.domain.addresses import IllegalAddress
from sesame.domain.compose import Envelope
from sesame.domain.sending import SendError
from sesame.domain.templates import Content, TemplateStoreError
from sesame.errors import DomainError
from sesame.mail import handlebars as hb
from sesame.storage.models import ConsolePreview, utcnow

if TYPE_CHECKING:
    from sesame.console import Console

#: The framed preview's own policy: its HTML may style itself and show inline images, nothing else.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'none'; sandbox"
)
PREVIEW_SECONDS = 600
#: Previews one session keeps at once: rendering another drops its oldest.
PREVIEW_KEEP = 16
SAMPLE_DATA = '{\n  "name": "Alex"\n}'


def _owner(ctx: Ctx) -> str:
    return hashlib.sha256(ctx.principal.token.encode()).hexdigest()


async def keep_preview(ctx: Ctx, html: str) -> str:
    """Keep the rendered HTML for the frame's request, which any process may answer; sweep what expired."""
    now, owner, key = utcnow(), _owner(ctx), secrets.token_urlsafe(18)
    async with ctx.sesame.db.write() as s:
        await s.execute(sa.delete(ConsolePreview).where(ConsolePreview.expires_at < now))
        kept = sa.select(ConsolePreview.id).where(ConsolePreview.owner == owner)
        old = list(await s.scalars(kept.order_by(ConsolePreview.created_at.desc()).offset(PREVIEW_KEEP - 1)))
        if old:
            await s.execute(sa.delete(ConsolePreview).where(ConsolePreview.id.in_(old)))
        until = now + dt.timedelta(seconds=PREVIEW_SECONDS)
        s.add(ConsolePreview(id=key, owner=owner, html=html, created_at=now, expires_at=until))
    return key


def routes(console: Console) -> list[BaseRoute]:
    base = f"{PREFIX}/templates"
    return [
        Route(base, page(console, "account", index), methods=["GET"]),
        Route(base + "/-/preview/{key}", page(console, "account", framed), methods=["GET"]),
        Route(base + "/-/new", page(console, "account", new), methods=["GET", "POST"]),
        Route(base + "/{name}", page(console, "account", edit), methods=["GET", "POST"]),
        Route(base + "/{name}/send", page(console, "account", send_test), methods=["POST"]),
        Route(base + "/{name}/delete", page(console, "account", delete), methods=["POST"]),
    ]


async def index(ctx: Ctx) -> Response:
    after = ctx.query.get("after") or None
    size = ctx.console.settings.console.page_size
    rows, last = await ctx.sesame.templates.page(ctx.account_id, ctx.region, after, size)
    return ctx.render("templates.html", rows=rows, next=last)


def _content(ctx: Ctx) -> Content:
    """The editor's parts; an empty part is no part (SES stores none)."""
    return Content(
        ctx.form.get("subject") or None, ctx.form.get("text") or None, ctx.form.get("html") or None
    )


async def render_preview(ctx: Ctx, content: Content, data_json: str) -> dict[str, Any]:
    """The parts rendered with ``data_json``, or the error in SES's words."""
    try:
        data = hb.parse_template_data(data_json or "{}")
        subject, html, text = await ctx.sesame.templates.run(
            lambda budget: hb.render_parts(content.subject or "", content.html, content.text, data, budget),
            content,
            compose.V2_MAX_BYTES,
        )
    except hb.TemplateError as exc:
        return {"error": str(exc)}
    out: dict[str, Any] = {"subject": subject, "text": text, "frame": None}
    if html is not None:
        out["frame"] = f"{PREFIX}/templates/-/preview/{await keep_preview(ctx, html)}"
    return out


def _editor(ctx: Ctx, *, name: str, content: Content, data: str, exists: bool, status: int = 200,
            error: str = "", preview: dict[str, Any] | None = None, sent: str = "") -> Response:  # fmt: skip
    return ctx.render(
        "template.html",
        status=status,
        name=name,
        content=content,
        data=data,
        exists=exists,
        error=error,
        preview=preview,
        sent=sent,
        to=ctx.form.get("to", ""),
        source=ctx.form.get("from", ""),
    )


async def new(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return _editor(ctx, name="", content=Content("", None, None), data=SAMPLE_DATA, exists=False)
    name = ctx.form.get("name", "").strip()
    content, data = _content(ctx), ctx.form.get("data", "")
    if ctx.form.get("action") == "preview":
        preview = await render_preview(ctx, content, data)
        return _editor(ctx, name=name, content=content, data=data, exists=False, preview=preview)
    try:
        await ctx.sesame.templates.create(ctx.account_id, ctx.region, name, _checked(name, content))
    except TemplateStoreError as exc:
        return _editor(ctx, name=name, content=content, data=data, exists=False, status=400, error=str(exc))
    return ctx.redirect(f"{PREFIX}/templates/{name}", f"Template {name} was created.")


def _checked(name: str, content: Content) -> Content:
    """The checks the API's model makes before CreateEmailTemplate reaches the domain."""
    if not name or len(name) > 64 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in name):
        raise TemplateStoreError("invalid", "A template name is 1 to 64 letters, digits, _ and -.")
    return content


async def edit(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    templates = ctx.sesame.templates
    try:
        row = await templates.get(ctx.account_id, ctx.region, name)
    except TemplateStoreError as exc:
        return ctx.error(404, str(exc))
    if ctx.request.method == "GET":
        return _editor(ctx, name=name, content=Content.of(row), data=SAMPLE_DATA, exists=True)
    content, data = _content(ctx), ctx.form.get("data", "")
    if ctx.form.get("action") == "preview":
        preview = await render_preview(ctx, content, data)
        return _editor(ctx, name=name, content=content, data=data, exists=True, preview=preview)
    try:
        await templates.update(ctx.account_id, ctx.region, name, content)
    except TemplateStoreError as exc:
        return _editor(ctx, name=name, content=content, data=data, exists=True, status=400, error=str(exc))
    return ctx.redirect(f"{PREFIX}/templates/{name}", f"Template {name} was saved.")


async def send_test(ctx: Ctx) -> Response:
    """SendEmail with Content.Template: the stored template, the form's data, one recipient."""
    name = ctx.request.path_params["name"]
    sesame = ctx.sesame
    try:
        row = await sesame.templates.get(ctx.account_id, ctx.region, name)
    except TemplateStoreError as exc:
        return ctx.error(404, str(exc))
    data_json = ctx.form.get("data") or "{}"
    source, to = ctx.form.get("from", "").strip(), ctx.form.get("to", "").strip()
    try:
        data = hb.parse_template_data(data_json)
        rendered = await sesame.templates.render_for_send(Content.of(row), data, compose.V2_MAX_BYTES)
        out = await compose.templated(
            "SendEmail",
            ctx.region,
            Envelope(source=source, to=[to] if to else []),
            rendered=rendered,
            template_name=row.name,
            template_data=data_json,
            limit=compose.V2_MAX_BYTES,
        )
        out.summary["Destination"] = {"ToAddresses": [to]}
        client = ctx.request.client
        message_id = await sesame.sending.send(
            ctx.account_id, ctx.region, out, source_ip=client.host if client else None
        )
    except (SendError, IllegalAddress) as exc:
        error = exc.message
    except (hb.TemplateError, DomainError) as exc:
        error = str(exc)
    else:
        note = f"Test message sent to {to}: {message_id}"
        if rendered.failure:
            note = f"Accepted as {message_id}, but it will not be sent: {rendered.failure}"
        return ctx.redirect(f"{PREFIX}/messages/{message_id}", note)
    return _editor(
        ctx, name=name, content=Content.of(row), data=data_json, exists=True, status=400, error=error
    )


async def delete(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    try:
        await ctx.sesame.templates.delete(ctx.account_id, ctx.region, name, missing_ok=False)
    except TemplateStoreError as exc:
        return ctx.error(404, str(exc))
    return ctx.redirect(f"{PREFIX}/templates", f"Template {name} was deleted.")


async def framed(ctx: Ctx) -> Response:
    """The rendered HTML, for the preview's iframe only (same origin, sandboxed, its own policy)."""
    async with ctx.sesame.db.read() as s:
        kept = await s.get(ConsolePreview, ctx.request.path_params["key"][:32])
    if kept is None or kept.owner != _owner(ctx) or kept.expires_at < utcnow():
        return HTMLResponse("<p>This preview has expired: preview again.</p>", 404, headers=_frame_headers())
    return HTMLResponse(kept.html, headers=_frame_headers())


def _frame_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": PREVIEW_CSP,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
