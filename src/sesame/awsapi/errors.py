"""AWS-facing errors: one class per error shape of the service models, plus the common AWS errors.

Domain and provider code raise these; they are serialized in exactly one place per protocol
(``awsapi.protocols``). The wire code, HTTP status and fault side come from each shape's ``error``
metadata in the botocore model, so ``client.exceptions.MessageRejected`` works in boto3 without anyone
remembering the literal code ``MessageRejected`` (v1 shape ``AlreadyExistsException`` is code
``AlreadyExists`` on the wire, for instance).

    errors = service_errors("sesv2")
    raise errors.NotFoundException("Configuration set <x> does not exist.")
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, ClassVar

from sesame.awsapi.spec import ServiceName, service_model
from sesame.errors import SesameError


class ServiceError(SesameError):
    """An error in the AWS protocol's own terms."""

    code: ClassVar[str] = "InternalFailure"
    status: ClassVar[int] = 400
    sender_fault: ClassVar[bool] = True

    def __init__(self, message: str = "", **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        # Extra members of the error shape (rare in SES, kept for fidelity).
        self.fields = fields

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.status}, {self.message!r})"


def _common(name: str, code: str, status: int, sender_fault: bool = True) -> type[ServiceError]:
    return type(name, (ServiceError,), {"code": code, "status": status, "sender_fault": sender_fault})


# Common AWS errors that no SES model lists but every AWS endpoint answers.
InternalFailure = _common("InternalFailure", "InternalFailure", 500, sender_fault=False)
ValidationError = _common("ValidationError", "ValidationError", 400)  # query protocol validation
InvalidParameterValue = _common("InvalidParameterValue", "InvalidParameterValue", 400)
InvalidParameterCombination = _common("InvalidParameterCombination", "InvalidParameterCombination", 400)
MissingParameter = _common("MissingParameter", "MissingParameter", 400)
MalformedQueryString = _common("MalformedQueryString", "MalformedQueryString", 404)
MalformedInput = _common("MalformedInput", "MalformedInput", 400)  # a value that does not convert
MissingAction = _common("MissingAction", "MissingAction", 400)
InvalidAction = _common("InvalidAction", "InvalidAction", 400)
UnknownOperationException = _common("UnknownOperationException", "UnknownOperationException", 404)
SerializationException = _common("SerializationException", "SerializationException", 400)
UnsupportedMediaType = _common("UnsupportedMediaType", "UnsupportedMediaTypeException", 415)
RequestEntityTooLarge = _common("RequestEntityTooLarge", "RequestEntityTooLarge", 413)
RequestHeaderSectionTooLarge = _common("RequestHeaderSectionTooLarge", "RequestHeaderSectionTooLarge", 400)
Throttling = _common("Throttling", "Throttling", 400)
RequestTimeout = _common("RequestTimeout", "RequestTimeout", 400)  # a body too slow to arrive
# Authentication (HTTP 403, as AWS answers, but for a malformed Authorization header).
MissingAuthenticationToken = _common("MissingAuthenticationToken", "MissingAuthenticationToken", 403)
IncompleteSignature = _common("IncompleteSignature", "IncompleteSignature", 400)  # 400, as AWS answers
InvalidClientTokenId = _common("InvalidClientTokenId", "InvalidClientTokenId", 403)
SignatureDoesNotMatch = _common("SignatureDoesNotMatch", "SignatureDoesNotMatch", 403)
RequestExpired = _common("RequestExpired", "RequestExpired", 403)
AccessDenied = _common("AccessDenied", "AccessDenied", 403)


class NotImplementedOperation(ServiceError):
    """A real SES operation that Sesame does not implement yet: a clear, typed answer, never a 500."""

    code = "NotImplemented"
    status = 501
    sender_fault = False

    def __init__(self, service: str, operation: str) -> None:
        super().__init__(f"Sesame does not implement the {service} operation {operation} yet.")
        self.operation = operation


class ServiceErrors:
    """The error classes of one service model, as attributes named after their shapes."""

    def __init__(self, service: ServiceName) -> None:
        self.service = service
        self._by_shape: dict[str, type[ServiceError]] = {}
        model = service_model(service)
        for shape in model.error_shapes:
            meta = shape.metadata.get("error", {})
            cls = type(
                shape.name,
                (ServiceError,),
                {
                    "code": meta.get("code", shape.name),
                    "status": int(meta.get("httpStatusCode", 400)),
                    "sender_fault": bool(meta.get("senderFault", not shape.metadata.get("fault", False))),
                    "__module__": f"{__name__}.{service}",
                },
            )
            self._by_shape[shape.name] = cls

    def __getattr__(self, name: str) -> type[ServiceError]:
        try:
            return self._by_shape[name]
        except KeyError:
            raise AttributeError(f"{self.service} has no error shape {name}") from None

    def __iter__(self) -> Iterator[type[ServiceError]]:
        return iter(self._by_shape.values())


@functools.cache
def service_errors(service: ServiceName) -> ServiceErrors:
    return ServiceErrors(service)
