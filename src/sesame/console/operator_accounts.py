"""The operator's accounts: the list, creating one, and an account's page (sandbox and quotas per
region, pausing and resuming its sending, its access keys). The same calls as ``sesame accounts …``
and UpdateAccountSendingEnabled: ``Accounts.create/update/modify_region``, its key methods, and
``Reputation.reinstate`` for an account that enforcement paused."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from sesame.console.web import PREFIX, Ctx
from sesame.domain.accounts import AccessKeyNotFound, AccountNotFound, SendingPausedByEnforcement
from sesame.errors import DomainError
from sesame.smtp.credentials import smtp_password
from sesame.storage.models import AccessKey, Account, AccountRegion

Handler = Callable[[Ctx], Awaitable[Response]]

BASE = f"{PREFIX}/operator"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def quota(value: float) -> str:
    """A quota as the CLI takes it: -1 (any negative) is unlimited."""
    if value < 0:
        return "unlimited"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _number(text: str) -> float | None:
    """A quota from a form: a number, 0 or more, or -1 for unlimited; None if it is not one."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if math.isnan(value) or math.isinf(value) or (value < 0 and value != -1):
        return None
    return value


@dataclass(frozen=True)
class RegionState:
    """One region of an account as its page shows it: the stored row, or the defaults it will start
    with (a region the account has not used has no row yet, and a page view must not create one)."""

    region: str
    used: bool
    production_access: bool
    max_24_hour_send: float
    max_send_rate: float
    sending_enabled: bool
    enforcement_status: str
    review: str
    sent_24h: int


async def home(ctx: Ctx) -> Response:
    return ctx.redirect(f"{BASE}/accounts")


# -- the list ---------------------------------------------------------------------------------------


async def listing(
    ctx: Ctx, *, status: int = 200, error: str = "", form: dict[str, str] | None = None
) -> Response:
    """Accounts, newest first, a page at a time, with their keys counted and their regions' state (one
    query each for the page's accounts, keys and regions)."""
    size = ctx.console.settings.console.page_size
    search = ctx.query.get("search", "").strip()
    number = _page_number(ctx.query.get("page", ""))
    q = sa.select(Account)
    if search:
        q = q.where(
            sa.or_(
                Account.id.contains(search, autoescape=True),
                sa.func.lower(Account.name).contains(search.lower(), autoescape=True),
            )
        )
    q = q.order_by(Account.created_at.desc(), Account.id).offset((number - 1) * size).limit(size + 1)
    async with ctx.sesame.db.read() as s:
        found = list((await s.scalars(q)).all())
        ids = [a.id for a in found[:size]]
        keys: dict[str, tuple[int, int]] = {}
        regions: dict[str, list[AccountRegion]] = {}
        if ids:
            counted = await s.execute(
                sa.select(AccessKey.account_id, AccessKey.active, sa.func.count())
                .where(AccessKey.account_id.in_(ids))
                .group_by(AccessKey.account_id, AccessKey.active)
            )
            for account_id, active, n in counted:
                total, live = keys.get(account_id, (0, 0))
                keys[account_id] = (total + n, live + (n if active else 0))
            rows = await s.scalars(
                sa.select(AccountRegion)
                .where(AccountRegion.account_id.in_(ids))
                .order_by(AccountRegion.account_id, AccountRegion.region)
            )
            for row in rows:
                regions.setdefault(row.account_id, []).append(row)
    return ctx.render(
        "operator_accounts.html",
        status=status,
        accounts=found[:size],
        keys=keys,
        by_account=regions,
        search=search,
        number=number,
        more=len(found) > size,
        error=error,
        form=form or {},
        quota=quota,
    )


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 0 < int(text) < 1_000_000 else 1


