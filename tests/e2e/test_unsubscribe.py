"""List management end to end: a send with ListManagementOptions reaches a sink with SES's unsubscribe
headers and links (DKIM-valid), the recipient joins the list; the one-click POST, the preferences page
and the mailto: unsubscribe through the MX each change the contact and publish a Subscription record;
later mail to an unsubscribed contact bounces as UnsubscribedRecipient; forged tokens are refused."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import smtplib
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve, query
from tests.e2e.servers import serve_env, serving
from tests.e2e.test_delivery import Sender, events, mx, received_by
from tests.e2e.test_smtp_delivery import message, submit_starttls
from tests.e2e.test_tracking import delivered_parts, dkim_valid, event_destinations

RETURN_PATH_DOMAIN = "bounces.lists.test"
TOPICS = [
    {"TopicName": "news", "DisplayName": "Weekly news", "Description": "What happened this week",
     "DefaultSubscriptionStatus": "OPT_IN"},
    {"TopicName": "offers", "DisplayName": "Special offers", "DefaultSubscriptionStatus": "OPT_OUT"},
]  # fmt: skip
FOOTER = "Manage your subscription: {{amazonSESUnsubscribeUrl}}"


@pytest.fixture(scope="module")
def sesame(
    module_database: str, sink: SinkServer, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    env = serve_env(
        dns_server,
        DELIVERY__MX_PORT=str(sink.port),
        DELIVERY__RETURN_PATH_DOMAIN=RETURN_PATH_DOMAIN,
    )
    with serving(module_database, tmp_path_factory, "lists", env) as server:
        yield server


_n = iter(range(1000))


class ListSender(Sender):
    """A sender with a contact list, a configuration set publishing Subscription records, and a
    recipient domain whose MX is the sink."""

    def __init__(self, sesame: Serve, dns_server: DnsServer, n: int) -> None:
        super().__init__(sesame, dns_server, 500 + n)
        self.to_domain = f"readers{n}.test"
        mx(dns_server, self.to_domain, (10, "mx.sink.test"))
        dns_server.add("mx.sink.test", "A", "127.0.0.1")
        self.v2.create_contact_list(
            ContactListName="readers", Topics=TOPICS, Description="Readers of the shop"
        )
        self.v2.create_configuration_set(ConfigurationSetName="marketing")
        event_destinations(self.v2, "marketing", ["SEND", "BOUNCE", "SUBSCRIPTION"])

    def mail(self, to: str, topic: str | None = "news", **kw: Any) -> str:
        options = {"ContactListName": "readers", **({"TopicName": topic} if topic else {})}
        content = {
            "Simple": {
                "Subject": {"Data": "This week"},
                "Body": {
                    "Text": {"Data": f"Hello.\n{FOOTER}\n"},
                    "Html": {"Data": f"<p>Hello.</p><p>{FOOTER}</p>"},
                },
            }
        }
        return self.send(
            to, content=content, ListManagementOptions=options, ConfigurationSetName="marketing", **kw
        )


@pytest.fixture
def sender(sesame: Serve, dns_server: DnsServer) -> ListSender:
    return ListSender(sesame, dns_server, next(_n))


def unsubscribe_targets(data: bytes) -> tuple[str, str]:
    """The https: and mailto: targets of the List-Unsubscribe header."""
    msg = message_from_bytes(data, policy=default_policy)
    targets = re.findall(r"<([^>]+)>", str(msg["List-Unsubscribe"]))
    https = next(t for t in targets if t.startswith("http"))
    mailto = next(t for t in targets if t.startswith("mailto:"))
    return https, mailto


def subscription_records(
    sesame: Serve, message_id: str, want: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = query(
            sesame,
            "SELECT detail FROM events WHERE message_id = :m AND event_type = 'Subscription' ORDER BY id",
            m=message_id,
        )
        if len(rows) >= want or time.monotonic() > deadline:
            return [json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"] for r in rows]
        time.sleep(0.1)


def contact(sender: ListSender, address: str) -> dict[str, Any]:
    got: dict[str, Any] = sender.v2.get_contact(ContactListName="readers", EmailAddress=address)
    return got


def test_headers_links_and_one_click(sesame: Serve, sender: ListSender, sink: SinkServer) -> None:
    rcpt = f"ann@{sender.to_domain}"
    message_id = sender.mail(rcpt)
    delivered = received_by(sink, rcpt)
    data = delivered.data
    msg = message_from_bytes(data, policy=default_policy)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = unsubscribe_targets(data)
    assert mailto.startswith(f"mailto:unsubscribe@{RETURN_PATH_DOMAIN}?subject=")
    # The footer placeholder became the link to the preferences page, in the text and the HTML.
    parts = delivered_parts(data)
    assert https in parts["text/plain"] and https in parts["text/html"]
    assert "amazonSESUnsubscribeUrl" not in data.decode()
    # The headers went in before signing: the signature covers them.
    assert dkim_valid(data, sender)
    # The recipient joined the list.
    assert contact(sender, rcpt)["TopicPreferences"] == []

    # RFC 8058 one-click: the mail client POSTs the fixed body to the https target.
    response = httpx.post(https, content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert response.status_code == 200
    assert contact(sender, rcpt)["TopicPreferences"] == [
        {"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}
    ]
    [record] = subscription_records(sesame, message_id, 1)
    assert record["contactList"] == "readers"
    assert record["source"] == "UnsubscribeHeader"
    assert record["oldTopicPreferences"]["unsubscribeAll"] is False
    old = {
        t["topicName"]: t["subscriptionStatus"]
        for t in record["oldTopicPreferences"]["topicSubscriptionStatus"]
    }
    new = {
        t["topicName"]: t["subscriptionStatus"]
        for t in record["newTopicPreferences"]["topicSubscriptionStatus"]
    }
    assert old == {"news": "OptIn", "offers": "OptOut"}
    assert new == {"news": "OptOut", "offers": "OptOut"}

    # The next mail about that topic is not delivered: it bounces as UnsubscribedRecipient...
    again = sender.mail(rcpt)
    [bounce] = events(sesame, again)
    assert bounce["type"] == "Bounce"
    assert (bounce["bounceType"], bounce["bounceSubType"]) == ("Permanent", "UnsubscribedRecipient")
    assert sum(1 for m in sink.messages if rcpt in m.rcpt_tos) == 1
    # ... and does not put the address on the suppression list; mail about another topic still goes.
    assert sender.v2.list_suppressed_destinations()["SuppressedDestinationSummaries"] == []
    sender.v2.update_contact(
        ContactListName="readers",
        EmailAddress=rcpt,
        TopicPreferences=[
            {"TopicName": "news", "SubscriptionStatus": "OPT_OUT"},
            {"TopicName": "offers", "SubscriptionStatus": "OPT_IN"},
        ],
    )
    sender.mail(rcpt, topic="offers")
    deadline = time.monotonic() + 15
    while sum(1 for m in sink.messages if rcpt in m.rcpt_tos) < 2:
        assert time.monotonic() < deadline, "mail about another topic was not delivered"
        time.sleep(0.05)


def test_forged_and_altered_tokens_are_refused(sesame: Serve, sender: ListSender, sink: SinkServer) -> None:
    rcpt = f"bob@{sender.to_domain}"
    sender.mail(rcpt)
    https, _ = unsubscribe_targets(received_by(sink, rcpt).data)
    token = urlsplit(https).path.rsplit("/", 1)[1]
    payload, signature = token.split(".")
    # Someone else's address in the payload, with the original signature.
    parts = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split("\0")
    parts[4] = f"carol@{sender.to_domain}"
    forged = base64.urlsafe_b64encode("\0".join(parts).encode()).rstrip(b"=").decode() + "." + signature
    base = https.rsplit("/", 1)[0]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (forged, tampered, "nonsense", token + "x"):
        for method in ("GET", "POST"):
            response = httpx.request(method, f"{base}/{bad}", content=b"List-Unsubscribe=One-Click")
            assert response.status_code == 404, (bad, method)
    assert contact(sender, rcpt)["TopicPreferences"] == []
    assert contact(sender, rcpt)["UnsubscribeAll"] is False


def test_preferences_page_forms(sesame: Serve, sender: ListSender, sink: SinkServer) -> None:
    """The footer link's page, driven as a browser without JavaScript would: read, choose, submit."""
    rcpt = f"dan@{sender.to_domain}"
    message_id = sender.mail(rcpt, topic=None)
    https, _ = unsubscribe_targets(received_by(sink, rcpt).data)
    page = httpx.get(https)
    assert page.status_code == 200
    assert (
        "Weekly news" in page.text
        and "What happened this week" in page.text
        and "Special offers" in page.text
    )
    assert 'name="topic:news" value="OPT_IN" checked' in page.text
    saved = httpx.post(https, data={"action": "save", "topic:news": "OPT_OUT", "topic:offers": "OPT_IN"})
    assert saved.status_code == 200 and "Your preferences are saved." in saved.text
    got = contact(sender, rcpt)
    assert {p["TopicName"]: p["SubscriptionStatus"] for p in got["TopicPreferences"]} == {
        "news": "OPT_OUT",
        "offers": "OPT_IN",
    }
    [record] = subscription_records(sesame, message_id, 1)
    assert record["source"] == "UnsubscribePage"
    httpx.post(https, data={"action": "unsubscribe_all"})
    assert contact(sender, rcpt)["UnsubscribeAll"] is True
    assert len(subscription_records(sesame, message_id, 2)) == 2
    # No topic named, and the contact is unsubscribed from everything: the next mail bounces.
    [bounce] = events(sesame, sender.mail(rcpt, topic=None))
    assert bounce["bounceSubType"] == "UnsubscribedRecipient"


