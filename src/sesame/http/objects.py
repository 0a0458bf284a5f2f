"""``GET /_sesame/objects/{bucket}/{key}?Expires=…&Signature=…``: a file of the local object store
through a URL that jobs/links.py signed (an export file, a failed-records file). Without a valid,
unexpired signature the answer is 403 whether or not the object exists, so the route reveals nothing.
Served in both modes: these URLs are what GetExportJob and GetImportJob give their callers."""

from __future__ import annotations

import mimetypes
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from sesame.integrations.objects import InvalidObjectName
from sesame.jobs.links import PATH

if TYPE_CHECKING:
    from sesame.runtime import Sesame

_TYPES = {".csv": "text/csv; charset=utf-8", ".json": "application/x-ndjson"}


def routes(sesame: Sesame) -> list[Route]:
    async def get(request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        q = request.query_params
        if not sesame.object_links.verify(bucket, key, q.get("Expires", ""), q.get("Signature", "")):
            return JSONResponse(
                {"message": "The URL's signature is not valid or it has expired."}, status_code=403
            )
        try:
            path = sesame.objects.path(bucket, key)
        except InvalidObjectName:
            return JSONResponse({"message": "No such object."}, status_code=404)
        if not path.is_file():
            return JSONResponse({"message": "No such object."}, status_code=404)
        suffix = path.suffix.lower()
        media = _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media, filename=path.name)

    return [Route(f"{PATH}/{{bucket}}/{{key:path}}", get, methods=["GET"])]
