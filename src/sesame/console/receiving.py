"""Console pages: receiving. Receipt rule sets (create, make active, delete), a set's rules in the
order they run (create a simple rule: recipients and one S3, SNS, Bounce or Stop action; delete), and
the account's IP address filters (create Allow or Block for an address or CIDR range; delete).

Everything goes through receiving/rules.py, which checks rules and filters as SES does; a refusal is
shown in its words (RuleSetDoesNotExist, CannotDelete, InvalidSnsTopic, …).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sesame.console.forms import REFUSED, attempt, first_url, lines, next_url, ticked
from sesame.console.web import PREFIX, Ctx, page

if TYPE_CHECKING:
    from sesame.console import Console

BASE = PREFIX + "/receiving"
ACTION_KINDS = {"S3Action": "Deliver to an S3 bucket", "SNSAction": "Publish to an SNS topic",
                "BounceAction": "Bounce", "StopAction": "Stop the rule set"}  # fmt: skip
#: Where a new rule goes when the form does not say: after the last one (SES's default is first).
LAST = "__last__"
FIRST = "__first__"


def routes(console: Console) -> list[BaseRoute]:
    return [
        Route(BASE, page(console, "account", index), methods=["GET"]),
        Route(BASE + "/rule-sets", page(console, "account", create_set), methods=["POST"]),
        Route(BASE + "/active", page(console, "account", set_active), methods=["POST"]),
        Route(BASE + "/filters", page(console, "account", create_filter), methods=["POST"]),
        Route(BASE + "/filters/{name}/delete", page(console, "account", delete_filter), methods=["POST"]),
        Route(BASE + "/rule-sets/{name}", page(console, "account", show_set), methods=["GET"]),
        Route(BASE + "/rule-sets/{name}/delete", page(console, "account", delete_set), methods=["POST"]),
        Route(BASE + "/rule-sets/{name}/rules", page(console, "account", create_rule), methods=["POST"]),
        Route(
            BASE + "/rule-sets/{name}/rules/{rule}/delete",
            page(console, "account", delete_rule),
            methods=["POST"],
        ),
    ]


def _set_url(name: str) -> str:
    return f"{BASE}/rule-sets/{name}"


# -- rule sets and filters ---------------------------------------------------------------------------


async def index(ctx: Ctx, error: str = "", status: int = 200) -> Response:
    rules = ctx.sesame.receipt_rules
    after = ctx.query.get("after") or None
    sets, last = await rules.page_sets(
        ctx.account_id, ctx.region, after, ctx.console.settings.console.page_size
    )
    filters = await rules.list_filters(ctx.account_id, ctx.region)
    return ctx.render(
        "receiving.html",
        status=status,
        sets=[
            {"name": s.name, "active": s.active, "created": s.created_at, "rules": len(s.rules or [])}
            for s in sets
        ],  # fmt: skip
        filters=filters,
        error=error,
        form=ctx.form,
        next=next_url(BASE, ctx.query, last),
        first=first_url(BASE, ctx.query),
    )


async def create_set(ctx: Ctx) -> Response:
    name = ctx.form.get("name", "").strip()
    error = await attempt(ctx, ctx.sesame.receipt_rules.create_set(ctx.account_id, ctx.region, name))
    if error:
        return await index(ctx, error, 400)
    return ctx.redirect(_set_url(name), f"Rule set {name} created.")


async def set_active(ctx: Ctx) -> Response:
    """SetActiveReceiptRuleSet: the named set, or none (receiving stops)."""
    name = ctx.form.get("name", "").strip() or None
    error = await attempt(ctx, ctx.sesame.receipt_rules.set_active(ctx.account_id, ctx.region, name))
    if error:
        return await index(ctx, error, 400)
    notice = f"Rule set {name} is active." if name else "No rule set is active: mail is not received."
    return ctx.redirect(
        ctx.form.get("back", "") if ctx.form.get("back", "").startswith(BASE) else BASE, notice
    )


async def delete_set(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    error = await attempt(ctx, ctx.sesame.receipt_rules.delete_set(ctx.account_id, ctx.region, name))
    if error:
        return await index(ctx, error, 400)
    return ctx.redirect(BASE, f"Rule set {name} deleted.")


async def create_filter(ctx: Ctx) -> Response:
    f = ctx.form
    given = {"Name": f.get("name", "").strip(),
             "IpFilter": {"Policy": f.get("policy", ""), "Cidr": f.get("cidr", "").strip()}}  # fmt: skip
    error = await attempt(ctx, ctx.sesame.receipt_rules.create_filter(ctx.account_id, ctx.region, given))
    if error:
        return await index(ctx, error, 400)
    return ctx.redirect(BASE + "#filters", f"IP address filter {given['Name']} created.")


async def delete_filter(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    error = await attempt(ctx, ctx.sesame.receipt_rules.delete_filter(ctx.account_id, ctx.region, name))
    if error:
        return await index(ctx, error, 400)
    return ctx.redirect(BASE + "#filters", f"IP address filter {name} deleted.")


# -- one rule set -----------------------------------------------------------------------------------


async def show_set(ctx: Ctx, error: str = "", status: int = 200) -> Response:
    name = ctx.request.path_params["name"]
    try:
        row = await ctx.sesame.receipt_rules.get_set(ctx.account_id, ctx.region, name)
    except REFUSED as exc:
        return ctx.error(404, exc.message)
    rules = [
        {
            "name": r["Name"],
            "recipients": r.get("Recipients") or [],
            "actions": [summary(a) for a in r.get("Actions") or []],
            "enabled": r.get("Enabled", False),
            "scan": r.get("ScanEnabled", False),
            "tls": r.get("TlsPolicy", "Optional"),
        }
        for r in row.rules or []
    ]
    return ctx.render(
        "receiving_rule_set.html",
        status=status,
        name=row.name,
        active=row.active,
        created=row.created_at,
        rules=rules,
        action_kinds=ACTION_KINDS,
        error=error,
        form=ctx.form,
        last=LAST,
        first_position=FIRST,
    )


def summary(action: dict[str, Any]) -> str:
    """One action in a few words, as a list of rules shows it."""
    kind, body = next(iter(action.items()))
    body = body or {}
    if kind == "S3Action":
        where = f"s3://{body.get('BucketName', '')}/{body.get('ObjectKeyPrefix', '')}"
        return f"S3: {where}" + (f", notify {body['TopicArn']}" if body.get("TopicArn") else "")
    if kind == "SNSAction":
        return f"SNS: {body.get('TopicArn', '')} ({body.get('Encoding', 'UTF-8')})"
    if kind == "BounceAction":
        said = (body.get("SmtpReplyCode", ""), body.get("StatusCode", ""), body.get("Message", ""))
        return "Bounce: " + " ".join(str(p) for p in said if p)
    if kind == "StopAction":
        return "Stop the rule set"
    if kind == "LambdaAction":
        return f"Lambda: {body.get('FunctionArn', '')} ({body.get('InvocationType', 'Event')})"
    if kind == "AddHeaderAction":
        return f"Add header {body.get('HeaderName', '')}: {body.get('HeaderValue', '')}"
    if kind == "WorkmailAction":
        return f"WorkMail: {body.get('OrganizationArn', '')}"
    return kind.removesuffix("Action")


def _action(f: dict[str, str]) -> dict[str, Any]:
    """The form's one action, in the API's spelling (receiving/definitions.py checks it)."""
    kind = f.get("action", "")
    topic = f.get("topic_arn", "").strip()
    if kind == "S3Action":
        body: dict[str, Any] = {"BucketName": f.get("bucket", "").strip()}
        if f.get("prefix", "").strip():
            body["ObjectKeyPrefix"] = f["prefix"].strip()
        if topic:
            body["TopicArn"] = topic
    elif kind == "SNSAction":
        body = {"TopicArn": topic, "Encoding": "Base64" if f.get("encoding") == "Base64" else "UTF-8"}
    elif kind == "BounceAction":
        body = {
            "SmtpReplyCode": f.get("smtp_reply_code", "").strip(),
            "Message": f.get("bounce_message", "").strip() or "Mailbox does not exist",
            "Sender": f.get("bounce_sender", "").strip(),
        }
        if f.get("status_code", "").strip():
            body["StatusCode"] = f["status_code"].strip()
    elif kind == "StopAction":
        body = {"Scope": "RuleSet"}
        if topic:
            body["TopicArn"] = topic
    else:
        return {}
    return {kind: body}


async def create_rule(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    f = ctx.form
    rule: dict[str, Any] = {
        "Name": f.get("rule_name", "").strip(),
        "Enabled": ticked(f, "enabled"),
        "ScanEnabled": ticked(f, "scan"),
        "TlsPolicy": "Require" if f.get("tls_policy") == "Require" else "Optional",
        "Recipients": lines(f.get("recipients", "")),
    }
    action = _action(f)
    if not action:
        return await show_set(ctx, "Choose an action.", 400)
    rule["Actions"] = [action]
    rules = ctx.sesame.receipt_rules
    position = f.get("after", LAST)
    try:
        if position == LAST:
            current = (await rules.get_set(ctx.account_id, ctx.region, name)).rules or []
            after = current[-1]["Name"] if current else None
        else:
            after = None if position == FIRST else position
        error = await attempt(ctx, rules.create_rule(ctx.account_id, ctx.region, name, rule, after))
    except REFUSED as exc:
        error = exc.message
    if error:
        return await show_set(ctx, error, 400)
    return ctx.redirect(_set_url(name), f"Rule {rule['Name']} created.")


async def delete_rule(ctx: Ctx) -> Response:
    name, rule = ctx.request.path_params["name"], ctx.request.path_params["rule"]
    error = await attempt(ctx, ctx.sesame.receipt_rules.delete_rule(ctx.account_id, ctx.region, name, rule))
    if error:
        return await show_set(ctx, error, 400)
    return ctx.redirect(_set_url(name), f"Rule {rule} deleted.")
