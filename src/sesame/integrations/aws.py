"""Clients for AWS-compatible services: SNS, EventBridge, Firehose, CloudWatch, S3, Lambda.

Requests are built, signed (SigV4) and serialized by botocore from the services' own models, never by
hand, and sent to ``aws.endpoint_url`` or ``aws.endpoints.<service>``: real AWS, LocalStack or moto.
botocore is synchronous: calls run on threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import botocore.session
from botocore.config import Config

from sesame.config import AwsSettings

_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"})


class NoEndpoint(Exception):
    """No endpoint is configured for the service."""


def region_of(arn: str) -> str:
    """The region an ARN names (``arn:aws:sns:REGION:ACCOUNT:…``)."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else "us-east-1"


class AwsClients:
    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        self._session = botocore.session.get_session()
        self._clients: dict[tuple[str, str, float | None], Any] = {}
        self._lock = threading.Lock()

    def configured(self, service: str) -> bool:
        return bool(self.settings.endpoint(service))

    def client(self, service: str, region: str, *, read_timeout: float | None = None) -> Any:
        """The service's client for the region; ``read_timeout`` (seconds) for calls that may wait on
        the far side longer than the usual 15 s (a Lambda function run synchronously)."""
        endpoint = self.settings.endpoint(service)
        if not endpoint:
            raise NoEndpoint(
                f"no endpoint is configured for {service} (aws.endpoint_url or aws.endpoints.{service})"
            )
        with self._lock:  # creating a client is not thread-safe; using one is
            key = (service, region, read_timeout)
            if key not in self._clients:
                config = _CONFIG if read_timeout is None else _CONFIG.merge(Config(read_timeout=read_timeout))
                if service == "s3":  # S3-compatible stores (MinIO, LocalStack, moto) take path-style URLs
                    # SigV4 for pre-signed URLs too (botocore presigns with the legacy SigV2 otherwise,
                    # which newer AWS regions refuse).
                    config = config.merge(Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
                self._clients[key] = self._session.create_client(
                    service,
                    region_name=region,
                    endpoint_url=endpoint,
                    aws_access_key_id=self.settings.access_key_id or "sesame",
                    aws_secret_access_key=self.settings.secret_access_key or "sesame",
                    config=config,
                )
            return self._clients[key]

    async def call(self, service: str, region: str, operation: str, **params: Any) -> dict[str, Any]:
        """One API call, e.g. ``call("sns", "us-east-1", "publish", TopicArn=…, Message=…)``."""

        def run() -> dict[str, Any]:
            result: dict[str, Any] = getattr(self.client(service, region), operation)(**params)
            return result

        return await asyncio.to_thread(run)
