"""The account console's first pages against ``sesame serve`` (both databases): an account user signs
in with an access key and sees the dashboard, identities, templates and messages the API shows.

Identities are verified for real: records are published on a loopback DNS server. Delivery is off,
so every recipient stays queued and the figures do not move while a test compares them with the API.
"""

from __future__ import annotations

import html as html_lib
import re
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, client, query

SIMULATOR = "success@simulator.amazonses.com"
PAGE_SIZE = 5


@pytest.fixture(scope="module")
def sesame(
    module_database: str, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp("console-account")
    env = {
        "SESAME_DNS__NAMESERVERS": dns_server.address,
        "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
        "SESAME_DELIVERY__ENABLED": "false",
        "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
        "SESAME_CONSOLE__PAGE_SIZE": str(PAGE_SIZE),  # small, so that a few messages make pages
    }
    with SesameProcess("serve", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)


class User:
    """An account with a verified domain, its API clients, and a signed-in console session."""

    def __init__(self, sesame: Serve, dns: DnsServer, name: str) -> None:
        self.sesame, self.dns = sesame, dns
        self.account = sesame.new_account(name)
        self.id = self.account["AccountId"]
        self.v1 = sesame.client("ses", self.account)
        self.v2 = sesame.client("sesv2", self.account)
        self.domain = f"{name}.test"
        # Still in the sandbox, but faster than its one message a second.
        sesame.cli("accounts", "update", self.id, "--max-send-rate=100")
        self.v2.create_email_identity(EmailIdentity=self.domain)
        self.publish(self.domain)
        assert self.v2.get_email_identity(EmailIdentity=self.domain)["VerificationStatus"] == "SUCCESS"
        self.web = httpx.Client(base_url=sesame.endpoint, timeout=30)
        r = self.web.post(
            "/console/sign-in",
            data={
                "access_key_id": self.account["AccessKeyId"],
                "secret_access_key": self.account["SecretAccessKey"],
            },
        )
        assert r.status_code == 303, r.text

    def publish(self, domain: str) -> None:
        self.dns.add_zone_lines(self.sesame.cli("identities", "records", domain, "--account", self.id))

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.web.get(path, params=params)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.web.post(path, data={"csrf_token": self.csrf(), **data})

    def csrf(self) -> str:
        page = self.web.get("/console/dashboard").text
        found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page)
        assert found
        return found.group(1)

    def send(self, subject: str, to: str = "", source: str = "") -> str:
        """A message to an address of the account's own domain (the sandbox allows it, and unlike
        the simulator's it counts in the quota)."""
        out = self.v2.send_email(
            FromEmailAddress=source or f"news@{self.domain}",
            Destination={"ToAddresses": [to or f"inbox@{self.domain}"]},
            Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "hello"}}}},
        )
        return str(out["MessageId"])

    def close(self) -> None:
        self.web.close()


_names = iter(range(1000))


@pytest.fixture
def user(sesame: Serve, dns_server: DnsServer) -> Iterator[User]:
    u = User(sesame, dns_server, f"console{next(_names)}")
    yield u
    u.close()


def figure(html: str, name: str) -> str:
    found = re.search(rf'data-figure="{re.escape(name)}">([^<]*)<', html)
    assert found, name
    return found.group(1).strip()


# ------------------------------------------------------------------------------------- dashboard


def test_dashboard_figures_are_the_apis(user: User) -> None:
    for n in range(3):
        user.send(f"dashboard {n}")
    r = user.get("/console/dashboard")
    assert r.status_code == 200
    html = r.text
    quota = user.v1.get_send_quota()
    assert quota["SentLast24Hours"] == 3.0
    assert float(figure(html, "SentLast24Hours")) == quota["SentLast24Hours"]
    assert float(figure(html, "Max24HourSend")) == quota["Max24HourSend"]
    assert float(figure(html, "MaxSendRate")) == quota["MaxSendRate"]
    points = user.v1.get_send_statistics()["SendDataPoints"]
    for key in ("DeliveryAttempts", "Bounces", "Complaints", "Rejects"):
        assert int(figure(html, key)) == sum(p[key] for p in points), key
        assert int(figure(html, f"day-{key}")) == sum(p[key] for p in points), key
    assert int(figure(html, "DeliveryAttempts")) == 3
    # Sending status, sandbox and the thresholds as GetAccount and the settings have them.
    account = user.v2.get_account()
    assert account["SendingEnabled"] and "Enabled" in html
    assert not account["ProductionAccessEnabled"] and "Sandbox" in html
    assert "Bounce rate" in html and "10%" in html and "5%" in html  # review 5%, pause 10%
    # The charts are images with their figures as a table.
    assert html.count('role="img"') == 2
    assert "<title" in html and "Last 24 hours, per hour (UTC)" in html


