"""The access request lifecycle: create, decide, cancel, release, expire, complete."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from lockbox.domain import policy
from lockbox.domain.errors import BadUserInput, InvalidState, NotFound
from lockbox.domain.lifecycle import Action, Status, effective_status, next_status
from lockbox.domain.policy import Actor, RequestFacts, Role
from lockbox.domain.resources import validate_request_resources
from lockbox.domain.settings_rules import access_duration
from lockbox.realtime.topics import REQUESTS_TOPIC
from lockbox.services.deps import Deps
from lockbox.services.tenants import settings_of
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, ActivityEvent

MAX_JUSTIFICATION = 4000
MAX_REASON = 2000

# Time-based actions are taken by the sweeper, from the stored status.
TIME_ACTIONS = frozenset({Action.EXPIRE, Action.COMPLETE})
DECIDER_ACTIONS = frozenset({Action.APPROVE, Action.DENY, Action.REVOKE})

AUDIT_ACTIONS: dict[Status, str] = {
    Status.APPROVED: "request.approved",
    Status.DENIED: "request.denied",
    Status.EXPIRED: "request.expired",
    Status.REVOKED: "request.revoked",
    Status.COMPLETED: "request.completed",
    Status.CANCELED: "request.canceled",
}


def facts_of(request: AccessRequest) -> RequestFacts:
    return RequestFacts(
        id=str(request.id),
        tenant_id=str(request.tenant_id),
        engineer_id=str(request.engineer_id),
        resources=tuple(request.resources),
    )


def status_of(request: AccessRequest, now: datetime) -> Status:
    return effective_status(Status(request.status), now, request.expires_at, request.access_ends_at)


def visible(actor: Actor, request: AccessRequest | None) -> AccessRequest | None:
    return request if request is not None and policy.can_see(actor, facts_of(request)) else None


async def find_visible(actor: Actor, request_id: str) -> AccessRequest | None:
    return visible(actor, await store.get_request(request_id))


async def get_visible(actor: Actor, request_id: str) -> AccessRequest:
    request = await find_visible(actor, request_id)
    if request is None:
        raise NotFound(f"access request {request_id} not found")
    return request


async def publish_update(deps: Deps, request: AccessRequest) -> None:
    await deps.publish(
        REQUESTS_TOPIC,
        {
            "id": str(request.id),
            "tenant": str(request.tenant_id),
            "engineer": str(request.engineer_id),
            "status": str(request.status),
        },
    )


def _clean_text(value: str | None, name: str, limit: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise BadUserInput(f"{name} is required")
        return None
    value = value.strip()
    if required and not value:
        raise BadUserInput(f"{name} may not be empty")
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
    text = _clean_text(justification, "justification", MAX_JUSTIFICATION, required=True)
    ticket = await store.get_ticket(ticket_id)
    if ticket is None:
        raise NotFound(f"support ticket {ticket_id} not found")
    if not ticket.is_open:
        raise BadUserInput(f"support ticket {ticket_id} is closed")
    tenant = await store.get_tenant(ticket.tenant_id)
    assert tenant is not None  # a ticket's tenant is a foreign key
    cleaned = validate_request_resources(resources, list(tenant.resource_roots))
    duration = access_duration(settings_of(tenant), duration_seconds)
    now = deps.clock.now()
    values: dict[str, object] = {
        "tenant_id": tenant.id,
        "ticket_id": ticket.id,
        "engineer_id": uuid.UUID(actor.id),
        "resources": cleaned,
        "justification": text,
        "duration_seconds": duration,
        "status": Status.PENDING,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(seconds=tenant.pending_request_ttl_seconds),
    }
    if not tenant.lockbox_enabled:
        values.update(
            status=Status.APPROVED,
            decided_at=now,
            decision_reason=f"approved automatically: lockbox is disabled for tenant {tenant.name}",
            access_starts_at=now,
            access_ends_at=now + timedelta(seconds=duration),
        )
    async with store.transaction():
        request = await store.insert_request(**values)
        detail = {
            "ticketId": str(ticket.id),
            "engineer": actor.name,
            "resources": cleaned,
            "durationSeconds": duration,
        }
        await store.append_audit(
            tenant.id,
            at=now,
            action="request.created",
            actor_id=uuid.UUID(actor.id),
            request_id=request.id,
            detail=detail,
        )
        if not tenant.lockbox_enabled:
            await store.append_audit(
                tenant.id,
                at=now,
                action="request.approved",
                actor_id=None,
                request_id=request.id,
                detail={"automatic": True, "reason": request.decision_reason},
            )
    await publish_update(deps, request)
    return request


async def transition(
    deps: Deps,
    actor: Actor | None,
    request_id: str,
    action: Action,
    reason: str | None = None,
) -> AccessRequest:
    """Apply one lifecycle action. `actor` is None for the sweeper's time-based ones."""
    reason = _clean_text(reason, "reason", MAX_REASON, required=False)
    key = store.as_uuid(request_id)
    async with store.transaction():
        request = None if key is None else await store.lock_request(key)
        if actor is not None:
            request = visible(actor, request)
        if request is None:
            raise NotFound(f"access request {request_id} not found")
        facts = facts_of(request)
        if actor is not None:
            if action in DECIDER_ACTIONS:
                policy.require_decider(actor, facts, action.value)
            else:
                policy.require_own_engineer(actor, facts, action.value)
        now = deps.clock.now()
        stored = Status(request.status)
        current = stored if action in TIME_ACTIONS else status_of(request, now)
        target = next_status(facts.id, current, action)
        if action in TIME_ACTIONS and status_of(request, now) is not target:
            raise InvalidState(f"cannot {action.value} request {facts.id}: it is not due yet")
        changes = _changes(request, target, actor, reason, now)
        if not await store.transition_request(request.id, stored, target, now=now, **changes):
            # Another decider won between our read and write (only possible
            # where row locks are not available); report what it did.
            latest = await store.get_request(request.id)
            assert latest is not None
            raise InvalidState(
                f"cannot {action.value} request {facts.id}: it is {status_of(latest, now).value}"
            )
        for name, value in changes.items():
            setattr(request, name, value)
        request.status = target
        detail: dict[str, object] = {"from": stored.value, "to": target.value}
        if reason:
            detail["reason"] = reason
        if action is Action.RELEASE:
            detail["releasedBy"] = "engineer"
        await store.append_audit(
            request.tenant_id,
            at=now,
            action=AUDIT_ACTIONS[target],
            actor_id=None if actor is None else uuid.UUID(actor.id),
            request_id=request.id,
            detail=detail,
        )
    await publish_update(deps, request)
    return request


