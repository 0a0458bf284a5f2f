"""The SES v2 REST-JSON codec against botocore itself, over every operation of the sesv2 model.

botocore's RestJSONSerializer builds the requests our router and parser must read back, and botocore's
RestJSONParser (and a real boto3 client) must read back the responses and errors we write.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse, prepare_request_dict
from botocore.config import Config
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from sesame.awsapi import errors
from sesame.awsapi.messages import AwsRequest, AwsResponse
from sesame.awsapi.protocols import rest_json
from sesame.awsapi.spec import service_model
from sesame.testing.examples import example

SESV2 = service_model("sesv2")
OPERATIONS = SESV2.operation_names
ENDPOINT = "https://email.us-east-1.amazonaws.com"


def normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, float):
        return round(value, 9)
    return value


def to_aws_request(prepared: AWSPreparedRequest) -> AwsRequest:
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    return AwsRequest(
        method=prepared.method,
        path=unquote(url.path),
        raw_path=url.path,
        query_string=url.query,
        headers={k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()},
        body=body.encode() if isinstance(body, str) else body,
    )


def botocore_request(op_name: str, params: dict[str, Any]) -> AwsRequest:
    op = SESV2.operation_model(op_name)
    built = create_serializer("rest-json", include_validation=False).serialize_to_request(params, op)
    prepare_request_dict(built, ENDPOINT)
    prepared = AWSRequest(
        method=built["method"], url=built["url"], data=built["body"], headers=built["headers"]
    )
    return to_aws_request(prepared.prepare())


def route_and_parse(req: AwsRequest) -> tuple[str, dict[str, Any]]:
    op, labels = rest_json.router.match(req.method, req.raw_path)
    return op.name, rest_json.parse(op, req, labels)


def botocore_parse(resp: AwsResponse, shape: Any) -> dict[str, Any]:
    return create_parser("rest-json").parse(
        # HTTP header names are case-insensitive; botocore reads them lower-cased, as urllib3 hands them.
        {
            "status_code": resp.status,
            "headers": {k.lower(): v for k, v in resp.headers.items()},
            "body": resp.body,
        },
        shape,
    )


# --------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", OPERATIONS)
def test_request_round_trip(name: str) -> None:
    op = SESV2.operation_model(name)
    params = example(op.input_shape)
    parsed_name, parsed = route_and_parse(botocore_request(name, params))
    assert parsed_name == name
    assert normalize(parsed) == normalize(params)


@pytest.mark.parametrize("name", OPERATIONS)
def test_response_round_trip(name: str) -> None:
    op = SESV2.operation_model(name)
    result = example(op.output_shape)
    resp = rest_json.serialize(op, result, "req-1")
    assert resp.status == int(op.http.get("responseCode", 200))
    assert resp.headers["x-amzn-RequestId"] == "req-1"
    parsed = botocore_parse(resp, op.output_shape)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    assert normalize(parsed) == normalize(result)


@pytest.mark.parametrize(
    "label",
    ["user@example.com", "a/b c+d%e?&#", "\u00e9l\u00e8ve@\u00e9cole.example", "x" * 300],
)
def test_labels_survive_percent_encoding(label: str) -> None:
    name, params = route_and_parse(botocore_request("GetEmailIdentity", {"EmailIdentity": label}))
    assert (name, params) == ("GetEmailIdentity", {"EmailIdentity": label})
    name, params = route_and_parse(
        botocore_request("DeleteEmailIdentityPolicy", {"EmailIdentity": label, "PolicyName": "p/1"})
    )
    assert (name, params) == ("DeleteEmailIdentityPolicy", {"EmailIdentity": label, "PolicyName": "p/1"})


def test_literal_segments_win_over_labels() -> None:
    # "/v2/email/suppression/addresses" is a list, "/v2/email/suppression/addresses/{EmailAddress}" a get.
    assert rest_json.router.match("GET", "/v2/email/suppression/addresses")[0].name == (
        "ListSuppressedDestinations"
    )
    op, labels = rest_json.router.match("GET", "/v2/email/suppression/addresses/a%40b.c")
    assert (op.name, labels) == ("GetSuppressedDestination", {"EmailAddress": "a@b.c"})


def test_query_string_members_convert() -> None:
    start = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    params = {"Reasons": ["BOUNCE", "COMPLAINT"], "StartDate": start, "PageSize": 20, "NextToken": "t k"}
    name, parsed = route_and_parse(botocore_request("ListSuppressedDestinations", params))
    assert name == "ListSuppressedDestinations"
    assert normalize(parsed) == params


@pytest.mark.parametrize(
    ("method", "path", "query", "name"),
    [
        ("GET", "/v2/email/configuration-sets", "NextToken=abc&PageSize=5", "ListConfigurationSets"),
        ("GET", "/v2/email/identities", "PageSize=7", "ListEmailIdentities"),
        ("GET", "/v2/email/identities/", "", "ListEmailIdentities"),
    ],
)
def test_legacy_list_routes(method: str, path: str, query: str, name: str) -> None:
    """botocore before 1.44 (and SDKs of that model generation) list with GET and query parameters."""
    req = AwsRequest(method, path, path, query, {}, b"")
    op, labels = rest_json.router.match(method, path)
    assert op.name == name
    parsed = rest_json.parse(op, req, labels)
    expected: dict[str, Any] = {}
    if "NextToken" in query:
        expected["NextToken"] = "abc"
    if "PageSize" in query:
        expected["PageSize"] = int(query.rsplit("=", 1)[1])
    assert parsed == expected


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/email/no-such-thing"),
        ("PATCH", "/v2/email/account"),
        ("GET", "/v2/email/identities/a/b/c/d"),
        ("GET", "/v2/email/identities//policies"),
        ("GET", "/v2/"),
    ],
)
def test_unknown_routes(method: str, path: str) -> None:
    with pytest.raises(errors.UnknownOperationException):
        rest_json.router.match(method, path)


def json_request(op_name: str, body: bytes, ctype: str = "application/json", query: str = "") -> AwsRequest:
    op = SESV2.operation_model(op_name)
    path = op.http["requestUri"]
    return AwsRequest(op.http["method"], path, path, query, {"content-type": ctype}, body)


@pytest.mark.parametrize(
    "body",
    [b"{", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"a": ' * 100_000],
    ids=["truncated", "text", "array", "string", "not-utf8", "deep"],
)
def test_bodies_that_are_not_a_json_object(body: bytes) -> None:
    req = json_request("PutAccountDetails", body)
    with pytest.raises(errors.SerializationException):
        rest_json.parse(SESV2.operation_model("PutAccountDetails"), req, {})


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("MailType", 7),
        ("ProductionAccessEnabled", "yes"),
        ("AdditionalContactEmailAddresses", "a@b.c"),
        ("AdditionalContactEmailAddresses", [1]),
        ("WebsiteURL", {"a": 1}),
    ],
)
def test_json_values_of_the_wrong_type(member: str, value: Any) -> None:
    req = json_request("PutAccountDetails", json.dumps({member: value}).encode())
    with pytest.raises(errors.SerializationException, match=member):
        rest_json.parse(SESV2.operation_model("PutAccountDetails"), req, {})


def test_bad_base64_and_bad_query_values() -> None:
    body = json.dumps({"Content": {"Raw": {"Data": "***"}}}).encode()
    with pytest.raises(errors.SerializationException, match="Base64"):
        rest_json.parse(SESV2.operation_model("SendEmail"), json_request("SendEmail", body), {})
    req = json_request("ListSuppressedDestinations", b"", query="PageSize=many")
    with pytest.raises(errors.MalformedInput, match="PageSize"):
        rest_json.parse(SESV2.operation_model("ListSuppressedDestinations"), req, {})
    req = json_request("ListSuppressedDestinations", b"", query="StartDate=yesterday")
    with pytest.raises(errors.MalformedInput, match="StartDate"):
        rest_json.parse(SESV2.operation_model("ListSuppressedDestinations"), req, {})


def test_form_body_is_an_unsupported_media_type() -> None:
    req = json_request("PutAccountDetails", b"MailType=MARKETING", "application/x-www-form-urlencoded")
    with pytest.raises(errors.UnsupportedMediaType):
        rest_json.parse(SESV2.operation_model("PutAccountDetails"), req, {})


def test_missing_content_type_reads_json_and_unknown_members_are_ignored() -> None:
    req = json_request("PutAccountDetails", b'{"MailType": "MARKETING", "Bogus": 1}', ctype="")
    assert rest_json.parse(SESV2.operation_model("PutAccountDetails"), req, {}) == {"MailType": "MARKETING"}


# ------------------------------------------------------------------------------------------- errors

COMMON_ERRORS = [
    errors.InternalFailure,
    errors.UnknownOperationException,
    errors.SerializationException,
    errors.UnsupportedMediaType,
    errors.RequestEntityTooLarge,
    errors.MalformedInput,
    errors.MissingAuthenticationToken,
    errors.InvalidClientTokenId,
    errors.SignatureDoesNotMatch,
    errors.IncompleteSignature,
]
ERROR_CLASSES = [*errors.service_errors("sesv2"), *COMMON_ERRORS]


@pytest.fixture(scope="module")
def client() -> Any:
    return boto3.client(
        "sesv2",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_error_round_trip(cls: type[errors.ServiceError], client: Any) -> None:
    resp = rest_json.serialize_error(cls('Value <x> & "y" is wrong.'), "req-9")
    assert resp.status == cls.status
    parsed = botocore_parse(resp, None)
    assert parsed["Error"]["Code"] == cls.code
    assert parsed["Error"]["Message"] == 'Value <x> & "y" is wrong.'
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"
    if cls.__module__.endswith(".sesv2"):  # modeled: boto3 has the class of the same shape name
        assert client.exceptions.from_code(cls.code) is getattr(client.exceptions, cls.__name__)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_boto3_client_end_to_end(client: Any) -> None:
    """A real boto3 client, its requests answered by our router and codec instead of the network."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        req = to_aws_request(request)
        try:
            op, labels = rest_json.router.match(req.method, req.raw_path)
            seen.append((op.name, rest_json.parse(op, req, labels)))
            if op.name == "GetEmailIdentity":
                raise errors.service_errors("sesv2").NotFoundException("Identity x does not exist.")
            resp = rest_json.serialize(op, {"SendingEnabled": True, "EnforcementStatus": "HEALTHY"}, "r-1")
        except errors.ServiceError as err:
            resp = rest_json.serialize_error(err, "r-2")
        return AWSResponse(request.url, resp.status, resp.headers, _Raw(resp.body))

    client.meta.events.register("before-send.sesv2", before_send)
    account = client.get_account()
    assert (account["SendingEnabled"], account["EnforcementStatus"]) == (True, "HEALTHY")
    client.put_account_details(MailType="TRANSACTIONAL", WebsiteURL="https://example.com")
    with pytest.raises(client.exceptions.NotFoundException, match="does not exist"):
        client.get_email_identity(EmailIdentity="x@example.com")
    assert seen == [
        ("GetAccount", {}),
        ("PutAccountDetails", {"MailType": "TRANSACTIONAL", "WebsiteURL": "https://example.com"}),
        ("GetEmailIdentity", {"EmailIdentity": "x@example.com"}),
    ]
