"""Configuration sets: named option groups that sends can name (or inherit from their identity).

What sends use today: the set must exist, its SendingOptions can pause it, and its SuppressionOptions
replace the account's suppressed reasons. Delivery options (TLS policy, pool, MaxDeliverySeconds) are
stored for the delivery engine; event destinations come with event publishing.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from sesame.storage.db import Database
from sesame.storage.models import ConfigurationSet, utcnow

MAX_CONFIGURATION_SETS = 10_000
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ConfigurationSetError(Exception):
    """``kind``: 'not-found', 'exists', 'invalid', 'limit'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def missing(name: str) -> ConfigurationSetError:
    return ConfigurationSetError("not-found", f"Configuration set <{name}> does not exist.")


class ConfigurationSets:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, account_id: str, region: str, name: str) -> ConfigurationSet:
        async with self.db.read() as s:
            row = await s.get(ConfigurationSet, (account_id, region, name))
        if row is None:
            raise missing(name)
        return row

    async def create(self, account_id: str, region: str, name: str, options: dict[str, Any]) -> None:
        if not _NAME.fullmatch(name):
            raise ConfigurationSetError(
                "invalid", f"Invalid configuration set name <{name}>: only alphanumeric ASCII characters, "
                "'_' and '-' are allowed, at most 64."
            )  # fmt: skip
        options = {k: v for k, v in options.items() if v is not None}
        options.setdefault("SendingOptions", {"SendingEnabled": True})
        options.setdefault("ReputationOptions", {"ReputationMetricsEnabled": False})
        async with self.db.write() as s:
            if await s.get(ConfigurationSet, (account_id, region, name)) is not None:
                raise ConfigurationSetError("exists", f"Configuration set <{name}> already exists.")
            count = await s.scalar(
                sa.select(sa.func.count())
                .select_from(ConfigurationSet)
                .where(ConfigurationSet.account_id == account_id, ConfigurationSet.region == region)
            )
            if (count or 0) >= MAX_CONFIGURATION_SETS:
                raise ConfigurationSetError("limit", "Maximum number of configuration sets exceeded.")
            s.add(
                ConfigurationSet(
                    account_id=account_id, region=region, name=name, created_at=utcnow(), options=options
                )
            )

    async def put(
        self, account_id: str, region: str, name: str, group: str, value: dict[str, Any] | None
    ) -> None:
        """Replace one option group (None removes it: e.g. suppression falls back to the account's)."""
        async with self.db.write() as s:
            row = await s.get(ConfigurationSet, (account_id, region, name))
            if row is None:
                raise missing(name)
            options = dict(row.options or {})
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
                    reputation["LastFreshStart"] = utcnow().isoformat()
                    options["ReputationOptions"] = reputation
                options[group] = value
            row.options = options

    async def delete(self, account_id: str, region: str, name: str) -> None:
        async with self.db.write() as s:
            row = await s.get(ConfigurationSet, (account_id, region, name))
            if row is None:
                raise missing(name)
            await s.delete(row)

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
