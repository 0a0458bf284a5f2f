"""Sending statistics, bounce and complaint rates, and SES's enforcement (reference §3.3-3.5, §6.8).

Counted from the event records, once each, by the outbox's dispatcher (``observe`` is an outbox
observer, run in its dispatch transaction), into bucketed counters; nothing here scans the events table.

Two ways of counting the same records, for two different questions:

* **GetSendStatistics** says what happened: per 15 minutes, by when it happened, the hard bounces
  (Permanent), complaints and rejects of the account's mail, mailbox-simulator mail included, as its
  DeliveryAttempts (send counters, domain/sending.py) include it. SES documents these figures as "not
  your enforcement rates" (reference §3.3), and the simulator is excluded from the reputation metrics
  only (its guide: the simulator does not "impact your … reputation metrics").
* **Reputation rates** follow SES's enforcement rules (§3.5): only hard bounces, not the bounces SES
  made for addresses on the account's own suppression list (subtype OnAccountSuppressionList), not
  complaints about mail to such addresses either; never mail to the mailbox simulator or to the
  account's own verified identities (recipients and sends alike). Outcomes count against the hour the
  mail was *sent* (a rate is "of the mail sent, how much bounced"), so a late complaint lands with its
  mail and mail sent before a reset (operator reinstatement, a configuration set's fresh start) no longer
  counts.

The window ("representative volume", which SES does not publish): the newest hours that hold
``reputation.window_sends`` recipients, no more than ``reputation.window_hours`` back. A fixed number of
days would let a sender of a million a day bury a bad list for a week, or a sender of ten a day be judged
on a handful; a fixed number of sends alone would judge a quiet sender on months-old mail. No status
changes while the window holds fewer than ``reputation.min_sends`` recipients.

Enforcement per account and region: at the review thresholds EnforcementStatus becomes PROBATION (and
back to HEALTHY when the rates fall under them again); at the pause thresholds it becomes SHUTDOWN and
sending is paused (SendingEnabled false: sends are refused with AccountSendingPausedException /
SendingPausedException) until the operator reinstates the account, which also starts its rates afresh.
Configuration sets with ReputationOptions.ReputationMetricsEnabled get rates of their own, and no pause
of their own: SES pauses only accounts itself; pausing a set on its rates is the customer's alarm's job
(reference §3.4). Tenants get rates of their own too (scope ``tenant/<TenantId>``, from the tenant's
creation on), which their reputation entity's policy judges (``entities``,
domain/reputation_entities.py): a tenant's rates pause that tenant alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.config import ReputationSettings
from sesame.domain.accounts import AccountNotFound
from sesame.domain.identities import normalize
from sesame.domain.reputation_entities import ReputationEntities, TenantScope
from sesame.domain.sending import SIMULATOR_DOMAIN
from sesame.domain.suppression import UNSUBSCRIBED
from sesame.events.outbox import USER_OPERATIONS, Dispatched
from sesame.storage.db import Database
from sesame.storage.models import Account, AccountRegion, utcnow
from sesame.storage.reputation import Counts, Key, Rates, ReputationStore, Scope

log = logging.getLogger(__name__)

#: The account's mail: what its API and SMTP calls send, and the verification emails that count in its
#: quota. Sesame's own mail (auto-replies, forwarded feedback) is not the account's sending.
COUNTED_OPERATIONS = USER_OPERATIONS | {"VerificationEmail"}
#: GetSendStatistics' data points: 15 minutes, two weeks.
STATS_SPAN, STATS_BUCKETS = 900, 14 * 24 * 4
#: Rate counters: per hour.
RATE_SPAN = 3600
ACCOUNT = ""  # the scope of the account's own rates
HEALTHY, PROBATION, SHUTDOWN = "HEALTHY", "PROBATION", "SHUTDOWN"
SUPPRESSED_BY_ACCOUNT = "OnAccountSuppressionList"
#: Outcomes SES made for addresses on the account's or the tenant's own list: not the sender's doing.
SUPPRESSED_BY_LIST = frozenset({SUPPRESSED_BY_ACCOUNT, "OnTenantSuppressionList"})


@dataclass(frozen=True)
class DataPoint:
    timestamp: dt.datetime
    bounces: int
    complaints: int
    rejects: int


class Reputation:
    def __init__(self, db: Database, settings: ReputationSettings) -> None:
        self.db = db
        self.settings = settings
        keep = {STATS_SPAN: STATS_BUCKETS, RATE_SPAN: settings.window_hours + 1}
        self.store = ReputationStore(db.is_sqlite, keep)
        #: Tenants' reputation entities: their scopes, and the judge of their rates.
        self.entities: ReputationEntities | None = None

    # -- counting (an outbox observer) ------------------------------------------------------------

    async def observe(self, s: AsyncSession, records: list[Dispatched]) -> None:
        mine = [
            r
            for r in records
            if r.operation in COUNTED_OPERATIONS and r.event_type in ("Send", "Bounce", "Complaint", "Reject")
        ]
        if not mine:
            return
        store = self.store
        recipients = await store.recipients(s, (r.message_id for r in mine if r.event_type == "Send"))
        sets = await store.set_options(
            s, {(r.account_id, r.region, r.configuration_set) for r in mine if r.configuration_set}
        )
        # Sets with reputation metrics get rates, from their last fresh start on.
        metered = {k: o for k, o in sets.items() if _metered(o)}
        resets = await store.reset_times(s, [*((r.account_id, r.region, ACCOUNT) for r in mine), *metered])
        for key, options in metered.items():
            fresh = _parse((options.get("ReputationOptions") or {}).get("LastFreshStart"))
            if fresh is not None and (key not in resets or resets[key] < fresh):
                resets[key] = fresh
        addresses = {r.id: _addresses(r, recipients) for r in mine}
        names = {n for found in addresses.values() for a in found for n in _names(a)}
        verified = await store.verified(s, {(r.account_id, r.region) for r in mine}, names)
        tenants: dict[tuple[str, str, str], TenantScope] = {}
        if self.entities is not None:
            tenants = await self.entities.scopes(
                s, {(r.account_id, r.region, r.tenant) for r in mine if r.tenant}
            )

        increments = _increments(mine, addresses, verified, set(metered), resets, tenants)
        await store.add(s, increments)
        await store.prune(s)
        changed = sorted(
            {(a, g, sc) for (a, g, sc, span, _), c in increments.items() if span == RATE_SPAN and c}
        )
        rates = [await self.window_rates(s, scope) for scope in changed]
        await store.save(s, rates)
        if self.settings.enforce:
            await self._enforce(s, [x for x in rates if x.scope == ACCOUNT])
        if self.entities is not None:
            await self.entities.judge(s, rates)

    async def window_rates(self, s: AsyncSession, scope: Scope) -> Rates:
        """A scope's rates over its window: the newest hours until ``window_sends`` recipients, at most
        ``window_hours`` back (resets delete older counters)."""
        now = int(time.time()) // RATE_SPAN
        rows = await self.store.buckets(s, *scope, RATE_SPAN, now - self.settings.window_hours + 1)
        total = Counts()
        for _, c in rows:
            total.sends += c.sends
            total.bounces += c.bounces
            total.complaints += c.complaints
            if total.sends >= self.settings.window_sends:
                break
        return Rates(*scope, total.sends, total.bounces, total.complaints)

    def status_for(self, rates: Rates, current: str) -> str:
        """The EnforcementStatus these rates call for, from ``current``."""
        conf = self.settings
        if rates.sends < conf.min_sends:
            return current
        if rates.bounce_rate >= conf.bounce_pause or rates.complaint_rate >= conf.complaint_pause:
            return SHUTDOWN
        if current == SHUTDOWN:
            return SHUTDOWN  # only the operator lifts a pause
        if rates.bounce_rate >= conf.bounce_review or rates.complaint_rate >= conf.complaint_review:
            return PROBATION
        return HEALTHY

    async def _enforce(self, s: AsyncSession, rates: list[Rates]) -> None:
        statuses = await self.store.enforcement(s, ((x.account_id, x.region) for x in rates))
        for x in rates:
            current = statuses.get((x.account_id, x.region))
            if current is None:
                continue
            status = self.status_for(x, current)
            if status == current:
                continue
            log.warning(
                "account %s in %s: %s -> %s (bounce rate %.2f%%, complaint rate %.3f%% of %d recipients)",
                x.account_id,
                x.region,
                current,
                status,
                100 * x.bounce_rate,
                100 * x.complaint_rate,
                x.sends,
            )
            await self.store.set_enforcement(
                s, x.account_id, x.region, status, sending_enabled=False if status == SHUTDOWN else None
            )

    # -- resets -----------------------------------------------------------------------------------

    async def reinstate(self, account_id: str, region: str | None = None) -> list[str]:
        """The operator lifts enforcement: HEALTHY, sending enabled, rates started afresh, in ``region``
        or every region the account uses. The regions changed."""
        async with self.db.write() as s:
            if await s.get(Account, account_id) is None:
                raise AccountNotFound(account_id)
            rows = await s.scalars(
                sa.select(AccountRegion.region).where(AccountRegion.account_id == account_id)
            )
            regions = [r for r in rows if region is None or r == region]
            now = utcnow()
            # Counters and rates first, the account's row last: the order the dispatcher locks them in
            # (PostgreSQL), so that a reinstatement and a dispatch never wait for each other in a cycle.
            for r in regions:
                await self.store.reset(s, (account_id, r, ACCOUNT), now, [RATE_SPAN])
            for r in regions:
                await self.store.set_enforcement(s, account_id, r, HEALTHY, sending_enabled=True)
        return regions

    async def fresh_start(
        self, s: AsyncSession, account_id: str, region: str, name: str, when: dt.datetime
    ) -> None:
        """A configuration set's sending was re-enabled: SES resets its reputation metrics (LastFreshStart).
        Runs in the transaction that re-enables it."""
        await self.store.reset(s, (account_id, region, name), when, [RATE_SPAN])

    # -- reading ----------------------------------------------------------------------------------

    async def statistics(self, account_id: str, region: str) -> list[DataPoint]:
        """Hard bounces, complaints and rejects per 15-minute period over the last two weeks."""
        first = int(time.time()) // STATS_SPAN - STATS_BUCKETS
        async with self.db.read() as s:
            rows = await self.store.buckets(s, account_id, region, ACCOUNT, STATS_SPAN, first)
        return [
            DataPoint(dt.datetime.fromtimestamp(b * STATS_SPAN, dt.UTC), c.bounces, c.complaints, c.rejects)
            for b, c in reversed(rows)
        ]

    async def current(self) -> list[dict[str, Any]]:
        """Every account's and metered configuration set's rates, as last computed (for ``/metrics``).
        A set appears while it exists and has ReputationMetricsEnabled."""
        async with self.db.read() as s:
            rows = await self.store.all_rates(s)
            sets = await self.store.set_options(
                s, ((r.account_id, r.region, r.scope) for r in rows if r.scope)
            )
        out = []
        for r in rows:
            if r.scope:
                options = sets.get((r.account_id, r.region, r.scope))
                if options is None or not _metered(options):
                    continue
            out.append(
                {
                    "AccountId": r.account_id,
                    "Region": r.region,
                    "ConfigurationSet": r.scope or None,
                    "Sends": r.sends,
                    "Bounces": r.bounces,
                    "Complaints": r.complaints,
                    "BounceRate": r.bounce_rate,
                    "ComplaintRate": r.complaint_rate,
                    "ResetAt": r.reset_at.isoformat() if r.reset_at else None,
                }
            )
        return out


def _increments(
    mine: list[Dispatched],
    addresses: dict[int, list[str]],
    verified: set[Scope],
    metered: set[Scope],
    resets: dict[Scope, dt.datetime],
    tenants: dict[tuple[str, str, str], TenantScope] | None = None,
) -> dict[Key, Counts]:
    """What the records add: to GetSendStatistics' counters everything that happened, to the rates'
    counters what SES's rules count (module docstring), for the account, its metered set and the
    tenant the mail was sent as."""
    increments: dict[Key, Counts] = {}

    def add(key: Key) -> Counts:
        return increments.setdefault(key, Counts())

    for r in mine:
        found = addresses[r.id]
        when = int(r.created_at.timestamp()) // STATS_SPAN
        stats = (r.account_id, r.region, ACCOUNT, STATS_SPAN, when)
        if r.event_type == "Bounce" and r.detail.get("bounceType") == "Permanent":
            add(stats).bounces += len(found)
        elif r.event_type == "Complaint":
            add(stats).complaints += len(found)
        elif r.event_type == "Reject":
            add(stats).rejects += 1
        counted = [
            a
            for a in found
            if not _is_simulator(a) and not any((r.account_id, r.region, n) in verified for n in _names(a))
        ]
        subtype = (
            r.detail.get("bounceSubType") if r.event_type == "Bounce" else r.detail.get("complaintSubType")
        )
        # Mail SES itself held back (a suppression list, an unsubscribed contact) says nothing of the
        # sender's list hygiene.
        if (
            not counted
            or subtype in SUPPRESSED_BY_LIST
            or subtype == UNSUBSCRIBED
            or r.event_type == "Reject"
        ):
            continue
        if r.event_type == "Bounce" and r.detail.get("bounceType") != "Permanent":
            continue
        scopes = [ACCOUNT]
        if r.configuration_set and (r.account_id, r.region, r.configuration_set) in metered:
            scopes.append(r.configuration_set)
        tenant = (tenants or {}).get((r.account_id, r.region, r.tenant or ""))
        if tenant is not None and r.sent_at >= tenant.created_at:
            scopes.append(tenant.scope)
        hour = int(r.sent_at.timestamp()) // RATE_SPAN
        for scope in scopes:
            reset = resets.get((r.account_id, r.region, scope))
            if reset is not None and r.sent_at < reset:
                continue  # mail from before the scope's fresh start
            c = add((r.account_id, r.region, scope, RATE_SPAN, hour))
            if r.event_type == "Send":
                c.sends += len(counted)
            elif r.event_type == "Bounce":
                c.bounces += len(counted)
            else:
                c.complaints += len(counted)
    return increments


def _addresses(r: Dispatched, recipients: dict[str, list[str]]) -> list[str]:
    """The recipients a record is about: a Send's envelope recipients, a Bounce's bounced ones, a
    Complaint's complainants."""
    if r.event_type == "Send":
        return recipients.get(r.message_id, [])
    member = "bouncedRecipients" if r.event_type == "Bounce" else "complainedRecipients"
    return [
        x["emailAddress"] for x in r.detail.get(member) or [] if isinstance(x, dict) and "emailAddress" in x
    ]


def _metered(options: dict[str, Any]) -> bool:
    """Whether a configuration set has reputation metrics (ReputationOptions.ReputationMetricsEnabled)."""
    return bool((options.get("ReputationOptions") or {}).get("ReputationMetricsEnabled"))


def _is_simulator(address: str) -> bool:
    return address.rpartition("@")[2].lower() == SIMULATOR_DOMAIN


def _names(address: str) -> list[str]:
    """The identities that would make ``address`` a verified recipient: itself, its domain, and the
    domain's parents (a verified domain covers its subdomains)."""
    local, _, domain = normalize(address).rpartition("@")
    labels = domain.split(".")
    return [f"{local}@{domain}"] + [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
