"""Delivering SNS messages: the loop that claims due deliveries from the outbox (outbox.py), makes
them, and settles each with its outcome; every node runs it, in both modes.

HTTP/S: a POST of the signed JSON document with SNS's headers; a 2xx answer delivers it; a 429, 5xx,
timeout or connection failure is retried per the delivery policy (policy.py); another answer (the
endpoint refuses the message) fails it at once, as SNS does for client errors. Email and email-json:
the text or the JSON document goes to Sesame's own mail queue (``Sending.send_system``), which owns the
message from then on. A delivery out of retries is kept as ``failed`` with its last error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import formataddr
from typing import Any

import httpx

from sesame.config import Settings
from sesame.domain import compose
from sesame.domain.compose import Envelope
from sesame.domain.sending import Outgoing
from sesame.domain.verification import system_sender
from sesame.events.pacing import DeliveryFirst
from sesame.integrations.sns import messages, policy
from sesame.integrations.sns.outbox import Job, Outbox, Outcome
from sesame.integrations.sns.signing import Signer
from sesame.nodes import lease_owner
from sesame.storage.db import Database
from sesame.storage.models import utcnow

log = logging.getLogger(__name__)
# httpx logs every request at INFO: one line per delivery would drown the server's own log.
logging.getLogger("httpx").setLevel(logging.WARNING)

PRUNE_EVERY_SECONDS = 600.0
USER_AGENT = "Amazon Simple Notification Service Agent"

SendMail = Callable[[str, str, Outgoing], Awaitable[str]]


class Retryable(Exception):
    """A failure worth another attempt (the endpoint is down, busy or slow)."""


class Refused(Exception):
    """A failure no retry mends (the endpoint refused the message)."""


class Deliverer:
    def __init__(self, db: Database, settings: Settings, signer: Signer, send_mail: SendMail) -> None:
        self.db = db
        self.settings = settings
        self.config = settings.sns
        self.signer = signer
        self.send_mail = send_mail
        self.worker_id = lease_owner(settings.node_name, "sns")
        self.outbox = Outbox(db, self.worker_id, self.config.lease_seconds)
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        #: Set by the runtime when this process delivers mail: SNS deliveries give way to it.
        self.pacing = DeliveryFirst(None, 1, 0)

    def wake(self) -> None:
        self._wake.set()

    @property
    def urls(self) -> messages.Urls:
        # Read at each use: the server fills public_url in once it knows the port it bound.
        return messages.Urls(self.settings.public_url or f"http://{self.settings.http}")

    async def run(self) -> None:
        """Claim and deliver until cancelled; each delivery runs as a task of its own, so one slow
        endpoint holds up only its own messages."""
        limit = max(1, self.config.concurrency)
        gate = asyncio.Semaphore(limit)
        inflight: set[asyncio.Task[None]] = set()
        pruned = 0.0
        self._client = httpx.AsyncClient(timeout=self.config.http_timeout, follow_redirects=False)
        try:
            while True:
                # Cleared before the claim: a wake-up that comes while claiming is not lost.
                self._wake.clear()
                claimed: list[Job] = []
                room = limit * 2 - len(inflight)
                if room > 0:
                    if inflight and self.pacing.delivering is not None and self.pacing.delivering():
                        # The last batch's posts are its work: let them finish before timing it, but
                        # no longer than a publisher ever waits, so that one slow endpoint cannot hold
                        # up every other subscription's deliveries while mail is being delivered.
                        await asyncio.wait(set(inflight), timeout=self.pacing.max_wait)
                    await self.pacing.turn()
                    try:
                        claimed = await self.outbox.claim(self.pacing.batch(room))
                    except Exception:
                        log.exception("claiming SNS deliveries failed")
                for job in claimed:
                    task = asyncio.create_task(self._one(job, gate))
                    inflight.add(task)
                    task.add_done_callback(self._finished(inflight))
                if time.monotonic() - pruned > PRUNE_EVERY_SECONDS:
                    pruned = time.monotonic()
                    try:
                        await self.outbox.prune()
                    except Exception:
                        log.exception("pruning SNS deliveries failed")
                if not claimed:
                    self.pacing.idle()
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
                    except TimeoutError:
                        pass
        finally:
            for task in inflight:  # a delivery cut short keeps its lease; it is claimed again later
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
            await self._client.aclose()

    def _finished(self, inflight: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            inflight.discard(task)
            if len(inflight) < self.config.concurrency:
                self._wake.set()  # room again: claim more now rather than at the next poll

        return done

    async def _one(self, job: Job, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                outcome = await self.deliver(job)
            except Exception as exc:  # a bug must not leave the row leased until the lease runs out
                log.exception("SNS delivery %s failed unexpectedly", job.id)
                outcome = self._failure(job, Retryable(f"internal error: {exc}"))
            try:
                await self.outbox.settle(outcome)
            except Exception:
                log.exception("recording the outcome of SNS delivery %s failed", job.id)

    # -- delivering ----------------------------------------------------------------------------------

    async def deliver(self, job: Job) -> Outcome:
        if job.kind == "SubscriptionConfirmation" and job.status == "confirmed":
            return Outcome(job.id, "delivered")  # confirmed meanwhile (ConfirmSubscription): moot
        if job.kind == "Notification" and job.message is None:
            return Outcome(job.id, "failed", error="the message is gone")
        try:
            if job.protocol in ("http", "https"):
                await self._post(job)
            else:
                await self._mail(job)
        except (Retryable, Refused) as exc:
            return self._failure(job, exc)
        return Outcome(job.id, "delivered")

    def _failure(self, job: Job, exc: Exception) -> Outcome:
        error = str(exc)[:1000]
        if isinstance(exc, Refused):
            return Outcome(job.id, "failed", error=error)
        if job.protocol in ("http", "https"):
            retry, _ = self._policy(job)
        else:
            retry = policy.EMAIL
        delay = retry.delay(job.attempts)  # attempts counts this one: the next is retry number `attempts`
        if delay is None:
            return Outcome(job.id, "failed", error=error)
        return Outcome(job.id, "pending", utcnow() + dt.timedelta(seconds=delay), error)

    def _policy(self, job: Job) -> tuple[policy.RetryPolicy, str]:
        try:
            return policy.effective(
                job.topic_attributes.get("DeliveryPolicy"), job.subscription_attributes.get("DeliveryPolicy")
            )
        except Exception:  # checked when set; a policy that no longer reads falls back to SNS's default
            return policy.DEFAULT, policy.DEFAULT_CONTENT_TYPE

    def document(self, job: Job) -> dict[str, Any]:
        """The signed JSON document of the delivery (what HTTP/S and email-json subscribers get)."""
        version = str(job.topic_attributes.get("SignatureVersion") or "1")
        if job.kind != "Notification":
            return messages.confirmation(
                kind=job.kind,
                subscription_arn=job.subscription_arn,
                message_id=job.message_id,
                token=job.token,
                topic_arn=job.topic_arn,
                when=job.created_at,
                urls=self.urls,
                signer=self.signer,
                signature_version=version,
            )
        assert job.message is not None and job.published_at is not None
        return messages.notification(
            message_id=job.message_id,
            topic_arn=job.topic_arn,
            subject=job.subject,
            message=messages.for_protocol(job.message, job.structure, job.protocol),
            when=job.published_at,
            subscription_arn=job.subscription_arn,
            attributes=job.message_attributes or {},
            urls=self.urls,
            signer=self.signer,
            signature_version=version,
        )

    async def _post(self, job: Job) -> None:
        _, content_type = self._policy(job)
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "x-amz-sns-message-type": job.kind,
            "x-amz-sns-message-id": job.message_id,
            "x-amz-sns-topic-arn": job.topic_arn,
        }
        raw = (
            job.kind == "Notification"
            and str(job.subscription_attributes.get("RawMessageDelivery")).lower() == "true"
        )
        if job.kind != "SubscriptionConfirmation":  # a subscription that has been confirmed
            headers["x-amz-sns-subscription-arn"] = job.subscription_arn
        if raw:
            assert job.message is not None
            headers["x-amz-sns-rawdelivery"] = "true"
            content = messages.for_protocol(job.message, job.structure, job.protocol).encode("utf-8")
        else:
            content = messages.body(self.document(job))
        assert self._client is not None
        try:
            response = await self._client.post(job.endpoint, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise Retryable(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 429 or status >= 500:
            raise Retryable(f"HTTP {status}")
        raise Refused(f"HTTP {status}")

    async def _mail(self, job: Job) -> None:
        urls = self.urls
        name = job.topic_attributes.get("DisplayName") or ""
        if job.protocol == "email-json":
            subject = (
                messages.CONFIRMATION_SUBJECT
                if job.kind != "Notification"
                else (job.subject or messages.DEFAULT_SUBJECT)
            )
            text = messages.body(self.document(job)).decode("utf-8")
        elif job.kind == "SubscriptionConfirmation":
            subject = messages.CONFIRMATION_SUBJECT
            link = urls.subscribe(job.topic_arn, job.token)
            text = messages.email_confirmation_text(job.topic_arn, name, link)
        else:
            assert job.message is not None
            subject = job.subject or messages.DEFAULT_SUBJECT
            text = messages.email_notification_text(
                messages.for_protocol(job.message, job.structure, job.protocol),
                urls.unsubscribe(job.subscription_arn),
            )
        sender = self.settings.identities.verification_from or system_sender()
        if name and "<" not in sender:  # SNS shows the topic's DisplayName as the sender's name
            sender = formataddr((name, sender))
        try:
            out = compose.simple(
                "SnsNotification",
                job.region,
                Envelope(source=sender, to=[job.endpoint]),
                subject=subject,
                text=text,
                limit=compose.V2_MAX_BYTES,
                summary={
                    "Destination": {"ToAddresses": [job.endpoint]},
                    "Subject": subject,
                    "Body": {"text_part": text, "html_part": None},
                },
            )
        except Exception as exc:
            raise Refused(f"cannot compose the mail: {exc}") from None
        try:
            await self.send_mail(job.account_id, job.region, out)
        except Exception as exc:
            raise Retryable(f"cannot queue the mail: {exc}") from None
