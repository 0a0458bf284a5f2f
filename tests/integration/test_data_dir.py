"""The data directory and what Sesame keeps in it (the SQLite database with message bodies and
verification tokens, its -wal and -shm files, the secret key, the admin token) are the owner's only."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sesame.testing.servers import SesameProcess


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """What most systems give a process: files 0644 and directories 0755 unless asked otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _serve(data: Path, database: str | None) -> SesameProcess:
    return SesameProcess("serve", data_dir=data, database=database)


def test_a_new_data_directory_is_the_owners_only(backend: str, database: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with _serve(data, None if backend == "sqlite" else database):  # SQLite: in the data directory
        assert _mode(data) == 0o700
        owned = ["secret.key", "admin.token"]
        if backend == "sqlite":
            owned += ["sesame.db", "sesame.db-wal", "sesame.db-shm"]  # the journals while it runs
        assert {name: _mode(data / name) for name in owned} == dict.fromkeys(owned, 0o600)


def test_an_existing_directory_is_warned_about_and_its_files_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    with sqlite3.connect(data / "sesame.db") as conn:  # an older Sesame's database: 0644
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        (data / "sesame.db-wal").touch()
    assert _mode(data / "sesame.db") == 0o644
    with _serve(data, None) as proc:
        assert _mode(data) == 0o755  # perhaps shared on purpose: said, not changed
        assert any(f"{data} is open to other users (mode 755)" in line for line in proc.stderr_lines)
        for name in ("sesame.db", "sesame.db-wal", "sesame.db-shm", "secret.key"):
            assert _mode(data / name) == 0o600, name
