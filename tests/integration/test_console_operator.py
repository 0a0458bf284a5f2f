"""The console's operator pages against a real ``sesame serve`` on both databases: signed in with the
admin token, an operator creates accounts whose keys work, changes sandbox, quotas and the sending
switch as the account then sees them through the API, and retries, bounces and deletes queued mail
for a site whose mail server does not answer. Account sessions and forms without the CSRF token are
refused."""

from __future__ import annotations

import html
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from sesame.testing.dns import DnsServer
from sesame.testing.servers import free_port
from tests.conftest import Serve
from tests.e2e.servers import serve_env, serving

UNREACHABLE = "unreachable.test"  # its MX is 127.0.0.1 on a port where nothing listens
SIMPLE = {"Simple": {"Subject": {"Data": "stuck"}, "Body": {"Text": {"Data": "Waiting.\n"}}}}


@pytest.fixture(scope="module")
def node(
    module_database: str, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    """A delivering server whose every delivery attempt to UNREACHABLE is refused (deferred, retried
    in an hour unless the operator says now)."""
    env = serve_env(
        dns_server,
        DELIVERY__MX_PORT=str(free_port()),
        DELIVERY__RETRY_BASE="3600",
        DELIVERY__CONNECT_TIMEOUT="2",
        DELIVERY__HELO_NAME="sesame.test",
    )
    dns_server.add(UNREACHABLE, "A", "127.0.0.1")
    with serving(module_database, tmp_path_factory, "console-operator", env) as server:
        yield server


class Browser:
    """A console session over httpx: its cookie, and the CSRF token of the last page read."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, follow_redirects=True, timeout=30)
        self.csrf = ""

    def sign_in(self, **form: str) -> httpx.Response:
        return self._read(self.http.post("/console/sign-in", data=form))

    def get(self, path: str) -> httpx.Response:
        return self._read(self.http.get(path))

    def post(self, path: str, csrf: bool = True, **form: str) -> httpx.Response:
        data = {**form, **({"csrf_token": self.csrf} if csrf else {})}
        return self._read(self.http.post(path, data=data))

    def _read(self, response: httpx.Response) -> httpx.Response:
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', response.text)
        if found:
            self.csrf = found[1]
        return response

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def operator(node: Serve) -> Iterator[Browser]:
    browser = Browser(node.endpoint)
    token = (node.data_dir / "admin.token").read_text().strip()
    page = browser.sign_in(admin_token=token)
    assert page.status_code == 200 and str(page.url).endswith("/console/operator/accounts")
    try:
        yield browser
    finally:
        browser.close()


def text(response: httpx.Response) -> str:
    """The page's text without its tags, whitespace collapsed: what a reader sees."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.text, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def shown(response: httpx.Response, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', response.text)
    assert found, f"no #{element_id} on the page"
    return html.unescape(found[1])


def test_an_account_session_cannot_open_operator_pages(node: Serve) -> None:
    account = node.new_account("plain-user")
    browser = Browser(node.endpoint)
    try:
        # Signed in: the session cookie is set (where it lands is the account pages' business).
        browser.sign_in(access_key_id=account["AccessKeyId"], secret_access_key=account["SecretAccessKey"])
        assert browser.http.cookies.get("sesame_console")
        for path in ("accounts", f"accounts/{account['AccountId']}", "queue", "events", "nodes"):
            page = browser.get(f"/console/operator/{path}")
            assert page.status_code == 403, path
            assert "not open to this session" in text(page)
        # Its own valid CSRF token (from the refusal page's layout) does not open an operator's form.
        assert browser.csrf
        refused = browser.post("/console/operator/accounts", name="made-by-an-account")
        assert refused.status_code == 403
        pause = browser.post(
            f"/console/operator/accounts/{account['AccountId']}/sending", region="us-east-1", enabled="false"
        )
        assert pause.status_code == 403
        assert node.client("sesv2", account).get_account()["SendingEnabled"] is True
        assert "made-by-an-account" not in node.cli("accounts", "list")
    finally:
        browser.close()


