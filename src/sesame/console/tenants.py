"""Console pages: tenants. The list (search by name, create, delete) and one tenant's page: its
reputation entity (the statuses that decide whether it may send, its policy, the customer-managed
status to pause or reinstate it) and the resources associated with it (associate or disassociate by
ARN). domain/tenants.py and domain/reputation_entities.py check everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sesame.console.forms import REFUSED, attempt, first_url, next_url
from sesame.console.web import PREFIX, Ctx, page
from sesame.domain import reputation_entities as re_

if TYPE_CHECKING:
    from sesame.console import Console

BASE = PREFIX + "/tenants"
CUSTOMER_STATUSES = (re_.ENABLED, re_.DISABLED, re_.REINSTATED)


def routes(console: Console) -> list[BaseRoute]:
    return [
        Route(BASE, page(console, "account", index), methods=["GET", "POST"]),
        Route(BASE + "/{name}", page(console, "account", show), methods=["GET"]),
        Route(BASE + "/{name}/delete", page(console, "account", delete), methods=["POST"]),
        Route(BASE + "/{name}/resources", page(console, "account", associate), methods=["POST"]),
        Route(BASE + "/{name}/resources/remove", page(console, "account", dissociate), methods=["POST"]),
        Route(BASE + "/{name}/reputation", page(console, "account", reputation), methods=["POST"]),
    ]


def _url(name: str) -> str:
    return f"{BASE}/{name}"


async def index(ctx: Ctx) -> Response:
    error = ""
    if ctx.request.method == "POST":
        name = ctx.form.get("name", "").strip()
        error = await attempt(ctx, ctx.sesame.tenants.create(ctx.account_id, ctx.region, name, [], None))
        if not error:
            return ctx.redirect(_url(name), f"Tenant {name} created.")
    search = ctx.query.get("q", "").strip()
    after = ctx.query.get("after") or None
    filters = {"TENANT_NAME_CONTAINS": search} if search else {}
    rows, last = await ctx.sesame.tenants.page(
        ctx.account_id, ctx.region, filters, after, ctx.console.settings.console.page_size
    )
    return ctx.render(
        "tenants.html",
        status=400 if error else 200,
        tenants=[{"row": r, "status": status} for r, status in rows],
        search=search,
        error=error,
        typed=ctx.form.get("name", ""),
        next=next_url(BASE, ctx.query, last),
        first=first_url(BASE, ctx.query),
    )


async def delete(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    error = await attempt(ctx, ctx.sesame.tenants.delete(ctx.account_id, ctx.region, name))
    if error:
        return ctx.error(404, error)
    return ctx.redirect(BASE, f"Tenant {name} deleted.")


async def show(ctx: Ctx, error: str = "", status: int = 200) -> Response:
    name = ctx.request.path_params["name"]
    tenants = ctx.sesame.tenants
    after = ctx.query.get("after") or None
    try:
        row = await tenants.get(ctx.account_id, ctx.region, name)
        resources, last = await tenants.resources(
            ctx.account_id, ctx.region, name, {}, after, ctx.console.settings.console.page_size
        )
    except REFUSED as exc:
        return ctx.error(404, exc.message)
    try:
        entity = re_.show(
            await ctx.sesame.reputation_entities.get(ctx.account_id, ctx.region, re_.ENTITY_TYPE, row.arn)
        )
    except REFUSED:
        entity = None  # a tenant made before reputation entities existed has none
    return ctx.render(
        "tenants_detail.html",
        status=status,
        tenant=row,
        entity=entity,
        policy=re_.policy_name(entity["ReputationManagementPolicy"]) if entity else "",
        policies=re_.POLICIES,
        customer_statuses=CUSTOMER_STATUSES,
        resources=resources,
        arn_prefix=f"arn:aws:ses:{ctx.region}:{ctx.account_id}:",
        error=error,
        form=ctx.form,
        next=next_url(_url(name), ctx.query, last),
        first=first_url(_url(name), ctx.query),
    )


async def associate(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    arn = ctx.form.get("arn", "").strip()
    error = await attempt(ctx, ctx.sesame.tenants.associate(ctx.account_id, ctx.region, name, arn))
    if error:
        return await show(ctx, error, 400)
    return ctx.redirect(_url(name), f"{arn} is associated with tenant {name}.")


async def dissociate(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    arn = ctx.form.get("arn", "").strip()
    error = await attempt(ctx, ctx.sesame.tenants.dissociate(ctx.account_id, ctx.region, name, arn))
    if error:
        return await show(ctx, error, 400)
    return ctx.redirect(_url(name), f"{arn} is no longer associated with tenant {name}.")


async def reputation(ctx: Ctx) -> Response:
    """UpdateReputationEntityPolicy or UpdateReputationEntityCustomerManagedStatus, whichever the form
    changed."""
    name = ctx.request.path_params["name"]
    entities = ctx.sesame.reputation_entities
    try:
        row = await ctx.sesame.tenants.get(ctx.account_id, ctx.region, name)
    except REFUSED as exc:
        return ctx.error(404, exc.message)
    if "policy" in ctx.form:
        arn = re_.policy_arn(ctx.region, ctx.form["policy"])
        call = entities.set_policy(ctx.account_id, ctx.region, re_.ENTITY_TYPE, row.arn, arn)
    elif ctx.form.get("customer_status") not in CUSTOMER_STATUSES:
        return await show(ctx, "Choose ENABLED, DISABLED or REINSTATED.", 400)
    else:
        call = entities.set_customer_status(
            ctx.account_id, ctx.region, re_.ENTITY_TYPE, row.arn, ctx.form.get("customer_status", "")
        )
    error = await attempt(ctx, call)
    if error:
        return await show(ctx, error, 400)
    return ctx.redirect(_url(name), "Reputation settings saved.")
