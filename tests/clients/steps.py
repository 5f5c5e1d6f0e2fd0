"""What the tests do to the server around a stock client: requests made,
approved and acted on over HTTP, and a restart on the same port and database."""

from __future__ import annotations

import asyncio
from typing import Any

from lockbox.app import create_app
from lockbox.domain import cursors
from lockbox.services import gate
from lockbox.services.deps import Deps
from lockbox.settings import Settings
from tests.conftest import Live, World
from tests.support import LiveServer

RESOURCE = "/subscriptions/contoso-prod/resourceGroups/rg-web"
ELSEWHERE = "/subscriptions/contoso-dev/resourceGroups/rg-other"
CREATE = """
mutation($input: CreateAccessRequestInput!) { createAccessRequest(input: $input) { id status } }
"""
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { status } }"
AUTHORIZE = """
mutation($input: AuthorizeAccessInput!) {
  authorizeAccess(input: $input) { allowed event { id cursor action resource allowed } }
}
"""
STATUS = "query($id: ID!) { accessRequest(id: $id) { status decisionReason decidedBy { name } } }"
ACTIVITY = """
query($id: ID!) {
  accessRequest(id: $id) { activity(first: 100) { edges { node { cursor action } } } }
}
"""


async def pending_request(live: Live, world: World) -> str:
    data = await live.http.data(
        world.token("engineer-alice"),
        CREATE,
        input={
            "ticketId": world.ticket("contoso"),
            "resources": [RESOURCE],
            "justification": "Reading web tier logs for the contoso ticket",
        },
    )
    assert data["createAccessRequest"]["status"] == "PENDING"
    return str(data["createAccessRequest"]["id"])


async def approved_request(live: Live, world: World) -> str:
    request_id = await pending_request(live, world)
    await live.http.data(world.token("contoso-admin"), APPROVE, id=request_id)
    return request_id


async def act(
    live: Live, world: World, request_id: str, action: str, *, allowed: bool = True
) -> Any:
    """One gate call by the request's engineer; the event it recorded."""
    resource = f"{RESOURCE}/{action}" if allowed else ELSEWHERE
    data = await live.http.data(
        world.token("engineer-alice"),
        AUTHORIZE,
        input={"requestId": request_id, "resource": resource, "action": action},
    )
    assert data["authorizeAccess"]["allowed"] is allowed
    return data["authorizeAccess"]["event"]


async def act_offline(deps: Deps, world: World, request_id: str, action: str) -> str:
    """One gate call written straight to the database while no server runs;
    only a replay from the database can deliver it. Its cursor."""
    event = await gate.authorize(
        deps,
        world.actors["engineer-alice"],
        request_id=request_id,
        resource=f"{RESOURCE}/{action}",
        action=action,
        detail=None,
    )
    return cursors.encode_int("activity", event.seq)


async def recorded(live: Live, world: World, request_id: str) -> list[tuple[str, str]]:
    """(cursor, action) of every event of the request, in cursor order."""
    data = await live.http.data(world.token("contoso-admin"), ACTIVITY, id=request_id)
    edges = data["accessRequest"]["activity"]["edges"]
    return [(edge["node"]["cursor"], edge["node"]["action"]) for edge in edges]


class Restarts:
    """Stops the test's server and starts a new one on the same port and
    database, as a deployment restart would; stops what it started."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.current: LiveServer = live.server
        self.started: list[LiveServer] = []

    async def stop(self) -> None:
        """uvicorn closes every open WebSocket with 1012 (service restart)."""
        await asyncio.to_thread(self.current.stop)

    async def start(self) -> None:
        stack = self.live.stack
        app = create_app(
            Settings(
                database_url=stack.database_url,
                broker_url=stack.broker_url,
                sweep_interval_seconds=0.05,
                lockout_poll_seconds=0.2,
            ),
            clock=self.live.clock,
        )
        self.current = LiveServer(app, port=self.live.server.port)
        self.started.append(self.current)
        await asyncio.to_thread(self.current.start)

    async def close(self) -> None:
        for server in self.started:
            await asyncio.to_thread(server.stop)
