"""The bulk-job table: jobs created, claimed with leases, their progress saved, finished.

A claim marks a job PROCESSING and leases it to one worker (``locked_by``, ``locked_until``): on
PostgreSQL the claim skips jobs other nodes are claiming (``FOR UPDATE SKIP LOCKED``), on SQLite the
write lock serializes claims. Every write a running job makes goes through ``guard``, in the same
transaction as the records it writes: it renews the lease, saves the progress, and fails (so the
transaction rolls back) when the job is no longer this worker's, because it was cancelled or because its
lease ran out and another worker took it. A job is then never written by two workers at once.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.errors import InvalidRequest, NotFound
from sesame.storage.db import Database
from sesame.storage.models import BulkJob, BulkJobFailure, table, utcnow

#: A job in one of these is waiting or running; the others are final.
OPEN = ("CREATED", "PROCESSING")
FINAL = ("COMPLETED", "FAILED", "CANCELLED")


class JobNotFound(NotFound):
    pass


class JobNotCancellable(InvalidRequest):
    pass


class JobLost(Exception):
    """The job is not this worker's any more: cancelled, or its lease expired and another took it."""


@dataclass(frozen=True)
class Claimed:
    """A job leased to this worker, as the claim found it."""

    id: str
    account_id: str
    region: str
    kind: str
    source_type: str
    spec: dict[str, Any]
    position: int
    line: int
    processed: int
    failed: int
    attempts: int
    #: Why the last try did not finish (a source that could not be read), if it did not.
    error_message: str | None


def new_job_id() -> str:
    return str(uuid.uuid4())


def worker_name() -> str:
    return f"jobs-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"[:64]


_JOBS, _FAILURES = table(BulkJob), table(BulkJobFailure)
_NEW_FAILURES = sa.insert(_FAILURES)


