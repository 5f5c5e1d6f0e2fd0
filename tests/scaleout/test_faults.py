"""Faults: Redis, a server process and PostgreSQL go away and come back.

Each test that breaks a service starts its own copy of it (a private
redis-server, a private PostgreSQL cluster) so the shared ones stay untouched.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from tests.conftest import Stack, World
from tests.scaleout import flows
from tests.scaleout.procs import (
    PostgresCluster,
    RedisServer,
    ServerProcess,
    free_port,
    lockbox_servers,
    postgres_version,
    run_lockbox,
)
from tests.support import LEGACY_WS, TRANSPORT_WS, GraphQLHttp, WsClient

ENGINEER = "engineer-alice"
OUTAGE_SECONDS = 1.5  # longer than the broker's reconnect interval (0.5 s)


def report(scenario: str, **facts: Any) -> None:
    """One line per scenario with what was observed (shown with `pytest -s`)."""
    print(f"\n[{scenario}] " + ", ".join(f"{k}={v}" for k, v in facts.items()))


async def ready_statuses(servers: list[ServerProcess], expected: int, timeout: float) -> float:
    times = await asyncio.gather(*(s.wait_ready_status(expected, timeout) for s in servers))
    return max(times)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_redis_outage_delays_but_never_loses_or_doubles_activity_events(
    world: World, database: Stack, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path)
    await asyncio.to_thread(redis.start)
    try:
        async with lockbox_servers(
            2, tmp_path, database_url=database.database_url, broker_url=redis.url
        ) as servers:
            a, b = GraphQLHttp(servers[0].http_url), GraphQLHttp(servers[1].http_url)
            engineer = world.token(ENGINEER)
            request_id = await flows.approved_request(
                a, b, engineer, world.token("contoso-admin"), world.ticket("contoso")
            )
            watchers = [
                flows.Watcher(
                    f"{who}@{server.name}",
                    [server.ws_url],
                    world.token(who),
                    flows.ACTIVITY,
                    {"id": request_id},
                    resume_key="cursor",
                )
                for who, server in [
                    ("contoso-admin", servers[0]),
                    ("contoso-approver-prod", servers[0]),
                    ("contoso-auditor", servers[1]),
                ]
            ]
            for w in watchers:
                await w.start()
            sent: list[str] = []

            async def authorize_round(count: int) -> float:
                """`count` allowed actions, alternating A and B; the slowest call."""
                slowest = 0.0
                for _ in range(count):
                    started = time.monotonic()
                    decision = await flows.authorize((a, b)[len(sent) % 2], engineer, request_id)
                    slowest = max(slowest, time.monotonic() - started)
                    assert decision["allowed"], decision
                    sent.append(decision["event"]["cursor"])
                return slowest

            try:
                await authorize_round(3)
                for w in watchers:
                    await w.wait_count(3)

                redis.kill()
                outage_started = time.monotonic()
                readyz_503_after = await ready_statuses(servers, 503, 10)
                # Keep working through an outage long enough for the listeners'
                # reconnect attempts to fail a few times; /readyz stays 503.
                slowest_during_outage = 0.0
                async with httpx.AsyncClient() as probe:
                    for _ in range(200):
                        slowest = await authorize_round(1)
                        slowest_during_outage = max(slowest_during_outage, slowest)
                        assert [await s.readyz(probe) for s in servers] == [503, 503]
                        if time.monotonic() - outage_started > OUTAGE_SECONDS:
                            break
                committed_during_outage = len(sent) - 3
                received_during_outage = [len(w.items) for w in watchers]

                await asyncio.to_thread(redis.start)
                restarted = time.monotonic()
                outage = restarted - outage_started
                caught_up = [await w.wait_count(len(sent), 15) for w in watchers]
                recovery = time.monotonic() - restarted
                await ready_statuses(servers, 200, 10)

                # Live delivery through Redis again, after the resync.
                await authorize_round(2)
                for w in watchers:
                    await w.wait_count(len(sent))
            finally:
                for w in watchers:
                    await w.stop()
                await a.aclose()
                await b.aclose()
    finally:
        await asyncio.to_thread(redis.stop)

    for w in watchers:
        assert w.cursors == sent, (w.name, w.cursors, sent)
        assert w.reconnects == 0, w.closes
    lost = sum(len(set(sent) - set(w.cursors)) for w in watchers)
    doubled = sum(len(w.cursors) - len(set(w.cursors)) for w in watchers)
    report(
        "redis killed and restarted",
        events_sent=len(sent),
        committed_during_outage=committed_during_outage,
        received_per_subscriber=[len(w.items) for w in watchers],
        received_during_outage=received_during_outage,
        lost=lost,
        doubled=doubled,
        readyz_503_after_s=round(readyz_503_after, 2),
        slowest_mutation_during_outage_s=round(slowest_during_outage, 3),
        outage_s=round(outage, 2),
        caught_up_after_restart_s=round(recovery, 2),
        per_subscriber_s=[round(t, 2) for t in caught_up],
    )


async def test_clients_of_a_killed_process_resume_on_another_with_their_cursor_and_miss_nothing(
    world: World, database: Stack, tmp_path: Path
) -> None:
    async with lockbox_servers(
        2, tmp_path, database_url=database.database_url, broker_url=database.broker_url
    ) as (doomed, survivor):
        http = GraphQLHttp(survivor.http_url)
        engineer = world.token(ENGINEER)
        request_id = await flows.approved_request(
            http, http, engineer, world.token("contoso-admin"), world.ticket("contoso")
        )
        watchers = [
            flows.Watcher(
                f"{who}@{doomed.name}",
                [doomed.ws_url, survivor.ws_url],
                world.token(who),
                flows.ACTIVITY,
                {"id": request_id},
                resume_key="cursor",
            )
            for who in ("contoso-admin", "contoso-approver-prod", "contoso-auditor")
        ]
        sent: list[str] = []
        killed = asyncio.Event()

        async def produce(before_kill: int, after_kill: int) -> None:
            for i in range(before_kill + after_kill):
                if i == before_kill:
                    await asyncio.wait_for(killed.wait(), 15)
                decision = await flows.authorize(http, engineer, request_id, f"{flows.PROD}/vm{i}")
                sent.append(decision["event"]["cursor"])

        try:
            for w in watchers:
                await w.start()
            producer = asyncio.create_task(produce(10, 10))
            # Kill mid-stream: every client has seen some events, not all.
            for w in watchers:
                await w.wait_count(4)
            status = await doomed.kill()
            killed.set()
            killed_at = time.monotonic()
            sent_before_kill = len(sent)
            await asyncio.wait_for(producer, 30)
            for w in watchers:
                await w.wait_count(len(sent), 15)
            caught_up = time.monotonic() - killed_at
        finally:
            for w in watchers:
                await w.stop()
            await http.aclose()

    assert status == -signal.SIGKILL
    for w in watchers:
        assert w.cursors == sent, (w.name, w.cursors, sent)
        assert w.connected_to == [doomed.ws_url, survivor.ws_url], w.connected_to
    report(
        "server process SIGKILLed",
        events_sent=len(sent),
        committed_after_kill=len(sent) - sent_before_kill,
        received_per_client=[len(w.items) for w in watchers],
        resumed_after_events=[w.resumed_at for w in watchers],
        close_codes_seen=[w.closes for w in watchers],
        lost=sum(len(set(sent) - set(w.cursors)) for w in watchers),
        doubled=sum(len(w.cursors) - len(set(w.cursors)) for w in watchers),
        reconnects=[w.reconnects for w in watchers],
        caught_up_after_kill_s=round(caught_up, 2),
    )


async def close_code(client: WsClient, timeout: float) -> int | None:
    """Read until the server closes the socket; the close code it sent."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            await asyncio.wait_for(client.ws.recv(), deadline - time.monotonic())
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    raise AssertionError(f"socket still open after {timeout} s")


