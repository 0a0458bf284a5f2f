"""The delivery engine: claim due queue entries, deliver each message once per recipient domain, settle.

Woken when this process accepts mail, and every ``poll_interval`` for retries and for mail other
nodes accepted. A message's recipients on one domain go out in one SMTP transaction; each recipient's
answer becomes its own outcome: Delivery, a DeliveryDelay and a retry with backoff, or a Bounce (and,
for permanent bounces, an entry on the account's suppression list when its settings say so). Mail to
the mailbox simulator never leaves: mta/simulator.py answers it as SES does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import re
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sesame.config import DeliverySettings, Settings
from sesame.domain.accounts import Accounts
from sesame.domain.configuration_sets import ConfigurationSets
from sesame.domain.dedicated_ips import DedicatedIps
from sesame.domain.identities import SUCCESS, Identities
from sesame.domain.sending import SIMULATOR_DOMAIN, Outgoing
from sesame.domain.suppression import Suppression, suppressible
from sesame.mail import dkim
from sesame.metrics import DELIVERIES, DELIVERY_LATENCY
from sesame.mta import bounce, outcomes, simulator, smtp_client
from sesame.mta.outcomes import Bounced, Deferred, Delivered, Outcome
from sesame.mta.queue import NOT_SENT, Claimed, DeliveryQueue, Outbound
from sesame.mta.reply import SmtpReply
from sesame.mta.return_path import envelope_sender
from sesame.mta.routing import NoRoute, Router
from sesame.nodes import lease_owner
from sesame.resolver import Lookup
from sesame.storage.db import Database
from sesame.storage.models import ConfigurationSet, Identity, utcnow

log = logging.getLogger(__name__)

#: After a claim that emptied the queue, the next waits this long (s), so that mail accepted meanwhile is
#: claimed together rather than one small write transaction per batch the send path commits.
CLAIM_GATHER = 0.2
#: A message whose delivery raises (a bug, a stored secret that does not decrypt, a name no resolver
#: takes) is retried with the usual backoff and bounces on this try, every claim counting as one: such
#: errors rarely go away by themselves, and one left to the lease was tried again unchanged forever.
INTERNAL_FAILURE_ATTEMPTS = 3
#: How recently mail must have been claimed or settled for delivery to count as busy (events/pacing.py).
BUSY_SECONDS = 0.5


_THROTTLE_WORDS = re.compile(r"rate|throttl|too many|slow down", re.IGNORECASE)


def _throttling(reply: SmtpReply) -> bool:
    """421 (service closing, RFC 5321 §3.8) or a 4xx that speaks of rates and limits (4.7.x often does)."""
    return reply.code == 421 or (400 <= reply.code < 500 and bool(_THROTTLE_WORDS.search(reply.text)))


@dataclass(frozen=True)
class _Job:
    message: Outbound
    sender: Identity | None  # the verified identity of the From domain (DKIM key, MAIL FROM), if any
    options: dict[str, Any]  # the configuration set's DeliveryOptions (TlsPolicy, MaxDeliverySeconds)


def helo_name(delivery: DeliverySettings) -> str:
    """The name we give in EHLO, and as the reporting MTA of our Delivery and Bounce records."""
    return delivery.helo_name or socket.getfqdn()


def _count(message: Outbound, settled: list[Outcome]) -> None:
    now = utcnow()
    for o in settled:
        if isinstance(o, Delivered):
            DELIVERIES.labels("delivered").inc()
            DELIVERY_LATENCY.observe((now - message.created_at).total_seconds())
        else:
            DELIVERIES.labels("deferred" if isinstance(o, Deferred) else "bounced").inc()


class DeliveryEngine:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        accounts: Accounts,
        identities: Identities,
        suppression: Suppression,
        configuration_sets: ConfigurationSets,
        dedicated_ips: DedicatedIps,
    ) -> None:
        self.db = db
        self.dedicated_ips = dedicated_ips
        self.accounts = accounts
        self.settings = settings
        self.delivery = settings.delivery
        self.identities = identities
        self.suppression = suppression
        self.configuration_sets = configuration_sets
        self.worker_id = lease_owner(settings.node_name, "delivery")
        self.queue = DeliveryQueue(db, self.worker_id)
        self.router = Router(settings.delivery, Lookup(settings.dns))
        self.helo = helo_name(settings.delivery)
        self.connections = smtp_client.ConnectionCache(
            helo=self.helo,
            connect_timeout=self.delivery.connect_timeout,
            command_timeout=self.delivery.command_timeout,
            idle_seconds=self.delivery.idle_seconds,
            max_messages=self.delivery.max_messages_per_connection,
            max_per_host=self.delivery.max_connections_per_site,
            max_rate=self.delivery.max_rate_per_site,
        )
        default = smtp_client.SiteLimits(
            self.delivery.max_connections_per_site,
            self.delivery.max_rate_per_site,
            self.delivery.max_messages_per_connection,
        )
        self.relay = smtp_client.Relay(
            self.delivery.smarthost_username, self.delivery.smarthost_password, self.delivery.smarthost_tls
        )
        self.site_limits = {
            domain.lower(): smtp_client.SiteLimits.parse(text, default)
            for domain, text in self.delivery.sites.items()
        }
        #: Destination address → (monotonic time until which it is left alone, current backoff).
        self._throttled: dict[str, tuple[float, float]] = {}
        self._wake = asyncio.Event()
        self._last_busy = -1.0  # monotonic time of the last claim or outcome settled here
        self._in_hand: set[int] = set()  # the queue entries being delivered by this process now
        #: Queues Sesame's own mail (the simulator's auto-replies): Sending.send_system.
        self.on_auto_reply: Callable[[str, str, Outgoing], Awaitable[str]] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver until cancelled. Deliveries run as tasks of their own, so one slow
        destination holds up only its own mail; new claims are made as room frees up."""
        limit = max(1, self.delivery.concurrency)
        gate = asyncio.Semaphore(limit)
        inflight: set[asyncio.Task[None]] = set()
        next_claim = 0.0  # monotonic time before which a claim waits, once the queue was found drained
        renewing = asyncio.create_task(self._renew_leases(), name="sesame-lease-renewal")
        try:
            while True:
                room = limit * 4 - len(inflight)
                claimed: list[Claimed] = []
                # Claim in batches: a claim is a write transaction, too dear to pay for every delivery
                # that finishes or every batch of mail accepted.
                if room >= limit or not inflight:
                    if (pause := next_claim - time.monotonic()) > 0:
                        await asyncio.sleep(pause)
                    try:
                        claimed = await self.queue.claim(room, self.delivery.lease_seconds)
                    except Exception:
                        log.exception("claiming queue entries failed")
                    next_claim = time.monotonic() + CLAIM_GATHER
                if claimed:
                    self._last_busy = time.monotonic()
                    for task in await self._start(claimed, gate):
                        inflight.add(task)
                        task.add_done_callback(inflight.discard)
                    if len(claimed) >= room:
                        next_claim = 0.0
                        continue  # more may be due: claim again as soon as there is room
                self.connections.prune()
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait(
                    {woken, *inflight},
                    timeout=self.delivery.poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
                self._wake.clear()
        finally:
            renewing.cancel()
            # Shutting down: let deliveries under way finish for a moment; those cut short keep their
            # lease and are delivered again once it expires.
            if inflight:
                await asyncio.wait(inflight, timeout=10)
                for task in inflight:
                    task.cancel()

    async def _renew_leases(self) -> None:
        """Every third of a lease, extend the leases of the entries in hand: one UPDATE each time,
        none when nothing is in hand (by default every 100 s, far from the hot path)."""
        lease = self.delivery.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self.queue.renew(sorted(self._in_hand), lease)
            except Exception:  # the next turn tries again; the lease has two thirds left
                log.exception("renewing the leases of deliveries under way failed")

    def delivering(self) -> bool:
        """Whether this process is busy delivering (events/pacing.py gives way to it): mail was claimed
        or an outcome settled within the last half second. Deliveries that only wait on a slow server
        do not count."""
        return time.monotonic() - self._last_busy < BUSY_SECONDS

    async def close(self) -> None:
        await self.connections.close()

    async def _start(self, claimed: list[Claimed], gate: asyncio.Semaphore) -> list[asyncio.Task[None]]:
        """One task per message and recipient domain; at most ``concurrency`` are in SMTP at once."""
        # An entry still being delivered here whose lease ran out (a slow server, a long wait for the
        # gate) is claimed again by this same process: the claim renews the lease, and the delivery
        # under way settles it. Delivering it a second time would send the message twice.
        claimed = [e for e in claimed if e.id not in self._in_hand]
        groups: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
        for entry in claimed:
            groups[(entry.message_id, entry.domain)].append(entry)
            self._in_hand.add(entry.id)
        try:
            jobs = await self._jobs(sorted({m for m, _ in groups}))
        except BaseException:
            self._in_hand.difference_update(e.id for e in claimed)
            raise

        async def one(key: tuple[str, str], entries: list[Claimed]) -> None:
            try:
                job = jobs.get(key[0])
                if job is not None:
                    await self._deliver(job, key[1], entries, gate)
            except Exception:
                log.exception("delivering %s to %s failed; its lease will expire", *key)
            finally:
                self._in_hand.difference_update(e.id for e in entries)

        return [asyncio.create_task(one(k, v)) for k, v in groups.items()]

    async def _jobs(self, ids: list[str]) -> dict[str, _Job]:
        """The claimed messages with their sending domains and configuration sets, read once per claim
        (a few statements for the whole batch, not a few per message)."""
        messages = await self.queue.messages(ids)
        domains = {
            (m.account_id, m.region, m.from_address.rpartition("@")[2].lower()) for m in messages.values()
        }
        sets = {
            (m.account_id, m.region, m.configuration_set) for m in messages.values() if m.configuration_set
        }
        async with self.db.read() as s:
            senders = {
                (r.account_id, r.region, r.identity): r
                for r in await s.scalars(
                    sa.select(Identity).where(
                        sa.tuple_(Identity.account_id, Identity.region, Identity.identity).in_(list(domains))
                    )
                )
                if r.verification_status == SUCCESS
            }
            options = {
                (r.account_id, r.region, r.name): dict((r.options or {}).get("DeliveryOptions") or {})
                for r in (
                    await s.scalars(
                        sa.select(ConfigurationSet).where(
                            sa.tuple_(
                                ConfigurationSet.account_id, ConfigurationSet.region, ConfigurationSet.name
                            ).in_(list(sets))
                        )
                    )
                    if sets
                    else []
                )
            }
        return {
            m.id: _Job(
                m,
                senders.get((m.account_id, m.region, m.from_address.rpartition("@")[2].lower())),
                options.get((m.account_id, m.region, m.configuration_set or ""), {}),
            )
            for m in messages.values()
        }

    # -- one message, one domain ------------------------------------------------------------------

    async def _deliver(self, job: _Job, domain: str, entries: list[Claimed], gate: asyncio.Semaphore) -> None:
        """``gate`` bounds the SMTP transactions under way; waiting for the outcome's commit holds no
        slot, so the commit's latency does not throttle delivery."""
        message = job.message
        suppressed = [e for e in entries if e.state in NOT_SENT]
        entries = [e for e in entries if e.state not in NOT_SENT]
        listed = "account-suppressed"
        if message.tenant_name and any(e.state == "suppressed" for e in suppressed):
            # Sent as a tenant: on whose list was it?
            target = await self.suppression.target(
                message.account_id, message.region, message.configuration_set, message.tenant_name
            )
            listed = "tenant-suppressed" if target.tenant else listed
        kinds = {"suppressed": listed, "unsubscribed": "unsubscribed"}
        settled: list[Outcome] = [self._bounced(message, e, bounce.local(kinds[e.state])) for e in suppressed]
        attempted: list[Outcome] = []
        try:
            if entries and domain == SIMULATOR_DOMAIN:
                attempted = simulator.answer(message, entries, self.helo)
                await self._queue_auto_replies(message, entries)
            elif entries:
                async with gate:
                    attempted = await self._send(job, domain, entries)
        except Exception:  # a bug or bad data: a failed attempt, not a lease left to expire (then retried)
            log.exception("delivering %s to %s failed", message.id, domain)
            attempted = [self._failed(job, e) for e in entries]
        settled += attempted
        # Group-committed with other outcomes and accepted mail (storage/writer.py); the entries we no
        # longer hold (our lease expired) are left to the worker that has them.
        await self.queue.settle(message, settled)
        self._last_busy = time.monotonic()
        _count(message, settled)
        permanent = [o for o in settled if isinstance(o, Bounced) and o.permanent]
        if permanent:
            await self._suppress(message, entries + suppressed, permanent)

    async def _send(self, job: _Job, domain: str, entries: list[Claimed]) -> list[Outcome]:
        message, options = job.message, job.options
        try:
            hops = await self.router.hops(domain)
        except NoRoute as exc:
            verdict = bounce.local(exc.kind, str(exc))
            return [self._outcome(message, e, verdict, None, options, kind=exc.kind) for e in entries]
        data = await self._signed(message, job.sender)
        mail_from = self._mail_from(message, job.sender)
        source = await self.dedicated_ips.source_for(
            message.account_id, message.region, options.get("SendingPoolName")
        )
        recipients = [e.recipient for e in entries]
        last_error = ""
        now = time.monotonic()
        waiting = [h for h in hops if self._throttled.get(h.host, (0.0, 0.0))[0] > now]
        if waiting and len(waiting) == len(hops):  # every host asked us to slow down: wait our turn
            until = min(self._throttled[h.host][0] for h in waiting)
            verdict = bounce.local("sending-deferral", f"{domain} asked us to slow down")
            later = utcnow() + dt.timedelta(seconds=max(0.5, until - now))
            return [
                self._outcome(message, e, verdict, None, options, kind="sending-deferral", at=later)
                for e in entries
            ]
        for hop in hops:
            if self._throttled.get(hop.host, (0.0, 0.0))[0] > now:
                continue
            try:
                tx = await self.connections.send(
                    hop,
                    mail_from=mail_from,
                    recipients=recipients,
                    data=data,
                    require_tls=options.get("TlsPolicy") == "REQUIRE",
                    source=source,
                    limits=self.site_limits.get(domain),
                    relay=self.relay
                    if self.delivery.smarthost and domain not in self.delivery.routes
                    else None,
                )
            except smtp_client.TlsUnavailable as exc:
                verdict = bounce.local("tls-required", str(exc))
                return [
                    self._outcome(message, e, verdict, None, options, kind="tls-required") for e in entries
                ]
            except smtp_client.ConnectFailed as exc:
                last_error = str(exc)
                continue
            self._note_throttling(hop.host, tx)
            out: list[Outcome] = []
            for e in entries:
                reply = tx.replies.get(e.recipient)
                if reply is not None and 200 <= reply.code < 300:
                    out.append(self._delivered(message, e, reply, tx))
                else:
                    reply = reply or SmtpReply(451, None, "4.4.0 no answer for this recipient")
                    verdict = bounce.classify_reply(reply)
                    out.append(self._outcome(message, e, verdict, reply, options, remote=tx))
            return out
        verdict = bounce.local("connection-failed", last_error)
        return [self._outcome(message, e, verdict, None, options, kind="connection-failed") for e in entries]

    def _failed(self, job: _Job, e: Claimed) -> Outcome:
        """An attempt that raised: retried like any temporary failure, and bounced on the
        ``INTERNAL_FAILURE_ATTEMPTS``-th try."""
        if e.attempts >= INTERNAL_FAILURE_ATTEMPTS:
            return self._bounced(job.message, e, bounce.local("internal-failure-final"))
        verdict = bounce.local("internal-failure")
        return self._outcome(job.message, e, verdict, None, job.options, kind="internal-failure")

    def _note_throttling(self, host: str, tx: smtp_client.Transaction) -> None:
        """A throttling reply slows every delivery to that address down; an acceptance lifts it."""
        if any(_throttling(r) for r in tx.replies.values()):
            backoff = min(
                600.0, max(self.delivery.throttle_backoff, self._throttled.get(host, (0.0, 0.0))[1] * 2)
            )
            self._throttled[host] = (time.monotonic() + backoff, backoff)
            log.info("%s is throttling us; leaving it alone for %.0f s", host, backoff)
        elif any(200 <= r.code < 300 for r in tx.replies.values()):
            self._throttled.pop(host, None)

    # -- outcomes ---------------------------------------------------------------------------------

    def _delivered(
        self, message: Outbound, e: Claimed, reply: SmtpReply, tx: smtp_client.Transaction
    ) -> Delivered:
        return outcomes.delivered(
            e.id, e.recipient, reply, sent_at=message.created_at, helo=self.helo, remote_mta_ip=tx.remote_ip
        )

    def _bounced(self, message: Outbound, e: Claimed, verdict: bounce.Verdict) -> Bounced:
        return outcomes.bounced(e.id, e.recipient, verdict, message_id=message.id, helo=self.helo)

    def _outcome(
        self,
        message: Outbound,
        e: Claimed,
        verdict: bounce.Verdict,
        reply: SmtpReply | None,
        options: dict[str, Any],
        remote: smtp_client.Transaction | None = None,
        kind: str | None = None,
        at: dt.datetime | None = None,
    ) -> Deferred | Bounced:
        if not verdict.temporary:
            return self._bounced(message, e, verdict)
        custom = float(options.get("MaxDeliverySeconds") or 1e12)
        max_age = min(self.delivery.max_age_seconds, custom)
        expires = message.created_at + dt.timedelta(seconds=max_age)
        now = utcnow()
        if now >= expires:
            final = bounce.give_up(verdict, minutes=int(max_age // 60), custom_timeout=custom <= max_age)
            return self._bounced(message, e, final)
        delay = min(self.delivery.retry_max, self.delivery.retry_base * 2 ** max(0, e.attempts - 1))
        retry_at = min(expires, at or now + dt.timedelta(seconds=delay * random.uniform(0.8, 1.2)))
        return outcomes.deferred(
            e.id,
            e.recipient,
            verdict,
            retry_at=retry_at,
            delay_type=bounce.delay_type(reply, kind),
            expires=expires,
            remote_host=remote.hop.host if remote is not None else None,
        )

    async def _queue_auto_replies(self, message: Outbound, entries: list[Claimed]) -> None:
        """The simulator's out-of-office replies, queued like mail (Sending.send_system)."""
        if self.on_auto_reply is None:
            return
        for reply in simulator.out_of_office(message, entries):
            try:
                await self.on_auto_reply(message.account_id, message.region, reply)
            except Exception:  # an auto-reply is a courtesy: losing one must not hold the delivery back
                log.exception("queueing the out-of-office reply to %s failed", message.source)

    # -- what a message needs ---------------------------------------------------------------------

    async def _signed(self, message: Outbound, row: Identity | None) -> bytes:
        if row is None or not row.dkim_signing_enabled or row.dkim_status != SUCCESS or not row.dkim_tokens:
            return bytes(message.body)
        pem = self.identities.private_key(row)
        if pem is None:
            return bytes(message.body)
        key = dkim.SigningKey(selector=row.dkim_tokens[0], domain=row.identity, private_key_pem=pem)
        try:
            # RSA releases the GIL: on a thread, signing runs beside the event loop, on another core.
            return await asyncio.to_thread(dkim.sign, bytes(message.body), key)
        except dkim.DkimError:  # e.g. a raw message without From: deliver it unsigned rather than never
            log.warning("message %s cannot be DKIM-signed; delivering it unsigned", message.id, exc_info=True)
            return bytes(message.body)

    def _mail_from(self, message: Outbound, row: Identity | None) -> str:
        """The envelope sender: the message id at the identity's verified custom MAIL FROM domain, else
        at ``delivery.return_path_domain`` (so a late bounce or complaint names its message), else the
        sender's own address (mta/return_path.py)."""
        verified = row is not None and row.mail_from_domain and row.mail_from_status == SUCCESS
        return envelope_sender(
            message.id,
            message.source,
            row.mail_from_domain if verified and row is not None else None,
            self.delivery.return_path_domain,
        )

    async def _suppress(self, message: Outbound, entries: list[Claimed], bounced: list[Bounced]) -> None:
        """Permanent bounces join the account's suppression list (or the tenant's own) when its settings
        (or the configuration set's, or the tenant's) include BOUNCE (Suppression.target, shared with
        late feedback). Simulator addresses and those already on the list never do, as in SES."""
        target = await self.suppression.target(
            message.account_id, message.region, message.configuration_set, message.tenant_name
        )
        if "BOUNCE" not in target.reasons:
            return
        by_id = {e.id: e for e in entries}
        for outcome in bounced:
            e = by_id.get(outcome.entry_id)
            if e is None or e.domain == SIMULATOR_DOMAIN:
                continue
            if not suppressible(outcome.verdict.bounce_type, outcome.verdict.bounce_subtype):
                continue
            await self.suppression.put(
                message.account_id, message.region, e.recipient, "BOUNCE", message.id, tenant=target.tenant
            )
