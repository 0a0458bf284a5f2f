"""Running an export job (CreateExportJob): the rows of its data source, written as one CSV or JSON
file to the jobs bucket, whose URL GetExportJob gives as ExportDestination.S3Url (reference §12.5).

MESSAGE_INSIGHTS: one row per message and recipient, newest message first, of the account's mail sent
between StartDate and EndDate (both inclusive), kept when it matches Include (if given) and does not
match Exclude (if given), until MaxResults rows (default 1,000). Columns: MessageId, Timestamp (when the
message was accepted), FromEmailAddress, Destination, Subject, Isp, LastDeliveryEvent,
LastEngagementEvent, EmailTags (as GetMessageInsights shows them; in CSV a JSON string). The last
delivery event is the furthest along ``SEND < *_BOUNCE < DELIVERY < COMPLAINT``, the last engagement
event along ``OPEN < CLICK``, among the events GetMessageInsights shows for that recipient.

METRICS_DATA: one row per day, combination of the dimension values asked for, and metric: Timestamp
(the UTC day), one column per dimension, Metric, Aggregation, Value. VOLUME is the day's count, as
BatchGetMetricData gives it; RATE is that count over its denominator the same day (0 when the
denominator is 0), as a ratio: DELIVERY and the bounces over SEND, COMPLAINT over DELIVERY_COMPLAINT,
OPEN over DELIVERY_OPEN, CLICK over DELIVERY_CLICK, the DELIVERY_* metrics over DELIVERY, SEND over
itself. Like BatchGetMetricData, it needs VDM enabled for the account.

JSON files hold one object per line (JSON Lines), as SES's import files do.
ProcessedRecordsCount counts the rows looked at, ExportedRecordsCount those written.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sesame.config import JobsSettings
from sesame.domain import isps
from sesame.domain.message_insights import email_tags, per_recipient
from sesame.domain.vdm import Query, Vdm
from sesame.events.outbox import USER_OPERATIONS
from sesame.integrations.objects import ObjectStore
from sesame.jobs.filters import Filters
from sesame.jobs.store import Claimed, JobLost, JobStore
from sesame.storage.models import DeliveryEvent, Message, QueueEntry, VdmIspDomain

INSIGHT_COLUMNS = [
    "MessageId", "Timestamp", "FromEmailAddress", "Destination", "Subject", "Isp", "LastDeliveryEvent",
    "LastEngagementEvent", "EmailTags",
]  # fmt: skip
#: MaxResults when the request gives none (the model's documentation).
DEFAULT_MAX_RESULTS = 1000
#: Messages read per query.
_PAGE = 500
_DELIVERY_RANK = {"SEND": 0, "BOUNCE": 1, "DELIVERY": 2, "COMPLAINT": 3}
_ENGAGEMENT_RANK = {"OPEN": 0, "CLICK": 1}
DENOMINATOR = {
    "SEND": "SEND", "DELIVERY": "SEND", "PERMANENT_BOUNCE": "SEND", "TRANSIENT_BOUNCE": "SEND",
    "COMPLAINT": "DELIVERY_COMPLAINT", "OPEN": "DELIVERY_OPEN", "CLICK": "DELIVERY_CLICK",
    "DELIVERY_OPEN": "DELIVERY", "DELIVERY_CLICK": "DELIVERY", "DELIVERY_COMPLAINT": "DELIVERY",
}  # fmt: skip


class ExportFailed(Exception):
    """The export cannot be made; the message is the job's ErrorMessage."""


def export_key(account_id: str, job_id: str, data_format: str) -> str:
    return f"exports/{account_id}/{job_id}.{data_format.lower()}"


