"""The two halves of every client-examples/stock/tour-*.mjs run, checked
against the server: a decider lists and approves; anyone who sees the
request streams its activity, replayed then live."""

from __future__ import annotations

import json
from typing import Any

from tests.clients.node import running
from tests.clients.steps import STATUS, act, approved_request, pending_request
from tests.conftest import Live, World

REASON = "checked against the ticket"


async def approval(live: Live, world: World, script: str, *args: str) -> list[Any]:
    """The tour's `approve` step: its pending list holds the new request, its
    approval lands on the server. Every JSON line it printed."""
    request_id = await pending_request(live, world)
    admin = world.token("contoso-admin")
    async with running(
        script, request_id, "--steps", "approve", *args, url=live.server.http_url, token=admin
    ) as tour:
        pending = await tour.out.json()
        assert pending == {"step": "pending", "ids": [request_id]}, tour
        approved = await tour.out.json()
        approved.pop("__typename", None)  # Apollo adds it to every selection
        assert approved == {
            "step": "approve",
            "id": request_id,
            "status": "APPROVED",
            "decisionReason": REASON,
        }, tour
        assert await tour.exit_code() == 0, tour
    status = await live.http.data(admin, STATUS, id=request_id)
    assert status["accessRequest"] == {
        "status": "APPROVED",
        "decisionReason": REASON,
        "decidedBy": {"name": "contoso-admin"},
    }
    return [pending, approved, *map(json.loads, tour.out.lines[2:])]


async def watching(live: Live, world: World, script: str, *args: str) -> None:
    """The tour's `watch` step, as the read-only auditor: an event made
    before it subscribed is replayed, then an allowed and a denied call
    arrive live, each once, with the server's cursors."""
    request_id = await approved_request(live, world)
    before = await act(live, world, request_id, "before-watch")
    auditor = world.token("contoso-auditor")
    async with running(
        script,
        request_id,
        "--steps",
        "watch",
        "--events",
        "3",
        *args,
        url=live.server.http_url,
        token=auditor,
    ) as tour:
        first = await tour.out.json()
        allowed = await act(live, world, request_id, "read-logs")
        denied = await act(live, world, request_id, "peek", allowed=False)
        second, third = await tour.out.json(), await tour.out.json()
        assert await tour.exit_code() == 0, tour
    assert len(tour.out.lines) == 3, tour
    got = [(e["step"], e["cursor"], e["action"], e["allowed"]) for e in (first, second, third)]
    assert got == [
        ("event", before["cursor"], "before-watch", True),
        ("event", allowed["cursor"], "read-logs", True),
        ("event", denied["cursor"], "peek", False),
    ]
    assert "outside the resources" in third["denialReason"]
