"""`lockbox demo`: the one-command tour, as a newcomer would run it."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.cli_support import DEMO_PRINCIPALS, ServerProcess, free_port
from tests.support import TRANSPORT_WS, GraphQLHttp, WsClient

APPROVED = """
{ accessRequests(status: [APPROVED]) {
    edges { node { id resources decisionReason tenant { name } engineer { name } } } } }"""
FABRIKAM_PENDING = "{ pendingRequests { edges { node { id requiredApprovals } } } }"
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { status } }"
ACTIVITY = """
subscription($id: ID!) {
  engineerActivity(requestId: $id) { cursor resource action allowed engineer { name } }
}"""


def printed_tokens(banner: str) -> dict[str, str]:
    """`name  token` lines of the banner."""
    return dict(re.findall(r"^\s+([a-z][\w-]+)\s+(lbx_\S+)\s*$", banner, re.MULTILINE))


async def first_approved_request(http: GraphQLHttp, token: str, timeout: float) -> dict[str, Any]:
    """Poll until the caller sees an APPROVED request (the simulated engineer
    opens it just after start-up); fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        edges = (await http.data(token, APPROVED))["accessRequests"]["edges"]
        if edges:
            node: dict[str, Any] = edges[0]["node"]
            return node
        assert time.monotonic() < deadline, "no approved request appeared in time"
        await asyncio.sleep(0.1)


async def test_demo_prints_graphiql_and_tokens_and_its_engineer_acts_on_northwind(
    tmp_path: Path,
) -> None:
    port = free_port()
    with ServerProcess(tmp_path, ["demo", "--port", str(port), "--tick", "0.2"], port) as demo:
        banner = await asyncio.to_thread(demo.wait_for_output, "Ctrl+C")
        graphiql = f"http://127.0.0.1:{port}/graphql"
        assert graphiql in banner

        tokens = printed_tokens(banner)
        assert set(tokens) == set(DEMO_PRINCIPALS), banner

        async with httpx.AsyncClient(timeout=10) as client:
            page = await client.get(graphiql, headers={"Accept": "text/html"})
            assert page.status_code == 200
            assert "graphiql" in page.text.lower()

        http = GraphQLHttp(demo.base_url)
        try:
            request = await first_approved_request(http, tokens["northwind-admin"], timeout=15)
            # The tour turns quorum on for fabrikam: alice's request there
            # waits for two approvals; one leaves it pending.
            fabrikam = await http.data(tokens["fabrikam-admin"], FABRIKAM_PENDING)
            waiting = [e["node"] for e in fabrikam["pendingRequests"]["edges"]]
            assert [r["requiredApprovals"] for r in waiting] == [2], fabrikam
            approved = await http.data(tokens["fabrikam-admin"], APPROVE, id=waiting[0]["id"])
            assert approved["approveRequest"]["status"] == "PENDING"
        finally:
            await http.aclose()
        assert "two approvals" in banner
        assert request["tenant"]["name"] == "northwind"
        assert request["engineer"]["name"] == "engineer-alice"

        watcher = WsClient(f"ws://127.0.0.1:{port}/graphql", TRANSPORT_WS)
        await watcher.connect(tokens["northwind-admin"])
        try:
            await watcher.subscribe("activity", ACTIVITY, id=request["id"])
            # Replayed or live, events keep coming while the engineer works.
            events = [(await watcher.next_data(timeout=10))["engineerActivity"] for _ in range(3)]
        finally:
            await watcher.close()
        assert all(e["engineer"]["name"] == "engineer-alice" for e in events)
        cursors = [e["cursor"] for e in events]
        assert len(set(cursors)) == 3
        root = request["resources"][0]
        assert any(e["allowed"] and e["resource"].startswith(root + "/") for e in events), events

        code = await asyncio.to_thread(demo.stop, signal.SIGTERM, 10)
        assert code == 0, demo.describe()
    assert "Traceback" not in demo.stderr, demo.describe()
