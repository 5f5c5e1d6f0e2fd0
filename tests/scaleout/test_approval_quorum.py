"""A quorum decided across several `lockbox serve` processes on one PostgreSQL:
two deciders racing for the last approval give exactly one APPROVED."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

from lockbox.domain.policy import Role
from lockbox.services import admin
from lockbox.services.deps import Deps
from lockbox.store.models import AccessRequest, AuditEvent, RequestApproval, Tenant
from tests.conftest import Stack, World
from tests.scaleout import flows
from tests.scaleout.procs import run_lockbox
from tests.scaleout.test_several_processes import cluster

APPROVE_NARROWED = """
mutation($id: ID!, $seconds: Int) {
  approveRequest(id: $id, durationSeconds: $seconds) {
    id status accessStartsAt accessEndsAt approvals { approver { name } }
  }
}"""


async def test_two_deciders_racing_for_the_last_approval_give_one_approval_and_a_sound_chain(
    world: World, deps: Deps, database: Stack, tmp_path: Path
) -> None:
    requests_count = 12
    await Tenant.filter(id=world.tenant("contoso")).update(required_approvals=2)
    # A second approver of contoso-prod: with the admin's first approval, two
    # deciders are left to race for the last one.
    second = await admin.create_principal(
        deps,
        "contoso-approver-prod-2",
        Role.APPROVER,
        tenant_ref="contoso",
        scopes=["/subscriptions/contoso-prod"],
        email=None,
    )
    racers = {
        "contoso-approver-prod": world.token("contoso-approver-prod"),
        "contoso-approver-prod-2": (await admin.issue_token(deps, str(second.id))).secret,
    }
    async with cluster(database, tmp_path, 3) as (_, procs):
        engineer, ticket = world.token("engineer-alice"), world.ticket("contoso")
        request_ids = await asyncio.gather(
            *(flows.create_request(procs[i % 3], engineer, ticket) for i in range(requests_count))
        )
        for n, request_id in enumerate(request_ids):
            first = await procs[n % 3].data(
                world.token("contoso-admin"), APPROVE_NARROWED, id=request_id, seconds=None
            )
            assert first["approveRequest"]["status"] == "PENDING"

        async def call(n: int, request_id: str, name: str) -> tuple[str, str, str]:
            token = racers.get(name) or world.token(name)
            # Each racer narrows differently: the grant must be the shortest.
            seconds = 600 if name == "contoso-approver-prod" else 900
            body = await procs[n % 3].call(token, APPROVE_NARROWED, id=request_id, seconds=seconds)
            if body.get("errors"):
                return request_id, name, body["errors"][0]["extensions"]["code"]
            return request_id, name, body["data"]["approveRequest"]["status"]

        calls = [
            (r, name)
            for r in request_ids
            for name in (*racers, "contoso-admin")  # the admin again: never counts twice
        ]
        outcomes = await asyncio.gather(*(call(n, r, name) for n, (r, name) in enumerate(calls)))

    keys = [uuid.UUID(r) for r in request_ids]
    stored = {str(r.id): r for r in await AccessRequest.filter(id__in=keys)}
    audit = Counter(
        (str(e.request_id), e.action) for e in await AuditEvent.filter(request_id__in=keys)
    )
    approvals = Counter(
        str(a.request_id) for a in await RequestApproval.filter(request_id__in=keys)
    )
    for request_id in request_ids:
        mine = {name: code for r, name, code in outcomes if r == request_id}
        assert mine["contoso-admin"] == "INVALID_STATE", mine
        racing = sorted(mine[name] for name in racers)
        assert racing == ["APPROVED", "INVALID_STATE"], (request_id, mine)
        winner = next(name for name in racers if mine[name] == "APPROVED")
        request = stored[request_id]
        assert str(request.status) == "APPROVED"
        assert request.access_starts_at is not None and request.access_ends_at is not None
        granted = (request.access_ends_at - request.access_starts_at).total_seconds()
        assert granted == (600 if winner == "contoso-approver-prod" else 900)
        assert approvals[request_id] == 2
        assert audit[(request_id, "request.approval_recorded")] == 2
        assert audit[(request_id, "request.approved")] == 1
    winners = Counter(name for _, name, code in outcomes if code == "APPROVED")
    print(
        f"\n[quorum race, 3 processes] {requests_count} requests, "
        f"last approval won by {dict(winners)}"
    )

    verify = await asyncio.to_thread(
        run_lockbox, ["audit", "verify", "--database-url", database.database_url]
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "0 broken" in verify.stdout
