"""Group commit: one writer task per process writes what callers hand it in batches, one transaction
and one commit (one fsync on SQLite) per batch, and answers every caller once its batch is committed.

Callers hand it a ``Work`` (what to write, as a function run inside the transaction) and an item. A
batch takes up to ``MAX_BATCH`` items in the order they came; the items of one ``Work`` are written
together by one call of its function, which gives one outcome per item. Sends and delivery outcomes
share the writer, so under load they share commits too.

Failures: when the transaction fails, nothing of the batch is written and every caller of the batch gets
the exception. When a batch holds more than one kind of work, each kind is written under a savepoint, so
a kind whose write raises fails only its own callers: a rejected write of accepted mail must not undo
the record that other mail was delivered (its lease would expire and it would go out again).

A ``Work`` function must not submit to the writer itself: it would wait for the batch it runs in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.storage.models import table

if TYPE_CHECKING:
    from sesame.storage.db import Database

log = logging.getLogger(__name__)

#: Items per transaction: large enough that a burst costs few commits, small enough that one batch's
#: transaction stays short (its callers wait for all of it).
MAX_BATCH = 256

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class Work(Generic[T, R]):
    """A kind of write: ``write(session, items)`` writes a batch's items of this kind inside the batch's
    transaction and returns one outcome per item, in order; ``committed(outcomes)`` runs once they are
    committed, before the callers are answered."""

    name: str
    write: Callable[[AsyncSession, list[T]], Awaitable[list[R]]]
    committed: Callable[[list[R]], None] | None = None


@dataclass(slots=True)
class _Pending:
    work: Work[Any, Any]
    item: Any
    future: asyncio.Future[Any]
    outcome: Any = None


class Writer:
    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, work: Work[T, R], item: T) -> R:
        """Write ``item`` with the next batch; its outcome once the batch is committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(work, item, future))
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="sesame-group-commit")
        return await future

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        kinds: dict[Work[Any, Any], list[_Pending]] = {}
        for p in batch:
            kinds.setdefault(p.work, []).append(p)
        failed: dict[Work[Any, Any], Exception] = {}
        try:
            async with self.db.write() as s:
                for work, group in kinds.items():
                    if len(kinds) == 1:
                        await _write(work, s, group)
                        continue
                    try:
                        async with s.begin_nested():
                            await _write(work, s, group)
                    except Exception as exc:  # rolled back to the savepoint; the other kinds go on
                        log.exception("writing %d %s failed", len(group), work.name)
                        failed[work] = exc
        except Exception as exc:  # nothing of the batch was written; every caller hears why
            log.exception("writing a batch of %d failed", len(batch))
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        for work, group in kinds.items():
            if work.committed is not None and work not in failed:
                try:
                    work.committed([p.outcome for p in group])
                except Exception:  # a hook's bug must not leave the batch's callers waiting
                    log.exception("after writing %d %s", len(group), work.name)
        for p in batch:
            if p.future.done():
                continue  # the caller went away; what it handed in is committed all the same
            if p.work in failed:
                p.future.set_exception(failed[p.work])
            else:
                p.future.set_result(p.outcome)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


async def _write(work: Work[Any, Any], s: AsyncSession, group: list[_Pending]) -> None:
    outcomes = await work.write(s, [p.item for p in group])
    for p, outcome in zip(group, outcomes, strict=True):
        p.outcome = outcome


async def insert(s: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``model``'s table, executemany. A Core insert on the table: the ORM's bulk
    insert compiles anew for each batch, where this one's compiled form is cached."""
    if rows:
        await s.execute(sa.insert(table(model)), rows)
