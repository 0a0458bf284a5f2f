"""SES v2 sending, template and suppression-list operations (mixed into SesV2Provider)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import ServiceError, service_errors
from sesame.domain import compose
from sesame.domain.addresses import IllegalAddress
from sesame.domain.compose import Envelope
from sesame.domain.contact_lists import ListManagement
from sesame.domain.sending import MAX_RECIPIENTS, Outgoing, SendError, Sending
from sesame.domain.suppression import Suppression
from sesame.domain.templates import MAX_INLINE_TEMPLATE_BYTES, Content, Templates, TemplateStoreError
from sesame.domain.tenants import Tenants
from sesame.mail import handlebars as hb
from sesame.mail import mime
from sesame.providers.v1_sending import render_preview
from sesame.providers.v2_identities import decode_token, encode_token

E = service_errors("sesv2")

_SEND_ERRORS: dict[str, tuple[type[ServiceError], str]] = {
    "paused": (E.SendingPausedException, "ACCOUNT_SENDING_PAUSED"),
    "rejected": (E.MessageRejected, "MESSAGE_REJECTED"),
    "denied": (E.MessageRejected, "MESSAGE_REJECTED"),
    "invalid": (E.BadRequestException, "INVALID_PARAMETER"),
    "rate": (E.TooManyRequestsException, "ACCOUNT_THROTTLED"),
    "daily": (E.LimitExceededException, "ACCOUNT_DAILY_QUOTA_EXCEEDED"),
    "mail-from": (E.MailFromDomainNotVerifiedException, "MAIL_FROM_DOMAIN_NOT_VERIFIED"),
    "config-missing": (E.NotFoundException, "CONFIGURATION_SET_NOT_FOUND"),
    "config-paused": (E.SendingPausedException, "CONFIGURATION_SET_SENDING_PAUSED"),
    "list-missing": (E.NotFoundException, "INVALID_PARAMETER"),
    # SES documents no bulk status of its own for a tenant's refusals.
    "tenant-missing": (E.NotFoundException, "INVALID_PARAMETER"),
    "tenant-rejected": (E.MessageRejected, "MESSAGE_REJECTED"),
    "tenant-paused": (E.SendingPausedException, "FAILED"),
}
_TEMPLATE_ERRORS: dict[str, type[ServiceError]] = {
    "not-found": E.NotFoundException,
    "exists": E.AlreadyExistsException,
    "invalid": E.BadRequestException,
    "invalid-template": E.BadRequestException,
    "limit": E.LimitExceededException,
}


@contextmanager
def v2_send_errors() -> Iterator[None]:
    try:
        yield
    except (SendError, IllegalAddress) as exc:
        raise _SEND_ERRORS[exc.kind][0](exc.message) from None


@contextmanager
def v2_template_errors() -> Iterator[None]:
    try:
        yield
    except TemplateStoreError as exc:
        raise _TEMPLATE_ERRORS[exc.kind](exc.message) from None


def _tags(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return compose.check_tags([(t.get("Name", ""), t.get("Value", "")) for t in tags or []])


def _attachments(items: list[dict[str, Any]] | None) -> list[mime.Attachment]:
    return [
        mime.Attachment(
            raw_content=a["RawContent"],
            file_name=a["FileName"],
            content_type=a.get("ContentType"),
            content_disposition=a.get("ContentDisposition") or "ATTACHMENT",
            content_description=a.get("ContentDescription"),
            content_id=a.get("ContentId"),
            content_transfer_encoding=a.get("ContentTransferEncoding") or "SEVEN_BIT",
        )
        for a in items or []
    ]


def _headers(items: list[dict[str, str]] | None) -> list[tuple[str, str]]:
    return [(h["Name"], h["Value"]) for h in items or []]


def _envelope(params: dict[str, Any], destination: dict[str, Any], tags: dict[str, str]) -> Envelope:
    if not params.get("FromEmailAddress"):
        raise SendError("invalid", "Missing required parameter FromEmailAddress.")
    return Envelope(
        source=params["FromEmailAddress"],
        to=list(destination.get("ToAddresses") or []),
        cc=list(destination.get("CcAddresses") or []),
        bcc=list(destination.get("BccAddresses") or []),
        reply_to=list(params.get("ReplyToAddresses") or []),
        return_path=params.get("FeedbackForwardingEmailAddress"),
        from_arn=params.get("FromEmailAddressIdentityArn"),
        return_path_arn=params.get("FeedbackForwardingEmailAddressIdentityArn"),
        configuration_set=params.get("ConfigurationSetName"),
        tags=tags,
        list_management=_list_management(params),
        tenant=params.get("TenantName"),
    )


def _list_management(params: dict[str, Any]) -> ListManagement | None:
    options = params.get("ListManagementOptions")
    return ListManagement(options["ContactListName"], options.get("TopicName")) if options else None


class SendingV2:
    sending: Sending
    templates: Templates
    suppression: Suppression
    tenants: Tenants

    async def _template_parts(
        self, ctx: RequestContext, template: dict[str, Any]
    ) -> tuple[str | None, Content]:
        if template.get("TemplateContent"):
            c = template["TemplateContent"]
            content = Content(c.get("Subject"), c.get("Text"), c.get("Html"))
            if content.size() > MAX_INLINE_TEMPLATE_BYTES:
                raise E.BadRequestException("Template is larger than 1 MB.")
            return None, content
        name = template.get("TemplateName") or (template.get("TemplateArn") or "").rpartition("/")[2]
        if not name:
            raise E.BadRequestException("A template needs TemplateName, TemplateArn or TemplateContent.")
        with v2_template_errors():
            row = await self.templates.get(ctx.account_id, ctx.region, name)
        return row.name, Content.of(row)

    async def send_email(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        content = params["Content"]
        kinds = [k for k in ("Simple", "Raw", "Template") if content.get(k)]
        if len(kinds) != 1:
            raise E.BadRequestException("Content must contain exactly one of Simple, Raw or Template.")
        destination = params.get("Destination") or {}
        with v2_send_errors():
            tags = _tags(params.get("EmailTags"))
            if kinds[0] == "Raw":
                out = compose.raw(
                    "SendEmail",
                    ctx.region,
                    content["Raw"]["Data"],
                    source=params.get("FromEmailAddress"),
                    destinations=[
                        *destination.get("ToAddresses", []),
                        *destination.get("CcAddresses", []),
                        *destination.get("BccAddresses", []),
                    ]
                    or None,  # fmt: skip
                    return_path=params.get("FeedbackForwardingEmailAddress"),
                    from_arn=params.get("FromEmailAddressIdentityArn"),
                    source_arn=None,
                    return_path_arn=params.get("FeedbackForwardingEmailAddressIdentityArn"),
                    configuration_set=params.get("ConfigurationSetName"),
                    tags=tags,
                    limit=compose.V2_MAX_BYTES,
                    list_management=_list_management(params),
                    tenant=params.get("TenantName"),
                )
            elif kinds[0] == "Simple":
                simple = content["Simple"]
                body = simple.get("Body") or {}
                out = compose.simple(
                    "SendEmail",
                    ctx.region,
                    _envelope(params, destination, tags),
                    subject=simple["Subject"].get("Data", ""),
                    subject_charset=simple["Subject"].get("Charset"),
                    text=(body.get("Text") or {}).get("Data"),
                    text_charset=(body.get("Text") or {}).get("Charset"),
                    html=(body.get("Html") or {}).get("Data"),
                    html_charset=(body.get("Html") or {}).get("Charset"),
                    headers=_headers(simple.get("Headers")),
                    attachments=_attachments(simple.get("Attachments")),
                    limit=compose.V2_MAX_BYTES,
                    summary={
                        "Destination": destination,
                        "Subject": simple["Subject"].get("Data", ""),
                        "Body": {
                            "text_part": (body.get("Text") or {}).get("Data"),
                            "html_part": (body.get("Html") or {}).get("Data"),
                        },  # fmt: skip
                    },
                )
            else:
                template = content["Template"]
                name, parts = await self._template_parts(ctx, template)
                try:
                    data = hb.parse_template_data(template.get("TemplateData") or "{}")
                except hb.TemplateError as exc:
                    raise E.BadRequestException(str(exc)) from None
                rendered = await self.templates.render_for_send(parts, data, compose.V2_MAX_BYTES)
                out = await compose.templated(
                    "SendEmail",
                    ctx.region,
                    _envelope(params, destination, tags),
                    rendered=rendered,
                    template_name=name,
                    template_data=template.get("TemplateData") or "{}",
                    headers=_headers(template.get("Headers")),
                    attachments=_attachments(template.get("Attachments")),
                    limit=compose.V2_MAX_BYTES,
                )
                out.summary["Destination"] = destination
            return {
                "MessageId": await self.sending.send(ctx.account_id, ctx.region, out, source_ip=ctx.source_ip)
            }

    async def send_bulk_email(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        entries = params["BulkEmailEntries"]
        if len(entries) > MAX_RECIPIENTS:
            raise E.BadRequestException(f"Too many entries: at most {MAX_RECIPIENTS} per call.")
        template = (params.get("DefaultContent") or {}).get("Template") or {}
        name, parts = await self._template_parts(ctx, template)
        try:
            default = hb.parse_template_data(template.get("TemplateData") or "{}")
        except hb.TemplateError as exc:
            raise E.BadRequestException(str(exc)) from None
        with v2_send_errors():
            default_tags = _tags(params.get("DefaultEmailTags"))
        results: list[dict[str, str]] = []
        sends: dict[int, Outgoing] = {}  # by position in results
        deadline = self.templates.deadline()  # one time limit for all the call's renderings
        for entry in entries:
            try:
                replacement = (
                    (entry.get("ReplacementEmailContent") or {}).get("ReplacementTemplate") or {}
                ).get("ReplacementTemplateData") or "{}"
                data = {**default, **hb.parse_template_data(replacement)}
                tags = {**default_tags, **_tags(entry.get("ReplacementTags"))}
                headers = _headers(template.get("Headers")) + _headers(entry.get("ReplacementHeaders"))
                destination = entry.get("Destination") or {}
                rendered = await self.templates.render_for_send(parts, data, compose.V2_MAX_BYTES, deadline)
                out = await compose.templated(
                    "SendBulkEmail",
                    ctx.region,
                    _envelope(params, destination, tags),
                    rendered=rendered,
                    template_name=name,
                    template_data=replacement,
                    headers=headers,
                    attachments=_attachments(template.get("Attachments")),
                    limit=compose.V2_MAX_BYTES,
                )
                out.summary["Destination"] = destination
                sends[len(results)] = out
                results.append({})
            except (SendError, IllegalAddress) as exc:
                results.append({"Status": _SEND_ERRORS[exc.kind][1], "Error": exc.message})
            except hb.TemplateError as exc:
                results.append({"Status": "INVALID_PARAMETER", "Error": str(exc)})
        sent = await self.sending.send_many(
            ctx.account_id, ctx.region, list(sends.values()), source_ip=ctx.source_ip
        )
        for i, outcome in zip(sends, sent, strict=True):
            if isinstance(outcome, SendError):
                results[i] = {"Status": _SEND_ERRORS[outcome.kind][1], "Error": outcome.message}
            else:
                results[i] = {"Status": "SUCCESS", "MessageId": outcome}
        return {"BulkEmailEntryResults": results}

    # -- templates --------------------------------------------------------------------------------

    async def create_email_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        c = params["TemplateContent"]
        with v2_template_errors():
            await self.templates.create(
                ctx.account_id,
                ctx.region,
                params["TemplateName"],
                Content(c.get("Subject"), c.get("Text"), c.get("Html")),
            )
        return {}

    async def update_email_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        c = params["TemplateContent"]
        with v2_template_errors():
            await self.templates.update(
                ctx.account_id,
                ctx.region,
                params["TemplateName"],
                Content(c.get("Subject"), c.get("Text"), c.get("Html")),
            )
        return {}

    async def get_email_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with v2_template_errors():
            row = await self.templates.get(ctx.account_id, ctx.region, params["TemplateName"])
        content = {"Subject": row.subject, "Text": row.text, "Html": row.html}
        return {
            "TemplateName": row.name,
            "TemplateContent": {k: v for k, v in content.items() if v is not None},
        }

    async def delete_email_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with v2_template_errors():
            await self.templates.delete(ctx.account_id, ctx.region, params["TemplateName"], missing_ok=False)
        return {}

    async def list_email_templates(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size = params.get("PageSize") or 10
        if not 1 <= size <= 100:
            raise E.BadRequestException("PageSize must be between 1 and 100.")
        rows, last = await self.templates.page(
            ctx.account_id, ctx.region, decode_token(params.get("NextToken")), size
        )
        out: dict[str, Any] = {
            "TemplatesMetadata": [{"TemplateName": r.name, "CreatedTimestamp": r.created_at} for r in rows]
        }
        if last:
            out["NextToken"] = encode_token(last)
        return out

    async def test_render_email_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with v2_template_errors():
            row = await self.templates.get(ctx.account_id, ctx.region, params["TemplateName"])
        try:
            data = hb.parse_template_data(params["TemplateData"])
            preview = await self.templates.run(
                lambda budget: render_preview(row, data, ctx.region, budget),
                Content.of(row),
                compose.V2_MAX_BYTES,
            )
        except hb.TemplateError as exc:
            raise E.BadRequestException(str(exc)) from None
        return {"RenderedTemplate": preview}

    # -- the suppression lists: the account's, or a tenant's own (TenantName) --------------------------

    async def _list_tenant(self, ctx: RequestContext, params: dict[str, Any]) -> str | None:
        """The tenant whose own list the call is about (it must exist), or None for the account's."""
        name: str | None = params.get("TenantName")
        if name:
            await self.tenants.get(ctx.account_id, ctx.region, name)  # TenantNotFound → NotFoundException
        return name or None

    async def put_suppressed_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tenant = await self._list_tenant(ctx, params)
        await self.suppression.put(
            ctx.account_id, ctx.region, params["EmailAddress"], params["Reason"], tenant=tenant
        )
        return {}

    async def get_suppressed_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tenant = await self._list_tenant(ctx, params)
        row = await self.suppression.get(ctx.account_id, ctx.region, params["EmailAddress"], tenant)
        if row is None:
            raise E.NotFoundException(
                f"Email address {params['EmailAddress']} does not exist on your suppression list."
            )
        attributes = {k: v for k, v in (("MessageId", row.message_id), ("FeedbackId", row.feedback_id)) if v}
        out: dict[str, Any] = {
            "EmailAddress": row.email_address,
            "Reason": row.reason,
            "LastUpdateTime": row.last_update_time,
        }
        if attributes:
            out["Attributes"] = attributes
        if tenant:
            out["TenantName"] = tenant
        return {"SuppressedDestination": out}

    async def delete_suppressed_destination(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        tenant = await self._list_tenant(ctx, params)
        if not await self.suppression.delete(ctx.account_id, ctx.region, params["EmailAddress"], tenant):
            raise E.NotFoundException(
                f"Email address {params['EmailAddress']} does not exist on your suppression list."
            )
        return {}

    async def list_suppressed_destinations(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        size = params.get("PageSize") or 1000
        if not 1 <= size <= 1000:
            raise E.BadRequestException("PageSize must be between 1 and 1000.")
        try:
            after = decode_token(params.get("NextToken"))
        except ServiceError:
            raise E.InvalidNextTokenException("The NextToken is not valid.") from None
        tenant = await self._list_tenant(ctx, params)
        rows, last = await self.suppression.page(
            ctx.account_id,
            ctx.region,
            reasons=params.get("Reasons"),
            start=params.get("StartDate"),
            end=params.get("EndDate"),
            after=after,
            limit=size,
            tenant=tenant,
        )
        out: dict[str, Any] = {
            "SuppressedDestinationSummaries": [
                {"EmailAddress": r.email_address, "Reason": r.reason, "LastUpdateTime": r.last_update_time}
                for r in rows
            ]
        }
        if last:
            out["NextToken"] = encode_token(last)
        return out