# ------------------------------------------------------------------------------------ identities


def test_create_domain_identity_shows_its_records_and_rechecks(user: User) -> None:
    domain = f"new-{user.domain}"
    r = user.post("/console/identities", {"identity": domain})
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/identities/{domain}"
    page = user.get(r.headers["location"]).text
    tokens = user.v2.get_email_identity(EmailIdentity=domain)["DkimAttributes"]["Tokens"]
    assert len(tokens) == 3
    for token in tokens:
        assert f"<code>{token}._domainkey.{domain}</code>" in page
    assert page.count("data-copy=") >= 5  # three DKIM records, all of them, DMARC
    assert f"_dmarc.{domain}" in page
    assert "PENDING" in page
    # The list shows it, pending.
    listing = user.get("/console/identities").text
    assert domain in listing and "PENDING" in listing

    user.publish(domain)
    r = user.post(f"/console/identities/{domain}/check", {})
    assert r.status_code == 303
    page = user.get(r.headers["location"]).text
    assert "verification SUCCESS, DKIM SUCCESS" in page  # the notice
    assert user.v2.get_email_identity(EmailIdentity=domain)["VerificationStatus"] == "SUCCESS"

    r = user.post(f"/console/identities/{domain}/delete", {})
    assert r.status_code == 303
    names = [i["IdentityName"] for i in user.v2.list_email_identities()["EmailIdentities"]]
    assert domain not in names
    assert user.get(f"/console/identities/{domain}").status_code == 404


def test_v1_domain_shows_its_verification_record_and_a_bad_name_is_refused(user: User) -> None:
    domain = f"v1-{user.domain}"
    token = user.v1.verify_domain_identity(Domain=domain)["VerificationToken"]
    page = user.get(f"/console/identities/{domain}").text
    assert f"_amazonses.{domain}" in page and f'data-copy="{token}"' in page
    r = user.post("/console/identities", {"identity": "not a domain"})
    assert r.status_code == 400
    assert "Invalid identity: not a domain" in r.text


# ------------------------------------------------------------------------------------- templates


def test_template_preview_renders_and_shows_rendering_errors_as_ses(user: User) -> None:
    parts = {
        "subject": "Hello {{name}}",
        "text": "Dear {{name}}",
        "html": "<h1>Hi {{name}}</h1><script>x()</script>",
    }
    r = user.post("/console/templates/-/new", {"name": "welcome", **parts, "action": "save", "data": "{}"})
    assert r.status_code == 303
    assert (
        user.v2.get_email_template(TemplateName="welcome")["TemplateContent"]["Subject"] == "Hello {{name}}"
    )

    # Preview what the editor holds (unsaved changes too), with the sample data.
    edited = {**parts, "subject": "Hey {{name}}"}
    r = user.post("/console/templates/welcome", {**edited, "data": '{"name": "Alex"}', "action": "preview"})
    assert r.status_code == 200
    assert '<span class="preview-subject" id="preview-subject">Hey Alex</span>' in r.text
    assert "Dear Alex" in r.text
    frame = re.search(r'<iframe class="preview" title="[^"]*" sandbox src="([^"]+)"', r.text)
    assert frame
    framed = user.get(frame.group(1))
    assert framed.status_code == 200
    assert framed.text == "<h1>Hi Alex</h1><script>x()</script>"
    csp = framed.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'self'" in csp and "sandbox" in csp
    # Not saved by a preview.
    assert (
        user.v2.get_email_template(TemplateName="welcome")["TemplateContent"]["Subject"] == "Hello {{name}}"
    )
    # Another session cannot open this preview.
    other = httpx.Client(base_url=user.sesame.endpoint)
    assert other.get(frame.group(1)).status_code in (303, 404)
    other.close()

    # A missing attribute: the error TestRenderEmailTemplate gives.
    r = user.post("/console/templates/welcome", {**parts, "data": '{"other": 1}', "action": "preview"})
    with pytest.raises(user.v2.exceptions.BadRequestException) as api:
        user.v2.test_render_email_template(TemplateName="welcome", TemplateData='{"other": 1}')
    message = api.value.response["Error"]["Message"]
    assert "Attribute 'name' is not present in the rendering data." in message
    assert (
        f'<p class="error" role="alert" id="render-error">{message.replace(chr(39), "&#39;")}</p>' in r.text
    )
    r = user.post("/console/templates/welcome", {**parts, "data": "not json", "action": "preview"})
    assert 'id="render-error"' in r.text

    # Save.
    r = user.post("/console/templates/welcome", {**edited, "data": "{}", "action": "save"})
    assert r.status_code == 303
    assert user.v2.get_email_template(TemplateName="welcome")["TemplateContent"]["Subject"] == "Hey {{name}}"
    assert "welcome" in user.get("/console/templates").text


