"""Accepting a message: SES's send-time checks, then a durable write of the message and its queue entries.

Checks that only read (sending switch, verified sender or sending authorization, sandbox recipients,
recipient count, suppression) run in the request. Checks that count (the per-second rate and the
24-hour quota, per recipient as SES counts them) run inside the write, so concurrent requests and
several nodes on one PostgreSQL cannot overshoot them.

The write is group-committed: concurrent sends hand their message to the process's writer
(storage/writer.py), which writes a batch of messages, queue entries, Send records and counter
increments in one transaction and one commit (one fsync), then answers every caller. A MessageId is
returned only after that commit. This module decides what to write and whether each message may be
sent; the SQL is storage's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.config import Settings
from sesame.domain.accounts import Accounts
from sesame.domain.addresses import bare_address
from sesame.domain.authorization import identity_arn, policy_allows
from sesame.domain.configuration_sets import (
    ConfigurationSetNotFound,
    ConfigurationSets,
    sending_enabled,
)
from sesame.domain.contact_lists import ListManagement
from sesame.domain.identities import DOMAIN, SUCCESS, Identities, normalize
from sesame.domain.suppression import Suppression, resolve
from sesame.domain.tracking import Plan, Tracking, plan
from sesame.storage.counters import CounterKey, SendCounters
from sesame.storage.db import Database
from sesame.storage.models import DeliveryEvent, Message, QueueEntry, utcnow
from sesame.storage.writer import Work, insert

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 50
REJECT_REASON = "Bad content"  # the only reason SES gives in a Reject record
SIMULATOR_DOMAIN = "simulator.amazonses.com"
#: Counter buckets: per second (kept two minutes) for the rate, per minute (kept a day) for the quota,
#: per 15 minutes (kept two weeks) for GetSendStatistics.
RATE_SPAN, DAY_SPAN, STATS_SPAN = 1, 60, 900
DAY_BUCKETS = 24 * 60
STATS_BUCKETS = 14 * 24 * 4
#: Buckets kept per span: the rate's two minutes, the quota's day, the statistics' two weeks.
KEEP = {RATE_SPAN: 120, DAY_SPAN: DAY_BUCKETS, STATS_SPAN: STATS_BUCKETS}


ListManagementHook = Callable[[str, str, "Outgoing", ListManagement], Awaitable[set[str]]]


class SendError(Exception):
    """``kind``: 'paused', 'rejected', 'denied' (sending authorization), 'invalid', 'rate', 'daily',
    'mail-from', 'config-missing', 'config-paused', 'list-missing', 'tenant-missing', 'tenant-rejected'
    (a resource the tenant has not), 'tenant-paused'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def new_message_id() -> str:
    """SES's shape: 16 hex digits (01 and the time in milliseconds), a UUID, and -000000."""
    return f"01{int(time.time() * 1000):014x}-{uuid.uuid4()}-000000"


def is_simulator(address: str) -> bool:
    return address.rpartition("@")[2].lower() == SIMULATOR_DOMAIN


def recipients_of(addresses: Iterable[str]) -> list[str]:
    """Envelope recipients, each once (case-insensitively, the first spelling kept), at most 50."""
    seen: dict[str, str] = {}
    total = 0
    for value in addresses:
        addr = bare_address(value)
        total += 1
        seen.setdefault(addr.lower(), addr)
    if total == 0:
        raise SendError("invalid", "There are no recipients specified.")
    if total > MAX_RECIPIENTS:
        raise SendError("invalid", f"Recipient count exceeds {MAX_RECIPIENTS}.")
    return list(seen.values())


@dataclass
class Outgoing:
    """One message to accept, as the send operations describe it."""

    operation: str
    from_address: str  # the sender identity to check (Source / FromEmailAddress / raw From)
    envelope_from: str  # MAIL FROM
    recipients: list[str]
    body: bytes
    subject: str | None = None
    configuration_set: str | None = None
    #: The tenant it is sent as (v2 TenantName, X-SES-TENANT), and the stored template it was made from:
    #: both must be associated with the tenant (domain/tenants.py).
    tenant: str | None = None
    template: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    #: The sender as the request wrote it (``John Smith <js@example.com>``): SES names it so when refused.
    from_as_given: str | None = None
    #: Other addresses the message claims to be from (the rest of a raw From, its Sender): each must
    #: be covered as ``from_address`` is.
    other_senders: list[str] = field(default_factory=list)
    #: Sending authorization: the identity ARN authorizing the sender / the return path.
    from_arn: str | None = None
    return_path_arn: str | None = None
    #: Accepted but not sent: a templated send whose data lacks an attribute (SES: Rendering Failure).
    rendering_failure: str | None = None
    message_id: str = field(default_factory=new_message_id)
    source_ip: str = ""
    #: ``ListManagementOptions`` / ``X-SES-LIST-MANAGEMENT-OPTIONS`` (domain/unsubscribe.py).
    list_management: ListManagement | None = None
    #: Lower-cased recipients unsubscribed from the list or topic: accepted, never sent to.
    unsubscribed: set[str] = field(default_factory=set)
    #: Accepted but not sent: the virus scan found something (SES: a Reject record, "Bad content").
    rejected: bool = False


