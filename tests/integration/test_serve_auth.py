"""serve mode: SigV4 with access keys made by `sesame accounts create`, refused with AWS's codes."""

from __future__ import annotations

import datetime as dt
import json
import socket

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import Serve, client, query


def test_new_account_gets_sandbox_quota_over_sigv4(serve: Serve) -> None:
    account = serve.new_account("quota")
    assert len(account["AccountId"]) == 12 and account["AccountId"].isdigit()
    v2 = serve.client("sesv2", account)
    got = v2.get_account()
    assert got["ProductionAccessEnabled"] is False
    assert got["SendQuota"] == {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0}
    assert got["SendingEnabled"] is True
    assert got["EnforcementStatus"] == "HEALTHY"
    v1 = serve.client("ses", account)
    quota = v1.get_send_quota()
    assert (quota["Max24HourSend"], quota["MaxSendRate"], quota["SentLast24Hours"]) == (200.0, 1.0, 0.0)


def test_wrong_secret_is_signature_does_not_match(serve: Serve) -> None:
    account = serve.new_account("wrong-secret")
    for service, call in (("sesv2", "get_account"), ("ses", "get_send_quota")):
        bad = client(service, serve.endpoint, account["AccessKeyId"], "not-the-secret")
        with pytest.raises(ClientError) as err:
            getattr(bad, call)()
        assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_is_invalid_client_token_id(serve: Serve) -> None:
    for service, call in (("sesv2", "get_account"), ("ses", "get_send_quota")):
        stranger = client(service, serve.endpoint, "AKIAUNKNOWNUNKNOWN00", "whatever")
        with pytest.raises(ClientError) as err:
            getattr(stranger, call)()
        assert err.value.response["Error"]["Code"] == "InvalidClientTokenId"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unsigned_request_is_refused(serve: Serve) -> None:
    r = httpx.get(f"{serve.endpoint}/v2/email/account")
    assert r.status_code == 403
    assert r.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationToken")
    r = httpx.post(serve.endpoint, data={"Action": "GetSendQuota", "Version": "2010-12-01"})
    assert r.status_code == 403
    assert "<Code>MissingAuthenticationToken</Code>" in r.text


def _signed(
    serve: Serve, account: dict[str, str], when: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> httpx.Response:
    req = AWSRequest("GET", f"{serve.endpoint}/v2/email/account")
    signer = SigV4Auth(Credentials(account["AccessKeyId"], account["SecretAccessKey"]), "ses", "us-east-1")
    # botocore stamps X-Amz-Date from its clock: sign as a client whose clock reads `when`.
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: when.replace(tzinfo=None))
    signer.add_auth(req)
    return httpx.get(req.url, headers=dict(req.headers.items()))


def test_request_older_than_15_minutes_is_refused(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    account = serve.new_account("clock")
    now = dt.datetime.now(dt.UTC)
    assert _signed(serve, account, now - dt.timedelta(minutes=5), monkeypatch).status_code == 200
    stale = _signed(serve, account, now - dt.timedelta(minutes=20), monkeypatch)
    assert stale.status_code == 403
    assert "expired" in stale.text.lower() or "Signature" in stale.headers.get("x-amzn-ErrorType", "")
    future = _signed(serve, account, now + dt.timedelta(minutes=20), monkeypatch)
    assert future.status_code == 403


def test_accounts_are_isolated_and_regional(serve: Serve) -> None:
    a, b = serve.new_account("a"), serve.new_account("b")
    serve.client("sesv2", a).put_account_sending_attributes(SendingEnabled=False)
    assert serve.client("sesv2", a).get_account()["SendingEnabled"] is False
    assert serve.client("sesv2", b).get_account()["SendingEnabled"] is True
    assert serve.client("sesv2", a, region="eu-west-1").get_account()["SendingEnabled"] is True
    assert serve.client("ses", a).get_account_sending_enabled()["Enabled"] is False


def test_disabled_key_is_refused_from_the_next_request(serve: Serve) -> None:
    account = serve.new_account("disable")
    key = account["AccessKeyId"]
    v2, v1 = serve.client("sesv2", account), serve.client("ses", account)
    assert v2.get_account()["SendingEnabled"] is True  # known to the server (and remembered)
    assert json.loads(serve.cli("accounts", "disable-key", key)) == {"AccessKeyId": key, "Status": "Inactive"}
    for call in (v2.get_account, v1.get_send_quota):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "InvalidClientTokenId"
        assert (
            err.value.response["Error"]["Message"] == "The security token included in the request is invalid."
        )
    listed = [a for a in json.loads(serve.cli("accounts", "list")) if a["AccountId"] == account["AccountId"]]
    assert listed[0]["AccessKeys"] == [{"AccessKeyId": key, "Status": "Inactive"}]

    serve.cli("accounts", "enable-key", key)
    assert v2.get_account()["SendingEnabled"] is True
    serve.cli("accounts", "delete-key", key)
    with pytest.raises(ClientError) as err:
        v1.get_send_quota()
    assert err.value.response["Error"]["Code"] == "InvalidClientTokenId"


def _answer_to_head(serve: Serve, head: bytes) -> bytes:
    """Send a request's head but never its body; return all the server answers before it closes."""
    host, port = serve.proc.listeners["http"]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):  # b"": the server closed; a timeout fails the test
            answer += chunk
    return answer


def test_unsigned_or_unknown_caller_is_refused_before_its_body_is_read(serve: Serve) -> None:
    """A body is read only for a known key: the refusal comes at once, without the declared 50 MB, and
    the connection is closed since the body was never read."""
    big = b"Content-Length: 50000000\r\n"
    answer = _answer_to_head(
        serve,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" + big + b"\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"connection: close\r\n" in answer.lower()
    assert b"<Code>MissingAuthenticationToken</Code>" in answer
    assert b"<Message>Request is missing Authentication Token</Message>" in answer

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    authorization = (
        f"AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNUNKNOWN00/{stamp[:8]}/us-east-1/ses/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
    )
    answer = _answer_to_head(
        serve,
        b"POST /v2/email/outbound-emails HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"X-Amz-Date: {stamp}\r\nAuthorization: {authorization}\r\n".encode()
        + big
        + b"\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"x-amzn-errortype: InvalidClientTokenId" in answer
    assert b"The security token included in the request is invalid." in answer


def test_regions_outside_ses_are_refused(serve: Serve) -> None:
    """A region of one's own invention would be a fresh sandbox and quota: AWS's answer instead."""
    account = serve.new_account("regions")
    for service, call in (("sesv2", "get_account"), ("ses", "get_send_quota")):
        with pytest.raises(ClientError) as err:
            getattr(serve.client(service, account, region="xx-nowhere-1"), call)()
        assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        message = err.value.response["Error"]["Message"]
        assert message.startswith("Credential should be scoped to a valid region, not 'xx-nowhere-1'.")
    # botocore refuses such a region name itself; signed by hand, it gets the same answer.
    req = AWSRequest("GET", f"{serve.endpoint}/v2/email/account")
    SigV4Auth(Credentials(account["AccessKeyId"], account["SecretAccessKey"]), "ses", "r" * 5000).add_auth(
        req
    )
    resp = httpx.get(req.url, headers=dict(req.headers.items()))
    assert (resp.status_code, resp.headers["x-amzn-ErrorType"]) == (403, "SignatureDoesNotMatch")
    stored = query(serve, "SELECT region FROM account_regions WHERE account_id = :a", a=account["AccountId"])
    assert stored == []
    # Every region SES is offered in works, not only the common ones.
    assert serve.client("sesv2", account, region="ap-southeast-2").get_account()["SendingEnabled"] is True