async def test_sigterm_closes_open_subscriptions_with_1012_and_exits_cleanly(
    world: World, database: Stack, tmp_path: Path
) -> None:
    async with lockbox_servers(
        1, tmp_path, database_url=database.database_url, broker_url=database.broker_url
    ) as (server,):
        http = GraphQLHttp(server.http_url)
        engineer, admin = world.token(ENGINEER), world.token("contoso-admin")
        request_id = await flows.approved_request(
            http, http, engineer, admin, world.ticket("contoso")
        )
        clients = [WsClient(server.ws_url, TRANSPORT_WS), WsClient(server.ws_url, LEGACY_WS)]
        for n, client in enumerate(clients):
            await client.connect(admin)
            await client.subscribe(str(n), flows.ACTIVITY, id=request_id)
        cursor = (await flows.authorize(http, engineer, request_id))["event"]["cursor"]
        await http.aclose()
        for client in clients:
            assert (await client.next_data())["engineerActivity"]["cursor"] == cursor

        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        codes = [await close_code(client, 10) for client in clients]
        closed_after = time.monotonic() - started
        status = await server.wait_exit(15)
        exited_after = time.monotonic() - started

    report(
        "graceful shutdown (SIGTERM)",
        close_codes={"graphql-transport-ws": codes[0], "graphql-ws": codes[1]},
        sockets_closed_after_s=round(closed_after, 2),
        exit_status=status,
        exited_after_s=round(exited_after, 2),
    )
    assert codes == [1012, 1012]
    assert status == 0, server.log_tail()


