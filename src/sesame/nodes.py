"""The node registry: every Sesame process sharing a database says, every HEARTBEAT_SECONDS, that it is
alive and what it runs, in the ``nodes`` table, so the operator's console can list a deployment's
processes (several ``sesame serve`` on one PostgreSQL, or beside each other on one SQLite file).

A process that stops cleanly removes its own row. One that is killed stops being seen: it is shown as
gone after GONE_AFTER seconds and its row is swept by any other node after SWEEP_AFTER.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from sesame.storage.db import Database
from sesame.storage.models import Node, utcnow

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
GONE_AFTER = 3 * HEARTBEAT_SECONDS
SWEEP_AFTER = dt.timedelta(days=1)


def lease_owner(node: str, loop: str) -> str:
    """The name one loop of this process writes into the leases it takes (``locked_by``, 64 characters):
    the node's name, so that an operator sees whose lease it is, and a random part, so that two
    processes given the same ``--node-id`` by mistake still never take each other's leases for theirs."""
    return f"{node[:40]}/{loop[:12]}/{uuid.uuid4().hex[:8]}"


@dataclass
class NodeInfo:
    id: str
    mode: str
    roles: list[str]
    listeners: dict[str, str]
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: dt.datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Seen:
    row: Node
    alive: bool


class Nodes:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def beat(self, info: NodeInfo) -> None:
        now = utcnow()
        async with self.db.write() as s:
            row = await s.get(Node, info.id)
            if row is None:
                row = Node(id=info.id)
                s.add(row)
            # A node started again under its --node-id (after a crash, row left behind) is this process
            # now: its host, pid and start, not the dead one's.
            row.host, row.pid, row.started_at = info.host, info.pid, info.started_at
            row.mode, row.roles, row.listeners, row.seen_at = info.mode, info.roles, info.listeners, now
            await s.execute(sa.delete(Node).where(Node.seen_at < now - SWEEP_AFTER))

    async def run(self, info: NodeInfo) -> None:
        """Heartbeat until cancelled, then remove this node's row."""
        try:
            while True:
                try:
                    await self.beat(info)
                except Exception:  # a missed beat only makes the node look gone for a while
                    log.exception("node heartbeat failed")
                await asyncio.sleep(HEARTBEAT_SECONDS)
        finally:
            try:
                async with self.db.write() as s:
                    await s.execute(sa.delete(Node).where(Node.id == info.id))
            except Exception:
                log.warning("could not remove this node's row; it will be shown as gone", exc_info=True)

    async def list(self) -> list[Seen]:
        """Every node, alive ones first, then by when each started."""
        now = utcnow()
        async with self.db.read() as s:
            rows = list(await s.scalars(sa.select(Node).order_by(Node.started_at)))
        seen = [Seen(r, (now - r.seen_at).total_seconds() <= GONE_AFTER) for r in rows]
        return sorted(seen, key=lambda n: not n.alive)