def test_send_test_sends_the_template_as_send_email_does(user: User) -> None:
    user.v2.create_email_template(
        TemplateName="receipt", TemplateContent={"Subject": "Receipt for {{name}}", "Text": "Thanks {{name}}"}
    )
    r = user.post(
        "/console/templates/receipt/send",
        {"from": f"shop@{user.domain}", "to": SIMULATOR, "data": '{"name": "Kim"}'},
    )
    assert r.status_code == 303
    message_id = r.headers["location"].rpartition("/")[2]
    page = user.get(r.headers["location"]).text
    assert "Receipt for Kim" in page and SIMULATOR in page and "receipt" in page
    assert message_id in user.get("/console/messages", subject="receipt for").text
    # An unverified sender is refused as SendEmail refuses it.
    r = user.post(
        "/console/templates/receipt/send", {"from": "x@unverified.test", "to": SIMULATOR, "data": "{}"}
    )
    assert r.status_code == 400 and "not verified" in r.text


# -------------------------------------------------------------------------------------- messages


def test_message_search_and_timeline(user: User) -> None:
    ids = [user.send(f"Order {n} shipped") for n in range(3)]
    other = user.send("Newsletter", source=f"letters@{user.domain}")
    listing = user.get("/console/messages").text
    # Newest first.
    positions = [listing.index(i) for i in [other, *reversed(ids)]]
    assert positions == sorted(positions)
    found = user.get("/console/messages", subject="ORDER 1").text
    assert ids[1] in found and ids[0] not in found and other not in found
    found = user.get("/console/messages", source="letters@").text
    assert other in found and ids[0] not in found
    found = user.get("/console/messages", to=f"INBOX@{user.domain}", status="queued").text
    assert all(i in found for i in [*ids, other])
    assert other not in user.get("/console/messages", status="delivered").text
    found = user.get("/console/messages", message_id=ids[2]).text
    assert ids[2] in found and ids[1] not in found
    assert "No messages match." in user.get("/console/messages", since="2000-01-01", until="2000-01-02").text

    page = user.get(f"/console/messages/{ids[0]}").text
    assert "Order 0 shipped" in page
    assert "Accepted" in page and "SendEmail from news@" in page
    assert f"inbox@{user.domain}" in page and ">queued<" in page
    assert "0 opens, 0 clicks" in page


def test_message_pages_are_keyset_paged(user: User) -> None:
    ids = [user.send(f"paged {n}", to=f"reader{n}@{user.domain}") for n in range(PAGE_SIZE + 2)]
    user.send("not in the series", to=f"someone@{user.domain}")
    for params in ({"subject": "paged"}, {"to": "reader"}):
        seen: list[str] = []
        path: str | None = "/console/messages"
        query: dict[str, str] = params
        for _ in range(4):  # two pages, and a bound should paging ever go round in circles
            if path is None:
                break
            html = (user.web.get(path, params=query) if query else user.web.get(path)).text
            seen += re.findall(r'href="/console/messages/([^"]+)"', html)
            older = re.search(r'href="(/console/messages\?[^"]+)" rel="next"', html)
            path, query = (older.group(1).replace("&amp;", "&"), {}) if older else (None, {})
        assert seen == list(reversed(ids)), params  # every one once, newest first, over two pages


