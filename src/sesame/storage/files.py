"""What Sesame keeps on disk is the owner's only: the data directory 0700, its files 0600.

The SQLite database holds message bodies and verification tokens, the data directory the secret key
and the admin token. A directory that exists already with access for others is left as it is, with a
warning: the operator may share it on purpose (a home directory, say), and the files in it are
tightened anyway, which is what keeps their contents private.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600  # rwx------, rw-------
#: SQLite's companions of a database file (WAL mode); it creates them with the database file's mode.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_directory(path: Path) -> None:
    try:
        path.mkdir(mode=PRIVATE_DIR, parents=True)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "%s is open to other users (mode %o); the files Sesame keeps in it are not, but unless it "
                "is shared on purpose: chmod 700 %s",
                path,
                mode,
                path,
            )


def private_file(path: Path) -> None:
    """Take away the access of others to an existing file of ours (made by an older Sesame, or copied)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & ~0o077)
    except FileNotFoundError:
        pass
    except PermissionError as exc:  # not ours to change
        log.warning("%s is open to other users and cannot be changed: %s", path, exc)


def private_sqlite(url: str) -> None:
    """Before SQLite opens ``url``: create its file 0600 (SQLite gives the -wal and -shm files the same
    mode), or tighten the files of an existing one."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    if path.parent.is_dir():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))  # SQLite takes an empty file as new
    for suffix in SQLITE_SUFFIXES:
        private_file(path.with_name(path.name + suffix))


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` at once with ``data`` (a new file, 0600, synced, renamed over the old), so that a
    reader never sees half a file and no one else can read it even for an instant."""
    # Unique per write: two threads of one process may replace the same file at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