def test_the_operator_creates_an_account_whose_key_works(node: Serve, operator: Browser) -> None:
    created = operator.post("/console/operator/accounts", name="Console Co")
    assert created.status_code == 200
    page = text(created)
    assert "Account Console Co created" in page
    assert "shown this once" in page
    account_id = shown(created, "new-account-id")
    key = {"AccessKeyId": shown(created, "new-key-id"), "SecretAccessKey": shown(created, "new-secret")}
    assert re.fullmatch(r"\d{12}", account_id) and key["AccessKeyId"].startswith("AKIA")
    quota = node.client("sesv2", key).get_account()["SendQuota"]
    assert quota["Max24HourSend"] == 200  # the serve defaults: a new account is in the sandbox
    # The list shows it with its key; the secret is never shown again.
    listing = operator.get("/console/operator/accounts?search=console+co")
    assert "Console Co" in text(listing) and account_id in text(listing)
    account_page = operator.get(f"/console/operator/accounts/{account_id}")
    assert key["AccessKeyId"] in text(account_page)
    assert key["SecretAccessKey"] not in account_page.text
    # A chosen id, and the same id again.
    assert (
        operator.post("/console/operator/accounts", name="Fixed", account_id="111122223333").status_code
        == 200
    )
    again = operator.post("/console/operator/accounts", name="Twice", account_id="111122223333")
    assert again.status_code == 409 and "exists already" in text(again)
    bad = operator.post("/console/operator/accounts", name="Bad", account_id="12ab")
    assert bad.status_code == 400 and "12 digits" in text(bad)


def test_keys_are_created_disabled_enabled_and_deleted(node: Serve, operator: Browser) -> None:
    account = node.new_account("keys")
    base = f"/console/operator/accounts/{account['AccountId']}"
    made = operator.post(f"{base}/keys")
    assert made.status_code == 200 and "shown this once" in text(made)
    second = {"AccessKeyId": shown(made, "new-key-id"), "SecretAccessKey": shown(made, "new-secret")}
    assert node.client("sesv2", second).get_account()["SendingEnabled"] is True
    disabled = operator.post(f"{base}/keys/{second['AccessKeyId']}/status", active="false")
    assert f"Access key {second['AccessKeyId']} disabled" in text(disabled)
    with pytest.raises(ClientError):
        node.client("sesv2", second).get_account()
    assert node.client("sesv2", account).get_account()["SendingEnabled"] is True  # the other key
    operator.post(f"{base}/keys/{second['AccessKeyId']}/status", active="true")
    assert node.client("sesv2", second).get_account()["SendingEnabled"] is True
    deleted = operator.post(f"{base}/keys/{second['AccessKeyId']}/delete")
    assert f"Access key {second['AccessKeyId']} deleted" in text(deleted)
    with pytest.raises(ClientError):
        node.client("sesv2", second).get_account()
    # A key is acted on through its own account's page only.
    other = node.new_account("other")
    wrong = operator.post(f"{base}/keys/{other['AccessKeyId']}/delete")
    assert wrong.status_code == 404
    assert node.client("sesv2", other).get_account()["SendingEnabled"] is True


def test_sandbox_and_quotas_show_in_get_account(node: Serve, operator: Browser) -> None:
    account = node.new_account("limits")
    v2 = node.client("sesv2", account)
    assert v2.get_account()["ProductionAccessEnabled"] is False
    base = f"/console/operator/accounts/{account['AccountId']}"
    saved = operator.post(
        f"{base}/limits",
        region="us-east-1",
        access="production",
        max_24_hour_send="50000",
        max_send_rate="14",
    )
    assert saved.status_code == 200 and "Sending limits saved for us-east-1" in text(saved)
    got = v2.get_account()
    assert got["ProductionAccessEnabled"] is True
    assert (got["SendQuota"]["Max24HourSend"], got["SendQuota"]["MaxSendRate"]) == (50000, 14)
    # Every region, and unlimited.
    operator.post(f"{base}/limits", region="all", access="sandbox", max_24_hour_send="-1")
    got = v2.get_account()
    assert got["ProductionAccessEnabled"] is False
    assert got["SendQuota"]["Max24HourSend"] == -1 and got["SendQuota"]["MaxSendRate"] == 14
    assert "unlimited" in text(operator.get(base))
    wrong = operator.post(f"{base}/limits", region="us-east-1", max_send_rate="fast")
    assert wrong.status_code == 400 and "MaxSendRate is a number" in text(wrong)
    assert v2.get_account()["SendQuota"]["MaxSendRate"] == 14


