"""Lambda functions that receipt rules' Lambda actions invoke (reference §10.3).

A function ARN listed in ``receiving.functions`` is an HTTP endpoint of the user's own: the event is
POSTed to it as JSON and, for ``RequestResponse``, its reply's JSON body is the function's result.
Any other ARN goes to Lambda's ``Invoke`` through botocore at ``aws.endpoints.lambda`` (or
``aws.endpoint_url``). With neither, the function is unreachable.

Every error carries ``retryable``: SES retries a failing action for up to four hours, so a function
that is down, slow, raising or not yet deployed is tried again; only an event that cannot be sent at
all is not.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

import botocore.exceptions
import httpx

from sesame.integrations.aws import AwsClients, NoEndpoint, region_of

log = logging.getLogger(__name__)

InvocationType = Literal["Event", "RequestResponse"]
Disposition = Literal["STOP_RULE", "STOP_RULE_SET", "CONTINUE"]

#: SES waits this long for a RequestResponse invocation (receiving-email-action-lambda).
REQUEST_RESPONSE_TIMEOUT = 30.0
_DISPOSITIONS: frozenset[str] = frozenset({"STOP_RULE", "STOP_RULE_SET", "CONTINUE"})


class FunctionError(Exception):
    """Invoking a function failed; ``retryable`` says whether trying again may succeed."""

    retryable = True


class FunctionUnreachable(FunctionError):
    """Neither ``receiving.functions`` nor a Lambda endpoint leads to the function."""


class FunctionTimeout(FunctionError):
    """The function did not answer in time."""


class FunctionFailed(FunctionError):
    """The function's endpoint refused or failed the invocation, or the function raised."""


class InvalidEvent(FunctionError):
    retryable = False


def disposition(response: Any) -> Disposition:
    """What a RequestResponse function asks of the rule set: ``{"disposition": "STOP_RULE"}`` and so
    on; anything else, or nothing, is CONTINUE (receiving-email-action-lambda)."""
    if isinstance(response, dict):
        value = response.get("disposition")
        if isinstance(value, str) and value in _DISPOSITIONS:
            return value  # type: ignore[return-value]  # checked against the literal's values
    return "CONTINUE"


class Functions:
    def __init__(self, functions: dict[str, str], aws: AwsClients) -> None:
        self.functions = functions  # settings.receiving.functions
        self.aws = aws

    def reachable(self, function_arn: str) -> bool:
        return function_arn in self.functions or self.aws.configured("lambda")

    async def invoke(
        self,
        function_arn: str,
        event: dict[str, Any],
        *,
        invocation_type: InvocationType = "Event",
        timeout: float = REQUEST_RESPONSE_TIMEOUT,
    ) -> dict[str, Any] | None:
        """Invoke the function with ``event``; for RequestResponse, its result when that is a JSON
        object (else None). An Event invocation returns None once the function has taken the event."""
        if invocation_type not in ("Event", "RequestResponse"):
            raise InvalidEvent(f"invalid invocation type {invocation_type!r}")
        try:
            payload = json.dumps(event, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidEvent(f"the event is not JSON: {exc}") from exc
        if (url := self.functions.get(function_arn)) is not None:
            return await self._http(function_arn, url, payload, invocation_type, timeout)
        if not self.aws.configured("lambda"):
            raise FunctionUnreachable(
                f"Lambda function {function_arn} is not reachable: it is not in receiving.functions and "
                "no Lambda endpoint is configured (aws.endpoint_url or aws.endpoints.lambda)"
            )
        return await self._lambda(function_arn, payload, invocation_type, timeout)

    async def _http(
        self, arn: str, url: str, payload: bytes, invocation_type: InvocationType, timeout: float
    ) -> dict[str, Any] | None:
        headers = {
            "content-type": "application/json",
            # Lambda's own header names, so one handler can serve both ways of being called.
            "x-amz-invocation-type": invocation_type,
        }
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                reply = await client.post(url, content=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise FunctionTimeout(f"{arn} ({url}) did not answer within {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise FunctionFailed(f"{arn} ({url}): {type(exc).__name__}: {exc}") from exc
        if not 200 <= reply.status_code < 300:
            raise FunctionFailed(f"{arn} ({url}) answered HTTP {reply.status_code}")
        return _result(reply.content) if invocation_type == "RequestResponse" else None

    async def _lambda(
        self, arn: str, payload: bytes, invocation_type: InvocationType, timeout: float
    ) -> dict[str, Any] | None:
        def run() -> tuple[dict[str, Any], bytes]:
            client = self.aws.client("lambda", region_of(arn), read_timeout=timeout)
            result: dict[str, Any] = client.invoke(
                FunctionName=arn, InvocationType=invocation_type, Payload=payload
            )
            body = result["Payload"].read() if "Payload" in result else b""
            return result, body

        try:
            # The read timeout bounds each wait on the socket; this bounds the call, retries included.
            result, body = await asyncio.wait_for(asyncio.to_thread(run), timeout * 2 + 5)
        except (TimeoutError, botocore.exceptions.ReadTimeoutError) as exc:
            raise FunctionTimeout(f"{arn} did not answer within {timeout:g} s") from exc
        except NoEndpoint as exc:
            raise FunctionUnreachable(str(exc)) from exc
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise FunctionFailed(f"{arn}: {code or exc}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise FunctionFailed(f"{arn}: {exc}") from exc
        if result.get("FunctionError"):  # the function ran and raised ("Unhandled")
            raise FunctionFailed(f"{arn} failed ({result['FunctionError']}): {body[:500]!r}")
        return _result(body) if invocation_type == "RequestResponse" else None


def _result(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body) if body.strip() else None
    except ValueError:
        log.info("a function's result is not JSON: %r", body[:200])
        return None
    return value if isinstance(value, dict) else None
