"""The access request lifecycle: create, decide, cancel, release, expire, complete."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from lockbox.domain import policy
from lockbox.domain.audit import AuditAction
from lockbox.domain.errors import BadUserInput, InvalidState, NotFound
from lockbox.domain.lifecycle import (
    Action,
    Party,
    RequestState,
    Status,
    Step,
    effective_status,
    transition_for,
)
from lockbox.domain.notifications import STATUS_EVENTS, Event
from lockbox.domain.policy import Actor, RequestFacts, Role
from lockbox.domain.resources import validate_request_resources
from lockbox.domain.tenant_settings import access_duration
from lockbox.domain.text import check_text
from lockbox.realtime.topics import REQUESTS_TOPIC
from lockbox.services import audit, notifications
from lockbox.services.deps import Deps
from lockbox.services.tenants import settings_of
from lockbox.services.writing import Change, changing
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, ActivityEvent

MAX_JUSTIFICATION = 4000
MAX_REASON = 2000


def facts_of(request: AccessRequest) -> RequestFacts:
    return RequestFacts(
        id=str(request.id),
        tenant_id=str(request.tenant_id),
        engineer_id=str(request.engineer_id),
        resources=tuple(request.resources),
    )


def state_of(request: AccessRequest) -> RequestState:
    return RequestState(
        id=str(request.id),
        status=request.status,
        expires_at=request.expires_at,
        access_ends_at=request.access_ends_at,
        duration_seconds=request.duration_seconds,
    )


def status_of(request: AccessRequest, now: datetime) -> Status:
    return effective_status(request.status, now, request.expires_at, request.access_ends_at)


def visible(actor: Actor, request: AccessRequest | None) -> AccessRequest | None:
    return request if request is not None and policy.can_see(actor, facts_of(request)) else None


async def find_visible(actor: Actor, request_id: str) -> AccessRequest | None:
    return visible(actor, await store.get_request(request_id))


async def get_visible(actor: Actor, request_id: str) -> AccessRequest:
    request = await find_visible(actor, request_id)
    if request is None:
        raise NotFound.of("access request", request_id)
    return request


def _announce(change: Change, request: AccessRequest) -> None:
    change.announce(
        REQUESTS_TOPIC,
        {
            "id": str(request.id),
            "tenant": str(request.tenant_id),
            "engineer": str(request.engineer_id),
            "status": str(request.status),
        },
        key=str(request.id),
    )


def _required_text(value: str, name: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise BadUserInput(f"{name} may not be empty")
    return _optional_text(value, name, limit) or value


def _optional_text(value: str | None, name: str, limit: int) -> str | None:
    if value is None:
        return None
    value = check_text(value.strip(), name, free_text=True)
    if len(value) > limit:
        raise BadUserInput(f"{name} is longer than {limit} characters")
    return value or None


async def create(
    deps: Deps,
    actor: Actor,
    *,
    ticket_id: str,
    resources: list[str],
    justification: str,
    duration_seconds: int | None,
) -> AccessRequest:
    policy.require_role(actor, {Role.ENGINEER}, "createAccessRequest")
    text = _required_text(justification, "justification", MAX_JUSTIFICATION)
    ticket = await store.get_ticket(ticket_id)
    if ticket is None:
        raise NotFound.of("support ticket", ticket_id)
    if not ticket.is_open:
        raise BadUserInput(f"support ticket {ticket_id} is closed")
    tenant = await store.get_tenant(ticket.tenant_id)
    assert tenant is not None  # a ticket's tenant is a foreign key
    cleaned = validate_request_resources(resources, list(tenant.resource_roots))
    duration = access_duration(settings_of(tenant), duration_seconds)
    limit = deps.max_pending_per_engineer
    if limit and await store.count_pending(uuid.UUID(actor.id), deps.clock.now()) >= limit:
        raise InvalidState(
            f"{actor.name} already has {limit} requests waiting for a decision; "
            "cancel one or wait for decisions"
        )
    async with changing(deps) as change:
        request = await store.insert_request(
            tenant_id=tenant.id,
            ticket_id=ticket.id,
            engineer_id=uuid.UUID(actor.id),
            resources=cleaned,
            justification=text,
            duration_seconds=duration,
            created_at=change.now,
            expires_at=change.now + timedelta(seconds=tenant.pending_request_ttl_seconds),
        )
        await change.audit(
            tenant.id,
            AuditAction.REQUEST_CREATED,
            actor_id=actor.id,
            request_id=request.id,
            detail={
                "ticketId": str(ticket.id),
                "engineer": actor.name,
                "resources": cleaned,
                "durationSeconds": duration,
            },
        )
        _announce(change, request)
        await notifications.request_event(
            change, request, Event.REQUEST_CREATED, mail=tenant.lockbox_enabled
        )
        if not tenant.lockbox_enabled:
            reason = f"approved automatically: lockbox is disabled for tenant {tenant.name}"
            await _apply(change, None, request, Action.AUTO_APPROVE, reason)
    return request


async def transition(
    deps: Deps,
    actor: Actor | None,
    request_id: str,
    action: Action,
    reason: str | None = None,
) -> AccessRequest:
    """Take one lifecycle action. `actor` is None for the clock's actions (the sweeper)."""
    reason = _optional_text(reason, "reason", MAX_REASON)
    key = store.as_uuid(request_id)
    async with changing(deps) as change:
        request = None if key is None else await store.lock_request(key)
        if actor is not None:
            request = visible(actor, request)
        if request is None:
            raise NotFound.of("access request", request_id)
        await _apply(change, actor, request, action, reason)
    return request


