"""VDM Advisor: ListRecommendations from DNS checks of the account's verified domain identities, and
from the bounce and complaint rates of each identity's mail (VDM's counters, domain/vdm.py).

Each domain is checked through the configured resolver for what mailbox providers look at (reference
§12.5, §4.4, §4.5): an SPF record at the MAIL FROM domain (the custom one when it is set up, else the
domain itself, which is Sesame's default envelope sender) that does not pass everyone, DKIM signing
on and its records found, a DMARC policy (RFC 7489 §6.6.3: at the domain or its organizational
parent) that is more than ``p=none``, and a BIMI record. What a check finds is stored: an issue is
OPEN while found, FIXED once a later check no longer finds it, and forgotten 30 days after that.

Checks run per account and region: by the background pass when the last one is older than
``vdm.recommendations_interval``, or by a ListRecommendations call that finds it so; never per call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sesame.config import Settings
from sesame.domain.authorization import identity_arn
from sesame.domain.vdm import Vdm
from sesame.errors import InvalidRequest
from sesame.resolver import Lookup, LookupTemporaryError
from sesame.storage.db import Database
from sesame.storage.models import Identity, VdmCheck, VdmRecommendation, utcnow

OPEN, FIXED = "OPEN", "FIXED"
LOW, HIGH = "LOW", "HIGH"
TYPES = ("DKIM", "DMARC", "SPF", "BIMI", "COMPLAINT", "BOUNCE", "FEEDBACK_3P", "IP_LISTING")
#: Filters alone, or STATUS with IMPACT or TYPE (the model's ListRecommendationsRequest.Filter).
_FILTER_PAIRS = ({"STATUS", "IMPACT"}, {"STATUS", "TYPE"})
_VALUES = {"TYPE": set(TYPES), "IMPACT": {LOW, HIGH}, "STATUS": {OPEN, FIXED}}
FORGET_FIXED_AFTER = dt.timedelta(days=30)
MAX_PAGE = 100
#: Domains checked at once.
CONCURRENCY = 8
#: The window the reputation rates are judged over, and their thresholds (reference §3.5: SES reviews
#: an account at a 5% bounce or 0.1% complaint rate, and may pause it at 10% or 0.5%).
RATE_WINDOW_DAYS = 14
BOUNCE_REVIEW, BOUNCE_PAUSE = 0.05, 0.10
COMPLAINT_REVIEW, COMPLAINT_PAUSE = 0.001, 0.005


class InvalidFilter(InvalidRequest):
    pass


@dataclass(frozen=True)
class Finding:
    key: str  # which issue: SPF1, DMARC2 … (SES's Description is such a disambiguator)
    type: str
    impact: str
    description: str


async def _txt(lookup: Lookup, name: str, prefix: str) -> list[str]:
    return [t for t in await lookup.txt(name) if t.strip().lower().startswith(prefix)]


async def spf(lookup: Lookup, domain: str) -> list[Finding]:
    records = await _txt(lookup, domain, "v=spf1")
    if not records:
        return [Finding("SPF1", "SPF", HIGH, f"No SPF record is published at {domain}.")]
    if len(records) > 1:
        return [
            Finding("SPF2", "SPF", HIGH, f"{domain} publishes {len(records)} SPF records; receivers "
                    "treat that as a permanent error (RFC 7208 §4.5).")
        ]  # fmt: skip
    terms = records[0].lower().split()[1:]
    all_term = next((t for t in terms if t.lstrip("+-~?") == "all"), None)
    if all_term in ("all", "+all"):
        return [Finding("SPF3", "SPF", HIGH, f"The SPF record of {domain} ends in {all_term}: it lets any "
                        "host send as the domain.")]  # fmt: skip
    if all_term == "?all" or (all_term is None and not any(t.startswith("redirect=") for t in terms)):
        return [Finding("SPF4", "SPF", LOW, f"The SPF record of {domain} does not end in -all or ~all: "
                        "mail from other hosts is not marked as failing.")]  # fmt: skip
    return []


async def dkim(lookup: Lookup, row: Identity) -> list[Finding]:
    domain = row.identity
    if not row.dkim_signing_enabled:
        return [Finding("DKIM1", "DKIM", HIGH, f"DKIM signing is turned off for {domain}.")]
    if row.dkim_status != "SUCCESS":
        return [Finding("DKIM2", "DKIM", HIGH, f"The DKIM records of {domain} are not verified "
                        f"(status {row.dkim_status}).")]  # fmt: skip
    for token in row.dkim_tokens or []:
        if not any("p=" in t for t in await lookup.txt(f"{token}._domainkey.{domain}")):
            return [Finding("DKIM3", "DKIM", HIGH, f"The DKIM record {token}._domainkey.{domain} is no "
                            "longer published.")]  # fmt: skip
    return []


def _tags(record: str) -> dict[str, str]:
    out = {}
    for part in record.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            out[name.strip().lower()] = value.strip().lower()
    return out


async def dmarc(lookup: Lookup, domain: str) -> list[Finding]:
    labels = domain.split(".")
    for i in range(max(1, len(labels) - 1)):  # the domain, then its parents up to two labels
        at = ".".join(labels[i:])
        records = await _txt(lookup, f"_dmarc.{at}", "v=dmarc1")
        if not records:
            continue
        if len(records) > 1:
            return [Finding("DMARC3", "DMARC", HIGH, f"_dmarc.{at} publishes {len(records)} DMARC records; "
                            "receivers ignore them all (RFC 7489 §6.6.3).")]  # fmt: skip
        tags = _tags(records[0])
        policy = tags.get("sp", tags.get("p")) if i else tags.get("p")
        if policy not in ("none", "quarantine", "reject"):
            return [Finding("DMARC1", "DMARC", HIGH, f"The DMARC record at _dmarc.{at} has no valid p= tag.")]
        if policy == "none":
            return [Finding("DMARC2", "DMARC", LOW, f"The DMARC policy for {domain} is p=none: mail that "
                            "fails authentication is still delivered.")]  # fmt: skip
        return []
    return [Finding("DMARC1", "DMARC", HIGH, f"No DMARC policy is published at _dmarc.{domain}.")]


async def bimi(lookup: Lookup, domain: str) -> list[Finding]:
    if await _txt(lookup, f"default._bimi.{domain}", "v=bimi1"):
        return []
    return [Finding("BIMI1", "BIMI", LOW, f"No BIMI record is published at default._bimi.{domain}.")]


async def check_domain(lookup: Lookup, row: Identity) -> list[Finding]:
    """Every finding about one domain identity; LookupTemporaryError if the DNS could not answer."""
    mail_from = row.mail_from_domain if row.mail_from_domain and row.mail_from_status == "SUCCESS" else None
    parts = await asyncio.gather(
        spf(lookup, mail_from or row.identity),
        dkim(lookup, row),
        dmarc(lookup, row.identity),
        bimi(lookup, row.identity),
    )
    return [f for part in parts for f in part]


def rates(identity: str, totals: dict[str, int], min_volume: int) -> list[Finding]:
    """BOUNCE and COMPLAINT findings from an identity's VDM counts: hard bounces (not the suppression
    list's) per send, complaints per delivery to providers that report them."""
    out = []
    window = f"over the last {RATE_WINDOW_DAYS} days"
    sent, bounced = totals.get("SEND", 0), totals.get("PERMANENT_BOUNCE", 0)
    if sent >= max(1, min_volume) and bounced / sent >= BOUNCE_REVIEW:
        rate = bounced / sent
        text = (
            f"{identity} had a bounce rate of {rate:.1%} {window} ({bounced} hard bounces of {sent} sent);"
            " remove addresses that do not exist."
        )
        out.append(Finding("BOUNCE1", "BOUNCE", HIGH if rate >= BOUNCE_PAUSE else LOW, text))
    reported, complaints = totals.get("DELIVERY_COMPLAINT", 0), totals.get("COMPLAINT", 0)
    if reported >= max(1, min_volume) and complaints / reported >= COMPLAINT_REVIEW:
        rate = complaints / reported
        text = (
            f"{identity} had a complaint rate of {rate:.2%} {window} ({complaints} complaints of {reported}"
            " delivered to providers that report them); send only to recipients who asked for the mail."
        )
        out.append(Finding("COMPLAINT1", "COMPLAINT", HIGH if rate >= COMPLAINT_PAUSE else LOW, text))
    return out