PG_VERSION = postgres_version()


@pytest.mark.skipif(
    PG_VERSION is None or os.geteuid() != 0,
    reason="needs pg_createcluster/pg_ctlcluster and root to run a private PostgreSQL cluster",
)
async def test_server_reports_unready_while_postgres_is_down_and_recovers_by_itself(
    tmp_path: Path,
) -> None:
    assert PG_VERSION is not None
    pg = PostgresCluster(PG_VERSION, f"lbxtest{os.getpid()}p{free_port()}")
    try:
        await asyncio.to_thread(pg.create)
        await asyncio.to_thread(pg.start)
        admin_conn = await asyncpg.connect(
            pg.url("postgres").replace("postgres://", "postgresql://")
        )
        await admin_conn.execute("CREATE DATABASE lockbox")
        await admin_conn.close()
        url = pg.url("lockbox")
        migrated = await asyncio.to_thread(run_lockbox, ["migrate", "--database-url", url])
        assert migrated.returncode == 0, migrated.stderr
        seeded = await asyncio.to_thread(
            run_lockbox, ["seed-demo", "--database-url", url, "--json"]
        )
        assert seeded.returncode == 0, seeded.stderr
        world = World(raw=json.loads(seeded.stdout), actors={})
        engineer, admin = world.token(ENGINEER), world.token("contoso-admin")

        async with lockbox_servers(
            1, tmp_path, database_url=url, broker_url="memory://", env={"LOCKBOX_DB_POOL_MAX": "5"}
        ) as (server,):
            http = GraphQLHttp(server.http_url)
            try:
                await server.wait_ready_status(200, 10)
                # Committed before the outage: two requests, activity on one.
                approved = await flows.approved_request(
                    http, http, engineer, admin, world.ticket("contoso")
                )
                pending = await flows.create_request(http, engineer, world.ticket("contoso"))
                cursors = [
                    (await flows.authorize(http, engineer, approved, f"{flows.PROD}/vm{i}"))[
                        "event"
                    ]["cursor"]
                    for i in range(3)
                ]
                # Several pooled connections, all of which the outage will cut.
                await asyncio.gather(*(http.data(admin, flows.GET, id=approved) for _ in range(10)))

                await asyncio.to_thread(pg.stop)
                stopped = time.monotonic()
                unready_after = await server.wait_ready_status(503, 10)
                started = time.monotonic()
                during = await http.call(admin, flows.GET, id=approved)
                failed_in = time.monotonic() - started
                assert during["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
                assert during["errors"][0]["message"] == "Unexpected error."
                assert server.proc.poll() is None

                restarting = time.monotonic()
                await asyncio.to_thread(pg.start)
                restarted = time.monotonic()
                recovered_after = await server.wait_ready_status(200, 30)
                down_for = restarted - stopped
                start_took = restarted - restarting

                # Every pooled connection works again, not just the one /readyz used.
                bodies = await asyncio.gather(
                    *(http.call(admin, flows.GET, id=approved) for _ in range(10))
                )
                failures_after_ready = sum(1 for body in bodies if body.get("errors"))
                after = await http.data(admin, flows.GET, id=approved)
                still_pending = await http.data(admin, flows.GET, id=pending)
                more = await flows.authorize(http, engineer, approved, f"{flows.PROD}/vm9")
            finally:
                await http.aclose()

        verify = await asyncio.to_thread(run_lockbox, ["audit", "verify", "--database-url", url])
    finally:
        await asyncio.to_thread(pg.drop)

    report(
        "postgresql restarted",
        readyz_503_after_s=round(unready_after, 2),
        query_during_outage_failed_in_s=round(failed_in, 2),
        postgres_down_s=round(down_for, 2),
        pg_ctlcluster_start_took_s=round(start_took, 2),
        readyz_200_after_restart_s=round(recovered_after, 2),
        failed_queries_after_ready=failures_after_ready,
        activity_kept=len(after["accessRequest"]["activity"]["edges"]),
    )
    assert failures_after_ready == 0, [b["errors"] for b in bodies if b.get("errors")]
    assert after["accessRequest"]["status"] == "APPROVED"
    assert [e["cursor"] for e in after["accessRequest"]["activity"]["edges"]] == cursors
    assert still_pending["accessRequest"]["status"] == "PENDING"
    assert more["allowed"] is True
    assert verify.returncode == 0, verify.stdout + verify.stderr
