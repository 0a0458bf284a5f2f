"""Open and click tracking in dev mode (mail captured, not delivered): raw messages selecting their set by
header are tracked like the API's, a CustomRedirectDomain names the tracking host, and mail without a
tracking set is stored as it came."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from urllib.parse import urlsplit

import httpx
import pytest

from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, client, query
from tests.e2e.test_tracking import BROWSER, Links, event_destinations, tracked_rows

RAW = (
    b"From: news@example.com\n"
    b"To: reader@example.net\n"
    b"Subject: raw\n"
    b"X-SES-CONFIGURATION-SET: {set}\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/alternative; boundary="b1"\n'
    b"\n"
    b"--b1\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"Gr=C3=BC=C3=9Fe: https://example.com/deal\n"
    b"--b1\n"
    b"Content-Type: text/html; charset=utf-8\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b'<p>Gr=C3=BC=C3=9Fe <a href=3D"https://example.com/deal">deal</a></p>{{{{ses:openTracker}}}}\n'
    b"--b1--\n"
)


@pytest.fixture(scope="module")
def dev_server(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp("tracking-dev")
    with SesameProcess("dev", data_dir=data_dir, database=module_database) as proc:
        client("sesv2", proc.endpoint).create_email_identity(EmailIdentity="example.com")  # verified at once
        yield Serve(proc, data_dir, module_database)


def stored(sesame: Serve, message_id: str) -> bytes:
    (row,) = query(sesame, "SELECT body FROM messages WHERE id = :m", m=message_id)
    return bytes(row["body"])


def parts(data: bytes) -> dict[str, str]:
    msg = message_from_bytes(data, policy=default_policy)
    return {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}


def test_a_raw_message_naming_its_set_by_header_is_tracked(dev_server: Serve) -> None:
    v1 = client("ses", dev_server.endpoint)
    v2 = client("sesv2", dev_server.endpoint)
    v2.create_configuration_set(ConfigurationSetName="raw-tracked")
    event_destinations(v2, "raw-tracked", ["OPEN", "CLICK"])
    data = RAW.replace(b"{set}", b"raw-tracked")
    message_id = v1.send_raw_email(RawMessage={"Data": data})["MessageId"]
    body = stored(dev_server, message_id)
    assert b"X-SES-CONFIGURATION-SET" not in body
    got = parts(body)
    start, end = data.index(b"--b1\nContent-Type: text/plain"), data.index(b"--b1\nContent-Type: text/html")
    text_part = data[start:end]
    assert text_part in body  # the text part byte for byte: text is never tracked
    page = Links()
    page.feed(got["text/html"])
    assert got["text/html"].startswith("<p>Grüße <a href=")
    ((pixel,), (anchor,)) = page.images, page.anchors
    assert "{{ses:openTracker}}" not in got["text/html"]
    assert got["text/html"].index("<img") > got["text/html"].index("</a>")  # where the placeholder was
    response = httpx.get(str(anchor["href"]), headers={"User-Agent": BROWSER})
    assert (response.status_code, response.headers["location"]) == (302, "https://example.com/deal")
    assert httpx.get(str(pixel["src"]), headers={"User-Agent": BROWSER}).status_code == 200
    kinds = [(r["event_type"], r["detail"].get("link")) for r in tracked_rows(dev_server, message_id)]
    assert kinds == [("Click", "https://example.com/deal"), ("Open", None)]


def test_a_custom_redirect_domain_is_the_tracking_host(dev_server: Serve) -> None:
    v2 = client("sesv2", dev_server.endpoint)
    v2.create_configuration_set(
        ConfigurationSetName="branded",
        TrackingOptions={"CustomRedirectDomain": "track.example.com", "HttpsPolicy": "REQUIRE_OPEN_ONLY"},
    )
    event_destinations(v2, "branded", ["OPEN", "CLICK"])
    message_id = v2.send_email(
        FromEmailAddress="news@example.com",
        Destination={"ToAddresses": ["reader@example.net"]},
        Content={
            "Simple": {
                "Subject": {"Data": "s"},
                "Body": {"Html": {"Data": '<a href="http://example.com/plain">x</a>'}},
            }
        },
        ConfigurationSetName="branded",
    )["MessageId"]
    page = Links()
    page.feed(parts(stored(dev_server, message_id))["text/html"])
    pixel, link = urlsplit(str(page.images[0]["src"])), urlsplit(str(page.anchors[0]["href"]))
    assert (pixel.scheme, pixel.netloc) == ("https", "track.example.com")  # opens: https required
    assert (link.scheme, link.netloc) == ("http", "track.example.com")  # clicks: the link's own scheme
    # The domain points at this server (a CNAME, or a proxy for HTTPS): any host name is answered.
    server = urlsplit(dev_server.endpoint)
    response = httpx.get(
        f"http://{server.netloc}{link.path}", headers={"Host": "track.example.com", "User-Agent": BROWSER}
    )
    assert (response.status_code, response.headers["location"]) == (302, "http://example.com/plain")
    assert [r["event_type"] for r in tracked_rows(dev_server, message_id)] == ["Click"]


def test_mail_without_a_tracking_set_is_stored_as_it_came(dev_server: Serve) -> None:
    v1 = client("ses", dev_server.endpoint)
    v2 = client("sesv2", dev_server.endpoint)
    v2.create_configuration_set(ConfigurationSetName="untracked")
    data = RAW.replace(b"{set}", b"untracked")
    message_id = v1.send_raw_email(RawMessage={"Data": data})["MessageId"]
    body = stored(dev_server, message_id)
    cut = data.index(b"\n\n--b1")
    assert body.endswith(data[cut:])  # only the header section was edited (X-SES-*, Message-ID, Date)
