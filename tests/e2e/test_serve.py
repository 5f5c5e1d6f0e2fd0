"""`lockbox serve` as a real child process on a free port."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from tests.conftest import Stack
from tests.e2e.cli_support import Lockbox, ServerProcess, Sql, free_port


def serve(tmp_path: Path, stack: Stack, *extra: str) -> ServerProcess:
    port = free_port()
    args = [
        "serve",
        "--port",
        str(port),
        "--database-url",
        stack.database_url,
        "--broker-url",
        stack.broker_url,
        *extra,
    ]
    return ServerProcess(tmp_path, args, port)


async def test_serve_migrates_an_empty_database_reports_ready_and_stops_on_sigterm(
    tmp_path: Path, empty_database: Stack
) -> None:
    with serve(tmp_path, empty_database) as server:
        await asyncio.to_thread(server.wait_healthy)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            health = await client.get("/healthz")
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ready", "database": "ok", "broker": "ok"}
        assert {"tenant", "principal", "api_token", "audit_event"} <= await Sql(
            empty_database.database_url
        ).tables()

        code = await asyncio.to_thread(server.stop, signal.SIGTERM, 10)
        assert code == 0, server.describe()
    assert "Traceback" not in server.stderr, server.describe()


async def test_serve_answers_graphql_for_a_seeded_database_and_stops_on_sigint(
    tmp_path: Path, lockbox: Lockbox, stack: Stack
) -> None:
    world = (await lockbox("seed-demo", "--json", "--database-url", stack.database_url)).json()
    token = world["principals"]["contoso-admin"]["token"]
    with serve(tmp_path, stack) as server:
        await asyncio.to_thread(server.wait_healthy)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            answer = await client.post(
                "/graphql",
                json={"query": "{ me { name tenant { name } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json() == {
                "data": {"me": {"name": "contoso-admin", "tenant": {"name": "contoso"}}}
            }
            anonymous = await client.post("/graphql", json={"query": "{ me { name } }"})
            assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        code = await asyncio.to_thread(server.stop, signal.SIGINT, 10)
        assert code == 0, server.describe()
    assert "Traceback" not in server.stderr, server.describe()


async def test_serve_with_no_migrate_leaves_an_empty_database_without_tables(
    tmp_path: Path, empty_database: Stack
) -> None:
    with serve(tmp_path, empty_database, "--no-migrate") as server:
        await asyncio.to_thread(server.wait_healthy)
        assert await Sql(empty_database.database_url).tables() == set()
        code = await asyncio.to_thread(server.stop, signal.SIGTERM, 10)
        assert code == 0, server.describe()
    assert await Sql(empty_database.database_url).tables() == set()


async def test_serve_with_no_migrate_on_an_empty_database_still_shuts_down_cleanly(
    tmp_path: Path, empty_database: Stack
) -> None:
    with serve(tmp_path, empty_database, "--no-migrate") as server:
        await asyncio.to_thread(server.wait_healthy)
        # Up, but not ready: there is no schema to serve from yet.
        ready = await asyncio.to_thread(
            httpx.get, f"http://127.0.0.1:{server.port}/readyz", timeout=5
        )
        code = await asyncio.to_thread(server.stop, signal.SIGTERM, 10)
    assert ready.status_code == 503
    assert code == 0, server.describe()
    assert "shutdown failed" not in server.stderr, server.describe()
