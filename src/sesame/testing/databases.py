"""Throwaway databases for tests: a SQLite file in a temp dir, or a fresh PostgreSQL database.

PostgreSQL is reached at ``SESAME_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432``);
each call creates its own database and drops it afterwards, so tests can run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

POSTGRES = os.environ.get("SESAME_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
BACKENDS = ("sqlite", "postgresql")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def temporary_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """Yields a database URL (the form a user passes to ``--database``)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'sesame.db'}"
        return
    name = f"sesame_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
