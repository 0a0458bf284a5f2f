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
from sesame.storage.db import Database
from sesame.storage.models import AccessKey, Account, AccountRegion

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
#: How long a verified access key's secret is kept in memory: SigV4 checks every request, and keys
#: change rarely. A deactivated key stops working within this time on every node.
KEY_CACHE_SECONDS = 30.0


class AccountNotFound(LookupError):
    pass


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
        self._key_cache: dict[str, tuple[float, tuple[str, str] | None]] = {}

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
            keys = (await s.scalars(sa.select(AccessKey))).all()
        by_account: dict[str, list[str]] = {}
        for k in keys:
            by_account.setdefault(k.account_id, []).append(k.access_key_id)
        return [
            {
                "AccountId": a.id,
                "Name": a.name,
                "CreatedTimestamp": a.created_at.isoformat(),
                "Sandbox": a.sandbox,
                "Max24HourSend": a.max_24_hour_send,
                "MaxSendRate": a.max_send_rate,
                "AccessKeyIds": sorted(by_account.get(a.id, [])),
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
        return key_id, secret

    async def credentials(self, access_key_id: str) -> tuple[str, str] | None:
        """(account id, secret) for an active key, or None. Cached briefly, misses included."""
        now = time.monotonic()
        hit = self._key_cache.get(access_key_id)
        if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
            return hit[1]
        async with self.db.read() as s:
            key = await s.get(AccessKey, access_key_id)
        found = (
            (key.account_id, self.box.decrypt(key.secret_encrypted))
            if key is not None and key.active
            else None
        )
        if len(self._key_cache) > 10_000:  # bound memory against floods of random key ids
            self._key_cache.clear()
        self._key_cache[access_key_id] = (now, found)
        return found

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
