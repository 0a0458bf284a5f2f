"""Tracking URLs: when a configuration set asks for them, their scheme and host, and their signature
(nothing a reader can change in one is accepted); which opens and clicks are a machine's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from cryptography.fernet import Fernet

from sesame.config import Settings
from sesame.domain.secrets import KeySource, SecretBox
from sesame.domain.sending import new_message_id
from sesame.domain.tracking import Hit, Plan, Tracking, machine_reason, plan

MESSAGE_ID = new_message_id()


def tracking(tmp_path: Path, *keys: bytes, public_url: str = "https://mail.example.com") -> Tracking:
    box = SecretBox(KeySource(tmp_path, env={}))
    box.use(list(keys) or [Fernet.generate_key()])
    return Tracking(None, Settings(public_url=public_url), box)  # type: ignore[arg-type]


def destination(types: list[str], enabled: bool = True) -> dict[str, object]:
    return {"Name": "d", "Enabled": enabled, "MatchingEventTypes": types, "SnsDestination": {"TopicArn": "x"}}


def test_tracking_follows_enabled_destinations_matching_open_or_click() -> None:
    assert plan({}) is None
    assert plan({"EventDestinations": [destination(["SEND", "DELIVERY"])]}) is None
    assert plan({"EventDestinations": [destination(["OPEN", "CLICK"], enabled=False)]}) is None
    assert plan({"EventDestinations": [destination(["OPEN"])]}) == Plan(opens=True, clicks=False)
    both = plan({"EventDestinations": [destination(["SEND"]), destination(["CLICK"]), destination(["OPEN"])]})
    assert both == Plan(opens=True, clicks=True)
    custom = plan(
        {
            "EventDestinations": [destination(["CLICK"])],
            "TrackingOptions": {"CustomRedirectDomain": "track.example.com", "HttpsPolicy": "REQUIRE"},
        }
    )
    assert custom == Plan(opens=False, clicks=True, domain="track.example.com", https_policy="REQUIRE")


@pytest.mark.parametrize(
    ("policy", "pixel", "http_link", "https_link"),
    [
        ("OPTIONAL", "http", "http", "https"),
        ("REQUIRE_OPEN_ONLY", "https", "http", "https"),
        ("REQUIRE", "https", "https", "https"),
    ],
)
def test_custom_redirect_domain_schemes_follow_the_https_policy(
    tmp_path: Path, policy: str, pixel: str, http_link: str, https_link: str
) -> None:
    t = tracking(tmp_path)
    p = Plan(opens=True, clicks=True, domain="track.example.com", https_policy=policy)
    for url, scheme in (
        (t.pixel_url(p, MESSAGE_ID), pixel),
        (t.click_url(p, MESSAGE_ID, "http://example.com/", ""), http_link),
        (t.click_url(p, MESSAGE_ID, "https://example.com/", ""), https_link),
    ):
        assert urlsplit(url).scheme == scheme
        assert urlsplit(url).netloc == "track.example.com"


def test_without_a_custom_domain_urls_go_to_the_public_url(tmp_path: Path) -> None:
    t = tracking(tmp_path, public_url="https://mail.example.com/")
    p = Plan(opens=True, clicks=True)
    assert t.pixel_url(p, MESSAGE_ID).startswith(f"https://mail.example.com/I0/{MESSAGE_ID}/")
    assert t.click_url(p, MESSAGE_ID, "http://example.com/", "").startswith(
        "https://mail.example.com/L0/http%3A%2F%2Fexample.com%2F/-/"
    )


def segments(url: str, prefix: str) -> list[str]:
    return urlsplit(url).path[len(prefix) + 2 :].split("/")


def test_a_click_url_gives_back_its_link_and_tags_and_nothing_altered_passes(tmp_path: Path) -> None:
    t = tracking(tmp_path)
    p = Plan(opens=True, clicks=True)
    link = "https://example.com/path?q=a%20b&x=1#frag"
    url = t.click_url(p, MESSAGE_ID, link, "a:1;b:2;")
    good = segments(url, "L0")
    assert t.clicked(good) == (MESSAGE_ID, link, "a:1;b:2;")
    other = segments(t.click_url(p, MESSAGE_ID, "https://evil.example/", ""), "L0")
    forged = [
        ["https%3A%2F%2Fevil.example%2F", *good[1:]],  # another link
        [good[0], "-", *good[2:]],  # tags dropped
        [good[0], good[1], new_message_id(), good[3]],  # another message
        [*good[:3], other[3]],  # another link's signature
        [*good[:3], good[3][:-1] + ("A" if good[3][-1] != "A" else "B")],
        [*good[:3], ""],
        good[:3],
        [*good, "x"],
    ]
    for segs in forged:
        assert t.clicked(segs) is None, segs
    # Not a URL of this server's keys.
    assert tracking(tmp_path).clicked(good) is None


def test_a_pixel_url_is_bound_to_its_message(tmp_path: Path) -> None:
    t = tracking(tmp_path)
    message_id, signature = segments(t.pixel_url(Plan(opens=True, clicks=False), MESSAGE_ID), "I0")
    assert t.opened(message_id, signature)
    assert not t.opened(new_message_id(), signature)
    assert not t.opened(message_id, signature.upper())
    assert not t.opened("not-an-id", t.sign("I0", "not-an-id"))


def test_urls_signed_before_a_key_rotation_still_verify(tmp_path: Path) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    url = tracking(tmp_path, old).click_url(Plan(opens=False, clicks=True), MESSAGE_ID, "https://e.com/", "")
    rotated = tracking(tmp_path, new, old)
    assert rotated.clicked(segments(url, "L0")) == (MESSAGE_ID, "https://e.com/", "")
    assert tracking(tmp_path, new).clicked(segments(url, "L0")) is None


def hit(kind: str, agent: str) -> Hit:
    return Hit(kind, MESSAGE_ID, "192.0.2.1", agent, dt.datetime.now(dt.UTC), "https://e.com/")


GOOGLE = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        (GOOGLE, "GoogleImageProxy"),
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "YahooMailProxy"),
        ("Mozilla/5.0", "AppleMailPrivacyProtection"),
        ("", "NoUserAgent"),
        ("python-requests/2.32", "Program"),
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "Program"),
        (BROWSER, None),
    ],
)
def test_machine_opens_by_user_agent(agent: str, reason: str | None) -> None:
    assert machine_reason(hit("Open", agent), 0.0, 10.0) == reason


def test_a_click_right_after_delivery_is_a_scanners() -> None:
    assert machine_reason(hit("Click", BROWSER), 3.0, 10.0) == "ClickSoonAfterDelivery"
    assert machine_reason(hit("Click", BROWSER), 30.0, 10.0) is None
    assert machine_reason(hit("Click", BROWSER), 3.0, 0.0) is None  # 0 turns the timing rule off
    assert machine_reason(hit("Open", BROWSER), 3.0, 10.0) is None  # opens as mail arrives are normal


def test_links_are_percent_encoded_as_one_path_segment(tmp_path: Path) -> None:
    t = tracking(tmp_path)
    link = "https://user@example.com:8443/a/b;p?q=[1]&r='x'(y)*z+w,v=u!$#f%20g~h"
    url = t.click_url(Plan(opens=False, clicks=True), MESSAGE_ID, link, "k:v;")
    path = urlsplit(url).path
    assert path.startswith(f"/L0/{quote(link, safe='')}/{quote('k:v;', safe='')}/{MESSAGE_ID}/")
    assert t.clicked(segments(url, "L0")) == (MESSAGE_ID, link, "k:v;")