class Advisor:
    def __init__(self, db: Database, settings: Settings, lookup: Lookup, vdm: Vdm) -> None:
        self.db = db
        self.settings = settings
        self.lookup = lookup
        self.vdm = vdm

    async def recommendations(
        self,
        account_id: str,
        region: str,
        filters: dict[str, str] | None = None,
        page_size: int | None = None,
        next_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        filters = dict(filters or {})
        _validate(filters, page_size)
        offset = _offset(next_token)
        await self.check_if_due(account_id, region)
        r = VdmRecommendation
        q = sa.select(r).where(r.account_id == account_id, r.region == region)
        columns = {"TYPE": r.type, "IMPACT": r.impact, "STATUS": r.status, "RESOURCE_ARN": r.resource_arn}
        for name, value in filters.items():
            q = q.where(columns[name] == value)
        size = page_size or MAX_PAGE
        q = q.order_by(r.created_at, r.resource_arn, r.key).offset(offset).limit(size + 1)
        async with self.db.read() as s:
            rows = list(await s.scalars(q))
        token = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if len(rows) > size else None
        return [_shape(row) for row in rows[:size]], token

    async def check_if_due(self, account_id: str, region: str) -> None:
        async with self.db.read() as s:
            last = await s.scalar(
                sa.select(VdmCheck.checked_at).where(
                    VdmCheck.account_id == account_id, VdmCheck.region == region
                )
            )
        interval = dt.timedelta(seconds=self.settings.vdm.recommendations_interval)
        if last is None or utcnow() - last >= interval:
            await self.check(account_id, region)

    async def check(self, account_id: str, region: str) -> None:
        """Check the account's verified domains now and record what was found."""
        async with self.db.read() as s:
            domains = list(
                await s.scalars(
                    sa.select(Identity).where(
                        Identity.account_id == account_id,
                        Identity.region == region,
                        Identity.kind == "DOMAIN",
                        Identity.verification_status == "SUCCESS",
                    )
                )
            )
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(row: Identity) -> list[Finding] | None:
            async with gate:
                try:
                    return await check_domain(self.lookup, row)
                except LookupTemporaryError:
                    return None  # unknown now: what was found before stands

        results = await asyncio.gather(*(one(row) for row in domains))
        found: dict[str, list[Finding] | None] = {
            identity_arn(region, account_id, row.identity): f for row, f in zip(domains, results, strict=True)
        }
        since = utcnow().date() - dt.timedelta(days=RATE_WINDOW_DAYS - 1)
        for identity, totals in (await self.vdm.identity_totals(account_id, region, since)).items():
            arn = identity_arn(region, account_id, identity)
            if (dns_findings := found.get(arn, [])) is not None:
                found[arn] = dns_findings + rates(
                    identity, totals, self.settings.vdm.recommendation_min_volume
                )
        await self._record(account_id, region, found)

    async def _record(self, account_id: str, region: str, found: dict[str, list[Finding] | None]) -> None:
        now = utcnow()
        r = VdmRecommendation
        async with self.db.write() as s:
            rows = {
                (row.resource_arn, row.key): row
                for row in await s.scalars(sa.select(r).where(r.account_id == account_id, r.region == region))
            }
            for arn, findings in found.items():
                for f in findings or []:
                    row = rows.pop((arn, f.key), None)
                    if row is None:
                        s.add(
                            VdmRecommendation(
                                account_id=account_id,
                                region=region,
                                resource_arn=arn,
                                key=f.key,
                                type=f.type,
                                description=f.description,
                                status=OPEN,
                                impact=f.impact,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                    elif row.status != OPEN or row.description != f.description:
                        row.status, row.description, row.impact, row.updated_at = (
                            OPEN,
                            f.description,
                            f.impact,
                            now,
                        )
            for (arn, _), row in rows.items():
                if found.get(arn, []) is None:
                    continue  # this domain could not be checked now
                if row.status == OPEN:  # no longer found (or the identity is gone)
                    row.status, row.updated_at = FIXED, now
                elif now - row.updated_at > FORGET_FIXED_AFTER:
                    await s.delete(row)
            check = await s.get(VdmCheck, (account_id, region))
            if check is None:
                s.add(VdmCheck(account_id=account_id, region=region, checked_at=now))
            else:
                check.checked_at = now

    async def check_due(self, limit: int = 20) -> int:
        """One round of the background pass: the accounts with domain identities whose last check is
        older than the interval (several nodes may both check one: the result is the same)."""
        cutoff = utcnow() - dt.timedelta(seconds=self.settings.vdm.recommendations_interval)
        i, c = Identity, VdmCheck
        q = (
            sa.select(i.account_id, i.region)
            .distinct()
            .outerjoin(c, sa.and_(c.account_id == i.account_id, c.region == i.region))
            .where(i.kind == "DOMAIN", i.verification_status == "SUCCESS",
                   sa.or_(c.checked_at.is_(None), c.checked_at < cutoff))
            .limit(limit)
        )  # fmt: skip
        async with self.db.read() as s:
            due = (await s.execute(q)).all()
        for account_id, region in due:
            await self.check(account_id, region)
        return len(due)


def _validate(filters: dict[str, str], page_size: int | None) -> None:
    if page_size is not None and not 1 <= page_size <= MAX_PAGE:
        raise InvalidFilter(f"PageSize must be between 1 and {MAX_PAGE}.")
    if len(filters) > 1 and set(filters) not in _FILTER_PAIRS:
        raise InvalidFilter("Filter takes one key, or STATUS with IMPACT or with TYPE.")
    for name, value in filters.items():
        if name in _VALUES and value not in _VALUES[name]:
            raise InvalidFilter(f"{value} is not a valid value for the {name} filter.")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(token.encode()).decode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidFilter("The NextToken is not valid.") from None


def _shape(row: VdmRecommendation) -> dict[str, Any]:
    return {
        "ResourceArn": row.resource_arn,
        "Type": row.type,
        "Description": row.description,
        "Status": row.status,
        "CreatedTimestamp": row.created_at,
        "LastUpdatedTimestamp": row.updated_at,
        "Impact": row.impact,
    }