def when(value: Any) -> dt.datetime:
    """A stored timestamp (epoch seconds, as ``spec`` keeps them) as a datetime."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromtimestamp(float(value), dt.UTC)


def metric_rows_count(source: dict[str, Any]) -> int:
    """How many rows a METRICS_DATA export has (CreateExportJob refuses one too large)."""
    combos = 1
    for values in source["Dimensions"].values():
        combos *= len(values)
    span = (when(source["EndDate"]).date() - when(source["StartDate"]).date()).days + 1
    return combos * len(source["Metrics"]) * max(span, 0)


class Exporter:
    def __init__(self, store: JobStore, objects: ObjectStore, vdm: Vdm, settings: JobsSettings) -> None:
        self.store = store
        self.db = store.db
        self.objects = objects
        self.vdm = vdm
        self.settings = settings

    async def run(self, job: Claimed) -> None:
        data_format = job.spec["ExportDestination"]["DataFormat"]
        source = job.spec["ExportDataSource"]
        try:
            if job.source_type == "MESSAGE_INSIGHTS":
                columns = INSIGHT_COLUMNS
                rows = self._insights(job, source["MessageInsightsDataSource"])
            else:
                metrics = source["MetricsDataSource"]
                if not await self.vdm.enabled(job.account_id, job.region):
                    raise ExportFailed("Virtual Deliverability Manager is not enabled for this account.")
                columns = ["Timestamp", *metrics["Dimensions"], "Metric", "Aggregation", "Value"]
                rows = self._metrics(job, metrics)
            key = export_key(job.account_id, job.id, data_format)
            exported = await self._write(job, rows, columns, data_format, key)
        except ExportFailed as exc:
            await self.store.finish(job.id, "FAILED", error_message=str(exc))
            return
        if not await self.store.finish(job.id, "COMPLETED", result_key=key, exported=exported):
            raise JobLost(job.id)

    async def _write(
        self,
        job: Claimed,
        rows: AsyncIterator[dict[str, Any]],
        columns: list[str],
        data_format: str,
        key: str,
    ) -> int:
        """Stream ``rows`` into a file, then store it; the rows written."""
        exported = 0
        with tempfile.TemporaryDirectory(prefix="sesame-job-") as tmp:
            path = Path(tmp) / "export"
            with path.open("w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, columns) if data_format == "CSV" else None
                if writer is not None:
                    writer.writeheader()
                async for row in rows:
                    if writer is not None:
                        writer.writerow({k: _cell(v) for k, v in row.items()})
                    else:
                        f.write(json.dumps(row, default=_json_value) + "\n")
                    exported += 1
            await self.objects.put_file(self.settings.bucket, key, path, region=job.region)
        return exported

    # -- MESSAGE_INSIGHTS -------------------------------------------------------------------------

    async def _insights(self, job: Claimed, source: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        include, exclude = Filters(source.get("Include")), Filters(source.get("Exclude"))
        limit = int(source.get("MaxResults") or DEFAULT_MAX_RESULTS)
        start, end = when(source["StartDate"]), when(source["EndDate"])
        m = Message
        base = (
            sa.select(
                m.id, m.account_id, m.region, m.created_at, m.source, m.from_address, m.subject,
                m.configuration_set, m.tags, m.operation, m.source_ip,
            )
            .where(
                m.account_id == job.account_id, m.region == job.region, m.created_at.between(start, end),
                m.operation.in_(sorted(USER_OPERATIONS)),
            )
            .order_by(m.created_at.desc(), m.id.desc())
            .limit(_PAGE)
        )  # fmt: skip
        after: tuple[dt.datetime, str] | None = None
        processed = exported = 0
        while exported < limit:
            q = base
            if after is not None:
                q = q.where(
                    sa.or_(m.created_at < after[0], sa.and_(m.created_at == after[0], m.id < after[1]))
                )
            async with self.db.read() as s:
                messages = (await s.execute(q)).all()
                if not messages:
                    break
                ids = [r.id for r in messages]
                recipients, events = await self._recipients_and_events(s, ids)
                domains = {r.rpartition("@")[2].lower() for rs in recipients.values() for r in rs}
                known = await _isps(s, domains)
            after = (messages[-1].created_at, messages[-1].id)
            for message in messages:
                to = recipients.get(message.id, [])
                insights = per_recipient(to, events.get(message.id, []))
                tags = email_tags(message, to)
                for insight in insights.values():
                    processed += 1
                    row = _insight_row(message, insight, known, tags)
                    if (include.empty or include.matches(row)) and (
                        exclude.empty or not exclude.matches(row)
                    ):
                        yield row
                        exported += 1
                        if exported >= limit:
                            break
                if exported >= limit:
                    break
            # Each page renews the lease and saves the count; a cancelled job stops here.
            await self.store.heartbeat(job.id, self.settings.lease_seconds, processed=processed)

    @staticmethod
    async def _recipients_and_events(
        s: Any, ids: list[str]
    ) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, dt.datetime, Any]]]]:
        recipients: dict[str, list[str]] = defaultdict(list)
        rows = await s.execute(
            sa.select(QueueEntry.message_id, QueueEntry.recipient)
            .where(QueueEntry.message_id.in_(ids))
            .order_by(QueueEntry.id)
        )
        for message_id, recipient in rows:
            recipients[message_id].append(recipient)
        events: dict[str, list[tuple[str, dt.datetime, Any]]] = defaultdict(list)
        rows = await s.execute(
            sa.select(DeliveryEvent.message_id, DeliveryEvent.event_type, DeliveryEvent.created_at,
                      DeliveryEvent.detail)
            .where(DeliveryEvent.message_id.in_(ids))
            .order_by(DeliveryEvent.id)
        )  # fmt: skip
        for message_id, event_type, created_at, detail in rows:
            events[message_id].append((event_type, created_at, detail))
        return recipients, events

    # -- METRICS_DATA -----------------------------------------------------------------------------

    async def _metrics(self, job: Claimed, source: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        start, end = when(source["StartDate"]), when(source["EndDate"])
        names = list(source["Dimensions"])
        wanted = [(m["Name"], m.get("Aggregation") or "VOLUME") for m in source["Metrics"]]
        processed = 0
        for combo in itertools.product(*(source["Dimensions"][n] for n in names)):
            dimensions = dict(zip(names, combo, strict=True))
            needed = {m for m, _ in wanted} | {DENOMINATOR[m] for m, a in wanted if a == "RATE"}
            series = {
                metric: await self.vdm.metric(
                    job.account_id, job.region, Query(metric, metric, dimensions, start, end)
                )
                for metric in sorted(needed)
            }
            for metric, aggregation in wanted:
                counts = series[metric]
                below = series[DENOMINATOR[metric]] if aggregation == "RATE" else counts
                for (day, n), (_, d) in zip(counts, below, strict=True):
                    value: float | int = n if aggregation == "VOLUME" else (round(n / d, 6) if d else 0.0)
                    processed += 1
                    yield {"Timestamp": day, **dimensions, "Metric": metric, "Aggregation": aggregation,
                           "Value": value}  # fmt: skip
            await self.store.heartbeat(job.id, self.settings.lease_seconds, processed=processed)


def _insight_row(
    message: Any, insight: dict[str, Any], known: dict[str, str], tags: list[dict[str, str]]
) -> dict[str, Any]:
    delivery = engagement = None
    for event in insight["Events"]:
        kind = event["Type"]
        if kind in _DELIVERY_RANK and (
            delivery is None or _DELIVERY_RANK[kind] >= _DELIVERY_RANK[delivery["Type"]]
        ):
            delivery = event
        if kind in _ENGAGEMENT_RANK and (
            engagement is None or _ENGAGEMENT_RANK[kind] >= _ENGAGEMENT_RANK[engagement["Type"]]
        ):
            engagement = event
    last_delivery = delivery["Type"] if delivery else None
    if delivery is not None and last_delivery == "BOUNCE":
        bounce_type = delivery.get("Details", {}).get("Bounce", {}).get("BounceType", "UNDETERMINED")
        last_delivery = f"{bounce_type}_BOUNCE"
    destination = insight["Destination"]
    return {
        "MessageId": message.id,
        "Timestamp": message.created_at,
        "FromEmailAddress": message.from_address,
        "Destination": destination,
        "Subject": message.subject or "",
        "Isp": known.get(destination.rpartition("@")[2].lower(), isps.OTHER),
        "LastDeliveryEvent": last_delivery,
        "LastEngagementEvent": engagement["Type"] if engagement else None,
        "EmailTags": tags,
    }


async def _isps(s: Any, domains: set[str]) -> dict[str, str]:
    """Each recipient domain's provider, as far as it is known (no DNS look-ups here: a domain not
    known yet is Other, as in the metrics until the background pass has looked it up)."""
    out = {d: isp for d in domains if (isp := isps.by_domain(d))}
    rest = sorted(domains - out.keys())
    for chunk in (rest[i : i + 500] for i in range(0, len(rest), 500)):
        rows = await s.execute(
            sa.select(VdmIspDomain.domain, VdmIspDomain.isp).where(
                VdmIspDomain.domain.in_(chunk), VdmIspDomain.isp.is_not(None)
            )
        )
        out.update({d: isp for d, isp in rows if isp})
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return str(_json_value(value))
    if isinstance(value, list | dict):
        return json.dumps(value, default=_json_value)
    return str(value)
