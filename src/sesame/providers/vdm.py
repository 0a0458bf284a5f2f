"""SES v2 Virtual Deliverability Manager operations: metrics, message and address insights, Advisor
recommendations, the domain statistics report. Thin: the work is in domain/vdm.py, advisor.py,
message_insights.py and address_insights.py."""

from __future__ import annotations

from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.domain.address_insights import AddressInsights
from sesame.domain.advisor import Advisor
from sesame.domain.message_insights import MessageInsights
from sesame.domain.vdm import Query, Vdm


class VdmV2:
    vdm: Vdm
    advisor: Advisor
    message_insights: MessageInsights
    address_insights: AddressInsights

    async def batch_get_metric_data(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queries = [
            Query(q["Id"], q["Metric"], dict(q.get("Dimensions") or {}), q["StartDate"], q["EndDate"])
            for q in params["Queries"]
        ]
        results, errors = await self.vdm.batch(ctx.account_id, ctx.region, queries)
        return {"Results": results, "Errors": errors}

    async def get_domain_statistics_report(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.vdm.domain_statistics(
            ctx.account_id, ctx.region, params["Domain"], params["StartDate"], params["EndDate"]
        )

    async def get_message_insights(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self.message_insights.get(ctx.account_id, ctx.region, params["MessageId"])

    async def list_recommendations(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found, token = await self.advisor.recommendations(
            ctx.account_id, ctx.region, params.get("Filter"), params.get("PageSize"), params.get("NextToken")
        )
        out: dict[str, Any] = {"Recommendations": found}
        if token:
            out["NextToken"] = token
        return out

    async def get_email_address_insights(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self.address_insights.evaluate(ctx.account_id, ctx.region, params["EmailAddress"])
