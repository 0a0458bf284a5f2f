"""Open and click tracking, end to end: a message sent through a configuration set with an OPEN and CLICK
event destination arrives (at a sink SMTP server) with its pixel and redirects, still DKIM-valid; a
reader's fetches of them are recorded as Open and Click events, and a forged URL gets nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit

import dkim
import httpx
import pytest
import sqlalchemy as sa

from sesame.storage.models import DeliveryEvent, Message, utcnow
from sesame.testing.dns import DnsServer
from sesame.testing.smtp import SinkServer
from tests.conftest import Serve, query
from tests.e2e.servers import serve_env, serving
from tests.e2e.test_delivery import Sender, events, mx, received_by, write

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
LINK = "https://shop.example.com/books?id=7&ref=mail"
HTML = f"""<html><body>
<p>New this week:
<a href="{LINK.replace("&", "&amp;")}" ses:tags="product:book;genre:fiction;">a book</a>.</p>
<p><a href="https://example.com/unsubscribe" ses:no-track>Unsubscribe</a>
or <a href="mailto:help@example.com">write to us</a>.</p>
</body></html>"""
TEXT = f"New this week: {LINK}\n"


@pytest.fixture(scope="module")
def sesame(
    module_database: str, sink: SinkServer, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    env = serve_env(
        dns_server,
        DELIVERY__MX_PORT=str(sink.port),
        # Roomy, so that a slow machine still counts the test's first click as a scanner's.
        TRACKING__MACHINE_CLICK_SECONDS="60",
    )
    with serving(module_database, tmp_path_factory, "tracking", env) as server:
        yield server


class TrackedSender(Sender):
    """A sender with a recipient domain of its own, whose MX is the sink."""

    def __init__(self, sesame: Serve, dns_server: DnsServer, n: int) -> None:
        super().__init__(sesame, dns_server, n)
        self.to_domain = f"to{n}.test"
        mx(dns_server, self.to_domain, (10, "mx.sink.test"))
        dns_server.add("mx.sink.test", "A", "127.0.0.1")


_n = iter(range(1000))


@pytest.fixture
def sender(sesame: Serve, dns_server: DnsServer) -> TrackedSender:
    return TrackedSender(sesame, dns_server, next(_n))


def event_destinations(v2: Any, name: str, types: list[str]) -> None:
    """One enabled destination matching ``types`` on the configuration set: CloudWatch, which needs no
    topic or stream to exist (its counts go to /metrics here)."""
    dimension = {"DimensionName": "ses:configuration-set", "DimensionValueSource": "MESSAGE_TAG",
                 "DefaultDimensionValue": "none"}  # fmt: skip
    v2.create_configuration_set_event_destination(
        ConfigurationSetName=name,
        EventDestinationName="engagement",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": types,
            "CloudWatchDestination": {"DimensionConfigurations": [dimension]},
        },
    )


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag == "a":
            self.anchors.append(dict(attrs))


def delivered_parts(data: bytes) -> dict[str, str]:
    msg = message_from_bytes(data, policy=default_policy)
    return {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}


def tracked_rows(sesame: Serve, message_id: str) -> list[dict[str, Any]]:
    rows = query(
        sesame,
        "SELECT event_type, account_id, region, detail FROM events"
        " WHERE message_id = :m AND event_type IN ('Open', 'Click') ORDER BY id",
        m=message_id,
    )
    for r in rows:
        r["detail"] = r["detail"] if isinstance(r["detail"], dict) else json.loads(r["detail"])
    return rows


def dkim_valid(data: bytes, sender: Sender) -> bool:
    records = {
        line.split()[0].rstrip("."): line.split("\t", 4)[4].strip('"') for line in sender.zone.splitlines()
    }
    return bool(
        dkim.verify(data, dnsfunc=lambda name, timeout=5: records[name.decode().rstrip(".")].encode())
    )


def test_opens_and_clicks_of_a_delivered_message_are_recorded(
    sesame: Serve, sender: TrackedSender, sink: SinkServer
) -> None:
    sender.v2.create_configuration_set(ConfigurationSetName="engagement")
    event_destinations(sender.v2, "engagement", ["SEND", "DELIVERY", "OPEN", "CLICK"])
    rcpt = f"reader@{sender.to_domain}"
    content = {
        "Simple": {
            "Subject": {"Data": "This week"},
            "Body": {"Text": {"Data": TEXT}, "Html": {"Data": HTML}},
        }
    }
    message_id = sender.send(rcpt, content=content, ConfigurationSetName="engagement")
    got = received_by(sink, rcpt)
    assert dkim_valid(got.data, sender)  # signed after the rewriting, so it holds

    parts = delivered_parts(got.data)
    assert parts["text/plain"].replace("\r\n", "\n") == TEXT  # text parts are never tracked
    page = Links()
    page.feed(parts["text/html"])
    (pixel,) = page.images
    assert pixel["style"] == "display:none;width:1px;height:1px" and pixel["alt"] == ""
    tracked, unsubscribe, mailto = page.anchors
    assert unsubscribe == {"href": "https://example.com/unsubscribe"}  # ses:no-track honoured, stripped
    assert mailto == {"href": "mailto:help@example.com"}
    assert "ses:tags" not in tracked
    pixel_url, click_url = str(pixel["src"]), str(tracked["href"])
    server = urlsplit(sesame.endpoint)
    assert urlsplit(pixel_url).netloc == urlsplit(click_url).netloc == server.netloc  # its own address
    assert f"/I0/{message_id}/" in pixel_url

    with httpx.Client(headers={"User-Agent": BROWSER}, timeout=10) as http:
        image = http.get(pixel_url)
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/gif"
        assert image.content.startswith(b"GIF89a") and len(image.content) < 64
        assert "no-cache" in image.headers["cache-control"]
        clicked = http.get(click_url)
        assert clicked.status_code == 302
        assert clicked.headers["location"] == LINK  # the original link, entities decoded
        assert "no-store" in clicked.headers["cache-control"]

        # Forged: another link under the same signature, another message, a changed signature.
        head, _, rest = click_url.partition("/L0/")
        link, tags, mid, signature = rest.split("/")
        evil = quote("https://evil.example/phish", safe="")
        for forged in (
            f"{head}/L0/{evil}/{tags}/{mid}/{signature}",
            f"{head}/L0/{link}/-/{mid}/{signature}",
            f"{head}/L0/{link}/{tags}/{mid}/{signature[:-2]}xx",
            f"{head}/L0/{evil}",
            pixel_url[:-3] + "abc",
        ):
            refused = http.get(forged)
            assert refused.status_code == 404, forged
            assert "location" not in refused.headers

        # Clicked again minutes after delivery (its Delivery record moved back): a reader's click.
        events(sesame, message_id, want=1)  # the Delivery record is there
        table = DeliveryEvent.__table__
        earlier = utcnow() - dt.timedelta(minutes=5)
        write(
            sesame,
            sa.update(table).where(table.c.message_id == message_id, table.c.event_type == "Delivery"),  # type: ignore[attr-defined]
            {"created_at": earlier},
        )
        assert http.get(click_url).status_code == 302

    rows = tracked_rows(sesame, message_id)
    assert [r["event_type"] for r in rows] == ["Open", "Click", "Click"]
    assert {(r["account_id"], r["region"]) for r in rows} == {(sender.id, "us-east-1")}
    opened, click = rows[0]["detail"], rows[1]["detail"]
    assert set(opened) == {"ipAddress", "timestamp", "userAgent"}  # a reader's: no "machine"
    assert opened["ipAddress"] == "127.0.0.1" and opened["userAgent"] == BROWSER
    assert opened["timestamp"].endswith("Z")
    # Fetched within seconds of delivery: a link scanner's speed, so marked, SES's fields unchanged.
    assert click["machine"] == "ClickSoonAfterDelivery"
    assert click["link"] == LINK
    assert click["linkTags"] == {"product": ["book"], "genre": ["fiction"]}
    assert (click["ipAddress"], click["userAgent"]) == ("127.0.0.1", BROWSER)
    later = rows[2]["detail"]
    assert set(later) == {"ipAddress", "timestamp", "userAgent", "link", "linkTags"}
    assert later["link"] == LINK


def test_a_configuration_set_without_open_or_click_leaves_the_message_alone(
    sesame: Serve, sender: TrackedSender, sink: SinkServer
) -> None:
    sender.v2.create_configuration_set(ConfigurationSetName="plain")
    event_destinations(sender.v2, "plain", ["SEND", "DELIVERY"])
    rcpt = f"other@{sender.to_domain}"
    content = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Html": {"Data": HTML}}}}
    sender.send(rcpt, content=content, ConfigurationSetName="plain")
    html = delivered_parts(received_by(sink, rcpt).data)["text/html"]
    assert html.replace("\r\n", "\n").rstrip("\n") == HTML


def test_machine_opens_and_late_hits(sesame: Serve, sender: TrackedSender, sink: SinkServer) -> None:
    sender.v2.create_configuration_set(ConfigurationSetName="opens")
    event_destinations(sender.v2, "opens", ["OPEN"])
    rcpt = f"late@{sender.to_domain}"
    content = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Html": {"Data": HTML}}}}
    message_id = sender.send(rcpt, content=content, ConfigurationSetName="opens")
    page = Links()
    page.feed(delivered_parts(received_by(sink, rcpt).data)["text/html"])
    assert page.anchors[0]["href"] == LINK  # opens only: links as written
    pixel_url = str(page.images[0]["src"])
    proxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    assert httpx.head(pixel_url, headers={"User-Agent": BROWSER}).status_code == 200  # records nothing
    assert httpx.get(pixel_url, headers={"User-Agent": proxy}).status_code == 200
    (row,) = tracked_rows(sesame, message_id)
    assert row["detail"]["machine"] == "GoogleImageProxy"
    assert row["detail"]["userAgent"] == proxy

    # Sent 61 days ago: the pixel still answers, nothing is recorded.
    table = Message.__table__
    old = utcnow() - dt.timedelta(days=61)
    write(sesame, sa.update(table).where(table.c.id == message_id), {"created_at": old})  # type: ignore[attr-defined]
    assert httpx.get(pixel_url, headers={"User-Agent": BROWSER}).status_code == 200
    assert len(tracked_rows(sesame, message_id)) == 1
