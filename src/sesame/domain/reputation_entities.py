"""Reputation entities (SES v2 GetReputationEntity … UpdateReputationEntityCustomerManagedStatus): the
enforcement object behind a tenant (reference §12.6). Each tenant has one, made and dropped with it,
referenced by the tenant's ARN.

Its rates are the tenant's own: domain/reputation.py counts the tenant's mail under the scope
``tenant/<TenantId>`` by the very rules and window it uses for the account (hard bounces and complaints
of recipients that are neither the mailbox simulator nor the account's own, per hour of sending), and
hands each new figure to ``judge`` in the same dispatch transaction.

What the figures mean here (SES publishes no thresholds for its policies; these are [DECISION]s that
reuse SES's account-level ones, reference §3.5, in ``reputation.*`` settings):

* ReputationImpact, the highest finding: ``HIGH`` at the pause rates (bounce 10%, complaint 0.5%),
  ``LOW`` at the review rates (5%, 0.1%), else ``NONE`` (what SES answers for a fresh entity, outside
  its documented enum, OBSERVED); never a finding before the tenant's window holds
  ``reputation.entity_min_sends`` recipients.
* The policy (``arn:aws:ses:<region>:aws:reputation-policy/none|standard|strict``, ``none`` for a new
  entity) says which findings pause the tenant: ``standard`` a HIGH one, ``strict`` any, ``none`` none.
  While they do, AwsSesManagedStatus is DISABLED (Sesame's own, which the customer cannot lift); it is
  worked out again whenever the rates change and when the policy changes (so a laxer policy lifts it).
* CustomerManagedStatus is the customer's (ENABLED, DISABLED, REINSTATED). SendingStatusAggregate: DISABLED
  when either status is, else REINSTATED when the customer's is, else ENABLED. A tenant whose aggregate
  is DISABLED cannot send (SendingPausedException); its reputation pauses it alone, never the account.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.config import ReputationSettings
from sesame.errors import InvalidRequest, NotFound
from sesame.storage.db import Database
from sesame.storage.models import Reputation, ReputationCounter, ReputationEntity, Tenant, utcnow
from sesame.storage.reputation import Rates

log = logging.getLogger(__name__)

ENTITY_TYPE = "RESOURCE"  # the only ReputationEntityType
ENABLED, REINSTATED, DISABLED = "ENABLED", "REINSTATED", "DISABLED"
NO_FINDING, LOW, HIGH = "NONE", "LOW", "HIGH"
POLICIES = ("none", "standard", "strict")
#: The scope of a tenant's counters in ``reputation_counters`` (no configuration set name has a "/").
TENANT_SCOPE = "tenant/"
#: CustomerManagedStatus.Cause after a customer's write (OBSERVED, reference §12.6).
MANUAL_CAUSE = "Status manually updated."
_POLICY = re.compile(r"^arn:aws:ses:(?P<region>[a-z0-9-]+):aws:reputation-policy/(?P<name>[a-z]+)$")
FILTERS = ("ENTITY_TYPE", "REPUTATION_IMPACT", "SENDING_STATUS", "ENTITY_REFERENCE_PREFIX")


class EntityNotFound(NotFound):
    def __init__(self, reference: str) -> None:
        super().__init__(f"Reputation entity {reference} does not exist.")


class InvalidEntityRequest(InvalidRequest):
    """A bad policy, filter or status; also an update of an entity that does not exist (the update
    operations' model lists no NotFoundException)."""


def policy_arn(region: str, name: str) -> str:
    return f"arn:aws:ses:{region}:aws:reputation-policy/{name}"


def policy_name(arn: str) -> str:
    m = _POLICY.match(arn)
    return m["name"] if m else "none"


def aggregate(customer: str, ses: str) -> str:
    """SendingStatusAggregate [BC-V2 ReputationEntity]."""
    if DISABLED in (customer, ses):
        return DISABLED
    return REINSTATED if customer == REINSTATED else ENABLED


def pauses(policy: str, impact: str) -> bool:
    """Whether ``policy`` pauses an entity with a finding of ``impact``."""
    if policy == "standard":
        return impact == HIGH
    if policy == "strict":
        return impact in (LOW, HIGH)
    return False


@dataclass(frozen=True)
class TenantScope:
    """A tenant as counting needs it: its counters' scope, and when it was made (its mail only counts
    from then: a tenant made again under an old name does not inherit the old one's feedback)."""

    scope: str
    created_at: dt.datetime


class ReputationEntities:
    def __init__(self, db: Database, settings: ReputationSettings) -> None:
        self.db = db
        self.settings = settings

    def impact(self, rates: Rates | Reputation | None) -> str:
        conf = self.settings
        if rates is None or rates.sends < max(1, conf.entity_min_sends):
            return NO_FINDING
        if rates.bounce_rate >= conf.bounce_pause or rates.complaint_rate >= conf.complaint_pause:
            return HIGH
        if rates.bounce_rate >= conf.bounce_review or rates.complaint_rate >= conf.complaint_review:
            return LOW
        return NO_FINDING

    # -- made and dropped with their resource (in its transaction) --------------------------------

    @staticmethod
    def create_in(s: AsyncSession, account_id: str, region: str, reference: str, scope: str) -> None:
        now = utcnow()
        s.add(
            ReputationEntity(
                account_id=account_id,
                region=region,
                reference=reference,
                entity_type=ENTITY_TYPE,
                scope=scope,
                policy=policy_arn(region, "none"),
                customer_status=ENABLED,
                customer_updated_at=now,
                ses_status=ENABLED,
                ses_updated_at=now,
                sending_status=ENABLED,
                impact=NO_FINDING,
                created_at=now,
            )
        )

    @staticmethod
    async def drop_in(s: AsyncSession, account_id: str, region: str, reference: str) -> None:
        """The entity, its counters and its rates go (in the order the dispatcher locks them)."""
        row = await s.get(ReputationEntity, (account_id, region, reference))
        if row is None:
            return
        for model in (ReputationCounter, Reputation):
            await s.execute(
                sa.delete(model).where(
                    model.account_id == account_id, model.region == region, model.scope == row.scope
                )
            )
        await s.delete(row)

    @staticmethod
    async def scopes(
        s: AsyncSession, tenants: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], TenantScope]:
        """(account, region, tenant name) → its counters' scope, for the tenants that exist."""
        keys = sorted(set(tenants))
        if not keys:
            return {}
        t, e = Tenant, ReputationEntity
        rows = await s.execute(
            sa.select(t.account_id, t.region, t.name, e.scope, t.created_at)
            .join(e, sa.and_(e.account_id == t.account_id, e.region == t.region, e.reference == t.arn))
            .where(sa.tuple_(t.account_id, t.region, t.name).in_(keys))
        )
        return {(a, r, n): TenantScope(scope, created) for a, r, n, scope, created in rows}

    # -- judging (in the outbox's dispatch transaction) -------------------------------------------

    async def judge(self, s: AsyncSession, rates: list[Rates]) -> None:
        """New rates of entities' scopes: their finding, and their policy's verdict on it."""
        wanted = sorted(
            {(x.account_id, x.region, x.scope) for x in rates if x.scope.startswith(TENANT_SCOPE)}
        )
        if not wanted:
            return
        by_scope = {(x.account_id, x.region, x.scope): x for x in rates}
        e = ReputationEntity
        rows = await s.scalars(
            sa.select(e)
            .where(sa.tuple_(e.account_id, e.region, e.scope).in_(wanted))
            .order_by(e.account_id, e.region, e.reference)
            .with_for_update()  # two dispatchers deciding about one entity take turns (PostgreSQL)
        )
        for row in rows:
            self._apply(row, by_scope.get((row.account_id, row.region, row.scope)))

    def _apply(self, row: ReputationEntity, rates: Rates | Reputation | None) -> None:
        """Set the finding and Sesame's status from ``rates`` under the entity's policy."""
        impact = self.impact(rates)
        policy = policy_name(row.policy)
        row.impact = impact
        if not self.settings.enforce:
            return
        status = DISABLED if pauses(policy, impact) else ENABLED
        if status == row.ses_status:
            return
        now = utcnow()
        if status == DISABLED and rates is not None:
            row.ses_cause = (
                f"Sending paused by the {policy} reputation policy: a {impact} impact finding (bounce rate "
                f"{rates.bounce_rate:.2%}, complaint rate {rates.complaint_rate:.2%} of {rates.sends} "
                "recipients)."
            )
        else:
            row.ses_cause = (
                f"Sending resumed: no finding pauses sending under the {policy} reputation policy."
            )
        log.warning(
            "reputation entity %s: %s -> %s (%s)", row.reference, row.ses_status, status, row.ses_cause
        )
        row.ses_status, row.ses_updated_at = status, now
        row.sending_status = aggregate(row.customer_status, status)

    # -- the API ----------------------------------------------------------------------------------

    async def get(self, account_id: str, region: str, entity_type: str, reference: str) -> ReputationEntity:
        async with self.db.read() as s:
            row = await s.get(ReputationEntity, (account_id, region, reference))
        if row is None or entity_type != row.entity_type:
            raise EntityNotFound(reference)
        return row

    async def page(
        self, account_id: str, region: str, filters: Mapping[str, str], after: str | None, limit: int
    ) -> tuple[list[ReputationEntity], str | None]:
        e = ReputationEntity
        q = sa.select(e).where(e.account_id == account_id, e.region == region)
        for name, value in filters.items():
            if name == "ENTITY_TYPE":
                q = q.where(e.entity_type == value)
            elif name == "REPUTATION_IMPACT":
                q = q.where(e.impact == value)
            elif name == "SENDING_STATUS":
                q = q.where(e.sending_status == value)
            elif name == "ENTITY_REFERENCE_PREFIX":
                q = q.where(e.reference.startswith(value, autoescape=True))
            else:
                raise InvalidEntityRequest(f"Invalid filter: {name}. Valid filters: {', '.join(FILTERS)}.")
        return await self.db.page(q, e.reference, after, limit)

    async def set_policy(
        self, account_id: str, region: str, entity_type: str, reference: str, arn: str
    ) -> None:
        m = _POLICY.match(arn)
        if m is None or m["name"] not in POLICIES or m["region"] != region:
            raise InvalidEntityRequest(
                f"Invalid reputation entity policy: {arn}. Valid policies: "
                + ", ".join(policy_arn(region, p) for p in POLICIES)
                + "."
            )
        async with self.db.write() as s:
            row = await self._locked(s, account_id, region, entity_type, reference)
            row.policy = arn
            # A new policy judges the current rates at once (a laxer one may lift a pause).
            rates = await s.get(Reputation, (account_id, region, row.scope))
            self._apply(row, rates)

    async def set_customer_status(
        self, account_id: str, region: str, entity_type: str, reference: str, status: str
    ) -> None:
        async with self.db.write() as s:
            row = await self._locked(s, account_id, region, entity_type, reference)
            row.customer_status, row.customer_cause, row.customer_updated_at = status, MANUAL_CAUSE, utcnow()
            row.sending_status = aggregate(status, row.ses_status)

    @staticmethod
    async def _locked(
        s: AsyncSession, account_id: str, region: str, entity_type: str, reference: str
    ) -> ReputationEntity:
        row = await s.get(ReputationEntity, (account_id, region, reference), with_for_update=True)
        if row is None or row.entity_type != entity_type:
            raise InvalidEntityRequest(f"Reputation entity {reference} does not exist.")
        return row

    async def statuses(self, account_id: str, region: str, references: Iterable[str]) -> dict[str, str]:
        """Each entity's SendingStatusAggregate."""
        wanted = sorted(set(references))
        if not wanted:
            return {}
        e = ReputationEntity
        async with self.db.read() as s:
            rows = await s.execute(
                sa.select(e.reference, e.sending_status).where(
                    e.account_id == account_id, e.region == region, e.reference.in_(wanted)
                )
            )
            return {ref: status for ref, status in rows}


def show(row: ReputationEntity) -> dict[str, Any]:
    """A ReputationEntity as the API shows it."""

    def record(status: str, cause: str | None, when: dt.datetime) -> dict[str, Any]:
        out: dict[str, Any] = {"Status": status, "LastUpdatedTimestamp": when}
        if cause:
            out["Cause"] = cause
        return out

    return {
        "ReputationEntityReference": row.reference,
        "ReputationEntityType": row.entity_type,
        "ReputationManagementPolicy": row.policy,
        "CustomerManagedStatus": record(row.customer_status, row.customer_cause, row.customer_updated_at),
        "AwsSesManagedStatus": record(row.ses_status, row.ses_cause, row.ses_updated_at),
        "SendingStatusAggregate": row.sending_status,
        "ReputationImpact": row.impact,
    }
