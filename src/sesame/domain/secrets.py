"""Encryption at rest for stored secrets: access-key secrets and DKIM private keys.

The keys come from ``SESAME_SECRET_KEY`` (separated by commas or spaces), else from
``<data dir>/secret.key`` (one a line, created on the first start, mode 0600); newest first. The first
key encrypts, every key decrypts (Fernet's MultiFernet), so a rotation keeps the old key readable while
the secrets move to the new one. Several nodes on one PostgreSQL need the same keys: copy the file, or
set the variable.

The database holds a canary, a known value encrypted with the key. Every command that opens the
database checks it before doing anything else, so a lost or different key stops the process with a
clear error instead of a server that answers every signed request with a 500. A lost key file is never
replaced by a new key while the database holds secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from sesame.errors import ConfigError
from sesame.storage.db import Database
from sesame.storage.files import PRIVATE_DIR, private_file, write_private
from sesame.storage.models import AccessKey, Identity, Meta

#: Every encrypted column (model, attribute): what a rotation re-encrypts. A new one must be listed here.
ENCRYPTED: tuple[tuple[type[Any], str], ...] = (
    (AccessKey, "secret_encrypted"),
    (Identity, "dkim_private_key"),
)
CANARY_NAME = "secret_canary"
_CANARY = "sesame: this value proves the secret key"
_SEPARATORS = re.compile(r"[\s,]+")
SIGNATURE_BYTES = 16  # 128 bits: guessing a signature is hopeless


class Signer:
    """HMACs over URL parts (tracking links, unsubscribe links), under keys derived from the secret keys
    with a ``label`` per use, so that no signing key is ever the one that encrypts and a signature made
    for one use proves nothing in another. Keys rotate as the secrets do: the newest signs, any
    verifies."""

    def __init__(self, box: SecretBox, label: bytes) -> None:
        self.box = box
        self.label = label
        self._derived: tuple[list[bytes], list[bytes]] = ([], [])

    def _keys(self) -> list[bytes]:
        keys = self.box.keys
        if self._derived[0] is not keys:
            derived = [hmac.new(base64.urlsafe_b64decode(k), self.label, hashlib.sha256) for k in keys]
            self._derived = (keys, [d.digest() for d in derived])
        return self._derived[1]

    @staticmethod
    def _mac(key: bytes, parts: tuple[str, ...]) -> str:
        digest = hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).digest()[:SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, *parts: str) -> str:
        return self._mac(self._keys()[0], parts)

    def verify(self, signature: str, *parts: str) -> bool:
        given = signature.encode()
        return any(hmac.compare_digest(self._mac(k, parts).encode(), given) for k in self._keys())


class KeySource:
    """Where the keys live: ``SESAME_SECRET_KEY``, else the key file in the data directory."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.variable = (os.environ if env is None else env).get("SESAME_SECRET_KEY") or None
        self.path = data_dir / "secret.key"

    @property
    def name(self) -> str:
        return "SESAME_SECRET_KEY" if self.variable else str(self.path)

    def read(self, create: bool) -> list[bytes]:
        """The keys, newest first; the file is created with one new key if ``create`` and it is missing."""
        if self.variable:
            text = self.variable.encode()
        elif create:
            text = _read_or_create(self.path, Fernet.generate_key)
        elif self.path.exists():
            private_file(self.path)
            text = self.path.read_bytes()
        else:
            raise ConfigError(
                f"{self.path} is missing, and this database holds secrets encrypted with it: restore the "
                "file from a backup or another node (or set SESAME_SECRET_KEY). Sesame does not start "
                "with a new key, which could not decrypt them."
            )
        keys = [k for k in _SEPARATORS.split(text.decode(errors="replace")) if k]
        if not keys:
            raise ConfigError(f"{self.name} holds no key")
        return [k.encode() for k in keys]

    def stamp(self) -> int | None:
        """Changes when the key file does (None with the variable: it cannot change under us)."""
        if self.variable:
            return None
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def write(self, keys: Sequence[bytes]) -> None:
        """Replace the key file at once (a new file renamed over the old), mode 0600."""
        write_private(self.path, b"\n".join(keys) + b"\n")


