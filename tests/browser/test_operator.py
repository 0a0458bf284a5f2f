"""The operator pages in Chromium: signing in with the admin token, creating an account through the
form (its secret shown once, working with boto3), and the queue of a site whose mail server does not
answer. Screenshots: operator-accounts, operator-account-created, operator-queue, operator-site."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sesame.testing.dns import DnsServer
from sesame.testing.servers import free_port
from tests.browser.conftest import PHONE, screenshot
from tests.conftest import Serve, client
from tests.e2e.servers import serve_env, serving

SITES = ("slow-mx.test", "gone-mx.test")


@pytest.fixture(scope="module")
def node(
    module_database: str, dns_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    """A delivering server whose deliveries to SITES are refused (deferred for an hour)."""
    env = serve_env(dns_server, DELIVERY__MX_PORT=str(free_port()), DELIVERY__RETRY_BASE="3600")
    for site in SITES:
        dns_server.add(site, "A", "127.0.0.1")
    with serving(module_database, tmp_path_factory, "browser-operator", env) as server:
        yield server


def sign_in_as_operator(page: Any, node: Serve) -> None:
    page.goto(f"{node.endpoint}/console/sign-in")
    page.get_by_label("Admin token").fill((node.data_dir / "admin.token").read_text().strip())
    page.get_by_role("button", name="Sign in as operator").click()
    page.wait_for_url("**/console/operator/accounts")


def test_the_operator_creates_an_account(page: Any, node: Serve, tmp_path: Path) -> None:
    node.new_account("Existing Ltd")
    sign_in_as_operator(page, node)
    assert page.get_by_role("heading", name="Accounts", exact=True).is_visible()
    page.get_by_label("Name", exact=True).fill("Browser Co")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Account Browser Co created").wait_for()
    assert "shown this once" in page.get_by_role("alert").inner_text()
    key_id = page.locator("#new-key-id").inner_text()
    secret = page.locator("#new-secret").inner_text()
    screenshot(page, "operator-account-created", tmp_path)
    ses = client("sesv2", node.endpoint, key_id, secret)
    assert ses.get_account()["ProductionAccessEnabled"] is False
    page.get_by_role("link", name="Back to the accounts").click()
    row = page.get_by_role("row").filter(has_text="Browser Co")
    assert row.get_by_text("sandbox").is_visible()
    screenshot(page, "operator-accounts", tmp_path)
    # Its page: production access in us-east-1, seen through the API.
    row.get_by_role("link", name="Browser Co").click()
    page.get_by_label("Access").first.select_option("production")
    page.get_by_role("button", name="Save for us-east-1").click()
    assert "Sending limits saved for us-east-1" in page.get_by_role("status").inner_text()
    assert ses.get_account()["ProductionAccessEnabled"] is True
    screenshot(page, "operator-account", tmp_path)
    # A phone: the account and the list read without scrolling sideways.
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("link", name="Accounts", exact=True).first.click()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "operator-accounts-phone", tmp_path)


def test_the_queue_by_site(page: Any, node: Serve, dns_server: DnsServer, tmp_path: Path) -> None:
    account = node.new_account("Queue Co")
    node.cli("accounts", "update", account["AccountId"], "--production", "--max-send-rate=-1")
    v2 = node.client("sesv2", account)
    v2.create_email_identity(EmailIdentity="queue-co.test")
    dns_server.add_zone_lines(
        node.cli("identities", "records", "queue-co.test", "--account", account["AccountId"])
    )
    # Reading the identity looks its DNS records up again (they were published after its creation).
    assert v2.get_email_identity(EmailIdentity="queue-co.test")["VerificationStatus"] == "SUCCESS"
    for n, to in enumerate(["ann@slow-mx.test", "bob@slow-mx.test", "cid@gone-mx.test"]):
        v2.send_email(
            FromEmailAddress="news@queue-co.test",
            Destination={"ToAddresses": [to]},
            Content={"Simple": {"Subject": {"Data": f"Newsletter {n}"}, "Body": {"Text": {"Data": "Hi"}}}},
        )
    sign_in_as_operator(page, node)
    page.get_by_role("navigation").get_by_role("link", name="Queue", exact=True).click()
    deadline = time.monotonic() + 20
    while "slow-mx.test" not in page.locator("main").inner_text() and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    row = page.get_by_role("row").filter(has_text="slow-mx.test")
    assert row.is_visible()
    screenshot(page, "operator-queue", tmp_path)
    row.get_by_role("link", name="slow-mx.test").click()
    page.get_by_role("heading", name="Pending for slow-mx.test").wait_for()
    deadline = time.monotonic() + 20
    while page.get_by_text("deferred", exact=True).count() < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    screenshot(page, "operator-site", tmp_path)
    page.once("dialog", lambda dialog: dialog.accept())  # the bounce form asks first
    page.get_by_role("row").filter(has_text="ann@slow-mx.test").get_by_role("button", name="Bounce").click()
    assert "1 pending recipient(s)" in page.get_by_role("status").inner_text()
    assert page.get_by_role("row").filter(has_text="ann@slow-mx.test").count() == 0
    # A phone: the site's page reads without the wide columns.
    page.set_viewport_size(PHONE)
    page.reload()
    assert page.get_by_role("row").filter(has_text="bob@slow-mx.test").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "operator-site-phone", tmp_path)


def test_event_publishing_and_this_node(page: Any, node: Serve, tmp_path: Path) -> None:
    sign_in_as_operator(page, node)
    page.get_by_role("navigation").get_by_role("link", name="Event publishing").click()
    page.get_by_role("heading", name="Recent records").wait_for()
    screenshot(page, "operator-events", tmp_path)
    page.goto(f"{node.endpoint}/console/operator/accounts")
    page.get_by_role("link", name="this node").click()
    assert "(this one)" in page.get_by_role("main").inner_text()
    this = page.get_by_role("row").filter(has_text="(this one)")
    assert "alive" in this.inner_text() and "delivery" in this.inner_text()
    assert page.get_by_text("delivers the queue").is_visible()
    screenshot(page, "operator-nodes", tmp_path)