def test_an_account_never_sees_another_accounts_messages(
    user: User, sesame: Serve, dns_server: DnsServer
) -> None:
    mine = user.send("private to the first account")
    stranger = User(sesame, dns_server, f"stranger{next(_names)}")
    try:
        r = stranger.get(f"/console/messages/{mine}")
        assert r.status_code == 404
        assert "private to the first account" not in r.text
        assert mine not in stranger.get("/console/messages").text
        searched = stranger.get("/console/messages", message_id=mine).text
        assert "No messages match." in searched and f"/console/messages/{mine}" not in searched
        assert stranger.get(f"/console/identities/{user.domain}").status_code == 404
        assert user.get(f"/console/messages/{mine}").status_code == 200
    finally:
        stranger.close()


# ------------------------------------------------------------------ with delivery: the simulator


@pytest.fixture(scope="module")
def delivering(
    module_database: str, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    """A server that delivers: mail to the mailbox simulator is delivered, bounced or complained about
    at once, without leaving the machine."""
    data_dir = tmp_path_factory.mktemp("console-delivering")
    env = {
        "SESAME_DNS__NAMESERVERS": dns_server.address,
        "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
        "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
    }
    with SesameProcess("serve", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)


def test_timeline_and_dashboard_after_delivery_bounce_and_complaint(
    delivering: Serve, dns_server: DnsServer
) -> None:
    user = User(delivering, dns_server, f"delivered{next(_names)}")
    try:
        sent = {
            kind: user.send(f"To {kind}", to=f"{kind}@simulator.amazonses.com")
            for kind in ("success", "bounce", "complaint")
        }
        deadline = time.monotonic() + 30
        while True:  # until the outcomes are counted (the records are dispatched in the background)
            points = user.v1.get_send_statistics()["SendDataPoints"]
            if sum(p["Bounces"] for p in points) == 1 and sum(p["Complaints"] for p in points) == 1:
                break
            assert time.monotonic() < deadline, points
            time.sleep(0.2)
        html = user.get("/console/dashboard").text
        for key in ("DeliveryAttempts", "Bounces", "Complaints", "Rejects"):
            assert int(figure(html, key)) == sum(p[key] for p in points), key
        assert int(figure(html, "DeliveryAttempts")) == 3
        assert int(figure(html, "day-Deliveries")) == 2  # success@ and complaint@, from the event records

        page = user.get(f"/console/messages/{sent['bounce']}").text
        assert ">bounced<" in page and "550 5.1.1 user unknown" in page
        assert "<strong>Bounce</strong>" in page and "Permanent / General" in page
        page = user.get(f"/console/messages/{sent['success']}").text
        assert ">delivered<" in page and "<strong>Delivery</strong>" in page
        page = user.get(f"/console/messages/{sent['complaint']}").text
        assert "<strong>Delivery</strong>" in page and "<strong>Complaint</strong>" in page
        # Accepted comes first, then the outcomes.
        assert page.index("<strong>Accepted</strong>") < page.index("<strong>Delivery</strong>")

        found = user.get("/console/messages", status="bounced").text
        assert sent["bounce"] in found and sent["success"] not in found
        found = user.get("/console/messages", status="delivered").text
        assert sent["success"] in found and sent["complaint"] in found and sent["bounce"] not in found
    finally:
        user.close()


# -------------------------------------------------------------------------------------- dev mode


def test_dev_mode_needs_no_sign_in_and_verifies_at_once(dev: SesameProcess) -> None:
    """dev mode: the first visit starts a session for the default account; an identity is verified at
    once and a test send is captured."""
    with httpx.Client(base_url=dev.endpoint, timeout=30) as web:
        r = web.get("/console/dashboard")
        assert r.status_code == 200, r.text[-3000:]
        html = r.text
        csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
        assert csrf
        r = web.post("/console/identities", data={"csrf_token": csrf.group(1), "identity": "devshop.test"})
        assert r.status_code == 303
        page = web.get(r.headers["location"]).text
        assert 'id="verification-status">SUCCESS<' in page and "._domainkey.devshop.test" in page
        r = web.post(
            "/console/templates/-/new",
            data={"csrf_token": csrf.group(1), "name": "devtpl", "subject": "Hi {{n}}", "text": "x",
                  "html": "", "data": "{}", "action": "save"},
        )  # fmt: skip
        assert r.status_code == 303
        r = web.post(
            "/console/templates/devtpl/send",
            data={"csrf_token": csrf.group(1), "from": "a@devshop.test", "to": "b@example.com",
                  "data": '{"n": 1}'},
        )  # fmt: skip
        assert r.status_code == 303
        page = web.get(r.headers["location"]).text
        assert "Hi 1" in page and ">captured<" in page
        ses = client("ses", dev.endpoint)
        points = ses.get_send_statistics()["SendDataPoints"]
        html = web.get("/console/dashboard").text
        assert int(figure(html, "DeliveryAttempts")) == sum(p["DeliveryAttempts"] for p in points) >= 1
        quota = ses.get_send_quota()  # dev mode: unlimited, written as the API gives it
        assert figure(html, "Max24HourSend") == "-1" == str(int(quota["Max24HourSend"]))
        assert figure(html, "MaxSendRate") == str(int(quota["MaxSendRate"]))


def test_dev_mode_timeline_shows_opens_and_clicks(dev: SesameProcess) -> None:
    """Tracking: an open and a click of a tracked message appear in its timeline, with the link."""
    from tests.e2e.test_tracking import BROWSER, Links, event_destinations

    v2 = client("sesv2", dev.endpoint)
    v2.create_email_identity(EmailIdentity="tracked.test")
    v2.create_configuration_set(ConfigurationSetName="console-tracked")
    event_destinations(v2, "console-tracked", ["OPEN", "CLICK"])
    message_id = v2.send_email(
        FromEmailAddress="news@tracked.test",
        Destination={"ToAddresses": ["reader@example.net"]},
        Content={
            "Simple": {
                "Subject": {"Data": "Tracked"},
                "Body": {"Html": {"Data": '<p><a href="https://example.com/deal">deal</a></p>'}},
            }
        },
        ConfigurationSetName="console-tracked",
    )["MessageId"]
    serve = Serve(dev, dev.data_dir, dev.database or "")
    (row,) = query(serve, "SELECT body FROM messages WHERE id = :m", m=message_id)
    html_part = next(
        p.get_content()
        for p in message_from_bytes(bytes(row["body"]), policy=default_policy).walk()
        if p.get_content_type() == "text/html"
    )
    links = Links()
    links.feed(html_part)
    assert httpx.get(str(links.anchors[0]["href"]), headers={"User-Agent": BROWSER}).status_code == 302
    assert httpx.get(str(links.images[0]["src"]), headers={"User-Agent": BROWSER}).status_code == 200
    with httpx.Client(base_url=dev.endpoint, timeout=30) as web:
        page = web.get(f"/console/messages/{message_id}").text
    assert 'id="tracking">1 open, 1 click<' in page
    assert "<strong>Click</strong>" in page and "Link: https://example.com/deal" in page
    assert "<strong>Open</strong>" in page


def test_a_text_search_reads_a_window_and_goes_on_when_asked(
    module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A subject search reads the newest ``console.search_window`` messages; a match older than that is
    found by following "Search older messages"."""
    env = {"SESAME_CONSOLE__SEARCH_WINDOW": "3", "SESAME_CONSOLE__PAGE_SIZE": "2"}
    data_dir = tmp_path_factory.mktemp("window")
    with SesameProcess("dev", data_dir=data_dir, database=module_database, env=env) as proc:
        v2 = client("sesv2", proc.endpoint)
        v2.create_email_identity(EmailIdentity="window.test")  # dev mode: verified at once
        for subject in ("Rare invoice", "news 1", "news 2", "news 3", "news 4"):
            v2.send_email(
                FromEmailAddress="a@window.test",
                Destination={"ToAddresses": ["b@example.com"]},
                Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "x"}}}},
            )
            time.sleep(0.01)  # distinct times: the newest first is then the order sent, reversed
        with httpx.Client(base_url=proc.endpoint, timeout=30) as web:
            first = web.get("/console/messages", params={"subject": "INVOICE"}).text
            assert "No messages match among the newest ones searched." in first
            older = re.search(r'href="(/console/messages\?[^"]+)" rel="next">Search older messages<', first)
            assert older, first
            found = web.get(html_lib.unescape(older.group(1))).text
            assert "Rare invoice" in found and "news" not in found
            # Without a text condition no window applies: pages of two, all five messages.
            listed = web.get("/console/messages").text
            assert listed.count("news ") == 2 and 'rel="next">Older messages<' in listed
