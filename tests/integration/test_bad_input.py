"""Bad input over real HTTP: each gets an AWS-shaped 4xx in its protocol, never a 500 or a hang.

Raw httpx requests to a running ``sesame dev`` (which takes unsigned requests) with a small body limit,
so that "too large" is cheap to send. After every case the server still answers a good request.
"""

from __future__ import annotations

import json
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sesame.testing.servers import SesameProcess
from tests.conftest import client

LIMIT = 64 * 1024
XMLNS = "{http://ses.amazonaws.com/doc/2010-12-01/}"
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def sesame(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SesameProcess]:
    env = {"SESAME_MAX_REQUEST_BYTES": str(LIMIT)}
    data_dir: Path = tmp_path_factory.mktemp("bad-input")
    with SesameProcess("dev", data_dir=data_dir, database=module_database, env=env) as proc:
        yield proc


@pytest.fixture
def http(sesame: SesameProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sesame.endpoint, timeout=10) as c:
        yield c
    # Whatever the case sent, the server is still healthy and still speaks SES.
    assert client("ses", sesame.endpoint).get_send_quota()["Max24HourSend"] == -1.0


def v1_error(resp: httpx.Response) -> tuple[int, str]:
    """(status, code) of an SES v1 ErrorResponse, checking its shape on the way."""
    assert resp.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(resp.content)
    assert root.tag == f"{XMLNS}ErrorResponse"
    error = root.find(f"{XMLNS}Error")
    assert error is not None
    assert error.findtext(f"{XMLNS}Type") in ("Sender", "Receiver")
    assert error.findtext(f"{XMLNS}Message")
    assert root.findtext(f"{XMLNS}RequestId")
    return resp.status_code, error.findtext(f"{XMLNS}Code") or ""


def v2_error(resp: httpx.Response) -> tuple[int, str]:
    """(status, code) of an SES v2 error: the code in x-amzn-ErrorType, a JSON body with a message."""
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-amzn-requestid"]
    assert isinstance(resp.json()["message"], str)
    return resp.status_code, resp.headers["x-amzn-errortype"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"Action=GetSendQuota&Version=2010-12-01&Bad=%zz", (404, "MalformedQueryString")),
        (b"Action=GetSendQuota&Version=2010-12-01&Bad=%ff%fe", (404, "MalformedQueryString")),
        (b"Action=NoSuchThing&Version=2010-12-01", (400, "InvalidAction")),
        (b"Action=GetSendQuota&Version=2001-01-01", (400, "InvalidAction")),
        (b"Version=2010-12-01", (400, "MissingAction")),
        (b"Action=SendRawEmail&Version=2010-12-01&RawMessage.Data=***", (400, "MalformedInput")),
        (b"Action=SendRawEmail&Version=2010-12-01", (400, "ValidationError")),
        (
            b"Action=SendBounce&OriginalMessageId=m&BounceSender=a%40example.com"
            b"&BouncedRecipientInfoList.member.1.Recipient=b%40example.com",
            (400, "MessageRejected"),
        ),
    ],
    ids=[
        "bad-escape",
        "not-utf8",
        "unknown-action",
        "unknown-version",
        "no-action",
        "bad-base64",
        "missing-required",
        "unknown-original",
    ],
)
def test_v1_bad_forms(http: httpx.Client, body: bytes, expected: tuple[int, str]) -> None:
    assert v1_error(http.post("/", content=body, headers=FORM)) == expected


def test_v1_malformed_query_string_on_get(http: httpx.Client) -> None:
    assert v1_error(http.get("/?Action=GetSendQuota&x=%G0")) == (404, "MalformedQueryString")


