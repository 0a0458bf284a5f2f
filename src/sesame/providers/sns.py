"""Sesame's own SNS (query protocol, API 2010-03-31): thin adapters from operations to integrations.sns.

One method per operation, named ``botocore.xform_name(operation)``; the typed refusals of
``integrations.sns`` become SNS's error shapes here, in one place (``_sns_errors``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import ServiceError, service_errors
from sesame.integrations.sns import AuthorizationError, InvalidParameter, NotFound, Sns, SnsError, arns
from sesame.integrations.sns.checks import message_attributes
from sesame.integrations.sns.service import PENDING_ARN

if TYPE_CHECKING:
    from sesame.runtime import Sesame

Params = dict[str, Any]
Result = dict[str, Any]
Method = TypeVar("Method", bound=Callable[..., Awaitable[Result]])

_ERRORS = service_errors("sns")
_TRANSLATION: tuple[tuple[type[SnsError], type[ServiceError]], ...] = (
    (NotFound, _ERRORS.NotFoundException),
    (InvalidParameter, _ERRORS.InvalidParameterException),
    (AuthorizationError, _ERRORS.AuthorizationErrorException),
)


def to_service_error(exc: SnsError) -> ServiceError:
    for kind, shape in _TRANSLATION:
        if isinstance(exc, kind):
            return shape(exc.message)
    return _ERRORS.InvalidParameterException(exc.message)


def _sns_errors(method: Method) -> Method:
    @functools.wraps(method)
    async def wrapper(self: Any, ctx: RequestContext, params: Params) -> Result:
        try:
            return await method(self, ctx, params)
        except SnsError as exc:
            raise to_service_error(exc) from None

    return wrapper  # type: ignore[return-value]


def _owned(ctx: RequestContext, arn: str, action: str, parameter: str = "TopicArn") -> str:
    arns.check_owner(arn, ctx.account_id, ctx.region, action, parameter)
    return arn


class SnsProvider:
    def __init__(self, sesame: Sesame) -> None:
        self.sns: Sns = sesame.sns

    @_sns_errors
    async def create_topic(self, ctx: RequestContext, params: Params) -> Result:
        arn = await self.sns.create_topic(
            ctx.account_id, ctx.region, params["Name"], params.get("Attributes")
        )
        return {"TopicArn": arn}

    @_sns_errors
    async def delete_topic(self, ctx: RequestContext, params: Params) -> Result:
        await self.sns.delete_topic(_owned(ctx, params["TopicArn"], "DeleteTopic"))
        return {}

    @_sns_errors
    async def list_topics(self, ctx: RequestContext, params: Params) -> Result:
        topics, next_token = await self.sns.list_topics(ctx.account_id, ctx.region, params.get("NextToken"))
        return {"Topics": [{"TopicArn": arn} for arn in topics], "NextToken": next_token}

    @_sns_errors
    async def get_topic_attributes(self, ctx: RequestContext, params: Params) -> Result:
        arn = _owned(ctx, params["TopicArn"], "GetTopicAttributes")
        return {"Attributes": await self.sns.topic_attributes(arn)}

    @_sns_errors
    async def set_topic_attributes(self, ctx: RequestContext, params: Params) -> Result:
        arn = _owned(ctx, params["TopicArn"], "SetTopicAttributes")
        await self.sns.set_topic_attribute(arn, params["AttributeName"], params.get("AttributeValue"))
        return {}

    @_sns_errors
    async def subscribe(self, ctx: RequestContext, params: Params) -> Result:
        topic = _owned(ctx, params["TopicArn"], "Subscribe")
        arn, confirmed = await self.sns.subscribe(
            ctx.account_id, topic, params["Protocol"], params.get("Endpoint"), params.get("Attributes")
        )
        return {"SubscriptionArn": arn if confirmed or params.get("ReturnSubscriptionArn") else PENDING_ARN}

    @_sns_errors
    async def confirm_subscription(self, ctx: RequestContext, params: Params) -> Result:
        # The token is the credential here, as in SNS: whoever got the confirmation may use it.
        topic = params["TopicArn"]
        arns.parse_topic(topic)
        authenticate = str(params.get("AuthenticateOnUnsubscribe", "")).lower() == "true"
        return {"SubscriptionArn": await self.sns.confirm(topic, params["Token"], authenticate)}

    @_sns_errors
    async def unsubscribe(self, ctx: RequestContext, params: Params) -> Result:
        arn = params["SubscriptionArn"]
        _owned(ctx, arns.topic_of_subscription(arn), "Unsubscribe", "SubscriptionArn")
        await self.sns.unsubscribe(arn)
        return {}

    @_sns_errors
    async def list_subscriptions(self, ctx: RequestContext, params: Params) -> Result:
        subs, next_token = await self.sns.list_subscriptions(
            ctx.account_id, ctx.region, None, params.get("NextToken")
        )
        return {"Subscriptions": [s.listed() for s in subs], "NextToken": next_token}

    @_sns_errors
    async def list_subscriptions_by_topic(self, ctx: RequestContext, params: Params) -> Result:
        topic = _owned(ctx, params["TopicArn"], "ListSubscriptionsByTopic")
        await self.sns.require_topic(topic)
        subs, next_token = await self.sns.list_subscriptions(
            ctx.account_id, ctx.region, topic, params.get("NextToken")
        )
        return {"Subscriptions": [s.listed() for s in subs], "NextToken": next_token}

    @_sns_errors
    async def publish(self, ctx: RequestContext, params: Params) -> Result:
        if params.get("PhoneNumber"):
            raise InvalidParameter("Invalid parameter: PhoneNumber Reason: Sesame's SNS does not send SMS")
        target = params.get("TopicArn") or params.get("TargetArn")
        if not target:
            raise InvalidParameter(
                "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter"
            )
        parameter = "TopicArn" if params.get("TopicArn") else "TargetArn"
        _owned(ctx, target, "Publish", parameter)
        for fifo_only in ("MessageGroupId", "MessageDeduplicationId"):
            if params.get(fifo_only):
                raise InvalidParameter(
                    f"Invalid parameter: The request includes {fifo_only} parameter that is not valid for"
                    " this topic type"
                )
        message_id = await self.sns.publish(
            target,
            params["Message"],
            params.get("Subject"),
            attributes=message_attributes(params.get("MessageAttributes") or {}),
            structure=params.get("MessageStructure"),
        )
        return {"MessageId": message_id}