async def _apply(
    change: Change, actor: Actor | None, request: AccessRequest, action: Action, reason: str | None
) -> None:
    """The single place a request changes status: on a row locked (or just
    inserted) in `change`'s transaction, as the lifecycle says, audited and
    announced. Updates `request` in place."""
    state = state_of(request)
    transition = transition_for(state, action, change.now)
    policy.require_party(actor, facts_of(request), transition.by, action.value)
    columns = transition.writes(
        state, Step(None if actor is None else actor.id, reason, change.now)
    )
    if not await store.transition_request(request, transition.target, columns, now=change.now):
        # Another writer got there first (only possible where row locks are
        # not available); report what it did.
        latest = await store.get_request(request.id)
        assert latest is not None
        raise InvalidState(
            f"cannot {action.value} request {state.id}: it is {status_of(latest, change.now)}"
        )
    detail: dict[str, object] = {
        "from": state.status.value,
        "to": transition.target.value,
        "by": transition.by.value,
    }
    if reason:
        detail["reason"] = reason
    detail.update(audit.decided_fields_of(request))  # the row as decided: `audit verify` compares
    await change.audit(
        request.tenant_id,
        transition.audit,
        actor_id=None if actor is None else actor.id,
        request_id=request.id,
        detail=detail,
    )
    _announce(change, request)
    await notifications.request_event(
        change,
        request,
        STATUS_EVENTS[transition.target],
        automatic=transition.by is Party.LOCKBOX,
    )


async def list_visible(
    deps: Deps,
    actor: Actor,
    *,
    statuses: list[Status] | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[AccessRequest]:
    """Up to `limit` requests the actor can see, in creation order after `after`."""
    now = deps.clock.now()
    tenant_id = None if actor.tenant_id is None else uuid.UUID(actor.tenant_id)
    engineer_id = uuid.UUID(actor.id) if actor.role is Role.ENGINEER else None
    # An approver's scopes are filtered in SQL; policy.can_see still checks
    # each row (defence in depth), reading on should it ever drop one.
    scopes = actor.scopes if actor.role is Role.APPROVER else None
    found: list[AccessRequest] = []
    position = after
    batch_size = limit
    while len(found) < limit:
        batch = await store.list_requests(
            now=now,
            statuses=statuses,
            tenant_id=tenant_id,
            engineer_id=engineer_id,
            after=position,
            limit=batch_size,
            within_scopes=scopes,
        )
        found.extend(r for r in batch if policy.can_see(actor, facts_of(r)))
        if len(batch) < batch_size:
            break
        position = (batch[-1].created_at, batch[-1].id)
    return found[:limit]


async def activity_page(request: AccessRequest, after_seq: int, limit: int) -> list[ActivityEvent]:
    """Activity of a request the caller already sees, in order after `after_seq`."""
    return await store.activity_after(request.id, after_seq, limit)