def test_v1_wrong_content_type(http: httpx.Client) -> None:
    resp = http.post("/", content=b'{"Action": "GetSendQuota"}', headers=JSON)
    assert v1_error(resp) == (404, "UnknownOperationException")


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "expected"),
    [
        ("PUT", "/v2/email/account/sending", b"{not json", JSON, (400, "SerializationException")),
        (
            "PUT",
            "/v2/email/account/sending",
            b'{"SendingEnabled": "yes"}',
            JSON,
            (400, "SerializationException"),
        ),
        ("PUT", "/v2/email/account/sending", b"[" * 50_000, JSON, (400, "SerializationException")),
        (
            "POST",
            "/v2/email/account/details",
            b"MailType=MARKETING",
            FORM,
            (415, "UnsupportedMediaTypeException"),
        ),
        ("POST", "/v2/email/account/details", b"{}", JSON, (400, "BadRequestException")),
        (
            "POST",
            "/v2/email/account/details",
            b'{"MailType": "SPAM", "WebsiteURL": "x"}',
            JSON,
            (400, "BadRequestException"),
        ),
        ("GET", "/v2/email/no-such-resource", b"", {}, (404, "UnknownOperationException")),
        ("PATCH", "/v2/email/account", b"", {}, (404, "UnknownOperationException")),
        ("GET", "/v2/email/suppression/addresses?PageSize=lots", b"", {}, (400, "MalformedInput")),
    ],
    ids=[
        "invalid-json",
        "wrong-type",
        "deep-nesting",
        "form-body",
        "missing-required",
        "bad-enum",
        "unknown-path",
        "unknown-method",
        "bad-query-value",
    ],
)
def test_v2_bad_requests(
    http: httpx.Client,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    expected: tuple[int, str],
) -> None:
    assert v2_error(http.request(method, path, content=body, headers=headers)) == expected


def test_bodies_over_the_limit(http: httpx.Client) -> None:
    big = b"Action=GetSendQuota&Pad=" + b"x" * LIMIT
    assert v1_error(http.post("/", content=big, headers=FORM)) == (413, "RequestEntityTooLarge")
    big_json = b'{"MailType": "' + b"x" * LIMIT + b'"}'
    resp = http.post("/v2/email/account/details", content=big_json, headers=JSON)
    assert v2_error(resp) == (413, "RequestEntityTooLarge")


def test_chunked_body_over_the_limit_without_content_length(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"Action=GetSendQuota&Pad="
        for _ in range(LIMIT // 4096 + 2):
            yield b"x" * 4096

    resp = http.post("/", content=chunks(), headers=FORM)
    assert v1_error(resp) == (413, "RequestEntityTooLarge")


def test_huge_headers(http: httpx.Client, sesame: SesameProcess) -> None:
    resp = http.get("/v2/email/account", headers={"x-padding": "p" * 32 * 1024})
    assert v2_error(resp) == (400, "RequestHeaderSectionTooLarge")
    resp = http.post("/", content=b"Action=GetSendQuota", headers={**FORM, "x-padding": "p" * 32 * 1024})
    assert v1_error(resp) == (400, "RequestHeaderSectionTooLarge")
    # Past the HTTP parser's own bound (64 KB), the connection gets a 4xx and is closed, at once.
    host, port = sesame.listeners["http"]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"GET /v2/email/account HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * 200_000 + b"\r\n\r\n"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 4")


def test_header_lines_that_never_end_are_cut_off(sesame: SesameProcess) -> None:
    """A slowloris streaming header lines forever is answered 4xx and closed once past 64 KB."""
    host, port = sesame.listeners["http"]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /v2/email/account HTTP/1.1\r\nHost: x\r\n")
        for i in range(200):  # 200 KB at most
            try:
                sock.sendall(b"X-Line-%d: %s\r\n" % (i, b"p" * 1000))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.001)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 4")


def test_garbage_instead_of_http(sesame: SesameProcess) -> None:
    host, port = sesame.listeners["http"]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400") or answer == b""


def test_truncated_body_does_not_hang_the_server(sesame: SesameProcess) -> None:
    host, port = sesame.listeners["http"]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nAction=Get")
    # The client went away mid-body; the next requests are served as usual (the fixture checks).
    assert json.loads(httpx.get(sesame.endpoint + "/health").content)["status"] == "ok"
