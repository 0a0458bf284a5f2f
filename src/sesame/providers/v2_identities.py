"""SES v2 identity operations: CreateEmailIdentity … identity policies (mixed into SesV2Provider)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import service_errors
from sesame.domain.configuration_sets import ConfigurationSets
from sesame.domain.identities import DOMAIN, SUCCESS, Identities, IdentityError, normalize
from sesame.domain.tags import Tags
from sesame.domain.verification import Verification, VerificationError
from sesame.storage.models import Identity

E = service_errors("sesv2")

_ERRORS = {
    "not-found": E.NotFoundException,
    "exists": E.AlreadyExistsException,
    "invalid": E.BadRequestException,
    "limit": E.LimitExceededException,
    "not-verified": E.BadRequestException,
}


@contextmanager
def v2_errors() -> Iterator[None]:
    try:
        yield
    except IdentityError as exc:
        raise _ERRORS[exc.kind](exc.message) from None


def encode_token(last: str | None) -> str | None:
    return base64.urlsafe_b64encode(last.encode()).decode() if last else None


def decode_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        last = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        last = ""
    if not last:
        raise E.BadRequestException("The NextToken is not valid.")
    return last


def check_policy(policy: str) -> None:
    try:
        doc = json.loads(policy)
    except ValueError:
        raise E.BadRequestException("The policy is not valid JSON.") from None
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if not statements:
        raise E.BadRequestException("The policy must contain at least one statement.")
    if len(policy.encode()) > 4096:
        raise E.BadRequestException("The policy is larger than 4 KB.")


def dkim_attributes(row: Identity, parent: Identity | None = None) -> dict[str, Any]:
    """DkimAttributes; an address without DKIM of its own shows its domain's (SES inherits it)."""
    source = row if row.dkim_tokens or parent is None else parent
    out: dict[str, Any] = {
        "SigningEnabled": row.dkim_signing_enabled and bool(source.dkim_tokens),
        "Status": source.dkim_status,
        "Tokens": list(source.dkim_tokens),
        "SigningAttributesOrigin": source.dkim_origin,
    }
    if source.dkim_origin == "AWS_SES" and source.dkim_key_length:
        out["CurrentSigningKeyLength"] = source.dkim_key_length
        out["NextSigningKeyLength"] = source.dkim_next_key_length or source.dkim_key_length
    if source.dkim_key_generated_at:
        out["LastKeyGenerationTimestamp"] = source.dkim_key_generated_at
    return out


