"""A real Chromium (Debian's, driven by Playwright) against the real local runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from tests.runtime import ROOT, Runtime, start_runtime

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that reaches for the network on its own: this machine has none.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "build" / "screenshots"
KEY = "browser-tenant-key-0123456789"
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 375, "height": 740}
TIMEOUT_MS = 60_000


@pytest.fixture(scope="package")
def runtime() -> Iterator[Runtime]:
    """One local runtime for the browser tests (a tenant of their own), stopped after them."""
    rt = start_runtime(KEY)
    yield rt
    rt.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver (it ships in the wheel; no browser is downloaded)."""
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, installed by `make test`."""
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it"
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


class Pages:
    """Opens pages in fresh browser contexts (empty localStorage) and closes them afterwards.

    Any uncaught script error on a page fails the test that opened it.
    """

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self._contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def open(self, viewport: ViewportSize = LAPTOP, **options: Any) -> Page:
        """A new page of that size."""
        context = self._browser.new_context(viewport=viewport, **options)
        context.set_default_timeout(TIMEOUT_MS)
        self._contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda exc: self.errors.append(str(exc)))
        return tab

    def close(self) -> None:
        """Close every context opened."""
        for context in self._contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser, runtime: Runtime) -> Iterator[Pages]:
    """Fresh pages for one test."""
    opened = Pages(browser)
    yield opened
    opened.close()
    assert opened.errors == [], f"the page raised: {opened.errors}"


@pytest.fixture
def page(pages: Pages) -> Page:
    """A fresh laptop-sized page."""
    return pages.open(LAPTOP)


@pytest.fixture(scope="package")
def screenshots() -> Path:
    """Where the tests leave their screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
