"""Python's stock GraphQL client, gql, against a real server: a query, a
mutation and a subscription over graphql-transport-ws and over the legacy
graphql-ws (gql's "Apollo" sub-protocol), and a query over HTTP. Each
client speaks its protocol as it ships; nothing here adapts to Lockbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.conformance.ws_support import ACTIVITY, PROD, approved_request, authorize
from tests.conftest import Live, World
from tests.security.test_auth_and_sockets import server_log

PROTOCOLS = [
    WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL,  # graphql-transport-ws
    WebsocketsTransport.APOLLO_SUBPROTOCOL,  # graphql-ws, the legacy one
]
ME = GraphQLRequest("query Me { me { name role } }")


def set_lockbox(on: bool) -> GraphQLRequest:
    return GraphQLRequest(
        "mutation SetLockbox($on: Boolean!) { setLockboxEnabled(enabled: $on) { lockboxEnabled } }",
        variable_values={"on": on},
    )


@asynccontextmanager
async def over_websocket(
    live: Live, token: str, protocol: str
) -> AsyncIterator[AsyncClientSession]:
    transport = WebsocketsTransport(
        url=f"{live.ws_url}",
        init_payload={"authorization": f"Bearer {token}"},
        subprotocols=[protocol],
    )
    async with Client(transport=transport) as session:
        assert transport.subprotocol == protocol  # what the server agreed to
        yield session


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_gql_runs_a_query_and_a_mutation_over_websocket(
    live: Live, world: World, protocol: str
) -> None:
    admin = world.token("contoso-admin")
    with server_log() as logged:
        async with over_websocket(live, admin, protocol) as session:
            assert await session.execute(ME) == {
                "me": {"name": "contoso-admin", "role": "TENANT_ADMIN"}
            }
            changed = await session.execute(set_lockbox(False))
            assert changed == {"setLockboxEnabled": {"lockboxEnabled": False}}
    seen = await live.http.data(admin, "{ me { tenant { lockboxEnabled } } }")
    assert seen == {"me": {"tenant": {"lockboxEnabled": False}}}
    logged.assert_no_traceback()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_gql_subscribes_over_websocket_replay_then_live(
    live: Live, world: World, protocol: str
) -> None:
    request_id = await approved_request(live, world)
    first = await authorize(live, world, request_id, f"{PROD}/vm1")
    request = GraphQLRequest(ACTIVITY, variable_values={"id": request_id})
    admin = world.token("contoso-admin")
    async with (
        over_websocket(live, admin, protocol) as session,
        aclosing(session.subscribe(request)) as events,
    ):
        replayed = await anext(events)
        assert replayed["engineerActivity"]["cursor"] == first
        second = await authorize(live, world, request_id, f"{PROD}/vm2")
        live_event = await anext(events)
    assert live_event["engineerActivity"] == {
        "cursor": second,
        "resource": f"{PROD}/vm2",
        "allowed": True,
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_gql_gets_a_refusal_with_its_code_over_websocket(
    live: Live, world: World, protocol: str
) -> None:
    """A mutation the caller may not make, and a document that does not
    parse: gql raises TransportQueryError carrying the server's coded error,
    and the session goes on."""
    async with over_websocket(live, world.token("engineer-alice"), protocol) as session:
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(set_lockbox(True))
        assert _codes(refused.value) == ["FORBIDDEN"]
        # gql parses documents itself: an unknown field is the server's to find.
        with pytest.raises(TransportQueryError) as invalid:
            await session.execute(GraphQLRequest("{ me { nope } }"))
        assert _codes(invalid.value) == ["GRAPHQL_VALIDATION_FAILED"]
        assert (await session.execute(ME))["me"]["name"] == "engineer-alice"


async def test_gql_runs_a_query_over_http(live: Live, world: World) -> None:
    transport = HTTPXAsyncTransport(
        url=f"{live.server.http_url}/graphql",
        headers={"Authorization": f"Bearer {world.token('contoso-admin')}"},
    )
    async with Client(transport=transport) as session:
        assert await session.execute(ME) == {
            "me": {"name": "contoso-admin", "role": "TENANT_ADMIN"}
        }


def _codes(error: TransportQueryError) -> list[Any]:
    """The codes of the errors gql received (it lists them whichever frame
    brought them: an `error`, or a result's errors)."""
    return [e["extensions"]["code"] for e in error.errors or []]
