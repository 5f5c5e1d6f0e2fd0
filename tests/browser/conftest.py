"""Browser tests: Debian's Chromium driven by Playwright's async API.

Playwright's own browser download is never used: Chromium is the `chromium`
on PATH (`apt-get install chromium`). Without it, every test that needs the
browser is skipped and the run says so in one line at its end; a Chromium
that is found but fails to start is an error.

Fixtures
--------
`browser` (session scope): a `playwright.async_api.Browser`, headless.

`page` (function scope, uses `live`): a `BrowserPage` for the test's server.
Its fresh context has a 1400x900 viewport and `base_url` set to the server,
so `await page.goto("/graphql")` works. Every HTTP request and WebSocket to
another origin is aborted and its URL recorded. It delegates attribute
access to Playwright's `Page`, so `page.locator(...)`, `page.keyboard`,
`page.get_by_role(...)` and `page.goto(...)` are Playwright's own.

    page.page             the playwright.async_api.Page
    page.context          its BrowserContext
    page.base_url         the live server, "http://127.0.0.1:<port>"
    page.offsite          URLs of requests to another origin (all aborted)
    page.console_errors   console messages of type "error" (CSP violations too)
    page.page_errors      uncaught exceptions in the page ("pageerror")
    page.assert_clean()   assert the three lists above are empty
    await page.screenshot(label="") -> Path
                          a full-page PNG named after the test (and label)

A failing test that used `page` also leaves `<test>-failure.png`; a test's
screenshots from an earlier run are removed when its `page` is set up.

Helpers
-------
`artifacts_dir() -> Path`: $LOCKBOX_TEST_ARTIFACTS, else <repo>/test-artifacts/
(created when needed).

`await save_screenshot(page: Page, name: str) -> Path`: a full-page PNG,
`<name>.png` in `artifacts_dir()`.

`artifact_name(request: pytest.FixtureRequest | pytest.Item, label: str = "") -> str`:
`<module>.<test>[-<label>]`, safe as a file name.

Event loop
----------
Playwright's objects belong to the event loop that created them, so every
test and async fixture in this folder runs on the session's loop (the
`_function_scoped_runner` override below), the one the browser lives on.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    ViewportSize,
    WebSocketRoute,
    async_playwright,
)

from tests.conftest import Live

HERE = Path(__file__).parent
REPO = HERE.parents[1]

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NO_CHROMIUM = "browser tests skipped: no chromium on PATH (apt-get install chromium)"
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}

_skipped: list[str] = []


def _needs_browser(item: pytest.Item) -> bool:
    return HERE in item.path.parents and "browser" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM is not None:
        return
    for item in items:
        if _needs_browser(item):
            item.add_marker(pytest.mark.skip(reason=NO_CHROMIUM))
            _skipped.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_line(f"{NO_CHROMIUM}: {len(_skipped)} tests", yellow=True)


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture
def _function_scoped_runner(_session_scoped_runner: asyncio.Runner) -> asyncio.Runner:
    """pytest-asyncio's per-test loop, replaced here by the session's loop."""
    return _session_scoped_runner


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("LOCKBOX_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def artifact_name(request: pytest.FixtureRequest | pytest.Item, label: str = "") -> str:
    node = request.node if isinstance(request, pytest.FixtureRequest) else request
    name = f"{node.path.stem}.{node.name}" + (f"-{label}" if label else "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


async def save_screenshot(page: Page, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def same_origin(url: str, origin: str) -> bool:
    """Whether `url` is on `origin` (an http URL); ws URLs match its host too."""
    target, home = urlsplit(url), urlsplit(origin)
    schemes = {"http": ("http", "ws"), "https": ("https", "wss")}[home.scheme]
    return target.scheme in schemes and target.netloc == home.netloc


class BrowserPage:
    """A Playwright page on the live server, and what it tried and broke."""

    def __init__(
        self,
        page: Page,
        context: BrowserContext,
        base_url: str,
        offsite: list[str],
        name: Callable[[str], str],
    ) -> None:
        self.page = page
        self.context = context
        self.base_url = base_url
        self.offsite = offsite
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self._name = name
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.page, name)

    def assert_clean(self) -> None:
        assert self.offsite == [], f"requests to another origin: {self.offsite}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.page_errors == [], f"page errors: {self.page_errors}"

    async def screenshot(self, label: str = "") -> Path:
        return await save_screenshot(self.page, self._name(label))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def _page_error(self, error: Exception) -> None:
        self.page_errors.append(str(error))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    assert CHROMIUM is not None, NO_CHROMIUM  # such tests are skipped at collection
    chromium = await playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield chromium
    finally:
        await chromium.close()


@pytest.fixture
async def page(
    browser: Browser, live: Live, request: pytest.FixtureRequest
) -> AsyncIterator[BrowserPage]:
    origin = live.server.http_url
    offsite: list[str] = []
    stem = artifact_name(request)
    for stale in [*artifacts_dir().glob(f"{stem}.png"), *artifacts_dir().glob(f"{stem}-*.png")]:
        stale.unlink()

    async def abort(route: Route) -> None:
        offsite.append(route.request.url)
        await route.abort()

    async def abort_socket(socket: WebSocketRoute) -> None:
        offsite.append(socket.url)
        await socket.close(code=1008, reason="another origin")

    context = await browser.new_context(viewport=VIEWPORT, base_url=origin)
    try:
        # Before the page exists, so that its first request is routed too.
        await context.route(lambda url: not same_origin(url, origin), abort)
        await context.route_web_socket(lambda url: not same_origin(url, origin), abort_socket)
        tab = await context.new_page()
        watched = BrowserPage(
            tab, context, origin, offsite, lambda label: artifact_name(request, label)
        )
        yield watched
        if request.node.stash.get(_CALL_FAILED, False):
            await watched.screenshot("failure")
    finally:
        await context.close()
