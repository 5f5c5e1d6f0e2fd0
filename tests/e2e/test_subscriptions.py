"""Subscriptions end to end: a real server, real WebSocket clients, both protocols."""

from __future__ import annotations

import pytest
import websockets

from lockbox.services import admin
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from tests.conftest import Live, World
from tests.support import LEGACY_WS, TRANSPORT_WS, WsClient

PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]
PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"

CREATE = """
mutation($ticket: ID!, $resources: [String!]!, $duration: Int) {
  createAccessRequest(input: {ticketId: $ticket, resources: $resources,
                              justification: "e2e", durationSeconds: $duration}) { id status }
}"""
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { id status } }"
AUTHORIZE = """
mutation($id: ID!, $resource: String!) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: "read"}) {
    allowed event { cursor }
  }
}"""
ACTIVITY = """
subscription($id: ID!, $after: String) {
  engineerActivity(requestId: $id, after: $after) { cursor resource allowed denialReason }
}"""
UPDATES = "subscription { accessRequestUpdates { id status } }"


async def approved_request(live: Live, world: World, duration: int | None = None) -> str:
    created = await live.http.data(
        world.token("engineer-alice"),
        CREATE,
        ticket=world.ticket("contoso"),
        resources=[PROD],
        duration=duration,
    )
    request_id: str = created["createAccessRequest"]["id"]
    await live.http.data(world.token("contoso-admin"), APPROVE, id=request_id)
    return request_id


async def authorize(live: Live, world: World, request_id: str, resource: str) -> str:
    data = await live.http.data(
        world.token("engineer-alice"), AUTHORIZE, id=request_id, resource=resource
    )
    cursor: str = data["authorizeAccess"]["event"]["cursor"]
    return cursor


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_activity_replays_then_streams_live_and_resumes_without_doubles(
    live: Live, world: World, protocol: str
) -> None:
    request_id = await approved_request(live, world)
    cursors = [await authorize(live, world, request_id, f"{PROD}/vm{i}") for i in range(3)]
    client = WsClient(live.ws_url, protocol)
    await client.connect(world.token("contoso-approver-prod"))
    await client.subscribe("a", ACTIVITY, id=request_id)
    replayed = [(await client.next_data())["engineerActivity"]["cursor"] for _ in range(3)]
    assert replayed == cursors
    cursors.append(await authorize(live, world, request_id, "/subscriptions/contoso-dev/x"))
    live_event = (await client.next_data())["engineerActivity"]
    assert live_event["cursor"] == cursors[3]
    assert live_event["allowed"] is False
    assert "outside" in live_event["denialReason"]
    await client.close()

    # Reconnect with the last cursor seen before the drop: only what is new.
    cursors.append(await authorize(live, world, request_id, f"{PROD}/vm9"))
    again = WsClient(live.ws_url, protocol)
    await again.connect(world.token("contoso-admin"))
    await again.subscribe("b", ACTIVITY, id=request_id, after=cursors[3])
    assert (await again.next_data())["engineerActivity"]["cursor"] == cursors[4]
    await again.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_updates_include_decisions_and_time_based_expiry(
    live: Live, world: World, protocol: str
) -> None:
    client = WsClient(live.ws_url, protocol)
    await client.connect(world.token("contoso-admin"))
    await client.subscribe("u", UPDATES)
    request_id = await approved_request(live, world)
    first = (await client.next_data())["accessRequestUpdates"]
    second = (await client.next_data())["accessRequestUpdates"]
    assert (first["id"], first["status"]) == (request_id, "PENDING")
    assert (second["id"], second["status"]) == (request_id, "APPROVED")

    created = await live.http.data(
        world.token("engineer-alice"), CREATE, ticket=world.ticket("contoso"), resources=[PROD]
    )
    pending_id = created["createAccessRequest"]["id"]
    assert (await client.next_data())["accessRequestUpdates"]["id"] == pending_id
    live.clock.advance(4 * 24 * 3600 + 1)  # past expiresAt: the sweeper records it
    statuses = {}
    for _ in range(2):
        update = (await client.next_data())["accessRequestUpdates"]
        statuses[update["id"]] = update["status"]
    assert statuses == {pending_id: "EXPIRED", request_id: "COMPLETED"}
    await client.close()


async def test_bad_token_is_refused_at_connection_init_on_both_protocols(live: Live) -> None:
    modern = WsClient(live.ws_url, TRANSPORT_WS)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await modern.connect("lbx_not-a-real-token", expect_ack=False)
        await modern.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403

    legacy = WsClient(live.ws_url, LEGACY_WS)
    reply = await legacy.connect(None, expect_ack=False)
    assert reply["type"] == "connection_error"
    await legacy.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_revoking_a_token_ends_open_subscriptions_and_refuses_new_ones(
    live: Live, world: World, deps: Deps, protocol: str
) -> None:
    request_id = await approved_request(live, world)
    issued = await admin.issue_token(deps, "contoso-auditor", "watcher")
    client = WsClient(live.ws_url, protocol)
    await client.connect(issued.secret)
    await client.subscribe("w", ACTIVITY, id=request_id)
    await authorize(live, world, request_id, f"{PROD}/vm1")
    await client.next_data()  # the subscription is live

    await admin.revoke_token(deps, str(issued.token.id))
    ended = await client.receive()
    assert ended["type"] in ("error", "next", "data")
    errors = ended["payload"].get("errors") or ended["payload"]
    assert "UNAUTHENTICATED" in str(errors)

    await client.subscribe("again", ACTIVITY, id=request_id)
    refused = await client.receive()
    while refused.get("id") != "again" or refused["type"] == "complete":
        refused = await client.receive()
    assert "UNAUTHENTICATED" in str(refused)
    await client.close()
    assert await store.get_token(issued.token.id) is not None


async def test_many_watchers_each_get_every_event_once_in_order(live: Live, world: World) -> None:
    request_id = await approved_request(live, world)
    watchers = [WsClient(live.ws_url, PROTOCOLS[i % 2]) for i in range(12)]
    nested = "subscription($id: ID!) { engineerActivity(requestId: $id) { cursor request { id } } }"
    for i, watcher in enumerate(watchers):
        await watcher.connect(world.token("contoso-admin"))
        # Half share one document (rendered once for all), half ask for a relation.
        await watcher.subscribe("s", ACTIVITY if i < 6 else nested, id=request_id)
    cursors = [await authorize(live, world, request_id, f"{PROD}/vm{i}") for i in range(5)]
    for i, watcher in enumerate(watchers):
        received = [(await watcher.next_data())["engineerActivity"] for _ in cursors]
        assert [event["cursor"] for event in received] == cursors
        if i >= 6:
            assert {event["request"]["id"] for event in received} == {request_id}
        await watcher.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_watching_an_invisible_request_is_refused_as_an_operation_error(
    live: Live, world: World, protocol: str
) -> None:
    request_id = await approved_request(live, world)
    client = WsClient(live.ws_url, protocol)
    await client.connect(world.token("fabrikam-admin"))
    await client.subscribe("x", ACTIVITY, id=request_id)
    refused = await client.receive()
    assert refused["type"] == "error", refused
    assert "NOT_FOUND" in str(refused["payload"])
    await client.close()
