"""The account-level suppression list (SES v2 PutSuppressedDestination … ListSuppressedDestinations),
and the tenants' own lists.

Addresses are compared case-insensitively: mailbox providers treat ``User@Example.com`` and
``user@example.com`` as one recipient, and a bounce from one should protect the other.

Which list a message's bounces and complaints go to, and which list its recipients are checked
against (``resolve``): a tenant's own list when the mail is sent as a tenant whose suppression scope is
TENANT (CreateTenant / PutTenantSuppressionAttributes ``SuppressionScope``), unless the configuration
set's ``SuppressionOptions.SuppressionScope`` says otherwise; the account's list in every other case.
The reasons: the set's own when it has them, else the tenant's (for its own list, when it gave them),
else the account's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.storage.db import Database
from sesame.storage.models import (
    AccountRegion,
    ConfigurationSet,
    SuppressedDestination,
    Tenant,
    TenantSuppressedDestination,
    utcnow,
)

REASONS = ("BOUNCE", "COMPLAINT")
#: An account's SuppressedReasons until it sets its own (SES: both).
DEFAULT_REASONS = ["BOUNCE", "COMPLAINT"]
#: A bounce of an address already on the account's (or the tenant's) list says nothing new about it.
ON_ACCOUNT_LIST = "OnAccountSuppressionList"
#: Nor does one of mail to a contact who unsubscribed: the address works, its owner said no.
UNSUBSCRIBED = "UnsubscribedRecipient"
ON_TENANT_LIST = "OnTenantSuppressionList"  # [OBSERVED] reference §7.1
ON_A_LIST = frozenset({ON_ACCOUNT_LIST, ON_TENANT_LIST})
#: The width of ``SuppressedDestination.feedback_id``.
FEEDBACK_ID_MAX = 80


def key(address: str) -> str:
    return address.strip().lower()


def effective_reasons(
    account_attributes: Mapping[str, Any] | None, set_reasons: list[str] | None
) -> list[str]:
    """The reasons that put an address on the list for mail of a configuration set: the set's own
    ``SuppressionOptions.SuppressedReasons`` when it has them (an empty list: none), else the
    account's ``SuppressedReasons`` (PutAccountSuppressionAttributes), else both."""
    if set_reasons is not None:
        return list(set_reasons)
    return list((account_attributes or {}).get("SuppressedReasons", DEFAULT_REASONS))


def suppressible(bounce_type: str | None, bounce_subtype: str | None) -> bool:
    """Whether a bounce may put its address on the list (when BOUNCE is among the reasons): a hard
    bounce, unless it happened because the address was on a list already [DG] or its contact had
    unsubscribed."""
    return bounce_type == "Permanent" and bounce_subtype not in ON_A_LIST and bounce_subtype != UNSUBSCRIBED


@dataclass(frozen=True)
class Target:
    """The list a message's recipients are checked against and its feedback goes to: ``tenant``'s own,
    or the account's (``tenant`` None), and the reasons that put an address on it."""

    tenant: str | None
    reasons: list[str]


def resolve(
    account_attributes: Mapping[str, Any] | None,
    set_options: Mapping[str, Any] | None,
    tenant: str | None,
    tenant_attributes: Mapping[str, Any] | None,
) -> Target:
    """The module docstring's rule. ``set_options``: the configuration set's SuppressionOptions (None
    without a set, or when it has none); ``tenant_attributes``: the tenant's SuppressionAttributes."""
    scope = (set_options or {}).get("SuppressionScope") or (tenant_attributes or {}).get("SuppressionScope")
    own = tenant if tenant and scope == "TENANT" else None
    if set_options is not None and (
        "SuppressedReasons" in set_options or "SuppressionScope" not in set_options
    ):
        # The set's reasons (none at all when it names none); a set that only names a scope defers.
        reasons = list(set_options.get("SuppressedReasons") or [])
    elif own and "SuppressedReasons" in (tenant_attributes or {}):
        reasons = list((tenant_attributes or {}).get("SuppressedReasons") or [])
    else:
        reasons = effective_reasons(account_attributes, None)
    return Target(own, reasons)


async def target_in(
    s: AsyncSession, account_id: str, region: str, configuration_set: str | None, tenant: str | None = None
) -> Target:
    """``resolve`` read inside a transaction. A configuration set or tenant that no longer exists is
    left out."""
    attributes = await s.scalar(
        sa.select(AccountRegion.suppression_attributes).where(
            AccountRegion.account_id == account_id, AccountRegion.region == region
        )
    )
    set_options: Mapping[str, Any] | None = None
    if configuration_set:
        row = await s.get(ConfigurationSet, (account_id, region, configuration_set))
        set_options = (row.options or {}).get("SuppressionOptions") if row is not None else None
    tenant_attributes: Mapping[str, Any] | None = None
    if tenant:
        found = await s.get(Tenant, (account_id, region, tenant))
        tenant, tenant_attributes = (tenant, found.suppression_attributes) if found else (None, None)
    return resolve(attributes, set_options, tenant, tenant_attributes)


