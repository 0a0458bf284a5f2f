"""``INSERT … ON CONFLICT`` statements for either database: SQLite and PostgreSQL spell the clause
alike, but SQLAlchemy builds it per dialect, so domain code asks here instead of importing a dialect."""

from __future__ import annotations

from typing import Any

from sesame.storage.models import table


def upsert(is_sqlite: bool, model: Any, keys: list[str], add: str | None = None) -> Any:
    """An insert of ``model`` rows (executemany) that, on a conflict over ``keys``, adds the new row's
    ``add`` column to the stored one, or with ``add`` None leaves the stored row as it is."""
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    t = table(model)
    stmt = insert(t)
    if add is None:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    return stmt.on_conflict_do_update(index_elements=keys, set_={add: t.c[add] + stmt.excluded[add]})
