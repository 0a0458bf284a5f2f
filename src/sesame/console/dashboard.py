"""Console pages: the account's dashboard (``/console/dashboard``).

Every figure is read the way the API reads it, so that the page and a client agree:

- sends (DeliveryAttempts), bounces, complaints and rejects: GetSendStatistics' 15-minute points
  (``Sending.statistics`` and ``Reputation.statistics``, merged as the v1 provider merges them), summed
  per hour for the last 24 hours and per UTC day for 14 days;
- quota: GetSendQuota (``send_quota`` with ``Sending.sent_last_24_hours``); sending status, sandbox
  and enforcement: GetAccount's row;
- deliveries, opens and clicks per day: VDM's counters, as BatchGetMetricData answers DELIVERY, OPEN
  and CLICK (single-recipient messages, first opens and clicks); per hour over the last 24 hours: the
  event records themselves (every Delivery, Open and Click), one grouped query on the events table;
- bounce and complaint rates: reputation's window (``Reputation.window_rates``) against the review and
  pause thresholds of ``settings.reputation``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sesame.console.charts import Series, chart
from sesame.console.web import PREFIX, Ctx, page
from sesame.domain.quotas import UNLIMITED_SEND_RATE, send_quota
from sesame.domain.reputation import ACCOUNT
from sesame.domain.vdm import Query
from sesame.storage.models import DeliveryEvent, table, utcnow

if TYPE_CHECKING:
    from sesame.console import Console

HOURS, DAYS = 24, 14
STAT_KEYS = ("DeliveryAttempts", "Bounces", "Complaints", "Rejects")
ENGAGEMENT = {"Delivery": "Deliveries", "Open": "Opens", "Click": "Clicks"}


def routes(console: Console) -> list[BaseRoute]:
    return [Route(f"{PREFIX}/dashboard", page(console, "account", show), methods=["GET"])]


async def send_statistics(ctx: Ctx) -> list[dict[str, Any]]:
    """GetSendStatistics' SendDataPoints, merged as providers/ses_v1.py merges them."""
    points: dict[dt.datetime, dict[str, Any]] = {}

    def point(when: dt.datetime) -> dict[str, Any]:
        return points.setdefault(when, {"Timestamp": when, **dict.fromkeys(STAT_KEYS, 0)})

    for when, n in await ctx.sesame.sending.statistics(ctx.account_id, ctx.region):
        point(when)["DeliveryAttempts"] = n
    for p in await ctx.sesame.reputation.statistics(ctx.account_id, ctx.region):
        point(p.timestamp).update(Bounces=p.bounces, Complaints=p.complaints, Rejects=p.rejects)
    return [points[when] for when in sorted(points)]


def _hour_of(column: Any, is_sqlite: bool) -> Any:
    """An event's UTC hour as text ("2026-12-06 06"), in each dialect's words: SQLite stores UTC
    datetimes as ISO text, PostgreSQL as timestamptz."""
    if is_sqlite:
        return sa.func.substr(column, 1, 13)
    return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD HH24")


async def hourly_engagement(ctx: Ctx, since: dt.datetime) -> dict[tuple[str, str], int]:
    """Delivery, Open and Click records per (type, UTC hour) since ``since``: one grouped query."""
    db = ctx.sesame.db
    e = table(DeliveryEvent)
    hour = _hour_of(e.c.created_at, db.is_sqlite)
    stmt = (
        sa.select(e.c.event_type, hour, sa.func.count())
        .where(
            e.c.created_at >= since,
            e.c.account_id == ctx.account_id,
            e.c.region == ctx.region,
            e.c.event_type.in_(list(ENGAGEMENT)),
        )
        .group_by(e.c.event_type, hour)
    )
    async with db.read() as s:
        return {(kind, str(h)): int(n) for kind, h, n in await s.execute(stmt)}


def figure(value: float) -> str:
    """A quota figure as GetSendQuota gives it, written plainly (never "1e+06")."""
    return str(int(value)) if value == int(value) else f"{value:.2f}"