async def reasons_in(
    s: AsyncSession, account_id: str, region: str, configuration_set: str | None
) -> list[str]:
    """``effective_reasons`` read inside a transaction. A configuration set that no longer exists
    leaves the account's reasons."""
    return (await target_in(s, account_id, region, configuration_set)).reasons


async def add(
    s: AsyncSession,
    account_id: str,
    region: str,
    address: str,
    reason: str,
    message_id: str | None = None,
    feedback_id: str | None = None,
    tenant: str | None = None,
) -> None:
    """Put ``address`` on the list (the account's, or ``tenant``'s own) inside a transaction (or renew
    its entry with the newer cause). A ``feedback_id`` longer than its column (80) is left out:
    events/details.py's ids (the message id and a UUID) are longer, and PostgreSQL would refuse the
    whole transaction."""
    if feedback_id is not None and len(feedback_id) > FEEDBACK_ID_MAX:
        feedback_id = None
    row = await _get(s, account_id, region, address, tenant)
    if row is None:
        values = {
            "account_id": account_id,
            "region": region,
            "email_address": key(address),
            "reason": reason,
            "last_update_time": utcnow(),
            "message_id": message_id,
            "feedback_id": feedback_id,
        }
        s.add(
            TenantSuppressedDestination(tenant_name=tenant, **values)
            if tenant
            else SuppressedDestination(**values)
        )
    else:
        row.reason, row.last_update_time = reason, utcnow()
        row.message_id, row.feedback_id = message_id, feedback_id


#: An entry of either list.
Entry = SuppressedDestination | TenantSuppressedDestination


async def _get(
    s: AsyncSession, account_id: str, region: str, address: str, tenant: str | None
) -> Entry | None:
    if tenant:
        return await s.get(TenantSuppressedDestination, (account_id, region, tenant, key(address)))
    return await s.get(SuppressedDestination, (account_id, region, key(address)))


class Suppression:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(
        self,
        account_id: str,
        region: str,
        address: str,
        reason: str,
        message_id: str | None = None,
        tenant: str | None = None,
    ) -> None:
        async with self.db.write() as s:
            await add(s, account_id, region, address, reason, message_id, tenant=tenant)

    async def reasons(self, account_id: str, region: str, configuration_set: str | None) -> list[str]:
        """The reasons that put an address on the list for mail of ``configuration_set``."""
        async with self.db.read() as s:
            return await reasons_in(s, account_id, region, configuration_set)

    async def target(
        self, account_id: str, region: str, configuration_set: str | None, tenant: str | None
    ) -> Target:
        """The list (and reasons) for mail of ``configuration_set`` sent as ``tenant``."""
        async with self.db.read() as s:
            return await target_in(s, account_id, region, configuration_set, tenant)

    async def get(
        self, account_id: str, region: str, address: str, tenant: str | None = None
    ) -> Entry | None:
        async with self.db.read() as s:
            return await _get(s, account_id, region, address, tenant)

    async def delete(self, account_id: str, region: str, address: str, tenant: str | None = None) -> bool:
        async with self.db.write() as s:
            row = await _get(s, account_id, region, address, tenant)
            if row is None:
                return False
            await s.delete(row)
            return True

    async def matching(
        self,
        account_id: str,
        region: str,
        addresses: Iterable[str],
        reasons: Iterable[str],
        tenant: str | None = None,
    ) -> dict[str, str]:
        """Which of ``addresses`` are suppressed for one of ``reasons`` (on ``tenant``'s own list, or the
        account's): lower-cased address → reason."""
        wanted = {key(a) for a in addresses}
        reasons = list(reasons)
        if not wanted or not reasons:
            return {}
        t = TenantSuppressedDestination if tenant else SuppressedDestination
        q = sa.select(t.email_address, t.reason).where(
            t.account_id == account_id,
            t.region == region,
            t.email_address.in_(wanted),
            t.reason.in_(reasons),
        )
        if tenant:
            q = q.where(TenantSuppressedDestination.tenant_name == tenant)
        async with self.db.read() as s:
            return {address: reason for address, reason in await s.execute(q)}

    async def page(
        self,
        account_id: str,
        region: str,
        *,
        reasons: list[str] | None,
        start: dt.datetime | None,
        end: dt.datetime | None,
        after: str | None,
        limit: int,
        tenant: str | None = None,
    ) -> tuple[list[Entry], str | None]:
        t = TenantSuppressedDestination if tenant else SuppressedDestination
        q = sa.select(t).where(t.account_id == account_id, t.region == region)
        if tenant:
            q = q.where(TenantSuppressedDestination.tenant_name == tenant)
        if reasons:
            q = q.where(t.reason.in_(reasons))
        if start:
            q = q.where(t.last_update_time >= start)
        if end:
            q = q.where(t.last_update_time <= end)
        return await self.db.page(q, t.email_address, after, limit)
