"""Receiving notifications in SES's own JSON (reference §10.4): the ``Received`` notification that SNS
actions (with the message) and other actions' topics (without it) publish, and the Lambda event.

Field names and order follow SES's documentation (receiving-email-notifications-contents,
-notifications-examples, -action-lambda-event) and a 2024 recording of a real notification: the
top level is ``notificationType, mail, receipt[, content]``, and a Lambda event's ``ses`` holds
``mail`` then ``receipt``. The ``mail`` object's header parsing is the sending records' own
(events/records.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from email.utils import getaddresses
from typing import Any, Literal

from sesame.events.details import iso
from sesame.events.records import RECEIVING_ORDER, common_headers, header_objects
from sesame.mail import mime

Encoding = Literal["UTF-8", "Base64"]

#: SNS Subject of a receiving notification (receiving-email-action-lambda-event).
SNS_SUBJECT = "Amazon SES Email Receipt Notification"
#: The SNS action publishes messages of at most 150 KB, header included; larger ones bounce (SNSAction
#: in the SES API reference). Base64 of that stays under SNS's 256 KB message limit.
SNS_CONTENT_LIMIT = 150 * 1024
#: The receipt's verdicts in the order SES writes them.
VERDICT_ORDER = ("spamVerdict", "virusVerdict", "spfVerdict", "dkimVerdict", "dmarcVerdict", "dmarcPolicy")
#: ReceiptAction members (the API's spelling) → the notification's ``action.type``.
ACTION_TYPES = {
    "S3Action": "S3",
    "SNSAction": "SNS",
    "LambdaAction": "Lambda",
    "BounceAction": "Bounce",
    "StopAction": "Stop",
    "WorkmailAction": "WorkMail",
}
#: The SNS action's Encoding as the notification spells it: "BASE64" in SES's example; "UTF8" by the
#: same rule (UNCONFIRMED: no example with UTF-8 shows the field).
_ENCODINGS = {"UTF-8": "UTF8", "Base64": "BASE64"}


class NotificationTooLarge(ValueError):
    """The message is over the SNS action's 150 KB: SES bounces it instead of publishing."""


def s3_object_key(prefix: str | None, message_id: str) -> str:
    """Where an S3 action stores a message: the prefix, then the SES message id. A prefix not ending in
    ``/`` is a folder all the same: SES's notification for prefix ``email/inbox`` names the key
    ``email/inbox/<messageId>`` (a 2024 recording)."""
    if not prefix:
        return message_id
    return prefix + message_id if prefix.endswith("/") else f"{prefix}/{message_id}"


def mail_object(*, timestamp: dt.datetime, source: str, message_id: str, raw: bytes) -> dict[str, Any]:
    """The ``mail`` object of a received message: ``source`` is the envelope MAIL FROM, ``message_id``
    SES's id for the message, ``raw`` the message as received (with the headers SES added)."""
    fields = mime.header_list(raw)
    shown, truncated = header_objects(fields)
    destination_fields = [value for name, value in fields if name.lower() in ("to", "cc")]
    original_id = next((value for name, value in fields if name.lower() == "message-id"), None)
    return {
        "timestamp": iso(timestamp),
        "source": source,
        "messageId": message_id,
        # Every To and CC address of the message's header, which may differ from the envelope's.
        "destination": [address for _, address in getaddresses(destination_fields) if address],
        "headersTruncated": truncated,
        "headers": shown,
        "commonHeaders": common_headers(fields, original_id, order=RECEIVING_ORDER, quote_names=True),
    }


def receipt_object(
    *,
    timestamp: dt.datetime,
    processing_ms: int,
    recipients: list[str],
    verdicts: dict[str, Any],
    action: dict[str, Any],
) -> dict[str, Any]:
    """The ``receipt`` object: ``recipients`` are the envelope recipients the rule matched,
    ``verdicts`` as ``Verdicts.receipt()`` gives them (``{"spamVerdict": {"status": "PASS"}, …}``, a
    verdict left out when it was not computed), ``action`` from ``action_object``."""
    out: dict[str, Any] = {
        "timestamp": iso(timestamp),
        "processingTimeMillis": int(processing_ms),
        "recipients": list(recipients),
    }
    for key in VERDICT_ORDER:
        if verdicts.get(key) is not None:
            out[key] = verdicts[key]
    out["action"] = action
    return out


def action_object(action_type: str, params: dict[str, Any], *, message_id: str = "") -> dict[str, Any]:
    """The receipt's ``action`` object for one action of a rule: ``action_type`` is the ReceiptAction
    member (``S3Action``, ``SNSAction``, …; the notification's own ``S3``, ``SNS``, … work too),
    ``params`` that member's value in the API's spelling (``{"BucketName": …, "TopicArn": …}``).
    An S3 action's ``objectKey`` is made from its prefix and ``message_id``."""
    kind = ACTION_TYPES.get(action_type, action_type)
    if kind not in ACTION_TYPES.values():
        raise ValueError(f"{action_type} actions publish no notification")
    out: dict[str, Any] = {"type": kind}
    if kind == "SNS":
        out["topicArn"] = params["TopicArn"]
        out["encoding"] = _ENCODINGS.get(params.get("Encoding") or "UTF-8", "UTF8")
        return out
    if params.get("TopicArn"):
        out["topicArn"] = params["TopicArn"]
    if kind == "S3":
        out["bucketName"] = params["BucketName"]
        if params.get("ObjectKeyPrefix"):
            out["objectKeyPrefix"] = params["ObjectKeyPrefix"]
        out["objectKey"] = s3_object_key(params.get("ObjectKeyPrefix"), message_id)
    elif kind == "Lambda":
        out["functionArn"] = params["FunctionArn"]
        out["invocationType"] = params.get("InvocationType") or "Event"
    elif kind == "Bounce":
        out["smtpReplyCode"] = params["SmtpReplyCode"]
        if params.get("StatusCode"):
            out["statusCode"] = params["StatusCode"]
        out["message"] = params["Message"]
        out["sender"] = params["Sender"]
    elif kind == "WorkMail":
        out["organizationArn"] = params["OrganizationArn"]
    return out


def received_notification(
    receipt: dict[str, Any], mail: dict[str, Any], content: bytes | None = None, encoding: Encoding = "UTF-8"
) -> str:
    """The ``Received`` notification's JSON. ``content`` (the raw message) is for the SNS action only,
    as UTF-8 text or Base64 per the action's Encoding; over 150 KB it raises NotificationTooLarge
    (SES bounces such mail)."""
    record: dict[str, Any] = {"notificationType": "Received", "mail": mail, "receipt": receipt}
    if content is not None:
        if len(content) > SNS_CONTENT_LIMIT:
            raise NotificationTooLarge(
                f"the message is {len(content)} bytes; the SNS action publishes at most "
                f"{SNS_CONTENT_LIMIT} (use an S3 action for larger mail)"
            )
        if encoding == "Base64":
            record["content"] = base64.b64encode(content).decode("ascii")
        else:
            # UTF-8 may not keep every byte of a message in another charset (SES says as much);
            # Base64 does.
            record["content"] = content.decode("utf-8", "replace")
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def lambda_event(receipt: dict[str, Any], mail: dict[str, Any]) -> dict[str, Any]:
    """The event a Lambda action invokes its function with: the message's body is never in it."""
    return {
        "Records": [
            {"eventSource": "aws:ses", "eventVersion": "1.0", "ses": {"mail": mail, "receipt": receipt}}
        ]
    }
