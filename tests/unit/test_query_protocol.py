"""The SES v1 query codec against botocore itself, over every operation of the ses model.

botocore's QuerySerializer builds the requests our parser must read back, and botocore's QueryParser
(and a real boto3 client) must read back the responses and errors we write.
"""

from __future__ import annotations

import datetime as dt
import random
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.model import ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from sesame.awsapi import errors
from sesame.awsapi.messages import AwsRequest, AwsResponse
from sesame.awsapi.protocols import query
from sesame.awsapi.spec import service_model
from sesame.testing.examples import example

SES = service_model("ses")
OPERATIONS = SES.operation_names
ENDPOINT = "https://email.us-east-1.amazonaws.com/"


def normalize(value: Any) -> Any:
    """Aware UTC datetimes and plain floats, so botocore's and our values compare by meaning."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, float):
        return round(value, 9)
    return value


_GONE: Any = object()


def on_the_wire(value: Any) -> Any:
    """What of ``value`` a query request can carry: an empty structure has no parameters at all.

    (examples.example() leaves a structure empty where all its members would recur, so botocore's
    validation is off below and such holes are expected to vanish.)
    """
    if isinstance(value, dict):
        kept = {k: v for k, v in ((k, on_the_wire(v)) for k, v in value.items()) if v is not _GONE}
        return kept or _GONE
    if isinstance(value, list) and value:
        kept = [v for v in map(on_the_wire, value) if v is not _GONE]
        return kept or _GONE
    return value


def expected_params(params: dict[str, Any]) -> dict[str, Any]:
    wire = on_the_wire(params)
    return {} if wire is _GONE else normalize(wire)


def botocore_request(op_name: str, params: dict[str, Any], model: ServiceModel = SES) -> AwsRequest:
    """The request botocore would send, url-encoded by its own AWSRequest, as the HTTP layer hands it on."""
    op = model.operation_model(op_name)
    built = create_serializer("query", include_validation=False).serialize_to_request(params, op)
    prepared = AWSRequest(method=built["method"], url=ENDPOINT, data=built["body"], headers=built["headers"])
    return to_aws_request(prepared.prepare())


def to_aws_request(prepared: AWSPreparedRequest) -> AwsRequest:
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    return AwsRequest(
        method=prepared.method,
        path=url.path or "/",
        raw_path=url.path or "/",
        query_string=url.query,
        headers={k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()},
        body=body.encode() if isinstance(body, str) else body,
    )


def form_request(
    body: bytes | str, query_string: str = "", method: str = "POST", **headers: str
) -> AwsRequest:
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", **headers}
    raw = body.encode() if isinstance(body, str) else body
    return AwsRequest(method, "/", "/", query_string, headers, raw)


def botocore_parse(resp: AwsResponse, shape: Any) -> dict[str, Any]:
    return create_parser("query").parse(
        {"status_code": resp.status, "headers": resp.headers, "body": resp.body}, shape
    )


# --------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", OPERATIONS)
def test_request_round_trip(name: str) -> None:
    op = SES.operation_model(name)
    params = example(op.input_shape)
    req = botocore_request(name, params)
    form = query.read_form(req)
    assert query.operation_name(form) == name
    assert normalize(query.parse(op, form)) == expected_params(params)
    # The same parameters in the query string of a GET (AWS accepts both) read the same.
    as_get = AwsRequest("GET", "/", "/", req.body.decode("latin-1"), {}, b"")
    assert normalize(query.parse(op, query.read_form(as_get))) == expected_params(params)


@pytest.mark.parametrize("name", OPERATIONS)
def test_response_round_trip(name: str) -> None:
    op = SES.operation_model(name)
    result = example(op.output_shape)
    resp = query.serialize(op, result, "req-1")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/xml"
    root = ET.fromstring(resp.body)
    assert root.tag == f"{{{query.XMLNS}}}{name}Response"
    parsed = botocore_parse(resp, op.output_shape)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    assert normalize(parsed) == normalize(result)


def test_members_absent_from_the_result_are_omitted_and_the_result_element_kept() -> None:
    op = SES.operation_model("GetSendQuota")
    resp = query.serialize(op, {"Max24HourSend": 200, "SentLast24Hours": None}, "r")
    assert b"<GetSendQuotaResult><Max24HourSend>200.0</Max24HourSend></GetSendQuotaResult>" in resp.body
    assert botocore_parse(resp, op.output_shape)["Max24HourSend"] == 200.0
    empty = query.serialize(SES.operation_model("DeleteIdentity"), {}, "r")
    assert b"<DeleteIdentityResult></DeleteIdentityResult>" in empty.body


def test_operation_without_output_shape_still_answers_response_metadata() -> None:
    op = SES.operation_model("VerifyEmailAddress")
    assert op.output_shape is None
    resp = query.serialize(op, {}, "req-7")
    assert resp.body.decode() == (
        f'<VerifyEmailAddressResponse xmlns="{query.XMLNS}"><ResponseMetadata><RequestId>req-7'
        "</RequestId></ResponseMetadata></VerifyEmailAddressResponse>"
    )
    parsed = botocore_parse(resp, None)
    assert list(parsed) == ["ResponseMetadata"]
    assert parsed["ResponseMetadata"]["RequestId"] == "req-7"


def test_text_is_escaped_and_survives_botocore() -> None:
    op = SES.operation_model("GetTemplate")
    html = '<p class="x">Tom & Jerry\'s</p>\r\n]]> \u00e9\U0001f600'
    resp = query.serialize(
        op, {"Template": {"TemplateName": "t", "HtmlPart": html, "TextPart": "a\x00b"}}, "r"
    )
    template = botocore_parse(resp, op.output_shape)["Template"]
    assert template["HtmlPart"] == html
    assert template["TextPart"] == "a\ufffdb"  # XML 1.0 cannot carry NUL at all


def test_timestamps_are_iso8601_utc_with_milliseconds() -> None:
    op = SES.operation_model("GetSendStatistics")
    when = dt.datetime(2026, 1, 2, 5, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    resp = query.serialize(op, {"SendDataPoints": [{"Timestamp": when, "Bounces": 3}]}, "r")
    assert b"<Timestamp>2026-01-02T03:04:05.678Z</Timestamp>" in resp.body
    assert b"<Bounces>3</Bounces>" in resp.body


# --------------------------------------------------------------------------------------------- errors

COMMON_ERRORS = [
    errors.InternalFailure,
    errors.ValidationError,
    errors.InvalidParameterValue,
    errors.InvalidParameterCombination,
    errors.MissingParameter,
    errors.MalformedQueryString,
    errors.MissingAction,
    errors.InvalidAction,
    errors.UnknownOperationException,
    errors.RequestEntityTooLarge,
    errors.Throttling,
    errors.MissingAuthenticationToken,
    errors.IncompleteSignature,
    errors.InvalidClientTokenId,
    errors.SignatureDoesNotMatch,
    errors.RequestExpired,
    errors.AccessDenied,
    query.MalformedInput,
]
ERROR_CLASSES = [*errors.service_errors("ses"), *COMMON_ERRORS]


@pytest.fixture(scope="module")
def client() -> Any:
    return boto3.client(
        "ses",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_error_round_trip(cls: type[errors.ServiceError], client: Any) -> None:
    resp = query.serialize_error(cls("Value <x> & 'y' is wrong."), "req-9")
    assert resp.status == cls.status
    parsed = botocore_parse(resp, None)
    assert parsed["Error"] == {
        "Type": "Sender" if cls.sender_fault else "Receiver",
        "Code": cls.code,
        "Message": "Value <x> & 'y' is wrong.",
    }
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"
    exc = client.exceptions.from_code(cls.code)
    if cls.__module__.endswith(".ses"):  # modeled: boto3 has the class of the same shape name
        assert exc.__name__ == cls.__name__
        assert exc is getattr(client.exceptions, cls.__name__)


def test_not_implemented_is_a_receiver_fault() -> None:
    resp = query.serialize_error(errors.NotImplementedOperation("ses", "CloneReceiptRuleSet"), "r")
    assert resp.status == 501
    error = botocore_parse(resp, None)["Error"]
    assert (error["Type"], error["Code"]) == ("Receiver", "NotImplemented")
    assert "CloneReceiptRuleSet" in error["Message"]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def answer_with(client: Any, handler: Any) -> None:
    """Route the boto3 client's requests through our codec instead of the network."""

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        resp = handler(to_aws_request(request))
        return AWSResponse(request.url, resp.status, resp.headers, _Raw(resp.body))

    client.meta.events.register("before-send.ses", before_send)


