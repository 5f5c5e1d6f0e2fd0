"""Subscriptions over HTTP, as Apollo Client 4's HttpLink asks for them
(`Accept: multipart/mixed;subscriptionSpec=1.0`, no split link): a streamed
multipart response, read here by a real HTTP client, that holds the
WebSocket's rules: authentication first, replay then tail without gap or
duplicate, a reconnect with `after`, and the open-socket limits."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from lockbox.services import admin
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from tests.api.helpers import APPROVED_BY_ADMIN, PROD, seed_request
from tests.conftest import Live, World

# What Apollo Client 4's HttpLink sends for a subscription.
MULTIPART = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
ACTIVITY = """
subscription Watch($id: ID!, $after: String) {
  engineerActivity(requestId: $id, after: $after) { id cursor action allowed }
}
"""
BOUNDARY = b"\r\n--graphql"


class MultipartStream:
    """The parts of a multipart/mixed subscription response, as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.chunks = response.aiter_bytes()
        self.buffer = b""

    def _take(self) -> bytes | None:
        headers_end = self.buffer.find(b"\r\n\r\n")
        if headers_end < 0:
            return None
        end = self.buffer.find(BOUNDARY, headers_end)
        if end < 0:
            return None
        body = self.buffer[headers_end + 4 : end]
        self.buffer = self.buffer[end + len(BOUNDARY) :]
        return body

    async def next_part(self, timeout: float = 10) -> dict[str, Any] | None:
        """The next part that is not a heartbeat; None once the stream ends."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            part = self._take()
            if part is not None:
                body: dict[str, Any] = json.loads(part)
                if body:  # `{}` is a heartbeat
                    return body
                continue
            try:
                async with asyncio.timeout_at(deadline):
                    self.buffer += await anext(self.chunks)
            except StopAsyncIteration:
                return None

    async def next_data(self, timeout: float = 10) -> dict[str, Any]:
        part = await self.next_part(timeout)
        assert part is not None, "the stream ended"
        payload = part["payload"]
        assert not payload.get("errors"), payload
        data: dict[str, Any] = payload["data"]
        return data


@asynccontextmanager
async def subscribe(
    live: Live, token: str | None, query: str, **variables: Any
) -> AsyncIterator[httpx.Response]:
    headers = {"Accept": MULTIPART, "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with live.http.client.stream(
        "POST", live.http.url, json={"query": query, "variables": variables}, headers=headers
    ) as response:
        yield response


async def authorize(live: Live, world: World, request_id: str, action: str) -> dict[str, Any]:
    document = """
        mutation($id: ID!, $resource: String!, $action: String!) {
          authorizeAccess(input: {requestId: $id, resource: $resource, action: $action}) {
            event { id cursor }
          }
        }
    """
    data = await live.http.data(
        world.token("engineer-alice"), document, id=request_id, resource=PROD, action=action
    )
    event: dict[str, Any] = data["authorizeAccess"]["event"]
    return event


async def test_an_http_subscription_replays_then_tails_without_gap_or_duplicate(
    live: Live, deps: Deps, world: World
) -> None:
    request = await seed_request(deps, world, then=APPROVED_BY_ADMIN)
    before = [await authorize(live, world, request, f"before {n}") for n in range(2)]
    token = world.token("contoso-admin")

    async with subscribe(live, token, ACTIVITY, id=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("multipart/mixed")
        stream = MultipartStream(response)
        replayed = [(await stream.next_data())["engineerActivity"] for _ in before]
        # Live, while the stream is open: written by another client.
        during = [await authorize(live, world, request, f"during {n}") for n in range(3)]
        tailed = [(await stream.next_data())["engineerActivity"] for _ in during]

    seen = replayed + tailed
    assert [e["id"] for e in seen] == [e["id"] for e in before + during]
    assert [e["action"] for e in seen] == [f"before {n}" for n in range(2)] + [
        f"during {n}" for n in range(3)
    ]

    # A reconnect passing the last cursor it read gets only what came after.
    after = await authorize(live, world, request, "after")
    async with subscribe(live, token, ACTIVITY, id=request, after=seen[2]["cursor"]) as response:
        stream = MultipartStream(response)
        resumed = [(await stream.next_data())["engineerActivity"]["id"] for _ in range(3)]
    assert resumed == [seen[3]["id"], seen[4]["id"], after["id"]]


async def test_an_http_subscription_without_a_valid_token_is_refused_before_streaming(
    live: Live, world: World
) -> None:
    for token in (None, "lbx_" + "A" * 43):
        async with subscribe(live, token, "subscription { accessRequestUpdates { id } }") as r:
            body = json.loads(await r.aread())
            assert r.headers["content-type"].split(";")[0] == "application/json"
            assert r.status_code == 401
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
        assert "data" not in body


async def test_an_invisible_request_is_an_error_in_the_stream_not_a_fault(
    live: Live, deps: Deps, world: World
) -> None:
    request = await seed_request(deps, world)

    async with subscribe(live, world.token("fabrikam-admin"), ACTIVITY, id=request) as response:
        part = await MultipartStream(response).next_part()

    assert part is not None
    codes = [e["extensions"]["code"] for e in part["payload"]["errors"]]
    assert codes == ["NOT_FOUND"]


async def open_streams(live: Live, principal_id: str) -> int:
    sockets = live.server.app.state.sockets
    return int(sockets.per_principal.open(principal_id))


@pytest.mark.parametrize("live", [{"max_sockets_per_principal": 1}], indirect=True)
async def test_http_subscriptions_count_against_the_open_socket_limits(
    live: Live, world: World
) -> None:
    token = world.token("contoso-admin")
    principal = world.actors["contoso-admin"].id
    updates = "subscription { accessRequestUpdates { id status } }"

    async with subscribe(live, token, updates) as first:
        assert first.status_code == 200
        assert await open_streams(live, principal) == 1
        async with subscribe(live, token, updates) as second:
            refused = json.loads(await second.aread())
            assert second.status_code == 429
            assert second.headers["retry-after"] == "5"
        # An operation over plain HTTP is not a stream: not limited.
        assert (await live.http.data(token, "{ me { name } }"))["me"]
    (error,) = refused["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfterSeconds": 5}

    # The slot comes back once the first stream's client has gone.
    for _ in range(200):  # at most 10 s
        if not await open_streams(live, principal):
            break
        await asyncio.sleep(0.05)
    assert await open_streams(live, principal) == 0
    async with subscribe(live, token, updates) as again:
        assert again.status_code == 200


async def test_a_revoked_token_ends_an_http_subscription(
    live: Live, deps: Deps, world: World
) -> None:
    request = await seed_request(deps, world, then=APPROVED_BY_ADMIN)
    (issued,) = await store.list_tokens(uuid.UUID(world.actors["contoso-auditor"].id))

    async with subscribe(live, world.token("contoso-auditor"), ACTIVITY, id=request) as response:
        stream = MultipartStream(response)
        await authorize(live, world, request, "seen")
        assert (await stream.next_data())["engineerActivity"]["action"] == "seen"
        await admin.revoke_token(deps, str(issued.id))
        # The server notices within its lockout poll, and ends the stream.
        rest = []
        while (part := await stream.next_part()) is not None:
            rest.append(part)

    codes = [e["extensions"]["code"] for part in rest for e in part["payload"]["errors"]]
    assert codes == ["UNAUTHENTICATED"], rest
