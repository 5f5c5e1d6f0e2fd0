"""The request lifecycle through the services, on a real database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from lockbox.clock import ManualClock
from lockbox.domain.errors import BadUserInput, InvalidState, LockboxError
from lockbox.domain.lifecycle import Action, Status
from lockbox.services import gate, requests, sweeper, tenants
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, AuditEvent
from tests.conftest import World

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"


async def new_request(
    deps: Deps, world: World, *, tenant: str = "contoso", resource: str = PROD, **extra: object
) -> AccessRequest:
    return await requests.create(
        deps,
        world.actors["engineer-alice"],
        ticket_id=world.ticket(tenant),
        resources=[resource],
        justification="investigating the ticket",
        duration_seconds=extra.get("duration_seconds"),  # type: ignore[arg-type]
    )


async def audit_actions(request_id: object) -> list[str]:
    rows = await AuditEvent.filter(request_id=request_id).order_by("seq")
    return [row.action for row in rows]


async def test_new_request_is_pending_with_contract_defaults(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    request = await new_request(deps, world)
    assert request.status == Status.PENDING
    assert request.expires_at - request.created_at == timedelta(days=4)
    assert request.duration_seconds == 8 * 3600
    assert await audit_actions(request.id) == ["request.created"]


async def test_approval_opens_a_window_of_the_requested_duration(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    request = await new_request(deps, world, duration_seconds=600)
    clock.advance(30)
    approved = await requests.transition(
        deps, world.actors["contoso-approver-prod"], str(request.id), Action.APPROVE, "ok"
    )
    assert approved.status == Status.APPROVED
    assert approved.access_starts_at == clock.now()
    assert approved.access_ends_at == clock.now() + timedelta(seconds=600)
    assert approved.decision_reason == "ok"
    # Every approval is recorded; the one completing the quorum (here, 1) approves.
    assert await audit_actions(request.id) == [
        "request.created",
        "request.approval_recorded",
        "request.approved",
    ]


async def test_racing_deciders_produce_exactly_one_outcome(deps: Deps, world: World) -> None:
    request = await new_request(deps, world)
    deciders = ["contoso-admin", "contoso-approver-prod"] * 5
    actions = [Action.APPROVE, Action.DENY] * 5
    results = await asyncio.gather(
        *(
            requests.transition(deps, world.actors[who], str(request.id), action)
            for who, action in zip(deciders, actions, strict=True)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, AccessRequest)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, InvalidState) for r in losers), losers
    stored = await store.get_request(request.id)
    assert stored is not None and stored.status == winners[0].status
    decisions = [a for a in await audit_actions(request.id) if a != "request.created"]
    # One outcome: a deny alone, or the approval recorded and approving.
    assert decisions in (["request.denied"], ["request.approval_recorded", "request.approved"])


async def test_expired_request_cannot_be_approved_before_any_sweep(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    request = await new_request(deps, world)
    clock.advance(4 * 24 * 3600)
    assert requests.status_of(request, clock.now()) is Status.EXPIRED
    with pytest.raises(InvalidState, match="EXPIRED"):
        await requests.transition(
            deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE
        )


async def test_elapsed_window_reads_completed_and_authorizes_nothing(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    request = await new_request(deps, world, duration_seconds=60)
    await requests.transition(deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE)
    clock.advance(60)
    event = await gate.authorize(
        deps,
        world.actors["engineer-alice"],
        request_id=str(request.id),
        resource=PROD,
        action="read",
        detail=None,
    )
    assert not event.allowed
    assert event.denial_reason is not None and "COMPLETED" in event.denial_reason
    with pytest.raises(InvalidState, match="COMPLETED"):
        await requests.transition(
            deps, world.actors["contoso-admin"], str(request.id), Action.REVOKE
        )


async def test_sweepers_record_each_time_based_change_exactly_once(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    pending = await new_request(deps, world)
    approved = await new_request(deps, world, duration_seconds=60)
    await requests.transition(deps, world.actors["contoso-admin"], str(approved.id), Action.APPROVE)
    clock.advance(5 * 24 * 3600)
    counts = await asyncio.gather(*(sweeper.sweep_once(deps) for _ in range(4)))
    assert sum(counts) == 2
    assert (await store.get_request(pending.id)).status == Status.EXPIRED  # type: ignore[union-attr]
    assert (await store.get_request(approved.id)).status == Status.COMPLETED  # type: ignore[union-attr]
    assert (await audit_actions(pending.id)).count("request.expired") == 1
    assert (await audit_actions(approved.id)).count("request.completed") == 1
    assert await sweeper.sweep_once(deps) == 0


async def test_engineer_can_cancel_pending_and_release_approved(deps: Deps, world: World) -> None:
    alice = world.actors["engineer-alice"]
    first = await new_request(deps, world)
    canceled = await requests.transition(deps, alice, str(first.id), Action.CANCEL)
    assert canceled.status == Status.CANCELED
    second = await new_request(deps, world)
    await requests.transition(deps, world.actors["contoso-admin"], str(second.id), Action.APPROVE)
    released = await requests.transition(deps, alice, str(second.id), Action.RELEASE)
    assert released.status == Status.COMPLETED
    denied = await gate.authorize(
        deps, alice, request_id=str(second.id), resource=PROD, action="read", detail=None
    )
    assert not denied.allowed


async def test_revoked_request_cannot_be_reapproved_and_denies_access(
    deps: Deps, world: World
) -> None:
    request = await new_request(deps, world)
    admin = world.actors["contoso-admin"]
    await requests.transition(deps, admin, str(request.id), Action.APPROVE)
    allowed = await gate.authorize(
        deps,
        world.actors["engineer-alice"],
        request_id=str(request.id),
        resource=f"{PROD}/vm1",
        action="read",
        detail={"n": 1},
    )
    assert allowed.allowed
    await requests.transition(deps, admin, str(request.id), Action.REVOKE, "done")
    with pytest.raises(InvalidState, match="REVOKED"):
        await requests.transition(deps, admin, str(request.id), Action.APPROVE)
    after = await gate.authorize(
        deps,
        world.actors["engineer-alice"],
        request_id=str(request.id),
        resource=f"{PROD}/vm1",
        action="read",
        detail=None,
    )
    assert not after.allowed
    assert after.denial_reason is not None and "REVOKED" in after.denial_reason


async def test_every_gate_call_is_recorded_in_order(deps: Deps, world: World) -> None:
    request = await new_request(deps, world)
    alice = world.actors["engineer-alice"]

    async def attempt(resource: str) -> bool:
        event = await gate.authorize(
            deps, alice, request_id=str(request.id), resource=resource, action="read", detail=None
        )
        return event.allowed

    assert not await attempt(PROD)  # still pending
    await requests.transition(deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE)
    results = await asyncio.gather(*(attempt(f"{PROD}/x{i}") for i in range(10)))
    assert all(results)
    assert not await attempt("/subscriptions/contoso-dev/rg")  # outside the request
    events = await store.activity_of(request.id)
    assert [e.seq for e in events] == list(range(1, 13))
    assert [e.allowed for e in events].count(False) == 2


async def test_disabled_tenant_approves_at_once_and_audits_it(deps: Deps, world: World) -> None:
    request = await new_request(
        deps, world, tenant="northwind", resource="/subscriptions/northwind-prod/db"
    )
    assert request.status == Status.APPROVED
    assert request.decision_reason is not None and "disabled" in request.decision_reason
    assert await audit_actions(request.id) == ["request.created", "request.approved"]


async def test_settings_change_applies_to_new_requests_and_is_audited(
    deps: Deps, world: World
) -> None:
    admin = world.actors["contoso-admin"]
    await tenants.update_settings(
        deps,
        admin,
        pending_request_ttl_seconds=3600,
        default_access_seconds=900,
        max_access_seconds=1800,
    )
    with pytest.raises(BadUserInput, match="durationSeconds"):
        await new_request(deps, world, duration_seconds=3600)
    request = await new_request(deps, world)
    assert request.duration_seconds == 900
    assert request.expires_at - request.created_at == timedelta(hours=1)
    actions = [
        e.action for e in await AuditEvent.filter(tenant_id=world.tenant("contoso")).order_by("seq")
    ]
    assert "tenant.settings_updated" in actions


async def test_invalid_settings_change_nothing(deps: Deps, world: World) -> None:
    admin = world.actors["contoso-admin"]
    before = await AuditEvent.filter(tenant_id=world.tenant("contoso")).count()
    with pytest.raises(LockboxError):
        await tenants.update_settings(
            deps,
            admin,
            pending_request_ttl_seconds=0,
            default_access_seconds=None,
            max_access_seconds=None,
        )
    tenant = await store.get_tenant(world.tenant("contoso"))
    assert tenant is not None and tenant.pending_request_ttl_seconds == 4 * 24 * 3600
    assert await AuditEvent.filter(tenant_id=world.tenant("contoso")).count() == before


async def test_a_refused_gate_call_does_not_undo_others_in_its_batch(
    deps: Deps, world: World
) -> None:
    request = await new_request(deps, world)
    await requests.transition(deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE)

    async def call(engineer: str, i: int) -> object:
        return await gate.authorize(
            deps,
            world.actors[engineer],
            request_id=str(request.id),
            resource=f"{PROD}/x{i}",
            action="read",
            detail=None,
        )

    # Concurrent calls are written together; bob's are refused in the middle.
    results = await asyncio.gather(
        *(call("engineer-bob" if i % 4 == 2 else "engineer-alice", i) for i in range(16)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, LockboxError)]
    assert len(refused) == 4
    assert all(r.code == "NOT_FOUND" for r in refused)
    events = await store.activity_of(request.id)
    assert [e.seq for e in events] == list(range(1, 13))
    assert all(e.allowed for e in events)
