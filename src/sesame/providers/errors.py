"""The one translator from domain errors to each API's errors.

Domain code raises ``DomainError`` subclasses named for what went wrong; the dispatcher hands any that
reaches it here, and the error code is the one the calling API uses for it: SES v1 names most errors
after their resource (``ConfigurationSetDoesNotExist``), v2 has four generic ones (``NotFoundException``).
The most specific class of the error's MRO that a table lists wins.
"""

from __future__ import annotations

from sesame.awsapi.errors import InvalidParameterValue, ServiceError, service_errors
from sesame.awsapi.spec import ServiceName
from sesame.domain import configuration_sets as cs
from sesame.domain import event_destinations as ed
from sesame.errors import AlreadyExists, DomainError, InvalidRequest, LimitExceeded, NotFound
from sesame.receiving import definitions as rx
from sesame.receiving.bounces import BounceRejected

V1 = service_errors("ses")
V2 = service_errors("sesv2")

_TABLES: dict[str, dict[type[DomainError], type[ServiceError]]] = {
    "ses": {
        cs.ConfigurationSetNotFound: V1.ConfigurationSetDoesNotExistException,
        cs.ConfigurationSetExists: V1.ConfigurationSetAlreadyExistsException,
        cs.InvalidConfigurationSet: V1.InvalidConfigurationSetException,
        ed.EventDestinationNotFound: V1.EventDestinationDoesNotExistException,
        ed.EventDestinationExists: V1.EventDestinationAlreadyExistsException,
        ed.InvalidSnsDestination: V1.InvalidSNSDestinationException,
        ed.InvalidFirehoseDestination: V1.InvalidFirehoseDestinationException,
        ed.InvalidCloudWatchDestination: V1.InvalidCloudWatchDestinationException,
        BounceRejected: V1.MessageRejected,
        rx.RuleSetNotFound: V1.RuleSetDoesNotExistException,
        rx.RuleNotFound: V1.RuleDoesNotExistException,
        rx.RuleSetInUse: V1.CannotDeleteException,
        rx.InvalidSnsTopic: V1.InvalidSnsTopicException,
        rx.InvalidS3Configuration: V1.InvalidS3ConfigurationException,
        rx.InvalidLambdaFunction: V1.InvalidLambdaFunctionException,
        AlreadyExists: V1.AlreadyExistsException,
        LimitExceeded: V1.LimitExceededException,
        InvalidRequest: InvalidParameterValue,
        NotFound: InvalidParameterValue,
    },
    "sesv2": {
        NotFound: V2.NotFoundException,
        AlreadyExists: V2.AlreadyExistsException,
        InvalidRequest: V2.BadRequestException,
        LimitExceeded: V2.LimitExceededException,
    },
}


def translate(service: ServiceName, exc: DomainError) -> ServiceError:
    table = _TABLES.get(service, {})
    for cls in type(exc).__mro__:
        if cls in table:
            # Some error shapes name what was wrong (receiving's ``Name``, ``Topic``, ``Bucket``).
            return table[cls](exc.message, **getattr(exc, "fields", {}))
    return InvalidParameterValue(exc.message)
