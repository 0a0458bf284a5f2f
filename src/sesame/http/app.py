"""The HTTP listener: the AWS endpoint (SES v1 and v2 on one host, as SES has), /health, and in dev
mode LocalStack- and moto-compatible helpers.

The AWS endpoint is every path not claimed by another route. A request's caller is identified from its
headers before its body is read, and the body is read with a hard cap, so a client cannot make the
process buffer more than ``max_request_bytes``, and an unsigned or unknown one not even that.
"""

from __future__ import annotations

import asyncio
import html
import uuid
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sesame import console
from sesame.awsapi import errors
from sesame.awsapi.dispatch import error_response
from sesame.awsapi.messages import AwsRequest, AwsResponse
from sesame.config import Settings
from sesame.events import inspect
from sesame.http import admin, inbound, objects, sns, tracking, unsubscribe
from sesame.integrations import cloudwatch_local
from sesame.metrics import registry as metrics_registry
from sesame.runtime import Sesame


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


async def _read_body(request: Request, settings: Settings) -> bytes:
    """The body, at most ``max_request_bytes`` of it, arriving within ``body_timeout`` seconds plus
    one second per ``min_body_rate`` bytes: a client trickling a body cannot hold a request open."""
    limit = settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    first = asyncio.get_running_loop().time() + settings.body_timeout
    try:
        async with asyncio.timeout_at(first) as deadline:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
                if settings.min_body_rate > 0:
                    deadline.reschedule(first + size / settings.min_body_rate)
    except TimeoutError:
        raise BodyTooSlow from None
    return b"".join(chunks)


def _to_response(r: AwsResponse) -> Response:
    return Response(r.body, status_code=r.status, headers=r.headers)


def _unread(r: AwsResponse) -> Response:
    """An answer given without reading (all of) the request's body: the connection cannot carry
    another request, so it is closed rather than drained."""
    response = _to_response(r)
    response.headers["connection"] = "close"
    return response


def localstack_view(m: Any) -> dict[str, Any]:
    """One accepted message in the JSON LocalStack's /_aws/ses gives (its keys, its shapes)."""
    out: dict[str, Any] = {
        "Id": m.id,
        "Region": m.region,
        "Source": m.from_address,
        "Timestamp": m.created_at.isoformat(),
    }
    summary = m.summary or {}
    if "RawData" in summary:
        out["RawData"] = summary["RawData"]
        out["Destination"] = {"ToAddresses": summary.get("Destinations") or []}
        return out
    out["Destination"] = summary.get("Destination") or {}
    if "Template" in summary:
        out["Template"] = summary["Template"]
        out["TemplateData"] = summary["TemplateData"]
    else:
        out["Subject"] = summary.get("Subject")
        out["Body"] = summary.get("Body") or {}
    return out


