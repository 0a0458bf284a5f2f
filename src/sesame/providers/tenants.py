"""SES v2 tenant and reputation-entity operations (mixed into SesV2Provider).

Domain errors (TenantNotFound, AssociationExists, InvalidEntityRequest, …) reach providers/errors.py,
which gives each its v2 code (NotFoundException, AlreadyExistsException, BadRequestException,
LimitExceededException).
"""

from __future__ import annotations

from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import service_errors
from sesame.domain import reputation_entities as re_
from sesame.domain.reputation_entities import ReputationEntities
from sesame.domain.tags import MAX_TAGS_PER_RESOURCE, Tags
from sesame.domain.tenants import Tenants
from sesame.providers.v2_identities import decode_token, encode_token
from sesame.storage.models import Tenant

E = service_errors("sesv2")

#: Page sizes of the list operations (SES documents none for these; [DECISION] as its other lists).
DEFAULT_PAGE, MAX_PAGE = 100, 1000


def _page_size(params: dict[str, Any]) -> int:
    given = params.get("PageSize")
    size: int = DEFAULT_PAGE if given is None else given
    if not 1 <= size <= MAX_PAGE:
        raise E.BadRequestException(f"PageSize must be between 1 and {MAX_PAGE}.")
    return size


def _page(out: dict[str, Any], last: str | None) -> dict[str, Any]:
    if last:
        out["NextToken"] = encode_token(last)
    return out


class TenantsV2:
    tenants: Tenants
    entities: ReputationEntities
    tags: Tags

    async def _shown(self, row: Tenant, status: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TenantName": row.name,
            "TenantId": row.tenant_id,
            "TenantArn": row.arn,
            "CreatedTimestamp": row.created_at,
            "SendingStatus": status or await self.tenants.status(row),
        }
        return out

    # -- tenants ----------------------------------------------------------------------------------

    async def create_tenant(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tags = list(params.get("Tags") or [])
        if len({t["Key"] for t in tags}) > MAX_TAGS_PER_RESOURCE:
            raise E.BadRequestException(f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags.")
        suppression = params.get("SuppressionAttributes")
        row = await self.tenants.create(ctx.account_id, ctx.region, params["TenantName"], tags, suppression)
        out = await self._shown(row)
        out["Tags"] = await self.tags.list_tags(ctx.account_id, ctx.region, row.arn)
        if row.suppression_attributes:
            out["SuppressionAttributes"] = row.suppression_attributes
        return out

    async def get_tenant(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self.tenants.get(ctx.account_id, ctx.region, params["TenantName"])
        out = await self._shown(row)
        out["Tags"] = await self.tags.list_tags(ctx.account_id, ctx.region, row.arn)
        if row.suppression_attributes:
            out["SuppressionAttributes"] = row.suppression_attributes
        return {"Tenant": out}

    async def list_tenants(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size = _page_size(params)
        rows, last = await self.tenants.page(
            ctx.account_id,
            ctx.region,
            params.get("Filter") or {},
            decode_token(params.get("NextToken")),
            size,
        )
        return _page({"Tenants": [await self._shown(r, status) for r, status in rows]}, last)

    async def delete_tenant(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.tenants.delete(ctx.account_id, ctx.region, params["TenantName"])
        return {}

    async def put_tenant_suppression_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            k: params[k] for k in ("SuppressedReasons", "SuppressionScope") if k in params
        }
        await self.tenants.put_suppression_attributes(
            ctx.account_id, ctx.region, params["TenantName"], attributes
        )
        return {}

    # -- resources --------------------------------------------------------------------------------

    async def create_tenant_resource_association(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.tenants.associate(ctx.account_id, ctx.region, params["TenantName"], params["ResourceArn"])
        return {}

    async def delete_tenant_resource_association(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.tenants.dissociate(ctx.account_id, ctx.region, params["TenantName"], params["ResourceArn"])
        return {}

    async def list_tenant_resources(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size = _page_size(params)
        rows, last = await self.tenants.resources(
            ctx.account_id,
            ctx.region,
            params["TenantName"],
            params.get("Filter") or {},
            decode_token(params.get("NextToken")),
            size,
        )
        listed = [{"ResourceType": r.resource_type, "ResourceArn": r.resource_arn} for r in rows]
        return _page({"TenantResources": listed}, last)

    async def list_resource_tenants(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size = _page_size(params)
        rows, last = await self.tenants.tenants_of(
            ctx.account_id, ctx.region, params["ResourceArn"], decode_token(params.get("NextToken")), size
        )
        listed = [
            {
                "TenantName": r.tenant_name,
                "TenantId": tenant_id,
                "ResourceArn": r.resource_arn,
                "AssociatedTimestamp": r.associated_at,
            }
            for r, tenant_id in rows
        ]
        return _page({"ResourceTenants": listed}, last)

    # -- reputation entities ----------------------------------------------------------------------

    async def get_reputation_entity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self.entities.get(
            ctx.account_id, ctx.region, params["ReputationEntityType"], params["ReputationEntityReference"]
        )
        return {"ReputationEntity": re_.show(row)}

    async def list_reputation_entities(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size = _page_size(params)
        rows, last = await self.entities.page(
            ctx.account_id,
            ctx.region,
            params.get("Filter") or {},
            decode_token(params.get("NextToken")),
            size,
        )
        return _page({"ReputationEntities": [re_.show(r) for r in rows]}, last)

    async def update_reputation_entity_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.entities.set_policy(
            ctx.account_id,
            ctx.region,
            params["ReputationEntityType"],
            params["ReputationEntityReference"],
            params["ReputationEntityPolicy"],
        )
        return {}

    async def update_reputation_entity_customer_managed_status(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.entities.set_customer_status(
            ctx.account_id,
            ctx.region,
            params["ReputationEntityType"],
            params["ReputationEntityReference"],
            params["SendingStatus"],
        )
        return {}