def test_mailto_unsubscribe_through_the_mx(sesame: Serve, sender: ListSender, sink: SinkServer) -> None:
    rcpt = f"eve@{sender.to_domain}"
    message_id = sender.mail(rcpt, topic=None)
    _, mailto = unsubscribe_targets(received_by(sink, rcpt).data)
    address, _, query_string = mailto[len("mailto:") :].partition("?")
    subject = unquote(query_string.partition("subject=")[2])
    raw = f"From: {rcpt}\r\nTo: {address}\r\nSubject: {subject}\r\n\r\nunsubscribe\r\n".encode()
    host, port = sesame.proc.listeners["mx"]
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.sendmail(rcpt, [address], raw)
    deadline = time.monotonic() + 15
    while not contact(sender, rcpt)["UnsubscribeAll"]:
        assert time.monotonic() < deadline, "the mailto: unsubscribe did not land"
        time.sleep(0.1)
    [record] = subscription_records(sesame, message_id, 1)
    assert record["newTopicPreferences"]["unsubscribeAll"] is True


def test_list_management_rules(sesame: Serve, sender: ListSender, sink: SinkServer) -> None:
    # Several recipients: they join the list, but the mail carries no unsubscribe headers (SES adds them
    # for a single recipient only).
    a, b = f"f1@{sender.to_domain}", f"f2@{sender.to_domain}"
    sender.v2.send_email(
        FromEmailAddress=f"me@{sender.domain}",
        Destination={"ToAddresses": [a, b]},
        Content={"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": FOOTER}}}},
        ListManagementOptions={"ContactListName": "readers"},
    )
    data = received_by(sink, a).data
    assert b"List-Unsubscribe" not in data
    assert contact(sender, a)["EmailAddress"] == a and contact(sender, b)["EmailAddress"] == b
    # A list or topic that does not exist refuses the send.
    for options in ({"ContactListName": "nope"}, {"ContactListName": "readers", "TopicName": "nope"}):
        with pytest.raises(Exception) as exc:
            sender.send(a, ListManagementOptions=options)
        assert exc.value.response["Error"]["Code"] == "NotFoundException"  # type: ignore[attr-defined]
    # The raw header does what the API parameter does, and is not delivered.
    rcpt = f"g@{sender.to_domain}"
    raw = (
        f"From: me@{sender.domain}\r\nTo: {rcpt}\r\nSubject: raw\r\n"
        "X-SES-LIST-MANAGEMENT-OPTIONS: readers; topic=news\r\n"
        "List-Unsubscribe: <https://sender.example/own>\r\n\r\n"
        f"{FOOTER}\r\n"
    ).encode()
    sender.v2.send_email(Content={"Raw": {"Data": raw}})
    data = received_by(sink, rcpt).data
    msg = message_from_bytes(data, policy=default_policy)
    assert "X-SES-LIST-MANAGEMENT-OPTIONS" not in msg
    assert "sender.example/own" not in str(msg["List-Unsubscribe"])  # SES overrides the sender's
    assert msg.get_all("List-Unsubscribe") and len(msg.get_all("List-Unsubscribe")) == 1
    assert "/unsubscribe/" in msg.get_content()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium() -> str:
    """Debian's Chromium. CI installs it and sets CI_REQUIRE_BROWSER, so there a missing browser
    fails the test rather than skipping it."""
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI_REQUIRE_BROWSER"):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def choose_topics_in_a_browser(url: str, screenshot: str) -> None:
    """What a reader does on the preferences page, in Chromium driven by Playwright, on a phone's screen.
    (Playwright's synchronous API keeps an event loop running while it is open: the caller reads the
    database after it has closed.)"""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(url)
            assert page.get_by_role("heading", name="Subscription preferences").is_visible()
            news = page.get_by_role("group", name="Weekly news")
            offers = page.get_by_role("group", name="Special offers")
            assert news.get_by_label("Subscribed", exact=True).is_checked()  # the topic's default, OPT_IN
            assert offers.get_by_label("Unsubscribed", exact=True).is_checked()  # OPT_OUT by default
            news.get_by_label("Unsubscribed", exact=True).check()
            offers.get_by_label("Subscribed", exact=True).check()
            page.get_by_role("button", name="Save preferences").click()
            assert page.get_by_role("status").inner_text() == "Your preferences are saved."
            # The page shows what was saved, and nothing is wider than the phone's screen.
            saved = page.get_by_role("group", name="Special offers").get_by_label("Subscribed", exact=True)
            assert saved.is_checked()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()


