"""Wires one Sesame process together from its settings: database, domain services, providers."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Coroutine
from typing import Any

import sqlalchemy as sa

from sesame import metrics
from sesame.awsapi.auth import Authenticator
from sesame.awsapi.dispatch import Dispatcher
from sesame.config import Settings
from sesame.domain.accounts import Accounts
from sesame.domain.address_insights import AddressInsights
from sesame.domain.advisor import Advisor
from sesame.domain.configuration_sets import ConfigurationSetNotFound, ConfigurationSets
from sesame.domain.contact_lists import ContactLists
from sesame.domain.dedicated_ips import DedicatedIps
from sesame.domain.event_destinations import EventDestinations
from sesame.domain.feedback import Feedback
from sesame.domain.identities import Identities
from sesame.domain.message_insights import MessageInsights
from sesame.domain.reputation import Reputation
from sesame.domain.reputation_entities import ReputationEntities
from sesame.domain.secrets import KeySource, SecretBox
from sesame.domain.sending import Sending
from sesame.domain.suppression import Suppression
from sesame.domain.tags import Tags, register_resource
from sesame.domain.templates import Templates
from sesame.domain.tenants import Tenants
from sesame.domain.tracking import Tracking
from sesame.domain.unsubscribe import Unsubscribe
from sesame.domain.vdm import Vdm
from sesame.domain.verification import Verification
from sesame.errors import ConfigError
from sesame.events import inspect
from sesame.events.pacing import DeliveryFirst
from sesame.events.publisher import EventPublisher
from sesame.integrations.functions import Functions
from sesame.integrations.objects import ObjectStore, objects_root
from sesame.integrations.sns import Sns
from sesame.integrations.sns.delivery import Deliverer
from sesame.integrations.sns.signing import Signer
from sesame.jobs.contacts import ContactListSink
from sesame.jobs.exports import Exporter
from sesame.jobs.imports import Importer
from sesame.jobs.links import ObjectLinks
from sesame.jobs.runner import JobRunner
from sesame.jobs.service import Jobs
from sesame.jobs.sinks import ImportSink
from sesame.jobs.store import JobStore
from sesame.jobs.suppression import SuppressionListSink
from sesame.mta import queue as q
from sesame.mta.engine import DeliveryEngine, helo_name
from sesame.mta.return_path import ReturnPaths
from sesame.nodes import Nodes, lease_owner
from sesame.providers.errors import translate
from sesame.providers.ses_v1 import SesV1Provider
from sesame.providers.ses_v2 import SesV2Provider
from sesame.providers.sns import SnsProvider
from sesame.receiving.actions import Actions
from sesame.receiving.bounces import Bounces
from sesame.receiving.inbox import Inbox
from sesame.receiving.processor import Judge, Processor
from sesame.receiving.rules import ReceiptRules
from sesame.receiving.scanners import Scanners
from sesame.resolver import Lookup
from sesame.smtp.inbound import Inbound
from sesame.storage import migrate
from sesame.storage.db import Database
from sesame.storage.files import private_directory, private_sqlite
from sesame.storage.models import Base, Meta

log = logging.getLogger(__name__)


#: Seconds between reads of the /metrics figures kept in the database.
FIGURES_SECONDS = 5.0


class Sesame:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        private_directory(settings.data_dir)
        if settings.is_sqlite:
            private_sqlite(settings.database_url)
        self.db = Database(settings.database_url)
        self.box = box = SecretBox(KeySource(settings.data_dir))
        self.accounts = Accounts(self.db, settings, box)
        self.tags = Tags(self.db)
        self.identities = Identities(self.db, settings, box)
        self.templates = Templates(self.db, settings.templates)
        self.suppression = Suppression(self.db)
        self.configuration_sets = ConfigurationSets(self.db)
        self.event_destinations = EventDestinations(self.configuration_sets)
        self.dedicated_ips = DedicatedIps(self.db, settings)
        self.tracking = Tracking(self.db, settings, box)
        self.reputation = Reputation(self.db, settings.reputation)
        self.configuration_sets.on_fresh_start = self.reputation.fresh_start
        register_resource("configuration-set", self._configuration_set_exists)
        self.contact_lists = ContactLists(self.db)
        self.unsubscribe = Unsubscribe(self.db, settings, box, self.contact_lists)
        register_resource("contact-list", self._contact_list_exists)
        self.sending = Sending(
            self.db,
            settings,
            self.accounts,
            self.identities,
            self.suppression,
            self.configuration_sets,
            self.tracking,
        )
        self.sending.list_management = self.unsubscribe.apply
        # Late feedback at return paths: the MX asks return_paths at RCPT and hands the mail to feedback.
        self.return_paths = ReturnPaths(self.db, settings.delivery.return_path_domain)
        self.feedback = Feedback(self.db)
        self.verification = Verification(self.db, settings, self.identities, self.sending)
        self.engine: DeliveryEngine | None = None
        if self.delivers:
            self.engine = DeliveryEngine(
                self.db,
                settings,
                self.accounts,
                self.identities,
                self.suppression,
                self.configuration_sets,
                self.dedicated_ips,
            )
            self.sending.on_accept = self.engine.wake
            self.engine.on_auto_reply = self.sending.send_system
        elif not self.db.is_sqlite:
            self.sending.queue_channel = q.QUEUE_CHANNEL
        register_resource("identity", self._identity_exists)
        # Tenants: their reputation entities are judged as reputation counts, their sends admitted here.
        self.reputation_entities = ReputationEntities(self.db, settings.reputation)
        self.reputation.entities = self.reputation_entities
        self.tenants = Tenants(self.db, self.tags, self.reputation_entities)
        self.sending.admit_tenant = self.tenants.admit
        register_resource("tenant", self.tenants.exists)
        lookup = Lookup(settings.dns)
        self.vdm = Vdm(self.db, lookup)
        self.advisor = Advisor(self.db, settings, lookup, self.vdm)
        self.message_insights = MessageInsights(self.db, self.vdm)
        self.address_insights = AddressInsights(lookup, self.suppression)
        # Sesame's own SNS: topics and Publish (self.sns, also for the event publisher), and the loop
        # that delivers what they queue (self.sns_delivery.run, started by the server in both modes).
        self.sns = Sns(self.db)
        self.sns_signer = Signer(settings.data_dir)
        self.sns_delivery = Deliverer(self.db, settings, self.sns_signer, self.sending.send_system)
        self.sns.on_deliveries = self.sns_delivery.wake
        self.publisher = EventPublisher(
            self.db,
            settings,
            self.sending.send_system,
            topics=self.sns,
            observers=[self.reputation.observe, self.vdm.observe],
        )
        self.event_destinations.topics = self.publisher
        if self.engine is not None:  # publishing gives way to this process's deliveries
            share, wait = settings.events.delivery_share, settings.events.delivery_first_max_wait
            self.publisher.pacing = DeliveryFirst(self.engine.delivering, share, wait)
            self.sns_delivery.pacing = DeliveryFirst(self.engine.delivering, share, wait)
        # Receiving: receipt rules and IP filters (asked per connection and per recipient), the MX's
        # door, received mail and the loop that works out verdicts, feedback and receipt actions.
        self.receipt_rules = ReceiptRules(self.db, topics=self.publisher)
        self.inbox = Inbox(self.db, settings.node_name)
        receiving_dns = Lookup(settings.dns, cache=True)
        self.inbound = Inbound(settings, self.inbox, self.receipt_rules, self._is_ours, receiving_dns)
        aws = self.publisher.aws  # one set of botocore clients for the process
        self.objects = ObjectStore(objects_root(settings.data_dir), aws)
        self.actions = Actions(
            self.inbox,
            self.objects,
            Functions(settings.receiving.functions, aws),
            self.publisher.publish_sns,
            self.sending.send_system,
            reporting_mta=helo_name(settings.delivery),
        )
        mx_name = settings.smtp.hostname or helo_name(settings.delivery)
        scanners = Scanners.from_settings(settings.receiving)
        judge = Judge(receiving_dns, scanners, mx_name)
        if settings.delivery.virus_scan:
            if scanners.clamd is None:
                raise ConfigError("delivery.virus_scan needs a virus scanner: set receiving.clamd")
            self.sending.virus_found = scanners.virus_found
        hours = settings.receiving.retention_hours
        keep = dt.timedelta(hours=hours) if settings.mode == "serve" and hours > 0 else None
        self.receiving = Processor(self.inbox, judge, self._ours, self.actions, retention=keep)
        self.bounces = Bounces(self.inbox, self.sending, mx_name, dev=settings.mode == "dev")
        self.inbound.on_accept = self.receiving.wake
        # Bulk jobs: imports into the destinations of import_sinks (a destination type missing here
        # fails its jobs, saying so), exports of message insights and VDM metrics, run by job_runner.
        self.import_sinks: dict[str, ImportSink] = {
            "SUPPRESSION_LIST": SuppressionListSink(self.db),
            "CONTACT_LIST": ContactListSink(self.db, self.contact_lists),
        }
        self.job_store = JobStore(self.db, lease_owner(settings.node_name, "jobs"))
        self.object_links = ObjectLinks(settings, box, self.objects)
        self.job_runner = JobRunner(
            self.job_store,
            Importer(self.job_store, self.objects, self.import_sinks, settings.jobs),
            Exporter(self.job_store, self.objects, self.vdm, settings.jobs),
            settings.jobs,
        )
        self.jobs = Jobs(
            self.job_store, self.import_sinks, self.object_links, settings.jobs.bucket, self.job_runner.wake
        )
        self.nodes = Nodes(self.db)
        self.providers = {
            "ses": SesV1Provider(self),
            "sesv2": SesV2Provider(self),
            "sns": SnsProvider(self),
        }
        self.authenticator = Authenticator(self.accounts, settings)
        self.dispatch = Dispatcher(self.providers, self.authenticator, translate)

    @property
    def delivers(self) -> bool:
        """Whether this process delivers mail: it has the delivery role, in serve mode unless
        ``delivery.mode = "capture"``."""
        mode = self.settings.delivery.mode or ("capture" if self.settings.mode == "dev" else "smtp")
        return mode == "smtp" and self.settings.delivery.enabled and self.settings.runs("delivery")

    async def _configuration_set_exists(self, account_id: str, region: str, name: str) -> bool:
        try:
            await self.configuration_sets.get(account_id, region, name)
        except ConfigurationSetNotFound:
            return False
        return True

    async def _is_ours(self, address: str) -> bool:
        """Mail the MX takes for Sesame itself: feedback to a return path, a mailto: unsubscribe."""
        return self.unsubscribe.is_mailbox(address) or await self.return_paths.is_return_path(address)

    async def _ours(self, recipient: str, raw: bytes) -> str:
        if self.unsubscribe.is_mailbox(recipient):
            return await self.unsubscribe.receive(raw)
        return await self.feedback.receive(recipient, raw)

    async def _contact_list_exists(self, account_id: str, region: str, name: str) -> bool:
        return await self.contact_lists.topics(account_id, region, name) is not None

    async def _identity_exists(self, account_id: str, region: str, name: str) -> bool:
        return await self.identities.get(account_id, region, name) is not None

    def loops(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The background loops of this process's roles, by name; each runs until cancelled. Every one
        of them is safe to run on several nodes at once (leases, or idempotent passes)."""
        runs, serve = self.settings.runs, self.settings.mode == "serve"
        loops: dict[str, Coroutine[Any, Any, None]] = {}
        if self.settings.http_enabled:  # the /metrics figures, served on every node's HTTP listener
            loops["figures"] = self.keep_figures()
        if serve and (runs("api") or runs("smtp")):  # both authenticate: drop keys others changed
            loops["keys"] = self.accounts.watch_keys()
        if self.engine is not None:
            loops["delivery"] = self.engine.run()
            if not self.db.is_sqlite:  # mail queued by nodes that do not deliver
                engine = self.engine
                loops["queue-wake"] = self.db.listen(q.QUEUE_CHANNEL, lambda _: engine.wake(), lambda _: None)
        if runs("events"):
            loops["events"] = self.publisher.run()
            # SNS deliveries go out in dev mode too: a subscriber's endpoint is the developer's own.
            loops["sns-delivery"] = self.sns_delivery.run()
        if runs("receiving"):
            loops["receiving"] = self.receiving.run()
        if runs("jobs"):
            if self.settings.jobs.enabled:
                loops["jobs"] = self.job_runner.run()
            if serve:  # DNS look-ups for pending identities and VDM, away from the calls
                loops["identities"] = self._recheck_identities()
                loops["vdm"] = self._vdm_pass()
        return loops

    async def _vdm_pass(self) -> None:
        """VDM's DNS work, away from the calls: recipient domains' MX (their ISP) and the Advisor's
        checks of domain identities. Every node may run it; the look-ups are idempotent."""
        while True:
            try:
                await self.vdm.classify_pending()
                await self.advisor.check_due()
            except Exception:
                log.exception("VDM pass failed")
            await asyncio.sleep(self.settings.vdm.pass_interval)

    async def _recheck_identities(self) -> None:
        """Every node may run it; a look-up is idempotent, and each claims the rows it checks by their
        ``last_checked_at``, so several nodes on one PostgreSQL mostly split the work."""
        interval = max(1.0, min(60.0, self.settings.identities.recheck_interval / 4))
        while True:
            try:
                await self.identities.refresh_pending()
            except Exception:
                log.exception("identity verification pass failed")
            await asyncio.sleep(interval)

    async def keep_figures(self) -> None:
        """The /metrics figures that live in the database, read every few seconds (sesame.metrics)."""
        while True:
            try:
                queue = await q.pending_counts(self.db)
                waiting = await inspect.waiting_counts(self.db)
                metrics.QUEUE_ENTRIES.clear()
                for state, n in queue.items():
                    metrics.QUEUE_ENTRIES.labels(state).set(n)
                metrics.PUBLICATIONS.clear()
                for (state, kind), n in waiting.items():
                    metrics.PUBLICATIONS.labels(state, kind).set(n)
            except Exception:
                log.exception("reading the /metrics figures failed")
            await asyncio.sleep(FIGURES_SECONDS)

    def migrate(self) -> None:
        migrate.upgrade(self.settings.database_url)

    async def open(self) -> None:
        """Bring the schema to head and check the secret key against the database (ConfigError if it
        does not read the stored secrets): the first thing every command that uses the database does."""
        try:
            self.migrate()
            await self.box.unlock(self.db)
        except BaseException:
            await self.db.close()
            raise

    async def reset(self) -> None:
        """Dev mode: forget everything (LocalStack/moto test suites reset between tests)."""
        async with self.db.write() as s:
            for table in reversed(Base.metadata.sorted_tables):
                if table is not Meta.__table__:  # the canary belongs to the key, not to the data
                    await s.execute(sa.delete(table))
        self.authenticator.forget()
        self.accounts._key_cache.clear()
        self.receipt_rules.invalidate()

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.close()
        await self.sending.close()
        await self.db.close()
