"""Alembic environment: async engines, one tree for SQLite and PostgreSQL.

Several Sesame processes may start at once on one database; the first to take the lock migrates and
the others then find the schema at head. PostgreSQL: a transaction-scoped advisory lock; SQLite: the
write lock that ``BEGIN IMMEDIATE`` takes.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from sesame.storage.db import null_pool_engine
from sesame.storage.models import Base

MIGRATION_LOCK_ID = 0x5E5A3E  # arbitrary, constant: "sesame"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = null_pool_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `sesame db upgrade`")
asyncio.run(_run_async(context.config.attributes["url"]))
