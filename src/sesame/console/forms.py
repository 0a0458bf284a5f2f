"""What the settings pages (configuration sets, suppression, receiving, contact lists, tenants) share:
running a domain call and keeping SES's words when it refuses, reading checkboxes, and page links.

A refused form re-renders its page with the error and status 400 (the user keeps what they typed);
a form that worked redirects to the page that shows the result (POST/redirect/GET).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sesame.awsapi.errors import ServiceError
from sesame.errors import DomainError

if TYPE_CHECKING:
    from sesame.console.web import Ctx

#: What a domain service raises when SES would refuse the request; its ``message`` is SES's wording.
REFUSED = (DomainError, ServiceError)


async def attempt(ctx: Ctx, call: Awaitable[Any]) -> str:
    """Run ``call``, a change to the account's resources: "" when it worked, else the message SES gives
    for why not."""
    try:
        await call
    except REFUSED as exc:
        return exc.message
    return ""


def ticked(form: dict[str, str], name: str) -> bool:
    """A checkbox: present (any value but "false") when ticked."""
    return name in form and form[name] not in ("", "false", "off")


def lines(text: str) -> list[str]:
    """A textarea's non-empty lines (commas also separate), stripped."""
    return [p.strip() for line in text.splitlines() for p in line.split(",") if p.strip()]


def next_url(path: str, query: dict[str, str], after: str | None) -> str:
    """The link to the page after this one (keyset paging: ``after`` is the last key shown)."""
    if not after:
        return ""
    kept = {k: v for k, v in query.items() if v and k != "after"}
    return f"{path}?{urlencode({**kept, 'after': after})}"


def first_url(path: str, query: dict[str, str]) -> str:
    """The link back to the first page, when this is a later one (same filters)."""
    if not query.get("after"):
        return ""
    kept = {k: v for k, v in query.items() if v and k != "after"}
    return f"{path}?{urlencode(kept)}" if kept else path