class SecretBox:
    """Encrypts with the first key, decrypts with any. Locked until ``unlock`` has checked the keys
    against the database."""

    def __init__(self, source: KeySource) -> None:
        self.source = source
        self.keys: list[bytes] = []
        self._fernet: MultiFernet | None = None
        self._stamp: int | None = None

    def use(self, keys: Sequence[bytes]) -> None:
        try:
            fernets = [Fernet(k) for k in keys]
        except ValueError as exc:
            raise ConfigError(f"{self.source.name} does not hold valid keys: {exc}") from exc
        self.keys, self._fernet, self._stamp = list(keys), MultiFernet(fernets), self.source.stamp()

    def _box(self) -> MultiFernet:
        if self._fernet is None:
            raise ConfigError("the secret key has not been checked against the database yet")
        return self._fernet

    def _reload(self) -> bool:
        """Take the key file again if it changed (``sesame secret-key rotate``, or a copy from the node
        that rotated): this process then reads secrets re-encrypted under the new key without a restart."""
        stamp = self.source.stamp()
        if stamp is None or stamp == self._stamp:
            return False
        self.use(self.source.read(create=False))
        return True

    def encrypt(self, plaintext: str) -> str:
        self._reload()  # new secrets go under the newest key
        return self._box().encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._box().decrypt(token.encode()).decode()
        except InvalidToken:
            if self._reload():
                return self.decrypt(token)
            raise ConfigError(
                f"a stored secret cannot be decrypted with {self.source.name}: another node rotated the "
                "key and this one lacks the new key file"
            ) from None

    def _opens(self, token: str, fernet: Fernet | MultiFernet | None = None) -> bool:
        try:
            (fernet or self._box()).decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    # -- against the database ---------------------------------------------------------------------

    async def unlock(self, db: Database) -> None:
        """Load the keys and prove that they read this database: the canary, or on a database that has
        none yet (the first start, or one from before the canary) a stored secret; then write the canary."""
        async with db.read() as s:
            canary = await s.scalar(sa.select(Meta.value).where(Meta.name == CANARY_NAME))
            sample = None if canary is not None else await _any_secret(s)
        self.use(self.source.read(create=canary is None and sample is None))
        token = canary if canary is not None else sample
        if token is not None and not self._opens(token):
            raise ConfigError(
                f"{self.source.name} does not decrypt the secrets stored in this database: it is not the key "
                "they were encrypted with. Restore the right key (every node on one database shares it); "
                "Sesame does not start rather than refuse every signed request."
            )
        if canary is None:
            try:
                async with db.write() as s:
                    s.add(Meta(name=CANARY_NAME, value=self.encrypt(_CANARY)))
            except sa.exc.IntegrityError:  # another node wrote it first: it must be our key too
                await self.unlock(db)

    async def rotate(self, db: Database) -> int:
        """Re-encrypt every stored secret and the canary under the first key, in one transaction; how
        many values were re-encrypted."""
        box, count = self._box(), 0
        async with db.write() as s:
            for model, attribute in ENCRYPTED:
                column = getattr(model, attribute)
                for row in await s.scalars(sa.select(model).where(column.is_not(None))):
                    setattr(row, attribute, box.rotate(getattr(row, attribute).encode()).decode())
                    count += 1
            meta = await s.get(Meta, CANARY_NAME)
            if meta is not None:
                meta.value = box.rotate(meta.value.encode()).decode()
                count += 1
        return count

    async def stale(self, db: Database) -> int:
        """How many stored values the first key alone cannot decrypt (0: the older keys can go)."""
        newest, count = Fernet(self.keys[0]), 0
        async with db.read() as s:
            for model, attribute in ENCRYPTED:
                column = getattr(model, attribute)
                for token in await s.scalars(sa.select(column).where(column.is_not(None))):
                    count += not self._opens(token, newest)
            canary = await s.scalar(sa.select(Meta.value).where(Meta.name == CANARY_NAME))
        return count + (canary is not None and not self._opens(canary, newest))


async def _any_secret(s: Any) -> str | None:
    for model, attribute in ENCRYPTED:
        column = getattr(model, attribute)
        token = await s.scalar(sa.select(column).where(column.is_not(None)).limit(1))
        if token is not None:
            return str(token)
    return None


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
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(make())
    private_file(path)  # a copy from another node may have come with a wider mode
    value = path.read_bytes().strip()
    if not value:  # another process created the file and has not written it yet
        time.sleep(0.1)
        value = path.read_bytes().strip()
    return value
