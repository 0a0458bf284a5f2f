"""The links in SNS messages, served by Sesame: SubscribeURL, UnsubscribeURL and SigningCertURL.

They are followed without AWS credentials, as SNS's are: the confirmation token is the credential of
SubscribeURL; an UnsubscribeURL names a subscription ARN (unguessable, as it ends in a random UUID),
and a subscription confirmed with ``AuthenticateOnUnsubscribe`` refuses it. Answers are SNS's XML
(ConfirmSubscriptionResponse, UnsubscribeResponse, or an ErrorResponse), as SNS's own endpoint gives.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sesame.awsapi import spec
from sesame.awsapi.protocols import query
from sesame.integrations.sns import AuthorizationError, SnsError, arns
from sesame.integrations.sns.messages import Urls
from sesame.providers.sns import to_service_error

if TYPE_CHECKING:
    from sesame.runtime import Sesame

_XMLNS = query.xmlns("sns")


def _xml(r: Any) -> Response:
    return Response(r.body, status_code=r.status, headers=r.headers)


def routes(sesame: Sesame) -> list[Route]:
    sns = sesame.sns

    async def confirm(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        params = request.query_params
        try:
            topic = params.get("TopicArn", "")
            arns.parse_topic(topic)
            arn = await sns.confirm(topic, params.get("Token", ""))
        except SnsError as exc:
            return _xml(query.serialize_error(to_service_error(exc), request_id, _XMLNS))
        op = spec.operation_model("sns", "ConfirmSubscription")
        return _xml(query.serialize(op, {"SubscriptionArn": arn}, request_id))

    async def unsubscribe(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        arn = request.query_params.get("SubscriptionArn", "")
        try:
            arns.topic_of_subscription(arn)
            row = await sns.subscription(arn)
            if row.authenticate_on_unsubscribe:
                raise AuthorizationError("This subscription requires a signed Unsubscribe request.")
            await sns.unsubscribe(arn)
        except SnsError as exc:
            return _xml(query.serialize_error(to_service_error(exc), request_id, _XMLNS))
        return _xml(query.serialize(spec.operation_model("sns", "Unsubscribe"), {}, request_id))

    async def certificate(request: Request) -> Response:
        if request.path_params["name"] != sesame.sns_signer.cert_name:
            return Response("No such certificate.\n", status_code=404, media_type="text/plain")
        return Response(sesame.sns_signer.cert_pem, media_type="application/x-pem-file")

    return [
        Route(f"{Urls.PREFIX}/confirm", confirm, methods=["GET"]),
        Route(f"{Urls.PREFIX}/unsubscribe", unsubscribe, methods=["GET"]),
        Route(f"{Urls.PREFIX}/{{name:str}}", certificate, methods=["GET"]),
    ]
