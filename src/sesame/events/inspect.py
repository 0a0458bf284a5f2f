"""What operators and developers see of event publishing: ``sesame events`` (through the admin API) and,
in dev mode, ``GET /_sesame/events``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sesame.events.outbox import undispatched
from sesame.storage.db import Database
from sesame.storage.models import DeliveryEvent, Publication, utcnow

LIST_LIMIT = 200


def _publication(p: Any) -> dict[str, Any]:
    return {
        "Id": p.id,
        "EventId": p.event_id,
        "MessageId": p.message_id,
        "AccountId": p.account_id,
        "Destination": p.destination,
        "Kind": p.kind,
        "Format": p.format,
        "State": p.state,
        "Attempts": p.attempts,
        "NextAttemptAt": p.next_attempt_at.isoformat(),
        "LastError": p.last_error,
        "PublishedAt": p.published_at.isoformat() if p.published_at else None,
    }


async def summary(db: Database) -> dict[str, Any]:
    """Publications counted by state and destination kind, and the pending and failed ones (newest
    first), each with its last error."""
    async with db.read() as s:
        counts = await s.execute(
            sa.select(Publication.state, Publication.kind, sa.func.count())
            .group_by(Publication.state, Publication.kind)
            .order_by(Publication.state, Publication.kind)
        )
        waiting = await s.scalar(
            sa.select(sa.func.count()).select_from(DeliveryEvent).where(undispatched(db))
        )
        stuck = await s.scalars(
            sa.select(Publication)
            .where(Publication.state.in_(("pending", "failed")))
            .order_by(Publication.id.desc())
            .limit(LIST_LIMIT)
        )
        return {
            "Counts": [{"State": st, "Kind": k, "Count": n} for st, k, n in counts],
            "Undispatched": int(waiting or 0),
            "Publications": [_publication(p) for p in stuck],
        }


async def waiting_counts(db: Database) -> dict[tuple[str, str], int]:
    """Publications waiting or failed, by (state, kind)."""
    async with db.read() as s:
        rows = await s.execute(
            sa.select(Publication.state, Publication.kind, sa.func.count())
            .where(Publication.state.in_(("pending", "failed")))
            .group_by(Publication.state, Publication.kind)
        )
        return {(state, kind): n for state, kind, n in rows}


async def retry(db: Database, ids: list[int] | None) -> int:
    """Failed (or waiting) publications become due now, their day of retries started over; ``None``
    means every one. How many."""
    condition: sa.ColumnElement[bool] = Publication.state.in_(("pending", "failed"))
    if ids is not None:
        condition = sa.and_(condition, Publication.id.in_(ids))
    now = utcnow()
    async with db.write() as s:
        result = await s.execute(
            sa.update(Publication)
            .where(condition)
            .values(state="pending", next_attempt_at=now, created_at=now, locked_by=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


async def recent(db: Database, after: int = 0, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """Event records newer than id ``after`` (oldest first; the newest ``limit`` when ``after`` is 0),
    each with where it went."""
    async with db.read() as s:
        q = sa.select(DeliveryEvent).where(DeliveryEvent.id > after)
        q = q.order_by(DeliveryEvent.id.desc() if not after else DeliveryEvent.id).limit(limit)
        rows = sorted(await s.scalars(q), key=lambda r: r.id)
        if not rows:
            return []
        publications: dict[int, list[dict[str, Any]]] = {}
        wanted = sa.select(Publication).where(Publication.event_id.in_([r.id for r in rows]))
        for p in await s.scalars(wanted.order_by(Publication.id)):
            publications.setdefault(p.event_id, []).append(_publication(p))
        return [
            {
                "Id": r.id,
                "MessageId": r.message_id,
                "AccountId": r.account_id,
                "Region": r.region,
                "EventType": r.event_type,
                "At": r.created_at.isoformat(),
                "Detail": r.detail,
                "Dispatched": r.dispatched,
                "Publications": publications.get(r.id, []),
            }
            for r in rows
        ]


async def clear(db: Database) -> None:
    """Dev mode: forget every record and publication."""
    async with db.write() as s:
        await s.execute(sa.delete(Publication))
        await s.execute(sa.delete(DeliveryEvent))
