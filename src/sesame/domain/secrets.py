"""Encryption at rest for stored secrets (access-key secrets, later DKIM private keys).

The key lives in ``<data dir>/secret.key`` (created on first use, mode 0600). Several Sesame nodes on
one PostgreSQL need the same key file: copy it, or set ``SESAME_SECRET_KEY``.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from sesame.errors import ConfigError


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> SecretBox:
        if env_key := os.environ.get("SESAME_SECRET_KEY"):
            return cls(env_key.encode())
        path = data_dir / "secret.key"
        key = _read_or_create(path, Fernet.generate_key)
        try:
            return cls(key)
        except ValueError as exc:
            raise ConfigError(f"{path} does not hold a valid key: {exc}") from exc

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ConfigError(
                "a stored secret cannot be decrypted: wrong secret.key for this database"
            ) from exc


def admin_token(data_dir: Path) -> str:
    """The bearer token of the admin API (``sesame queue`` …): ``SESAME_ADMIN_TOKEN``, else
    ``<data dir>/admin.token``, created on first use (mode 0600) so that commands run beside the server
    with the same ``--data-dir`` can use it."""
    if token := os.environ.get("SESAME_ADMIN_TOKEN"):
        return token
    return _read_or_create(data_dir / "admin.token", lambda: secrets.token_urlsafe(32).encode()).decode()


def _read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's content, written first (mode 0600) if it does not exist. O_EXCL: two processes starting
    at once must not each write a different value."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(make())
    value = path.read_bytes().strip()
    if not value:  # another process created the file and has not written it yet
        time.sleep(0.1)
        value = path.read_bytes().strip()
    return value