async def create(ctx: Ctx) -> Response:
    """``sesame accounts create NAME [--id ID]``: the account and its first key, whose secret is shown
    on this response only (it is stored encrypted and never shown again)."""
    name = ctx.form.get("name", "").strip()
    account_id = ctx.form.get("account_id", "").strip() or None
    if not name or len(name) > 255:
        return await listing(
            ctx, status=400, error="An account needs a name (at most 255 characters).", form=ctx.form
        )
    if account_id is not None and not (len(account_id) == 12 and account_id.isdigit()):
        return await listing(ctx, status=400, error="An account id is 12 digits.", form=ctx.form)
    try:
        new = await ctx.sesame.accounts.create(name, account_id)
    except IntegrityError:
        return await listing(ctx, status=409, error=f"Account {account_id} exists already.", form=ctx.form)
    return ctx.render(
        "operator_account_created.html",
        new=new,
        smtp_password=smtp_password(new.secret_access_key, ctx.console.settings.smtp_region),
        smtp_region=ctx.console.settings.smtp_region,
    )


# -- one account ------------------------------------------------------------------------------------


async def show(ctx: Ctx) -> Response:
    return await _account_page(ctx, ctx.request.path_params["account_id"])


async def _account_page(
    ctx: Ctx,
    account_id: str,
    *,
    status: int = 200,
    error: str = "",
    new_key: dict[str, str] | None = None,
) -> Response:
    async with ctx.sesame.db.read() as s:
        account = await s.get(Account, account_id)
        if account is None:
            return ctx.error(404, f"There is no account {account_id}.")
        rows = {
            r.region: r
            for r in await s.scalars(sa.select(AccountRegion).where(AccountRegion.account_id == account_id))
        }
        keys = list(
            await s.scalars(
                sa.select(AccessKey).where(AccessKey.account_id == account_id).order_by(AccessKey.created_at)
            )
        )
    regions = []
    for region in dict.fromkeys([*ctx.console.regions, *sorted(rows)]):
        row = rows.get(region)
        if row is None:
            regions.append(
                RegionState(region, False, not account.sandbox, account.max_24_hour_send,
                            account.max_send_rate, True, "HEALTHY", "", 0)
            )  # fmt: skip
            continue
        review = (row.details or {}).get("ReviewDetails") or {}
        regions.append(
            RegionState(
                region,
                True,
                row.production_access,
                row.max_24_hour_send,
                row.max_send_rate,
                row.sending_enabled,
                row.enforcement_status,
                str(review.get("Status", "")) if isinstance(review, dict) else "",
                await ctx.sesame.sending.sent_last_24_hours(account_id, region),
            )
        )
    return ctx.render(
        "operator_account.html",
        status=status,
        account=account,
        region_states=regions,
        keys=keys,
        error=error,
        new_key=new_key,
        quota=quota,
        smtp_region=ctx.console.settings.smtp_region,
    )


def _region(ctx: Ctx) -> str | None:
    """The form's region: one this server serves (any well-formed one when it names none)."""
    region = ctx.form.get("region", "").strip()
    if region in ctx.console.regions:
        return region
    if not ctx.console.settings.regions and _REGION.match(region):
        return region
    return None


def _back(account_id: str) -> str:
    return f"{BASE}/accounts/{account_id}"


async def limits(ctx: Ctx) -> Response:
    """``sesame accounts update ID [--sandbox|--production] [--max-24-hour-send N] [--max-send-rate N]
    [--region R]``: one region, or (region "all") the account's defaults and every region it uses."""
    account_id = ctx.request.path_params["account_id"]
    every = ctx.form.get("region") == "all"
    region = None if every else _region(ctx)
    if not every and region is None:
        return await _account_page(
            ctx, account_id, status=400, error="That is not a region this server serves."
        )
    access = ctx.form.get("access", "")
    if access not in ("sandbox", "production", ""):
        return await _account_page(ctx, account_id, status=400, error="Choose sandbox or production access.")
    changes: dict[str, Any] = {}
    if access:
        changes["sandbox"] = access == "sandbox"
    for field, key in (("max_24_hour_send", "Max24HourSend"), ("max_send_rate", "MaxSendRate")):
        text = ctx.form.get(field, "").strip()
        if not text:
            continue
        value = _number(text)
        if value is None:
            return await _account_page(
                ctx, account_id, status=400,
                error=f"{key} is a number, 0 or more, or -1 for unlimited (not {text!r}).",
            )  # fmt: skip
        changes[field] = value
    if not changes:
        return ctx.redirect(_back(account_id), "Nothing to change.")
    try:
        await ctx.sesame.accounts.update(account_id, region=region, **changes)
    except AccountNotFound:
        return ctx.error(404, f"There is no account {account_id}.")
    where = "the account's defaults and every region" if region is None else region
    return ctx.redirect(_back(account_id), f"Sending limits saved for {where}.")