def test_boto3_client_end_to_end() -> None:
    client = boto3.client(
        "ses", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret"
    )
    seen: list[dict[str, Any]] = []

    def handler(req: AwsRequest) -> AwsResponse:
        form = query.read_form(req)
        op = SES.operation_model(query.operation_name(form))
        seen.append(query.parse(op, form))
        if op.name == "CreateTemplate":
            err = errors.service_errors("ses").AlreadyExistsException("Template t already exists.", Name="t")
            return query.serialize_error(err, "req-e")
        return query.serialize(op, {"MessageId": "m-1"}, "req-2")

    answer_with(client, handler)
    out = client.send_email(
        Source="a@b.com",
        Destination={"ToAddresses": ["c@d.com", "e@f.com"]},
        Message={"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Yo & <3"}}},
        Tags=[{"Name": "k", "Value": "v"}],
    )
    assert out["MessageId"] == "m-1"
    assert out["ResponseMetadata"]["RequestId"] == "req-2"
    assert seen[0]["Destination"] == {"ToAddresses": ["c@d.com", "e@f.com"]}
    assert seen[0]["Message"]["Body"]["Text"]["Data"] == "Yo & <3"
    with pytest.raises(client.exceptions.AlreadyExistsException) as caught:
        client.create_template(Template={"TemplateName": "t", "SubjectPart": "s"})
    assert caught.value.response["Error"]["Code"] == "AlreadyExists"
    assert caught.value.response["Error"]["Message"] == "Template t already exists."
    assert caught.value.response["Name"] == "t"


