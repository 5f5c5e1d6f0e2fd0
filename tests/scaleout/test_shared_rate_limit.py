"""The rate limit a caller meets does not depend on how many processes serve it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Stack, World
from tests.scaleout.procs import lockbox_servers
from tests.support import GraphQLHttp


async def test_a_callers_budget_is_shared_by_every_process(
    world: World, database: Stack, tmp_path: Path
) -> None:
    limits = {"LOCKBOX_RATE_LIMIT_PER_SECOND": "0.2", "LOCKBOX_RATE_LIMIT_BURST": "4"}
    async with lockbox_servers(
        3, tmp_path, database_url=database.database_url, broker_url=database.broker_url, env=limits
    ) as servers:
        clients = [GraphQLHttp(server.http_url) for server in servers]
        try:
            outcomes = [
                await clients[i % 3].call(world.token("contoso-admin"), "{ me { name } }")
                for i in range(9)
            ]
            other = await clients[0].data(world.token("fabrikam-admin"), "{ me { name } }")
        finally:
            for client in clients:
                await client.aclose()
    allowed = [body for body in outcomes if not body.get("errors")]
    limited = [body["errors"][0]["extensions"] for body in outcomes if body.get("errors")]
    # Three processes with a burst of 4 each would allow all 9; one shared
    # bucket allows the burst (plus at most one refilled token).
    assert 4 <= len(allowed) <= 5
    assert all(e["code"] == "RATE_LIMITED" and e["retryAfterSeconds"] >= 1 for e in limited)
    assert other["me"]["name"] == "fabrikam-admin"
