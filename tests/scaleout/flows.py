"""GraphQL documents and clients shared by the scale-out tests.

The watchers read a subscription in a background task and let a test wait,
with a deadline, until they have seen what it expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import websockets

from tests.support import TRANSPORT_WS, GraphQLHttp, WsClient

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"

CREATE = """
mutation($ticket: ID!, $resources: [String!]!) {
  createAccessRequest(input: {ticketId: $ticket, resources: $resources,
                              justification: "scale-out test"}) { id status }
}"""
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { id status } }"
DENY = "mutation($id: ID!) { denyRequest(id: $id) { id status } }"
REVOKE = "mutation($id: ID!) { revokeAccess(id: $id) { id status } }"
CANCEL = "mutation($id: ID!) { cancelAccessRequest(id: $id) { id status } }"
AUTHORIZE = """
mutation($id: ID!, $resource: String!) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: "read"}) {
    allowed reason event { cursor }
  }
}"""
GET = """
query($id: ID!) {
  accessRequest(id: $id) {
    id status activity(first: 200) { edges { cursor node { resource allowed } } }
  }
}"""
SET_TTL = """
mutation($ttl: Int!) {
  updateLockboxSettings(input: {pendingRequestTtlSeconds: $ttl}) {
    settings { pendingRequestTtlSeconds }
  }
}"""
ACTIVITY = """
subscription($id: ID!, $after: String) {
  engineerActivity(requestId: $id, after: $after) { cursor resource allowed }
}"""
UPDATES = "subscription { accessRequestUpdates { id status } }"


async def create_request(http: GraphQLHttp, engineer: str, ticket: str) -> str:
    data = await http.data(engineer, CREATE, ticket=ticket, resources=[PROD])
    request_id: str = data["createAccessRequest"]["id"]
    return request_id


async def approved_request(
    creator: GraphQLHttp, approver: GraphQLHttp, engineer: str, admin: str, ticket: str
) -> str:
    request_id = await create_request(creator, engineer, ticket)
    data = await approver.data(admin, APPROVE, id=request_id)
    assert data["approveRequest"]["status"] == "APPROVED"
    return request_id


async def authorize(
    http: GraphQLHttp, engineer: str, request_id: str, resource: str = f"{PROD}/vm1"
) -> dict[str, Any]:
    data = await http.data(engineer, AUTHORIZE, id=request_id, resource=resource)
    decision: dict[str, Any] = data["authorizeAccess"]
    return decision


class Watcher:
    """A subscription read in the background, failing over between servers.

    On a dropped connection it connects to the next URL and, for
    engineerActivity, resumes after the last cursor it received.
    """

    def __init__(
        self,
        name: str,
        urls: Sequence[str],
        token: str,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        resume_key: str | None = None,
        max_connects: int = 5,
    ) -> None:
        self.name = name
        self.urls = list(urls)
        self.token = token
        self.query = query
        self.variables = dict(variables or {})
        self.resume_key = resume_key
        self.max_connects = max_connects
        self.items: list[dict[str, Any]] = []
        self.connected_to: list[str] = []
        self.resumed_at: list[int] = []  # items held at each reconnect
        self.closes: list[tuple[int | None, str]] = []  # (close code, reason) per drop
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self._live = asyncio.Event()
        self._client: WsClient | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def reconnects(self) -> int:
        return max(0, len(self.connected_to) - 1)

    @property
    def cursors(self) -> list[str]:
        return [item["cursor"] for item in self.items]

    async def start(self) -> Watcher:
        self._task = asyncio.create_task(self._run(), name=f"watcher-{self.name}")
        await asyncio.wait_for(self._live.wait(), 10)
        return self

    async def _run(self) -> None:
        index = 0
        try:
            for _ in range(self.max_connects):
                url = self.urls[index % len(self.urls)]
                index += 1
                client = WsClient(url, TRANSPORT_WS)
                self._client = client
                variables = dict(self.variables)
                if self.resume_key is not None and self.items:
                    variables["after"] = self.items[-1][self.resume_key]
                try:
                    await client.connect(self.token)
                    await client.subscribe("1", self.query, **variables)
                    if self.connected_to:
                        self.resumed_at.append(len(self.items))
                    self.connected_to.append(url)
                    self._live.set()
                    while True:
                        data = await client.next_data(timeout=3600)
                        self.items.append(next(iter(data.values())))
                        self._changed.set()
                except (websockets.ConnectionClosed, OSError) as exc:
                    rcvd = getattr(exc, "rcvd", None)
                    self.closes.append((rcvd.code if rcvd else None, rcvd.reason if rcvd else ""))
                    self._changed.set()
                finally:
                    with contextlib.suppress(Exception):
                        await client.close()
            raise RuntimeError(f"{self.name}: gave up after {self.max_connects} connections")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = exc
            self._changed.set()
            self._live.set()

    async def wait_until(self, done: Any, timeout: float, what: str) -> float:
        """Wait until `done(self)` holds; the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while not done(self):
            if self.error is not None:
                raise AssertionError(f"{self.name} failed: {self.error!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: no {what} within {timeout} s; got {len(self.items)} items"
                    f" {self.items[-5:]}, closes {self.closes}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return time.monotonic() - started

    async def wait_count(self, count: int, timeout: float = 10) -> float:
        return await self.wait_until(lambda w: len(w.items) >= count, timeout, f"{count} items")

    async def wait_closed(self, timeout: float = 10) -> float:
        return await self.wait_until(lambda w: bool(w.closes), timeout, "close")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