def create_app(sesame: Sesame) -> Starlette:
    settings = sesame.settings

    async def aws(request: Request) -> Response:
        scope = request.scope
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path = scope["path"]
        header_bytes = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if header_bytes > settings.max_header_bytes:
            err = errors.RequestHeaderSectionTooLarge(
                f"The request's headers take {header_bytes} bytes;"
                f" at most {settings.max_header_bytes} are allowed."
            )
            return _unread(error_response(path, err, str(uuid.uuid4())))
        req = AwsRequest(
            method=request.method,
            path=path,
            raw_path=raw_path.decode("latin-1"),
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            client_ip=(scope.get("client") or ("",))[0],
        )
        # Who is calling, from the headers alone: a body is read only for a known key (any key in dev
        # mode), so unsigned or unknown callers cannot make the process buffer their bodies.
        caller = await sesame.dispatch.identify(req)
        if isinstance(caller, AwsResponse):
            return _unread(caller)
        try:
            req.body = await _read_body(request, settings)
        except BodyTooLarge:
            err = errors.RequestEntityTooLarge(
                f"Request body must be at most {settings.max_request_bytes} bytes."
            )
            return _unread(error_response(path, err, str(uuid.uuid4())))
        except BodyTooSlow:
            err = errors.RequestTimeout(
                "Your socket connection to the server was not read from or written to within the"
                " timeout period. Idle connections will be closed."
            )
            return _unread(error_response(path, err, str(uuid.uuid4())))
        return _to_response(await sesame.dispatch(req, caller))

    async def verify_email(request: Request) -> Response:
        # The link in an address's verification email (SES: valid for 24 hours).
        row = await sesame.identities.confirm_email(request.query_params.get("token", ""))
        if row is None:
            return HTMLResponse("<p>This verification link is not valid.</p>", status_code=404)
        ok = row.verification_status == "SUCCESS"
        # A custom verification template sends the person on to its success or failure page.
        if target := await sesame.verification.redirect_for(row, ok):
            return RedirectResponse(target, status_code=302)
        if not ok:
            return HTMLResponse("<p>This verification link has expired.</p>", status_code=410)
        return HTMLResponse(
            f"<p>{html.escape(row.identity)} is verified for sending in {html.escape(row.region)}.</p>"
        )

    async def root(request: Request) -> Response:
        """``GET /`` in a browser opens the console; a signed or query-protocol request is the API's."""
        signed = "authorization" in request.headers or "X-Amz-Signature" in request.query_params
        if signed or "Action" in request.query_params or not settings.console.enabled:
            return await aws(request)
        return RedirectResponse("/console/", status_code=303)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "mode": settings.mode})

    async def localstack_messages(request: Request) -> Response:
        # LocalStack's GET /_aws/ses: {"messages": [...]} of accepted sends, filterable by ?id= and
        # ?email= (the source); DELETE clears them (or the one ?id= names).
        message_id = request.query_params.get("id")
        if request.method == "DELETE":
            await sesame.sending.forget(message_id)
            return Response(status_code=204)
        rows = await sesame.sending.messages(message_id=message_id, source=request.query_params.get("email"))
        return JSONResponse({"messages": [localstack_view(m) for m in rows]})

    async def dev_events(request: Request) -> Response:
        # Recent event records with where each went (?after=ID for newer ones); DELETE clears them.
        if request.method == "DELETE":
            await inspect.clear(sesame.db)
            return Response(status_code=204)
        after = int(request.query_params.get("after") or 0)
        return JSONResponse({"events": await inspect.recent(sesame.db, after)})

    async def metrics(request: Request) -> Response:
        # The rates are read from the database at each scrape: any node's publisher may have counted.
        cloudwatch_local.reputation(await sesame.reputation.current())
        return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)

    async def reset(request: Request) -> Response:
        await sesame.reset()
        return JSONResponse({"status": "reset"})

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    ops = [Route("/health", health, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]
    if not settings.runs("api"):  # a node of other roles: its health and figures, for its operator
        return Starlette(routes=ops)
    routes: list[Any] = [
        # The API's own paths first: Starlette tries routes in order, and matching the ~90 console and
        # admin routes before the catch-all below cost every SendEmail ~0.2 ms of CPU. No other route
        # lives under /v2/, and "/" takes only GET (POST / is SES v1's and SNS's query protocol).
        Route("/v2/{path:path}", aws, methods=methods),
        Route("/", aws, methods=["POST"]),
        *ops,
        Route("/_sesame/verify-email", verify_email, methods=["GET"]),
        *admin.routes(sesame),
        *sns.routes(sesame),
        *tracking.routes(sesame),
        *unsubscribe.routes(sesame),
        *objects.routes(sesame),
        *console.routes(sesame),
        Route("/", root, methods=["GET"]),
    ]
    if settings.mode == "dev":
        routes += [
            Route("/_aws/ses", localstack_messages, methods=["GET", "DELETE"]),
            Route("/_sesame/reset", reset, methods=["POST"]),
            Route("/_sesame/events", dev_events, methods=["GET", "DELETE"]),
            *inbound.routes(sesame),
            Route("/moto-api/reset", reset, methods=["POST"]),
        ]
    routes.append(Route("/{path:path}", aws, methods=methods))
    return Starlette(routes=routes)
