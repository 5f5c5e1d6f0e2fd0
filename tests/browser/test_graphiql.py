"""GraphiQL at /graphql, served by Lockbox alone (contract section 7).

The browser tests drive Debian's Chromium with every other origin cut off;
the HTTP tests check the page's headers and assets without a browser.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from playwright.async_api import WebSocket, expect

from lockbox.api import pages
from tests.api.helpers import DEV, PROD, act, create_request
from tests.browser.conftest import BrowserPage
from tests.conftest import Live, World

QUERY_EDITOR = 'section[aria-label="Query Editor"] .CodeMirror'
HEADERS_EDITOR = 'section[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror'
RESULT = 'section[aria-label="Result Window"]'
RUN = "button.graphiql-execute-button"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def bearer(world: World, principal: str) -> str:
    return json.dumps({"Authorization": f"Bearer {world.token(principal)}"})


async def open_graphiql(page: BrowserPage) -> None:
    await page.goto("/graphql")
    # The schema has loaded once the explorer lists the query fields.
    await expect(page.locator(".graphiql-container")).to_be_visible()
    await expect(page.get_by_role("button", name="Show Documentation Explorer")).to_be_visible()


async def type_into(page: BrowserPage, editor: str, text: str) -> None:
    """Replace an editor's text as a user would: click, select all, type.
    (`insert_text` types the text in one go, so the editor does not add
    closing brackets of its own.)"""
    await page.locator(editor).click()
    await page.keyboard.press("ControlOrMeta+A")
    await page.keyboard.insert_text(text)
    value = await page.locator(editor).evaluate("element => element.CodeMirror.getValue()")
    assert value == text


async def run(page: BrowserPage, query: str, headers: str) -> None:
    """Type the headers, then the query, and run it at once (as fast as
    GraphiQL allows: the page must not depend on its delayed bookkeeping)."""
    await type_into(page, HEADERS_EDITOR, headers)
    await type_into(page, QUERY_EDITOR, query)
    await page.locator(RUN).click()


async def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def socket_frames(page: BrowserPage) -> list[dict[str, Any]]:
    """Every GraphQL WebSocket message the page sends, decoded, as it happens."""
    sent: list[dict[str, Any]] = []

    def watch(socket: WebSocket) -> None:
        socket.on("framesent", lambda payload: sent.append(json.loads(payload)))

    page.on("websocket", watch)
    return sent


async def test_graphiql_loads_from_lockbox_alone(page: BrowserPage) -> None:
    await open_graphiql(page)
    await expect(page.locator(QUERY_EDITOR)).to_contain_text("Authorization")
    await page.screenshot("loaded")
    page.assert_clean()


async def test_a_query_runs_with_the_token_typed_in_the_headers_editor(
    page: BrowserPage, world: World
) -> None:
    await open_graphiql(page)
    await run(page, "{ me { name role } }", bearer(world, "contoso-admin"))
    await expect(page.locator(RESULT)).to_contain_text('"name": "contoso-admin"')
    await expect(page.locator(RESULT)).to_contain_text('"role": "TENANT_ADMIN"')
    await page.screenshot("result")
    page.assert_clean()


async def test_without_a_token_the_query_answers_unauthenticated(page: BrowserPage) -> None:
    await open_graphiql(page)
    await run(page, "{ me { name } }", "{}")
    await expect(page.locator(RESULT)).to_contain_text("UNAUTHENTICATED")
    page.assert_clean()


async def test_a_subscription_streams_with_the_token_typed_in_the_headers_editor(
    page: BrowserPage, live: Live, world: World
) -> None:
    request = await create_request(live, world)
    admin, alice = world.token("contoso-admin"), world.token("engineer-alice")
    await act(live, admin, "approveRequest", request["id"])
    sent = socket_frames(page)
    await open_graphiql(page)

    subscription = (
        f'subscription {{ engineerActivity(requestId: "{request["id"]}") '
        "{ action resource allowed denialReason } }"
    )
    await run(page, subscription, bearer(world, "contoso-admin"))
    # Running: the run button has become the stop button.
    await expect(page.get_by_role("button", name=re.compile("Stop"))).to_be_visible()
    await eventually(lambda: any(frame["type"] == "subscribe" for frame in sent))

    await act(live, alice, "authorizeAccess", request["id"], resource=PROD)
    await expect(page.locator(RESULT)).to_contain_text(f'"resource": "{PROD}"')
    await expect(page.locator(RESULT)).to_contain_text('"allowed": true')
    # Live, not a replay: an attempt made now arrives next.
    await act(live, alice, "authorizeAccess", request["id"], resource=DEV)
    await expect(page.locator(RESULT)).to_contain_text(f'"resource": "{DEV}"')
    await expect(page.locator(RESULT)).to_contain_text('"allowed": false')
    await page.screenshot("streaming")

    # The headers editor's object is the connection_init payload, as typed.
    init = [frame for frame in sent if frame["type"] == "connection_init"]
    assert init == [{"type": "connection_init", "payload": {"Authorization": f"Bearer {admin}"}}]
    page.assert_clean()


async def test_a_refused_subscription_says_so_and_new_headers_open_a_new_socket(
    page: BrowserPage, live: Live, world: World
) -> None:
    request = await create_request(live, world)
    sent = socket_frames(page)
    await open_graphiql(page)
    subscription = f'subscription {{ engineerActivity(requestId: "{request["id"]}") {{ action }} }}'

    await run(page, subscription, json.dumps({"Authorization": "Bearer not-a-token"}))
    await expect(page.locator(RESULT)).to_contain_text("4403")
    await page.screenshot("refused")

    await type_into(page, HEADERS_EDITOR, bearer(world, "contoso-admin"))
    await page.locator(RUN).click()
    await expect(page.get_by_role("button", name=re.compile("Stop"))).to_be_visible()
    await eventually(lambda: any(frame["type"] == "subscribe" for frame in sent))
    await act(live, world.token("engineer-alice"), "authorizeAccess", request["id"])
    await expect(page.locator(RESULT)).to_contain_text('"action": "read"')
    payloads = [frame["payload"] for frame in sent if frame["type"] == "connection_init"]
    assert payloads == [
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {world.token('contoso-admin')}"},
    ]
    page.assert_clean()


async def test_the_explorer_plugin_opens_and_builds_a_query(page: BrowserPage) -> None:
    await open_graphiql(page)
    await page.get_by_role("button", name="Show GraphiQL Explorer").click()
    explorer = page.locator(".graphiql-explorer-root")
    await expect(explorer).to_be_visible()
    await expect(explorer).to_contain_text("pendingRequests")
    await explorer.get_by_text("pendingRequests", exact=True).click()
    await expect(page.locator(QUERY_EDITOR)).to_contain_text("pendingRequests")
    await page.screenshot("explorer")
    page.assert_clean()


async def test_the_dialogs_and_the_docs_open_within_the_policy(page: BrowserPage) -> None:
    await open_graphiql(page)
    await page.get_by_role("button", name="Open settings dialog").click()
    await expect(page.get_by_role("dialog")).to_contain_text("Settings")
    await page.keyboard.press("Escape")
    await page.get_by_role("button", name="Open short keys dialog").click()
    await expect(page.get_by_role("dialog")).to_contain_text("Short Keys")
    await page.keyboard.press("Escape")
    await page.get_by_role("button", name="Show Documentation Explorer").click()
    docs = page.locator(".graphiql-doc-explorer")
    await docs.locator("a", has_text=re.compile(r"^Query$")).first.click()
    await expect(docs).to_contain_text("pendingRequests")
    await page.screenshot("docs")
    page.assert_clean()


# Plain HTTP: no browser.

CSP_WANTED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
}


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        assert name not in parsed, policy
        parsed[name] = values
    return parsed


@pytest.mark.parametrize(
    ("path", "headers"), [("/graphql", HTML), ("/dashboard", {})], ids=["graphiql", "dashboard"]
)
async def test_the_pages_carry_a_strict_policy_and_the_security_headers(
    live: Live, path: str, headers: dict[str, str]
) -> None:
    response = await live.http.client.get(live.server.http_url + path, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"

    policy = response.headers["content-security-policy"]
    assert "unsafe" not in policy  # no 'unsafe-inline', 'unsafe-eval', 'unsafe-hashes'
    found = directives(policy)
    for name, values in CSP_WANTED.items():
        assert found[name] == values, (name, policy)
    host = live.server.http_url.removeprefix("http://")
    assert found["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]
    assert found["style-src"][0] == "'self'"
    assert all(re.fullmatch(r"'sha256-[A-Za-z0-9+/]+=*'", v) for v in found["style-src"][1:])


def test_a_host_that_is_not_a_plain_host_is_not_repeated_in_the_policy() -> None:
    for host in ("evil; script-src *", "a b", "", None, "x'y"):
        assert directives(pages.content_security_policy(host))["connect-src"] == ["'self'"]
    assert directives(pages.content_security_policy("[::1]:8000"))["connect-src"] == [
        "'self'",
        "ws://[::1]:8000",
        "wss://[::1]:8000",
    ]


class PageParts(HTMLParser):
    """What an HTML page loads, and whether it has anything inline."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if "style" in values or any(name.startswith("on") for name in values):
            self.inline.append(f"{tag} attribute")
        if tag == "style":
            self.inline.append("style element")
        if tag == "script":
            if values.get("src"):
                self.loads.append(str(values["src"]))
            else:
                self.inline.append("script element")
        if tag == "link" and values.get("rel") == "stylesheet":
            self.loads.append(str(values["href"]))


