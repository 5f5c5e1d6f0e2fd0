"""Apollo Client 4, unmodified, against a live server: over the HTTP +
WebSocket split (a query with its normalised cache, a mutation, a
subscription) and over HttpLink alone."""

from __future__ import annotations

import pytest

from tests.clients import tours
from tests.clients.node import needs_node
from tests.conftest import Live, World

pytestmark = needs_node
TOUR = "tour-apollo.mjs"


@pytest.mark.parametrize("link", ["split", "http"])
async def test_apollo_queries_and_mutates_with_a_normalised_cache(
    link: str, live: Live, world: World
) -> None:
    _, approved, cache = await tours.approval(live, world, TOUR, "--link", link)
    # Read from the cache alone after the mutation: the pending list's entry
    # and the mutation's answer are one object under one key, so the list
    # shows the new status without being fetched again.
    assert cache == {
        "step": "cache",
        "key": f"AccessRequest:{approved['id']}",
        "status": "APPROVED",
    }


async def test_apollo_subscribes_over_graphql_ws(live: Live, world: World) -> None:
    await tours.watching(live, world, TOUR, "--link", "split")


async def test_apollo_subscribes_over_http_multipart(live: Live, world: World) -> None:
    # HttpLink alone: Apollo asks for `multipart/mixed;subscriptionSpec=1.0`.
    await tours.watching(live, world, TOUR, "--link", "http")
