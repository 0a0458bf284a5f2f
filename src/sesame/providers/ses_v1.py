"""SES API v1 (query protocol): thin adapters from operations to the domain.

One method per operation, named ``botocore.xform_name(operation)``, taking the request context and
the parsed, validated parameters and returning the output shape as a dict.
"""

from __future__ import annotations

from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.domain.accounts import Accounts
from sesame.domain.identities import Identities
from sesame.domain.quotas import send_quota
from sesame.domain.tags import Tags
from sesame.providers.v1_identities import IdentitiesV1


class SesV1Provider(IdentitiesV1):
    def __init__(self, accounts: Accounts, tags: Tags, identities: Identities) -> None:
        self.accounts = accounts
        self.tags = tags
        self.identities = identities

    async def get_send_quota(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return send_quota(await self.accounts.region(ctx.account_id, ctx.region))

    async def get_account_sending_enabled(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.accounts.region(ctx.account_id, ctx.region)
        return {"Enabled": row.sending_enabled}

    async def update_account_sending_enabled(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        # SES treats an omitted Enabled as false.
        await self.accounts.modify_region(
            ctx.account_id, ctx.region, sending_enabled=bool(params.get("Enabled"))
        )
        return {}
