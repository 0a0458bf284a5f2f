"""Every page of the console, opened in Chromium from its menu on a desktop and on a phone: it loads with
no error (a Content-Security-Policy violation, a failed script or stylesheet, a 500 are all errors in the
browser's console), every form control has a label, every image a text alternative, there is one main
heading, nothing is wider than the phone's screen, and the menu is reachable with the keyboard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sesame.testing.servers import SesameProcess
from tests.browser.conftest import PHONE, screenshot
from tests.conftest import client

#: What each page must satisfy, checked in the page itself: the list of what is wrong (empty is good).
AUDIT = """() => {
  const problems = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || !visible(el)) continue;
    const labelled = el.labels && el.labels.length > 0;
    if (!labelled && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby") && !el.title)
      problems.push("unlabelled " + el.tagName.toLowerCase() + " " + (el.name || el.id || el.type));
  }
  for (const el of document.querySelectorAll("button")) {
    if (visible(el) && !el.textContent.trim() && !el.getAttribute("aria-label"))
      problems.push("a button without a name");
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("img without alt " + img.src);
  }
  for (const svg of document.querySelectorAll("svg")) {
    const named = svg.querySelector("title") || svg.getAttribute("aria-label");
    if (svg.getAttribute("aria-hidden") !== "true" && !named) problems.push("svg without a title");
  }
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(h1 + " h1 headings");
  return problems;
}"""


@pytest.fixture(scope="module")
def dev_with_data(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SesameProcess]:
    """A dev server with something on each page: an identity, a template, a configuration set, a
    suppressed address, a contact list, a receipt rule set, a tenant and a few messages."""
    data_dir = tmp_path_factory.mktemp("pages")
    with SesameProcess("dev", data_dir=data_dir, database=module_database) as proc:
        v2 = client("sesv2", proc.endpoint)
        v1 = client("ses", proc.endpoint)
        v2.create_email_identity(EmailIdentity="shop.example")
        v2.create_email_template(
            TemplateName="welcome",
            TemplateContent={"Subject": "Hi {{name}}", "Text": "Hi {{name}}", "Html": "<p>Hi {{name}}</p>"},
        )
        v2.create_configuration_set(ConfigurationSetName="marketing")
        v2.put_suppressed_destination(EmailAddress="gone@example.com", Reason="BOUNCE")
        v2.create_contact_list(
            ContactListName="readers",
            Topics=[{"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_IN"}],
        )
        v2.create_contact(ContactListName="readers", EmailAddress="ann@example.com")
        v1.create_receipt_rule_set(RuleSetName="inbound")
        v2.create_tenant(TenantName="acme")
        for i in range(3):
            v2.send_email(
                FromEmailAddress="news@shop.example",
                Destination={"ToAddresses": [f"reader{i}@example.com"]},
                Content={"Template": {"TemplateName": "welcome", "TemplateData": json.dumps({"name": i})}},
            )
        yield proc


def _pages(page: Any, endpoint: str) -> list[str]:
    """The menu's pages, then the first detail page each list links to."""
    page.goto(endpoint + "/console/")
    menu = [a.get_attribute("href") for a in page.locator("nav.menu a").all()]
    details = []
    for path in menu:
        page.goto(endpoint + path)
        links = page.locator(f'main a[href^="{path}/"]').all()
        hrefs = [a.get_attribute("href") for a in links]
        details += [h for h in hrefs if h and "?" not in h][:1]
    return menu + details


def _open(page: Any, url: str, errors: list[str]) -> None:
    errors.clear()
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{url}: {response and response.status}"
    page.wait_for_load_state("networkidle")


def test_every_page_loads_cleanly_and_is_accessible(
    browser: Any, dev_with_data: SesameProcess, tmp_path: Path
) -> None:
    for name, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        try:
            paths = _pages(page, dev_with_data.endpoint)
            assert len(paths) >= 15, paths  # every menu entry and a detail page of most
            for path in paths:
                _open(page, dev_with_data.endpoint + path, errors)
                assert errors == [], f"{path}: {errors}"
                assert page.evaluate(AUDIT) == [], path
                if name == "phone":
                    width = page.evaluate("document.documentElement.scrollWidth")
                    assert width <= PHONE["width"], f"{path} is {width}px wide on a phone"
                else:
                    slug = path.strip("/").replace("/", "-") or "console"
                    screenshot(page, f"page-{slug}", tmp_path)
        finally:
            context.close()


def test_the_menu_works_with_the_keyboard(browser: Any, dev_with_data: SesameProcess) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(dev_with_data.endpoint + "/console/inbox")
        # Tab from the top: the skip link first, then on into the page; Enter follows the focused link.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent") == "Identities":
                break
        else:
            pytest.fail("the menu's Identities link is not reachable with Tab")
        page.keyboard.press("Enter")
        page.wait_for_url("**/console/identities")
        assert page.get_by_role("heading", level=1).is_visible()
    finally:
        context.close()
