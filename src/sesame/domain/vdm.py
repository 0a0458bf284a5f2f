"""Virtual Deliverability Manager metrics: counted from the event records as they are dispatched, read
by BatchGetMetricData and GetDomainStatisticsReport (project reference §12.5, the sesv2 model).

``Vdm.observe`` is an outbox observer (events/outbox.py): it sees each record once, inside the dispatch
transaction, and adds to the daily counters of ``vdm_counters``, keyed by everything a query may filter
on (email identity, configuration set, recipient ISP, sending domain). A query sums counters; nothing
reads the events table per call.

What counts, as the model defines each metric: only the account's own mail (not verification emails
or auto-replies), only messages with one recipient, never mail to the mailbox simulator. SEND counts
every accepted message (suppressed recipients too); PERMANENT_BOUNCE and COMPLAINT leave out those
made by the account's suppression list; TRANSIENT_BOUNCE counts every other bounce (Transient,
Undetermined); OPEN and CLICK count a message's first open or click only. DELIVERY_OPEN and
DELIVERY_CLICK count deliveries of messages whose configuration set tracks opens or clicks (an
enabled event destination matching OPEN or CLICK, as domain/tracking.py decides), and
DELIVERY_COMPLAINT is DELIVERY to the providers with a feedback loop (domain/isps.py), decided when a
query runs so that it follows the ISP a domain turned out to have.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.domain import isps
from sesame.domain.event_destinations import enabled
from sesame.domain.sending import is_simulator
from sesame.domain.suppression import UNSUBSCRIBED
from sesame.errors import InvalidRequest, NotFound
from sesame.events.outbox import USER_OPERATIONS, Dispatched
from sesame.resolver import Lookup, LookupTemporaryError
from sesame.storage.db import Database
from sesame.storage.models import (
    AccountRegion,
    ConfigurationSet,
    DeliveryEvent,
    Identity,
    QueueEntry,
    VdmCounter,
    VdmIspDomain,
    table,
    utcnow,
)
from sesame.storage.upserts import upsert

log = logging.getLogger(__name__)

METRICS = (
    "SEND", "COMPLAINT", "PERMANENT_BOUNCE", "TRANSIENT_BOUNCE", "OPEN", "CLICK", "DELIVERY",
    "DELIVERY_OPEN", "DELIVERY_CLICK", "DELIVERY_COMPLAINT",
)  # fmt: skip
_COLUMNS = {
    "EMAIL_IDENTITY": "email_identity",
    "CONFIGURATION_SET": "configuration_set",
    "ISP": "isp",
    "TENANT_NAME": "tenant",
}
_COUNTED = {"Send", "Delivery", "Bounce", "Complaint", "Open", "Click"}
ON_SUPPRESSION_LIST = "OnAccountSuppressionList"
#: Bounces and complaints of addresses on a suppression list (the account's or a tenant's) are not outcomes.
ON_SUPPRESSION_LISTS = frozenset({ON_SUPPRESSION_LIST, "OnTenantSuppressionList"})
#: GetDomainStatisticsReport covers at most this many days (its model's EndDate documentation).
MAX_REPORT_DAYS = 30
#: The longest range a metric query may span: its answer has a value for every day.
MAX_QUERY_DAYS = 3660
#: A provider found through MX is looked up again after this long (a domain may move).
ISP_TTL = dt.timedelta(days=7)


class DomainNotFound(NotFound):
    pass


@dataclass(frozen=True)
class Query:
    """One BatchGetMetricData query, as the model spells it."""

    id: str
    metric: str
    dimensions: dict[str, str]
    start: dt.datetime
    end: dt.datetime


def days(start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """The UTC days from ``start``'s through ``end``'s."""
    first, last = start.astimezone(dt.UTC).date(), end.astimezone(dt.UTC).date()
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _candidates(address: str) -> list[str]:
    """The identities that could cover ``address``, most specific first (as sending checks them)."""
    local, _, domain = address.rpartition("@")
    domain = domain.lower()
    names = [f"{local}@{domain}"] if local else []
    if "+" in local:
        names.append(f"{local.split('+', 1)[0]}@{domain}")
    labels = domain.split(".")
    return names + [".".join(labels[i:]) for i in range(len(labels) - 1)]


_KEY = ["account_id", "region", "day", "metric", "email_identity", "configuration_set", "isp",
        "recipient_domain", "from_domain", "tenant"]  # fmt: skip


class Vdm:
    def __init__(self, db: Database, lookup: Lookup) -> None:
        self.db = db
        self.lookup = lookup
        self._add = upsert(db.is_sqlite, VdmCounter, _KEY, "count")
        self._pending = upsert(db.is_sqlite, VdmIspDomain, ["domain"])

    # -- counting (the outbox observer) -----------------------------------------------------------

    async def observe(self, s: AsyncSession, records: list[Dispatched]) -> None:
        """Count ``records``. In a savepoint of the dispatch transaction: a failure here loses these
        counts (logged), never the publishing of the records."""
        try:
            async with s.begin_nested():
                await self._count(s, records)
        except Exception:
            log.exception("VDM counting failed for %d records", len(records))

    async def _count(self, s: AsyncSession, records: list[Dispatched]) -> None:
        mine = [r for r in records if r.event_type in _COUNTED and r.operation in USER_OPERATIONS]
        if not mine:
            return
        ids = sorted({r.message_id for r in mine})
        recipients: dict[str, list[str]] = defaultdict(list)
        rows = await s.execute(
            sa.select(QueueEntry.message_id, QueueEntry.recipient).where(QueueEntry.message_id.in_(ids))
        )
        for message_id, recipient in rows:
            recipients[message_id].append(recipient)
        # The model leaves out mail to more than one recipient and mail to the simulator.
        single = {m: r[0] for m, r in recipients.items() if len(r) == 1 and not is_simulator(r[0])}
        mine = [r for r in mine if r.message_id in single]
        if not mine:
            return
        firsts = await self._first_engagements(s, [r for r in mine if r.event_type in ("Open", "Click")])
        tracked = await self._tracked_sets(s, mine)
        identities = await self._identities(s, mine)
        domains = {single[r.message_id].rpartition("@")[2].lower() for r in mine}
        known = await self._known_isps(s, domains)
        increments: dict[tuple[Any, ...], int] = defaultdict(int)
        for r in mine:
            for metric in self._metrics(r, firsts, tracked):
                domain = single[r.message_id].rpartition("@")[2].lower()
                isp = known.get(domain, "")
                key = (
                    r.account_id,
                    r.region,
                    r.created_at.astimezone(dt.UTC).date(),
                    metric,
                    identities[(r.account_id, r.region, r.from_address)],
                    r.configuration_set or "",
                    isp,
                    "" if isp else domain,
                    r.from_address.rpartition("@")[2].lower(),
                    r.tenant or "",
                )
                increments[key] += 1
        if increments:
            # In key order: two dispatchers (PostgreSQL) adding to the same counters lock them in the
            # same order, so neither waits for the other in a cycle.
            counts = [{**dict(zip(_KEY, k, strict=True)), "count": increments[k]} for k in sorted(increments)]
            await s.execute(self._add, counts)
        pending = sorted({k[7] for k in increments if k[7]})
        if pending:
            await s.execute(self._pending, [{"domain": d, "isp": None, "checked_at": None} for d in pending])

    @staticmethod
    def _metrics(r: Dispatched, firsts: set[int], tracked: dict[tuple[str, str, str], set[str]]) -> list[str]:
        d = r.detail
        if r.event_type == "Send":
            return ["SEND"]
        if r.event_type == "Delivery":
            wanted = tracked.get((r.account_id, r.region, r.configuration_set or ""), set())
            return ["DELIVERY", *(f"DELIVERY_{t.upper()}" for t in sorted(wanted))]
        if r.event_type == "Bounce":
            if d.get("bounceType") != "Permanent":
                return ["TRANSIENT_BOUNCE"]
            listed = d.get("bounceSubType") in ON_SUPPRESSION_LISTS or d.get("bounceSubType") == UNSUBSCRIBED
            return [] if listed else ["PERMANENT_BOUNCE"]
        if r.event_type == "Complaint":
            return [] if d.get("complaintSubType") in ON_SUPPRESSION_LISTS else ["COMPLAINT"]
        return [r.event_type.upper()] if r.id in firsts else []

    @staticmethod
    async def _first_engagements(s: AsyncSession, records: list[Dispatched]) -> set[int]:
        """The ids of the records that are their message's first Open (or first Click): the events
        table is asked for earlier ones, which holds whichever process dispatches them."""
        if not records:
            return set()
        first: dict[tuple[str, str], int] = {}
        for r in sorted(records, key=lambda r: r.id):
            first.setdefault((r.message_id, r.event_type), r.id)
        earlier = await s.execute(
            sa.select(DeliveryEvent.message_id, DeliveryEvent.event_type, sa.func.min(DeliveryEvent.id))
            .where(
                DeliveryEvent.message_id.in_(sorted({m for m, _ in first})),
                DeliveryEvent.event_type.in_(["Open", "Click"]),
            )
            .group_by(DeliveryEvent.message_id, DeliveryEvent.event_type)
        )
        lowest = {(m, t): n for m, t, n in earlier}
        return {i for k, i in first.items() if lowest.get(k, i) >= i}

    @staticmethod
    async def _tracked_sets(
        s: AsyncSession, records: list[Dispatched]
    ) -> dict[tuple[str, str, str], set[str]]:
        """Per configuration set of these records, which of "open" and "click" it tracks."""
        keys = {(r.account_id, r.region, r.configuration_set) for r in records if r.configuration_set}
        if not keys:
            return {}
        found = await s.execute(
            sa.select(ConfigurationSet.account_id, ConfigurationSet.region, ConfigurationSet.name,
                      ConfigurationSet.options)
            .where(sa.tuple_(ConfigurationSet.account_id, ConfigurationSet.region, ConfigurationSet.name)
                   .in_(sorted(keys)))
        )  # fmt: skip
        out: dict[tuple[str, str, str], set[str]] = {}
        for a, region, name, options in found:
            types = {t for d in enabled(options or {}) for t in d.event_types}
            out[(a, region, name)] = {t.lower() for t in ("Open", "Click") if t in types}
        return out

    @staticmethod
    async def _identities(s: AsyncSession, records: list[Dispatched]) -> dict[tuple[str, str, str], str]:
        """The identity each sender used: its most specific verified identity, else its domain."""
        wanted = {(r.account_id, r.region, r.from_address): _candidates(r.from_address) for r in records}
        keys = sorted({(a, region, c) for (a, region, _), cs in wanted.items() for c in cs})
        rows = await s.execute(
            sa.select(Identity.account_id, Identity.region, Identity.identity).where(
                sa.tuple_(Identity.account_id, Identity.region, Identity.identity).in_(keys),
                Identity.verification_status == "SUCCESS",
            )
        )
        have = {tuple(r) for r in rows}
        out = {}
        for (a, region, address), names in wanted.items():
            found = next((n for n in names if (a, region, n) in have), None)
            out[(a, region, address)] = found or address.rpartition("@")[2].lower()
        return out

    @staticmethod
    async def _known_isps(s: AsyncSession, domains: set[str]) -> dict[str, str]:
        out = {d: isp for d in domains if (isp := isps.by_domain(d))}
        rest = sorted(domains - out.keys())
        if rest:
            rows = await s.execute(
                sa.select(VdmIspDomain.domain, VdmIspDomain.isp).where(
                    VdmIspDomain.domain.in_(rest), VdmIspDomain.isp.is_not(None)
                )
            )
            out.update({d: isp for d, isp in rows if isp})
        return out

    # -- recipient providers ----------------------------------------------------------------------

    async def isp(self, domain: str) -> str:
        """A recipient domain's provider: by name, as found before, or through its MX now."""
        domain = domain.lower()
        if found := isps.by_domain(domain):
            return found
        async with self.db.read() as s:
            stored = await s.scalar(sa.select(VdmIspDomain.isp).where(VdmIspDomain.domain == domain))
        if stored:
            return stored
        return await self._classify(domain) or isps.OTHER

    async def _classify(self, domain: str) -> str | None:
        try:
            hosts = [h for _, h in await self.lookup.mx(domain)]
        except (LookupTemporaryError, ValueError):
            return None  # asked again by a later pass
        isp = isps.by_mx(hosts)
        values = {"isp": isp, "checked_at": utcnow()}
        async with self.db.write() as s:
            if await s.get(VdmIspDomain, domain) is None:
                s.add(VdmIspDomain(domain=domain, **values))
            else:
                await s.execute(sa.update(VdmIspDomain).where(VdmIspDomain.domain == domain).values(**values))
        return isp

    async def classify_pending(self, limit: int = 100) -> int:
        """One round of the background pass: look up the MX of recipient domains whose provider is not
        known yet (or was found long ago)."""
        stale = utcnow() - ISP_TTL
        async with self.db.read() as s:
            names = list(
                await s.scalars(
                    sa.select(VdmIspDomain.domain)
                    .where(sa.or_(VdmIspDomain.checked_at.is_(None), VdmIspDomain.checked_at < stale))
                    .order_by(VdmIspDomain.checked_at.is_not(None), VdmIspDomain.checked_at)
                    .limit(limit)
                )
            )
        for name in names:
            await self._classify(name)
        return len(names)

    # -- queries ----------------------------------------------------------------------------------

    async def enabled(self, account_id: str, region: str) -> bool:
        async with self.db.read() as s:
            attributes = await s.scalar(
                sa.select(AccountRegion.vdm_attributes).where(
                    AccountRegion.account_id == account_id, AccountRegion.region == region
                )
            )
        return isinstance(attributes, dict) and attributes.get("VdmEnabled") == "ENABLED"

    async def batch(
        self, account_id: str, region: str, queries: list[Query]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """BatchGetMetricData: (Results, Errors). A query that fails is an error of its own; VDM not
        enabled for the account (PutAccountVdmAttributes) denies every query, as SES's dashboard
        and its metrics need it."""
        ids = [q.id for q in queries]
        if len(set(ids)) != len(ids):
            raise InvalidRequest("Each query must have an Id of its own.")
        for q in queries:
            if q.end < q.start:
                raise InvalidRequest(f"Query {q.id}: EndDate must not be before StartDate.")
            if q.end - q.start > dt.timedelta(days=MAX_QUERY_DAYS):
                raise InvalidRequest(f"Query {q.id}: a query spans at most {MAX_QUERY_DAYS} days.")
        if not await self.enabled(account_id, region):
            message = "Virtual Deliverability Manager is not enabled for this account."
            return [], [{"Id": q.id, "Code": "ACCESS_DENIED", "Message": message} for q in queries]
        results, errors = [], []
        for q in queries:
            try:
                values = await self.metric(account_id, region, q)
            except Exception:
                log.exception("VDM query %s failed", q.id)
                errors.append(
                    {"Id": q.id, "Code": "INTERNAL_FAILURE", "Message": "The query could not be run."}
                )
                continue
            results.append(
                {"Id": q.id, "Timestamps": [t for t, _ in values], "Values": [n for _, n in values]}
            )
        return results, errors

    async def metric(self, account_id: str, region: str, q: Query) -> list[tuple[dt.datetime, int]]:
        """One query's daily values, every day of its range (zero where nothing happened)."""
        if q.end < q.start:
            raise InvalidRequest("EndDate must not be before StartDate.")
        c, d = table(VdmCounter), table(VdmIspDomain)
        isp = sa.case((c.c.isp != "", c.c.isp), else_=sa.func.coalesce(d.c.isp, isps.OTHER))
        span = days(q.start, q.end)
        metric = "DELIVERY" if q.metric == "DELIVERY_COMPLAINT" else q.metric
        where = [
            c.c.account_id == account_id,
            c.c.region == region,
            c.c.metric == metric,
            c.c.day.between(span[0], span[-1]),
        ]
        if q.metric == "DELIVERY_COMPLAINT":
            where.append(isp.in_(sorted(isps.FEEDBACK_LOOPS)))
        for name, value in q.dimensions.items():
            if name == "ISP":
                where.append(isp == isps.canonical(value))
            elif name == "EMAIL_IDENTITY":
                where.append(c.c.email_identity == (value if "@" in value else value.lower()))
            else:
                where.append(c.c[_COLUMNS[name]] == value)
        stmt = (
            sa.select(c.c.day, sa.func.sum(c.c.count))
            .select_from(c.outerjoin(d, sa.and_(c.c.isp == "", d.c.domain == c.c.recipient_domain)))
            .where(*where)
            .group_by(c.c.day)
        )
        async with self.db.read() as s:
            found = {_day(day): int(n) for day, n in await s.execute(stmt)}
        return [(midnight(day), found.get(day, 0)) for day in span]

    async def identity_totals(
        self, account_id: str, region: str, since: dt.date
    ) -> dict[str, dict[str, int]]:
        """Per email identity, its SEND, PERMANENT_BOUNCE, DELIVERY, COMPLAINT and DELIVERY_COMPLAINT
        since ``since`` (the Advisor's reputation rates)."""
        c, d = table(VdmCounter), table(VdmIspDomain)
        isp = sa.case((c.c.isp != "", c.c.isp), else_=sa.func.coalesce(d.c.isp, isps.OTHER))
        fbl = sa.case((isp.in_(sorted(isps.FEEDBACK_LOOPS)), c.c.count), else_=0)
        stmt = (
            sa.select(c.c.email_identity, c.c.metric, sa.func.sum(c.c.count), sa.func.sum(fbl))
            .select_from(c.outerjoin(d, sa.and_(c.c.isp == "", d.c.domain == c.c.recipient_domain)))
            .where(
                c.c.account_id == account_id,
                c.c.region == region,
                c.c.day >= since,
                c.c.metric.in_(["SEND", "PERMANENT_BOUNCE", "DELIVERY", "COMPLAINT"]),
            )
            .group_by(c.c.email_identity, c.c.metric)
        )
        out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        async with self.db.read() as s:
            for identity, metric, n, with_loops in await s.execute(stmt):
                out[identity][metric] += int(n)
                if metric == "DELIVERY":
                    out[identity]["DELIVERY_COMPLAINT"] += int(with_loops)
        return out

    async def domain_statistics(
        self, account_id: str, region: str, domain: str, start: dt.datetime, end: dt.datetime
    ) -> dict[str, Any]:
        """GetDomainStatisticsReport. Sesame sees no inbox placement panel: a delivered message counts
        as in the inbox unless its recipient complained (marked it as spam), and the projections are
        the counts themselves, since every message is seen, not a sample."""
        domain = domain.lower().rstrip(".")
        if end < start:
            raise InvalidRequest("EndDate must not be before StartDate.")
        if end - start > dt.timedelta(days=MAX_REPORT_DAYS):
            raise InvalidRequest(f"EndDate must be at most {MAX_REPORT_DAYS} days after StartDate.")
        async with self.db.read() as s:
            exists = await s.get(Identity, (account_id, region, domain))
        if exists is None or exists.kind != "DOMAIN":
            raise DomainNotFound(f"Domain {domain} is not an email identity of this account.")
        c, d = table(VdmCounter), table(VdmIspDomain)
        isp = sa.case((c.c.isp != "", c.c.isp), else_=sa.func.coalesce(d.c.isp, isps.OTHER))
        span = days(start, end)
        stmt = (
            sa.select(c.c.day, isp, c.c.metric, sa.func.sum(c.c.count))
            .select_from(c.outerjoin(d, sa.and_(c.c.isp == "", d.c.domain == c.c.recipient_domain)))
            .where(
                c.c.account_id == account_id,
                c.c.region == region,
                c.c.from_domain == domain,
                c.c.day.between(span[0], span[-1]),
                c.c.metric.in_(["DELIVERY", "COMPLAINT", "OPEN", "DELIVERY_OPEN"]),
            )
            .group_by(c.c.day, isp, c.c.metric)
        )
        per_day: dict[dt.date, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        async with self.db.read() as s:
            for day, name, metric, n in await s.execute(stmt):
                per_day[_day(day)][name][metric] += int(n)
        overall: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        daily = []
        for day in span:
            for name, counts in per_day.get(day, {}).items():
                for metric, n in counts.items():
                    overall[name][metric] += n
            daily.append({"StartDate": midnight(day), **_placement(per_day.get(day, {}))})
        summary = _placement(overall)
        opens = sum(v["OPEN"] for v in overall.values())
        tracked = sum(v["DELIVERY_OPEN"] for v in overall.values())
        return {
            "OverallVolume": {
                "VolumeStatistics": summary["VolumeStatistics"],
                "ReadRatePercent": round(100.0 * opens / tracked, 2) if tracked else 0.0,
                "DomainIspPlacements": summary["DomainIspPlacements"],
            },
            "DailyVolumes": daily,
        }


def _placement(by_isp: dict[str, dict[str, int]]) -> dict[str, Any]:
    placements, inbox_total, spam_total = [], 0, 0
    for name in sorted(by_isp):
        counts = by_isp[name]
        spam = counts.get("COMPLAINT", 0)
        inbox = max(0, counts.get("DELIVERY", 0) - spam)
        if not inbox and not spam:
            continue
        inbox_total, spam_total = inbox_total + inbox, spam_total + spam
        placements.append(
            {
                "IspName": name,
                "InboxRawCount": inbox,
                "SpamRawCount": spam,
                "InboxPercentage": round(100.0 * inbox / (inbox + spam), 2),
                "SpamPercentage": round(100.0 * spam / (inbox + spam), 2),
            }
        )
    return {
        "VolumeStatistics": {
            "InboxRawCount": inbox_total,
            "SpamRawCount": spam_total,
            "ProjectedInbox": inbox_total,
            "ProjectedSpam": spam_total,
        },
        "DomainIspPlacements": placements,
    }


def _day(value: Any) -> dt.date:
    """A Date column's value (SQLite through aiosqlite may give the ISO string)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
