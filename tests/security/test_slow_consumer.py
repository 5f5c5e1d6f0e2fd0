"""A watcher that stops reading never holds up the other watchers of a request.

Live activity is written by the request's feed to every caught-up subscriber
in one pass. A client whose socket stops taking frames used to stall that
pass (every other watcher waited up to 5 s for the watchdog, finding 14).
Here one raw client with a tiny receive buffer subscribes many times over
and then stops reading, while the engineer keeps working: a second watcher
must get every event promptly, and the stuck client, once it reads again,
must find its subscriptions ended with RATE_LIMITED rather than an unbounded
backlog.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.conftest import Live, World
from tests.support import TRANSPORT_WS, WsClient

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"
CREATE = """
mutation($ticket: ID!, $resources: [String!]!) {
  createAccessRequest(input: {ticketId: $ticket, resources: $resources,
                              justification: "slow consumer"}) { id }
}"""
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { id } }"
AUTHORIZE = """
mutation($id: ID!, $resource: String!, $detail: JSON) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: "read",
                          detail: $detail}) { allowed event { cursor } }
}"""
FAT = "subscription($id: ID!) { engineerActivity(requestId: $id) { cursor detail } }"
THIN = "subscription($id: ID!) { engineerActivity(requestId: $id) { cursor } }"

# The stuck client's subscriptions and each event's detail: every event puts
# about OPERATIONS x DETAIL bytes on its socket, so its buffers fill within a
# few dozen events.
OPERATIONS = 20
DETAIL = {"note": "x" * 8000}
# Enough events to fill the stuck socket and then overflow the backlog the
# feed keeps for it (realtime.feed.SINK_BACKLOG).
EVENTS = 200
# Each event must reach the reading watcher within this; the old stall took 5 s.
PROMPT_SECONDS = 2.5


class RawSubscriber:
    """A WebSocket client on a bare socket with a tiny receive buffer, framed
    by websockets' sans-I/O protocol: it reads only when told to."""

    def __init__(self, url: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url), subprotocols=[TRANSPORT_WS])  # type: ignore[list-item]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        self.url = url
        self.pending: list[dict[str, Any]] = []

    async def open(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, ("127.0.0.1", port))
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        for _ in range(100):  # the upgrade response, a few hundred bytes
            if self.protocol.handshake_exc is not None:
                raise self.protocol.handshake_exc
            if self.protocol.state is State.OPEN:
                return
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), 10)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.protocol.receive_data(data)
            self.protocol.events_received()
        raise AssertionError("no upgrade response")

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        for data in self.protocol.data_to_send():
            if data:
                await loop.sock_sendall(self.sock, data)

    async def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        await self._flush()

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        """The next text message (pings answered on the way)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.pending:
            data = await asyncio.wait_for(
                loop.sock_recv(self.sock, 65536), max(0.0, deadline - loop.time())
            )
            if not data:
                raise ConnectionError("the server closed the connection")
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    self.pending.append(json.loads(event.data))
                elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                    self.pending.append(
                        {"type": "closed", "data": event.data.decode(errors="replace")}
                    )
            await self._flush()
        return self.pending.pop(0)

    def close(self) -> None:
        self.sock.close()


async def _approved(live: Live, world: World) -> str:
    created = await live.http.data(
        world.token("engineer-alice"), CREATE, ticket=world.ticket("contoso"), resources=[PROD]
    )
    request_id: str = created["createAccessRequest"]["id"]
    await live.http.data(world.token("contoso-admin"), APPROVE, id=request_id)
    return request_id


async def _authorize(live: Live, world: World, request_id: str, n: int) -> str:
    data = await live.http.data(
        world.token("engineer-alice"),
        AUTHORIZE,
        id=request_id,
        resource=f"{PROD}/vm{n}",
        detail=DETAIL,
    )
    cursor: str = data["authorizeAccess"]["event"]["cursor"]
    return cursor


@pytest.mark.parametrize("live", [{"rate_limit_per_second": 0}], indirect=True)
async def test_a_client_that_stops_reading_does_not_delay_another_watcher(
    live: Live, world: World
) -> None:
    request_id = await _approved(live, world)

    stuck = RawSubscriber(live.ws_url)
    await stuck.open(live.server.port)
    await stuck.send(
        {
            "type": "connection_init",
            "payload": {"authorization": f"Bearer {world.token('contoso-admin')}"},
        }
    )
    assert (await stuck.receive())["type"] == "connection_ack"
    for op in range(OPERATIONS):
        await stuck.send(
            {
                "id": f"s{op}",
                "type": "subscribe",
                "payload": {"query": FAT, "variables": {"id": request_id}},
            }
        )
    watcher = WsClient(live.ws_url, TRANSPORT_WS)
    await watcher.connect(world.token("contoso-approver-prod"))
    await watcher.subscribe("w", THIN, id=request_id)

    # A first event proves every subscription live (the stuck client still reads it).
    first = await _authorize(live, world, request_id, 0)
    assert (await watcher.next_data())["engineerActivity"]["cursor"] == first
    got = [await stuck.receive() for _ in range(OPERATIONS)]
    assert {m["id"] for m in got} == {f"s{op}" for op in range(OPERATIONS)}, got
    assert all(m["payload"]["data"]["engineerActivity"]["cursor"] == first for m in got)

    # From here the stuck client reads nothing.
    slowest = 0.0
    for n in range(1, EVENTS + 1):
        cursor = await _authorize(live, world, request_id, n)
        answered = time.monotonic()
        event = (await watcher.next_data(timeout=PROMPT_SECONDS))["engineerActivity"]
        slowest = max(slowest, time.monotonic() - answered)
        assert event["cursor"] == cursor, (n, event)
    await watcher.close()

    # Reading again, the stuck client finds each subscription ended with
    # RATE_LIMITED after a bounded number of events, never all of them.
    ended: dict[str, dict[str, Any]] = {}
    completed: set[str] = set()
    delivered = 0
    for _ in range(EVENTS * OPERATIONS + 2 * OPERATIONS):
        message = await stuck.receive(timeout=30)
        assert message.get("id") not in completed, message
        errors = (message.get("payload") or {}).get("errors")
        if message["type"] == "next" and not errors:
            assert message["id"] not in ended, message
            delivered += 1
        elif message["type"] == "next":
            ended[message["id"]] = errors[0]
        elif message["type"] == "complete":
            completed.add(message["id"])
            if len(completed) == OPERATIONS:
                break
        else:
            raise AssertionError(message)
    stuck.close()
    assert completed == ended.keys() == {f"s{op}" for op in range(OPERATIONS)}, (ended, slowest)
    for error in ended.values():
        assert error["extensions"]["code"] == "RATE_LIMITED", error
        assert "not reading" in error["message"], error
        assert error["extensions"]["retryAfterSeconds"] >= 1
    assert delivered < EVENTS * OPERATIONS