def _event(unit: _Unit, event_type: str, detail: dict[str, Any], when: dt.datetime) -> dict[str, Any]:
    """An outcome record row, written with the message (SES's Send or Rendering Failure event)."""
    return {
        "message_id": unit.message.message_id,
        "account_id": unit.account_id,
        "region": unit.region,
        "event_type": event_type,
        "created_at": when,
        "detail": detail,
    }


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class SenderState:
    """What a send needs of the account's regional state (from a row of account_regions)."""

    production_access: bool
    sending_enabled: bool
    max_send_rate: float
    max_24_hour_send: float
    suppression_attributes: dict[str, Any]

    @classmethod
    def of(cls, row: dict[str, Any]) -> SenderState:
        return cls(
            bool(row["production_access"]),
            bool(row["sending_enabled"]),
            float(row["max_send_rate"]),
            float(row["max_24_hour_send"]),
            _json(row["suppression_attributes"]) or {},
        )


@dataclass(frozen=True, slots=True)
class SenderIdentity:
    """What a send needs of an identity (from a row of identities)."""

    identity: str
    kind: str
    verification_status: str
    mail_from_domain: str | None
    mail_from_status: str | None
    mail_from_behavior: str
    configuration_set_name: str | None
    policies: dict[str, Any]

    @classmethod
    def of(cls, row: dict[str, Any]) -> SenderIdentity:
        return cls(
            row["identity"],
            row["kind"],
            row["verification_status"],
            row["mail_from_domain"],
            row["mail_from_status"],
            row["mail_from_behavior"],
            row["configuration_set_name"],
            _json(row["policies"]) or {},
        )


#: ``admit(account_id, region, msg, identity)``: may ``msg`` be sent as its tenant, from ``identity`` (the
#: verified identity that covers its sender)? SendError if not; else the tenant's SuppressionAttributes.
AdmitTenant = Callable[[str, str, "Outgoing", str], Awaitable[dict[str, Any] | None]]


@dataclass
class _Unit:
    account_id: str
    region: str
    message: Outgoing
    suppressed: dict[str, str]
    max_rate: float
    max_24h: float
    #: Sesame's own mail (address verification): no quota, not counted, as SES does not count it.
    system: bool = False


