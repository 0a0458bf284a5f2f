"""SES v1 identity operations: Verify*, ListIdentities, Get/SetIdentity*, identity policies.

v1 spells statuses in CamelCase (``Pending``, ``Success``, ``TemporaryFailure``…), answers Get* calls
with a map that simply leaves out unknown identities, and treats deleting a missing identity or policy
as success.
"""

from __future__ import annotations

import json
from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import InvalidParameterValue, Throttling, service_errors
from sesame.domain.identities import DOMAIN, EMAIL, SUCCESS, Identities, IdentityError, normalize
from sesame.domain.tags import Tags
from sesame.domain.verification import Verification, VerificationError
from sesame.providers.v2_identities import decode_token, encode_token

E = service_errors("ses")

_V1_STATUS = {
    "PENDING": "Pending",
    "SUCCESS": "Success",
    "FAILED": "Failed",
    "TEMPORARY_FAILURE": "TemporaryFailure",
    "NOT_STARTED": "NotStarted",
}
_V1_KIND = {"EmailAddress": EMAIL, "Domain": DOMAIN}
_BEHAVIOR_V1 = {"USE_DEFAULT_VALUE": "UseDefaultValue", "REJECT_MESSAGE": "RejectMessage"}
_BEHAVIOR_V2 = {v: k for k, v in _BEHAVIOR_V1.items()}
_TOPIC_KEYS = {"Bounce": "BounceTopic", "Complaint": "ComplaintTopic", "Delivery": "DeliveryTopic"}


def _missing(identity: str) -> Exception:
    return InvalidParameterValue(f"Identity {identity} does not exist.")


