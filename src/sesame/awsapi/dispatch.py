"""One AWS API call from bytes to bytes: authenticate → route → parse → validate → provider → serialize.

Every failure leaves here as an AWS-shaped error in the protocol of the request (XML for v1 paths, JSON
for ``/v2/`` paths): a ServiceError as it is, anything unexpected as ``InternalFailure`` (500) with the
traceback logged. Providers are looked up by ``botocore.xform_name(operation)``; an operation no
provider implements answers ``NotImplemented`` (501) naming it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from botocore import xform_name

from sesame.awsapi import errors, spec, validation
from sesame.awsapi.auth import Authenticator, Caller
from sesame.awsapi.context import RequestContext
from sesame.awsapi.messages import AwsRequest, AwsResponse
from sesame.awsapi.protocols import query, rest_json
from sesame.errors import DomainError

log = logging.getLogger(__name__)


def is_v2(path: str) -> bool:
    return path.startswith("/v2/")


def error_response(req_path: str, err: errors.ServiceError, request_id: str) -> AwsResponse:
    proto = rest_json if is_v2(req_path) else query
    return proto.serialize_error(err, request_id)


class Dispatcher:
    def __init__(
        self,
        providers: dict[str, Any],
        authenticator: Authenticator,
        translate: Callable[[spec.ServiceName, DomainError], errors.ServiceError] | None = None,
    ) -> None:
        self.providers = providers
        self.authenticator = authenticator
        #: Gives a domain error the calling API's error code (providers/errors.py).
        self.translate = translate

    async def identify(self, req: AwsRequest) -> Caller | AwsResponse:
        """Who a request's headers say is calling, or the error that answers it (its body unread)."""
        try:
            return await self.authenticator.identify(req)
        except Exception as exc:
            return _error(req, exc, str(uuid.uuid4()))

    async def __call__(self, req: AwsRequest, caller: Caller) -> AwsResponse:
        """Answer one request whose body has been read; ``caller`` is ``identify``'s answer, given
        before the body was read, so the key is looked up once."""
        request_id = str(uuid.uuid4())
        v2 = is_v2(req.path)
        proto = rest_json if v2 else query
        try:
            self.authenticator.verify(req, caller)
            if v2:
                service: spec.ServiceName = "sesv2"
                op, uri_params = rest_json.router.match(req.method, req.raw_path)
                params = rest_json.parse(op, req, uri_params)
            else:
                service = "ses"
                form = query.read_form(req)
                op = spec.operation_model(service, query.operation_name(form))
                params = query.parse(op, form)
            validation.validate(op, params)
            method = getattr(self.providers.get(service), xform_name(op.name), None)
            if method is None:
                raise errors.NotImplementedOperation(service, op.name)
            ctx = RequestContext(
                caller.account_id, caller.region, request_id, service, op.name, caller.access_key_id
            )
            result = await method(ctx, params)
            return proto.serialize(op, result or {}, request_id)
        except DomainError as exc:
            if self.translate is None:
                return _error(req, exc, request_id)
            return _error(req, self.translate(service, exc), request_id)
        except Exception as exc:
            return _error(req, exc, request_id)


def _error(req: AwsRequest, exc: Exception, request_id: str) -> AwsResponse:
    """A ServiceError as it is, anything else as InternalFailure with its traceback logged."""
    if not isinstance(exc, errors.ServiceError):
        log.error("internal error in %s %s (request %s)", req.method, req.path, request_id, exc_info=exc)
        exc = errors.InternalFailure("The request processing has failed because of an unknown error.")
    return error_response(req.path, exc, request_id)


def implemented(providers: dict[str, Any]) -> dict[str, list[str]]:
    """Operation names per service that a provider method serves (for docs/coverage.md)."""
    out: dict[str, list[str]] = {}
    for service in spec.SERVICES:
        provider = providers.get(service)
        names = spec.service_model(service).operation_names
        out[service] = [n for n in names if callable(getattr(provider, xform_name(n), None))]
    return out
