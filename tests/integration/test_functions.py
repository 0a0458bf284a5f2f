"""Lambda actions' functions: an HTTP function of the user's own on loopback (receiving.functions), and
Lambda's Invoke through botocore at moto's server (its docker-free Lambda, which answers what a test
queues instead of running code)."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest

from sesame.config import AwsSettings, load
from sesame.integrations.aws import AwsClients
from sesame.integrations.functions import (
    FunctionFailed,
    Functions,
    FunctionTimeout,
    FunctionUnreachable,
    disposition,
)
from sesame.testing.moto import moto_server
from sesame.testing.servers import free_port

ARN = "arn:aws:lambda:us-east-1:123456789012:function:IncomingEmail"
EVENT = {"Records": [{"eventSource": "aws:ses", "eventVersion": "1.0", "ses": {"mail": {}, "receipt": {}}}]}


@dataclass
class Reply:
    body: bytes
    status: int = 200
    delay: float = 0.0


@dataclass
class FunctionServer:
    """HTTP "functions" on a loopback port: each path answers its Reply and records what it got."""

    replies: dict[str, Reply] = field(default_factory=dict)
    got: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def functions_server() -> Iterator[FunctionServer]:
    state = FunctionServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            state.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            reply = state.replies.get(self.path, Reply(b"", 404))
            time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:  # the caller gave up waiting
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def mapped(server: FunctionServer, path: str, reply: Reply) -> Functions:
    server.replies[path] = reply
    return Functions({ARN: server.url(path)}, AwsClients(AwsSettings()))


@pytest.mark.parametrize("wanted", ["STOP_RULE", "STOP_RULE_SET", "CONTINUE"])
def test_request_response_returns_the_functions_disposition(
    functions_server: FunctionServer, wanted: str
) -> None:
    functions = mapped(functions_server, f"/{wanted}", Reply(json.dumps({"disposition": wanted}).encode()))
    result = asyncio.run(functions.invoke(ARN, EVENT, invocation_type="RequestResponse"))
    assert result == {"disposition": wanted}
    assert disposition(result) == wanted
    path, headers, body = functions_server.got[-1]
    assert (path, json.loads(body)) == (f"/{wanted}", EVENT)
    assert headers["content-type"] == "application/json"
    assert headers["x-amz-invocation-type"] == "RequestResponse"


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"",
        b'["STOP_RULE"]',
        b'"STOP_RULE"',
        b'{"disposition": "stop_rule"}',
        b'{"other": 1}',
    ],
)
def test_garbage_or_absent_disposition_continues(functions_server: FunctionServer, body: bytes) -> None:
    functions = mapped(functions_server, "/garbage", Reply(body))
    result = asyncio.run(functions.invoke(ARN, EVENT, invocation_type="RequestResponse"))
    assert disposition(result) == "CONTINUE"


def test_event_invocation_delivers_the_event_and_returns_nothing(functions_server: FunctionServer) -> None:
    functions = mapped(functions_server, "/event", Reply(b'{"disposition": "STOP_RULE"}', status=202))
    assert asyncio.run(functions.invoke(ARN, EVENT, invocation_type="Event")) is None
    path, headers, body = functions_server.got[-1]
    assert (path, headers["x-amz-invocation-type"], json.loads(body)) == ("/event", "Event", EVENT)


def test_a_slow_function_times_out(functions_server: FunctionServer) -> None:
    functions = mapped(functions_server, "/slow", Reply(b"{}", delay=2.0))
    started = time.monotonic()
    with pytest.raises(FunctionTimeout) as caught:
        asyncio.run(functions.invoke(ARN, EVENT, invocation_type="RequestResponse", timeout=0.3))
    assert time.monotonic() - started < 1.5
    assert caught.value.retryable


def test_a_failing_function_is_a_retryable_failure(functions_server: FunctionServer) -> None:
    functions = mapped(functions_server, "/error", Reply(b'{"errorMessage": "boom"}', status=500))
    with pytest.raises(FunctionFailed, match="HTTP 500") as caught:
        asyncio.run(functions.invoke(ARN, EVENT, invocation_type="RequestResponse"))
    assert caught.value.retryable


def test_a_function_that_is_down_is_a_retryable_failure() -> None:
    functions = Functions({ARN: f"http://127.0.0.1:{free_port()}/"}, AwsClients(AwsSettings()))
    with pytest.raises(FunctionFailed) as caught:
        asyncio.run(functions.invoke(ARN, EVENT))
    assert caught.value.retryable


def test_an_unmapped_function_without_a_lambda_endpoint_is_unreachable() -> None:
    functions = Functions({}, AwsClients(AwsSettings()))
    assert not functions.reachable(ARN)
    with pytest.raises(FunctionUnreachable, match=r"receiving\.functions"):
        asyncio.run(functions.invoke(ARN, EVENT))


def test_functions_are_mapped_in_the_settings(tmp_path: Any) -> None:
    config = tmp_path / "sesame.toml"
    config.write_text(f'[receiving.functions]\n"{ARN}" = "http://127.0.0.1:9/fn"\n')
    assert load(config_file=config, env={}).receiving.functions == {ARN: "http://127.0.0.1:9/fn"}


# -- Lambda's Invoke through botocore, at moto ------------------------------------------------------


@pytest.fixture(scope="module")
def moto_lambda() -> Iterator[str]:
    with moto_server() as endpoint:
        # moto runs functions in docker unless told not to; its "simple" Lambda answers queued results.
        httpx.post(f"{endpoint}/moto-api/config", json={"lambda": {"use_docker": False}}).raise_for_status()
        yield endpoint


def create_function(endpoint: str, name: str) -> str:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    role = session.client("iam", endpoint_url=endpoint).create_role(
        RoleName=f"role-{name}", AssumeRolePolicyDocument="{}", Path="/"
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    created = session.client("lambda", endpoint_url=endpoint).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )
    arn: str = created["FunctionArn"]
    return arn


def queue_result(endpoint: str, result: str) -> None:
    httpx.post(
        f"{endpoint}/moto-api/static/lambda-simple/response",
        json={"results": [result], "region": "us-east-1", "account_id": "123456789012"},
    ).raise_for_status()


def test_botocore_request_response_returns_the_result(moto_lambda: str) -> None:
    arn = create_function(moto_lambda, "Disposer")
    functions = Functions({}, AwsClients(AwsSettings(endpoints={"lambda": moto_lambda})))
    assert functions.reachable(arn)
    queue_result(moto_lambda, json.dumps({"disposition": "STOP_RULE_SET"}))
    result = asyncio.run(functions.invoke(arn, EVENT, invocation_type="RequestResponse"))
    assert disposition(result) == "STOP_RULE_SET"


def test_botocore_event_invocation_returns_nothing(moto_lambda: str) -> None:
    arn = create_function(moto_lambda, "Listener")
    functions = Functions({}, AwsClients(AwsSettings(endpoint_url=moto_lambda)))
    assert asyncio.run(functions.invoke(arn, EVENT, invocation_type="Event")) is None


def test_botocore_endpoint_down_is_a_retryable_failure() -> None:
    # (moto's docker-free Lambda answers even for functions that do not exist, so an endpoint that is
    # down stands for the failing call here.)
    down = f"http://127.0.0.1:{free_port()}"
    functions = Functions({}, AwsClients(AwsSettings(endpoints={"lambda": down})))
    with pytest.raises(FunctionFailed) as caught:
        asyncio.run(functions.invoke(ARN, EVENT, invocation_type="RequestResponse"))
    assert caught.value.retryable
