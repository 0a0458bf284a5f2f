"""Who may use the console: sign-in with an access key or the admin token, the session cookie, CSRF
tokens on forms, sign-out, and the session's end when its key is disabled. On both databases."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, client


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


@pytest.fixture
def browser_of(serve: Serve) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve.endpoint, follow_redirects=False, timeout=10) as http:
        yield http


def sign_in(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post("/console/sign-in", data=form)


def test_a_browser_at_the_root_is_sent_to_the_console_and_the_api_still_answers_there(serve: Serve) -> None:
    assert httpx.get(serve.endpoint + "/").headers["location"] == "/console/"
    # Unsigned, without a session: the sign-in page.
    home = httpx.get(serve.endpoint + "/console/")
    assert home.headers["location"] == "/console/sign-in"
    # A signed SES v1 call to / is still the API's.
    account = serve.new_account("root-api")
    quota = serve.client("ses", account).get_send_quota()
    assert quota["Max24HourSend"] > 0


def test_sign_in_with_an_access_key_sets_a_strict_cookie_and_opens_the_account(
    serve: Serve, browser_of: httpx.Client
) -> None:
    account = serve.new_account("signin")
    wrong = sign_in(browser_of, access_key_id=account["AccessKeyId"], secret_access_key="nope")
    assert wrong.status_code == 401
    assert "not right" in wrong.text
    assert "set-cookie" not in wrong.headers
    unknown = sign_in(browser_of, access_key_id="AKIANOTAKEY", secret_access_key=account["SecretAccessKey"])
    assert unknown.status_code == 401

    ok = sign_in(
        browser_of, access_key_id=account["AccessKeyId"], secret_access_key=account["SecretAccessKey"]
    )
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; set when served over TLS
    home = browser_of.get("/console/")
    assert home.headers["location"] == "/console/dashboard"
    page = browser_of.get("/console/no-such-page")
    assert page.status_code == 404
    assert f"account {account['AccountId']}" in page.text
    # An account session does not reach the operator's pages, nor the dev inbox.
    assert browser_of.get("/console/operator/accounts").status_code == 403
    assert browser_of.get("/console/inbox").status_code == 403


def test_forms_without_this_sessions_csrf_token_are_refused(serve: Serve, browser_of: httpx.Client) -> None:
    account = serve.new_account("csrf")
    sign_in(browser_of, access_key_id=account["AccessKeyId"], secret_access_key=account["SecretAccessKey"])
    token = csrf_of(browser_of.get("/console/no-such-page").text)
    # No token, a wrong token, another session's token: 403, and the session is still signed in.
    for form in ({}, {"csrf_token": "0" * 64}, {"csrf_token": token[::-1]}):
        refused = browser_of.post("/console/sign-out", data=form)
        assert refused.status_code == 403
        assert "did not come from this console" in refused.text
    assert browser_of.get("/console/").headers["location"] == "/console/dashboard"
    # The header form (console.js) works as the field does.
    out = browser_of.post("/console/sign-out", headers={"x-csrf-token": token})
    assert out.status_code == 303


def test_sign_out_ends_the_session_everywhere(serve: Serve, browser_of: httpx.Client) -> None:
    account = serve.new_account("signout")
    sign_in(browser_of, access_key_id=account["AccessKeyId"], secret_access_key=account["SecretAccessKey"])
    stolen = dict(browser_of.cookies)
    token = csrf_of(browser_of.get("/console/no-such-page").text)
    assert browser_of.post("/console/sign-out", data={"csrf_token": token}).status_code == 303
    # The cookie's value, replayed after sign-out, opens nothing.
    with httpx.Client(base_url=serve.endpoint, cookies=stolen) as other:
        assert other.get("/console/").headers["location"] == "/console/sign-in"
        assert other.get("/console/dashboard").headers["location"].startswith("/console/sign-in")


def test_a_disabled_key_ends_its_session(serve: Serve, browser_of: httpx.Client) -> None:
    account = serve.new_account("disable")
    sign_in(browser_of, access_key_id=account["AccessKeyId"], secret_access_key=account["SecretAccessKey"])
    assert browser_of.get("/console/").headers["location"] == "/console/dashboard"
    serve.cli("accounts", "disable-key", account["AccessKeyId"])
    assert browser_of.get("/console/").headers["location"] == "/console/sign-in"


def test_the_operator_signs_in_with_the_admin_token(serve: Serve, browser_of: httpx.Client) -> None:
    assert sign_in(browser_of, admin_token="wrong").status_code == 401
    token = (serve.data_dir / "admin.token").read_text().strip()
    ok = sign_in(browser_of, admin_token=token)
    assert ok.status_code == 303
    assert browser_of.get("/console/").headers["location"] == "/console/operator/accounts"
    # The operator has no account's pages.
    assert browser_of.get("/console/identities").status_code == 403


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_the_console(
    serve: Serve, browser_of: httpx.Client
) -> None:
    account = serve.new_account("next")
    keys = {"access_key_id": account["AccessKeyId"], "secret_access_key": account["SecretAccessKey"]}
    asked = browser_of.get("/console/identities")
    assert asked.headers["location"] == "/console/sign-in?next=/console/identities"
    back = browser_of.post(asked.headers["location"], data=keys)
    assert back.headers["location"] == "/console/identities"
    for evil in ("https://evil.example/", "//evil.example/console/", "/v2/email/account"):
        away = browser_of.post(f"/console/sign-in?next={evil}", data=keys)
        assert away.headers["location"] == "/console/"


def test_dev_mode_opens_the_inbox_without_sign_in_and_still_guards_forms(dev: SesameProcess) -> None:
    with httpx.Client(base_url=dev.endpoint) as http:
        first = http.get("/console/")
        assert first.headers["location"] == "/console/inbox"
        page = http.get("/console/no-such-page")
        assert http.cookies.get("sesame_console")  # the first page started a session
        assert "dev mode" in page.text
        # Switching the account shown needs the form's token, as every form does.
        assert http.post("/console/switch", data={"account_id": "111122223333"}).status_code == 403
        switched = http.post(
            "/console/switch", data={"account_id": "111122223333", "csrf_token": csrf_of(page.text)}
        )
        assert switched.status_code == 303
        assert "account 111122223333" in http.get("/console/no-such-page").text
        # The account exists now, as any 12-digit key id makes it in dev mode.
        ses = client("sesv2", dev.endpoint, key="111122223333")
        assert ses.get_account()["SendingEnabled"] is True


def test_sessions_expire_and_a_public_https_url_makes_the_cookie_secure(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"SESAME_CONSOLE__SESSION_HOURS": str(2 / 3600), "SESAME_PUBLIC_URL": "https://mail.example"}
    data_dir = tmp_path_factory.mktemp("expiry")
    with SesameProcess("dev", data_dir=data_dir, database=module_database, env=env) as proc:
        with httpx.Client(base_url=proc.endpoint) as http:
            first = http.get("/console/no-such-page")
            assert "Secure" in first.headers["set-cookie"]
            token = http.cookies.get("sesame_console")
            # The cookie is Secure, so httpx will not send it over plain HTTP: send it by hand.
            again = httpx.get(proc.endpoint + "/console/no-such-page", cookies={"sesame_console": token})
            assert "set-cookie" not in again.headers  # the same session
            time.sleep(2.5)
            later = httpx.get(proc.endpoint + "/console/no-such-page", cookies={"sesame_console": token})
            assert "set-cookie" in later.headers  # that session ended; dev mode starts a new one
