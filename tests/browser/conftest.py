"""The console in a real browser: Debian's Chromium driven by Playwright's synchronous API.

The browser tests run on SQLite only: the pages read through the same domain services whose storage
tests run on both databases, and the console's own queries are tested on both in
tests/integration/test_console_*.py. Screenshots go to ``SCREENSHOT_DIR`` when it is set (the issue
notes show them), else to the test's temporary directory.

Playwright's synchronous API runs an event loop in this thread while the browser is open: tests here
talk to the server with boto3 and httpx (synchronous), never with asyncio.run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sesame.testing.databases import temporary_database

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def chromium() -> str:
    """Debian's Chromium. CI installs it and sets CI_REQUIRE_BROWSER, so there a missing browser fails
    the test rather than skipping it."""
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI_REQUIRE_BROWSER"):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def module_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite only, unlike the rest of the suite (see the module docstring)."""
    from cryptography.fernet import Fernet

    with temporary_database("sqlite", tmp_path_factory.mktemp("db")) as url:
        os.environ["SESAME_SECRET_KEY"] = Fernet.generate_key().decode()
        try:
            yield url
        finally:
            del os.environ["SESAME_SECRET_KEY"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies) and page, desktop-sized."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    """Save the whole page as NAME.png for the issue note."""
    where = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
