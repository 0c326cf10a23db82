"""One headless Debian Chromium for the browser tests (PyPI playwright, no browser download)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The flags of tests/conftest.py (not importable with importlib mode): headless, no sandbox,
# nothing that calls home.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator:
    """One Chromium per test module: Playwright's sync API runs an event loop in this thread
    while it lives, so it must stop before tests that call ``asyncio.run`` (launch: ~1 s)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    """Console errors and uncaught exceptions of a page (GPU driver chatter is a warning)."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


@pytest.fixture()
def open_page(browser):
    """``open_page(url, **context_options) -> (page, console)``; contexts closed after."""
    contexts = []

    def _open(url: str | None = None, **options):
        ctx = browser.new_context(**{"viewport": {"width": 1100, "height": 750},
                                     "locale": "en-US", **options})
        contexts.append(ctx)
        page = ctx.new_page()
        console = Console(page)
        if url:
            page.goto(url)
        return page, console

    yield _open
    for ctx in contexts:
        ctx.close()

