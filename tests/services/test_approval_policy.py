"""The approval policy through the services, on a real database (contract
section 8): quorum, narrowing, break-glass and the provider's pre-approval."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from lockbox.clock import ManualClock
from lockbox.domain.cursors import Window
from lockbox.domain.errors import BadUserInput, Forbidden, InvalidState, NotFound
from lockbox.domain.lifecycle import Action, Status
from lockbox.domain.notifications import Channel
from lockbox.services import audit, gate, requests, sweeper, tenants
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, AuditEvent, Notification, Tenant, Webhook
from tests.conftest import World

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"
DEV = "/subscriptions/contoso-dev/resourceGroups/rg1"
HOUR = 3600


async def new_request(
    deps: Deps,
    world: World,
    resources: list[str] | None = None,
    *,
    duration_seconds: int | None = HOUR,
    emergency: bool = False,
) -> AccessRequest:
    return await requests.create(
        deps,
        world.actors["engineer-alice"],
        ticket_id=world.ticket("contoso"),
        resources=resources or [PROD],
        justification="investigating the ticket",
        duration_seconds=duration_seconds,
        emergency=emergency,
    )


async def set_policy(deps: Deps, world: World, **settings: object) -> None:
    await tenants.update_settings(
        deps,
        world.actors["contoso-admin"],
        pending_request_ttl_seconds=None,
        default_access_seconds=None,
        max_access_seconds=None,
        **settings,  # type: ignore[arg-type]
    )


async def audit_actions(request_id: object) -> list[str]:
    rows = await AuditEvent.filter(request_id=request_id).order_by("seq")
    return [row.action for row in rows]


async def chain_verifies(world: World) -> None:
    tenant = await Tenant.get(id=world.tenant("contoso"))
    verdict = await audit.verify_tenant(tenant)
    assert verdict.ok, (verdict.broken, verdict.requests)


async def approve(
    deps: Deps, world: World, who: str, request: AccessRequest, **kw: object
) -> AccessRequest:
    return await requests.approve(deps, world.actors[who], str(request.id), **kw)  # type: ignore[arg-type]


# --- quorum ---------------------------------------------------------------------


async def test_two_distinct_deciders_approve_a_request_of_a_quorum_of_two(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    await set_policy(deps, world, required_approvals=2)
    request = await new_request(deps, world)
    assert request.required_approvals == 2

    first = await approve(deps, world, "contoso-approver-prod", request, reason="ticket ok")
    assert first.status is Status.PENDING
    assert first.access_starts_at is None
    with pytest.raises(InvalidState, match="already approved"):
        await approve(deps, world, "contoso-approver-prod", request)
    clock.advance(10)
    second = await approve(deps, world, "contoso-admin", request)

    assert second.status is Status.APPROVED
    assert second.access_starts_at == clock.now()
    assert second.granted_resources == [PROD]
    approvals = await requests.approvals_of(second)
    assert [str(a.approver_id) for a in approvals] == [
        world.actors["contoso-approver-prod"].id,
        world.actors["contoso-admin"].id,
    ]
    assert approvals[0].reason == "ticket ok"
    assert await audit_actions(request.id) == [
        "request.created",
        "request.approval_recorded",
        "request.approval_recorded",
        "request.approved",
    ]
    await chain_verifies(world)


async def test_the_quorum_is_the_tenants_setting_when_the_request_was_made(
    deps: Deps, world: World
) -> None:
    before = await new_request(deps, world)
    await set_policy(deps, world, required_approvals=3)
    assert (await approve(deps, world, "contoso-admin", before)).status is Status.APPROVED


async def test_one_deny_denies_a_partly_approved_request(deps: Deps, world: World) -> None:
    await set_policy(deps, world, required_approvals=2)
    request = await new_request(deps, world)
    await approve(deps, world, "contoso-admin", request)
    denied = await requests.transition(
        deps, world.actors["contoso-approver-prod"], str(request.id), Action.DENY, "no"
    )
    assert denied.status is Status.DENIED
    with pytest.raises(InvalidState, match="DENIED"):
        await approve(deps, world, "contoso-approver-prod", request)


async def test_the_engineer_never_counts_towards_the_quorum(deps: Deps, world: World) -> None:
    request = await new_request(deps, world)
    with pytest.raises(Forbidden):
        await approve(deps, world, "engineer-alice", request)
    assert await requests.approvals_of(request) == []


# --- narrowing ------------------------------------------------------------------


async def test_the_gate_allows_exactly_the_narrowed_grant_inside_the_narrowed_window(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    request = await new_request(deps, world, [PROD, DEV])
    approved = await approve(
        deps, world, "contoso-admin", request, duration_seconds=600, resources=[f"{PROD}/vm1"]
    )
    assert approved.granted_resources == [f"{PROD}/vm1"]
    assert approved.resources == [PROD, DEV]  # what was asked stays on record
    assert approved.access_ends_at == approved.access_starts_at + timedelta(seconds=600)

    async def allowed(resource: str) -> bool:
        event = await gate.authorize(
            deps,
            world.actors["engineer-alice"],
            request_id=str(request.id),
            resource=resource,
            action="read",
            detail=None,
        )
        return event.allowed

    assert await allowed(f"{PROD}/vm1/disk")
    assert not await allowed(f"{PROD}/vm2")
    assert not await allowed(DEV)
    clock.advance(599)
    assert await allowed(f"{PROD}/vm1")
    clock.advance(1)
    assert not await allowed(f"{PROD}/vm1")
    await chain_verifies(world)


async def test_later_approvers_narrow_within_earlier_grants_and_the_shortest_wins(
    deps: Deps, world: World
) -> None:
    await set_policy(deps, world, required_approvals=2)
    request = await new_request(deps, world, [PROD])
    await approve(
        deps, world, "contoso-approver-prod", request, duration_seconds=900, resources=[f"{PROD}/a"]
    )
    # Wider than the first approver granted: refused, and nothing recorded.
    for wider in ([PROD], [f"{PROD}/b"]):
        with pytest.raises(BadUserInput, match="granted so far"):
            await approve(deps, world, "contoso-admin", request, resources=wider)
    with pytest.raises(BadUserInput, match="durationSeconds"):
        await approve(deps, world, "contoso-admin", request, duration_seconds=HOUR + 1)
    assert len(await requests.approvals_of(request)) == 1
    assert await audit_actions(request.id) == ["request.created", "request.approval_recorded"]

    approved = await approve(deps, world, "contoso-admin", request, duration_seconds=1800)
    assert approved.granted_resources == [f"{PROD}/a"]
    assert approved.access_ends_at == approved.access_starts_at + timedelta(seconds=900)
    await chain_verifies(world)


# --- break-glass ------------------------------------------------------------------


async def test_emergency_access_is_forbidden_unless_the_tenant_allows_it(
    deps: Deps, world: World
) -> None:
    with pytest.raises(Forbidden, match="emergency"):
        await new_request(deps, world, emergency=True)
    assert await AccessRequest.filter(emergency=True).count() == 0


async def test_emergency_access_opens_at_once_capped_and_is_announced_to_every_decider(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    deps.mail_enabled = True
    await Webhook.create(
        tenant_id=world.tenant("contoso"),
        url="http://127.0.0.1:9/hook",
        events=["access_request.emergency"],
        secret="s3cret",
        created_at=clock.now(),
    )
    await set_policy(deps, world, allow_emergency_access=True, emergency_max_seconds=900)

    request = await new_request(deps, world, duration_seconds=None, emergency=True)

    assert request.status is Status.APPROVED
    assert request.emergency
    assert request.access_ends_at == clock.now() + timedelta(seconds=900)
    assert request.granted_resources == [PROD]
    assert await audit_actions(request.id) == ["request.created", "request.emergency_approved"]
    rows = await Notification.filter(request_id=request.id, event="access_request.emergency")
    mailed = {r.recipient for r in rows if r.channel is Channel.EMAIL}
    assert mailed == {"contoso-admin@example.com", "contoso-approver-prod@example.com"}
    assert [r.channel for r in rows if r.recipient is None] == [Channel.WEBHOOK]
    listed = await requests.list_visible(
        deps,
        world.actors["contoso-admin"],
        statuses=None,
        window=Window(200),
        emergency_unreviewed=True,
    )
    assert [r.id for r in listed] == [request.id]
    await chain_verifies(world)


async def test_a_review_not_accepting_emergency_access_revokes_it(deps: Deps, world: World) -> None:
    await set_policy(deps, world, allow_emergency_access=True)
    request = await new_request(deps, world, emergency=True)
    plain = await new_request(deps, world)
    reviewer = world.actors["contoso-approver-prod"]

    with pytest.raises(Forbidden):
        await requests.review_emergency(
            deps, world.actors["contoso-auditor"], str(request.id), accepted=True, note=None
        )
    with pytest.raises(InvalidState, match="not emergency"):
        await requests.review_emergency(deps, reviewer, str(plain.id), accepted=True, note=None)
    reviewed = await requests.review_emergency(
        deps, reviewer, str(request.id), accepted=False, note="no incident on record"
    )

    assert reviewed.status is Status.REVOKED
    assert reviewed.emergency_review_accepted is False
    assert reviewed.emergency_review_note == "no incident on record"
    with pytest.raises(InvalidState, match="reviewed already"):
        await requests.review_emergency(deps, reviewer, str(request.id), accepted=True, note=None)
    assert await audit_actions(request.id) == [
        "request.created",
        "request.emergency_approved",
        "request.emergency_reviewed",
        "request.revoked",
    ]
    listed = await requests.list_visible(
        deps,
        world.actors["contoso-admin"],
        statuses=None,
        window=Window(200),
        emergency_unreviewed=True,
    )
    assert listed == []
    await chain_verifies(world)


async def test_an_accepted_review_leaves_the_window_open(deps: Deps, world: World) -> None:
    await set_policy(deps, world, allow_emergency_access=True)
    request = await new_request(deps, world, emergency=True)
    reviewed = await requests.review_emergency(
        deps, world.actors["contoso-admin"], str(request.id), accepted=True, note=None
    )
    assert reviewed.status is Status.APPROVED
    assert reviewed.emergency_reviewed_by_id == uuid.UUID(world.actors["contoso-admin"].id)


# --- the provider's pre-approval --------------------------------------------------

CUSTOMERS = ("contoso-admin", "contoso-approver-prod", "contoso-auditor")


@pytest.fixture
def provider(deps: Deps) -> Deps:
    deps.provider_approval = True
    deps.mail_enabled = True
    return deps


async def test_a_request_awaiting_the_provider_does_not_exist_for_the_customer(
    provider: Deps, world: World
) -> None:
    request = await new_request(provider, world)
    assert request.status is Status.AWAITING_PROVIDER_APPROVAL
    for customer in CUSTOMERS:
        actor = world.actors[customer]
        assert await requests.find_visible(actor, str(request.id)) is None
        listed = await requests.list_visible(provider, actor, statuses=None, window=Window(200))
        assert request.id not in {r.id for r in listed}
        with pytest.raises(NotFound):
            await approve(provider, world, customer, request)
    assert await requests.find_visible(world.actors["engineer-alice"], str(request.id))
    # Nobody at contoso was told.
    assert await Notification.filter(request_id=request.id).count() == 0


async def test_a_support_manager_hands_the_request_to_the_customer(
    provider: Deps, world: World, clock: ManualClock
) -> None:
    request = await new_request(provider, world)
    clock.advance(HOUR)
    with pytest.raises(Forbidden):
        await requests.provider_approve(provider, world.actors["operator-admin"], str(request.id))

    pending = await requests.provider_approve(
        provider, world.actors["support-manager"], str(request.id), "checked internally"
    )

    assert pending.status is Status.PENDING
    assert pending.expires_at == clock.now() + timedelta(days=4)
    assert await requests.find_visible(world.actors["contoso-admin"], str(request.id))
    mailed = {
        r.recipient for r in await Notification.filter(request_id=request.id, channel=Channel.EMAIL)
    }
    assert "contoso-admin@example.com" in mailed
    approved = await approve(provider, world, "contoso-admin", request)
    assert approved.status is Status.APPROVED
    assert await audit_actions(request.id) == [
        "request.created",
        "request.provider_approved",
        "request.approval_recorded",
        "request.approved",
    ]
    await chain_verifies(world)


async def test_a_provider_denial_is_never_seen_by_the_customer(
    provider: Deps, world: World
) -> None:
    request = await new_request(provider, world)
    denied = await requests.transition(
        provider, world.actors["support-manager"], str(request.id), Action.PROVIDER_DENY, "no"
    )
    assert denied.status is Status.DENIED
    for customer in CUSTOMERS:
        assert await requests.find_visible(world.actors[customer], str(request.id)) is None
    rows = await Notification.filter(request_id=request.id)
    assert {(r.channel, r.recipient) for r in rows} == {
        (Channel.EMAIL, "engineer-alice@example.com")
    }
    await chain_verifies(world)


async def test_a_request_awaiting_the_provider_expires_after_the_pending_ttl(
    provider: Deps, world: World, clock: ManualClock
) -> None:
    request = await new_request(provider, world)
    clock.advance(4 * 24 * HOUR)
    with pytest.raises(InvalidState, match="EXPIRED"):
        await requests.provider_approve(provider, world.actors["support-manager"], str(request.id))
    assert await sweeper.sweep_once(provider) == 1
    stored = await store.get_request(request.id)
    assert stored is not None and stored.status is Status.EXPIRED
    assert await requests.find_visible(world.actors["contoso-admin"], str(request.id)) is None
    await chain_verifies(world)


async def test_audit_verify_catches_a_grant_widened_in_the_database(
    deps: Deps, world: World
) -> None:
    request = await new_request(deps, world, [PROD])
    await approve(deps, world, "contoso-admin", request, resources=[f"{PROD}/vm1"])
    await chain_verifies(world)

    # Someone with write access to the database widens what the gate checks.
    await AccessRequest.filter(id=request.id).update(granted_resources=[PROD])

    tenant = await Tenant.get(id=world.tenant("contoso"))
    verdict = await audit.verify_tenant(tenant)
    assert verdict.broken is None  # the chain itself is intact...
    assert [m.request_id for m in verdict.requests] == [str(request.id)]  # ...the row is not
    assert "grantedResources" in verdict.requests[0].reason