# ------------------------------------------------------------------------------------------ bad input


def test_real_world_request_parses_to_the_nested_dict() -> None:
    body = (
        "Action=SendEmail&Source=a%40b.com&Destination.ToAddresses.member.1=c%40d.com"
        "&Message.Subject.Data=Hi&Message.Body.Text.Data=Yo&Version=2010-12-01"
    )
    form = query.read_form(form_request(body))
    assert query.operation_name(form) == "SendEmail"
    assert query.parse(SES.operation_model("SendEmail"), form) == {
        "Source": "a@b.com",
        "Destination": {"ToAddresses": ["c@d.com"]},
        "Message": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Yo"}}},
    }


def test_query_string_and_body_merge_and_the_body_wins() -> None:
    req = form_request("Source=body%40x.com&Version=2010-12-01", "Action=SendEmail&Source=qs%40x.com")
    form = query.read_form(req)
    assert form["Action"] == "SendEmail"
    assert form["Source"] == "body@x.com"


def test_form_decoding_details() -> None:
    form = query.read_form(form_request("A=x+y%2Bz&B=&C&D=%C3%A9t%C3%A9&E=caf\u00e9".encode()))
    assert form == {"A": "x y+z", "B": "", "C": "", "D": "\u00e9t\u00e9", "E": "caf\u00e9"}
    # A body without Content-Type is read as a form; a GET's body is not read at all.
    assert query.read_form(AwsRequest("POST", "/", "/", "", {}, b"Action=GetSendQuota")) == {
        "Action": "GetSendQuota"
    }
    assert query.read_form(AwsRequest("GET", "/", "/", "", {}, b"Action=GetSendQuota")) == {}


def test_unknown_members_are_ignored_and_list_order_is_numeric() -> None:
    op = SES.operation_model("GetIdentityVerificationAttributes")
    form = {f"Identities.member.{i}": f"id{i}" for i in (10, 2, 1, 9)}
    form.update({"Bogus": "1", "Identities.member.x": "no", "X-Amz-Date": "20260101T000000Z"})
    assert query.parse(op, form) == {"Identities": ["id1", "id2", "id9", "id10"]}