def test_preferences_page_in_a_browser(
    sesame: Serve, sender: ListSender, sink: SinkServer, tmp_path: Any
) -> None:
    """Open the footer link of a delivered message in a real browser, change topics by their labels,
    submit, and read the contact back through the API."""
    rcpt = f"hal@{sender.to_domain}"
    message_id = sender.mail(rcpt)
    html = delivered_parts(received_by(sink, rcpt).data)["text/html"]
    footer_link = re.search(r'https?://[^\s"<]+/unsubscribe/[^\s"<]+', html)
    assert footer_link is not None
    shots = os.environ.get("SCREENSHOT_DIR") or str(tmp_path)
    choose_topics_in_a_browser(footer_link.group(0), os.path.join(shots, "preferences.png"))
    got = contact(sender, rcpt)
    assert {p["TopicName"]: p["SubscriptionStatus"] for p in got["TopicPreferences"]} == {
        "news": "OPT_OUT",
        "offers": "OPT_IN",
    }
    assert got["UnsubscribeAll"] is False
    [record] = subscription_records(sesame, message_id, 1)
    assert record["source"] == "UnsubscribePage"


def test_bulk_send_names_the_list_in_a_header(sesame: Serve, sender: ListSender, sink: SinkServer) -> None:
    """SendBulkEmail has no ListManagementOptions: the X-SES-LIST-MANAGEMENT-OPTIONS header does its job."""
    sender.v2.create_email_template(
        TemplateName="weekly",
        TemplateContent={"Subject": "Hi {{name}}", "Text": "Hello {{name}}. " + FOOTER},
    )
    kept, gone = f"k@{sender.to_domain}", f"u@{sender.to_domain}"
    sender.v2.create_contact(ContactListName="readers", EmailAddress=gone, UnsubscribeAll=True)
    header = {"Name": "X-SES-LIST-MANAGEMENT-OPTIONS", "Value": "readers; topic=news"}
    results = sender.v2.send_bulk_email(
        FromEmailAddress=f"me@{sender.domain}",
        DefaultContent={"Template": {"TemplateName": "weekly", "TemplateData": '{"name": "you"}'}},
        BulkEmailEntries=[
            {"Destination": {"ToAddresses": [to]}, "ReplacementHeaders": [header]} for to in (kept, gone)
        ],
    )["BulkEmailEntryResults"]
    assert [r["Status"] for r in results] == ["SUCCESS", "SUCCESS"]
    msg = message_from_bytes(received_by(sink, kept).data, policy=default_policy)
    assert "X-SES-LIST-MANAGEMENT-OPTIONS" not in msg
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in msg.get_content()
    [bounce] = events(sesame, results[1]["MessageId"])
    assert bounce["bounceSubType"] == "UnsubscribedRecipient"


def test_smtp_submission_names_the_list_in_a_header(
    sesame: Serve, sender: ListSender, sink: SinkServer
) -> None:
    """Over SES's SMTP interface the X-SES-LIST-MANAGEMENT-OPTIONS header is the only way to name a list."""
    rcpt = f"smtp@{sender.to_domain}"
    data = message(
        sender, rcpt, "X-SES-LIST-MANAGEMENT-OPTIONS: readers; topic=news", body=FOOTER.encode() + b"\r\n"
    )
    code, _ = submit_starttls(sesame, sender, rcpt, data)
    assert code == 250
    msg = message_from_bytes(received_by(sink, rcpt).data, policy=default_policy)
    assert "X-SES-LIST-MANAGEMENT-OPTIONS" not in msg
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in msg.get_content()
    assert contact(sender, rcpt)["EmailAddress"] == rcpt