async def test_the_graphiql_page_loads_only_allow_listed_assets_and_nothing_inline(
    live: Live,
) -> None:
    response = await live.http.client.get(live.server.http_url + "/graphql", headers=HTML)
    parts = PageParts()
    parts.feed(response.text)
    assert parts.inline == []
    assert parts.loads, response.text
    for url in parts.loads:
        assert url.startswith("/graphiql/assets/"), url
        asset = await live.http.client.get(live.server.http_url + url)
        assert asset.status_code == 200, url
        kind = "text/css" if url.endswith(".css") else "text/javascript"
        assert asset.headers["content-type"] == f"{kind}; charset=utf-8", url
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert "/graphiql/assets/graphiql.js" in parts.loads
    assert "/graphiql/assets/graphiql-plugin-explorer.umd.js" in parts.loads


async def test_an_asset_is_revalidated_with_its_etag(live: Live) -> None:
    url = live.server.http_url + "/graphiql/assets/graphiql.min.js"
    first = await live.http.client.get(url)
    assert first.headers["cache-control"] == "no-cache"
    assert b"GraphiQL" in first.content
    again = await live.http.client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    "name",
    [
        "nope.js",
        "fetch.umd.js",  # in the package, not on the list
        "style.css",  # served as graphiql-plugin-explorer.css only
        "views.py",
        "index.html",
        "..%2F__init__.py",
        "%2e%2e%2fviews.py",
    ],
)
async def test_a_name_off_the_list_is_not_found(live: Live, name: str) -> None:
    response = await live.http.client.get(f"{live.server.http_url}/graphiql/assets/{name}")
    assert response.status_code == 404


async def test_json_clients_of_graphql_are_not_shown_the_ide(live: Live, world: World) -> None:
    url = live.server.http_url + "/graphql"
    response = await live.http.client.get(
        url,
        params={"query": "{ me { name } }"},
        headers={**HTML, "Authorization": f"Bearer {world.token('contoso-admin')}"},
    )
    assert response.json() == {"data": {"me": {"name": "contoso-admin"}}}


@pytest.mark.parametrize("live", [{"graphiql": False}], indirect=True)
async def test_lockbox_graphiql_0_turns_the_ide_and_its_assets_off(
    live: Live, world: World
) -> None:
    url = live.server.http_url
    page = await live.http.client.get(url + "/graphql", headers=HTML)
    assert page.status_code == 404
    assert "graphiql" not in page.text.lower()
    asset = await live.http.client.get(url + "/graphiql/assets/graphiql.min.js")
    assert asset.status_code == 404
    # The API itself is unaffected.
    data = await live.http.data(world.token("contoso-admin"), "{ me { name } }")
    assert data == {"me": {"name": "contoso-admin"}}
