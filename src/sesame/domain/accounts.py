"""Accounts, their access keys, and the account-level state SES keeps per region.

An account is a 12-digit id. Everything SES scopes "per account and region" (sandbox, quotas, the
sending switch, suppression settings, account details) lives in one ``account_regions`` row per
(account, region), created on first use from the account's defaults.

Production access follows SES's workflow: PutAccountDetails with ProductionAccessEnabled opens a
review (PENDING); the operator decides with ``sesame accounts update ID --production`` (GRANTED) or
``--sandbox`` (DENIED while a review is pending).
"""

from __future__ import annotations

import secrets
import string
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sesame.config import Settings
from sesame.domain.secrets import SecretBox
from sesame.errors import InvalidRequest
from sesame.storage.db import Database
from sesame.storage.models import AccessKey, Account, AccountRegion

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
#: PostgreSQL: how long a node trusts its memory of an access key (SigV4 looks one up on every request).
#: A change (created, disabled, enabled, deleted) is announced on KEYS_CHANNEL and forgotten at once by
#: every node listening; this bounds what a node could miss if an announcement were lost anyway.
KEY_CACHE_SECONDS = 30.0
KEYS_CHANNEL = "sesame_access_keys"
#: Entries kept at most, against floods of random key ids.
_MAX_CACHED = 10_000


class AccountNotFound(LookupError):
    pass


class AccessKeyNotFound(LookupError):
    pass


class SendingPausedByEnforcement(InvalidRequest):
    """The account asked to resume sending that enforcement paused: only the operator lifts it."""

    def __init__(self, region: str) -> None:
        super().__init__(
            f"Sending is paused for this account in {region} because of its bounce or complaint rate; "
            "it resumes when the operator reinstates the account."
        )


@dataclass(frozen=True)
class NewAccount:
    account_id: str
    name: str
    access_key_id: str
    secret_access_key: str

    def as_json(self) -> dict[str, str]:
        return {
            "AccountId": self.account_id,
            "Name": self.name,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
        }


def new_access_key() -> tuple[str, str]:
    """An AWS-shaped pair: ``AKIA`` + 16 upper-case alphanumerics, and a 40-character secret."""
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return key_id, secret


def is_account_id(value: str) -> bool:
    return len(value) == 12 and value.isdigit()


