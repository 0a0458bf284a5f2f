"""The dev inbox in the console (/console/inbox), over HTTP against `sesame dev` on both databases: the
list, search and filters, the message's tabs, downloads, delete, release, CSRF, the frame's policy and the
live stream. Each test sends its own mail (tests of one module may run on different servers)."""

from __future__ import annotations

import contextlib
import html
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sesame.testing.servers import SesameProcess, free_port
from sesame.testing.smtp import SinkServer
from tests.conftest import client


class Console:
    """A browser-like session: the dev session cookie and the page's CSRF token."""

    def __init__(self, endpoint: str) -> None:
        self.http = httpx.Client(base_url=endpoint, follow_redirects=True, timeout=30)
        first = self.http.get("/console/")
        assert first.status_code == 200 and first.url.path == "/console/inbox"
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', first.text)
        assert found
        self.csrf = found[1]

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, data: dict[str, str] | None = None, *, token: bool = True) -> httpx.Response:
        form = {**(data or {}), **({"csrf_token": self.csrf} if token else {})}
        return self.http.post(path, data=form)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def console(dev: SesameProcess) -> Iterator[Console]:
    session = Console(dev.endpoint)
    yield session
    session.close()


def _send(dev: SesameProcess, *, subject: str, text: str = "Hello", html_body: str | None = None,
          sender: str = "app@shop.test", to: str = "ann@example.test", key: str = "test") -> str:  # fmt: skip
    ses = client("sesv2", dev.endpoint, key, "x")
    _identity(ses, sender.rpartition("@")[2])
    body: dict[str, Any] = {"Text": {"Data": text}}
    if html_body is not None:
        body["Html"] = {"Data": html_body}
    sent = ses.send_email(
        FromEmailAddress=sender,
        Destination={"ToAddresses": [to]},
        Content={"Simple": {"Subject": {"Data": subject}, "Body": body}},
    )
    return str(sent["MessageId"])


def _identity(ses: Any, name: str) -> None:
    with contextlib.suppress(ses.exceptions.AlreadyExistsException):
        ses.create_email_identity(EmailIdentity=name)


def _send_raw(dev: SesameProcess, message: EmailMessage) -> str:
    ses = client("ses", dev.endpoint)
    ses.verify_domain_identity(Domain="files.test")
    return str(ses.send_raw_email(RawMessage={"Data": message.as_bytes()})["MessageId"])


def _rows(page: str) -> list[str]:
    """The subjects the list shows, in order."""
    return [html.unescape(s) for s in re.findall(r'<td class="subject"><a href="[^"]+">([^<]*)</a>', page)]


def test_list_newest_first_and_search(dev: SesameProcess, console: Console) -> None:
    token = uuid.uuid4().hex[:8]
    _send(dev, subject=f"first {token}", text="nothing to see")
    _send(dev, subject=f"second {token}", text=f"the body holds Zebra{token}")
    _send(dev, subject=f"third {token}", to=f"bob-{token}@example.test")
    page = console.get("/console/inbox").text
    listed = _rows(page)
    assert listed.index(f"third {token}") < listed.index(f"second {token}") < listed.index(f"first {token}")
    assert "app@shop.test" in page and f"bob-{token}@example.test" in page
    # A word found anywhere, case-insensitively; a word only in a body; a recipient; a subject field.
    assert _rows(console.get("/console/inbox", params={"q": token.upper()}).text) == [
        f"third {token}", f"second {token}", f"first {token}"
    ]  # fmt: skip
    assert _rows(console.get("/console/inbox", params={"q": f"zebra{token}".upper()}).text) == [
        f"second {token}"
    ]
    assert _rows(console.get("/console/inbox", params={"q": f"body:Zebra{token}"}).text) == [
        f"second {token}"
    ]
    assert _rows(console.get("/console/inbox", params={"q": f"to:bob-{token}"}).text) == [f"third {token}"]
    assert _rows(console.get("/console/inbox", params={"q": f'subject:"first {token}"'}).text) == [
        f"first {token}"
    ]
    assert _rows(console.get("/console/inbox", params={"q": f"{token} absent-{token}"}).text) == []
    # Dates: nothing captured tomorrow.
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    assert _rows(console.get("/console/inbox", params={"q": token, "since": tomorrow}).text) == []
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert (
        len(_rows(console.get("/console/inbox", params={"q": token, "since": today, "until": today}).text))
        == 3
    )


