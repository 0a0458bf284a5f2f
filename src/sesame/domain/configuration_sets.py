"""Configuration sets: named option groups that sends can name (or inherit from their identity).

What sends use: the set must exist, its SendingOptions can pause it, and its SuppressionOptions
replace the account's suppressed reasons. Delivery options (TLS policy, pool, MaxDeliverySeconds) are
read by the delivery engine; event destinations (domain/event_destinations.py) by event publishing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.errors import AlreadyExists, InvalidRequest, LimitExceeded, NotFound
from sesame.storage.db import Database
from sesame.storage.models import ConfigurationSet, utcnow

MAX_CONFIGURATION_SETS = 10_000
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ConfigurationSetNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Configuration set <{name}> does not exist.")


class ConfigurationSetExists(AlreadyExists):
    pass


class InvalidConfigurationSet(InvalidRequest):
    pass


class TooManyConfigurationSets(LimitExceeded):
    pass


#: ``hook(session, account_id, region, name, when)``: a set's reputation metrics start afresh at ``when``
#: (domain/reputation.py), in the transaction that re-enables its sending.
FreshStart = Callable[[AsyncSession, str, str, str, dt.datetime], Awaitable[None]]


class ConfigurationSets:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.on_fresh_start: FreshStart | None = None

    async def get(self, account_id: str, region: str, name: str) -> ConfigurationSet:
        async with self.db.read() as s:
            row = await s.get(ConfigurationSet, (account_id, region, name))
        if row is None:
            raise ConfigurationSetNotFound(name)
        return row

    async def create(self, account_id: str, region: str, name: str, options: dict[str, Any]) -> None:
        if not _NAME.fullmatch(name):
            raise InvalidConfigurationSet(
                f"Invalid configuration set name <{name}>: only alphanumeric ASCII characters, "
                "'_' and '-' are allowed, at most 64."
            )
        options = {k: v for k, v in options.items() if v is not None}
        options.setdefault("SendingOptions", {"SendingEnabled": True})
        options.setdefault("ReputationOptions", {"ReputationMetricsEnabled": False})
        async with self.db.write() as s:
            if await s.get(ConfigurationSet, (account_id, region, name)) is not None:
                raise ConfigurationSetExists(f"Configuration set <{name}> already exists.")
            count = await s.scalar(
                sa.select(sa.func.count())
                .select_from(ConfigurationSet)
                .where(ConfigurationSet.account_id == account_id, ConfigurationSet.region == region)
            )
            if (count or 0) >= MAX_CONFIGURATION_SETS:
                raise TooManyConfigurationSets("Maximum number of configuration sets exceeded.")
            s.add(
                ConfigurationSet(
                    account_id=account_id, region=region, name=name, created_at=utcnow(), options=options
                )
            )

    async def update(
        self,
        account_id: str,
        region: str,
        name: str,
        change: Callable[[dict[str, Any]], None],
        then: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> None:
        """Apply ``change`` to a copy of the set's options and store the result. The row is locked
        meanwhile (PostgreSQL; SQLite's write lock serializes anyway), so that two changes to one
        group, such as two new event destinations, do not overwrite each other."""
        async with self.db.write() as s:
            row = await s.get(ConfigurationSet, (account_id, region, name), with_for_update=True)
            if row is None:
                raise ConfigurationSetNotFound(name)
            options = dict(row.options or {})
            change(options)
            row.options = options
            if then is not None:
                await then(s)

    async def put(
        self, account_id: str, region: str, name: str, group: str, value: dict[str, Any] | None
    ) -> None:
        """Replace one option group (None removes it: e.g. suppression falls back to the account's)."""

        fresh: list[dt.datetime] = []

        def change(options: dict[str, Any]) -> None:
            if value is None:
                options.pop(group, None)
            else:
                if (
                    group == "SendingOptions"
                    and value.get("SendingEnabled")
                    and not options.get(group, {}).get("SendingEnabled", True)
                ):
                    # Re-enabling a paused set is SES's "fresh start" of its reputation metrics.
                    reputation = dict(options.get("ReputationOptions") or {})
                    fresh.append(utcnow())
                    reputation["LastFreshStart"] = fresh[0].isoformat()
                    options["ReputationOptions"] = reputation
                options[group] = value

        async def then(s: AsyncSession) -> None:
            if fresh and self.on_fresh_start is not None:
                await self.on_fresh_start(s, account_id, region, name, fresh[0])

        await self.update(account_id, region, name, change, then)

    async def delete(self, account_id: str, region: str, name: str) -> None:
        async with self.db.write() as s:
            row = await s.get(ConfigurationSet, (account_id, region, name))
            if row is None:
                raise ConfigurationSetNotFound(name)
            await s.delete(row)
            if self.on_fresh_start is not None:
                # A set made again under this name must not inherit the old one's rates.
                await self.on_fresh_start(s, account_id, region, name, utcnow())

    async def page(
        self, account_id: str, region: str, after: str | None, limit: int
    ) -> tuple[list[ConfigurationSet], str | None]:
        q = sa.select(ConfigurationSet).where(
            ConfigurationSet.account_id == account_id, ConfigurationSet.region == region
        )
        return await self.db.page(q, ConfigurationSet.name, after, limit)


def sending_enabled(row: ConfigurationSet) -> bool:
    return bool((row.options or {}).get("SendingOptions", {}).get("SendingEnabled", True))


def suppressed_reasons(row: ConfigurationSet) -> list[str] | None:
    """The set's own suppressed reasons, or None when it defers to the account's."""
    options = (row.options or {}).get("SuppressionOptions")
    return None if options is None else list(options.get("SuppressedReasons") or [])
