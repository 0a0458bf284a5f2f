"""The dev inbox in Chromium: mail sent with boto3 shows up, and new mail arrives without a reload; a
script in an HTML mail does not run; an attachment downloads."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sesame.testing.servers import SesameProcess
from tests.browser.conftest import screenshot
from tests.conftest import client


def _ses(dev: SesameProcess) -> Any:
    ses = client("sesv2", dev.endpoint)
    try:
        ses.create_email_identity(EmailIdentity="shop.test")
    except ses.exceptions.AlreadyExistsException:
        pass
    return ses


def _send(dev: SesameProcess, subject: str, html: str | None = None) -> str:
    body: dict[str, Any] = {"Text": {"Data": f"The text of {subject}."}}
    if html is not None:
        body["Html"] = {"Data": html}
    sent = _ses(dev).send_email(
        FromEmailAddress="Shop <app@shop.test>",
        Destination={"ToAddresses": ["ann@example.test"]},
        Content={"Simple": {"Subject": {"Data": subject}, "Body": body}},
    )
    return str(sent["MessageId"])


def test_inbox_shows_mail_and_updates_live(dev: SesameProcess, page: Any, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:6]
    _send(dev, f"Your order {token} has shipped", "<p>On its way.</p>")
    page.goto(f"{dev.endpoint}/console/")
    assert page.url.endswith("/console/inbox")
    row = page.locator("table.inbox tbody tr", has_text=f"Your order {token} has shipped")
    row.wait_for()
    assert "app@shop.test" in row.inner_text() and "ann@example.test" in row.inner_text()
    # Mark this document: a reload would lose the mark.
    page.evaluate("window.sesameMark = 'kept'")
    page.wait_for_timeout(1500)  # the stream is open and has read the newest message
    _send(dev, f"Password reset {token}")
    fresh = page.locator("table.inbox tbody tr", has_text=f"Password reset {token}")
    fresh.wait_for(timeout=15000)
    assert page.evaluate("window.sesameMark") == "kept"
    subjects = page.locator("table.inbox td.subject a").all_inner_texts()
    assert subjects.index(f"Password reset {token}") < subjects.index(f"Your order {token} has shipped")
    screenshot(page, "inbox-list", tmp_path)


def test_script_in_html_mail_does_not_run(dev: SesameProcess, page: Any, tmp_path: Path) -> None:
    html = (
        "<html><head><title>Mail</title></head><body>"
        "<h1>Welcome aboard</h1><p>Thanks for signing up. <a href='https://example.test/start'>Start</a></p>"
        "<script>document.title = 'script ran'; document.body.setAttribute('data-ran', 'yes');"
        " parent.postMessage('script ran', '*'); top.document.title = 'owned';</script>"
        "<img src='x' onerror=\"parent.postMessage('handler ran', '*')\" alt='broken'>"
        "</body></html>"
    )
    message_id = _send(dev, "Welcome with a script", html)
    # Listen for the frame's messages from the start of the console page, before the frame loads.
    page.add_init_script(
        "if (window === window.top) {"
        " window.got = []; window.addEventListener('message', (e) => window.got.push(e.data)); }"
    )
    page.goto(f"{dev.endpoint}/console/inbox/{message_id}")
    frame_element = page.locator("iframe.mail")
    frame_element.wait_for()
    frame = page.frame_locator("iframe.mail")
    assert frame.locator("h1").inner_text() == "Welcome aboard"  # the mail is shown
    page.wait_for_timeout(1000)
    assert frame.locator("body").get_attribute("data-ran") is None
    assert page.evaluate("window.got") == []
    assert page.title().startswith("Welcome with a script")
    assert frame.locator("a").get_attribute("href") == "https://example.test/start"
    screenshot(page, "inbox-message", tmp_path)


def test_attachment_downloads(dev: SesameProcess, page: Any, tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "files@shop.test"
    msg["To"] = "ann@example.test"
    msg["Subject"] = "Your invoice"
    msg.set_content("Attached.")
    msg.add_attachment(b"invoice 42: 10 EUR\n", maintype="text", subtype="plain", filename="invoice-42.txt")
    _ses(dev)
    message_id = client("ses", dev.endpoint).send_raw_email(RawMessage={"Data": msg.as_bytes()})["MessageId"]
    page.goto(f"{dev.endpoint}/console/inbox/{message_id}?tab=attachments")
    with page.expect_download() as info:
        page.get_by_role("link", name="invoice-42.txt").click()
    download = info.value
    assert download.suggested_filename == "invoice-42.txt"
    assert Path(download.path()).read_bytes() == b"invoice 42: 10 EUR\n"