class IdentitiesV2:
    identities: Identities
    tags: Tags
    verification: Verification
    configuration_sets: ConfigurationSets

    async def _check_configuration_set(self, ctx: RequestContext, name: str | None) -> None:
        """An identity's default configuration set must exist (SES: NotFoundException)."""
        if name:  # ConfigurationSetNotFound answers NotFoundException (providers/errors.py)
            await self.configuration_sets.get(ctx.account_id, ctx.region, name)

    async def _parent(self, row: Identity) -> Identity | None:
        if row.kind == DOMAIN:
            return None
        return await self.identities.get(row.account_id, row.region, row.identity.rpartition("@")[2])

    async def create_email_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EmailIdentity"]
        signing = params.get("DkimSigningAttributes") or {}
        origin = signing.get("DomainSigningAttributesOrigin")
        byodkim = None
        if signing.get("DomainSigningPrivateKey") or origin == "EXTERNAL":
            byodkim = signing
            if not signing.get("DomainSigningSelector") or not signing.get("DomainSigningPrivateKey"):
                raise E.BadRequestException(
                    "DomainSigningSelector and DomainSigningPrivateKey are both required."
                )
        elif origin and origin.startswith("AWS_SES_"):
            raise E.BadRequestException("Sesame does not replicate DKIM keys across regions.")
        for tag in params.get("Tags") or []:
            if not tag.get("Key"):
                raise E.BadRequestException("Tag keys must not be empty.")
        await self._check_configuration_set(ctx, params.get("ConfigurationSetName"))
        if "@" in name:  # an address: one verification email per interval, within the quota
            try:
                await self.verification.reserve(ctx.account_id, ctx.region)
            except VerificationError as exc:
                # As v2 SendEmail answers a full quota, or a rate exceeded.
                error = E.LimitExceededException if exc.kind == "daily" else E.TooManyRequestsException
                raise error(exc.message) from None
        with v2_errors():
            row = await self.identities.create(
                ctx.account_id,
                ctx.region,
                name,
                byodkim=byodkim,
                key_length=signing.get("NextSigningKeyLength"),
                configuration_set=params.get("ConfigurationSetName"),
            )
        if params.get("Tags"):
            await self.tags.tag(
                ctx.account_id, ctx.region, ctx.arn(f"identity/{row.identity}"), params["Tags"]
            )
        await self.verification.start(row)  # an address: the email with its verification link
        out: dict[str, Any] = {
            "IdentityType": row.kind,
            "VerifiedForSendingStatus": row.verification_status == SUCCESS,
        }
        if row.kind == DOMAIN:  # SES gives an address identity no DkimAttributes here
            out["DkimAttributes"] = dkim_attributes(row, None)
        return out

    async def get_email_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with v2_errors():
            row = await self.identities.require(ctx.account_id, ctx.region, params["EmailIdentity"])
            row = await self.identities.refresh(row)
        out: dict[str, Any] = {
            "IdentityType": row.kind,
            "FeedbackForwardingStatus": row.feedback_forwarding,
            "VerifiedForSendingStatus": row.verification_status == SUCCESS,
            "DkimAttributes": dkim_attributes(row, await self._parent(row)),
            "Policies": dict(row.policies or {}),
            "Tags": await self.tags.list_tags(
                ctx.account_id, ctx.region, ctx.arn(f"identity/{row.identity}")
            ),
            "VerificationStatus": row.verification_status,
        }
        if row.mail_from_domain:
            out["MailFromAttributes"] = {
                "MailFromDomain": row.mail_from_domain,
                "MailFromDomainStatus": row.mail_from_status or "PENDING",
                "BehaviorOnMxFailure": row.mail_from_behavior,
            }
        if row.configuration_set_name:
            out["ConfigurationSetName"] = row.configuration_set_name
        info: dict[str, Any] = {}
        if row.last_checked_at:
            info["LastCheckedTimestamp"] = row.last_checked_at
        if row.last_success_at:
            info["LastSuccessTimestamp"] = row.last_success_at
        if row.verification_error and row.verification_status != SUCCESS:
            info["ErrorType"] = row.verification_error
        if info:
            out["VerificationInfo"] = info
        return out

    async def list_email_identities(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size = params.get("PageSize") or 1000
        if not 0 < size <= 1000:
            raise E.BadRequestException("PageSize must be between 1 and 1000.")
        rows, last = await self.identities.page(
            ctx.account_id, ctx.region, None, decode_token(params.get("NextToken")), size
        )
        out: dict[str, Any] = {
            "EmailIdentities": [
                {
                    "IdentityType": r.kind,
                    "IdentityName": r.identity,
                    "SendingEnabled": r.verification_status == SUCCESS,
                    "VerificationStatus": r.verification_status,
                }
                for r in rows
            ]
        }
        if last:
            out["NextToken"] = encode_token(last)
        return out

    async def delete_email_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with v2_errors():
            await self.identities.delete(
                ctx.account_id, ctx.region, params["EmailIdentity"], missing_ok=False
            )
        await self.tags.drop_resource(
            ctx.account_id, ctx.arn(f"identity/{normalize(params['EmailIdentity'])}")
        )
        return {}

    async def put_email_identity_dkim_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with v2_errors():
            await self.identities.modify(
                ctx.account_id,
                ctx.region,
                params["EmailIdentity"],
                dkim_signing_enabled=bool(params.get("SigningEnabled", False)),
            )
        return {}

    async def put_email_identity_dkim_signing_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with v2_errors():
            row = await self.identities.set_signing_attributes(
                ctx.account_id,
                ctx.region,
                params["EmailIdentity"],
                params["SigningAttributesOrigin"],
                params.get("SigningAttributes") or {},
            )
        return {"DkimStatus": row.dkim_status, "DkimTokens": list(row.dkim_tokens)}

    async def put_email_identity_mail_from_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with v2_errors():
            await self.identities.set_mail_from(
                ctx.account_id,
                ctx.region,
                params["EmailIdentity"],
                params.get("MailFromDomain"),
                params.get("BehaviorOnMxFailure") or "USE_DEFAULT_VALUE",
            )
        return {}

    async def put_email_identity_configuration_set_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self._check_configuration_set(ctx, params.get("ConfigurationSetName"))
        with v2_errors():
            await self.identities.modify(
                ctx.account_id,
                ctx.region,
                params["EmailIdentity"],
                configuration_set_name=params.get("ConfigurationSetName"),
            )
        return {}

    async def put_email_identity_feedback_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with v2_errors():
            await self.identities.modify(
                ctx.account_id,
                ctx.region,
                params["EmailIdentity"],
                feedback_forwarding=bool(params.get("EmailForwardingEnabled", False)),
            )
        return {}

    async def create_email_identity_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        check_policy(params["Policy"])
        with v2_errors():
            await self.identities.put_policy(
                ctx.account_id,
                ctx.region,
                params["EmailIdentity"],
                params["PolicyName"],
                params["Policy"],
                create=True,
            )
        return {}

    async def update_email_identity_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        check_policy(params["Policy"])
        with v2_errors():
            await self.identities.put_policy(
                ctx.account_id,
                ctx.region,
                params["EmailIdentity"],
                params["PolicyName"],
                params["Policy"],
            )
        return {}

    async def get_email_identity_policies(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with v2_errors():
            row = await self.identities.require(ctx.account_id, ctx.region, params["EmailIdentity"])
        return {"Policies": dict(row.policies or {})}

    async def delete_email_identity_policy(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        with v2_errors():
            await self.identities.delete_policy(
                ctx.account_id, ctx.region, params["EmailIdentity"], params["PolicyName"]
            )
        return {}
