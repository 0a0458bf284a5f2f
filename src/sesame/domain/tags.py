"""Tags on SES resources, addressed by ARN (SES v2 TagResource / UntagResource / ListTagsForResource).

A resource ARN is ``arn:aws:ses:REGION:ACCOUNT:TYPE/NAME``. A caller can only tag resources of its own
account and region. Each resource type registers an existence check as its feature lands
(``register_resource``); until one is registered for a type, any well-formed name is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from sesame.storage.db import Database
from sesame.storage.models import Tag

#: Per-resource limit [DG: tagging]. The key/value lengths are checked from the model.
MAX_TAGS_PER_RESOURCE = 50

_ARN = re.compile(
    r"^arn:aws[a-z-]*:ses:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<type>[a-z-]+)/(?P<name>.+)$"
)
TAGGABLE_TYPES = frozenset(
    {
        "configuration-set",
        "contact-list",
        "dedicated-ip-pool",
        "deliverability-test-report",
        "identity",
        "template",
        "tenant",
        "multi-region-endpoint",
    }
)

ResourceExists = Callable[[str, str, str], Awaitable[bool]]  # (account, region, name) -> bool
_checkers: dict[str, ResourceExists] = {}


def register_resource(resource_type: str, exists: ResourceExists) -> None:
    _checkers[resource_type] = exists


class TagError(ValueError):
    """``kind`` is 'invalid' (BadRequest), 'not-found' (NotFound) or 'limit' (BadRequest)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Tags:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _check(self, account_id: str, region: str, arn: str) -> None:
        m = _ARN.match(arn)
        if m is None or m["type"] not in TAGGABLE_TYPES:
            raise TagError("invalid", f"Invalid resource ARN: {arn}")
        if m["account"] != account_id or m["region"] != region:
            raise TagError("not-found", f"Resource not found: {arn}")
        exists = _checkers.get(m["type"])
        if exists is not None and not await exists(account_id, region, m["name"]):
            raise TagError("not-found", f"Resource not found: {arn}")

    async def list_tags(self, account_id: str, region: str, arn: str) -> list[dict[str, str]]:
        await self._check(account_id, region, arn)
        async with self.db.read() as s:
            rows = await s.scalars(
                sa.select(Tag).where(Tag.account_id == account_id, Tag.resource_arn == arn).order_by(Tag.key)
            )
            return [{"Key": t.key, "Value": t.value} for t in rows]

    async def tag(self, account_id: str, region: str, arn: str, tags: list[dict[str, str]]) -> None:
        await self._check(account_id, region, arn)
        wanted = {t["Key"]: t.get("Value", "") for t in tags}
        async with self.db.write() as s:
            existing = {
                t.key: t
                for t in await s.scalars(
                    sa.select(Tag).where(Tag.account_id == account_id, Tag.resource_arn == arn)
                )
            }
            if len(existing.keys() | wanted.keys()) > MAX_TAGS_PER_RESOURCE:
                raise TagError("limit", f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags.")
            for key, value in wanted.items():
                if key in existing:
                    existing[key].value = value
                else:
                    s.add(Tag(account_id=account_id, resource_arn=arn, key=key, value=value))

    async def untag(self, account_id: str, region: str, arn: str, keys: list[str]) -> None:
        await self._check(account_id, region, arn)
        async with self.db.write() as s:
            await s.execute(
                sa.delete(Tag).where(Tag.account_id == account_id, Tag.resource_arn == arn, Tag.key.in_(keys))
            )

    async def drop_resource(self, account_id: str, arn: str) -> None:
        """The resource is gone: so are its tags (a new one of the same name starts untagged)."""
        async with self.db.write() as s:
            await s.execute(sa.delete(Tag).where(Tag.account_id == account_id, Tag.resource_arn == arn))
