"""The open and click tracking endpoints (reference §6.7), served at the paths SES's tracking host uses:
``/I0/…`` answers the pixel, ``/L0/…`` redirects to the link. They answer on any host name, so a
configuration set's CustomRedirectDomain works once it is pointed (CNAME, or a proxy for HTTPS) at
this listener.

A URL whose signature does not hold gets 404 and records nothing: a click is only ever redirected to
the link that was sent (domain/tracking.py). HEAD requests (link checkers) are answered like GET and
record nothing.
"""

from __future__ import annotations

import base64
import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sesame.domain.tracking import CLICK_PATH, OPEN_PATH, Hit
from sesame.runtime import Sesame
from sesame.storage.models import utcnow

log = logging.getLogger(__name__)

#: A 1×1 transparent GIF (GIF89a, one transparent colour).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: Every fetch must reach us: a cached pixel or redirect is an open or click never seen.
NO_CACHE = {
    "Cache-Control": "no-cache, no-store, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}


def _segments(request: Request, prefix: str) -> list[str]:
    """The raw (still percent-encoded) path segments after ``/prefix/``: the link in a click URL is
    percent-encoded whole, and a decoded path would split it at its slashes."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    return path[len(prefix) + 2 :].split("/")


def _not_found() -> Response:
    return Response("Not Found", status_code=404, media_type="text/plain", headers=NO_CACHE)


def routes(sesame: Sesame) -> list[Route]:
    tracking = sesame.tracking

    async def record(request: Request, hit: Hit) -> None:
        if request.method != "GET":
            return
        try:
            await tracking.record(hit)
        except Exception:  # the reader still gets the image or the page; the record is what is lost
            log.exception("recording the %s of %s failed", hit.kind, hit.message_id)

    def hit(request: Request, kind: str, message_id: str, link: str | None = None, tags: str = "") -> Hit:
        return Hit(
            kind=kind,
            message_id=message_id,
            ip_address=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", ""),
            at=utcnow(),
            link=link,
            tags=tags,
        )

    async def pixel(request: Request) -> Response:
        segments = _segments(request, OPEN_PATH)
        if len(segments) != 2 or not tracking.opened(*segments):
            return _not_found()
        await record(request, hit(request, "Open", segments[0]))
        return Response(PIXEL_GIF, media_type="image/gif", headers=NO_CACHE)

    async def click(request: Request) -> Response:
        found = tracking.clicked(_segments(request, CLICK_PATH))
        if found is None:
            return _not_found()
        message_id, link, tags = found
        await record(request, hit(request, "Click", message_id, link, tags))
        return RedirectResponse(link, status_code=302, headers=NO_CACHE)

    return [
        Route(f"/{OPEN_PATH}/{{rest:path}}", pixel, methods=["GET"]),
        Route(f"/{CLICK_PATH}/{{rest:path}}", click, methods=["GET"]),
    ]
