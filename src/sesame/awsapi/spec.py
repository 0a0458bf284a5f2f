"""The SES service models, loaded from botocore (the single source of wire shapes).

Sesame speaks two services that share one host and the signing name ``ses``:
``ses`` (API v1, the AWS query protocol) and ``sesv2`` (API v2, REST-JSON).
"""

from __future__ import annotations

import functools
from typing import Literal

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

ServiceName = Literal["ses", "sesv2"]
SERVICES: tuple[ServiceName, ...] = ("ses", "sesv2")

_loader = Loader()


@functools.cache
def service_model(name: ServiceName) -> ServiceModel:
    return ServiceModel(_loader.load_service_model(name, "service-2"), service_name=name)


def operation_model(service: ServiceName, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)
