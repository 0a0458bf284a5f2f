"""Stored email templates (v1 CreateTemplate… and v2 CreateEmailTemplate… share one namespace), and
running renderings within their limits.

Templates are checked when they are stored, so a syntax error surfaces at CreateTemplate rather than
at the first send; the language is ``mail.handlebars``'s job.

Rendering a template costs what its loops and partials multiply to, not what its text weighs, so every
rendering runs under a budget (``mail.handlebars.Budget``): output no longer than the API's largest
message can carry, ``templates.max_render_steps`` steps, ``templates.render_seconds`` of wall-clock
time per request. A rendering starts on the event loop under a small budget, which ordinary templates
never outgrow; one that does starts again in a render thread, so that a big or hostile template never
stalls the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from sesame.config import TemplateSettings
from sesame.mail import handlebars as hb
from sesame.storage.db import Database
from sesame.storage.models import Template, utcnow

MAX_TEMPLATES = 10_000
MAX_TEMPLATE_BYTES = 500 * 1024  # text + HTML [SES quotas]
MAX_INLINE_TEMPLATE_BYTES = 1024 * 1024  # v2 TemplateContent, text + HTML [SES send-personalized-email-api]

# A rendering stays on the event loop while it is this small (a few milliseconds at most), and so does
# building the message from it (MIME encoding takes about 60 ms a megabyte).
_INLINE_STEPS = 20_000
INLINE_CHARS = 256 * 1024
# Template text longer than this is parsed in a render thread (parsing is linear, but 500 KB of tags
# takes the best part of a second).
_INLINE_SOURCE_CHARS = 64 * 1024
# Threads of their own, so that big renderings queue behind each other rather than occupy the default
# executor (DNS look-ups, DKIM signing). Two: the GIL runs one at a time anyway.
_RENDER_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sesame-render")

T = TypeVar("T")


class TemplateStoreError(Exception):
    """``kind``: 'not-found', 'exists', 'invalid', 'limit'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Content:
    subject: str | None
    text: str | None
    html: str | None

    @classmethod
    def of(cls, row: Template) -> Content:
        return cls(row.subject, row.text, row.html)

    def chars(self) -> int:
        return sum(len(part) for part in (self.subject, self.text, self.html) if part)

    def size(self) -> int:
        """Bytes of text and HTML (and subject: SES does not bound it apart, and it is rendered too)."""
        return sum(len(part.encode()) for part in (self.subject, self.text, self.html) if part)

    def check(self) -> None:
        if not self.text and not self.html:
            raise TemplateStoreError("invalid", "Template must contain a text part or an HTML part.")
        if self.size() > MAX_TEMPLATE_BYTES:
            raise TemplateStoreError("invalid", "Template is larger than 500 KB.")
        for part in (self.subject, self.text, self.html):
            if part:
                try:
                    hb.check_template(part)
                except hb.InvalidTemplate as exc:
                    raise TemplateStoreError("invalid-template", str(exc)) from None


@dataclass(frozen=True)
class Rendered:
    """A templated message's parts as rendered, and why SES would not send it: ``failure`` is the
    errorMessage of its Rendering Failure event (the parts are then what could be rendered, or the
    template as written)."""

    subject: str
    html: str | None
    text: str | None
    failure: str | None = None

    def chars(self) -> int:
        return sum(len(part) for part in (self.subject, self.html, self.text) if part)