def test_pausing_makes_send_email_fail_as_ses_does(node: Serve, operator: Browser) -> None:
    account = node.new_account("pausable")
    v1, v2 = node.client("ses", account), node.client("sesv2", account)
    base = f"/console/operator/accounts/{account['AccountId']}"
    paused = operator.post(f"{base}/sending", region="us-east-1", enabled="false")
    assert "Sending paused in us-east-1" in text(paused) and "sending paused" in text(paused)
    assert v2.get_account()["SendingEnabled"] is False
    with pytest.raises(ClientError) as caught:
        v2.send_email(
            FromEmailAddress="a@example.com", Destination={"ToAddresses": ["b@example.com"]}, Content=SIMPLE
        )
    assert caught.value.response["Error"]["Code"] == "SendingPausedException"
    with pytest.raises(ClientError) as caught:
        v1.send_email(
            Source="a@example.com",
            Destination={"ToAddresses": ["b@example.com"]},
            Message={"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "x"}}},
        )
    assert caught.value.response["Error"]["Code"] == "AccountSendingPausedException"
    listing = text(operator.get(f"/console/operator/accounts?search={account['AccountId']}"))
    assert "paused in us-east-1" in listing
    resumed = operator.post(f"{base}/sending", region="us-east-1", enabled="true")
    assert "Sending resumed in us-east-1" in text(resumed)
    assert v2.get_account()["SendingEnabled"] is True


def _sender(node: Serve, operator: Browser, dns_server: DnsServer, n: int) -> Any:
    """An account out of the sandbox (through the console) with a verified domain."""
    account = node.new_account(f"sender{n}")
    operator.post(
        f"/console/operator/accounts/{account['AccountId']}/limits",
        region="us-east-1", access="production", max_24_hour_send="-1", max_send_rate="-1",
    )  # fmt: skip
    v2 = node.client("sesv2", account)
    domain = f"from{n}.console.test"
    v2.create_email_identity(EmailIdentity=domain)
    dns_server.add_zone_lines(node.cli("identities", "records", domain, "--account", account["AccountId"]))
    assert v2.get_email_identity(EmailIdentity=domain)["VerificationStatus"] == "SUCCESS"
    return account, v2, domain


def _wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_the_queue_shows_a_stuck_site_and_acts_on_its_mail(
    node: Serve, operator: Browser, dns_server: DnsServer
) -> None:
    _, v2, domain = _sender(node, operator, dns_server, 1)

    def send(to: str) -> str:
        return str(
            v2.send_email(FromEmailAddress=f"me@{domain}", Destination={"ToAddresses": [to]}, Content=SIMPLE)[
                "MessageId"
            ]
        )

    first, second, third = (send(f"{who}@{UNREACHABLE}") for who in ("ann", "bob", "cid"))
    site = f"/console/operator/queue/sites/{UNREACHABLE}"
    # Each is tried once, refused, and deferred for an hour.
    assert _wait_for(lambda: text(operator.get(site)).count("deferred") >= 3), text(operator.get(site))
    summary = operator.get("/console/operator/queue")
    assert summary.status_code == 200
    row = re.search(rf"{re.escape(UNREACHABLE)}</a></th>(.*?)</tr>", summary.text, re.S)
    assert row and ">3<" in row[1].replace(" ", "")
    page = text(operator.get(site))
    assert "ann@unreachable.test" in page and "bob@unreachable.test" in page and "stuck" in page

    # Retry now: tried again at once (the second attempt), deferred again.
    retried = operator.post(f"/console/operator/queue/messages/{first}/retry", back=site)
    assert "1 deferred recipient(s)" in text(retried) and str(retried.url).endswith(site)
    message_page = f"/console/operator/queue/messages/{first}"
    assert _wait_for(lambda: "ann@unreachable.test deferred 2" in text(operator.get(message_page)))

    # Bounce: the recipient bounces (a Bounce record) and leaves the site's pending entries.
    bounced = operator.post(f"/console/operator/queue/messages/{second}/bounce", back=site)
    assert "1 pending recipient(s)" in text(bounced)
    assert "bob@unreachable.test" not in text(bounced)
    shown_message = text(operator.get(f"/console/operator/queue/messages/{second}"))
    assert "bounced" in shown_message and "Bounce" in shown_message

    # Without the form's CSRF token nothing happens.
    refused = operator.post(f"/console/operator/queue/messages/{third}/delete", csrf=False, back=site)
    assert refused.status_code == 403
    assert "cid@unreachable.test" in text(operator.get(site))

    # Delete: gone from the queue and the message page.
    deleted = operator.post(f"/console/operator/queue/messages/{third}/delete", back=site)
    assert "deleted" in text(deleted) and "cid@unreachable.test" not in text(deleted)
    assert operator.get(f"/console/operator/queue/messages/{third}").status_code == 404
    assert "ann@unreachable.test" in text(operator.get(site))


def test_a_form_without_the_csrf_token_is_refused(
    node: Serve, operator: Browser, dns_server: DnsServer
) -> None:
    refused = operator.post("/console/operator/accounts", csrf=False, name="no-token-co")
    assert refused.status_code == 403 and "Reload the page" in text(refused)
    assert "no-token-co" not in text(operator.get("/console/operator/accounts?search=no-token"))
    forged = operator.post("/console/operator/accounts", name="forged-co", csrf=False, csrf_token="0" * 64)
    assert forged.status_code == 403
    account = node.new_account("guarded")
    pause = operator.post(
        f"/console/operator/accounts/{account['AccountId']}/sending",
        csrf=False,
        region="us-east-1",
        enabled="false",
    )
    assert pause.status_code == 403
    assert node.client("sesv2", account).get_account()["SendingEnabled"] is True


def test_a_failing_destination_is_shown_and_retried(
    node: Serve, operator: Browser, dns_server: DnsServer
) -> None:
    account, v2, domain = _sender(node, operator, dns_server, 2)
    sns = node.client("sns", account)
    topic = sns.create_topic(Name="console-events")["TopicArn"]
    v2.create_configuration_set(ConfigurationSetName="watched")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="watched",
        EventDestinationName="to-sns",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["SEND"],
            "SnsDestination": {"TopicArn": topic},
        },
    )
    sns.delete_topic(TopicArn=topic)  # records for it have nowhere to go now
    v2.send_email(
        FromEmailAddress=f"me@{domain}",
        Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
        Content=SIMPLE,
        ConfigurationSetName="watched",
    )
    row = re.compile(r"set/watched/to-sns</code></td>.*?</tr>", re.S)
    assert _wait_for(
        lambda: (
            (m := row.search(operator.get("/console/operator/events").text)) and "not tried yet" not in m[0]
        )
    )
    page = operator.get("/console/operator/events")
    found = row.search(page.text)
    assert found and "sns" in found[0] and "attempt(s)" in found[0]
    retried = operator.post("/console/operator/events/retry", destination="set/watched/to-sns")
    assert re.search(
        r"[1-9]\d* publication\(s\) of set/watched/to-sns will be tried again now", text(retried)
    )


