"""SES v2 dedicated IP and pool operations (provider mixin), on this node's source addresses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import ServiceError, service_errors
from sesame.domain.dedicated_ips import DedicatedIps, PoolError
from sesame.domain.tags import Tags

E = service_errors("sesv2")
_ERRORS: dict[str, type[ServiceError]] = {
    "not-found": E.NotFoundException,
    "exists": E.AlreadyExistsException,
    "invalid": E.BadRequestException,
}


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except PoolError as exc:
        raise _ERRORS[exc.kind](exc.message) from None


def _ip(ip: str, pool: str | None, percentage: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Ip": ip,
        "WarmupStatus": "DONE" if percentage >= 100 else "IN_PROGRESS",
        "WarmupPercentage": percentage,
    }
    if pool:
        out["PoolName"] = pool
    return out


class DedicatedIpsV2:
    dedicated_ips: DedicatedIps
    tags: Tags

    async def create_dedicated_ip_pool(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _errors():
            await self.dedicated_ips.create_pool(
                ctx.account_id, ctx.region, params["PoolName"], params.get("ScalingMode")
            )
        if params.get("Tags"):
            await self.tags.tag(
                ctx.account_id, ctx.region, ctx.arn(f"dedicated-ip-pool/{params['PoolName']}"), params["Tags"]
            )
        return {}

    async def delete_dedicated_ip_pool(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _errors():
            await self.dedicated_ips.delete_pool(ctx.account_id, ctx.region, params["PoolName"])
        await self.tags.drop_resource(ctx.account_id, ctx.arn(f"dedicated-ip-pool/{params['PoolName']}"))
        return {}

    async def get_dedicated_ip_pool(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _errors():
            row = await self.dedicated_ips.pool(ctx.account_id, ctx.region, params["PoolName"])
        return {"DedicatedIpPool": {"PoolName": row.name, "ScalingMode": row.scaling_mode}}

    async def list_dedicated_ip_pools(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"DedicatedIpPools": await self.dedicated_ips.pools(ctx.account_id, ctx.region)}

    async def put_dedicated_ip_pool_scaling_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with _errors():
            await self.dedicated_ips.set_scaling(
                ctx.account_id, ctx.region, params["PoolName"], params["ScalingMode"]
            )
        return {}

    async def put_dedicated_ip_in_pool(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _errors():
            await self.dedicated_ips.move(
                ctx.account_id, ctx.region, params["Ip"], params["DestinationPoolName"]
            )
        return {}

    async def put_dedicated_ip_warmup_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with _errors():
            await self.dedicated_ips.warm_up(
                ctx.account_id, ctx.region, params["Ip"], params["WarmupPercentage"]
            )
        return {}

    async def get_dedicated_ip(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        for ip, pool, percentage in await self.dedicated_ips.ips(ctx.account_id, ctx.region):
            if ip == params["Ip"]:
                return {"DedicatedIp": _ip(ip, pool, percentage)}
        raise E.NotFoundException(f"Dedicated IP {params['Ip']} does not exist.")

    async def get_dedicated_ips(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = await self.dedicated_ips.ips(ctx.account_id, ctx.region)
        if params.get("PoolName"):
            with _errors():
                await self.dedicated_ips.pool(ctx.account_id, ctx.region, params["PoolName"])
            found = [f for f in found if f[1] == params["PoolName"]]
        return {"DedicatedIps": [_ip(*f) for f in found]}
