"""The account console in Chromium: signing in with an access key, a domain identity's DNS records,
a template preview, the dashboard against the API, a message's timeline; screenshots of each."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess
from tests.browser.conftest import PHONE, screenshot
from tests.conftest import Serve


@pytest.fixture(scope="module")
def sesame(
    module_database: str, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp("browser-account")
    env = {
        "SESAME_DNS__NAMESERVERS": dns_server.address,
        "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
        "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
    }
    with SesameProcess("serve", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)


@pytest.fixture(scope="module")
def account(sesame: Serve, dns_server: DnsServer) -> dict[str, Any]:
    """An account with a verified domain and a few messages sent to the mailbox simulator (delivered
    or bounced by the delivery engine at once, never leaving the machine)."""
    account = sesame.new_account("browser")
    sesame.cli("accounts", "update", account["AccountId"], "--max-send-rate=100")
    v2 = sesame.client("sesv2", account)
    v2.create_email_identity(EmailIdentity="shop.test")
    dns_server.add_zone_lines(
        sesame.cli("identities", "records", "shop.test", "--account", account["AccountId"])
    )
    assert v2.get_email_identity(EmailIdentity="shop.test")["VerificationStatus"] == "SUCCESS"
    ids = []
    for n in range(4):
        out = v2.send_email(
            FromEmailAddress="orders@shop.test",
            Destination={"ToAddresses": [f"success+order{n}@simulator.amazonses.com"]},
            Content={
                "Simple": {"Subject": {"Data": f"Your order {n}"}, "Body": {"Text": {"Data": "Thanks"}}}
            },
        )
        ids.append(out["MessageId"])
    out = v2.send_email(
        FromEmailAddress="orders@shop.test",
        Destination={"ToAddresses": ["bounce@simulator.amazonses.com"]},
        Content={"Simple": {"Subject": {"Data": "Returned to sender"}, "Body": {"Text": {"Data": "?"}}}},
    )
    ids.append(out["MessageId"])
    # Until the bounce is counted (the event records are dispatched in the background).
    v1 = sesame.client("ses", account)
    deadline = time.monotonic() + 30
    while sum(p["Bounces"] for p in v1.get_send_statistics()["SendDataPoints"]) < 1:
        assert time.monotonic() < deadline, "the bounce was never counted"
        time.sleep(0.2)
    return {**account, "MessageIds": ids}


def sign_in(page: Any, sesame: Serve, account: dict[str, Any]) -> None:
    page.goto(f"{sesame.endpoint}/console/")
    assert "/console/sign-in" in page.url
    page.get_by_label("Access key id").fill(account["AccessKeyId"])
    page.get_by_label("Secret access key").fill(account["SecretAccessKey"])
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r".*/console/dashboard$"))


def test_sign_in_and_create_a_domain_identity_with_its_dkim_records(
    page: Any, sesame: Serve, account: dict[str, Any], tmp_path: Path
) -> None:
    sign_in(page, sesame, account)
    page.get_by_role("link", name="Identities").click()
    page.get_by_label("Email address or domain").fill("news.example.test")
    page.get_by_role("button", name="Create identity").click()
    page.wait_for_url(re.compile(r".*/console/identities/news\.example\.test$"))
    assert page.get_by_role("heading", level=1).inner_text() == "news.example.test"
    assert "news.example.test was created" in page.get_by_role("status").inner_text()
    tokens = sesame.client("sesv2", account).get_email_identity(EmailIdentity="news.example.test")[
        "DkimAttributes"
    ]["Tokens"]
    records = page.locator("#records tbody tr")
    assert records.count() == 3
    for token in tokens:
        row = records.filter(has_text=f"{token}._domainkey.news.example.test")
        assert row.count() == 1
        assert "v=DKIM1" in row.get_by_role("button", name=re.compile("Copy")).get_attribute("data-copy")
    assert page.locator("#dmarc").inner_text().count("_dmarc.news.example.test") == 1
    screenshot(page, "identity", tmp_path)
    # Readable on a phone: the records table scrolls within its own box, the page does not.
    page.set_viewport_size(PHONE)
    page.reload()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1


def test_template_preview_renders_in_a_sandboxed_frame(
    page: Any, sesame: Serve, account: dict[str, Any], tmp_path: Path
) -> None:
    sesame.client("sesv2", account).create_email_template(
        TemplateName="welcome",
        TemplateContent={
            "Subject": "Welcome, {{name}}",
            "Html": "<h1>Hello {{name}}</h1><p>Your plan: {{plan}}</p>"
            "<script>document.body.innerHTML='script ran'</script>",
            "Text": "Hello {{name}}",
        },
    )
    sign_in(page, sesame, account)
    page.goto(f"{sesame.endpoint}/console/templates")
    page.get_by_role("link", name="welcome").click()
    page.get_by_label("Sample data (a JSON object, as TemplateData)").fill('{"name": "Alex", "plan": "Pro"}')
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#preview-subject").inner_text() == "Welcome, Alex"
    frame = page.frame_locator("iframe.preview")
    assert frame.locator("h1").inner_text() == "Hello Alex"
    assert frame.locator("p").inner_text() == "Your plan: Pro"
    assert "script ran" not in frame.locator("body").inner_text()
    screenshot(page, "template-preview", tmp_path)
    # A rendering error, as SES words it.
    page.get_by_label("Sample data (a JSON object, as TemplateData)").fill('{"name": "Alex"}')
    page.get_by_role("button", name="Preview").click()
    assert "Attribute 'plan' is not present in the rendering data." in page.get_by_role("alert").inner_text()


def test_the_dashboards_numbers_are_the_apis(
    page: Any, sesame: Serve, account: dict[str, Any], tmp_path: Path
) -> None:
    sign_in(page, sesame, account)
    v1 = sesame.client("ses", account)
    quota = v1.get_send_quota()
    points = v1.get_send_statistics()["SendDataPoints"]

    def shown(name: str) -> float:
        return float(page.locator(f'[data-figure="{name}"]').inner_text())

    assert shown("SentLast24Hours") == quota["SentLast24Hours"]
    assert shown("Max24HourSend") == quota["Max24HourSend"]
    assert shown("MaxSendRate") == quota["MaxSendRate"]
    for key in ("DeliveryAttempts", "Bounces", "Complaints", "Rejects"):
        assert shown(key) == sum(p[key] for p in points)
    assert (shown("DeliveryAttempts"), shown("Bounces")) == (5, 1)
    charts = page.get_by_role("img")
    assert charts.count() == 2
    assert (
        "Sends" in charts.first.get_attribute("aria-labelledby") or charts.first.locator("title").count() == 1
    )
    screenshot(page, "dashboard", tmp_path)


def test_a_messages_timeline(page: Any, sesame: Serve, account: dict[str, Any], tmp_path: Path) -> None:
    sign_in(page, sesame, account)
    page.get_by_role("link", name="Messages").click()
    page.get_by_label("Subject").fill("order 2")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#messages tbody tr")
    assert rows.count() == 1
    rows.first.get_by_role("link").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Your order 2"
    assert page.locator("#message-id").inner_text() == account["MessageIds"][2]
    assert "success+order2@simulator.amazonses.com" in page.locator("#recipients").inner_text()
    assert "Accepted" in page.locator("#timeline").inner_text()
    # The bounced one: its attempt, the remote server's reply, the Bounce record.
    page.goto(f"{sesame.endpoint}/console/messages?source=orders%40shop.test&status=bounced")
    page.get_by_role("link", name=re.compile("^Message ")).click()
    assert page.get_by_role("heading", level=1).inner_text() == "Returned to sender"
    recipients = page.locator("#recipients").inner_text()
    assert "bounced" in recipients and "5.1.1" in recipients
    timeline = page.locator("#timeline").inner_text()
    assert "Bounce" in timeline and "Permanent / General" in timeline
    screenshot(page, "message-timeline", tmp_path)


def test_a_form_without_its_csrf_token_is_refused(
    page: Any, sesame: Serve, account: dict[str, Any], tmp_path: Path
) -> None:
    """A signed-in browser posting a form whose token was stripped (what a forged cross-site form
    amounts to) is refused, and nothing changes."""
    sign_in(page, sesame, account)
    page.goto(f"{sesame.endpoint}/console/identities")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach((e) => e.remove())")
    page.get_by_label("Email address or domain").fill("forged.test")
    page.get_by_role("button", name="Create identity").click()
    assert page.get_by_role("alert").inner_text().startswith("This form has expired or did not come")
    v2 = sesame.client("sesv2", account)
    assert "forged.test" not in [i["IdentityName"] for i in v2.list_email_identities()["EmailIdentities"]]
    screenshot(page, "csrf-refused", tmp_path)


def test_an_account_cannot_open_another_accounts_message(
    page: Any, sesame: Serve, account: dict[str, Any]
) -> None:
    other = sesame.new_account("browser-other")
    sign_in(page, sesame, other)
    for message_id in account["MessageIds"][:2]:
        response = page.goto(f"{sesame.endpoint}/console/messages/{message_id}")
        assert response is not None and response.status == 404
        assert "Your order" not in page.content()
    page.goto(f"{sesame.endpoint}/console/messages")
    assert "Your order" not in page.content() and "Returned to sender" not in page.content()