class JobStore:
    def __init__(self, db: Database, worker_id: str | None = None) -> None:
        self.db = db
        self.worker_id = worker_id or worker_name()

    # -- the API's side ---------------------------------------------------------------------------

    async def create(
        self, account_id: str, region: str, kind: str, source_type: str, spec: dict[str, Any]
    ) -> str:
        job_id = new_job_id()
        async with self.db.write() as s:
            s.add(
                BulkJob(
                    id=job_id,
                    account_id=account_id,
                    region=region,
                    kind=kind,
                    source_type=source_type,
                    spec=spec,
                    status="CREATED",
                    created_at=utcnow(),
                    processed=0,
                    failed=0,
                    exported=0,
                    position=0,
                    line=0,
                    attempts=0,
                )
            )
        return job_id

    async def get(self, account_id: str, region: str, kind: str, job_id: str) -> BulkJob:
        async with self.db.read() as s:
            row = await s.get(BulkJob, job_id)
        if row is None or (row.account_id, row.region, row.kind) != (account_id, region, kind):
            raise JobNotFound(f"Job {job_id} does not exist.")
        return row

    async def page(
        self,
        account_id: str,
        region: str,
        kind: str,
        *,
        source_type: str | None = None,
        status: str | None = None,
        after: tuple[dt.datetime, str] | None = None,
        limit: int,
    ) -> tuple[list[BulkJob], tuple[dt.datetime, str] | None]:
        """One page of an account's jobs, newest first; the (created_at, id) to continue after."""
        j = BulkJob
        q = sa.select(j).where(j.account_id == account_id, j.region == region, j.kind == kind)
        if source_type:
            q = q.where(j.source_type == source_type)
        if status:
            q = q.where(j.status == status)
        if after:
            at, last = after
            q = q.where(sa.or_(j.created_at < at, sa.and_(j.created_at == at, j.id < last)))
        q = q.order_by(j.created_at.desc(), j.id.desc()).limit(limit + 1)
        async with self.db.read() as s:
            rows = list(await s.scalars(q))
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, (rows[-1].created_at, rows[-1].id)

    async def cancel(self, account_id: str, region: str, kind: str, job_id: str) -> None:
        """CancelExportJob: a waiting or running job stops (its worker notices at its next write)."""
        await self.get(account_id, region, kind, job_id)
        async with self.db.write() as s:
            result = await s.execute(
                sa.update(BulkJob)
                .where(BulkJob.id == job_id, BulkJob.status.in_(OPEN))
                .values(status="CANCELLED", completed_at=utcnow(), locked_by=None, locked_until=None)
            )
            if not getattr(result, "rowcount", 0):
                status = await s.scalar(sa.select(BulkJob.status).where(BulkJob.id == job_id))
                raise JobNotCancellable(f"Job {job_id} is {status} and can no longer be cancelled.")

    # -- the workers' side ------------------------------------------------------------------------

    async def claim(self, limit: int, lease: float) -> list[Claimed]:
        """Lease up to ``limit`` jobs: new ones, and running ones whose lease ran out (their worker died),
        oldest first."""
        now = utcnow()
        j = BulkJob
        due = sa.and_(j.status.in_(OPEN), sa.or_(j.locked_until.is_(None), j.locked_until < now))
        async with self.db.read() as s:  # most looks find nothing: no write lock for them
            if await s.scalar(sa.select(j.id).where(due).limit(1)) is None:
                return []
        pick = sa.select(j.id).where(due).order_by(j.created_at).limit(limit)
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        async with self.db.write() as s:
            ids = list(await s.scalars(pick))
            if not ids:
                return []
            rows = await s.execute(
                sa.update(j)
                .where(j.id.in_(ids))
                .values(
                    status="PROCESSING",
                    locked_by=self.worker_id,
                    locked_until=now + dt.timedelta(seconds=lease),
                    attempts=j.attempts + 1,
                )
                .returning(
                    j.id, j.account_id, j.region, j.kind, j.source_type, j.spec, j.position, j.line,
                    j.processed, j.failed, j.attempts, j.error_message,
                )
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            return [Claimed(*r) for r in rows]

    async def guard(self, s: AsyncSession, job_id: str, lease: float, **values: Any) -> None:
        """Inside a write transaction: renew this worker's lease of a running job and set ``values``;
        JobLost (roll the transaction back) if the job is not this worker's to write any more."""
        result = await s.execute(
            sa.update(_JOBS)
            .where(_JOBS.c.id == job_id, _JOBS.c.locked_by == self.worker_id, _JOBS.c.status == "PROCESSING")
            .values({"locked_until": utcnow() + dt.timedelta(seconds=lease), **values})
        )
        if not getattr(result, "rowcount", 0):
            raise JobLost(job_id)

    async def heartbeat(self, job_id: str, lease: float, **values: Any) -> None:
        async with self.db.write() as s:
            await self.guard(s, job_id, lease, **values)

    async def add_failures(
        self, s: AsyncSession, job_id: str, failures: Sequence[tuple[int, str, str]]
    ) -> None:
        if failures:
            await s.execute(
                _NEW_FAILURES,
                [{"job_id": job_id, "line": n, "record": r, "error": e} for n, r, e in failures],
            )

    async def failures(self, job_id: str, after: int, limit: int) -> list[tuple[int, str, str]]:
        """The records an import could not take, in line order, after line ``after``."""
        f = BulkJobFailure
        async with self.db.read() as s:
            rows = await s.execute(
                sa.select(f.line, f.record, f.error)
                .where(f.job_id == job_id, f.line > after)
                .order_by(f.line)
                .limit(limit)
            )
            return [(n, r, e) for n, r, e in rows]

    async def finish(self, job_id: str, status: str, **values: Any) -> bool:
        """Close a job this worker holds (COMPLETED or FAILED); False if it was not this worker's."""
        if status == "COMPLETED":
            values.setdefault("error_message", None)  # a try that failed before this one
        try:
            async with self.db.write() as s:
                await self.guard(
                    s,
                    job_id,
                    0,
                    status=status,
                    completed_at=utcnow(),
                    locked_by=None,
                    locked_until=None,
                    **values,
                )
        except JobLost:
            return False
        return True

    async def release(self, job_id: str, delay: float, error: str) -> None:
        """Let a job go for now (its source could not be read): any worker tries again after ``delay``."""
        async with self.db.write() as s:
            await s.execute(
                sa.update(BulkJob)
                .where(
                    BulkJob.id == job_id, BulkJob.locked_by == self.worker_id, BulkJob.status == "PROCESSING"
                )
                .values(
                    locked_by=None, locked_until=utcnow() + dt.timedelta(seconds=delay), error_message=error
                )
            )

    # -- for ``sesame jobs`` ----------------------------------------------------------------------

    async def recent(self, limit: int = 50) -> list[BulkJob]:
        """Every account's jobs: the open ones, then the newest finished ones."""
        async with self.db.read() as s:
            running = list(
                await s.scalars(
                    sa.select(BulkJob).where(BulkJob.status.in_(OPEN)).order_by(BulkJob.created_at)
                )
            )
            done = list(
                await s.scalars(
                    sa.select(BulkJob)
                    .where(BulkJob.status.in_(FINAL))
                    .order_by(BulkJob.completed_at.desc())
                    .limit(limit)
                )
            )
        return running + done
