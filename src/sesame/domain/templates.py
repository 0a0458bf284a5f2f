"""Stored email templates (v1 CreateTemplate… and v2 CreateEmailTemplate… share one namespace).

Templates are checked when they are stored, so a syntax error surfaces at CreateTemplate rather than
at the first send; rendering is ``mail.handlebars``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from sesame.mail import handlebars as hb
from sesame.storage.db import Database
from sesame.storage.models import Template, utcnow

MAX_TEMPLATES = 10_000
MAX_TEMPLATE_BYTES = 500 * 1024  # text + HTML [SES quotas]


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

    def check(self) -> None:
        if not self.text and not self.html:
            raise TemplateStoreError("invalid", "Template must contain a text part or an HTML part.")
        if len((self.text or "").encode()) + len((self.html or "").encode()) > MAX_TEMPLATE_BYTES:
            raise TemplateStoreError("invalid", "Template is larger than 500 KB.")
        for part in (self.subject, self.text, self.html):
            if part:
                try:
                    hb.check_template(part)
                except hb.InvalidTemplate as exc:
                    raise TemplateStoreError("invalid-template", str(exc)) from None


class Templates:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, account_id: str, region: str, name: str) -> Template:
        async with self.db.read() as s:
            row = await s.get(Template, (account_id, region, name))
        if row is None:
            raise TemplateStoreError("not-found", f"Template {name} does not exist.")
        return row

    async def create(self, account_id: str, region: str, name: str, content: Content) -> None:
        content.check()
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
        content.check()
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
