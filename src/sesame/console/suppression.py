"""Console pages: the account-level suppression list.

Search (part of an address, a reason), one page at a time; add an address with its reason; remove one;
import a CSV or JSON-lines file. An import goes the way CreateImportJob goes: the file is put into the
jobs bucket of the object store and an import job names it (``s3://bucket/key``); the job runs in the
background (jobs/runner.py) and its page shows its status and counts until it ends.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sesame.console.forms import REFUSED, attempt, first_url, next_url
from sesame.console.web import MAX_UPLOAD_BYTES, PREFIX, Ctx, page
from sesame.domain.suppression import REASONS
from sesame.jobs.suppression import ADDRESS, MAX_ADDRESS
from sesame.storage.models import SuppressedDestination

if TYPE_CHECKING:
    from sesame.console import Console

BASE = PREFIX + "/suppression"
#: Recent import jobs shown on the list's page.
RECENT_JOBS = 5
FORMATS = {"CSV": "CSV (address,reason per line)", "JSON": "JSON lines"}
ACTIONS = {"PUT": "Add or update the addresses", "DELETE": "Remove the addresses"}
#: A job still running: its page reloads itself (a meta refresh: no script needed).
RUNNING = ("CREATED", "PROCESSING")


def routes(console: Console) -> list[BaseRoute]:
    return [
        Route(BASE, page(console, "account", index), methods=["GET", "POST"]),
        Route(BASE + "/remove", page(console, "account", remove), methods=["POST"]),
        Route(BASE + "/import", page(console, "account", start_import), methods=["POST"]),
        Route(BASE + "/imports/{job_id}", page(console, "account", show_import), methods=["GET"]),
    ]


async def index(ctx: Ctx, error: str = "", status: int = 200) -> Response:
    """The list (and, on POST, adding an address as PutSuppressedDestination does)."""
    if ctx.request.method == "POST" and not error and ctx.request.url.path == BASE:
        address = ctx.form.get("address", "").strip()
        reason = ctx.form.get("reason", "")
        if len(address) > MAX_ADDRESS or not ADDRESS.fullmatch(address):
            error = f"Invalid email address <{address}>."
        elif reason not in REASONS:
            error = "Reason must be BOUNCE or COMPLAINT."
        else:
            error = await attempt(
                ctx, ctx.sesame.suppression.put(ctx.account_id, ctx.region, address, reason)
            )
        if not error:
            return ctx.redirect(BASE, f"{address} is on the suppression list ({reason}).")
        status = 400
    search = ctx.query.get("q", "").strip()
    reason_filter = ctx.query.get("reason", "")
    after = ctx.query.get("after") or None
    rows, last = await _search(ctx, search, reason_filter, after)
    jobs, _ = await ctx.sesame.jobs.list_imports(
        ctx.account_id, ctx.region, "SUPPRESSION_LIST", None, RECENT_JOBS
    )
    return ctx.render(
        "suppression.html",
        status=status,
        rows=rows,
        search=search,
        reason_filter=reason_filter,
        reasons=REASONS,
        formats=FORMATS,
        actions=ACTIONS,
        jobs=jobs,
        error=error,
        form=ctx.form,
        next=next_url(BASE, ctx.query, last),
        first=first_url(BASE, ctx.query),
    )


async def _search(
    ctx: Ctx, search: str, reason: str, after: str | None
) -> tuple[list[SuppressedDestination], str | None]:
    """One page of the list in address order. Addresses are kept lower-cased (domain/suppression.py),
    so a lower-cased substring matches without regard to case on SQLite and PostgreSQL alike."""
    t = SuppressedDestination
    q = sa.select(t).where(t.account_id == ctx.account_id, t.region == ctx.region)
    if search:
        q = q.where(t.email_address.contains(search.lower(), autoescape=True))
    if reason in REASONS:
        q = q.where(t.reason == reason)
    rows, last = await ctx.sesame.db.page(q, t.email_address, after, ctx.console.settings.console.page_size)
    return list(rows), last


async def remove(ctx: Ctx) -> Response:
    address = ctx.form.get("address", "")
    try:
        removed = await ctx.sesame.suppression.delete(ctx.account_id, ctx.region, address)
    except REFUSED as exc:
        return await index(ctx, exc.message, 400)
    if not removed:  # DeleteSuppressedDestination's words
        return await index(ctx, f"Email address {address} does not exist on your suppression list.", 404)
    return ctx.redirect(BASE, f"{address} removed from the suppression list.")


async def start_import(ctx: Ctx) -> Response:
    upload = ctx.files.get("file")
    data_format = ctx.form.get("format", "CSV")
    action = ctx.form.get("action", "PUT")
    if upload is None or not upload.filename:
        return await index(ctx, "Choose a file to import.", 400)
    if data_format not in FORMATS or action not in ACTIONS:
        return await index(ctx, "Choose the file's format and what to do with its addresses.", 400)
    body = await upload.read(MAX_UPLOAD_BYTES + 1)
    if not body.strip():
        return await index(ctx, "The file is empty.", 400)
    bucket = ctx.console.settings.jobs.bucket
    suffix = "csv" if data_format == "CSV" else "jsonl"
    key = f"console-imports/{ctx.account_id}/{secrets.token_hex(8)}.{suffix}"
    params: dict[str, Any] = {
        "ImportDestination": {"SuppressionListDestination": {"SuppressionListImportAction": action}},
        "ImportDataSource": {"S3Url": f"s3://{bucket}/{key}", "DataFormat": data_format},
    }
    try:
        await ctx.sesame.objects.put(bucket, key, body, region=ctx.region)
        job_id = await ctx.sesame.jobs.create_import(ctx.account_id, ctx.region, params)
    except REFUSED as exc:
        return await index(ctx, exc.message, 400)
    return ctx.redirect(f"{BASE}/imports/{job_id}", "Import job created.")


async def show_import(ctx: Ctx) -> Response:
    job_id = ctx.request.path_params["job_id"]
    try:
        job = await ctx.sesame.jobs.get_import(ctx.account_id, ctx.region, job_id)
    except REFUSED as exc:
        return ctx.error(404, exc.message)
    if "SuppressionListDestination" not in job["ImportDestination"]:
        return ctx.error(404, f"Job {job_id} does not exist.")
    return ctx.render(
        "suppression_import.html",
        job=job,
        running=job["JobStatus"] in RUNNING,
        action=job["ImportDestination"]["SuppressionListDestination"]["SuppressionListImportAction"],
        failure=job.get("FailureInfo") or {},
    )
