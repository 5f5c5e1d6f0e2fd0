"""A socket's identity is set once, on both sub-protocols: a second
connection_init never changes who its subscriptions run as."""

from __future__ import annotations

import pytest
import websockets

from tests.conftest import Live, World
from tests.support import LEGACY_WS, TRANSPORT_WS, WsClient

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