class Accounts:
    def __init__(self, db: Database, settings: Settings, box: SecretBox) -> None:
        self.db = db
        self.settings = settings
        self.box = box
        #: PostgreSQL: key id → (when read, (account id, secret) or None), while ``_listening``.
        self._key_cache: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._listening = False
        #: Counts forgettings: a read that a change overtook must not be remembered.
        self._changes = 0
        #: Encrypted secret → its plaintext: decrypting costs more than the rest of a cached lookup.
        self._plain: dict[str, str] = {}

    # -- accounts ---------------------------------------------------------------------------------

    async def create(self, name: str, account_id: str | None = None) -> NewAccount:
        account_id = account_id or "".join(secrets.choice(string.digits) for _ in range(12))
        if not is_account_id(account_id):
            raise ValueError(f"an account id is 12 digits, not {account_id!r}")
        key_id, secret = new_access_key()
        d = self.settings.accounts
        async with self.db.write() as s:
            s.add(
                Account(
                    id=account_id,
                    name=name,
                    sandbox=d.sandbox,
                    max_24_hour_send=d.max_24_hour_send,
                    max_send_rate=d.max_send_rate,
                )
            )
            await s.flush()
            s.add(
                AccessKey(
                    access_key_id=key_id, account_id=account_id, secret_encrypted=self.box.encrypt(secret)
                )
            )
        return NewAccount(account_id, name, key_id, secret)

    async def ensure(self, account_id: str) -> None:
        """Dev mode: any 12-digit id is an account; create it on first sight."""
        async with self.db.read() as s:
            if await s.get(Account, account_id) is not None:
                return
        async with self.db.write() as s:
            if await s.get(Account, account_id) is None:
                s.add(
                    Account(
                        id=account_id,
                        name=f"dev-{account_id}",
                        sandbox=False,
                        max_24_hour_send=-1.0,
                        max_send_rate=-1.0,
                    )
                )

    async def list(self) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            accounts = (await s.scalars(sa.select(Account).order_by(Account.created_at))).all()
            keys = (await s.scalars(sa.select(AccessKey).order_by(AccessKey.access_key_id))).all()
        by_account: dict[str, list[AccessKey]] = {}
        for k in keys:
            by_account.setdefault(k.account_id, []).append(k)
        return [
            {
                "AccountId": a.id,
                "Name": a.name,
                "CreatedTimestamp": a.created_at.isoformat(),
                "Sandbox": a.sandbox,
                "Max24HourSend": a.max_24_hour_send,
                "MaxSendRate": a.max_send_rate,
                "AccessKeyIds": [k.access_key_id for k in by_account.get(a.id, [])],
                "AccessKeys": [
                    {"AccessKeyId": k.access_key_id, "Status": "Active" if k.active else "Inactive"}
                    for k in by_account.get(a.id, [])
                ],
            }
            for a in accounts
        ]

    async def update(
        self,
        account_id: str,
        *,
        sandbox: bool | None = None,
        max_24_hour_send: float | None = None,
        max_send_rate: float | None = None,
        region: str | None = None,
    ) -> None:
        """Operator changes. Without ``region``: the account's defaults and every region it uses."""
        async with self.db.write() as s:
            account = await self._locked(s, account_id)
            if account is None:
                raise AccountNotFound(account_id)
            if region is None:
                if sandbox is not None:
                    account.sandbox = sandbox
                if max_24_hour_send is not None:
                    account.max_24_hour_send = max_24_hour_send
                if max_send_rate is not None:
                    account.max_send_rate = max_send_rate
                rows = (
                    await s.scalars(sa.select(AccountRegion).where(AccountRegion.account_id == account_id))
                ).all()
            else:
                rows = [await self._region_row(s, account, region)]
            for row in rows:
                if sandbox is not None:
                    row.production_access = not sandbox
                    details = dict(row.details or {})
                    review = details.get("ReviewDetails")
                    pending = isinstance(review, dict) and review.get("Status") == "PENDING"
                    if not sandbox or pending:
                        details["ReviewDetails"] = {
                            "Status": "DENIED" if sandbox else "GRANTED",
                            "CaseId": (review or {}).get("CaseId", _case_id()),
                        }
                        row.details = details
                if max_24_hour_send is not None:
                    row.max_24_hour_send = max_24_hour_send
                if max_send_rate is not None:
                    row.max_send_rate = max_send_rate

    # -- access keys ------------------------------------------------------------------------------

    async def create_access_key(self, account_id: str) -> tuple[str, str]:
        key_id, secret = new_access_key()
        async with self.db.write() as s:
            if await s.get(Account, account_id) is None:
                raise AccountNotFound(account_id)
            s.add(
                AccessKey(
                    access_key_id=key_id, account_id=account_id, secret_encrypted=self.box.encrypt(secret)
                )
            )
            await self.db.notify(s, KEYS_CHANNEL, key_id)  # nodes may remember it as unknown
        return key_id, secret

    async def set_key_status(self, access_key_id: str, active: bool) -> None:
        """Enable or disable a key; every node refuses a disabled one from its next request on."""
        async with self.db.write() as s:
            key = await s.get(AccessKey, access_key_id)
            if key is None:
                raise AccessKeyNotFound(access_key_id)
            key.active = active
            await self.db.notify(s, KEYS_CHANNEL, access_key_id)
        self.forget_key(access_key_id)

    async def delete_key(self, access_key_id: str) -> None:
        async with self.db.write() as s:
            key = await s.get(AccessKey, access_key_id)
            if key is None:
                raise AccessKeyNotFound(access_key_id)
            await s.delete(key)
            await self.db.notify(s, KEYS_CHANNEL, access_key_id)
        self.forget_key(access_key_id)

    def forget_key(self, access_key_id: str) -> None:
        self._changes += 1
        self._key_cache.pop(access_key_id, None)

    def _listener_state(self, listening: bool) -> None:
        self._changes += 1
        self._key_cache.clear()  # announcements may have been missed while not listening
        self._listening = listening

    async def watch_keys(self) -> None:
        """Forget keys as other processes change them (a ``serve`` node's background task). Only
        PostgreSQL needs it: SQLite reads the key on every request."""
        if not self.db.is_sqlite:
            await self.db.listen(KEYS_CHANNEL, self.forget_key, self._listener_state)

    async def credentials(self, access_key_id: str) -> tuple[str, str] | None:
        """(account id, secret) of an active key, or None: SigV4 asks on every request.

        SQLite reads the key's row every time (an inline read on a local file, about 13 µs), so a key
        disabled by another process (``sesame accounts disable-key``) is refused at its next request.
        PostgreSQL would pay a round trip: a node remembers keys (one dict lookup) while it listens for
        the announcements of changes, which reach every node at the commit.
        """
        cached = not self.db.is_sqlite and self._listening
        if cached:
            hit = self._key_cache.get(access_key_id)
            if hit is not None and time.monotonic() - hit[0] < KEY_CACHE_SECONDS:
                return hit[1]
        now, changes = time.monotonic(), self._changes
        (rows,) = await self.db.fetch(
            [
                (
                    "SELECT account_id, secret_encrypted FROM access_keys"
                    " WHERE access_key_id = :key AND active = :active",
                    {"key": access_key_id, "active": True},
                )
            ]
        )
        found = (rows[0]["account_id"], self._decrypt(rows[0]["secret_encrypted"])) if rows else None
        if cached and changes == self._changes:
            if len(self._key_cache) >= _MAX_CACHED:
                self._key_cache.clear()
            self._key_cache[access_key_id] = (now, found)
        return found

    def _decrypt(self, token: str) -> str:
        plain = self._plain.get(token)
        if plain is None:
            if len(self._plain) >= _MAX_CACHED:
                self._plain.clear()
            plain = self._plain[token] = self.box.decrypt(token)
        return plain

    # -- per-region state -------------------------------------------------------------------------

    @staticmethod
    async def _locked(s: Any, account_id: str) -> Account | None:
        """The account row, locked for this transaction on PostgreSQL (SQLite's writer already holds the
        database lock): two first calls in a region must not both create its row."""
        return await s.get(Account, account_id, with_for_update=True)

    async def _region_row(self, s: Any, account: Account, region: str) -> AccountRegion:
        row = await s.get(AccountRegion, (account.id, region))
        if row is None:
            row = AccountRegion(
                account_id=account.id,
                region=region,
                production_access=not account.sandbox,
                max_24_hour_send=account.max_24_hour_send,
                max_send_rate=account.max_send_rate,
                sending_enabled=True,
                enforcement_status="HEALTHY",
                dedicated_ip_auto_warmup=False,
                details=None,
                suppression_attributes={},
                vdm_attributes=None,
            )
            s.add(row)
            await s.flush()
        return row

    async def region(self, account_id: str, region: str) -> AccountRegion:
        async with self.db.read() as s:
            row = await s.get(AccountRegion, (account_id, region))
        if row is not None:
            return row
        async with self.db.write() as s:
            account = await self._locked(s, account_id)
            if account is None:
                raise AccountNotFound(account_id)
            return await self._region_row(s, account, region)

    async def modify_region(self, account_id: str, region: str, **changes: Any) -> AccountRegion:
        async with self.db.write() as s:
            account = await self._locked(s, account_id)
            if account is None:
                raise AccountNotFound(account_id)
            row = await self._region_row(s, account, region)
            if changes.get("sending_enabled") and row.enforcement_status == "SHUTDOWN":
                raise SendingPausedByEnforcement(region)
            for name, value in changes.items():
                setattr(row, name, value)
            return row

    async def request_production_access(self, account_id: str, region: str, details: dict[str, Any]) -> bool:
        """Store PutAccountDetails; open a review if production access is asked for.

        Returns False when a review is already pending (SES answers ConflictException).
        """
        async with self.db.write() as s:
            account = await self._locked(s, account_id)
            if account is None:
                raise AccountNotFound(account_id)
            row = await self._region_row(s, account, region)
            old_review = (row.details or {}).get("ReviewDetails")
            if old_review and old_review.get("Status") == "PENDING":
                return False
            stored = {k: v for k, v in details.items() if k != "ProductionAccessEnabled"}
            if details.get("ProductionAccessEnabled") and not row.production_access:
                stored["ReviewDetails"] = {"Status": "PENDING", "CaseId": _case_id()}
            elif old_review:
                stored["ReviewDetails"] = old_review
            row.details = stored
            return True


def _case_id() -> str:
    return str(uuid.uuid4().int)[:11]
