"""The settings pages in Chromium: adding an event destination, adding and removing a suppressed
address, importing a CSV file into the suppression list, a receipt rule, a contact; screenshots
``configuration-set``, ``suppression``, ``receiving`` and ``contacts``.

Each test switches the dev console to an account of its own (the header's switch form), and checks
with boto3 that what the browser did is what the API sees.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sesame.testing.servers import SesameProcess
from tests.browser.conftest import PHONE, screenshot
from tests.conftest import client


def open_account(page: Any, dev: SesameProcess, path: str) -> str:
    """Open ``path`` in a fresh account of the test's own; its id."""
    account = f"8{secrets.randbelow(10**11):011d}"
    page.goto(f"{dev.endpoint}/console{path}")
    page.fill("header input[name=account_id]", account)
    page.click("header button:has-text('Switch')")
    page.wait_for_url(f"**/console{path}")
    assert account in page.inner_text("header")
    return account


def fits_a_phone(page: Any) -> bool:
    """Nothing wider than a 390px screen: tables scroll inside their own box."""
    page.set_viewport_size(PHONE)
    wide: bool = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    return wide


def test_add_an_event_destination(dev: SesameProcess, page: Any, tmp_path: Path) -> None:
    account = open_account(page, dev, "/configuration-sets")
    page.fill("#cs-name", "newsletters")
    page.click("button:has-text('Create')")
    page.wait_for_url("**/configuration-sets/newsletters")
    page.fill("#dest-name", "to-bus")
    page.select_option("#dest-kind", "EventBridgeDestination")
    for event_type in ("SEND", "DELIVERY", "BOUNCE"):
        page.check(f"input[name=type_{event_type}]")
    page.click("button:has-text('Add event destination')")
    page.wait_for_selector("text=Event destination to-bus added.")
    row = page.locator("#destinations + .table-wrap tr", has_text="to-bus")
    assert "Amazon EventBridge" in row.inner_text() and "SEND, BOUNCE, DELIVERY" in row.inner_text()

    ses = client("sesv2", dev.endpoint, key=account)
    (found,) = ses.get_configuration_set_event_destinations(ConfigurationSetName="newsletters")[
        "EventDestinations"
    ]
    assert found["EventBridgeDestination"]["EventBusArn"].endswith(f":{account}:event-bus/default")
    assert found["Enabled"] is True

    # A refusal keeps what was typed and says why.
    page.fill("#dest-name", "to-bus")
    page.select_option("#dest-kind", "EventBridgeDestination")
    page.check("input[name=type_OPEN]")
    page.click("button:has-text('Add event destination')")
    alert = page.locator("[role=alert]")
    assert "Event destination to-bus already exists in configuration set newsletters." in alert.inner_text()
    assert page.input_value("#dest-name") == "to-bus"
    screenshot(page, "configuration-set", tmp_path)
    assert fits_a_phone(page)


def test_add_and_remove_a_suppressed_address(dev: SesameProcess, page: Any, tmp_path: Path) -> None:
    account = open_account(page, dev, "/suppression")
    ses = client("sesv2", dev.endpoint, key=account)
    ses.put_suppressed_destination(EmailAddress="old-bounce@example.org", Reason="BOUNCE")
    page.fill("#add-address", "complainer@example.com")
    page.select_option("#add-reason", "COMPLAINT")
    page.click("button:has-text('Add to the list')")
    page.wait_for_selector("text=complainer@example.com is on the suppression list (COMPLAINT).")
    got = ses.get_suppressed_destination(EmailAddress="complainer@example.com")["SuppressedDestination"]
    assert got["Reason"] == "COMPLAINT"
    screenshot(page, "suppression", tmp_path)

    page.fill("#sup-q", "OLD")
    page.click("button:has-text('Search')")
    rows = page.locator("main table tbody tr")
    assert rows.count() == 1 and "old-bounce@example.org" in rows.first.inner_text()

    page.on("dialog", lambda dialog: dialog.accept())  # "Remove … from the suppression list?"
    rows.first.locator("button:has-text('Remove')").click()
    page.wait_for_selector("text=old-bounce@example.org removed from the suppression list.")
    assert "old-bounce@example.org" not in page.inner_text("main table")
    listed = ses.list_suppressed_destinations()["SuppressedDestinationSummaries"]
    assert [d["EmailAddress"] for d in listed] == ["complainer@example.com"]
    assert fits_a_phone(page)


