"""The event publisher: dispatches new event records, claims due publications, and publishes each to
its destination kind; outcomes go back to the outbox (published, retried with backoff, or failed).

Per kind: SNS to a topic of Sesame's own when it has one by that ARN, else to the configured SNS
endpoint; Firehose to the configured endpoint, else to JSON-lines files; CloudWatch to the configured
endpoint, else to Prometheus counters; EventBridge to the configured endpoint only; Pinpoint never
(stored, reported failed); email (forwarded feedback) through Sesame's own queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import sqlalchemy as sa

from sesame.config import Settings
from sesame.domain import compose
from sesame.domain.compose import Envelope
from sesame.domain.sending import Outgoing
from sesame.events import records
from sesame.events.outbox import Due, Observer, Outbox, Outcome
from sesame.events.pacing import DeliveryFirst
from sesame.integrations import cloudwatch_local
from sesame.integrations.aws import AwsClients, NoEndpoint, region_of
from sesame.integrations.firehose_files import FirehoseFiles
from sesame.mta.engine import helo_name
from sesame.nodes import lease_owner
from sesame.storage.db import Database
from sesame.storage.models import Message, QueueEntry

log = logging.getLogger(__name__)

#: Enough of a message's start to hold its header section (the records show its headers).
HEAD_BYTES = 64 * 1024
#: Publications sent at once to remote endpoints.
CONCURRENCY = 16


class Topics(Protocol):
    """Sesame's own SNS topics, as the publisher uses them."""

    async def exists(self, topic_arn: str) -> bool: ...

    async def publish(self, topic_arn: str, message: str, subject: str | None = None) -> str: ...