class IdentitiesV1:
    identities: Identities
    tags: Tags
    verification: Verification

    async def verify_email_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self._verify(ctx, params["EmailAddress"], EMAIL)
        return {}

    async def verify_email_address(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self._verify(ctx, params["EmailAddress"], EMAIL)
        return {}

    async def verify_domain_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self._verify(ctx, params["Domain"], DOMAIN, v1_token=True, easy_dkim=False)
        return {"VerificationToken": row.verification_token}

    async def verify_domain_dkim(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self._verify(ctx, params["Domain"], DOMAIN, easy_dkim=True)
        return {"DkimTokens": list(row.dkim_tokens)}

    async def _verify(self, ctx: RequestContext, name: str, kind: str, **kw: Any) -> Any:
        if ("@" in name) != (kind == EMAIL):
            raise InvalidParameterValue(f"Invalid {'email address' if kind == EMAIL else 'domain'} <{name}>.")
        if kind == EMAIL:  # one verification email per interval, within the quota
            try:
                await self.verification.reserve(ctx.account_id, ctx.region)
            except VerificationError as exc:
                raise Throttling(exc.message) from None  # as SES answers sends over the rate or quota
        try:
            row = await self.identities.create(ctx.account_id, ctx.region, name, exists_ok=True, **kw)
        except IdentityError as exc:
            raise InvalidParameterValue(exc.message) from None
        if kind == EMAIL:
            await self.verification.start(row)  # SES sends (again) the verification email
        return row

    async def list_identities(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        kind = _V1_KIND.get(params.get("IdentityType") or "")
        limit = params.get("MaxItems") or 1000
        if not 0 < limit <= 1000:
            raise InvalidParameterValue("MaxItems must be between 1 and 1000.")
        try:
            after = decode_token(params.get("NextToken"))
        except Exception:
            raise InvalidParameterValue("The NextToken is not valid.") from None
        rows, last = await self.identities.page(ctx.account_id, ctx.region, kind, after, limit)
        out: dict[str, Any] = {"Identities": [r.identity for r in rows]}
        if last:
            out["NextToken"] = encode_token(last)
        return out

    async def list_verified_email_addresses(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        addresses: list[str] = []
        after = None
        while True:
            rows, after = await self.identities.page(ctx.account_id, ctx.region, EMAIL, after, 1000)
            addresses += [r.identity for r in rows if r.verification_status == SUCCESS]
            if after is None:
                return {"VerifiedEmailAddresses": addresses}

    async def delete_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.identities.delete(ctx.account_id, ctx.region, params["Identity"], missing_ok=True)
        await self.tags.drop_resource(ctx.account_id, ctx.arn(f"identity/{normalize(params['Identity'])}"))
        return {}

    async def delete_verified_email_address(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.identities.delete(ctx.account_id, ctx.region, params["EmailAddress"], missing_ok=True)
        return {}

    async def get_identity_verification_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        out = {}
        for name, row in (
            await self.identities.many(ctx.account_id, ctx.region, params["Identities"])
        ).items():
            row = await self.identities.refresh(row)
            attrs: dict[str, Any] = {"VerificationStatus": _V1_STATUS[row.verification_status]}
            if row.kind == DOMAIN and row.verification_token:
                attrs["VerificationToken"] = row.verification_token
            out[name] = attrs
        return {"VerificationAttributes": out}

    async def get_identity_dkim_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        out = {}
        for name, row in (
            await self.identities.many(ctx.account_id, ctx.region, params["Identities"])
        ).items():
            row = await self.identities.refresh(row)
            attrs: dict[str, Any] = {
                "DkimEnabled": row.dkim_signing_enabled and bool(row.dkim_tokens),
                "DkimVerificationStatus": _V1_STATUS[row.dkim_status],
            }
            if row.kind == DOMAIN and row.dkim_tokens:
                attrs["DkimTokens"] = list(row.dkim_tokens)
            out[name] = attrs
        return {"DkimAttributes": out}

    async def set_identity_dkim_enabled(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self._modify(ctx, params["Identity"], dkim_signing_enabled=bool(params["DkimEnabled"]))
        return {}

    async def _modify(self, ctx: RequestContext, identity: str, **changes: Any) -> None:
        try:
            await self.identities.modify(ctx.account_id, ctx.region, identity, **changes)
        except IdentityError:
            raise _missing(identity) from None

    async def set_identity_mail_from_domain(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        behavior = _BEHAVIOR_V2.get(
            params.get("BehaviorOnMXFailure") or "UseDefaultValue", "USE_DEFAULT_VALUE"
        )
        try:
            await self.identities.set_mail_from(
                ctx.account_id, ctx.region, params["Identity"], params.get("MailFromDomain"), behavior
            )
        except IdentityError as exc:
            raise InvalidParameterValue(exc.message) from None
        return {}

    async def get_identity_mail_from_domain_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        out = {}
        for name, row in (
            await self.identities.many(ctx.account_id, ctx.region, params["Identities"])
        ).items():
            row = await self.identities.refresh(row)
            attrs: dict[str, Any] = {"BehaviorOnMXFailure": _BEHAVIOR_V1[row.mail_from_behavior]}
            if row.mail_from_domain:
                attrs["MailFromDomain"] = row.mail_from_domain
                attrs["MailFromDomainStatus"] = _V1_STATUS[row.mail_from_status or "PENDING"]
            out[name] = attrs
        return {"MailFromDomainAttributes": out}

    async def set_identity_feedback_forwarding_enabled(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        enabled = bool(params["ForwardingEnabled"])
        row = await self.identities.get(ctx.account_id, ctx.region, params["Identity"])
        if row is None:
            raise _missing(params["Identity"])
        topics = row.notifications or {}
        if not enabled and not (topics.get("BounceTopic") and topics.get("ComplaintTopic")):
            # SES: forwarding can only be turned off once bounces and complaints go to SNS topics.
            raise InvalidParameterValue(
                "Feedback forwarding cannot be disabled unless SNS topics are set for bounces and complaints."
            )
        await self._modify(ctx, params["Identity"], feedback_forwarding=enabled)
        return {}

    async def set_identity_notification_topic(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.identities.get(ctx.account_id, ctx.region, params["Identity"])
        if row is None:
            raise _missing(params["Identity"])
        notifications = dict(row.notifications or {})
        key = _TOPIC_KEYS[params["NotificationType"]]
        if params.get("SnsTopic"):
            notifications[key] = params["SnsTopic"]
        else:
            notifications.pop(key, None)
        await self._modify(ctx, params["Identity"], notifications=notifications)
        return {}

    async def set_identity_headers_in_notifications_enabled(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.identities.get(ctx.account_id, ctx.region, params["Identity"])
        if row is None:
            raise E.MessageRejected(f"Identity {params['Identity']} is not verified or does not exist.")
        notifications = dict(row.notifications or {})
        notifications[f"HeadersIn{params['NotificationType']}NotificationsEnabled"] = bool(params["Enabled"])
        await self._modify(ctx, params["Identity"], notifications=notifications)
        return {}

    async def get_identity_notification_attributes(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        out = {}
        for name, row in (
            await self.identities.many(ctx.account_id, ctx.region, params["Identities"])
        ).items():
            n = row.notifications or {}
            attrs: dict[str, Any] = {k: n[k] for k in _TOPIC_KEYS.values() if n.get(k)}
            attrs["ForwardingEnabled"] = row.feedback_forwarding
            for kind in _TOPIC_KEYS:
                attrs[f"HeadersIn{kind}NotificationsEnabled"] = bool(
                    n.get(f"HeadersIn{kind}NotificationsEnabled")
                )
            out[name] = attrs
        return {"NotificationAttributes": out}

    async def put_identity_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        try:
            doc = json.loads(params["Policy"])
        except ValueError:
            raise E.InvalidPolicyException("Policy is not valid JSON.") from None
        if not isinstance(doc, dict) or not doc.get("Statement"):
            raise E.InvalidPolicyException("Policy must contain at least one statement.")
        try:
            await self.identities.put_policy(
                ctx.account_id,
                ctx.region,
                params["Identity"],
                params["PolicyName"],
                params["Policy"],
            )
        except IdentityError as exc:
            err = (
                _missing(params["Identity"])
                if exc.kind == "not-found"
                else InvalidParameterValue(exc.message)
            )
            raise err from None
        return {}

    async def get_identity_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self.identities.get(ctx.account_id, ctx.region, params["Identity"])
        policies = dict(row.policies or {}) if row else {}
        return {"Policies": {n: policies[n] for n in params["PolicyNames"] if n in policies}}

    async def list_identity_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self.identities.get(ctx.account_id, ctx.region, params["Identity"])
        return {"PolicyNames": sorted(row.policies or {}) if row else []}

    async def delete_identity_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        try:
            await self.identities.delete_policy(
                ctx.account_id, ctx.region, params["Identity"], params["PolicyName"]
            )
        except IdentityError:
            raise _missing(params["Identity"]) from None
        return {}
