"""urql (@urql/core), unmodified, against a live server: a query and a
mutation over fetchExchange, a subscription over graphql-ws."""

from __future__ import annotations

from tests.clients import tours
from tests.clients.node import needs_node
from tests.conftest import Live, World

pytestmark = needs_node
TOUR = "tour-urql.mjs"


async def test_urql_queries_and_mutates(live: Live, world: World) -> None:
    lines = await tours.approval(live, world, TOUR)
    assert [line["step"] for line in lines] == ["pending", "approve"]


async def test_urql_subscribes_over_graphql_ws(live: Live, world: World) -> None:
    await tours.watching(live, world, TOUR)