async def sending(ctx: Ctx) -> Response:
    """Pause or resume the account's sending in a region, as UpdateAccountSendingEnabled does (sending
    that enforcement paused is lifted with Reinstate instead)."""
    account_id = ctx.request.path_params["account_id"]
    region = _region(ctx)
    if region is None:
        return await _account_page(
            ctx, account_id, status=400, error="That is not a region this server serves."
        )
    enabled = ctx.form.get("enabled") == "true"
    try:
        await ctx.sesame.accounts.modify_region(account_id, region, sending_enabled=enabled)
    except AccountNotFound:
        return ctx.error(404, f"There is no account {account_id}.")
    except SendingPausedByEnforcement as exc:
        return await _account_page(ctx, account_id, status=409, error=exc.message + " Use Reinstate.")
    except DomainError as exc:
        return await _account_page(ctx, account_id, status=400, error=exc.message)
    done = "resumed" if enabled else "paused"
    return ctx.redirect(_back(account_id), f"Sending {done} in {region}.")


async def reinstate(ctx: Ctx) -> Response:
    """``sesame accounts update ID --reinstate --region R``: enforcement lifted, sending enabled, rates
    started afresh."""
    account_id = ctx.request.path_params["account_id"]
    region = _region(ctx)
    if region is None:
        return await _account_page(
            ctx, account_id, status=400, error="That is not a region this server serves."
        )
    try:
        await ctx.sesame.reputation.reinstate(account_id, region)
    except AccountNotFound:
        return ctx.error(404, f"There is no account {account_id}.")
    return ctx.redirect(_back(account_id), f"Account reinstated in {region}: sending enabled, rates afresh.")


# -- access keys ------------------------------------------------------------------------------------


async def create_key(ctx: Ctx) -> Response:
    """``sesame accounts create-key ID``: the secret is on this response only."""
    account_id = ctx.request.path_params["account_id"]
    try:
        key_id, secret = await ctx.sesame.accounts.create_access_key(account_id)
    except AccountNotFound:
        return ctx.error(404, f"There is no account {account_id}.")
    region = ctx.console.settings.smtp_region
    new_key = {
        "AccessKeyId": key_id,
        "SecretAccessKey": secret,
        "SmtpPassword": smtp_password(secret, region),
    }
    return await _account_page(ctx, account_id, new_key=new_key)


async def _own_key(ctx: Ctx) -> tuple[str, str] | Response:
    """(account id, key id) when the key is the account's: a key is acted on through its account's
    page only."""
    account_id = ctx.request.path_params["account_id"]
    key_id = ctx.request.path_params["key_id"]
    async with ctx.sesame.db.read() as s:
        key = await s.get(AccessKey, key_id)
    if key is None or key.account_id != account_id:
        return ctx.error(404, f"Account {account_id} has no access key {key_id}.")
    return account_id, key_id


async def key_status(ctx: Ctx) -> Response:
    """``sesame accounts disable-key`` / ``enable-key``: every node refuses a disabled key from its next
    request on (and a console session signed in with it ends)."""
    found = await _own_key(ctx)
    if isinstance(found, Response):
        return found
    account_id, key_id = found
    active = ctx.form.get("active") == "true"
    try:
        await ctx.sesame.accounts.set_key_status(key_id, active)
    except AccessKeyNotFound:
        return ctx.error(404, f"There is no access key {key_id}.")
    return ctx.redirect(_back(account_id), f"Access key {key_id} {'enabled' if active else 'disabled'}.")


async def delete_key(ctx: Ctx) -> Response:
    """``sesame accounts delete-key``: for good."""
    found = await _own_key(ctx)
    if isinstance(found, Response):
        return found
    account_id, key_id = found
    try:
        await ctx.sesame.accounts.delete_key(key_id)
    except AccessKeyNotFound:
        return ctx.error(404, f"There is no access key {key_id}.")
    return ctx.redirect(_back(account_id), f"Access key {key_id} deleted.")
