"""SES v1 sending and template operations (mixed into SesV1Provider)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import InvalidParameterValue, ServiceError, Throttling, service_errors
from sesame.domain import compose
from sesame.domain.addresses import IllegalAddress
from sesame.domain.compose import Envelope
from sesame.domain.sending import MAX_RECIPIENTS, Outgoing, SendError, Sending
from sesame.domain.templates import Content, Templates, TemplateStoreError
from sesame.mail import handlebars as hb
from sesame.mail import mime
from sesame.providers.v2_identities import decode_token, encode_token

E = service_errors("ses")

_SEND_ERRORS: dict[str, tuple[type[ServiceError], str]] = {
    "paused": (E.AccountSendingPausedException, "AccountSendingPaused"),
    "rejected": (E.MessageRejected, "MessageRejected"),
    "denied": (E.MessageRejected, "MessageRejected"),
    "invalid": (InvalidParameterValue, "InvalidParameterValue"),
    "rate": (Throttling, "AccountThrottled"),
    "daily": (Throttling, "AccountDailyQuotaExceeded"),
    "mail-from": (E.MailFromDomainNotVerifiedException, "MailFromDomainNotVerified"),
    "config-missing": (E.ConfigurationSetDoesNotExistException, "ConfigurationSetDoesNotExist"),
    "config-paused": (E.ConfigurationSetSendingPausedException, "ConfigurationSetSendingPaused"),
    "list-missing": (E.MessageRejected, "MessageRejected"),
    # A raw message's X-SES-TENANT: v1 knows no tenants, and refuses such a send as a rejected message.
    "tenant-missing": (E.MessageRejected, "MessageRejected"),
    "tenant-rejected": (E.MessageRejected, "MessageRejected"),
    "tenant-paused": (E.MessageRejected, "MessageRejected"),
}
_TEMPLATE_ERRORS: dict[str, type[ServiceError]] = {
    "not-found": E.TemplateDoesNotExistException,
    "exists": E.AlreadyExistsException,
    "invalid": InvalidParameterValue,
    "invalid-template": E.InvalidTemplateException,
    "limit": E.LimitExceededException,
}


@contextmanager
def v1_send_errors() -> Iterator[None]:
    try:
        yield
    except (SendError, IllegalAddress) as exc:
        raise _SEND_ERRORS[exc.kind][0](exc.message) from None


@contextmanager
def v1_template_errors() -> Iterator[None]:
    try:
        yield
    except TemplateStoreError as exc:
        raise _TEMPLATE_ERRORS[exc.kind](exc.message) from None


def _tags(params: dict[str, Any], key: str = "Tags") -> dict[str, str]:
    return compose.check_tags([(t.get("Name", ""), t.get("Value", "")) for t in params.get(key) or []])


def _envelope(params: dict[str, Any], destination: dict[str, Any], tags: dict[str, str]) -> Envelope:
    return Envelope(
        source=params["Source"],
        to=list(destination.get("ToAddresses") or []),
        cc=list(destination.get("CcAddresses") or []),
        bcc=list(destination.get("BccAddresses") or []),
        reply_to=list(params.get("ReplyToAddresses") or []),
        return_path=params.get("ReturnPath"),
        from_arn=params.get("SourceArn"),
        return_path_arn=params.get("ReturnPathArn"),
        configuration_set=params.get("ConfigurationSetName"),
        tags=tags,
    )


def _template_params(params: dict[str, Any]) -> dict[str, Any]:
    t = params["Template"]
    return {"TemplateName": t["TemplateName"], "Subject": t.get("SubjectPart"), "Text": t.get("TextPart"),
            "Html": t.get("HtmlPart")}  # fmt: skip


class SendingV1:
    sending: Sending
    templates: Templates

    async def send_email(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        message = params["Message"]
        body = message.get("Body") or {}
        destination = params.get("Destination") or {}
        with v1_send_errors():
            env = _envelope(params, destination, _tags(params))
            out = compose.simple(
                "SendEmail",
                ctx.region,
                env,
                subject=message["Subject"].get("Data", ""),
                subject_charset=message["Subject"].get("Charset"),
                text=(body.get("Text") or {}).get("Data"),
                text_charset=(body.get("Text") or {}).get("Charset"),
                html=(body.get("Html") or {}).get("Data"),
                html_charset=(body.get("Html") or {}).get("Charset"),
                limit=compose.V1_MAX_BYTES,
                summary={
                    "Destination": destination,
                    "Subject": message["Subject"].get("Data", ""),
                    "Body": {
                        "text_part": (body.get("Text") or {}).get("Data"),
                        "html_part": (body.get("Html") or {}).get("Data"),
                    },  # fmt: skip
                },
            )
            return {
                "MessageId": await self.sending.send(ctx.account_id, ctx.region, out, source_ip=ctx.source_ip)
            }

    async def send_raw_email(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with v1_send_errors():
            out = compose.raw(
                "SendRawEmail",
                ctx.region,
                params["RawMessage"]["Data"],
                source=params.get("Source"),
                destinations=params.get("Destinations"),
                from_arn=params.get("FromArn"),
                source_arn=params.get("SourceArn"),
                return_path_arn=params.get("ReturnPathArn"),
                configuration_set=params.get("ConfigurationSetName"),
                tags=_tags(params),
                limit=compose.V1_MAX_BYTES,
            )
            out.summary["Source"] = params.get("Source")
            return {
                "MessageId": await self.sending.send(ctx.account_id, ctx.region, out, source_ip=ctx.source_ip)
            }

    async def _template(self, ctx: RequestContext, params: dict[str, Any]) -> Any:
        name = params.get("Template") or (params.get("TemplateArn") or "").rpartition("/")[2]
        with v1_template_errors():
            return await self.templates.get(ctx.account_id, ctx.region, name)

    async def send_templated_email(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tpl = await self._template(ctx, params)
        try:
            data = hb.parse_template_data(params["TemplateData"])
        except hb.TemplateError as exc:
            raise InvalidParameterValue(str(exc)) from None
        rendered = await self.templates.render_for_send(Content.of(tpl), data, compose.V1_MAX_BYTES)
        with v1_send_errors():
            out = await compose.templated(
                "SendTemplatedEmail",
                ctx.region,
                _envelope(params, params.get("Destination") or {}, _tags(params)),
                rendered=rendered,
                template_name=tpl.name,
                template_data=params["TemplateData"],
                limit=compose.V1_MAX_BYTES,
            )
            out.summary["Destination"] = params.get("Destination") or {}
            return {
                "MessageId": await self.sending.send(ctx.account_id, ctx.region, out, source_ip=ctx.source_ip)
            }

    async def send_bulk_templated_email(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        destinations = params["Destinations"]
        if len(destinations) > MAX_RECIPIENTS:
            raise InvalidParameterValue(f"Too many destinations: at most {MAX_RECIPIENTS} per call.")
        tpl = await self._template(ctx, params)
        try:
            default = hb.parse_template_data(params.get("DefaultTemplateData") or "{}")
        except hb.TemplateError as exc:
            raise InvalidParameterValue(str(exc)) from None
        with v1_send_errors():
            default_tags = _tags(params, "DefaultTags")
        statuses: list[dict[str, str]] = []
        sends: dict[int, Outgoing] = {}  # by position in statuses
        deadline = self.templates.deadline()  # one time limit for all the call's renderings
        for dest in destinations:
            try:
                replacement = hb.parse_template_data(dest.get("ReplacementTemplateData") or "{}")
                tags = {**default_tags, **_tags(dest, "ReplacementTags")}
                rendered = await self.templates.render_for_send(
                    Content.of(tpl), {**default, **replacement}, compose.V1_MAX_BYTES, deadline
                )
                out = await compose.templated(
                    "SendBulkTemplatedEmail",
                    ctx.region,
                    _envelope(params, dest.get("Destination") or {}, tags),
                    rendered=rendered,
                    template_name=tpl.name,
                    template_data=dest.get("ReplacementTemplateData")
                    or params.get("DefaultTemplateData")
                    or "{}",
                    limit=compose.V1_MAX_BYTES,
                )
                out.summary["Destination"] = dest.get("Destination") or {}
                sends[len(statuses)] = out
                statuses.append({})
            except (SendError, IllegalAddress) as exc:
                statuses.append({"Status": _SEND_ERRORS[exc.kind][1], "Error": exc.message})
            except (hb.TemplateError, ServiceError) as exc:
                statuses.append({"Status": "InvalidParameterValue", "Error": str(exc)})
        sent = await self.sending.send_many(
            ctx.account_id, ctx.region, list(sends.values()), source_ip=ctx.source_ip
        )
        for i, outcome in zip(sends, sent, strict=True):
            if isinstance(outcome, SendError):
                statuses[i] = {"Status": _SEND_ERRORS[outcome.kind][1], "Error": outcome.message}
            else:
                statuses[i] = {"Status": "Success", "MessageId": outcome}
        return {"Status": statuses}

    # -- templates --------------------------------------------------------------------------------

    async def create_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = _template_params(params)
        with v1_template_errors():
            await self.templates.create(
                ctx.account_id, ctx.region, t["TemplateName"], Content(t["Subject"], t["Text"], t["Html"])
            )
        return {}

    async def update_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = _template_params(params)
        with v1_template_errors():
            await self.templates.update(
                ctx.account_id, ctx.region, t["TemplateName"], Content(t["Subject"], t["Text"], t["Html"])
            )
        return {}

    async def get_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with v1_template_errors():
            row = await self.templates.get(ctx.account_id, ctx.region, params["TemplateName"])
        template = {
            "TemplateName": row.name,
            "SubjectPart": row.subject,
            "TextPart": row.text,
            "HtmlPart": row.html,
        }
        return {"Template": {k: v for k, v in template.items() if v is not None}}

    async def delete_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.templates.delete(ctx.account_id, ctx.region, params["TemplateName"], missing_ok=True)
        return {}

    async def list_templates(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("MaxItems") or 10
        if not 1 <= limit <= 100:
            raise InvalidParameterValue("MaxItems must be between 1 and 100.")
        try:
            after = decode_token(params.get("NextToken"))
        except ServiceError:
            raise InvalidParameterValue("The NextToken is not valid.") from None
        rows, last = await self.templates.page(ctx.account_id, ctx.region, after, limit)
        out: dict[str, Any] = {
            "TemplatesMetadata": [{"Name": r.name, "CreatedTimestamp": r.created_at} for r in rows]
        }
        if last:
            out["NextToken"] = encode_token(last)
        return out

    async def test_render_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with v1_template_errors():
            row = await self.templates.get(ctx.account_id, ctx.region, params["TemplateName"])
        try:
            data = hb.parse_template_data(params["TemplateData"])
        except hb.TemplateError as exc:
            raise E.InvalidRenderingParameterException(str(exc)) from None
        try:
            preview = await self.templates.run(
                lambda budget: render_preview(row, data, ctx.region, budget),
                Content.of(row),
                compose.V1_MAX_BYTES,
            )
        except hb.MissingAttribute as exc:
            raise E.MissingRenderingAttributeException(str(exc)) from None
        except (hb.InvalidTemplate, hb.RenderLimitExceeded) as exc:  # SES: "could not be rendered"
            raise E.InvalidTemplateException(str(exc)) from None
        return {"RenderedTemplate": preview}


def render_preview(row: Any, data: dict[str, Any], region: str, budget: hb.Budget) -> str:
    """TestRenderTemplate's answer: the whole MIME message the template renders into."""
    from sesame.domain.sending import new_message_id
    from sesame.storage.models import utcnow

    subject, html, text = hb.render_parts(row.subject or "", row.html, row.text, data, budget)
    body = mime.build_simple(
        source="",
        to=[],
        subject=subject,
        text=text,
        html=html,
        message_id=new_message_id(),
        date=utcnow(),
        message_id_domain=mime.ses_message_id_domain(region),
    )
    return body.decode("ascii", "replace")