class Templates:
    def __init__(self, db: Database, settings: TemplateSettings | None = None) -> None:
        self.db = db
        self.settings = settings or TemplateSettings()

    def deadline(self) -> float:
        """When a request's renderings must be done (``time.monotonic()`` time)."""
        return time.monotonic() + self.settings.render_seconds

    async def run(
        self,
        work: Callable[[hb.Budget], T],
        content: Content,
        message_limit: int,
        deadline: float | None = None,
    ) -> T:
        """Run ``work``, a rendering of ``content`` under the budget it is given, for a message of at
        most ``message_limit`` bytes: on the event loop while it stays small, else in a render thread.
        An overrun raises RenderLimitExceeded; an oversized output in SES's words for an oversized
        message."""
        settings = self.settings
        max_chars = message_limit * 3 // 4  # SES counts a message after base64: more cannot fit
        try:
            if content.chars() <= _INLINE_SOURCE_CHARS:
                small = hb.Budget(min(max_chars, INLINE_CHARS), min(settings.max_render_steps, _INLINE_STEPS))
                try:
                    return work(small)
                except hb.RenderLimitExceeded:
                    pass  # big after all: start again off the event loop, under the full budget
            budget = hb.Budget(
                max_chars,
                settings.max_render_steps,
                settings.render_seconds,
                deadline=self.deadline() if deadline is None else deadline,
            )

            def job() -> T:
                budget.check()  # the deadline may have passed while the job waited for a thread
                return work(budget)

            return await in_render_thread(job)
        except hb.RenderLimitExceeded as exc:
            if exc.kind != "size":
                raise
            raise hb.RenderLimitExceeded(
                "size", f"Message length is more than {message_limit} bytes long."
            ) from None

    async def render_for_send(
        self, content: Content, data: dict[str, Any], message_limit: int, deadline: float | None = None
    ) -> Rendered:
        """A templated send's rendering. SES accepts the send whatever the rendering does, so a failure
        (a missing attribute, a template that cannot render, an overrun) is returned, never raised."""
        try:
            return await self.run(
                lambda budget: _render_for_send(content, data, budget), content, message_limit, deadline
            )
        except hb.RenderLimitExceeded as exc:
            return Rendered(content.subject or "", content.html, content.text, failure=str(exc))

    async def _check(self, content: Content) -> None:
        if content.chars() <= _INLINE_SOURCE_CHARS:
            content.check()
        else:  # parsing 500 KB of tags takes a while: not on the event loop
            await in_render_thread(content.check)

    async def get(self, account_id: str, region: str, name: str) -> Template:
        async with self.db.read() as s:
            row = await s.get(Template, (account_id, region, name))
        if row is None:
            raise TemplateStoreError("not-found", f"Template {name} does not exist.")
        return row

    async def create(self, account_id: str, region: str, name: str, content: Content) -> None:
        await self._check(content)
        async with self.db.write() as s:
            if await s.get(Template, (account_id, region, name)) is not None:
                raise TemplateStoreError("exists", f"Template {name} already exists.")
            count = await s.scalar(
                sa.select(sa.func.count())
                .select_from(Template)
                .where(Template.account_id == account_id, Template.region == region)
            )
            if (count or 0) >= MAX_TEMPLATES:
                raise TemplateStoreError("limit", f"Maximum number of templates ({MAX_TEMPLATES}) exceeded.")
            s.add(
                Template(
                    account_id=account_id,
                    region=region,
                    name=name,
                    subject=content.subject,
                    text=content.text,
                    html=content.html,
                    created_at=utcnow(),
                )
            )

    async def update(self, account_id: str, region: str, name: str, content: Content) -> None:
        """A full replacement: parts left out are removed (SES's UpdateTemplate)."""
        await self._check(content)
        async with self.db.write() as s:
            row = await s.get(Template, (account_id, region, name))
            if row is None:
                raise TemplateStoreError("not-found", f"Template {name} does not exist.")
            row.subject, row.text, row.html = content.subject, content.text, content.html

    async def delete(self, account_id: str, region: str, name: str, *, missing_ok: bool) -> None:
        async with self.db.write() as s:
            row = await s.get(Template, (account_id, region, name))
            if row is None:
                if missing_ok:
                    return
                raise TemplateStoreError("not-found", f"Template {name} does not exist.")
            await s.delete(row)

    async def page(
        self, account_id: str, region: str, after: str | None, limit: int
    ) -> tuple[list[Template], str | None]:
        q = sa.select(Template).where(Template.account_id == account_id, Template.region == region)
        return await self.db.page(q, Template.name, after, limit)


async def in_render_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a render thread (it must be bounded: a thread cannot be stopped from outside)."""
    return await asyncio.get_running_loop().run_in_executor(_RENDER_THREADS, work)


def _render_for_send(content: Content, data: dict[str, Any], budget: hb.Budget) -> Rendered:
    subject, html, text = content.subject or "", content.html, content.text
    try:
        return Rendered(*hb.render_parts(subject, html, text, data, budget))
    except hb.MissingAttribute as exc:
        # The Rendering Failure says which attribute; the stored copy shows the parts rendered loosely.
        loose = budget.fresh()
        return Rendered(
            hb.render(subject, data, strict=False, budget=loose),
            None if html is None else hb.render(html, data, strict=False, budget=loose),
            None if text is None else hb.render(text, data, strict=False, budget=loose),
            failure=str(exc),
        )
    except hb.InvalidTemplate as exc:  # an overrun propagates: Templates.run may retry it in a thread
        return Rendered(subject, html, text, failure=str(exc))
