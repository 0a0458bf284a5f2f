"""Console pages: contact lists (one per account and region, as SES allows) and their contacts.

The list: create with its topics, change its topics and description, delete. Its contacts: search by
address, filter by a topic's status, one page at a time; add a contact, change its topic preferences
and UnsubscribeAll, delete it. domain/contact_lists.py checks everything; a refusal is shown in its
words.

A contact's status for a topic is its own choice when it made one, else the topic's default, and
OPT_OUT for every topic when it unsubscribed from all (``Preferences.status``); the filter compares that
status, as ListContacts does with ``UseDefaultIfPreferenceUnavailable``; with no topic, OPT_OUT means
unsubscribed from all, as ListContacts' FilteredStatus alone does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sesame.console.forms import REFUSED, attempt, first_url, next_url, ticked
from sesame.console.web import PREFIX, Ctx, page
from sesame.domain.contact_lists import OPT_OUT, STATUSES, Preferences, key
from sesame.storage.models import Contact, ContactList

if TYPE_CHECKING:
    from sesame.console import Console

BASE = PREFIX + "/contact-lists"
DEFAULT = "DEFAULT"  # a topic preference left to the topic's default
#: A filter by a topic's status reads the list in batches of this many rows until a page is full, at
#: most SEARCH_BATCHES of them (then the page ends early and offers the next one).
SEARCH_BATCH, SEARCH_BATCHES = 500, 20


def routes(console: Console) -> list[BaseRoute]:
    return [
        Route(BASE, page(console, "account", index), methods=["GET", "POST"]),
        Route(BASE + "/{name}", page(console, "account", show), methods=["GET"]),
        Route(BASE + "/{name}/topics", page(console, "account", update_list), methods=["POST"]),
        Route(BASE + "/{name}/delete", page(console, "account", delete_list), methods=["POST"]),
        Route(BASE + "/{name}/contacts", page(console, "account", add_contact), methods=["POST"]),
        Route(
            BASE + "/{name}/contacts/{address}", page(console, "account", contact), methods=["GET", "POST"]
        ),
        Route(
            BASE + "/{name}/contacts/{address}/delete",
            page(console, "account", delete_contact),
            methods=["POST"],
        ),
    ]


def _url(name: str) -> str:
    return f"{BASE}/{name}"


def parse_topics(text: str) -> list[dict[str, Any]]:
    """Topics typed one per line as ``name, display name, OPT_IN|OPT_OUT`` (the display name may hold
    commas; the default status may be left out: OPT_OUT, SES's safer default)."""
    topics = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, rest = line.partition(",")
        display, _, default = rest.rpartition(",")
        if default.strip().upper() not in STATUSES:
            display, default = rest, OPT_OUT
        topics.append(
            {
                "TopicName": name.strip(),
                "DisplayName": display.strip() or name.strip(),
                "DefaultSubscriptionStatus": default.strip().upper(),
            }
        )
    return topics


def topics_text(topics: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{t['TopicName']}, {t['DisplayName']}, {t['DefaultSubscriptionStatus']}" for t in topics
    )


# -- the list ----------------------------------------------------------------------------------------


async def index(ctx: Ctx) -> Response:
    error = ""
    if ctx.request.method == "POST":
        name = ctx.form.get("name", "").strip()
        description = ctx.form.get("description", "").strip() or None
        error = await attempt(
            ctx,
            ctx.sesame.contact_lists.create_list(
                ctx.account_id, ctx.region, name, parse_topics(ctx.form.get("topics", "")), description
            ),
        )
        if not error:
            return ctx.redirect(_url(name), f"Contact list {name} created.")
    rows, _ = await ctx.sesame.contact_lists.page_lists(ctx.account_id, ctx.region, None, 100)
    return ctx.render(
        "contact_lists.html", status=400 if error else 200, lists=rows, error=error, form=ctx.form
    )


async def update_list(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    description = ctx.form.get("description", "").strip() or None
    error = await attempt(
        ctx,
        ctx.sesame.contact_lists.update_list(
            ctx.account_id, ctx.region, name, parse_topics(ctx.form.get("topics", "")), description
        ),
    )
    if error:
        return await show(ctx, error, 400)
    return ctx.redirect(_url(name), "Topics saved.")


async def delete_list(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    error = await attempt(ctx, ctx.sesame.contact_lists.delete_list(ctx.account_id, ctx.region, name))
    if error:
        return ctx.error(404, error)
    # As DeleteContactList: the list's tags go with it.
    await ctx.sesame.tags.drop_resource(
        ctx.account_id, f"arn:aws:ses:{ctx.region}:{ctx.account_id}:contact-list/{name}"
    )
    return ctx.redirect(BASE, f"Contact list {name} and its contacts deleted.")


async def show(ctx: Ctx, error: str = "", status: int = 200) -> Response:
    name = ctx.request.path_params["name"]
    search = ctx.query.get("q", "").strip()
    topic = ctx.query.get("topic", "") or None
    wanted = ctx.query.get("status", "") or None
    if wanted not in (None, *STATUSES):
        wanted = None
    after = ctx.query.get("after") or None
    try:
        lst = await ctx.sesame.contact_lists.get_list(ctx.account_id, ctx.region, name)
    except REFUSED as exc:
        return ctx.error(404, exc.message)
    if topic is not None and not any(t["TopicName"] == topic for t in lst.topics):
        topic = None
    rows, last = await _contacts(ctx, lst, search, topic, wanted, after)
    return ctx.render(
        "contact_lists_detail.html",
        status=status,
        lst=lst,
        topics_text=topics_text(lst.topics),
        contacts=[_shown(lst, c) for c in rows],
        search=search,
        topic=topic or "",
        wanted=wanted or "",
        statuses=STATUSES,
        error=error,
        form=ctx.form,
        next=next_url(_url(name), ctx.query, last),
        first=first_url(_url(name), ctx.query),
    )


async def _contacts(
    ctx: Ctx, lst: ContactList, search: str, topic: str | None, wanted: str | None, after: str | None
) -> tuple[list[Any], str | None]:
    """One page of the list's contacts in address order: those whose address contains ``search``
    (keys are lower-cased: no case to mind on either database) and whose status passes the filter.

    Only the columns the page shows are read (whole ORM rows cost ten times as much), and only as many
    as a page needs when SQL can do the filtering; a topic's status is in the contact's JSON
    preferences, so that filter reads ahead in batches, like ListContacts, until the page is full."""
    limit = ctx.console.settings.console.page_size
    chosen = next((t for t in lst.topics if t["TopicName"] == topic), None)
    c = Contact
    q = sa.select(c.address, c.email_address, c.preferences, c.unsubscribe_all, c.updated_at).where(
        c.account_id == ctx.account_id, c.region == ctx.region, c.list_name == lst.name
    )
    if search:
        q = q.where(c.address.contains(search.lower(), autoescape=True))
    if wanted is not None and chosen is None:  # no topic: OPT_OUT is "unsubscribed from all"
        q = q.where(c.unsubscribe_all.is_(wanted == OPT_OUT))
    by_topic = wanted is not None and chosen is not None
    batch_size = SEARCH_BATCH if by_topic else limit + 1

    def passes(row: Any) -> bool:
        if not by_topic or chosen is None:
            return True
        return Preferences(row.preferences or {}, row.unsubscribe_all).status(chosen) == wanted

    found: list[Any] = []
    cursor = after
    async with ctx.sesame.db.read() as s:
        for _ in range(SEARCH_BATCHES):
            batch_q = q if cursor is None else q.where(c.address > cursor)
            batch = list(await s.execute(batch_q.order_by(c.address).limit(batch_size)))
            for row in batch:
                if passes(row):
                    if len(found) == limit:
                        return found, found[-1].address
                    found.append(row)
            if len(batch) < batch_size:
                return found, None
            cursor = batch[-1].address
    return found, cursor


def _shown(lst: ContactList, c: Any) -> dict[str, Any]:
    """A contact (a row or the columns of one) as the pages show it."""
    prefs = Preferences(c.preferences or {}, c.unsubscribe_all)
    return {
        "address": c.email_address,
        "key": c.address,
        "unsubscribe_all": c.unsubscribe_all,
        "topics": [
            {"name": t["TopicName"], "status": prefs.status(t), "own": t["TopicName"] in prefs.topics}
            for t in lst.topics
        ],
        "updated": c.updated_at,
    }


# -- contacts ---------------------------------------------------------------------------------------


def _preferences(ctx: Ctx, lst_topics: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The form's explicit choices (a topic left at "default" is not a preference)."""
    out = []
    for t in lst_topics:
        chosen = ctx.form.get(f"topic_{t['TopicName']}", DEFAULT)
        if chosen in STATUSES:
            out.append({"TopicName": t["TopicName"], "SubscriptionStatus": chosen})
    return out


async def add_contact(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    address = ctx.form.get("address", "").strip()
    lists = ctx.sesame.contact_lists
    try:
        lst = await lists.get_list(ctx.account_id, ctx.region, name)
    except REFUSED as exc:
        return ctx.error(404, exc.message)
    error = await attempt(
        ctx,
        lists.create_contact(
            ctx.account_id,
            ctx.region,
            name,
            address,
            _preferences(ctx, lst.topics),
            ticked(ctx.form, "unsubscribe_all"),
            ctx.form.get("attributes", "").strip() or None,
        ),
    )
    if error:
        return await show(ctx, error, 400)
    return ctx.redirect(_url(name), f"Contact {address} added.")


async def contact(ctx: Ctx) -> Response:
    """One contact: its preferences to change (POST: UpdateContact, a full replacement)."""
    name, address = ctx.request.path_params["name"], ctx.request.path_params["address"]
    lists = ctx.sesame.contact_lists
    try:
        lst, row = await lists.get_contact(ctx.account_id, ctx.region, name, address)
    except REFUSED as exc:
        return ctx.error(404, exc.message)
    error = ""
    if ctx.request.method == "POST":
        error = await attempt(
            ctx,
            lists.update_contact(
                ctx.account_id,
                ctx.region,
                name,
                address,
                _preferences(ctx, lst.topics),
                ticked(ctx.form, "unsubscribe_all"),
                ctx.form.get("attributes", "").strip() or None,
            ),
        )
        if not error:
            return ctx.redirect(_url(name), f"Contact {row.email_address} saved.")
    return ctx.render(
        "contact_lists_contact.html",
        status=400 if error else 200,
        lst=lst,
        contact=_shown(lst, row),
        own=row.preferences,
        attributes=row.attributes_data or "",
        created=row.created_at,
        error=error,
        default=DEFAULT,
        statuses=STATUSES,
    )


async def delete_contact(ctx: Ctx) -> Response:
    name, address = ctx.request.path_params["name"], ctx.request.path_params["address"]
    error = await attempt(
        ctx, ctx.sesame.contact_lists.delete_contact(ctx.account_id, ctx.region, name, key(address))
    )
    if error:
        return await show(ctx, error, 404)
    return ctx.redirect(_url(name), f"Contact {address} deleted.")
