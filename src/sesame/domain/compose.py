"""Turning the three kinds of send content (Simple, Raw, Template) into one ``Outgoing`` message.

The v1 and v2 providers translate their parameters into these calls; everything SES does to the
content (MIME building, the X-SES-* control headers, Message-ID and Date rewriting, template
rendering, size limits, tag rules) happens here, once for both APIs.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sesame.domain.addresses import bare_address, mailboxes
from sesame.domain.contact_lists import InvalidContactList, ListManagement
from sesame.domain.sending import Outgoing, SendError, new_message_id, recipients_of
from sesame.domain.templates import INLINE_CHARS, Rendered, in_render_thread
from sesame.mail import mime
from sesame.storage.models import utcnow

V1_MAX_BYTES = 10 * 1024 * 1024  # after base64 [SES quotas]
V2_MAX_BYTES = 40 * 1024 * 1024
LIST_MANAGEMENT_HEADER = "x-ses-list-management-options"
_TAG_NAME = re.compile(r"[A-Za-z0-9_-]+")
_TAG_VALUE = re.compile(r"[A-Za-z0-9_.@-]+")


@dataclass
class Envelope:
    """Who a message is from and to, as the request says."""

    source: str  # the From as given (may carry a display name)
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    return_path: str | None = None
    from_arn: str | None = None
    return_path_arn: str | None = None
    configuration_set: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    list_management: ListManagement | None = None
    tenant: str | None = None  # v2 TenantName


def check_tags(tags: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Message tags with SES's rules and its error texts."""
    out: dict[str, str] = {}
    for name, value in tags:
        if not name:
            raise SendError("invalid", "The tag name must be specified.")
        if not value:
            raise SendError("invalid", "The tag value must be specified.")
        if len(name) > 255:
            raise SendError("invalid", "Tag name cannot exceed 255 characters.")
        if len(value) > 255:
            raise SendError("invalid", "Tag value cannot exceed 255 characters.")
        if not _TAG_NAME.fullmatch(name):
            raise SendError(
                "invalid",
                f"Invalid tag name <{name}>: only alphanumeric ASCII characters, '_',  '-' are allowed.",
            )
        if not _TAG_VALUE.fullmatch(value):
            raise SendError(
                "invalid",
                f"Invalid tag value <{value}>: only alphanumeric ASCII characters,"
                " '_',  '-' , '.', '@' are allowed.",
            )
        out[name] = value
    return out


def _too_large(size: int, limit: int) -> None:
    if (size + 2) // 3 * 4 > limit:  # SES counts the message after base64
        raise SendError("rejected", f"Message length is more than {limit} bytes long: '{size}'.")


def _mime_error(exc: mime.MessageError) -> SendError:
    if isinstance(exc, mime.MessageTooLarge | mime.UnsupportedAttachment):
        return SendError("rejected", str(exc))
    return SendError("invalid", str(exc))


def simple(
    operation: str,
    region: str,
    env: Envelope,
    *,
    subject: str,
    subject_charset: str | None = None,
    text: str | None = None,
    text_charset: str | None = None,
    html: str | None = None,
    html_charset: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    attachments: Sequence[mime.Attachment] = (),
    limit: int,
    summary: dict[str, Any] | None = None,
    rendering_failure: str | None = None,
) -> Outgoing:
    from_address = bare_address(env.source)
    recipients = recipients_of([*env.to, *env.cc, *env.bcc])
    # The header names a contact list where the API has no parameter for it (SendBulkEmail): it is
    # Sesame's instruction, not part of the message.
    listed = [v for n, v in headers if n.lower() == LIST_MANAGEMENT_HEADER]
    headers = [(n, v) for n, v in headers if n.lower() != LIST_MANAGEMENT_HEADER]
    list_management = env.list_management or (_list_options(listed[0]) if listed else None)
    for address in env.reply_to:  # only a header field, but SES refuses a malformed one all the same
        bare_address(address)
    message_id = new_message_id()
    for att in attachments:
        try:
            mime.check_attachment_filename(att.file_name)
        except mime.MessageError as exc:
            raise _mime_error(exc) from None
    try:
        body = mime.build_simple(
            source=env.source,
            to=env.to,
            cc=env.cc,
            reply_to=env.reply_to,
            subject=subject,
            subject_charset=subject_charset,
            text=text,
            text_charset=text_charset,
            html=html,
            html_charset=html_charset,
            headers=headers,
            attachments=attachments,
            message_id=message_id,
            date=utcnow(),
            message_id_domain=mime.ses_message_id_domain(region),
        )
    except mime.MessageError as exc:
        raise _mime_error(exc) from None
    _too_large(len(body), limit)
    return Outgoing(
        operation=operation,
        from_address=from_address,
        from_as_given=env.source,
        envelope_from=bare_address(env.return_path) if env.return_path else from_address,
        recipients=recipients,
        body=body,
        subject=subject,
        configuration_set=env.configuration_set,
        tenant=env.tenant,
        tags=env.tags,
        summary=summary or {},
        from_arn=env.from_arn,
        return_path_arn=env.return_path_arn,
        rendering_failure=rendering_failure,
        message_id=message_id,
        list_management=list_management,
    )


