"""SES v2 bulk jobs: import jobs (suppression list, contact lists) and export jobs (message insights,
VDM metrics). Thin: the work is in jobs/."""

from __future__ import annotations

from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.jobs.service import Jobs


class JobsV2:
    jobs: Jobs

    async def create_import_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"JobId": await self.jobs.create_import(ctx.account_id, ctx.region, params)}

    async def get_import_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self.jobs.get_import(ctx.account_id, ctx.region, params["JobId"])

    async def list_import_jobs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found, token = await self.jobs.list_imports(
            ctx.account_id,
            ctx.region,
            params.get("ImportDestinationType"),
            params.get("NextToken"),
            params.get("PageSize"),
        )
        return {"ImportJobs": found, **({"NextToken": token} if token else {})}

    async def create_export_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"JobId": await self.jobs.create_export(ctx.account_id, ctx.region, params)}

    async def get_export_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self.jobs.get_export(ctx.account_id, ctx.region, params["JobId"])

    async def list_export_jobs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found, token = await self.jobs.list_exports(
            ctx.account_id,
            ctx.region,
            params.get("ExportSourceType"),
            params.get("JobStatus"),
            params.get("NextToken"),
            params.get("PageSize"),
        )
        return {"ExportJobs": found, **({"NextToken": token} if token else {})}

    async def cancel_export_job(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.jobs.cancel_export(ctx.account_id, ctx.region, params["JobId"])
        return {}