def test_event_publishing_and_this_node(node: Serve, operator: Browser) -> None:
    events = operator.get("/console/operator/events")
    assert events.status_code == 200
    page = text(events)
    assert "Destinations waiting or failing" in page and "Recent records" in page
    retried = operator.post("/console/operator/events/retry", all="true")
    assert "publication(s) of every waiting or failed publication" in text(retried)
    nodes = operator.get("/console/operator/nodes")
    page = text(nodes)
    assert node.proc.proc is not None and str(node.proc.proc.pid) in page
    assert "(this one)" in page and "delivery" in page and "serve" in page
    database = "SQLite" if not node.database or node.database.startswith("sqlite") else "PostgreSQL"
    assert database in page


def test_every_node_on_the_database_is_listed_while_it_runs(
    node: Serve, operator: Browser, module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A second ``sesame serve`` on the same database appears on the Nodes page with its roles and
    listeners, and leaves it when it stops."""
    assert node.proc.proc is not None
    first = f"{socket.gethostname()}:{node.proc.proc.pid}"
    with serving(module_database, tmp_path_factory, "second-node", {}) as second:
        assert second.proc.proc is not None
        other = f"{socket.gethostname()}:{second.proc.proc.pid}"
        deadline = time.monotonic() + 15
        while other not in (page := text(operator.get("/console/operator/nodes"))):
            assert time.monotonic() < deadline, page
            time.sleep(0.2)
        assert first in page
        raw = operator.get("/console/operator/nodes").text
        row = next(r for r in re.findall(r"<tr>.*?</tr>", raw, flags=re.S) if other in r)
        assert ">alive<" in row and ">mx<" in row and ">api<" in row and ">delivery<" in row
        host, port = second.proc.listeners["http"]
        assert f"{host}:{port}" in row
    deadline = time.monotonic() + 15
    while other in (page := text(operator.get("/console/operator/nodes"))):
        assert time.monotonic() < deadline, "a node that stopped is still listed"
        time.sleep(0.2)
    assert first in page
