"""Bulk writes of one batch of rows (an import job's), in the way each database takes them fastest.

- SQLite: one prepared statement run for every row (executemany) through the driver directly, the
  batch's fixed values (account, region, time) converted once: SQLAlchemy's per-row parameter handling
  costs more than SQLite's insert itself.
- PostgreSQL: one statement per batch, the rows passed as arrays and turned into rows by ``unnest``:
  one round trip and one executor run, instead of a round trip (and a plan run) per row.

Both are ``INSERT … ON CONFLICT (keys) DO UPDATE`` (the new values win) or ``DELETE`` by key. A batch
must not hold one key twice (PostgreSQL refuses to update a row twice in one statement): callers
keep the last of each key.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from sesame.storage.models import table


class _SqliteStatement:
    """SQLite's way for both kinds: one plain statement run for every row (executemany)."""

    sql: str
    t: sa.Table
    fixed: list[str]

    def _sqlite(self, s: Session, fixed: dict[str, Any], rows: list[tuple[Any, ...]]) -> None:
        """The statement for every row, through the session's own (synchronous) connection."""
        conn = s.connection()
        head = tuple(_bound(self.t.c[c].type, conn.dialect, fixed[c]) for c in self.fixed)
        conn.exec_driver_sql(self.sql, [head + row for row in rows])


class BulkUpsert(_SqliteStatement):
    """Rows of ``model``: ``fixed`` columns with one value per batch, ``varying`` ones per row."""

    def __init__(
        self,
        is_sqlite: bool,
        model: Any,
        keys: list[str],
        fixed: list[str],
        varying: list[str],
        keep: tuple[str, ...] = (),
    ) -> None:
        """``keep``: columns a row that exists keeps (its creation time), the others take the new values."""
        self.is_sqlite = is_sqlite
        self.t = t = table(model)
        self.fixed, self.varying = fixed, varying
        columns = fixed + varying
        update = [c for c in columns if c not in keys and c not in keep]
        if is_sqlite:
            self.sql = (
                f"INSERT INTO {t.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in update)
            )
            return
        from sqlalchemy.dialects.postgresql import ARRAY, insert

        rows = (
            sa.func.unnest(*(sa.bindparam(c, type_=ARRAY(t.c[c].type)) for c in varying))
            .table_valued(*varying)
            .render_derived()
        )
        source = sa.select(
            *(sa.bindparam(f"fixed_{c}", type_=t.c[c].type) for c in fixed), *(rows.c[c] for c in varying)
        )
        stmt = insert(t).from_select(columns, source)
        self.stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={c: stmt.excluded[c] for c in update}
        )

    async def execute(self, s: AsyncSession, fixed: dict[str, Any], rows: list[tuple[Any, ...]]) -> None:
        """Write ``rows`` (tuples of the varying columns' values: strings, numbers, None) in ``s``."""
        if not rows:
            return
        if self.is_sqlite:
            await s.run_sync(self._sqlite, fixed, rows)
            return
        params: dict[str, Any] = {f"fixed_{c}": fixed[c] for c in self.fixed}
        for i, c in enumerate(self.varying):
            params[c] = [row[i] for row in rows]
        await s.execute(self.stmt, params)


class BulkDelete(_SqliteStatement):
    """Rows of ``model`` deleted by their key: ``fixed`` key columns with one value per batch, one
    ``varying`` key column per row."""

    def __init__(self, is_sqlite: bool, model: Any, fixed: list[str], varying: str) -> None:
        self.is_sqlite = is_sqlite
        self.t = t = table(model)
        self.fixed, self.varying = fixed, varying
        if is_sqlite:
            where = " AND ".join(f"{c} = ?" for c in [*fixed, varying])
            self.sql = f"DELETE FROM {t.name} WHERE {where}"
            return
        from sqlalchemy.dialects.postgresql import ARRAY

        self.stmt = sa.delete(t).where(
            *(t.c[c] == sa.bindparam(f"fixed_{c}") for c in fixed),
            t.c[varying] == sa.func.any(sa.bindparam("keys", type_=ARRAY(t.c[varying].type))),
        )

    async def execute(self, s: AsyncSession, fixed: dict[str, Any], keys: list[Any]) -> None:
        if not keys:
            return
        if self.is_sqlite:
            await s.run_sync(self._sqlite, fixed, [(k,) for k in keys])
            return
        await s.execute(self.stmt, {**{f"fixed_{c}": fixed[c] for c in self.fixed}, "keys": keys})


def _bound(column_type: Any, dialect: Any, value: Any) -> Any:
    """``value`` as the driver takes it for a column of ``column_type`` (a datetime as SQLite's text)."""
    process = column_type.bind_processor(dialect)
    return process(value) if process is not None and value is not None else value
