"""The unsubscribe endpoint of list management (reference 11.4), at ``/unsubscribe/<token>`` under
``public_url``; the links are made by domain/unsubscribe.py.

- ``POST`` with the body ``List-Unsubscribe=One-Click`` is RFC 8058's one-click unsubscribe, sent by
  mail clients from the ``List-Unsubscribe`` header: the link's topic, or every topic. It answers 200
  with a short text and never redirects (RFC 8058 §3.2 asks the mail client not to follow them).
- ``GET`` is the preferences page the footer link opens: the list's topics by display name and
  description, subscribed or not, and unsubscribe from all. Plain HTML forms, so it works without
  JavaScript; its own ``POST`` saves the choices.

A token that was not made here, or was altered, gets 404 and changes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from sesame.domain.contact_lists import OPT_IN, STATUSES, ContactListNotFound, ContactNotFound, Preferences
from sesame.domain.unsubscribe import ONE_CLICK, PATH, SOURCE_PAGE, Link
from sesame.runtime import Sesame

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 * 1024  # 20 topics' choices fit many times over
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
#: The page is the contact's own: no caching by proxies, no indexing, no framing by other sites.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def routes(sesame: Sesame) -> list[Route]:
    unsubscribe = sesame.unsubscribe
    contact_lists = sesame.contact_lists

    async def page(link: Link, saved: str | None = None, status: int = 200) -> Response:
        values: dict[str, Any] = {"contact": None, "saved": saved}
        try:
            lst, row = await contact_lists.get_contact(
                link.account_id, link.region, link.list_name, link.address
            )
        except (ContactListNotFound, ContactNotFound):
            pass
        else:
            prefs = Preferences(row.preferences, False)  # the page shows topic choices and the switch apart
            values.update(
                contact=row.email_address,
                description=lst.description,
                unsubscribe_all=row.unsubscribe_all,
                topics=[
                    {
                        "name": t["TopicName"],
                        "display_name": t["DisplayName"],
                        "description": t.get("Description"),
                        "subscribed": prefs.status(t) == OPT_IN,
                    }
                    for t in lst.topics
                ],
            )
        html = _TEMPLATES.get_template("preferences.html").render(**values)
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    async def endpoint(request: Request) -> Response:
        link = unsubscribe.link(request.path_params["token"])
        if link is None:
            return PlainTextResponse("Not Found", status_code=404, headers=_HEADERS)
        if request.method == "GET":
            return await page(link)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return PlainTextResponse("Request too large", status_code=413, headers=_HEADERS)
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("List-Unsubscribe") == ONE_CLICK.partition("=")[2]:
            await unsubscribe.one_click(link)
            return PlainTextResponse("You are unsubscribed.", headers=_HEADERS)
        if form.get("action") == "unsubscribe_all":
            await unsubscribe.change(link, None, True, SOURCE_PAGE)
            return await page(link, "You are unsubscribed from all topics.")
        if form.get("action") == "save":
            topics = {
                name[len("topic:") :]: value
                for name, value in form.items()
                if name.startswith("topic:") and value in STATUSES
            }
            await unsubscribe.change(link, topics, form.get("unsubscribe_all") == "true", SOURCE_PAGE)
            return await page(link, "Your preferences are saved.")
        return PlainTextResponse("Bad Request", status_code=400, headers=_HEADERS)

    return [Route(f"/{PATH}/{{token}}", endpoint, methods=["GET", "POST"])]
