"""The SUPPRESSION_LIST import destination: bulk PUT or DELETE on the account-level suppression list
(reference §7.2).

CSV lines are ``recipient@example.com,BOUNCE`` (spaces around fields allowed, no header; a first line
``emailAddress,reason`` is taken as a header and skipped); JSON lines are
``{"emailAddress": "recipient@example.com", "reason": "BOUNCE"}``. A DELETE needs only the address.
Addresses are kept lower-cased, as PutSuppressedDestination keeps them (domain/suppression.py).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sesame.domain.suppression import REASONS, key
from sesame.jobs.sinks import ImportTarget, Record, RecordError
from sesame.storage.bulk import BulkDelete, BulkUpsert
from sesame.storage.db import Database
from sesame.storage.models import SuppressedDestination, utcnow

#: A mailbox as the list holds it: a local part without spaces, quotes or brackets at an LDH domain.
#: (Checked per record on the import's hot path: a regular expression, not the full RFC 5321 parser.)
ADDRESS = re.compile(
    r"[^@\s<>()\[\],;:\"\\]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
MAX_ADDRESS = 320
_HEADER = {"emailaddress", "email", "email_address", "address"}


class SuppressionListSink:
    destination_type = "SUPPRESSION_LIST"
    csv_header = False

    def __init__(self, db: Database) -> None:
        keys = ["account_id", "region", "email_address"]
        fixed = ["account_id", "region", "last_update_time", "message_id", "feedback_id"]
        self._put = BulkUpsert(db.is_sqlite, SuppressedDestination, keys, fixed, ["email_address", "reason"])
        self._delete = BulkDelete(
            db.is_sqlite, SuppressedDestination, ["account_id", "region"], "email_address"
        )

    async def check(self, target: ImportTarget) -> None:
        return None  # every account has its list

    def parse(self, target: ImportTarget, record: Record) -> tuple[str, str] | None:
        if record.object is not None:
            address, reason = record.object.get("emailAddress"), record.object.get("reason")
            if not isinstance(address, str):
                raise RecordError("emailAddress is missing or not a string")
            if reason is not None and not isinstance(reason, str):
                raise RecordError("reason is not a string")
        else:
            fields = record.fields or []
            address = fields[0].strip() if fields else ""
            reason = fields[1] if len(fields) > 1 else None
            if len(fields) > 2:
                raise RecordError(f"expected 2 fields (emailAddress,reason), found {len(fields)}")
            if record.line == 1 and address.lower() in _HEADER:
                return None
        address = address.strip()
        if not address or len(address) > MAX_ADDRESS or not ADDRESS.fullmatch(address):
            raise RecordError(f"not a valid email address: {address!r}")
        reason = (reason or "").strip().upper()
        if target.action == "PUT" and reason not in REASONS:
            raise RecordError(f"reason must be BOUNCE or COMPLAINT, not {reason!r}")
        return key(address), reason

    async def apply(self, s: AsyncSession, target: ImportTarget, rows: list[Any]) -> None:
        # The last of an address's rows in the batch wins, as it would one row at a time; PostgreSQL
        # also refuses one INSERT … ON CONFLICT that touches a row twice.
        latest: dict[str, str] = dict(rows)
        where = {"account_id": target.account_id, "region": target.region}
        if target.action == "DELETE":
            await self._delete.execute(s, where, list(latest))
            return
        fixed = {**where, "last_update_time": utcnow(), "message_id": None, "feedback_id": None}
        await self._put.execute(s, fixed, list(latest.items()))
