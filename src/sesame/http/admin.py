"""The admin API behind ``sesame queue`` and ``sesame events``: the running server's own view of its
queue and its event publishing, and operator actions on them. Bearer-token authenticated
(``domain.secrets.admin_token``) in both modes."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sesame.domain.secrets import admin_token
from sesame.events import inspect
from sesame.mta import bounce
from sesame.mta import queue as q
from sesame.mta.engine import helo_name
from sesame.runtime import Sesame

PREFIX = "/_sesame/admin"


def routes(sesame: Sesame) -> list[Route]:
    token = admin_token(sesame.settings.data_dir)

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def guard(handler: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            if not authorized(request):
                return JSONResponse({"message": "Missing or wrong admin token."}, status_code=401)
            return await handler(request)

        return wrapped

    async def summary(request: Request) -> Response:
        return JSONResponse({"Queue": await q.summary(sesame.db)})

    async def show(request: Request) -> Response:
        found = await q.show(sesame.db, request.path_params["message_id"])
        if found is None:
            return JSONResponse({"message": "No such message."}, status_code=404)
        return JSONResponse(found)

    async def retry(request: Request) -> Response:
        n = await q.retry_now(sesame.db, request.path_params["message_id"])
        if sesame.engine is not None:
            sesame.engine.wake()
        return JSONResponse({"Retried": n})

    async def bounce_message(request: Request) -> Response:
        verdict = bounce.local("operator", "bounced by the operator")
        helo = helo_name(sesame.settings.delivery)
        bounced = await q.bounce_now(sesame.db, request.path_params["message_id"], verdict, helo)
        return JSONResponse({"Bounced": bounced})

    async def delete(request: Request) -> Response:
        if not await q.delete(sesame.db, request.path_params["message_id"]):
            return JSONResponse({"message": "No such message."}, status_code=404)
        return JSONResponse({"Deleted": True})

    async def events_summary(request: Request) -> Response:
        return JSONResponse(await inspect.summary(sesame.db))

    async def events_retry(request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        ids = None if body.get("All") else [int(i) for i in body.get("Ids") or []]
        n = await inspect.retry(sesame.db, ids)
        sesame.publisher.wake()
        return JSONResponse({"Retried": n})

    async def events_recent(request: Request) -> Response:
        after = int(request.query_params.get("after") or 0)
        return JSONResponse({"Events": await inspect.recent(sesame.db, after)})

    return [
        Route(f"{PREFIX}/events", guard(events_summary), methods=["GET"]),
        Route(f"{PREFIX}/events/retry", guard(events_retry), methods=["POST"]),
        Route(f"{PREFIX}/events/recent", guard(events_recent), methods=["GET"]),
        Route(f"{PREFIX}/queue", guard(summary), methods=["GET"]),
        Route(f"{PREFIX}/queue/{{message_id}}", guard(show), methods=["GET"]),
        Route(f"{PREFIX}/queue/{{message_id}}", guard(delete), methods=["DELETE"]),
        Route(f"{PREFIX}/queue/{{message_id}}/retry", guard(retry), methods=["POST"]),
        Route(f"{PREFIX}/queue/{{message_id}}/bounce", guard(bounce_message), methods=["POST"]),
    ]
