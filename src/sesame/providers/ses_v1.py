"""SES API v1 (query protocol): thin adapters from operations to the domain.

One method per operation, named ``botocore.xform_name(operation)``, taking the request context and
the parsed, validated parameters and returning the output shape as a dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sesame.awsapi.context import RequestContext
from sesame.domain.quotas import send_quota
from sesame.providers.configuration_sets import ConfigurationSetsV1
from sesame.providers.receiving import ReceivingV1
from sesame.providers.v1_identities import IdentitiesV1
from sesame.providers.v1_sending import SendingV1
from sesame.providers.verification import VerificationV1

if TYPE_CHECKING:
    from sesame.runtime import Sesame


class SesV1Provider(IdentitiesV1, SendingV1, VerificationV1, ConfigurationSetsV1, ReceivingV1):
    def __init__(self, sesame: Sesame) -> None:
        self.accounts = sesame.accounts
        self.tags = sesame.tags
        self.identities = sesame.identities
        self.templates = sesame.templates
        self.sending = sesame.sending
        self.verification = sesame.verification
        self.configuration_sets = sesame.configuration_sets
        self.event_destinations = sesame.event_destinations
        self.reputation = sesame.reputation
        self.receipt_rules = sesame.receipt_rules
        self.bounces = sesame.bounces

    async def get_send_quota(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        sent = await self.sending.sent_last_24_hours(ctx.account_id, ctx.region)
        return send_quota(await self.accounts.region(ctx.account_id, ctx.region), sent)

    async def get_send_statistics(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        # DeliveryAttempts from the send counters, the outcomes from reputation's (domain/reputation.py
        # says what each counts); one point per 15-minute period with any of them.
        points: dict[Any, dict[str, Any]] = {}

        def point(when: Any) -> dict[str, Any]:
            return points.setdefault(
                when, {"Timestamp": when, "DeliveryAttempts": 0, "Bounces": 0, "Complaints": 0, "Rejects": 0}
            )

        for when, n in await self.sending.statistics(ctx.account_id, ctx.region):
            point(when)["DeliveryAttempts"] = n
        for p in await self.reputation.statistics(ctx.account_id, ctx.region):
            entry = point(p.timestamp)
            entry.update(Bounces=p.bounces, Complaints=p.complaints, Rejects=p.rejects)
        return {"SendDataPoints": [points[when] for when in sorted(points)]}

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