class EventPublisher:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        send_system: Callable[[str, str, Outgoing], Awaitable[str]],
        topics: Topics | None = None,
        observers: list[Observer] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.send_system = send_system
        self.topics = topics
        self.worker_id = lease_owner(settings.node_name, "events")
        self.outbox = Outbox(db, self.worker_id, observers)
        self.aws = AwsClients(settings.aws)
        self.firehose = FirehoseFiles(settings.data_dir / "firehose")
        self._wake = asyncio.Event()
        self._gate = asyncio.Semaphore(CONCURRENCY)
        #: Set by the runtime when this process delivers mail: publishing gives way to it.
        self.pacing = DeliveryFirst(None, 1, 0)
        #: Records built for the batch being published, by (event id, format, headers wanted).
        self._built: dict[tuple[int, str, bool], str] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        conf = self.settings.events
        while True:
            busy = False
            try:
                await self.pacing.turn()
                batch = self.pacing.batch(conf.batch)
                busy = bool(await self.outbox.dispatch(batch))
                claimed = await self.outbox.claim(batch, conf.lease_seconds)
                if claimed:
                    busy = True
                    await self.outbox.settle(claimed, await self.publish(claimed))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event publishing failed; trying again")
            if not busy:
                self.pacing.idle()
                try:
                    await asyncio.wait_for(self._wake.wait(), conf.poll_interval)
                except TimeoutError:
                    pass
                self._wake.clear()

    # -- one batch --------------------------------------------------------------------------------

    async def publish(self, claimed: list[Due]) -> list[Outcome]:
        self._built.clear()
        mails = await self._mails(claimed)
        outcomes: dict[int, Outcome] = {}
        by_stream: dict[str, list[Due]] = defaultdict(list)
        singles: list[Due] = []
        for due in claimed:
            if due.message_id not in mails:
                outcomes[due.id] = Outcome(due.id, "the message is gone", permanent=True)
            elif due.kind == "firehose" and not self.aws.configured("firehose"):
                by_stream[due.target["DeliveryStreamArn"]].append(due)
            else:
                singles.append(due)
        for stream, dues in by_stream.items():
            lines = [self._json(d, mails[d.message_id]).encode() + b"\n" for d in dues]
            try:
                await self.firehose.put(stream.rpartition("/")[2], lines)
                outcomes.update((d.id, Outcome(d.id)) for d in dues)
            except OSError as exc:
                error = f"writing the stream's file failed: {exc}"
                outcomes.update((d.id, Outcome(d.id, error)) for d in dues)

        async def one(due: Due) -> None:
            async with self._gate:
                outcomes[due.id] = await self._one(due, mails[due.message_id])

        await asyncio.gather(*(one(d) for d in singles))
        return [outcomes[d.id] for d in claimed]

    async def _one(self, due: Due, mail: records.Mail) -> Outcome:
        try:
            await self._send(due, mail)
        except NoEndpoint as exc:
            return Outcome(due.id, str(exc))
        except _Permanent as exc:
            return Outcome(due.id, str(exc), permanent=True)
        except Exception as exc:  # the receiver is down, refused, timed out: retried later
            log.info("publishing event %s to %s failed: %s", due.event_id, due.destination, exc)
            return Outcome(due.id, f"{type(exc).__name__}: {exc}"[:1000])
        return Outcome(due.id)

    async def _send(self, due: Due, mail: records.Mail) -> None:
        target = due.target
        if due.kind == "sns":
            subject = records.SNS_SUBJECT if due.format == "event" else None
            await self.publish_sns(due.account_id, target["TopicArn"], self._json(due, mail), subject)
        elif due.kind == "firehose":
            arn = target["DeliveryStreamArn"]
            await self.aws.call(
                "firehose",
                region_of(arn),
                "put_record",
                DeliveryStreamName=arn.rpartition("/")[2],
                Record={"Data": self._json(due, mail).encode() + b"\n"},
            )
        elif due.kind == "eventbridge":
            await self._event_bridge(due, mail)
        elif due.kind == "cloudwatch":
            await self._cloudwatch(due, mail)
        elif due.kind == "email":
            await self._forward(due, mail)
        else:
            raise _Permanent(f"Sesame does not deliver to {due.kind} destinations")

    def _json(self, due: Due, mail: records.Mail) -> str:
        """The record's JSON; one event's record is built once for all its destinations of a batch."""
        key = (due.event_id, due.format, bool(due.target.get("Headers")))
        if (done := self._built.get(key)) is not None:
            return done
        if due.format == "notification":
            record = records.notification(
                due.event_type, due.detail, mail, headers=bool(due.target.get("Headers"))
            )
        else:
            record = records.event_record(due.event_type, due.detail, mail)
        self._built[key] = text = json.dumps(record, separators=(",", ":"))
        return text

    async def topic_available(self, account_id: str, arn: str) -> bool:
        """Whether records can go to this topic: one of Sesame's own in the account, or one the SNS
        endpoint knows."""
        if self.topics is not None and await self.topics.exists(arn):
            return _arn_account(arn) == account_id
        if not self.aws.configured("sns"):
            return False
        try:
            await self.aws.call("sns", region_of(arn), "get_topic_attributes", TopicArn=arn)
        except Exception as exc:  # NotFound, AuthorizationError, or the endpoint is down
            log.info("SNS topic %s cannot be used: %s", arn, exc)
            return False
        return True

    async def announce(self, account_id: str, arn: str, text: str) -> None:
        await self.publish_sns(account_id, arn, text, None)

    async def publish_sns(self, account_id: str, arn: str, message: str, subject: str | None) -> None:
        if self.topics is not None and await self.topics.exists(arn):
            # An account publishes only to its own topics here: another account's topic would need a
            # topic policy, which Sesame's SNS does not keep.
            if _arn_account(arn) != account_id:
                raise _Permanent(f"SNS topic {arn} belongs to another account")
            await self.topics.publish(arn, message, subject)
            return
        if not self.aws.configured("sns"):
            raise NoEndpoint(
                f"SNS topic {arn} is not one of Sesame's and no SNS endpoint is configured "
                "(aws.endpoint_url or aws.endpoints.sns)"
            )
        params: dict[str, Any] = {"TopicArn": arn, "Message": message}
        if subject:
            params["Subject"] = subject
        await self.aws.call("sns", region_of(arn), "publish", **params)

    async def _event_bridge(self, due: Due, mail: records.Mail) -> None:
        arn = due.target["EventBusArn"]
        entry = {
            "Source": "aws.ses",
            "DetailType": records.DETAIL_TYPES[due.event_type],
            "Detail": self._json(due, mail),
            "EventBusName": arn,
            "Resources": [due.target.get("SourceArn", "")],
        }
        result = await self.aws.call("events", region_of(arn), "put_events", Entries=[entry])
        if result.get("FailedEntryCount"):
            failed = result["Entries"][0]
            raise RuntimeError(f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}")

    async def _cloudwatch(self, due: Due, mail: records.Mail) -> None:
        dimensions = _dimensions(due, mail)
        if not self.aws.configured("cloudwatch"):
            cloudwatch_local.record(due.account_id, due.region, due.event_type, dimensions)
            return
        await self.aws.call(
            "cloudwatch",
            due.region,
            "put_metric_data",
            Namespace="AWS/SES",
            MetricData=[
                {"MetricName": due.event_type, "Dimensions": dimensions, "Value": 1.0, "Unit": "Count"}
            ],
        )

    async def _forward(self, due: Due, mail: records.Mail) -> None:
        """Feedback forwarding: a bounce or complaint told by email to the message's return path."""
        address = due.target["Address"]
        subject = next((v for n, v in mail.fields if n.lower() == "subject"), "")
        if due.event_type == "Bounce":
            lines = [
                f"{r['emailAddress']}: {r.get('diagnosticCode') or r.get('status') or 'undeliverable'}"
                for r in due.detail.get("bouncedRecipients", [])
            ]
            title = "Delivery Status Notification (Failure)"
            text = "Your message could not be delivered to:\n\n" + "\n".join(lines)
        else:
            people = [r["emailAddress"] for r in due.detail.get("complainedRecipients", [])]
            title = "Complaint about your message"
            text = "A recipient marked your message as spam:\n\n" + "\n".join(people)
        record = json.dumps(records.event_record(due.event_type, due.detail, mail), indent=2)
        text += f"\n\nMessage ID: {mail.message_id}\nSubject: {subject}\n\nThe event record:\n\n{record}\n"
        out = compose.simple(
            "FeedbackForward",
            due.region,
            Envelope(source=f"MAILER-DAEMON@{helo_name(self.settings.delivery)}", to=[address]),
            subject=f"{title}: {subject}".strip(": "),
            text=text,
            headers=[("Auto-Submitted", "auto-replied")],
            limit=compose.V2_MAX_BYTES,
            summary={"Destination": {"ToAddresses": [address]}, "Subject": title},
        )
        out.envelope_from = ""  # the null reverse-path of reports (RFC 5321 §4.5.5): nothing bounces back
        await self.send_system(due.account_id, due.region, out)

    async def _mails(self, claimed: list[Due]) -> dict[str, records.Mail]:
        ids = sorted({d.message_id for d in claimed})
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    sa.select(
                        Message.id,
                        Message.account_id,
                        Message.region,
                        Message.created_at,
                        Message.source,
                        Message.operation,
                        Message.configuration_set,
                        Message.tags,
                        Message.summary,
                        Message.source_ip,
                        sa.func.substr(Message.body, 1, HEAD_BYTES),
                    ).where(Message.id.in_(ids))
                )
            ).all()
            recipients: dict[str, list[str]] = defaultdict(list)
            for message_id, recipient in await s.execute(
                sa.select(QueueEntry.message_id, QueueEntry.recipient)
                .where(QueueEntry.message_id.in_(ids))
                .order_by(QueueEntry.id)
            ):
                recipients[message_id].append(recipient)
        arns = {d.message_id: d.target.get("SourceArn", "") for d in claimed}
        return {
            r.id: records.Mail(
                message_id=r.id,
                account_id=r.account_id,
                region=r.region,
                timestamp=r.created_at,
                source=r.source,
                source_arn=arns[r.id],
                operation=r.operation,
                configuration_set=r.configuration_set,
                destination=recipients.get(r.id) or _summary_recipients(r.summary),
                header_block=bytes(r[10] or b""),
                tags=dict(r.tags or {}),
                source_ip=r.source_ip,
            )
            for r in rows
        }


def _summary_recipients(summary: dict[str, Any] | None) -> list[str]:
    """The recipients a request named, for messages that have no queue entries (rendering failures)."""
    given = (summary or {}).get("Destination") or {}
    return [*given.get("ToAddresses", []), *given.get("CcAddresses", []), *given.get("BccAddresses", [])]


def _arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


class _Permanent(Exception):
    """A publication no retry will help."""


def _dimensions(due: Due, mail: records.Mail) -> list[dict[str, str]]:
    """A CloudWatch destination's dimensions for one event, valued from its message tags, email
    headers or link tags, else their defaults."""
    tags = records.auto_tags(mail)
    headers = {n.lower(): v for n, v in mail.fields}
    link_tags = due.detail.get("linkTags") or {}
    out = []
    for d in due.target.get("DimensionConfigurations", []):
        name, source = d["DimensionName"], d["DimensionValueSource"]
        value: str | None
        if source == "MESSAGE_TAG":
            value = (tags.get(name) or [""])[0]
        elif source == "EMAIL_HEADER":
            value = headers.get(name.lower())
        else:
            value = (link_tags.get(name) or [""])[0]
        out.append({"Name": name, "Value": value or d["DefaultDimensionValue"]})
    return out