def raw(
    operation: str,
    region: str,
    data: bytes,
    *,
    source: str | None,
    destinations: list[str] | None,
    return_path: str | None = None,
    from_arn: str | None,
    source_arn: str | None,
    return_path_arn: str | None,
    configuration_set: str | None,
    tags: dict[str, str],
    limit: int,
    list_management: ListManagement | None = None,
    tenant: str | None = None,
) -> Outgoing:
    """SendRawEmail / v2 Raw content: the message as given but for the X-SES-* fields, Bcc, Message-ID
    and Date. API parameters win over the X-SES-* headers (``tenant``, v2 TenantName, over
    X-SES-TENANT); API tags replace header tags. ``return_path`` (v2 FeedbackForwardingEmailAddress)
    wins over ``source`` for the envelope sender."""
    _too_large(len(data), limit)
    try:
        body, info = mime.process_raw(data, max_bytes=len(data))
    except mime.MessageError as exc:
        raise _mime_error(exc) from None
    if not body.strip():
        raise SendError("invalid", "Empty message.")
    # Whoever the message says it is from must be covered: every From mailbox and the Sender.
    header_from = mailboxes(info.from_field) if info.from_field is not None else []
    sender = [bare_address(info.sender_field)] if info.sender_field is not None else []
    from_address = header_from[0] if header_from else bare_address(source or "")
    envelope = return_path or source or info.return_path or from_address
    recipients = recipients_of(destinations if destinations else [*info.to, *info.cc, *info.bcc])
    message_id = new_message_id()
    # SES drops Bcc and writes its own Message-ID and Date (one edit of the header section, not three).
    body = mime.remove_headers(body, ["bcc", "message-id", "date"])
    message_id_field = f"<{message_id}@{mime.ses_message_id_domain(region)}>"
    body = mime.add_headers(body, [("Date", mime.date_field(utcnow())), ("Message-ID", message_id_field)])
    return Outgoing(
        operation=operation,
        from_address=from_address,
        envelope_from=bare_address(envelope),
        recipients=recipients,
        body=body,
        other_senders=[*header_from[1:], *sender],
        subject=info.subject,
        configuration_set=configuration_set or info.configuration_set,
        tenant=tenant or info.tenant,
        tags=tags or check_tags(info.message_tags),
        # The dev capture (GET /_aws/ses) lists the recipients the request named, else the headers'.
        summary={
            "RawData": data.decode("utf-8", "replace"),
            "Destinations": list(destinations or recipients),
        },
        from_arn=from_arn or source_arn or info.from_arn or info.source_arn,
        return_path_arn=return_path_arn or info.return_path_arn,
        message_id=message_id,
        list_management=list_management or _list_header(info),
    )


def _list_header(info: mime.RawInfo) -> ListManagement | None:
    value = info.list_management
    return None if value is None else _list_options(value)


def _list_options(value: str) -> ListManagement:
    try:
        return ListManagement.of_header(value)
    except InvalidContactList as exc:
        raise SendError("invalid", exc.message) from None


def decode_raw_base64(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else base64.b64decode(data)


async def templated(
    operation: str,
    region: str,
    env: Envelope,
    *,
    rendered: Rendered,
    template_name: str | None,
    template_data: str,
    headers: Sequence[tuple[str, str]] = (),
    attachments: Sequence[mime.Attachment] = (),
    limit: int,
) -> Outgoing:
    """A templated message for one destination (rendered by ``Templates.render_for_send``). A rendering
    failure does not fail the call: the message is accepted and recorded as a rendering failure, never
    sent (SES's behaviour)."""
    summary = {"Template": template_name, "TemplateData": template_data}
    build = functools.partial(
        simple,
        operation,
        region,
        env,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        headers=headers,
        attachments=attachments,
        limit=limit,
        summary=summary,
        rendering_failure=rendered.failure,
    )
    # A small template can render into megabytes, and encoding them would stall the event loop.
    out = build() if rendered.chars() <= INLINE_CHARS else await in_render_thread(build)
    out.template = template_name
    return out
