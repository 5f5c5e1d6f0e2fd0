"""A socket's identity is set once, on both sub-protocols: a second
connection_init never changes who its subscriptions run as."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from lockbox.clock import ManualClock
from tests.conftest import Live, Stack, World, start_server
from tests.support import LEGACY_WS, TRANSPORT_WS, LiveServer, WsClient

ME = "query { me { name } }"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_second_connection_init_is_refused_and_closes_the_socket(
    live: Live, world: World, protocol: str
) -> None:
    client = WsClient(live.ws_url, protocol)
    await client.connect(world.token("contoso-admin"))
    await client.send(
        {
            "type": "connection_init",
            "payload": {"authorization": f"Bearer {world.token('fabrikam-admin')}"},
        }
    )
    if protocol == LEGACY_WS:
        refusal = await client.receive()
        assert refusal["type"] == "connection_error"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429


async def test_after_a_refused_reinit_nothing_runs_as_the_second_token(
    live: Live, world: World
) -> None:
    """The legacy protocol used to accept the second token and stream the
    first tenant's events to whoever held the second one (and keep
    streaming them after the first token was revoked)."""
    client = WsClient(live.ws_url, LEGACY_WS)
    await client.connect(world.token("engineer-alice"))
    await client.send(
        {
            "type": "connection_init",
            "payload": {"authorization": f"Bearer {world.token('contoso-admin')}"},
        }
    )
    assert (await client.receive())["type"] == "connection_error"
    with pytest.raises(websockets.ConnectionClosed):
        await client.subscribe("1", "subscription { accessRequestUpdates { id } }")
        await client.receive()


@pytest.fixture
async def strict(world: World, database: Stack, clock: ManualClock) -> AsyncIterator[LiveServer]:
    """A server with a short connection_init deadline and a small body limit."""
    server = start_server(database, clock, ws_init_timeout_seconds=0.3, max_body_bytes=64 * 1024)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def test_a_socket_that_never_sends_connection_init_is_closed_on_both_protocols(
    strict: LiveServer,
) -> None:
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        async with websockets.connect(strict.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
            if protocol == LEGACY_WS:
                refusal = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert refusal["type"] == "connection_error"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408


async def test_an_oversized_body_is_refused_before_it_is_read_or_authenticated(
    strict: LiveServer,
) -> None:
    big = b'{"query": "' + b"x" * (128 * 1024) + b'"}'
    async with httpx.AsyncClient() as client:
        declared = await client.post(
            f"{strict.http_url}/graphql", content=big, headers={"content-type": "application/json"}
        )

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for start in range(0, len(big), 8192):
                yield big[start : start + 8192]

        streamed = await client.post(
            f"{strict.http_url}/graphql",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        small = await client.post(f"{strict.http_url}/graphql", json={"query": "{ me { name } }"})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert small.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_frame_over_64_kib_closes_the_socket_with_1009(live: Live, world: World) -> None:
    client = WsClient(live.ws_url, TRANSPORT_WS)
    await client.connect(world.token("contoso-admin"))
    await client.send({"id": "1", "type": "subscribe", "payload": {"query": "x" * 70_000}})
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
