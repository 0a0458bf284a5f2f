"""SES API v2 (REST-JSON): thin adapters from operations to the domain.

One method per operation, named ``botocore.xform_name(operation)``, taking the request context and
the parsed, validated parameters and returning the output shape as a dict.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import service_errors
from sesame.domain.quotas import send_quota
from sesame.domain.tags import TagError
from sesame.providers.configuration_sets import ConfigurationSetsV2
from sesame.providers.contact_lists import ContactListsV2
from sesame.providers.dedicated_ips import DedicatedIpsV2
from sesame.providers.jobs import JobsV2
from sesame.providers.tenants import TenantsV2
from sesame.providers.v2_identities import IdentitiesV2
from sesame.providers.v2_sending import SendingV2
from sesame.providers.vdm import VdmV2
from sesame.providers.verification import VerificationV2

if TYPE_CHECKING:
    from sesame.runtime import Sesame

E = service_errors("sesv2")

#: SES enables the account-level suppression list for bounces and complaints on new accounts.
DEFAULT_SUPPRESSED_REASONS = ["BOUNCE", "COMPLAINT"]


class SesV2Provider(
    IdentitiesV2,
    SendingV2,
    VerificationV2,
    ConfigurationSetsV2,
    DedicatedIpsV2,
    VdmV2,
    ContactListsV2,
    JobsV2,
    TenantsV2,
):
    def __init__(self, sesame: Sesame) -> None:
        self.accounts = sesame.accounts
        self.tags = sesame.tags
        self.identities = sesame.identities
        self.templates = sesame.templates
        self.sending = sesame.sending
        self.suppression = sesame.suppression
        self.verification = sesame.verification
        self.configuration_sets = sesame.configuration_sets
        self.event_destinations = sesame.event_destinations
        self.dedicated_ips = sesame.dedicated_ips
        self.vdm = sesame.vdm
        self.advisor = sesame.advisor
        self.message_insights = sesame.message_insights
        self.address_insights = sesame.address_insights
        self.contact_lists = sesame.contact_lists
        self.jobs = sesame.jobs
        self.tenants = sesame.tenants
        self.entities = sesame.reputation_entities

    # -- account ----------------------------------------------------------------------------------

    async def get_account(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self.accounts.region(ctx.account_id, ctx.region)
        suppression = row.suppression_attributes or {"SuppressedReasons": DEFAULT_SUPPRESSED_REASONS}
        out: dict[str, Any] = {
            "DedicatedIpAutoWarmupEnabled": row.dedicated_ip_auto_warmup,
            "EnforcementStatus": row.enforcement_status,
            "ProductionAccessEnabled": row.production_access,
            "SendQuota": send_quota(row, await self.sending.sent_last_24_hours(ctx.account_id, ctx.region)),
            "SendingEnabled": row.sending_enabled,
            "SuppressionAttributes": suppression,
        }
        if row.details:
            out["Details"] = row.details
        if row.vdm_attributes:
            out["VdmAttributes"] = row.vdm_attributes
        return out

    async def put_account_details(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if not await self.accounts.request_production_access(ctx.account_id, ctx.region, params):
            raise E.ConflictException("There is already an ongoing account details update under review.")
        return {}

    async def put_account_sending_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.accounts.modify_region(
            ctx.account_id, ctx.region, sending_enabled=bool(params.get("SendingEnabled", False))
        )
        return {}

    async def put_account_suppression_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        attributes: dict[str, Any] = {"SuppressedReasons": list(params.get("SuppressedReasons") or [])}
        if "ValidationAttributes" in params:
            attributes["ValidationAttributes"] = params["ValidationAttributes"]
        await self.accounts.modify_region(ctx.account_id, ctx.region, suppression_attributes=attributes)
        return {}

    async def put_account_dedicated_ip_warmup_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.accounts.modify_region(
            ctx.account_id, ctx.region, dedicated_ip_auto_warmup=bool(params.get("AutoWarmupEnabled", False))
        )
        return {}

    async def put_account_vdm_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.accounts.modify_region(ctx.account_id, ctx.region, vdm_attributes=params["VdmAttributes"])
        return {}

    # -- tags -------------------------------------------------------------------------------------

    async def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _tag_errors():
            return {"Tags": await self.tags.list_tags(ctx.account_id, ctx.region, params["ResourceArn"])}

    async def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _tag_errors():
            await self.tags.tag(ctx.account_id, ctx.region, params["ResourceArn"], params["Tags"])
        return {}

    async def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _tag_errors():
            await self.tags.untag(ctx.account_id, ctx.region, params["ResourceArn"], params["TagKeys"])
        return {}


@contextlib.contextmanager
def _tag_errors() -> Iterator[None]:
    """TagError → the SES v2 error a client expects."""
    try:
        yield
    except TagError as exc:
        cls = E.NotFoundException if exc.kind == "not-found" else E.BadRequestException
        raise cls(str(exc)) from exc
