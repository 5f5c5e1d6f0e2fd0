"""Several `lockbox serve` processes on one PostgreSQL and one Redis behave as one."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from lockbox.store.models import AccessRequest, AuditEvent
from tests.conftest import Stack, World
from tests.scaleout import flows
from tests.scaleout.procs import ServerProcess, lockbox_servers, run_lockbox
from tests.support import GraphQLHttp

ENGINEER = "engineer-alice"
DECIDERS = ("contoso-admin", "contoso-approver-prod")
STATUSES = ("APPROVED", "DENIED", "REVOKED")


@asynccontextmanager
async def cluster(
    stack: Stack, tmp_path: Path, count: int, **env: str
) -> AsyncIterator[tuple[list[ServerProcess], list[GraphQLHttp]]]:
    """`count` servers on the test's database and Redis channel, with a client each."""
    async with lockbox_servers(
        count, tmp_path, database_url=stack.database_url, broker_url=stack.broker_url, env=env
    ) as servers:
        clients = [GraphQLHttp(s.http_url) for s in servers]
        try:
            yield servers, clients
        finally:
            for client in clients:
                await client.aclose()


async def test_activity_authorized_on_one_process_reaches_a_subscriber_on_another_within_a_second(
    world: World, database: Stack, tmp_path: Path
) -> None:
    async with cluster(database, tmp_path, 2) as (servers, (a, b)):
        engineer, admin = world.token(ENGINEER), world.token("contoso-admin")
        request_id = await flows.approved_request(b, a, engineer, admin, world.ticket("contoso"))
        watcher = flows.Watcher(
            "on-A", [servers[0].ws_url], admin, flows.ACTIVITY, {"id": request_id}
        )
        await watcher.start()
        try:
            # The first event proves the subscription is live on A.
            first = await flows.authorize(b, engineer, request_id)
            await watcher.wait_count(1)
            assert watcher.cursors == [first["event"]["cursor"]]
            latencies = []
            for i in range(2, 7):
                started = time.monotonic()
                decision = await flows.authorize(b, engineer, request_id, f"{flows.PROD}/vm{i}")
                await watcher.wait_count(i, timeout=5)
                latencies.append(time.monotonic() - started)
                assert watcher.cursors[-1] == decision["event"]["cursor"]
        finally:
            await watcher.stop()
    print(f"\n[cross-process latency] B authorize -> A subscriber: {latencies}")
    assert max(latencies) < 1.0, latencies


