"""Tenants (SES v2 CreateTenant … ListResourceTenants, PutTenantSuppressionAttributes; reference §12.6).

A tenant groups some of the account's identities, configuration sets and templates (associated by ARN;
one resource may serve many tenants) and sends with a reputation of its own: its reputation entity
(domain/reputation_entities.py), made and dropped with it. A send made as a tenant (v2 ``TenantName``,
the ``X-SES-TENANT`` header of raw mail and SMTP) is admitted by ``admit``: the tenant must exist, its
aggregate sending status must not be DISABLED, and the identity, configuration set and template the
send uses must be associated with it. Its suppression attributes choose the list the send's recipients
are checked against and its feedback goes to (domain/suppression.py).

Deleting a tenant removes its associations, its own suppression list, its tags and its entity, never the
resources themselves. A resource deleted while associated leaves its association behind (harmless: a
resource made again under the name is the one the tenant meant).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sesame.domain.identities import normalize
from sesame.domain.reputation_entities import DISABLED, TENANT_SCOPE, ReputationEntities
from sesame.domain.sending import Outgoing, SendError
from sesame.domain.tags import Tags
from sesame.errors import AlreadyExists, InvalidRequest, LimitExceeded, NotFound
from sesame.storage.db import Database
from sesame.storage.models import (
    ConfigurationSet,
    Identity,
    ReputationEntity,
    Template,
    Tenant,
    TenantResource,
    TenantSuppressedDestination,
    utcnow,
)

#: Tenants per account and region (SES: 10,000, from its changelog only; UNCONFIRMED).
MAX_TENANTS = 10_000
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RESOURCE_ARN = re.compile(
    r"^arn:aws[a-z-]*:ses:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<type>[a-z-]+)/(?P<name>.+)$"
)
#: The ARN's resource type → SES's ResourceType, and the table that holds such resources.
RESOURCE_TYPES = {
    "identity": "EMAIL_IDENTITY",
    "configuration-set": "CONFIGURATION_SET",
    "template": "EMAIL_TEMPLATE",
}
_TABLES = {"identity": Identity, "configuration-set": ConfigurationSet, "template": Template}


class TenantNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Tenant {name} does not exist.")


class TenantExists(AlreadyExists):
    def __init__(self, name: str) -> None:
        super().__init__(f"Tenant {name} already exists.")


class InvalidTenantRequest(InvalidRequest):
    pass


class TooManyTenants(LimitExceeded):
    pass


class ResourceNotFound(NotFound):
    def __init__(self, arn: str) -> None:
        super().__init__(f"Resource {arn} does not exist.")


class AssociationExists(AlreadyExists):
    pass


class AssociationNotFound(NotFound):
    pass


def tenant_arn(region: str, account_id: str, name: str, tenant_id: str) -> str:
    """``arn:aws:ses:<region>:<account>:tenant/<TenantName>/<TenantId>`` (OBSERVED, reference §12.6)."""
    return f"arn:aws:ses:{region}:{account_id}:tenant/{name}/{tenant_id}"


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidTenantRequest(
            f"Invalid tenant name: {name}. A tenant name has 1 to 64 characters: letters, digits, "
            "'-' and '_'."
        )


@dataclass(frozen=True)
class Resource:
    arn: str  # canonical: an identity's name as stored (a domain in lower case)
    kind: str  # the ARN's type: identity, configuration-set, template
    name: str

    @property
    def resource_type(self) -> str:
        return RESOURCE_TYPES[self.kind]


def parse_resource(arn: str) -> Resource:
    m = _RESOURCE_ARN.match(arn)
    if m is None or m["type"] not in RESOURCE_TYPES:
        raise InvalidTenantRequest(
            f"Invalid resource ARN: {arn}. A tenant takes email identities, configuration sets and "
            "email templates."
        )
    name = normalize(m["name"]) if m["type"] == "identity" else m["name"]
    canonical = f"arn:aws:ses:{m['region']}:{m['account']}:{m['type']}/{name}"
    return Resource(canonical, m["type"], name)


class Tenants:
    def __init__(self, db: Database, tags: Tags, entities: ReputationEntities) -> None:
        self.db = db
        self.tags = tags
        self.entities = entities

    # -- tenants ----------------------------------------------------------------------------------

    async def create(
        self,
        account_id: str,
        region: str,
        name: str,
        tags: list[dict[str, str]],
        suppression_attributes: Mapping[str, Any] | None,
    ) -> Tenant:
        check_name(name)
        tenant_id = f"tn-{secrets.token_hex(12)}"
        arn = tenant_arn(region, account_id, name, tenant_id)
        async with self.db.write() as s:
            if await s.get(Tenant, (account_id, region, name)) is not None:
                raise TenantExists(name)
            count = await s.scalar(
                sa.select(sa.func.count())
                .select_from(Tenant)
                .where(Tenant.account_id == account_id, Tenant.region == region)
            )
            if (count or 0) >= MAX_TENANTS:
                raise TooManyTenants(f"You have reached the limit of {MAX_TENANTS} tenants.")
            row = Tenant(
                account_id=account_id,
                region=region,
                name=name,
                tenant_id=tenant_id,
                arn=arn,
                created_at=utcnow(),
                suppression_attributes=dict(suppression_attributes) if suppression_attributes else None,
            )
            s.add(row)
            self.entities.create_in(s, account_id, region, arn, TENANT_SCOPE + tenant_id)
        if tags:
            await self.tags.tag(account_id, region, arn, tags)
        return row

    async def get(self, account_id: str, region: str, name: str) -> Tenant:
        async with self.db.read() as s:
            row = await s.get(Tenant, (account_id, region, name))
        if row is None:
            raise TenantNotFound(name)
        return row

    async def exists(self, account_id: str, region: str, name: str) -> bool:
        """For tagging: ``name`` is the ARN's ``<TenantName>/<TenantId>``."""
        tenant, _, tenant_id = name.partition("/")
        async with self.db.read() as s:
            row = await s.get(Tenant, (account_id, region, tenant))
        return row is not None and row.tenant_id == tenant_id

    async def status(self, row: Tenant) -> str:
        """The tenant's SendingStatus: its reputation entity's aggregate."""
        return (await self.entities.statuses(row.account_id, row.region, [row.arn])).get(row.arn, "ENABLED")

    async def page(
        self, account_id: str, region: str, filters: Mapping[str, str], after: str | None, limit: int
    ) -> tuple[list[tuple[Tenant, str]], str | None]:
        """Tenants in name order with their SendingStatus; filters TENANT_NAME_CONTAINS, SENDING_STATUS."""
        t, e = Tenant, ReputationEntity
        q = sa.select(t).where(t.account_id == account_id, t.region == region)
        for key, value in filters.items():
            if key == "TENANT_NAME_CONTAINS":
                q = q.where(t.name.contains(value, autoescape=True))
            elif key == "SENDING_STATUS":
                q = q.join(
                    e, sa.and_(e.account_id == t.account_id, e.region == t.region, e.reference == t.arn)
                ).where(e.sending_status == value)
            else:
                raise InvalidTenantRequest(
                    f"Invalid filter: {key}. Valid filters: TENANT_NAME_CONTAINS, SENDING_STATUS."
                )
        rows, last = await self.db.page(q, t.name, after, limit)
        statuses = await self.entities.statuses(account_id, region, [r.arn for r in rows])
        return [(r, statuses.get(r.arn, "ENABLED")) for r in rows], last

    async def delete(self, account_id: str, region: str, name: str) -> None:
        async with self.db.write() as s:
            row = await s.get(Tenant, (account_id, region, name))
            if row is None:
                raise TenantNotFound(name)
            await self.entities.drop_in(s, account_id, region, row.arn)
            for model in (TenantResource, TenantSuppressedDestination):
                await s.execute(
                    sa.delete(model).where(
                        model.account_id == account_id, model.region == region, model.tenant_name == name
                    )
                )
            await s.delete(row)
        await self.tags.drop_resource(account_id, row.arn)

    async def put_suppression_attributes(
        self, account_id: str, region: str, name: str, attributes: Mapping[str, Any]
    ) -> None:
        async with self.db.write() as s:
            row = await s.get(Tenant, (account_id, region, name))
            if row is None:
                raise TenantNotFound(name)
            row.suppression_attributes = dict(attributes)

    # -- resources --------------------------------------------------------------------------------

    async def _resource(self, account_id: str, region: str, arn: str) -> Resource:
        """The resource ``arn`` names, which must be one of the caller's that exists."""
        resource = parse_resource(arn)
        m = _RESOURCE_ARN.match(resource.arn)
        assert m is not None
        if m["account"] != account_id or m["region"] != region:
            raise ResourceNotFound(arn)
        model: Any = _TABLES[resource.kind]
        key = model.identity if resource.kind == "identity" else model.name
        async with self.db.read() as s:
            found = await s.scalar(
                sa.select(sa.literal(1)).where(
                    model.account_id == account_id, model.region == region, key == resource.name
                )
            )
        if found is None:
            raise ResourceNotFound(arn)
        return resource

    async def associate(self, account_id: str, region: str, name: str, arn: str) -> None:
        await self.get(account_id, region, name)
        resource = await self._resource(account_id, region, arn)
        async with self.db.write() as s:
            if await s.get(Tenant, (account_id, region, name)) is None:
                raise TenantNotFound(name)
            if await s.get(TenantResource, (account_id, region, name, resource.arn)) is not None:
                raise AssociationExists(f"Resource {arn} is already associated with tenant {name}.")
            s.add(
                TenantResource(
                    account_id=account_id,
                    region=region,
                    tenant_name=name,
                    resource_arn=resource.arn,
                    resource_type=resource.resource_type,
                    associated_at=utcnow(),
                )
            )

    async def dissociate(self, account_id: str, region: str, name: str, arn: str) -> None:
        resource = parse_resource(arn)
        async with self.db.write() as s:
            if await s.get(Tenant, (account_id, region, name)) is None:
                raise TenantNotFound(name)
            row = await s.get(TenantResource, (account_id, region, name, resource.arn))
            if row is None:
                raise AssociationNotFound(f"Resource {arn} is not associated with tenant {name}.")
            await s.delete(row)

    async def resources(
        self,
        account_id: str,
        region: str,
        name: str,
        filters: Mapping[str, str],
        after: str | None,
        limit: int,
    ) -> tuple[list[TenantResource], str | None]:
        await self.get(account_id, region, name)
        r = TenantResource
        q = sa.select(r).where(r.account_id == account_id, r.region == region, r.tenant_name == name)
        for key, value in filters.items():
            if key != "RESOURCE_TYPE" or value not in RESOURCE_TYPES.values():
                raise InvalidTenantRequest(
                    f"Invalid filter: {key}={value}. Valid filter: RESOURCE_TYPE, one of "
                    + ", ".join(RESOURCE_TYPES.values())
                    + "."
                )
            q = q.where(r.resource_type == value)
        return await self.db.page(q, r.resource_arn, after, limit)

    async def tenants_of(
        self, account_id: str, region: str, arn: str, after: str | None, limit: int
    ) -> tuple[list[tuple[TenantResource, str]], str | None]:
        """The tenants a resource is associated with, in name order, with their TenantIds."""
        resource = await self._resource(account_id, region, arn)
        r = TenantResource
        q = sa.select(r).where(r.account_id == account_id, r.region == region, r.resource_arn == resource.arn)
        rows, last = await self.db.page(q, r.tenant_name, after, limit)
        async with self.db.read() as s:
            found = await s.execute(
                sa.select(Tenant.name, Tenant.tenant_id).where(
                    Tenant.account_id == account_id,
                    Tenant.region == region,
                    Tenant.name.in_([x.tenant_name for x in rows]),
                )
            )
            ids = {name: tenant_id for name, tenant_id in found}
        return [(x, ids.get(x.tenant_name, "")) for x in rows], last

    # -- sending ----------------------------------------------------------------------------------

    async def admit(
        self, account_id: str, region: str, msg: Outgoing, identity: str
    ) -> dict[str, Any] | None:
        """Whether ``msg`` may be sent as its tenant from ``identity`` (Sending.admit_tenant): SendError if
        not; else the tenant's SuppressionAttributes. One read for the tenant, its status and which of the
        send's resources it has."""
        name = msg.tenant or ""
        wanted = {f"arn:aws:ses:{region}:{account_id}:identity/{normalize(identity)}": f"identity {identity}"}
        if msg.configuration_set:
            arn = f"arn:aws:ses:{region}:{account_id}:configuration-set/{msg.configuration_set}"
            wanted[arn] = f"configuration set {msg.configuration_set}"
        if msg.template:
            wanted[f"arn:aws:ses:{region}:{account_id}:template/{msg.template}"] = f"template {msg.template}"
        key = {"a": account_id, "r": region, "n": name}
        tenant, status, associated = await self.db.fetch(
            [
                (
                    "SELECT arn, suppression_attributes FROM tenants"
                    " WHERE account_id = :a AND region = :r AND name = :n",
                    key,
                ),
                (
                    "SELECT e.sending_status FROM reputation_entities e JOIN tenants t"
                    " ON e.account_id = t.account_id AND e.region = t.region AND e.reference = t.arn"
                    " WHERE t.account_id = :a AND t.region = :r AND t.name = :n",
                    key,
                ),
                (
                    "SELECT resource_arn FROM tenant_resources"
                    " WHERE account_id = :a AND region = :r AND tenant_name = :n AND resource_arn IN :arns",
                    {**key, "arns": sorted(wanted)},
                ),
            ]
        )
        if not tenant:
            raise SendError("tenant-missing", f"Tenant {name} does not exist.")
        if status and status[0]["sending_status"] == DISABLED:
            raise SendError("tenant-paused", f"Sending is paused for tenant {name}.")
        have = {r["resource_arn"] for r in associated}
        missing = [what for arn, what in wanted.items() if arn not in have]
        if missing:
            raise SendError(
                "tenant-rejected",
                f"The following resources are not associated with tenant {name}: {', '.join(missing)}.",
            )
        value = tenant[0]["suppression_attributes"]
        if isinstance(value, str):  # Database.fetch gives JSON columns as text
            value = json.loads(value)
        return dict(value) if value else None