def test_filters_per_account_and_identity(dev: SesameProcess, console: Console) -> None:
    token = uuid.uuid4().hex[:8]
    _send(dev, subject=f"acct {token}", key="222233334444", sender=f"a@{token}.test")
    _send(dev, subject=f"default {token}", sender=f"b@other-{token}.test")
    by_account = _rows(console.get("/console/inbox", params={"account": "222233334444"}).text)
    assert f"acct {token}" in by_account and f"default {token}" not in by_account
    assert _rows(console.get("/console/inbox", params={"identity": f"{token}.TEST"}).text) == [
        f"acct {token}"
    ]
    assert _rows(console.get("/console/inbox", params={"identity": f"b@other-{token}.test"}).text) == [
        f"default {token}"
    ]


def test_paging_is_keyset(dev: SesameProcess, console: Console) -> None:
    token = uuid.uuid4().hex[:8]
    ids = [_send(dev, subject=f"page{i} {token}") for i in range(3)]
    first = console.get("/console/inbox", params={"q": token}).text
    assert _rows(first) == [f"page2 {token}", f"page1 {token}", f"page0 {token}"]
    assert "Older messages" not in first  # 3 rows on a page of 50
    # A page starts after the (created_at, id) of the last row of the one before.
    [middle] = httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": ids[1]}).json()["messages"]
    after = f"{middle['Timestamp']}|{ids[1]}"
    older = console.get("/console/inbox", params={"q": token, "after": after}).text
    assert _rows(older) == [f"page0 {token}"]
    assert f'href="/console/inbox?q={token}">Newest</a>' in older


def test_message_tabs(dev: SesameProcess, console: Console) -> None:
    token = uuid.uuid4().hex[:8]
    message_id = _send(
        dev,
        subject=f"tabs {token}",
        text=f"plain text {token}",
        html_body=f'<p><a href="https://example.test/x">x</a> <img src="https://img.test/a.png"> {token}</p>',
    )
    base = f"/console/inbox/{message_id}"
    page = console.get(base).text  # the HTML tab by default
    assert f"tabs {token}" in page
    assert f'<iframe class="mail" title="The message\'s HTML" src="{base}/html"' in page
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
    assert "allow-scripts" not in page and "allow-same-origin" not in page
    assert f"plain text {token}" in console.get(base, params={"tab": "text"}).text
    headers = console.get(base, params={"tab": "headers"}).text
    assert re.search(r'<th scope="row">Subject</th><td>tabs ' + token, headers)
    assert "Content-Type: multipart/alternative" in console.get(base, params={"tab": "raw"}).text
    events = console.get(base, params={"tab": "events"}).text
    assert "<td>Send</td>" in events
    checks = console.get(base, params={"tab": "checks"}).text
    assert "https://example.test/x" in checks and "https://img.test/a.png" in checks  # the image has no alt
    # shop.test is a verified domain identity with Easy DKIM: signing would pass.
    assert re.search(r'<span class="badge ok">pass</span> Signed with s=\w+, d=shop\.test', checks)
    raw = console.get(f"{base}/raw")
    assert raw.headers["content-type"].startswith("message/rfc822")
    assert raw.headers["content-disposition"] == f'attachment; filename="{message_id}.eml"'
    assert raw.content.startswith(b"Date: ") and f"tabs {token}".encode() in raw.content
    assert console.get("/console/inbox/no-such-id").status_code == 404


def test_dkim_not_signed_without_a_domain_identity(dev: SesameProcess, console: Console) -> None:
    ses = client("sesv2", dev.endpoint)
    _identity(ses, "solo@plain-address.test")
    sent = ses.send_email(
        FromEmailAddress="solo@plain-address.test",
        Destination={"ToAddresses": ["x@example.test"]},
        Content={"Simple": {"Subject": {"Data": "unsigned"}, "Body": {"Text": {"Data": "t"}}}},
    )
    checks = console.get(f"/console/inbox/{sent['MessageId']}", params={"tab": "checks"}).text
    assert '<span class="badge warn">not signed</span> No verified identity for the From domain' in checks


def test_template_and_data_are_shown(dev: SesameProcess, console: Console) -> None:
    token = uuid.uuid4().hex[:8]
    ses = client("sesv2", dev.endpoint)
    _identity(ses, "shop.test")
    ses.create_email_template(
        TemplateName=f"welcome-{token}",
        TemplateContent={"Subject": "Welcome {{name}}", "Text": "Hi {{name}}", "Html": "<p>Hi {{name}}</p>"},
    )
    sent = ses.send_email(
        FromEmailAddress="app@shop.test",
        Destination={"ToAddresses": ["x@example.test"]},
        Content={
            "Template": {"TemplateName": f"welcome-{token}", "TemplateData": json.dumps({"name": token})}
        },
    )
    page = console.get(f"/console/inbox/{sent['MessageId']}").text
    assert f"<dd>welcome-{token}</dd>" in page
    assert f"&#34;name&#34;: &#34;{token}&#34;" in page
    assert f"Welcome {token}" in page