async def test_authorize_on_any_process_is_denied_once_revoke_has_returned_on_another(
    world: World, database: Stack, tmp_path: Path
) -> None:
    iterations, lanes = 200, 8
    async with cluster(database, tmp_path, 3) as (_, procs):
        engineer, ticket = world.token(ENGINEER), world.ticket("contoso")
        allowed_after_revoke: list[str] = []
        allowed_before_revoke = 0

        async def lane(number: int) -> None:
            nonlocal allowed_before_revoke
            for j in range(iterations // lanes):
                i = number * (iterations // lanes) + j
                p = [procs[(i + k) % len(procs)] for k in range(3)]
                decider = world.token(DECIDERS[i % 2])
                request_id = await flows.approved_request(p[0], p[1], engineer, decider, ticket)
                before = await flows.authorize(p[2], engineer, request_id)
                allowed_before_revoke += before["allowed"]
                revoked = await p[0].data(decider, flows.REVOKE, id=request_id)
                assert revoked["revokeAccess"]["status"] == "REVOKED"
                after = await flows.authorize(p[1], engineer, request_id)
                if after["allowed"]:
                    allowed_after_revoke.append(request_id)
                else:
                    assert "REVOKED" in after["reason"], after

        started = time.monotonic()
        await asyncio.gather(*(lane(n) for n in range(lanes)))
        elapsed = time.monotonic() - started
    print(
        f"\n[revoke across processes] {iterations} iterations in {elapsed:.1f} s: "
        f"allowed before revoke {allowed_before_revoke}, "
        f"allowed after revoke {len(allowed_after_revoke)}"
    )
    # Every window was really open before the revoke, and shut right after it.
    assert allowed_before_revoke == iterations
    assert allowed_after_revoke == []


async def test_expiry_swept_by_every_process_is_recorded_and_announced_once(
    world: World, database: Stack, tmp_path: Path
) -> None:
    async with cluster(database, tmp_path, 3, LOCKBOX_SWEEP_INTERVAL_SECONDS="0.1") as (
        servers,
        procs,
    ):
        engineer, admin, ticket = (
            world.token(ENGINEER),
            world.token("contoso-admin"),
            world.ticket("contoso"),
        )
        watchers = [
            await flows.Watcher(s.name, [s.ws_url], admin, flows.UPDATES).start() for s in servers
        ]
        try:
            # A canceled probe request proves every subscription is live.
            probe = await flows.create_request(procs[0], engineer, ticket)
            await procs[1].data(engineer, flows.CANCEL, id=probe)
            for w in watchers:
                await w.wait_until(
                    lambda w: {"id": probe, "status": "CANCELED"} in w.items, 10, "probe"
                )

            await procs[0].data(admin, flows.SET_TTL, ttl=1)
            expiring = [
                await flows.create_request(procs[i % 3], engineer, ticket) for i in range(6)
            ]
            for w in watchers:
                await w.wait_until(
                    lambda w: all({"id": r, "status": "EXPIRED"} in w.items for r in expiring),
                    15,
                    "EXPIRED updates",
                )
            # A later update through the same pipes: anything doubled has arrived by then.
            await procs[0].data(admin, flows.SET_TTL, ttl=3600)
            sentinel = await flows.create_request(procs[1], engineer, ticket)
            await procs[2].data(engineer, flows.CANCEL, id=sentinel)
            for w in watchers:
                await w.wait_until(
                    lambda w: {"id": sentinel, "status": "CANCELED"} in w.items, 10, "sentinel"
                )
        finally:
            for w in watchers:
                await w.stop()

    keys = [uuid.UUID(r) for r in expiring]
    audit = Counter(
        str(e.request_id)
        for e in await AuditEvent.filter(request_id__in=keys, action="request.expired")
    )
    stored = {str(r.id): str(r.status) for r in await AccessRequest.filter(id__in=keys)}
    updates = {
        w.name: Counter(i["id"] for i in w.items if i["status"] == "EXPIRED") for w in watchers
    }
    print(f"\n[sweeper in 3 processes] audit request.expired per request: {sorted(audit.values())}")
    for name, counts in updates.items():
        print(f"[sweeper in 3 processes] EXPIRED updates on {name}: {sorted(counts.values())}")
    assert stored == dict.fromkeys(expiring, "EXPIRED")
    assert audit == dict.fromkeys(expiring, 1)
    for counts in updates.values():
        assert counts == dict.fromkeys(expiring, 1)


async def test_concurrent_decisions_across_processes_give_one_outcome_and_a_sound_audit_chain(
    world: World, database: Stack, tmp_path: Path
) -> None:
    requests_count, calls_per_request = 10, 5
    plan = ["approve", "deny", "revoke", "approve", "deny"]
    documents = {"approve": flows.APPROVE, "deny": flows.DENY, "revoke": flows.REVOKE}
    fields = {"approve": "approveRequest", "deny": "denyRequest", "revoke": "revokeAccess"}
    rng = random.Random(20240611)
    async with cluster(database, tmp_path, 3) as (_, procs):
        engineer, ticket = world.token(ENGINEER), world.ticket("contoso")
        # Created at once too: concurrent appends to the tenant's audit chain.
        request_ids = await asyncio.gather(
            *(flows.create_request(procs[i % 3], engineer, ticket) for i in range(requests_count))
        )
        calls = [(r, verb) for r in request_ids for verb in rng.sample(plan, len(plan))]
        rng.shuffle(calls)
        assert len(calls) == requests_count * calls_per_request == 50

        async def call(n: int, request_id: str, verb: str) -> tuple[str, str, str]:
            http = procs[n % len(procs)]
            token = world.token(DECIDERS[n % 2])
            body = await http.call(token, documents[verb], id=request_id)
            if body.get("errors"):
                return request_id, verb, body["errors"][0]["extensions"]["code"]
            return request_id, verb, body["data"][fields[verb]]["status"]

        # All 50 at once: the calls race each other on every request.
        outcomes = await asyncio.gather(*(call(n, r, v) for n, (r, v) in enumerate(calls)))
        finals = {
            r: (await procs[0].data(world.token("contoso-admin"), flows.GET, id=r))[
                "accessRequest"
            ]["status"]
            for r in request_ids
        }

    keys = [uuid.UUID(r) for r in request_ids]
    audit = Counter(
        (str(e.request_id), e.action)
        for e in await AuditEvent.filter(request_id__in=keys).exclude(action="request.created")
    )
    errors = Counter(code for _, _, code in outcomes if code not in STATUSES)
    assert set(errors) <= {"INVALID_STATE"}, errors
    summary: Counter[str] = Counter()
    for request_id in request_ids:
        won = Counter(v for r, v, code in outcomes if r == request_id and code != "INVALID_STATE")
        decisions = won["approve"] + won["deny"]
        assert decisions == 1, (request_id, won)
        assert won["revoke"] <= won["approve"], (request_id, won)
        expected = "DENIED" if won["deny"] else "REVOKED" if won["revoke"] else "APPROVED"
        assert finals[request_id] == expected
        assert audit[(request_id, "request.approved")] == won["approve"]
        assert audit[(request_id, "request.denied")] == won["deny"]
        assert audit[(request_id, "request.revoked")] == won["revoke"]
        summary[expected] += 1
    print(f"\n[50 concurrent decisions] final statuses {dict(summary)}, losers {dict(errors)}")

    verify = await asyncio.to_thread(
        run_lockbox, ["audit", "verify", "--database-url", database.database_url]
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "0 broken" in verify.stdout