@dataclass(frozen=True)
class Threshold:
    name: str
    rate: float
    review: float
    pause: float

    @property
    def level(self) -> str:
        if self.rate >= self.pause:
            return "bad"
        return "warn" if self.rate >= self.review else "ok"


async def show(ctx: Ctx) -> Response:
    sesame = ctx.sesame
    now = utcnow()
    row = await sesame.accounts.region(ctx.account_id, ctx.region)
    quota = send_quota(row, await sesame.sending.sent_last_24_hours(ctx.account_id, ctx.region))
    points = await send_statistics(ctx)

    # Last 24 hours, per hour; 14 days, per UTC day (the oldest point is 14 days old).
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - dt.timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
    today = now.date()
    days = [today - dt.timedelta(days=DAYS - i) for i in range(DAYS + 1)]
    by_hour = {h: dict.fromkeys(STAT_KEYS, 0) for h in hours}
    by_day = {d: dict.fromkeys(STAT_KEYS, 0) for d in days}
    for p in points:
        when: dt.datetime = p["Timestamp"]
        h = when.replace(minute=0, second=0, microsecond=0)
        for key in STAT_KEYS:
            if h in by_hour:
                by_hour[h][key] += p[key]
            if when.date() in by_day:
                by_day[when.date()][key] += p[key]
    totals = {key: sum(p[key] for p in points) for key in STAT_KEYS}
    day_totals = {key: sum(v[key] for v in by_hour.values()) for key in STAT_KEYS}

    engagement = await hourly_engagement(ctx, hours[0])
    start = dt.datetime.combine(days[0], dt.time(), dt.UTC)
    vdm = {
        label: await sesame.vdm.metric(ctx.account_id, ctx.region, Query(metric, metric, {}, start, now))
        for metric, label in (("DELIVERY", "Deliveries"), ("OPEN", "Opens"), ("CLICK", "Clicks"))
    }
    hour_labels = [h.strftime("%H:00") for h in hours]
    day_labels = [d.strftime("%b %d") for d in days]
    hourly = [Series(n, [by_hour[h][k] for h in hours]) for k, n in _NAMES]
    hourly += [
        Series(label, [engagement.get((kind, h.strftime("%Y-%m-%d %H")), 0) for h in hours])
        for kind, label in ENGAGEMENT.items()
    ]
    daily = [Series(n, [by_day[d][k] for d in days]) for k, n in _NAMES]
    daily += [Series(f"{label} (VDM)", [n for _, n in values]) for label, values in vdm.items()]
    day_engagement = {label: sum(engagement.get((kind, h.strftime("%Y-%m-%d %H")), 0) for h in hours)
                      for kind, label in ENGAGEMENT.items()}  # fmt: skip

    async with sesame.db.read() as s:
        rates = await sesame.reputation.window_rates(s, (ctx.account_id, ctx.region, ACCOUNT))
    conf = sesame.settings.reputation
    thresholds = [
        Threshold("Bounce rate", rates.bounce_rate, conf.bounce_review, conf.bounce_pause),
        Threshold("Complaint rate", rates.complaint_rate, conf.complaint_review, conf.complaint_pause),
    ]
    return ctx.render(
        "dashboard.html",
        row=row,
        quota=quota,
        totals=totals,
        day_totals=day_totals,
        day_engagement=day_engagement,
        vdm_totals={label: sum(n for _, n in values) for label, values in vdm.items()},
        hourly_chart=chart("Last 24 hours, per hour (UTC)", hour_labels, hourly),
        daily_chart=chart("Last 14 days, per day (UTC)", day_labels, daily, kind="bar"),
        rates=rates,
        thresholds=thresholds,
        min_sends=conf.min_sends,
        figure=figure,
        unlimited_rate=UNLIMITED_SEND_RATE,
        now=now,
    )


_NAMES = (("DeliveryAttempts", "Sends"), ("Bounces", "Bounces"), ("Complaints", "Complaints"),
          ("Rejects", "Rejects"))  # fmt: skip
