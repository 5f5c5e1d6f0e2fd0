"""subscriptions-transport-ws, unmodified, on the legacy `graphql-ws`
sub-protocol: a query, a mutation and a subscription over one socket."""

from __future__ import annotations

from tests.clients import tours
from tests.clients.node import needs_node
from tests.conftest import Live, World

pytestmark = needs_node
TOUR = "tour-subscriptions-transport-ws.mjs"


async def test_legacy_protocol_runs_a_query_and_a_mutation(live: Live, world: World) -> None:
    lines = await tours.approval(live, world, TOUR)
    assert [line["step"] for line in lines] == ["pending", "approve"]


async def test_legacy_protocol_subscribes(live: Live, world: World) -> None:
    await tours.watching(live, world, TOUR)