def test_html_frame_has_its_own_policy(dev: SesameProcess, console: Console) -> None:
    message_id = _send(
        dev, subject="frame", html_body="<html><head></head><body><script>x()</script>hi</body></html>"
    )
    frame = console.get(f"/console/inbox/{message_id}/html")
    csp = frame.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'unsafe-inline'" in csp
    assert "img-src data: cid:;" in csp and "frame-ancestors 'self'" in csp and "script-src" not in csp
    assert frame.text.startswith('<html><head><base target="_blank">')
    with_images = console.get(f"/console/inbox/{message_id}/html", params={"images": "1"})
    assert "img-src * data: cid:;" in with_images.headers["content-security-policy"]
    # The console's own pages keep their policy.
    assert (
        "frame-ancestors 'none'"
        in console.get(f"/console/inbox/{message_id}").headers["content-security-policy"]
    )


def test_attachments_download_safely(dev: SesameProcess, console: Console) -> None:
    msg = EmailMessage()
    msg["From"] = "files@files.test"
    msg["To"] = "ann@example.test"
    msg["Subject"] = "with files"
    msg.set_content("see attached")
    msg.add_alternative('<p>logo <img src="cid:logo@x" alt="Logo"></p>', subtype="html")
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment("<script>alert(1)</script>", subtype="html", filename='../../"evil" name.html')
    related = msg.get_payload()[0]  # the multipart/alternative: give its HTML a related inline image
    related.get_payload()[1].add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<logo@x>")
    message_id = _send_raw(dev, msg)
    base = f"/console/inbox/{message_id}"
    listed = console.get("/console/inbox", params={"q": "subject:with files"}).text
    assert 'title="Has attachments"' in listed
    page = console.get(base, params={"tab": "attachments"}).text
    links = dict(
        (html.unescape(name), href)
        for href, name in re.findall(r'<a href="([^"]+/parts/\d+)"[^>]*>([^<]+)</a>', page)
    )
    assert set(links) == {"report.pdf", '../../"evil" name.html', "cid:logo@x"}
    pdf = console.get(links["report.pdf"])
    assert pdf.content == b"%PDF-1.4 fake"
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="report.pdf"'
    evil = console.get(links['../../"evil" name.html'])
    assert evil.headers["content-type"] == "application/octet-stream"  # a browser would run HTML
    assert evil.headers["content-disposition"] == 'attachment; filename="_evil_ name.html"'
    assert evil.headers["x-content-type-options"] == "nosniff"
    # The inline image is in the frame as a data: URL (the frame has no origin to fetch cid: from).
    frame = console.get(f"{base}/html").text
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in frame


def test_delete_one_and_all(dev: SesameProcess, console: Console) -> None:
    token = uuid.uuid4().hex[:8]
    keep = _send(dev, subject=f"keep {token}")
    gone = _send(dev, subject=f"gone {token}")
    # Without the CSRF token nothing happens.
    refused = console.post(f"/console/inbox/{gone}/delete", token=False)
    assert refused.status_code == 403 and "did not come from this console" in refused.text
    assert httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": gone}).json()["messages"]
    done = console.post(f"/console/inbox/{gone}/delete")
    assert done.status_code == 200 and "The message is deleted." in done.text
    assert httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": gone}).json() == {"messages": []}
    assert _rows(console.get("/console/inbox", params={"q": token}).text) == [f"keep {token}"]
    assert console.post("/console/inbox/delete-all", token=False).status_code == 403
    assert httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": keep}).json()["messages"]
    done = console.post("/console/inbox/delete-all")
    assert "Every captured message is deleted." in done.text
    assert httpx.get(f"{dev.endpoint}/_aws/ses").json() == {"messages": []}
    assert "No mail captured yet" in console.get("/console/inbox").text


