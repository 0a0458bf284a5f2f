"""Dev mode's view of received mail: ``GET /_sesame/inbound`` lists what the MX took, raw and parsed,
with its verdicts and what its receipts did; ``DELETE`` forgets it all. ``?id=`` picks one message."""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sesame.storage.models import InboundMessage, Receipt

if TYPE_CHECKING:
    from sesame.runtime import Sesame


def parsed(raw: bytes) -> dict[str, Any]:
    """The parts a developer looks at: header fields, the text and HTML bodies, attachments' names."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    out: dict[str, Any] = {
        "headers": [{"name": k, "value": str(v)} for k, v in msg.items()],
        "subject": str(msg.get("Subject", "")),
        "from": str(msg.get("From", "")),
        "to": str(msg.get("To", "")),
        "text": None,
        "html": None,
        "attachments": [],
    }
    try:
        for kind in ("plain", "html"):
            part = msg.get_body(preferencelist=(kind,))
            if part is not None:
                out["text" if kind == "plain" else "html"] = part.get_content()
        for attachment in msg.iter_attachments():
            out["attachments"].append(
                {"filename": attachment.get_filename(), "contentType": attachment.get_content_type()}
            )
    except (LookupError, ValueError, AssertionError):  # a broken MIME structure: the raw view remains
        pass
    return out


def view(row: InboundMessage, receipts: list[Receipt]) -> dict[str, Any]:
    return {
        "messageId": row.id,
        "timestamp": row.received_at.isoformat().replace("+00:00", "Z"),
        "source": row.mail_from,
        "destination": row.recipients,
        "clientIp": row.peer,
        "helo": row.helo,
        "tls": row.tls,
        "state": row.state,
        "verdicts": row.verdicts,
        "receipts": [
            {
                "accountId": r.account_id,
                "region": r.region,
                "ruleSet": r.rule_set,
                "state": r.state,
                "attempts": r.attempts,
                "lastError": r.last_error,
                "actions": r.log,
            }
            for r in receipts
        ],
        "raw": (row.added_headers + row.body).decode("utf-8", "replace"),
        "rawBase64": base64.b64encode(row.added_headers + row.body).decode(),
        **parsed(row.added_headers + row.body),
    }


def routes(sesame: Sesame) -> list[Route]:
    async def inbound(request: Request) -> Response:
        if request.method == "DELETE":
            await sesame.inbox.clear()
            return Response(status_code=204)
        wanted = request.query_params.get("id")
        if wanted:
            one = await sesame.inbox.message(wanted)
            rows = [one] if one is not None else []
        else:
            rows = list(await sesame.inbox.recent(int(request.query_params.get("limit") or 100)))
        return JSONResponse({"messages": [view(r, list(await sesame.inbox.receipts(r.id))) for r in rows]})

    return [Route("/_sesame/inbound", inbound, methods=["GET", "DELETE"])]