def _changes(
    request: AccessRequest, target: Status, actor: Actor | None, reason: str | None, now: datetime
) -> dict[str, object]:
    decided_by = None if actor is None else uuid.UUID(actor.id)
    if target is Status.APPROVED:
        return {
            "decided_at": now,
            "decided_by_id": decided_by,
            "decision_reason": reason,
            "access_starts_at": now,
            "access_ends_at": now + timedelta(seconds=request.duration_seconds),
        }
    if target is Status.DENIED:
        return {"decided_at": now, "decided_by_id": decided_by, "decision_reason": reason}
    if target is Status.REVOKED:
        # The window closes now; the approval stays on record.
        return {"access_ends_at": now, "decision_reason": reason or request.decision_reason}
    if target is Status.COMPLETED and request.access_ends_at and request.access_ends_at > now:
        return {"access_ends_at": now}
    return {}


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
    found: list[AccessRequest] = []
    position = after
    # Approver scopes are checked in Python, so read in batches until full.
    batch_size = max(limit, 50)
    while len(found) < limit:
        batch = await store.list_requests(
            now=now,
            statuses=statuses,
            tenant_id=tenant_id,
            engineer_id=engineer_id,
            after=position,
            limit=batch_size,
        )
        found.extend(r for r in batch if policy.can_see(actor, facts_of(r)))
        if len(batch) < batch_size:
            break
        position = (batch[-1].created_at, batch[-1].id)
    return found[:limit]


async def activity_page(request: AccessRequest, after_seq: int, limit: int) -> list[ActivityEvent]:
    """Activity of a request the caller already sees, in order after `after_seq`."""
    return await store.activity_after(request.id, after_seq, limit)