def test_release_to_an_smtp_server(dev: SesameProcess, console: Console) -> None:
    message_id = _send(dev, subject="release me", to="orig@example.test")
    stored = httpx.get(f"{dev.endpoint}/_aws/ses", params={"id": message_id}).json()["messages"]
    assert stored
    with SinkServer() as sink:
        relay = f"127.0.0.1:{sink.port}"
        done = console.post(f"/console/inbox/{message_id}/release", {"relay": relay, "recipients": ""})
        assert f"Released to {relay} for orig@example.test." in done.text
        [got] = sink.wait_for(1)
        assert got.rcpt_tos == ["orig@example.test"] and got.mail_from == "app@shop.test"
        assert b"Subject: release me\r\n" in got.data
        done = console.post(
            f"/console/inbox/{message_id}/release", {"relay": relay, "recipients": "a@x.test, b@y.test"}
        )
        assert "for a@x.test, b@y.test." in done.text
        assert sink.wait_for(2)[1].rcpt_tos == ["a@x.test", "b@y.test"]
        assert (
            console.post(f"/console/inbox/{message_id}/release", {"relay": relay}, token=False).status_code
            == 403
        )
    bad = console.post(f"/console/inbox/{message_id}/release", {"relay": "nonsense"})
    assert "give the SMTP server as HOST:PORT" in bad.text


def test_relay_flag_sends_every_message_on_and_prefills_the_release_form(
    module_database: str, tmp_path: Path
) -> None:
    """``sesame dev --relay HOST:PORT``: each message goes to the relay (Mailpit, say) and stays in the
    inbox."""
    with SinkServer() as sink:
        relay = f"127.0.0.1:{sink.port}"
        proc = SesameProcess("dev", data_dir=tmp_path, database=module_database)
        proc.args += ["--relay", relay]
        with proc:
            subject = f"relayed {uuid.uuid4().hex[:8]}"  # the module's database holds other tests' mail
            message_id = _send(proc, subject=subject, to="far@example.test")  # type: ignore[arg-type]
            [got] = sink.wait_for(1)
            assert got.rcpt_tos == ["far@example.test"] and f"Subject: {subject}\r\n".encode() in got.data
            session = Console(proc.endpoint)
            try:
                page = session.get(f"/console/inbox/{message_id}").text
                assert f'name="relay" value="{relay}"' in page
                assert f"Release sends a message to {relay}." in session.get("/console/inbox").text
                assert _rows(session.get("/console/inbox", params={"q": subject}).text) == [subject]
            finally:
                session.close()


class _Links(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        if self.path == "/no-head":
            self.send_response(405)
        else:
            self.send_response(200 if self.path in ("/ok", "/get-only") else 404)
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/get-only" else 500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_check_links_lists_the_broken_ones(dev: SesameProcess, console: Console) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Links)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_address[1]}"
    dead = f"http://127.0.0.1:{free_port()}/down"
    body = (
        "".join(f'<a href="{site}{p}">{p}</a>' for p in ("/ok", "/missing", "/no-head"))
        + f'<a href="{dead}">d</a>'
    )
    try:
        message_id = _send(
            dev, subject="links", html_body=body + '<a href="mailto:x@y.test">m</a><img src="a.png" alt="">'
        )
        base = f"/console/inbox/{message_id}"
        before = console.get(base, params={"tab": "checks"}).text
        assert "Every image has an alt attribute." in before and "mailto:x@y.test" in before
        assert "Broken links" not in before
        page = console.post(f"{base}/check-links").text
        broken = re.search(r'<ul class="broken">(.*?)</ul>', page, re.S)
        assert broken
        assert f"{site}/missing</code> — 404" in broken[1]
        assert f"{site}/no-head</code> — 500" in broken[1]  # HEAD refused: GET asked, and it fails
        assert f"{dead}</code> — " in broken[1]
        assert f"{site}/ok<" not in broken[1]
        assert console.post(f"{base}/check-links", token=False).status_code == 403
    finally:
        server.shutdown()
        server.server_close()


def test_list_fragment_and_live_stream(dev: SesameProcess, console: Console) -> None:
    page = console.get("/console/inbox").text
    assert 'data-live="/console/inbox/list" data-stream="/console/inbox/stream"' in page
    token = uuid.uuid4().hex[:8]
    with console.http.stream("GET", "/console/inbox/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 2000"
        _send(dev, subject=f"live {token}")
        started = time.monotonic()
        while next(lines) != "event: change":
            assert time.monotonic() - started < 10
    fragment = console.get("/console/inbox/list", params={"q": token}).text
    assert "<html" not in fragment and _rows(fragment) == [f"live {token}"]


def test_inbox_is_dev_only(serve: Any) -> None:
    answer = httpx.get(f"{serve.endpoint}/console/inbox", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")