class Sending:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        accounts: Accounts,
        identities: Identities,
        suppression: Suppression,
        configuration_sets: ConfigurationSets,
        tracking: Tracking | None = None,
    ) -> None:
        self.db = db
        #: Open and click tracking, for messages whose configuration set asks for it.
        self.tracking = tracking
        self.configuration_sets = configuration_sets
        self.settings = settings
        self.accounts = accounts
        self.identities = identities
        self.suppression = suppression
        self.counters = SendCounters(db.is_sqlite, KEEP)
        self._accept = Work("accepted messages", self._write, self._accepted)
        #: Called after each commit that queued mail (the delivery engine's wake-up).
        self.on_accept: Callable[[], None] | None = None
        #: PostgreSQL: the channel a commit that queued mail is announced on, for the delivery nodes
        #: when this process does not deliver (the runtime sets it; SQLite's nodes poll instead).
        self.queue_channel: str | None = None
        #: ``list_management(account, region, message, options)``: the recipients not to send to, the
        #: message given its unsubscribe links (domain/unsubscribe.Unsubscribe.apply).
        self.list_management: ListManagementHook | None = None
        #: ``virus_found(message) -> bool`` when outgoing mail is scanned (``delivery.virus_scan``).
        self.virus_found: Callable[[bytes], Awaitable[bool]] | None = None
        #: Checks sends made as a tenant (domain/tenants.py; set by the runtime).
        self.admit_tenant: AdmitTenant | None = None

    # -- checks -----------------------------------------------------------------------------------

    async def covering(self, account_id: str, region: str, address: str) -> SenderIdentity | None:
        """The most specific verified identity of the account that covers ``address``."""
        names = _candidates(address)
        found = await self.identities.many(account_id, region, names)
        return _most_specific(names, {k: SenderIdentity.of(v.__dict__) for k, v in found.items()})

    async def _authorized(
        self,
        account_id: str,
        region: str,
        operation: str,
        address: str,
        arn: str,
        own: dict[str, SenderIdentity],
        denied: list[str],
    ) -> SenderIdentity | None:
        """The identity that lets ``account_id`` send as ``address`` under ``arn`` in ``operation``: its
        own, or another account's whose sending-authorization policy allows it. ``arn`` may give ``*`` for
        the region (SES's global endpoints); the identity is always this region's. An identity that
        covers the address but whose policy does not allow the send goes into ``denied``."""
        parts = arn.split(":", 5)
        if (
            len(parts) != 6
            or parts[:3] != ["arn", "aws", "ses"]
            or parts[3] not in (region, "*")
            or not parts[5].startswith("identity/")
        ):
            return None
        owner, name = parts[4], parts[5][len("identity/") :]
        row = own.get(normalize(name)) if owner == account_id else None
        if row is None and (found := await self.identities.get(owner, region, name)) is not None:
            row = SenderIdentity.of(found.__dict__)
        if row is None or row.verification_status != SUCCESS:
            return None
        domain = normalize(address).rpartition("@")[2]
        covers = normalize(address) == row.identity or (
            row.kind == DOMAIN and (domain == row.identity or domain.endswith("." + row.identity))
        )
        if not covers:
            return None
        if owner == account_id:
            return row
        resource = identity_arn(region, owner, row.identity)
        if policy_allows(row.policies or {}, account_id, f"ses:{operation}", resource):
            return row
        denied.append(resource)
        return None

    async def _covered(
        self,
        account_id: str,
        region: str,
        msg: Outgoing,
        address: str,
        arn: str | None,
        own: dict[str, SenderIdentity],
        denied: list[str],
    ) -> SenderIdentity | None:
        """The identity that lets the account send as ``address``: through ``arn`` (sending
        authorization) when the message names one, else its own most specific verified identity."""
        if arn:
            return await self._authorized(account_id, region, msg.operation, address, arn, own, denied)
        return _most_specific(_candidates(address), own)

    async def _load(
        self, account_id: str, region: str, addresses: list[str], recipients: list[str]
    ) -> tuple[SenderState | None, dict[str, SenderIdentity], list[tuple[str, str]]]:
        """Everything the checks read, in one read transaction: the account's regional state, the
        identities that could cover the addresses, and the recipients' suppression entries."""
        names = sorted({n for a in addresses for n in _candidates(a)})
        key = {"a": account_id, "r": region}
        state, identities, suppressed = await self.db.fetch(
            [
                (
                    "SELECT production_access, sending_enabled, max_send_rate, max_24_hour_send,"
                    " suppression_attributes FROM account_regions WHERE account_id = :a AND region = :r",
                    key,
                ),
                (
                    "SELECT identity, kind, verification_status, mail_from_domain, mail_from_status,"
                    " mail_from_behavior, configuration_set_name, policies FROM identities"
                    " WHERE account_id = :a AND region = :r AND identity IN :names",
                    {**key, "names": names},
                ),
                (
                    "SELECT email_address, reason FROM suppressed_destinations"
                    " WHERE account_id = :a AND region = :r AND email_address IN :addrs",
                    {**key, "addrs": sorted({r.lower() for r in recipients})},
                ),
            ]
        )
        return (
            SenderState.of(state[0]) if state else None,
            {r["identity"]: SenderIdentity.of(r) for r in identities},
            [(r["email_address"], r["reason"]) for r in suppressed],
        )

    async def _check(
        self, account_id: str, region: str, msg: Outgoing
    ) -> tuple[SenderState, dict[str, str], Plan | None]:
        """The account's state and the suppressed recipients if ``msg`` may be sent, and the open and
        click tracking its configuration set asks for; SendError if it may not."""
        sandbox_checked = [r for r in msg.recipients if not is_simulator(r)]
        senders = [msg.from_address, msg.envelope_from, *msg.other_senders]
        state, own, suppressed = await self._load(
            account_id, region, [*senders, *sandbox_checked], msg.recipients
        )
        if state is None:  # the account's first call in this region
            state = SenderState.of((await self.accounts.region(account_id, region)).__dict__)
        if not state.sending_enabled:
            raise SendError("paused", "Sending is paused for this account.")
        failed: list[str] = []
        denied: list[str] = []  # identities whose sending-authorization policy refused this account
        sender = await self._covered(account_id, region, msg, msg.from_address, msg.from_arn, own, denied)
        if sender is None:
            failed.append(msg.from_as_given or msg.from_address)
        for address in dict.fromkeys(a for a in msg.other_senders if a.lower() != msg.from_address.lower()):
            if await self._covered(account_id, region, msg, address, msg.from_arn, own, denied) is None:
                failed.append(address)
        if msg.envelope_from.lower() != msg.from_address.lower():
            arn = msg.return_path_arn or msg.from_arn
            if await self._covered(account_id, region, msg, msg.envelope_from, arn, own, denied) is None:
                failed.append(msg.envelope_from)
        if not state.production_access:
            failed += [r for r in sandbox_checked if _most_specific(_candidates(r), own) is None]
        if denied:  # SES's words (its SMTP endpoint's, reference §2.5); the account acts as its root user
            raise SendError(
                "denied",
                f"User arn:aws:iam::{account_id}:root is not authorized to perform ses:{msg.operation} "
                f"on resource {denied[0]}",
            )
        if failed:
            shown = ", ".join(failed[:10]) + (", ..." if len(failed) > 10 else "")
            raise SendError(
                "rejected",
                f"Email address is not verified. The following identities failed the check in region "
                f"{region.upper()}: {shown}",
            )
        if sender is not None and sender.mail_from_domain and sender.mail_from_status != SUCCESS:
            if sender.mail_from_behavior == "REJECT_MESSAGE":
                raise SendError(
                    "mail-from", f"The MAIL FROM domain {sender.mail_from_domain} is not verified."
                )
        tracking: Plan | None = None
        set_options: dict[str, Any] | None = None
        if msg.configuration_set is None and sender is not None and sender.configuration_set_name:
            msg.configuration_set = sender.configuration_set_name  # the identity's default set
        if msg.configuration_set:
            try:
                config = await self.configuration_sets.get(account_id, region, msg.configuration_set)
            except ConfigurationSetNotFound as exc:
                raise SendError("config-missing", exc.message) from None
            if not sending_enabled(config):
                raise SendError("config-paused", f"Sending is paused for configuration set {config.name}.")
            set_options = (config.options or {}).get("SuppressionOptions")
            tracking = plan(config.options)
        tenant_attributes: dict[str, Any] | None = None
        if msg.tenant:
            if self.admit_tenant is None:
                raise SendError("tenant-missing", f"Tenant {msg.tenant} does not exist.")
            identity = sender.identity if sender is not None else msg.from_address
            tenant_attributes = await self.admit_tenant(account_id, region, msg, identity)
        target = resolve(state.suppression_attributes, set_options, msg.tenant, tenant_attributes)
        if target.tenant:  # the tenant's own list, not the account's
            listed = await self.suppression.matching(
                account_id, region, msg.recipients, target.reasons, tenant=target.tenant
            )
            return state, listed, tracking
        return state, {a: r for a, r in suppressed if r in target.reasons}, tracking

    # -- accepting --------------------------------------------------------------------------------

    async def send(self, account_id: str, region: str, msg: Outgoing, *, source_ip: str = "") -> str:
        """Check and durably accept ``msg``; its MessageId, once committed. ``source_ip``: the caller's
        address, as event records show it (the ses:source-ip tag)."""
        return await self._submit(await self._prepare(account_id, region, msg, source_ip))

    async def send_many(
        self, account_id: str, region: str, msgs: list[Outgoing], *, source_ip: str = ""
    ) -> list[str | SendError]:
        """The messages of one bulk call, each accepted or refused on its own: a MessageId or the
        SendError, in order. They are checked concurrently and handed to the writer together and in
        order, so that the call costs one commit rather than one per message, and a quota that runs out
        part way refuses the last ones, as when they are sent one by one."""

        async def prepare(msg: Outgoing) -> _Unit | SendError:
            try:
                return await self._prepare(account_id, region, msg, source_ip)
            except SendError as exc:
                return exc

        async def submit(unit: _Unit | SendError) -> str | SendError:
            if isinstance(unit, SendError):
                return unit
            try:
                return await self._submit(unit)
            except SendError as exc:
                return exc

        units = await asyncio.gather(*(prepare(m) for m in msgs))
        # gather starts its tasks in order, and each hands its unit to the writer in its first step.
        return await asyncio.gather(*(submit(u) for u in units))

    async def _prepare(self, account_id: str, region: str, msg: Outgoing, source_ip: str) -> _Unit:
        """The checks of a send and what they change in ``msg``: what the writer is handed."""
        msg.source_ip = source_ip
        state, suppressed, tracking = await self._check(account_id, region, msg)
        if msg.list_management is not None and self.list_management is not None and not msg.rendering_failure:
            msg.unsubscribed = await self.list_management(account_id, region, msg, msg.list_management)
        if tracking is not None and self.tracking is not None and not msg.rendering_failure:
            # Before the message is stored: the capture, the DKIM signature and the recipient see the
            # tracked HTML. Mail without a tracking configuration set never comes here.
            msg.body = await self.tracking.apply(tracking, msg.message_id, msg.body)
        if self.virus_found is not None and not msg.rendering_failure:
            msg.rejected = await self.virus_found(msg.body)
        return _Unit(account_id, region, msg, suppressed, state.max_send_rate, state.max_24_hour_send)

    async def send_system(self, account_id: str, region: str, msg: Outgoing, *, counted: bool = False) -> str:
        """Accept Sesame's own mail for an account: no checks. ``counted`` mail (verification emails)
        counts like the account's own (SentLast24Hours, GetSendStatistics) without being refused for
        it: the caller reserved its place in the quota before creating what the mail is for."""
        return await self._submit(_Unit(account_id, region, msg, {}, -1, -1, system=not counted))

    async def _submit(self, unit: _Unit) -> str:
        """Hand the message to the group-commit writer; its MessageId once the batch is committed."""
        refused = await self.db.writer.submit(self._accept, unit)
        if refused is not None:
            raise refused
        return unit.message.message_id

    def _accepted(self, outcomes: list[SendError | None]) -> None:
        """After each commit: wake the delivery engine if the batch queued mail."""
        if self.on_accept is not None and any(o is None for o in outcomes):
            self.on_accept()

    async def _write(self, s: AsyncSession, batch: list[_Unit]) -> list[SendError | None]:
        now = time.time()
        second, minute = int(now), int(now) // DAY_SPAN
        keys = sorted({(u.account_id, u.region) for u in batch})
        await self.counters.lock(s, keys)  # concurrent checks of one account's quota, on every node
        total = self.counters.total
        rate = {k: await total(s, *k, RATE_SPAN, second, second) for k in keys}
        day = {k: await total(s, *k, DAY_SPAN, minute - DAY_BUCKETS + 1, minute) for k in keys}
        outcomes: list[SendError | None] = []
        messages: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        increments: dict[CounterKey, int] = {}
        records: list[dict[str, Any]] = []
        created = utcnow()
        mode = self.settings.delivery.mode or ("capture" if self.settings.mode == "dev" else "smtp")
        capture = mode == "capture"
        for unit in batch:
            k = (unit.account_id, unit.region)
            msg = unit.message
            n = len(msg.recipients)
            counted = sum(1 for r in msg.recipients if not is_simulator(r))
            if unit.max_rate >= 0 and rate[k] > 0 and rate[k] + n > max(unit.max_rate, 1):
                outcomes.append(SendError("rate", "Maximum sending rate exceeded."))
                continue
            if unit.max_24h >= 0 and day[k] + counted > unit.max_24h:
                outcomes.append(SendError("daily", "Daily message quota exceeded."))
                continue
            if unit.system:
                n = counted = 0
            rate[k] += n
            day[k] += counted
            if n:
                increments[(*k, RATE_SPAN, second)] = increments.get((*k, RATE_SPAN, second), 0) + n
            if counted:
                increments[(*k, DAY_SPAN, minute)] = increments.get((*k, DAY_SPAN, minute), 0) + counted
            quarter = (*k, STATS_SPAN, second // STATS_SPAN)
            if n:
                increments[quarter] = increments.get(quarter, 0) + n
            if msg.rendering_failure:
                status = "rendering-failure"
            elif msg.rejected:
                status = "rejected"
            else:
                status = "captured" if capture else "queued"
            messages.append(
                {
                    "id": msg.message_id,
                    "account_id": unit.account_id,
                    "region": unit.region,
                    "created_at": created,
                    "operation": msg.operation,
                    "source": msg.envelope_from,
                    "from_address": msg.from_address,
                    "subject": msg.subject,
                    "configuration_set": msg.configuration_set,
                    "tags": msg.tags,
                    "summary": msg.summary,
                    "source_ip": msg.source_ip or None,
                    "tenant_name": msg.tenant,
                    "status": status,
                    "size": len(msg.body),
                    "body": msg.body,
                }
            )
            if msg.rendering_failure:
                failure = {"errorMessage": msg.rendering_failure, "templateName": msg.summary.get("Template")}
                records.append(_event(unit, "RenderingFailure", failure, created))
            elif msg.rejected:  # accepted, counted, never sent [DG: event-publishing-retrieving-sns-contents]
                records.append(_event(unit, "Send", {}, created))
                records.append(_event(unit, "Reject", {"reason": REJECT_REASON}, created))
            else:
                records.append(_event(unit, "Send", {}, created))
                for rcpt in msg.recipients:
                    lowered = rcpt.lower()
                    # Unsubscribed first: SES bounces those before it looks at suppression (reference 7.3).
                    if lowered in msg.unsubscribed:
                        state = "unsubscribed"
                    else:
                        state = "suppressed" if lowered in unit.suppressed else status
                    entries.append(
                        {
                            "message_id": msg.message_id,
                            "recipient": rcpt,
                            "domain": rcpt.rpartition("@")[2].lower(),
                            "state": state,
                            "next_attempt_at": created,
                            "attempts": 0,
                            "created_at": created,
                        }
                    )
            outcomes.append(None)
        await insert(s, Message, messages)
        await insert(s, QueueEntry, entries)
        if self.queue_channel and any(e["state"] == "queued" for e in entries):
            await self.db.notify(s, self.queue_channel, "")
        await insert(s, DeliveryEvent, records)
        await self.counters.add(s, increments)
        await self.counters.prune(s, now)
        return outcomes

    async def sent_last_24_hours(self, account_id: str, region: str) -> int:
        minute = int(time.time()) // DAY_SPAN
        async with self.db.read() as s:
            return await self.counters.total(
                s, account_id, region, DAY_SPAN, minute - DAY_BUCKETS + 1, minute
            )

    async def statistics(self, account_id: str, region: str) -> list[tuple[dt.datetime, int]]:
        """Recipients accepted per 15-minute period over the last two weeks (GetSendStatistics)."""
        first = int(time.time()) // STATS_SPAN - STATS_BUCKETS
        async with self.db.read() as s:
            rows = await self.counters.since(s, account_id, region, STATS_SPAN, first)
        return [(dt.datetime.fromtimestamp(b * STATS_SPAN, dt.UTC), n) for b, n in rows]

    async def messages(self, account_id: str | None = None, message_id: str | None = None,
                       source: str | None = None) -> list[Message]:  # fmt: skip
        """Accepted messages, oldest first, for the dev-mode inspection endpoint (GET /_aws/ses)."""
        q = sa.select(Message).order_by(Message.created_at)
        if account_id:
            q = q.where(Message.account_id == account_id)
        if message_id:
            q = q.where(Message.id == message_id)
        if source:
            q = q.where(Message.from_address == source)
        async with self.db.read() as s:
            return list(await s.scalars(q))

    async def forget(self, message_id: str | None = None) -> None:
        """DELETE /_aws/ses: drop captured messages (one, or all)."""
        async with self.db.write() as s:
            q = sa.delete(Message)
            await s.execute(q.where(Message.id == message_id) if message_id else q)

    async def close(self) -> None:
        """Nothing of its own to stop: the writer belongs to the database and stops with it."""


def _candidates(address: str) -> list[str]:
    """The identities that could cover ``address``, most specific first: the address, the address
    without a +label, its domain, each parent domain."""
    local, _, domain = normalize(address).rpartition("@")
    names = [f"{local}@{domain}"] if local else []
    if "+" in local and not local.startswith('"'):  # a +label is a Dot-string's, never a quoted string's
        names.append(f"{local.split('+', 1)[0]}@{domain}")
    labels = domain.split(".")
    return names + [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _most_specific(names: list[str], found: dict[str, SenderIdentity]) -> SenderIdentity | None:
    for name in names:
        row = found.get(name)
        if row is not None and row.verification_status == SUCCESS:
            return row
    return None
