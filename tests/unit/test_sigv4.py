"""SigV4 verification against botocore's own signer: what botocore signs, Sesame must accept, byte for byte.

Requests are signed with botocore.auth.SigV4Auth / SigV4QueryAuth, prepared, then converted to the
AwsRequest an HTTP server would hand us (raw path, decoded path, raw query, lower-cased headers with the
Host header the HTTP client adds, body). Nothing touches the network.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

from sesame.awsapi import errors, sigv4
from sesame.awsapi.messages import AwsRequest

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENDPOINT = "http://127.0.0.1:4566"
T0 = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
MISMATCH = sigv4.MSG_MISMATCH


def to_aws_request(prepared: AWSPreparedRequest) -> AwsRequest:
    """What an HTTP server sees: urllib3 adds Host from the URL; servers strip header whitespace."""
    parts = urlsplit(prepared.url)
    headers = {
        name.lower(): (value.decode() if isinstance(value, bytes) else value).strip()
        for name, value in prepared.headers.items()
    }
    headers.setdefault("host", parts.netloc)
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else bytes(body)
    return AwsRequest(prepared.method, unquote(parts.path), parts.path, parts.query, headers, body)


def sign(
    method: str,
    path_and_query: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    region: str = "us-east-1",
    service: str = "ses",
    presign: int | None = None,
    signer: type = SigV4Auth,
    at: datetime.datetime = T0,
) -> AwsRequest:
    request = AWSRequest(method, ENDPOINT + path_and_query, headers=headers or {}, data=body, params=params)
    credentials = Credentials(KEY_ID, SECRET)
    if presign is not None:
        auth = (SigV4QueryAuth if signer is SigV4Auth else signer)(
            credentials, service, region, expires=presign
        )
    else:
        auth = signer(credentials, service, region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        auth.add_auth(request)
    return to_aws_request(request.prepare())


def check(req: AwsRequest, secret: str = SECRET, now: datetime.datetime = T0) -> sigv4.SignedRequest:
    signed = sigv4.parse(req)
    sigv4.verify(req, signed, secret, now=now)
    return signed


def rejected(req: AwsRequest, cls: type[errors.ServiceError], **kwargs: Any) -> str:
    with pytest.raises(cls) as caught:
        check(req, **kwargs)
    assert caught.value.code == cls.code
    return caught.value.message


# --- valid signatures ------------------------------------------------------------------------------

TRICKY_PATHS = [
    "/v2/email/identities/user%40example.com",  # SES v2 label with '@'
    "/v2/email/identities/a%2Bb%40example.com",  # '+' and '@'
    "/v2/email/templates/100%25%20off",  # '%' and a space
    "/v2/email/templates/%C3%BCnic%C3%B8de%E2%9C%93",  # UTF-8
    "/v2/email/templates/tilde~and-dash_dot.",
    "/v2/email//identities/./x/../y",  # dot segments and an empty segment are normalized away
    "/v2/email/identities/",
    "/",
]


@pytest.mark.parametrize("path", TRICKY_PATHS)
def test_tricky_paths_verify(path: str) -> None:
    req = sign("GET", path)
    assert req.raw_path == path
    check(req)


@pytest.mark.parametrize(
    ("method", "body", "headers"),
    [
        ("GET", None, {}),
        ("DELETE", None, {}),
        (
            "POST",
            {"Action": "SendEmail", "Source": "a+b@example.com", "Message.Subject.Data": "Hi & bye"},
            {},
        ),
        (
            "PUT",
            b'{"TemplateContent": {"Subject": "\xc3\xbc {{name}}"}}',
            {"Content-Type": "application/json"},
        ),
        ("POST", b"", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}),
    ],
)
def test_methods_and_bodies_verify(method: str, body: Any, headers: dict[str, str]) -> None:
    req = sign(method, "/v2/email/templates/t1", body=body, headers=headers)
    signed = check(req)
    assert signed.presigned is False and signed.expires is None
    assert (signed.access_key_id, signed.date, signed.region, signed.service) == (
        KEY_ID,
        "20240102",
        "us-east-1",
        "ses",
    )
    assert signed.amz_date == T0
    assert "host" in signed.signed_headers and "x-amz-date" in signed.signed_headers


def test_query_strings_with_special_characters_verify() -> None:
    # As botocore's serializer builds real requests: parameters percent-encoded into the URL.
    query = percent_encode_sequence(
        {
            "Name": "a b&c=d/e",
            "Empty": "",
            "Uni": "ü✓",
            "Plus": "1+1",
            "Keep": "~-._",
            "Star": "*!'()",
            "Z": "z",
        }
    )
    check(sign("GET", "/v2/email/suppression/addresses?" + query))


def test_query_params_form_spaces_and_repeated_or_blank_keys_verify() -> None:
    # botocore's preparer sends params form-encoded (space as '+') but signs them as %20.
    req = sign("GET", "/v2/email/contact-lists", params={"a b": "c d", "x": "+"})
    assert "a+b=c+d" in req.query_string
    check(req)
    check(sign("GET", "/v2/email/contact-lists?b=2&a=2&a=1&flag&e="))


def test_headers_are_trimmed_and_collapsed() -> None:
    req = sign("POST", "/v2/email/outbound-emails", body=b"{}", headers={"X-Custom": "a   b \t c"})
    assert req.headers["x-custom"] == "a   b \t c"
    signed = check(req)
    assert "x-custom" in signed.signed_headers


@pytest.mark.parametrize(
    ("region", "service"), [("eu-west-1", "ses"), ("ap-southeast-2", "email"), ("moon-1", "ses")]
)
def test_any_region_and_both_service_names(region: str, service: str) -> None:
    signed = check(sign("GET", "/v2/email/account", region=region, service=service))
    assert (signed.region, signed.service) == (region, service)


def test_date_header_instead_of_x_amz_date() -> None:
    req = sign("GET", "/v2/email/account", headers={"Date": "placeholder"})
    assert "x-amz-date" not in req.headers and req.headers["date"] == "Tue, 02 Jan 2024 03:04:05 -0000"
    assert check(req).amz_date == T0


def test_content_sha256_header_matching_the_body_verifies() -> None:
    body = b'{"a": 1}'
    check(
        sign(
            "POST",
            "/v2/email/outbound-emails",
            body=body,
            headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()},
        )
    )


def test_aws_documentation_example() -> None:
    # The worked example of the AWS SigV4 guide (IAM ListUsers, 2015-08-30): independent of botocore.
    req = AwsRequest(
        "GET",
        "/",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        {
            "content-type": "application/x-www-form-urlencoded; charset=utf-8",
            "host": "iam.amazonaws.com",
            "x-amz-date": "20150830T123600Z",
        },
    )
    stamp = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.UTC)
    signature = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    signed = sigv4.SignedRequest(
        KEY_ID,
        "20150830",
        "us-east-1",
        "iam",
        ["content-type", "host", "x-amz-date"],
        signature,
        stamp,
        False,
        None,
    )
    canonical = sigv4.canonical_request(req, signed, hashlib.sha256(b"").hexdigest())
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    )
    sigv4.verify(req, signed, SECRET, now=stamp)


# --- presigned URLs --------------------------------------------------------------------------------


def test_presigned_get_verifies() -> None:
    req = sign("GET", "/v2/email/identities/a%2Bb%40example.com", params={"x": "ü y"}, presign=300)
    assert "authorization" not in req.headers and "X-Amz-Signature=" in req.query_string
    signed = check(req, now=T0 + datetime.timedelta(seconds=299))
    assert signed.presigned is True and signed.expires == 300 and signed.access_key_id == KEY_ID


def test_presigned_form_post_moves_body_to_query_and_verifies() -> None:
    req = sign("POST", "/", body={"Action": "GetSendQuota", "Version": "2010-12-01"}, presign=60)
    assert req.body == b"" and "Action=GetSendQuota" in req.query_string
    check(req)


def test_presigned_unsigned_payload_is_refused() -> None:
    """UNSIGNED-PAYLOAD is S3's alone: an SES presigned URL signs the body's hash, so a URL signed
    over UNSIGNED-PAYLOAD does not match, and SES shows the hash it expected."""
    req = sign("GET", "/v2/email/account", presign=60, signer=S3SigV4QueryAuth)
    message = rejected(req, errors.SignatureDoesNotMatch)
    assert message.startswith(MISMATCH)
    assert f"\nhost\n{hashlib.sha256(b'').hexdigest()}'\n" in message
    # The same URL presigned over the body's hash (as botocore does for SES) passes.
    check(sign("GET", "/v2/email/account", presign=60))


def test_presigned_url_lives_for_its_expiry_not_the_skew_window() -> None:
    check(sign("GET", "/v2/email/account", presign=3600), now=T0 + datetime.timedelta(minutes=59))


def test_presigned_url_past_its_expiry() -> None:
    req = sign("GET", "/v2/email/account", presign=60)
    check(req, now=T0 + datetime.timedelta(seconds=60))
    message = rejected(req, errors.SignatureDoesNotMatch, now=T0 + datetime.timedelta(seconds=61))
    assert message == (
        "Signature expired: 20240102T030405Z is now earlier than 20240102T030406Z (20240102T030506Z - 1 min.)"
    )


def test_presigned_tampered_query_does_not_match() -> None:
    req = sign("GET", "/v2/email/account", params={"PageSize": "10"}, presign=60)
    req.query_string = req.query_string.replace("PageSize=10", "PageSize=11")
    assert rejected(req, errors.SignatureDoesNotMatch).startswith(MISMATCH)


# --- mismatches --------------------------------------------------------------------------------


def test_wrong_secret_does_not_match() -> None:
    message = rejected(
        sign("GET", "/v2/email/identities/user%40example.com"), errors.SignatureDoesNotMatch, secret="x"
    )
    # SES shows the canonical request and string to sign it computed (never the expected signature).
    assert message.startswith(MISMATCH + "\n\nThe Canonical String for this request should have been\n'GET\n")
    assert "/v2/email/identities/user%2540example.com\n" in message
    assert "\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20240102T030405Z\n" in message


def tamper_body(req: AwsRequest) -> None:
    req.body += b" "


def tamper_header(req: AwsRequest) -> None:
    req.headers["content-type"] = "text/plain"


def tamper_path(req: AwsRequest) -> None:
    req.raw_path = req.raw_path.replace("t1", "t2")


def tamper_query(req: AwsRequest) -> None:
    req.query_string = "x=2"


def tamper_method(req: AwsRequest) -> None:
    req.method = "PUT"


@pytest.mark.parametrize("tamper", [tamper_body, tamper_header, tamper_path, tamper_query, tamper_method])
def test_tampered_request_does_not_match(tamper: Any) -> None:
    req = sign(
        "POST", "/v2/email/templates/t1?x=1", body=b'{"a": 1}', headers={"Content-Type": "application/json"}
    )
    check(req)
    tamper(req)
    assert rejected(req, errors.SignatureDoesNotMatch).startswith(MISMATCH)


def test_content_sha256_header_cannot_vouch_for_another_body() -> None:
    body = b'{"a": 1}'
    req = sign(
        "POST",
        "/v2/email/outbound-emails",
        body=body,
        headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()},
    )
    req.body = b'{"a": 2}'
    assert rejected(req, errors.SignatureDoesNotMatch).startswith(MISMATCH)


def test_unsigned_payload_is_refused_in_the_authorization_header() -> None:
    req = sign(
        "POST", "/v2/email/outbound-emails", body=b"{}", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    assert rejected(req, errors.SignatureDoesNotMatch).startswith(MISMATCH)


# --- clock skew --------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [-14, 14, -15, 15])
def test_within_fifteen_minutes_passes(minutes: int) -> None:
    check(sign("GET", "/v2/email/account"), now=T0 + datetime.timedelta(minutes=minutes))


def test_sixteen_minutes_old_is_expired() -> None:
    message = rejected(
        sign("GET", "/v2/email/account"),
        errors.SignatureDoesNotMatch,
        now=T0 + datetime.timedelta(minutes=16),
    )
    assert message == (
        "Signature expired: 20240102T030405Z is now earlier than 20240102T030505Z "
        "(20240102T032005Z - 15 min.)"
    )


def test_sixteen_minutes_ahead_is_not_yet_current() -> None:
    message = rejected(
        sign("GET", "/v2/email/account"),
        errors.SignatureDoesNotMatch,
        now=T0 - datetime.timedelta(minutes=16),
    )
    assert message == (
        "Signature not yet current: 20240102T030405Z is still later than 20240102T030305Z "
        "(20240102T024805Z + 15 min.)"
    )


# --- malformed or missing credentials --------------------------------------------------------------


def bare(headers: dict[str, str], query: str = "") -> AwsRequest:
    return AwsRequest(
        "GET", "/v2/email/account", "/v2/email/account", query, {"host": "127.0.0.1:4566", **headers}
    )


DATE = {"x-amz-date": "20240102T030405Z"}
CRED = "Credential=AKIDEXAMPLE/20240102/us-east-1/ses/aws4_request"
SIG = "SignedHeaders=host;x-amz-date, Signature=abcd"


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": "Bearer abc"}, {"authorization": "AWS AKID:sig"}, DATE]
)
def test_missing_authentication_token(headers: dict[str, str]) -> None:
    with pytest.raises(errors.MissingAuthenticationToken) as caught:
        sigv4.parse(bare(headers))
    assert caught.value.message == "Request is missing Authentication Token"
    assert caught.value.status == 403


INCOMPLETE = [
    (
        {"authorization": f"AWS4-HMAC-SHA256 {CRED}", **DATE},
        "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
        f"parameter. Authorization=AWS4-HMAC-SHA256 {CRED}",
    ),
    (
        {"authorization": "AWS4-HMAC-SHA256"},
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
        "parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires "
        "existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256",
    ),
    (
        {
            "authorization": f"AWS4-HMAC-SHA256 {CRED.replace('/', ' /', 1)}, {SIG}",
            **DATE,
        },
        "'/20240102/us-east-1/ses/aws4_request' not a valid key=value pair (missing equal-sign) in "
        "Authorization header: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE "
        f"/20240102/us-east-1/ses/aws4_request, {SIG}'.",
    ),
    (
        {"authorization": f"AWS4-HMAC-SHA512 {CRED}, {SIG}", **DATE},
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ",
    ),
    (
        {"authorization": f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/ses, {SIG}", **DATE},
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got "
        "'AKIDEXAMPLE/20240102/us-east-1/ses'",
    ),
    (
        {"authorization": f"AWS4-HMAC-SHA256 {CRED}, {SIG}", "x-amz-date": "20241302T030405Z"},
        "Date must be in ISO-8601 'basic format'. Got '20241302T030405Z'. See http://en.wikipedia.org/wiki/ISO_8601",
    ),
    (
        {"authorization": f"AWS4-HMAC-SHA256 {CRED}, {SIG}", "x-amz-date": "2024-01-02T03:04:05Z"},
        "Date must be in ISO-8601 'basic format'. Got '2024-01-02T03:04:05Z'. See http://en.wikipedia.org/wiki/ISO_8601",
    ),
]


@pytest.mark.parametrize(("headers", "message"), INCOMPLETE)
def test_incomplete_signature(headers: dict[str, str], message: str) -> None:
    with pytest.raises(errors.IncompleteSignature) as caught:
        sigv4.parse(bare(headers))
    assert caught.value.message == message


SCOPE_ERRORS = [
    (
        "Credential=AKIDEXAMPLE/20240102/us-east-1/s3/aws4_request",
        "Credential should be scoped to correct service: 'ses'. ",
    ),
    (
        "Credential=AKIDEXAMPLE/20240102/us-east-1/ses/aws5_request",
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
    ),
    (
        "Credential=AKIDEXAMPLE/20240101/us-east-1/ses/aws4_request",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20240101' != '20240102', from '20240102T030405Z'.",
    ),
]


@pytest.mark.parametrize(("credential", "message"), SCOPE_ERRORS)
def test_wrong_credential_scope(credential: str, message: str) -> None:
    with pytest.raises(errors.SignatureDoesNotMatch) as caught:
        sigv4.parse(bare({"authorization": f"AWS4-HMAC-SHA256 {credential}, {SIG}", **DATE}))
    assert caught.value.message == message


def test_host_must_be_signed() -> None:
    with pytest.raises(errors.SignatureDoesNotMatch) as caught:
        sigv4.parse(
            bare(
                {"authorization": f"AWS4-HMAC-SHA256 {CRED}, SignedHeaders=x-amz-date, Signature=ab", **DATE}
            )
        )
    assert caught.value.message == "'Host' must be a 'SignedHeader' in the AWS Authorization."


def test_header_and_presigned_query_together() -> None:
    with pytest.raises(errors.SignatureDoesNotMatch) as caught:
        sigv4.parse(
            bare(
                {"authorization": f"AWS4-HMAC-SHA256 {CRED}, {SIG}", **DATE},
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            )
        )
    assert caught.value.message == (
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
    )


def test_incomplete_presigned_query() -> None:
    with pytest.raises(errors.IncompleteSignature) as caught:
        sigv4.parse(
            bare({}, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240102T030405Z&X-Amz-SignedHeaders=host")
        )
    assert caught.value.message == (
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "Re-examine the query-string parameters."
    )


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("abc", "X-Amz-Expires should be a number"),
        ("-1", "X-Amz-Expires must be non-negative"),
        ("604801", "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
    ],
)
def test_bad_presigned_expiry(expires: str, message: str) -> None:
    req = sign("GET", "/v2/email/account", presign=60)
    req.query_string = req.query_string.replace("X-Amz-Expires=60", f"X-Amz-Expires={expires}")
    with pytest.raises(errors.IncompleteSignature) as caught:
        sigv4.parse(req)
    assert caught.value.message == message


# --- access_key_id (dev mode) ------------------------------------------------------------------


def test_access_key_id() -> None:
    assert sigv4.access_key_id(sign("GET", "/v2/email/account")) == KEY_ID
    assert sigv4.access_key_id(sign("GET", "/v2/email/account", presign=60)) == KEY_ID
    assert (
        sigv4.access_key_id(bare({"authorization": "AWS4-HMAC-SHA256 Credential=123456789012/x"}))
        == "123456789012"
    )
    assert sigv4.access_key_id(bare({})) is None
    assert sigv4.access_key_id(bare({"authorization": "Bearer abc"})) is None
    assert sigv4.access_key_id(bare({"authorization": "AWS4-HMAC-SHA256 Credential=/x"})) is None


# --- real boto3 clients ------------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


SES_V1_RESPONSE = (
    b'<SendEmailResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><SendEmailResult>'
    b"<MessageId>m-1</MessageId></SendEmailResult><ResponseMetadata><RequestId>r-1</RequestId>"
    b"</ResponseMetadata></SendEmailResponse>"
)


def captured(service: str, call: str, **kwargs: Any) -> AwsRequest:
    """Run a real client call; a before-send hook captures the signed request and answers a dummy 200."""
    seen: list[AWSPreparedRequest] = []

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        seen.append(request)
        body = SES_V1_RESPONSE if service == "ses" else b"{}"
        return AWSResponse(request.url, 200, {}, _Raw(body))

    client = boto3.client(
        service,
        region_name="eu-central-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"total_max_attempts": 1}),
    )
    client.meta.events.register("before-send", before_send)
    getattr(client, call)(**kwargs)
    (request,) = seen
    return to_aws_request(request)


def test_boto3_sesv2_get_email_identity_verifies() -> None:
    req = captured("sesv2", "get_email_identity", EmailIdentity="a+b@example.com")
    assert req.raw_path == "/v2/email/identities/a%2Bb%40example.com"
    assert req.path == "/v2/email/identities/a+b@example.com"
    signed = sigv4.parse(req)
    sigv4.verify(req, signed, SECRET)
    assert (signed.access_key_id, signed.region, signed.service) == (KEY_ID, "eu-central-1", "ses")


def test_boto3_sesv2_repeated_query_parameters_verify() -> None:
    req = captured(
        "sesv2",
        "list_suppressed_destinations",
        Reasons=["BOUNCE", "COMPLAINT"],
        StartDate=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        PageSize=10,
    )
    assert req.query_string.count("Reason=") == 2
    sigv4.verify(req, sigv4.parse(req), SECRET)


def test_boto3_ses_send_email_verifies() -> None:
    req = captured(
        "ses",
        "send_email",
        Source="Sender Name <sender+tag@example.com>",
        Destination={"ToAddresses": ["to@example.com"]},
        Message={"Subject": {"Data": "Grüße & more"}, "Body": {"Text": {"Data": "Hello, world! 100%"}}},
    )
    assert req.method == "POST" and req.body.startswith(b"Action=SendEmail")
    sigv4.verify(req, sigv4.parse(req), SECRET)
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv4.verify(req, sigv4.parse(req), SECRET + "x")
