"""Console pages: identities (``/console/identities``): the list, creating one as CreateEmailIdentity
does, an identity's DNS records to publish, "Re-check now" (the background pass's look-up for one
identity) and deleting one (as DeleteEmailIdentity: its tags go with it).

The records are ``Identities.records``: Sesame has no ``dkim.amazonses.com`` for CNAMEs to point at,
so an Easy DKIM selector is published as a TXT record with Sesame's public key (a CNAME to such a TXT
works too), BYODKIM's selector the same way; the v1 ``_amazonses`` TXT for domains VerifyDomainIdentity
created; the custom MAIL FROM domain's MX and SPF TXT. DMARC is advice: SES does not check it, but
mailbox providers want it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sesame.console.web import PREFIX, Ctx, page
from sesame.domain.identities import DOMAIN, SUCCESS, IdentityError, Record, normalize
from sesame.domain.verification import VerificationError

if TYPE_CHECKING:
    from sesame.console import Console

TTL = 1800


def routes(console: Console) -> list[BaseRoute]:
    base = f"{PREFIX}/identities"
    return [
        Route(base, page(console, "account", index), methods=["GET", "POST"]),
        Route(base + "/{name}", page(console, "account", detail), methods=["GET"]),
        Route(base + "/{name}/check", page(console, "account", check), methods=["POST"]),
        Route(base + "/{name}/delete", page(console, "account", delete), methods=["POST"]),
    ]


def _arn(ctx: Ctx, identity: str) -> str:
    return f"arn:aws:ses:{ctx.region}:{ctx.account_id}:identity/{identity}"


async def index(ctx: Ctx) -> Response:
    """The list (name order, paged), and the form that creates one (POST)."""
    error, status, name = "", 200, ""
    if ctx.request.method == "POST":
        name = ctx.form.get("identity", "").strip()
        try:
            created = await _create(ctx, name)
        except (IdentityError, VerificationError) as exc:
            error, status = str(exc), 400
        else:
            note = (
                f"{created} was created: publish the DNS records below."
                if "@" not in created
                else f"{created} was created."
            )
            if "@" in created and ctx.console.mode != "dev":
                note += " A verification email with a link was sent to it."
            return ctx.redirect(f"{PREFIX}/identities/{_q(created)}", note)
    after = ctx.query.get("after") or None
    size = ctx.console.settings.console.page_size
    rows, last = await ctx.sesame.identities.page(ctx.account_id, ctx.region, None, after, size)
    return ctx.render(
        "identities.html", status=status, rows=rows, next=last, error=error, name=name, SUCCESS=SUCCESS
    )


async def _create(ctx: Ctx, name: str) -> str:
    """CreateEmailIdentity with no options: an address gets its verification email (within the
    verification email rate and the daily quota), a domain gets Easy DKIM."""
    if not name:
        raise IdentityError("invalid", "Enter an email address or a domain.")
    sesame = ctx.sesame
    if "@" in name:
        await sesame.verification.reserve(ctx.account_id, ctx.region)
    row = await sesame.identities.create(ctx.account_id, ctx.region, name)
    await sesame.verification.start(row)
    return str(row.identity)


def dmarc_advice(domain: str) -> Record:
    """A first DMARC record: monitoring only, reports to the domain's own dmarc@ address."""
    return Record(f"_dmarc.{domain}", "TXT", f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}")


def _purpose(record: Record, row: object) -> str:
    if record.name.startswith("_amazonses."):
        return "Verification (VerifyDomainIdentity)"
    if "._domainkey." in record.name:
        return "DKIM (BYODKIM selector)" if getattr(row, "dkim_origin", "") == "EXTERNAL" else "DKIM"
    if record.rtype == "MX":
        return "Custom MAIL FROM: bounces"
    return "Custom MAIL FROM: SPF"


async def detail(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    identities = ctx.sesame.identities
    row = await identities.get(ctx.account_id, ctx.region, name)
    if row is None:
        return ctx.error(404, f"Email identity {name} does not exist.")
    row = await identities.refresh(row)  # as GetEmailIdentity: a look-up now and then, rate-limited
    parent = None
    if row.kind != DOMAIN:
        parent = await identities.get(ctx.account_id, ctx.region, row.identity.rpartition("@")[2])
    records = [(r, _purpose(r, row)) for r in identities.records(row)]
    advice = dmarc_advice(row.identity) if row.kind == DOMAIN else None
    zone = "\n".join(r.zone_line(TTL) for r, _ in records)
    return ctx.render(
        "identity.html",
        row=row,
        parent=parent,
        records=records,
        advice=advice,
        zone=zone,
        ttl=TTL,
        SUCCESS=SUCCESS,
        DOMAIN=DOMAIN,
    )


async def check(ctx: Ctx) -> Response:
    """Re-check now: the DNS look-up the background pass (``refresh_pending``) makes, for this one."""
    name = ctx.request.path_params["name"]
    identities = ctx.sesame.identities
    row = await identities.get(ctx.account_id, ctx.region, name)
    if row is None:
        return ctx.error(404, f"Email identity {name} does not exist.")
    row = await identities.refresh(row, force=True)
    note = f"Looked up just now: verification {row.verification_status}, DKIM {row.dkim_status}."
    if row.verification_error and row.verification_status != SUCCESS:
        note += f" ({row.verification_error})"
    return ctx.redirect(f"{PREFIX}/identities/{_q(row.identity)}", note)


async def delete(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    try:
        await ctx.sesame.identities.delete(ctx.account_id, ctx.region, name, missing_ok=False)
    except IdentityError as exc:
        return ctx.error(404, str(exc))
    await ctx.sesame.tags.drop_resource(ctx.account_id, _arn(ctx, normalize(name)))
    return ctx.redirect(f"{PREFIX}/identities", f"{name} was deleted.")


def _q(value: str) -> str:
    return quote(value, safe="@")
