"""Console pages: configuration sets and their event destinations.

The list (create, delete), and one set's page: its options, each group saved by its own form as the v2
``PutConfigurationSet…Options`` call would save it, and its event destinations (add, enable or disable,
delete). The domain services check everything; a refusal is shown in SES's words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sesame.console.forms import REFUSED, attempt, first_url, next_url, ticked
from sesame.console.web import PREFIX, Ctx, page
from sesame.domain import event_destinations as ed
from sesame.domain.suppression import REASONS

if TYPE_CHECKING:
    from sesame.console import Console

BASE = PREFIX + "/configuration-sets"
#: The destination kinds the form offers (Pinpoint is stored but never delivered: not offered).
KINDS = {
    "SnsDestination": "Amazon SNS",
    "CloudWatchDestination": "Amazon CloudWatch",
    "EventBridgeDestination": "Amazon EventBridge",
    "KinesisFirehoseDestination": "Amazon Data Firehose",
}
TLS_POLICIES = ("OPTIONAL", "REQUIRE")
DIMENSION_SOURCES = ("MESSAGE_TAG", "EMAIL_HEADER", "LINK_TAG")


def routes(console: Console) -> list[BaseRoute]:
    return [
        Route(BASE, page(console, "account", index), methods=["GET", "POST"]),
        Route(BASE + "/{name}", page(console, "account", show), methods=["GET"]),
        Route(BASE + "/{name}/delete", page(console, "account", delete), methods=["POST"]),
        Route(BASE + "/{name}/options", page(console, "account", options), methods=["POST"]),
        Route(BASE + "/{name}/destinations", page(console, "account", add_destination), methods=["POST"]),
        Route(
            BASE + "/{name}/destinations/{destination}/enabled",
            page(console, "account", toggle_destination),
            methods=["POST"],
        ),
        Route(
            BASE + "/{name}/destinations/{destination}/delete",
            page(console, "account", delete_destination),
            methods=["POST"],
        ),
    ]


def _url(name: str) -> str:
    return f"{BASE}/{name}"


# -- the list ---------------------------------------------------------------------------------------


async def index(ctx: Ctx) -> Response:
    error = ""
    if ctx.request.method == "POST":
        name = ctx.form.get("name", "").strip()
        error = await attempt(
            ctx,
            ctx.sesame.configuration_sets.create(
                ctx.account_id, ctx.region, name, {"SendingOptions": {"SendingEnabled": True}}
            ),
        )
        if not error:
            return ctx.redirect(_url(name), f"Configuration set {name} created.")
    after = ctx.query.get("after") or None
    size = ctx.console.settings.console.page_size
    rows, last = await ctx.sesame.configuration_sets.page(ctx.account_id, ctx.region, after, size)
    sets = [
        {
            "name": r.name,
            "created": r.created_at,
            "sending": (r.options or {}).get("SendingOptions", {}).get("SendingEnabled", True),
            "destinations": len((r.options or {}).get(ed.GROUP) or []),
        }
        for r in rows
    ]
    return ctx.render(
        "configuration_sets.html",
        status=400 if error else 200,
        sets=sets,
        error=error,
        typed=ctx.form.get("name", ""),
        next=next_url(BASE, ctx.query, last),
        first=first_url(BASE, ctx.query),
    )


async def delete(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    error = await attempt(ctx, ctx.sesame.configuration_sets.delete(ctx.account_id, ctx.region, name))
    if error:
        return ctx.error(404, error)
    # As DeleteConfigurationSet: the set's tags go with it.
    await ctx.sesame.tags.drop_resource(ctx.account_id, _arn(ctx, name))
    return ctx.redirect(BASE, f"Configuration set {name} deleted.")


def _arn(ctx: Ctx, name: str) -> str:
    return f"arn:aws:ses:{ctx.region}:{ctx.account_id}:configuration-set/{name}"


# -- one set ----------------------------------------------------------------------------------------


async def show(ctx: Ctx, error: str = "", status: int = 200) -> Response:
    name = ctx.request.path_params["name"]
    try:
        row = await ctx.sesame.configuration_sets.get(ctx.account_id, ctx.region, name)
    except REFUSED as exc:
        return ctx.error(404, exc.message)
    o: dict[str, Any] = row.options or {}
    suppression = o.get("SuppressionOptions")
    destinations = [_shown_destination(d) for d in o.get(ed.GROUP) or []]
    return ctx.render(
        "configuration_sets_detail.html",
        status=status,
        name=row.name,
        created=row.created_at,
        sending_enabled=o.get("SendingOptions", {}).get("SendingEnabled", True),
        reputation=o.get("ReputationOptions") or {},
        delivery=o.get("DeliveryOptions") or {},
        tracking=o.get("TrackingOptions") or {},
        suppression_own=suppression is not None,
        suppressed_reasons=(suppression or {}).get("SuppressedReasons") or [],
        reasons=REASONS,
        tls_policies=TLS_POLICIES,
        destinations=destinations,
        kinds=KINDS,
        event_types=list(ed.EVENT_TYPES),
        dimension_sources=DIMENSION_SOURCES,
        default_bus=f"arn:aws:events:{ctx.region}:{ctx.account_id}:event-bus/default",
        error=error,
        form=ctx.form,
    )


def _shown_destination(d: dict[str, Any]) -> dict[str, Any]:
    kind = next((k for k in ed.KINDS if d.get(k) is not None), "")
    target = d.get(kind) or {}
    if kind == "SnsDestination":
        where = target.get("TopicArn", "")
    elif kind == "KinesisFirehoseDestination":
        where = target.get("DeliveryStreamArn", "")
    elif kind == "EventBridgeDestination":
        where = target.get("EventBusArn", "")
    elif kind == "CloudWatchDestination":
        where = ", ".join(
            f"{c.get('DimensionName')} ({c.get('DimensionValueSource')}, "
            f"default {c.get('DefaultDimensionValue')})"
            for c in target.get("DimensionConfigurations") or []
        )
    else:
        where = ""
    return {
        "name": d["Name"],
        "kind": KINDS.get(kind, kind.removesuffix("Destination")),
        "where": where,
        "types": d.get("MatchingEventTypes") or [],
        "enabled": bool(d.get("Enabled")),
    }


async def options(ctx: Ctx) -> Response:
    """One option group, as the matching v2 Put…Options call stores it."""
    name = ctx.request.path_params["name"]
    group = ctx.form.get("group", "")
    f = ctx.form
    sets = ctx.sesame.configuration_sets
    value: dict[str, Any] | None
    if group == "SendingOptions":
        value = {"SendingEnabled": ticked(f, "sending_enabled")}
    elif group == "ReputationOptions":
        try:
            row = await sets.get(ctx.account_id, ctx.region, name)
        except REFUSED as exc:
            return ctx.error(404, exc.message)
        # LastFreshStart stays: only the switch is the user's.
        value = {
            **(row.options or {}).get("ReputationOptions", {}),
            "ReputationMetricsEnabled": ticked(f, "reputation_metrics"),
        }
    elif group == "DeliveryOptions":
        value = {"TlsPolicy": f.get("tls_policy", "OPTIONAL")}
        if value["TlsPolicy"] not in TLS_POLICIES:
            return await show(ctx, "TlsPolicy must be OPTIONAL or REQUIRE.", 400)
        if f.get("sending_pool", "").strip():
            value["SendingPoolName"] = f["sending_pool"].strip()
        if f.get("max_delivery_seconds", "").strip():
            seconds = f["max_delivery_seconds"].strip()
            if not seconds.isdigit() or not 300 <= int(seconds) <= 50400:
                return await show(ctx, "MaxDeliverySeconds must be between 300 and 50400.", 400)
            value["MaxDeliverySeconds"] = int(seconds)
    elif group == "TrackingOptions":
        domain = f.get("custom_redirect_domain", "").strip()
        value = {"CustomRedirectDomain": domain} if domain else {}
        if domain and f.get("https_policy") in ("REQUIRE", "REQUIRE_OPEN_ONLY", "OPTIONAL"):
            value["HttpsPolicy"] = f["https_policy"]
    elif group == "SuppressionOptions":
        if f.get("suppression_mode") == "account":
            value = None  # the account's reasons apply again
        else:
            value = {"SuppressedReasons": [r for r in REASONS if ticked(f, f"reason_{r}")]}
    else:
        return await show(ctx, "Choose which options to save.", 400)
    error = await attempt(ctx, sets.put(ctx.account_id, ctx.region, name, group, value))
    if error:
        return await show(ctx, error, 400)
    return ctx.redirect(_url(name), "Options saved.")


# -- event destinations -----------------------------------------------------------------------------


def _definition(ctx: Ctx) -> dict[str, Any]:
    """The form's destination as v2's EventDestinationDefinition."""
    f = ctx.form
    kind = f.get("kind", "")
    target: dict[str, Any]
    if kind == "SnsDestination":
        target = {"TopicArn": f.get("topic_arn", "").strip()}
    elif kind == "KinesisFirehoseDestination":
        target = {
            "DeliveryStreamArn": f.get("delivery_stream_arn", "").strip(),
            "IamRoleArn": f.get("iam_role_arn", "").strip(),
        }
    elif kind == "EventBridgeDestination":
        target = {"EventBusArn": f.get("event_bus_arn", "").strip()}
    elif kind == "CloudWatchDestination":
        target = {
            "DimensionConfigurations": [
                {
                    "DimensionName": f.get("dimension_name", "").strip(),
                    "DimensionValueSource": f.get("dimension_source", "MESSAGE_TAG"),
                    "DefaultDimensionValue": f.get("dimension_default", "").strip(),
                }
            ]
        }
    else:
        target = {}
    definition: dict[str, Any] = {
        "Enabled": ticked(f, "enabled"),
        "MatchingEventTypes": [t for t in ed.EVENT_TYPES if ticked(f, f"type_{t}")],
    }
    if kind in KINDS:
        definition[kind] = target
    return definition


async def add_destination(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    destination = ctx.form.get("destination_name", "").strip()
    error = await attempt(
        ctx,
        ctx.sesame.event_destinations.create(ctx.account_id, ctx.region, name, destination, _definition(ctx)),
    )
    if error:
        return await show(ctx, error, 400)
    return ctx.redirect(_url(name) + "#destinations", f"Event destination {destination} added.")


async def toggle_destination(ctx: Ctx) -> Response:
    """Enable or disable: the stored destination with its Enabled changed, as
    UpdateConfigurationSetEventDestination stores it."""
    name, destination = ctx.request.path_params["name"], ctx.request.path_params["destination"]
    events = ctx.sesame.event_destinations
    try:
        current = await events.list(ctx.account_id, ctx.region, name)
        found = next((d for d in current if d["Name"] == destination), None)
        if found is None:
            raise ed.EventDestinationNotFound(
                f"Event destination {destination} does not exist in configuration set {name}."
            )
        found["Enabled"] = ticked(ctx.form, "enabled")
        await events.update(ctx.account_id, ctx.region, name, destination, found)
    except REFUSED as exc:
        return await show(ctx, exc.message, 400)
    state = "enabled" if found["Enabled"] else "disabled"
    return ctx.redirect(_url(name) + "#destinations", f"Event destination {destination} {state}.")


async def delete_destination(ctx: Ctx) -> Response:
    name, destination = ctx.request.path_params["name"], ctx.request.path_params["destination"]
    error = await attempt(
        ctx, ctx.sesame.event_destinations.delete(ctx.account_id, ctx.region, name, destination)
    )
    if error:
        return await show(ctx, error, 400)
    return ctx.redirect(_url(name) + "#destinations", f"Event destination {destination} deleted.")