def test_upload_a_csv_into_the_suppression_list(dev: SesameProcess, page: Any, tmp_path: Path) -> None:
    account = open_account(page, dev, "/suppression")
    csv = tmp_path / "bounces.csv"
    csv.write_text("emailAddress,reason\nfirst@example.com,BOUNCE\nsecond@example.com,COMPLAINT\n")
    page.set_input_files("#import-file", str(csv))
    page.click("button:has-text('Start the import')")
    page.wait_for_url("**/suppression/imports/*")
    # The job's page reloads itself until the job ends.
    page.wait_for_selector("#job-status:has-text('COMPLETED')", timeout=30_000)
    assert page.inner_text("#job-failed") == "0"
    ses = client("sesv2", dev.endpoint, key=account)
    job_id = page.url.rsplit("/", 1)[1]
    assert ses.get_import_job(JobId=job_id)["JobStatus"] == "COMPLETED"
    for address in ("first@example.com", "second@example.com"):
        assert ses.get_suppressed_destination(EmailAddress=address)["SuppressedDestination"]
    page.click("text=Suppression list >> nth=-1")
    assert "second@example.com" in page.inner_text("main table")


def test_a_receipt_rule(dev: SesameProcess, page: Any, tmp_path: Path) -> None:
    account = open_account(page, dev, "/receiving")
    page.fill("#set-name", "inbound")
    page.click("button:has-text('Create rule set')")
    page.wait_for_url("**/receiving/rule-sets/inbound")
    page.fill("#rule-name", "store")
    page.fill("#rule-recipients", "support@example.com\nexample.org")
    page.select_option("#rule-action", "S3Action")
    page.fill("#rule-bucket", "incoming")
    page.click("button:has-text('Create rule')")
    page.wait_for_selector("text=Rule store created.")
    page.fill("#rule-name", "reject-rest")
    page.select_option("#rule-action", "BounceAction")
    page.fill("#rule-code", "550")
    page.fill("#rule-status", "5.1.1")
    page.fill("#rule-sender", "postmaster@example.com")
    page.click("button:has-text('Create rule')")
    page.wait_for_selector("text=Rule reject-rest created.")
    page.click("button:has-text('Set as active')")
    page.wait_for_selector("text=Rule set inbound is active.")
    page.goto(f"{dev.endpoint}/console/receiving/rule-sets/inbound")
    ses = client("ses", dev.endpoint, key=account)
    active = ses.describe_active_receipt_rule_set()
    assert [r["Name"] for r in active["Rules"]] == ["store", "reject-rest"]
    screenshot(page, "receiving", tmp_path)
    assert fits_a_phone(page)


def test_a_contact_and_its_preferences(dev: SesameProcess, page: Any, tmp_path: Path) -> None:
    account = open_account(page, dev, "/contact-lists")
    page.fill("#cl-name", "customers")
    page.fill("#cl-topics", "news, Newsletter, OPT_IN\nsales, Offers, OPT_OUT")
    page.click("button:has-text('Create')")
    page.wait_for_url("**/contact-lists/customers")
    page.fill("#add-address", "reader@example.com")
    page.select_option("select[name=topic_sales]", "OPT_IN")
    page.click("button:has-text('Add contact')")
    page.wait_for_selector("text=Contact reader@example.com added.")
    ses = client("sesv2", dev.endpoint, key=account)
    ses.create_contact(ContactListName="customers", EmailAddress="quiet@example.com", UnsubscribeAll=True)
    page.reload()
    row = page.locator("main table tr", has_text="reader@example.com")
    assert "OPT_IN (default)" in row.inner_text()
    screenshot(page, "contacts", tmp_path)

    page.click("a:has-text('reader@example.com')")
    page.select_option("select[name=topic_news]", "OPT_OUT")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Contact reader@example.com saved.")
    got = ses.get_contact(ContactListName="customers", EmailAddress="reader@example.com")
    assert got["TopicPreferences"] == [
        {"TopicName": "news", "SubscriptionStatus": "OPT_OUT"},
        {"TopicName": "sales", "SubscriptionStatus": "OPT_IN"},  # kept: the form showed it chosen
    ]
    assert fits_a_phone(page)
