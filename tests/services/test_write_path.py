"""The one write path: a change commits whole with its audit events, then
announces itself; a change that fails leaves nothing behind and says nothing."""

from __future__ import annotations

import uuid

import pytest

from lockbox.domain.audit import AuditAction
from lockbox.domain.lifecycle import Status
from lockbox.realtime.topics import REQUESTS_TOPIC
from lockbox.services import admin, requests
from lockbox.services.deps import Deps
from lockbox.services.writing import changing
from lockbox.store.models import AuditEvent, SupportTicket, Tenant
from tests.conftest import World


async def tenant_actions(world: World, tenant: str = "contoso") -> list[str]:
    rows = await AuditEvent.filter(tenant_id=world.tenant(tenant)).order_by("seq")
    return [row.action for row in rows]


async def test_a_change_that_fails_commits_nothing_and_announces_nothing(
    deps: Deps, world: World
) -> None:
    tenant_id = uuid.UUID(world.tenant("contoso"))
    before = await tenant_actions(world)
    with deps.hub.subscribe(REQUESTS_TOPIC) as inbox:
        with pytest.raises(RuntimeError, match="disk on fire"):
            async with changing(deps) as change:
                await Tenant.filter(id=tenant_id).update(lockbox_enabled=False)
                await change.audit(
                    tenant_id, AuditAction.TENANT_LOCKBOX_DISABLED, actor_id=None, detail={}
                )
                change.announce(REQUESTS_TOPIC, {"id": "x"})
                raise RuntimeError("disk on fire")
        assert not inbox.drain().messages
    assert (await Tenant.get(id=tenant_id)).lockbox_enabled is True
    assert await tenant_actions(world) == before


async def test_a_committed_change_is_announced_once_where_it_ended(
    deps: Deps, world: World
) -> None:
    with deps.hub.subscribe(REQUESTS_TOPIC) as inbox:
        request = await requests.create(
            deps,
            world.actors["engineer-alice"],
            ticket_id=world.ticket("northwind"),
            resources=["/subscriptions/northwind-prod/rg"],
            justification="lockbox is off here",
            duration_seconds=60,
        )
        await inbox.wait()
        messages = inbox.drain().messages
    # Created and approved automatically in one change: one wake-up, APPROVED.
    assert [m for _, m in messages] == [
        {
            "id": str(request.id),
            "tenant": world.tenant("northwind"),
            "engineer": world.actors["engineer-alice"].id,
            "status": "APPROVED",
        }
    ]
    assert request.status is Status.APPROVED
    audit = await AuditEvent.filter(request_id=request.id).order_by("seq")
    assert [(e.action, e.actor_id) for e in audit] == [
        ("request.created", uuid.UUID(world.actors["engineer-alice"].id)),
        ("request.approved", None),
    ]
    assert audit[1].detail["by"] == "lockbox"
    assert audit[1].detail["reason"].startswith("approved automatically")


async def test_closing_and_reopening_a_ticket_is_audited_once_per_change(
    deps: Deps, world: World
) -> None:
    ticket = world.ticket("contoso")
    before = await tenant_actions(world)
    await admin.set_ticket_open(deps, ticket, False)
    await admin.set_ticket_open(deps, ticket, False)  # already closed: no change, no event
    await admin.set_ticket_open(deps, ticket, True)
    assert (await tenant_actions(world))[len(before) :] == ["ticket.closed", "ticket.reopened"]
    assert (await SupportTicket.get(id=ticket)).is_open is True
    closed = await AuditEvent.get(tenant_id=world.tenant("contoso"), action="ticket.closed")
    assert closed.detail == {"ticketId": ticket, "title": closed.detail["title"]}