def test_leading_zeros_still_convert() -> None:
    op = SES.operation_model("ListIdentities")
    assert query.parse(op, {"MaxItems": "0" * 40 + "12"}) == {"MaxItems": 12}


def test_a_flood_of_parameters_is_refused_before_it_is_decoded() -> None:
    body = b"Action=SendEmail&" + b"&".join(b"P%d=1" % i for i in range(1_000_000))
    with pytest.raises(errors.ValidationError, match=f"more than {query.MAX_PARAMETERS} parameters"):
        query.read_form(form_request(body))
    # The cap counts the query string and the body together.
    half = "&".join(f"Q{i}=1" for i in range(query.MAX_PARAMETERS // 2 + 1))
    with pytest.raises(errors.ValidationError):
        query.read_form(form_request(half.encode(), half))


def test_the_largest_honest_request_fits_under_the_cap() -> None:
    tags = [{"Name": f"n{j}", "Value": "v"} for j in range(50)]
    destination = {
        "Destination": {"ToAddresses": [f"to{j}@example.com" for j in range(50)]},
        "ReplacementTags": tags,
        "ReplacementTemplateData": "{}",
    }
    params = {
        "Source": "a@example.com",
        "Template": "t",
        "DefaultTemplateData": "{}",
        "DefaultTags": tags,
        "Destinations": [destination] * 50,
    }
    form = query.read_form(botocore_request("SendBulkTemplatedEmail", params))
    assert len(form) < query.MAX_PARAMETERS
    parsed = query.parse(SES.operation_model("SendBulkTemplatedEmail"), form)
    assert len(parsed["Destinations"]) == 50
    assert parsed["Destinations"][49]["ReplacementTags"][49] == {"Name": "n49", "Value": "v"}


def test_names_the_model_does_not_know_never_enter_the_parse() -> None:
    op = SES.operation_model("SendEmail")
    form = {f"Junk{i}.a.b.c": "x" for i in range(1000)}
    form.update({f"Destination.ToAddresses.member.{i}.deeper": "x" for i in range(1, 1000)})
    form.update({"Destination.ToAddresses.member.1": "a@b.com", "Source.member.1": "x"})
    form.update({"Destination.ToAddresses.member.1234567": "too@far.com", "Tags.member.1.Bogus": "x"})
    assert query.parse(op, form) == {"Destination": {"ToAddresses": ["a@b.com"]}}


def test_empty_list_as_botocore_sends_it() -> None:
    req = botocore_request("GetIdentityVerificationAttributes", {"Identities": []})
    op = SES.operation_model("GetIdentityVerificationAttributes")
    assert query.parse(op, query.read_form(req)) == {"Identities": []}


def test_scalar_conversions() -> None:
    bounce = SES.operation_model("SendBounce")
    ts = "MessageDsn.ArrivalDate"
    utc = dt.datetime(2026, 11, 23, 12, 30, 45, tzinfo=dt.UTC)
    for text in ("2026-11-23T12:30:45Z", "2026-11-23T14:30:45+02:00", "1795437045", "2026-11-23T12:30:45"):
        assert query.parse(bounce, {ts: text})["MessageDsn"]["ArrivalDate"] == utc
    enabled = SES.operation_model("UpdateAccountSendingEnabled")
    assert query.parse(enabled, {"Enabled": "false"}) == {"Enabled": False}
    assert query.parse(enabled, {"Enabled": "True"}) == {"Enabled": True}
    raw = SES.operation_model("SendRawEmail")
    assert query.parse(raw, {"RawMessage.Data": "SGk="}) == {"RawMessage": {"Data": b"Hi"}}
    assert query.parse(raw, {"RawMessage.Data": "SGVs\r\nbG8="}) == {"RawMessage": {"Data": b"Hello"}}


def test_missing_action() -> None:
    with pytest.raises(errors.MissingAction):
        query.operation_name(query.read_form(form_request("Version=2010-12-01")))
    with pytest.raises(errors.MissingAction):
        query.operation_name({"Action": ""})


def test_unknown_action_and_unknown_version_use_ses_wording() -> None:
    with pytest.raises(errors.InvalidAction) as caught:
        query.operation_name({"Action": "SendRawEmailAsync", "Version": "2010-12-01"})
    assert caught.value.message == "Could not find operation SendRawEmailAsync for version 2010-12-01"
    with pytest.raises(errors.InvalidAction, match="GetSendQuota for version 2009-10-16"):
        query.operation_name({"Action": "GetSendQuota", "Version": "2009-10-16"})
    with pytest.raises(errors.InvalidAction):
        query.operation_name({"Action": "sendemail"})  # actions are case-sensitive, as at AWS
    assert query.operation_name({"Action": "SendEmail"}) == "SendEmail"  # Version may be left out


@pytest.mark.parametrize(
    "body, query_string",
    [
        (b"Action=SendEmail&Source=%ff", ""),
        (b"Action=SendEmail&Source=caf\xe9", ""),
        (b"Action=SendEmail&Source=a%zzb", ""),
        (b"Action=SendEmail&Source=a%4", ""),
        (b"Action=SendEmail&Source=50%", ""),
        (b"", "Action=SendEmail&Source=%e9"),
        (b"", "Action=SendEmail&Source=%G1"),
    ],
)
def test_malformed_form_encoding(body: bytes, query_string: str) -> None:
    with pytest.raises(errors.MalformedQueryString) as caught:
        query.read_form(form_request(body, query_string))
    assert query.serialize_error(caught.value, "r").status == 404


def test_json_body_is_not_a_form() -> None:
    req = form_request(b'{"Action": "SendEmail"}', **{"content-type": "application/json"})
    with pytest.raises(errors.UnknownOperationException, match="application/json"):
        query.read_form(req)


@pytest.mark.parametrize(
    "name, form, message",
    [
        ("ListIdentities", {"MaxItems": "abc"}, "Invalid integer value 'abc' for parameter MaxItems."),
        ("ListIdentities", {"MaxItems": "2147483648"}, "parameter MaxItems"),
        ("ListIdentities", {"MaxItems": "1.5"}, "parameter MaxItems"),
        ("ListIdentities", {"MaxItems": "1_000"}, "parameter MaxItems"),
        # More digits than Python converts at all (4,300): once a bare ValueError, answered as a 500.
        ("ListIdentities", {"MaxItems": "9" * 5000}, "parameter MaxItems"),
        ("ListIdentities", {"MaxItems": "0" * 5000 + "1" * 20}, "parameter MaxItems"),
        ("UpdateAccountSendingEnabled", {"Enabled": "yes"}, "Invalid boolean value 'yes'"),
        ("SendRawEmail", {"RawMessage.Data": "not base64!"}, "Invalid Base64 encoding"),
        ("SendRawEmail", {"RawMessage.Data": "SGk"}, "Invalid Base64 encoding"),
        ("SendBounce", {"MessageDsn.ArrivalDate": "yesterday"}, "parameter MessageDsn.ArrivalDate"),
        (
            "SendBounce",
            {"BouncedRecipientInfoList.member.2.RecipientDsnFields.LastAttemptDate": "2026-13-01"},
            "parameter BouncedRecipientInfoList.member.2.RecipientDsnFields.LastAttemptDate",
        ),
    ],
)
def test_values_that_do_not_convert(name: str, form: dict[str, str], message: str) -> None:
    with pytest.raises(query.MalformedInput) as caught:
        query.parse(SES.operation_model(name), form)
    assert message in caught.value.message
    assert botocore_parse(query.serialize_error(caught.value, "r"), None)["Error"]["Code"] == "MalformedInput"


def test_hostile_input_never_escapes_as_a_bare_exception() -> None:
    rng = random.Random(7)
    keys = [
        "Destination", "Destination.ToAddresses", "Destination.ToAddresses.member",
        "Destination.ToAddresses.member.1.x", "Destination.ToAddresses.member.-1", "Tags.member.1",
        "Tags.member.1.Name.Extra", "Message..Subject", ".", "", "Destinations.member.1.Destination",
        "Destinations.member.\u0661", "RawMessage.Data", "MaxItems", "Rule.Actions.member.1.S3Action",
        "Template.TemplateName.member.1", "Identities.member.99999999999999999999",
    ]  # fmt: skip
    values = ["", "x", "%25", "abc", "true", "9" * 30, "\u00e9", "SGk=", "2026-01-01T00:00:00Z"]
    targets = ["SendEmail", "SendBulkTemplatedEmail", "SendRawEmail", "CreateReceiptRule", "ListIdentities"]
    parsed = 0
    for _ in range(500):
        name = rng.choice([*targets, rng.choice(OPERATIONS)])
        pairs = [f"{rng.choice(keys)}={rng.choice(values)}" for _ in range(rng.randint(0, 6))]
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        body = "&".join([f"Action={name}", *pairs]).encode() + rng.choice([b"", b"", b"&" + junk])
        try:
            form = query.read_form(form_request(body))
            result = query.parse(SES.operation_model(query.operation_name(form)), form)
        except errors.ServiceError:
            continue
        assert isinstance(result, dict)
        parsed += 1
    assert parsed > 200  # the loop exercised parse, not only the form decoder


# ------------------------------------------------------- model traits SES does not use (but may one day)

TRAITS_MODEL = ServiceModel(
    {
        "version": "2.0",
        "metadata": {
            "apiVersion": "2010-12-01",
            "endpointPrefix": "traits",
            "protocol": "query",
            "serviceId": "Traits",
            "signatureVersion": "v4",
            "xmlNamespace": "http://traits/",
            "uid": "traits-2010-12-01",
        },
        "operations": {
            "Op": {
                "name": "Op",
                "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "Shapes"},
                "output": {"shape": "Shapes", "resultWrapper": "OpResult"},
            }
        },
        "shapes": {
            "Shapes": {
                "type": "structure",
                "members": {
                    "Flat": {"shape": "FlatList"},
                    "Renamed": {"shape": "Str", "locationName": "Other"},
                    "Attrs": {"shape": "FlatMap"},
                    "Plain": {"shape": "StrMap"},
                    "Named": {"shape": "NamedList"},
                    "Nested": {"shape": "NestedList"},
                    "When": {"shape": "Ts"},
                    "Ratio": {"shape": "Dbl"},
                    "Big": {"shape": "Lng"},
                },
            },
            "FlatList": {
                "type": "list",
                "member": {"shape": "Str", "locationName": "Item"},
                "flattened": True,
            },
            "NamedList": {"type": "list", "member": {"shape": "Str", "locationName": "Thing"}},
            "NestedList": {"type": "list", "member": {"shape": "NamedList"}},
            "FlatMap": {
                "type": "map",
                "flattened": True,
                "key": {"shape": "Str", "locationName": "Name"},
                "value": {"shape": "Str", "locationName": "Val"},
            },
            "StrMap": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Lng"}},
            "Str": {"type": "string"},
            "Ts": {"type": "timestamp"},
            "Dbl": {"type": "double"},
            "Lng": {"type": "long"},
        },
    },
    service_name="traits",
)


@pytest.mark.parametrize("size", [1, 3])
def test_flattened_and_renamed_members_round_trip(size: int) -> None:
    op = TRAITS_MODEL.operation_model("Op")
    params = {
        "Flat": [f"f{i}" for i in range(size)],
        "Renamed": "r",
        "Attrs": {f"k{i}": f"v{i}" for i in range(size)},
        "Plain": {f"p{i}": 2**40 + i for i in range(size)},
        "Named": [f"n{i}" for i in range(size)],
        "Nested": [[f"a{i}", "b"] for i in range(size)],
        "When": dt.datetime(2026, 11, 23, 12, 30, 45, 120000, tzinfo=dt.UTC),
        "Ratio": 0.25,
        "Big": -(2**62),
    }
    form = query.read_form(botocore_request("Op", params, TRAITS_MODEL))
    assert "Item.1" in form and "Other" in form and "Attrs.1.Name" in form
    assert normalize(query.parse(op, form)) == normalize(params)
    resp = query.serialize(op, params, "req-t")
    parsed = botocore_parse(resp, op.output_shape)
    parsed.pop("ResponseMetadata")
    assert normalize(parsed) == normalize(params)
