"""Custom verification email templates and SendCustomVerificationEmail, v1 and v2 (provider mixins)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import InvalidParameterValue, ServiceError, Throttling, service_errors
from sesame.domain.verification import TemplateFields, Verification, VerificationError
from sesame.providers.v2_identities import decode_token, encode_token

V1 = service_errors("ses")
V2 = service_errors("sesv2")

_V1_ERRORS: dict[str, type[ServiceError]] = {
    "not-found": V1.CustomVerificationEmailTemplateDoesNotExistException,
    "exists": V1.CustomVerificationEmailTemplateAlreadyExistsException,
    "invalid": V1.CustomVerificationEmailInvalidContentException,
    "limit": V1.LimitExceededException,
    "from-not-verified": V1.FromEmailAddressNotVerifiedException,
    "sandbox": V1.ProductionAccessNotGrantedException,
    "throttled": Throttling,  # as SES answers sends over the rate or the quota
    "daily": Throttling,
}
_V2_ERRORS: dict[str, type[ServiceError]] = {
    "not-found": V2.NotFoundException,
    "exists": V2.AlreadyExistsException,
    "invalid": V2.BadRequestException,
    "limit": V2.LimitExceededException,
    "from-not-verified": V2.MessageRejected,
    "sandbox": V2.MessageRejected,
    "throttled": V2.TooManyRequestsException,
    "daily": V2.LimitExceededException,  # as v2 SendEmail answers a full 24-hour quota
}


@contextmanager
def _errors(table: dict[str, type[ServiceError]]) -> Iterator[None]:
    try:
        yield
    except VerificationError as exc:
        raise table[exc.kind](exc.message) from None


def _fields(params: dict[str, Any]) -> TemplateFields:
    return TemplateFields(
        from_email_address=params.get("FromEmailAddress"),
        subject=params.get("TemplateSubject"),
        content=params.get("TemplateContent"),
        success_url=params.get("SuccessRedirectionURL"),
        failure_url=params.get("FailureRedirectionURL"),
    )


def _view(row: Any, content: bool) -> dict[str, Any]:
    out = {
        "TemplateName": row.name,
        "FromEmailAddress": row.from_email_address,
        "TemplateSubject": row.subject,
        "SuccessRedirectionURL": row.success_url,
        "FailureRedirectionURL": row.failure_url,
    }
    if content:
        out["TemplateContent"] = row.content
    return out


class _Common:
    verification: Verification
    _table: dict[str, type[ServiceError]]

    async def create_custom_verification_email_template(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with _errors(self._table):
            await self.verification.create(
                ctx.account_id, ctx.region, params["TemplateName"], _fields(params)
            )
        return {}

    async def update_custom_verification_email_template(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with _errors(self._table):
            await self.verification.update(
                ctx.account_id, ctx.region, params["TemplateName"], _fields(params)
            )
        return {}

    async def get_custom_verification_email_template(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with _errors(self._table):
            row = await self.verification.get(ctx.account_id, ctx.region, params["TemplateName"])
        return _view(row, content=True)

    async def delete_custom_verification_email_template(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.verification.delete(ctx.account_id, ctx.region, params["TemplateName"])
        return {}

    async def send_custom_verification_email(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with _errors(self._table):
            message_id = await self.verification.send_custom(
                ctx.account_id, ctx.region, params["EmailAddress"], params["TemplateName"]
            )
        return {"MessageId": message_id} if message_id else {}


class VerificationV1(_Common):
    _table = _V1_ERRORS

    async def list_custom_verification_email_templates(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        limit = params.get("MaxResults") or 50
        try:
            after = decode_token(params.get("NextToken"))
        except ServiceError:
            raise InvalidParameterValue("The NextToken is not valid.") from None
        rows, last = await self.verification.page(ctx.account_id, ctx.region, after, limit)
        out: dict[str, Any] = {"CustomVerificationEmailTemplates": [_view(r, content=False) for r in rows]}
        if last:
            out["NextToken"] = encode_token(last)
        return out


class VerificationV2(_Common):
    _table = _V2_ERRORS

    async def list_custom_verification_email_templates(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        limit = params.get("PageSize") or 50
        rows, last = await self.verification.page(
            ctx.account_id, ctx.region, decode_token(params.get("NextToken")), limit
        )
        out: dict[str, Any] = {"CustomVerificationEmailTemplates": [_view(r, content=False) for r in rows]}
        if last:
            out["NextToken"] = encode_token(last)
        return out
