"""Console pages: the operator's view (signed in with the admin token; dev mode's session too).

Every account (``operator_accounts``), the delivery queue by destination site, event publishing and
this node (``operator_delivery``). They call what ``sesame accounts``, ``sesame queue`` and
``sesame events`` call; what the console reads itself is a page of rows, never a decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Route

from sesame.console import operator_accounts as accounts
from sesame.console import operator_delivery as delivery
from sesame.console.web import PREFIX, page

if TYPE_CHECKING:
    from sesame.console import Console

BASE = f"{PREFIX}/operator"


def routes(console: Console) -> list[BaseRoute]:
    def get(path: str, handler: accounts.Handler) -> Route:
        return Route(BASE + path, page(console, "operator", handler), methods=["GET"])

    def post(path: str, handler: accounts.Handler) -> Route:
        return Route(BASE + path, page(console, "operator", handler), methods=["POST"])

    return [
        get("", accounts.home),
        get("/", accounts.home),
        get("/accounts", accounts.listing),
        post("/accounts", accounts.create),
        get("/accounts/{account_id}", accounts.show),
        post("/accounts/{account_id}/limits", accounts.limits),
        post("/accounts/{account_id}/sending", accounts.sending),
        post("/accounts/{account_id}/reinstate", accounts.reinstate),
        post("/accounts/{account_id}/keys", accounts.create_key),
        post("/accounts/{account_id}/keys/{key_id}/status", accounts.key_status),
        post("/accounts/{account_id}/keys/{key_id}/delete", accounts.delete_key),
        get("/queue", delivery.queue),
        get("/queue/sites/{domain}", delivery.site),
        get("/queue/messages/{message_id}", delivery.message),
        post("/queue/messages/{message_id}/{action}", delivery.act),
        get("/events", delivery.events),
        post("/events/retry", delivery.events_retry),
        get("/nodes", delivery.nodes),
    ]
