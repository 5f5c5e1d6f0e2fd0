"""Too many calls from one principal are refused with a retry hint."""

from __future__ import annotations

import asyncio

from lockbox.clock import ManualClock
from tests.conftest import Stack, World, start_server
from tests.support import GraphQLHttp


async def test_flooding_caller_is_rate_limited_and_others_are_not(
    world: World, database: Stack, clock: ManualClock
) -> None:
    server = start_server(database, clock, rate_limit_per_second=0.5, rate_limit_burst=3)
    http = GraphQLHttp(server.http_url)
    try:
        flood = [await http.call(world.token("contoso-admin"), "{ me { name } }") for _ in range(4)]
        assert all("errors" not in body for body in flood[:3])
        error = flood[3]["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfterSeconds"] >= 1
        other = await http.data(world.token("fabrikam-admin"), "{ me { name } }")
        assert other["me"]["name"] == "fabrikam-admin"
    finally:
        await http.aclose()
        await asyncio.to_thread(server.stop)
