"""The service models, loaded from botocore (the single source of wire shapes).

Sesame speaks three services on one host: ``ses`` (API v1, the AWS query protocol) and ``sesv2``
(API v2, REST-JSON), both signed as ``ses``, and its own ``sns`` (the query protocol too, API version
2010-03-31, signed as ``sns``).
"""

from __future__ import annotations

import functools
from typing import Literal

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

ServiceName = Literal["ses", "sesv2", "sns"]
SERVICES: tuple[ServiceName, ...] = ("ses", "sesv2", "sns")

_loader = Loader()


@functools.cache
def service_model(name: ServiceName) -> ServiceModel:
    return ServiceModel(_loader.load_service_model(name, "service-2"), service_name=name)


def operation_model(service: ServiceName, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)
