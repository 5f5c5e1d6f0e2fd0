"""The access request lifecycle: create, decide, cancel, release, expire, complete;
and the approval policy's decisions (quorum approvals, emergency reviews,
the provider's approval), each through one clearly named function."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from lockbox.domain import policy
from lockbox.domain.audit import AuditAction
from lockbox.domain.cursors import Window
from lockbox.domain.errors import BadUserInput, Forbidden, InvalidState, NotFound
from lockbox.domain.lifecycle import (
    TRANSITIONS,
    Action,
    Party,
    RequestState,
    Status,
    Step,
    effective_status,
    initial_status,
    transition_for,
)
from lockbox.domain.notifications import STATUS_EVENTS, Event
from lockbox.domain.policy import Actor, ApprovalFacts, Grant, RequestFacts, Role
from lockbox.domain.resources import validate_request_resources
from lockbox.domain.tenant_settings import access_duration, emergency_duration
from lockbox.domain.text import check_text
from lockbox.realtime.topics import REQUESTS_TOPIC
from lockbox.services import audit, notifications
from lockbox.services.deps import Deps
from lockbox.services.tenants import settings_of
from lockbox.services.writing import Change, changing
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, RequestApproval

MAX_JUSTIFICATION = 4000
MAX_REASON = 2000


def facts_of(request: AccessRequest) -> RequestFacts:
    return RequestFacts(
        id=str(request.id),
        tenant_id=str(request.tenant_id),
        engineer_id=str(request.engineer_id),
        resources=tuple(request.resources),
        customer_visible=customer_visible(request),
    )


def customer_visible(request: AccessRequest) -> bool:
    """False while the provider has not approved the request (and for good
    once it denied it): for customer principals it does not exist."""
    return not request.needs_provider_approval


def state_of(request: AccessRequest) -> RequestState:
    return RequestState(
        id=str(request.id),
        status=request.status,
        expires_at=request.expires_at,
        access_ends_at=request.access_ends_at,
        duration_seconds=request.duration_seconds,
        resources=tuple(request.resources),
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
    emergency: bool = False,
) -> AccessRequest:
    """A new request: PENDING (AWAITING_PROVIDER_APPROVAL with
    LOCKBOX_PROVIDER_APPROVAL), APPROVED at once when the tenant's lockbox is
    disabled, or, with `emergency` where the tenant allows it, APPROVED at
    once for at most its emergencyMaxSeconds (break-glass)."""
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
    settings = settings_of(tenant)
    if emergency and not settings.allow_emergency_access:
        raise Forbidden(f"tenant {tenant.name} does not allow emergency access")
    duration = (
        emergency_duration(settings, duration_seconds)
        if emergency
        else access_duration(settings, duration_seconds)
    )
    # Break-glass does not wait for anyone, the provider included.
    status = initial_status(provider_approval=deps.provider_approval and not emergency)
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
            status=status,
            required_approvals=settings.required_approvals,
            emergency=emergency,
        )
        detail: dict[str, object] = {
            "ticketId": str(ticket.id),
            "engineer": actor.name,
            "resources": cleaned,
            "durationSeconds": duration,
            "requiredApprovals": settings.required_approvals,
        }
        if emergency:
            detail["emergency"] = True
        if status is not Status.PENDING:
            detail["status"] = status.value  # `audit verify` reads the row's first status here
        await change.audit(
            tenant.id,
            AuditAction.REQUEST_CREATED,
            actor_id=actor.id,
            request_id=request.id,
            detail=detail,
        )
        _announce(change, request)
        await notifications.request_event(
            change,
            request,
            Event.REQUEST_CREATED,
            mail=tenant.lockbox_enabled and not emergency,
        )
        if emergency:
            await _emergency_approve(change, request, tenant.name)
        elif not tenant.lockbox_enabled and status is Status.PENDING:
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
    """Take one lifecycle action. `actor` is None for the clock's actions (the
    sweeper). A decider's approval is recorded as one of the quorum (`approve`)."""
    if action is Action.APPROVE and actor is not None:
        return await approve(deps, actor, request_id, reason)
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
    change: Change,
    actor: Actor | None,
    request: AccessRequest,
    action: Action,
    reason: str | None,
    *,
    grant: Grant | None = None,
    pending_ttl_seconds: int | None = None,
) -> None:
    """The single place a request changes status: on a row locked (or just
    inserted) in `change`'s transaction, as the lifecycle says, audited and
    announced. Updates `request` in place. `grant`: what the approvals
    granted, when narrower than asked; `pending_ttl_seconds`: the tenant's,
    for a provider's approval (the customer's deadline restarts)."""
    state = state_of(request)
    transition = transition_for(state, action, change.now)
    policy.require_party(actor, facts_of(request), transition.by, action.value)
    step = Step(
        None if actor is None else actor.id,
        reason,
        change.now,
        granted_seconds=None if grant is None else grant.seconds,
        granted_resources=None if grant is None else grant.resources,
        pending_ttl_seconds=pending_ttl_seconds,
    )
    columns = transition.writes(state, step)
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
    if actor is not None and transition.by is not Party.ENGINEER:
        detail["decisionHash"] = await record_decision(
            change, actor, request, transition.audit.value
        )
    if not TRANSITIONS.get(transition.target):
        # The request's last event: it anchors the activity chain in the audit chain.
        detail["activityHead"] = audit.activity_head_of(request)
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
        # Break-glass is announced as an emergency of its own (`_emergency_approve`).
        automatic=action is Action.AUTO_APPROVE,
    )


# --- approval policy (contract section 8) ------------------------------------


async def approvals_of(request: AccessRequest) -> list[RequestApproval]:
    """The approvals of a request the caller already sees, oldest first."""
    return await store.approvals_of([request.id])


def _approval_facts(rows: list[RequestApproval]) -> list[ApprovalFacts]:
    return [
        ApprovalFacts(
            approver_id=str(row.approver_id),
            seconds=row.duration_seconds,
            resources=None if row.resources is None else tuple(row.resources),
        )
        for row in rows
    ]


async def approve(
    deps: Deps,
    actor: Actor,
    request_id: str,
    reason: str | None = None,
    *,
    duration_seconds: int | None = None,
    resources: list[str] | None = None,
) -> AccessRequest:
    """approveRequest: one decider's approval, narrowing what is granted if
    asked; the one that completes the quorum opens the window."""
    reason = _optional_text(reason, "reason", MAX_REASON)
    key = store.as_uuid(request_id)
    async with changing(deps) as change:
        request = None if key is None else await store.lock_request(key)
        request = visible(actor, request)
        if request is None:
            raise NotFound.of("access request", request_id)
        await record_approval(change, actor, request, reason, duration_seconds, resources)
    return request


async def record_approval(
    change: Change,
    actor: Actor,
    request: AccessRequest,
    reason: str | None,
    duration_seconds: int | None,
    resources: list[str] | None,
) -> None:
    """Record one approval on a request locked in `change`: audited as
    `request.approval_recorded`; the approval completing the quorum then
    approves the request (`request.approved`, through `_apply`) with the
    narrowest grant. Each decider counts once; the engineer never."""
    request_id = str(request.id)
    state = state_of(request)
    transition = transition_for(state, Action.APPROVE, change.now)
    policy.require_party(actor, facts_of(request), transition.by, Action.APPROVE.value)
    given = _approval_facts(await store.approvals_of([request.id]))
    policy.require_new_approver(request_id, actor.id, given)
    so_far = policy.grant_of(request.duration_seconds, tuple(request.resources), given)
    seconds, narrowed = policy.narrowed(
        request_id, request.duration_seconds, so_far, duration_seconds, resources
    )
    await store.insert_approval(
        request.id,
        uuid.UUID(actor.id),
        at=change.now,
        reason=reason,
        duration_seconds=seconds,
        resources=None if narrowed is None else list(narrowed),
    )
    given.append(ApprovalFacts(actor.id, seconds, narrowed))
    grant = policy.grant_of(request.duration_seconds, tuple(request.resources), given)
    detail: dict[str, object] = {
        "from": state.status.value,
        "to": state.status.value,
        "approvals": len(given),
        "requiredApprovals": request.required_approvals,
        "grantedSeconds": grant.seconds,
        "grantedResources": list(grant.resources),
    }
    if reason:
        detail["reason"] = reason
    completes = len(given) >= request.required_approvals
    await _audit_decision(change, actor, request, AuditAction.REQUEST_APPROVAL_RECORDED, detail)
    if completes:
        await _apply(change, actor, request, Action.APPROVE, reason, grant=grant)
    else:
        _announce(change, request)  # consoles show the approvals so far


async def _emergency_approve(change: Change, request: AccessRequest, tenant_name: str) -> None:
    """Break-glass: approved at once (`request.emergency_approved`) and
    announced to every decider as an emergency; listed for review."""
    reason = f"emergency access: approved at once, to be reviewed by {tenant_name}"
    await _apply(change, None, request, Action.EMERGENCY_APPROVE, reason)
    await notifications.request_event(change, request, Event.REQUEST_EMERGENCY)


async def review_emergency(
    deps: Deps, actor: Actor, request_id: str, *, accepted: bool, note: str | None
) -> AccessRequest:
    """reviewEmergencyAccess: a decider's verdict on break-glass access."""
    note = _optional_text(note, "note", MAX_REASON)
    key = store.as_uuid(request_id)
    async with changing(deps) as change:
        request = None if key is None else await store.lock_request(key)
        request = visible(actor, request)
        if request is None:
            raise NotFound.of("access request", request_id)
        await record_emergency_review(change, actor, request, accepted, note)
    return request


async def record_emergency_review(
    change: Change, actor: Actor, request: AccessRequest, accepted: bool, note: str | None
) -> None:
    """Record a decider's review of break-glass access on a request locked in
    `change` (`request.emergency_reviewed`); not accepted, it also revokes
    the access while its window is open (`request.revoked`, through `_apply`)."""
    policy.require_decider(actor, facts_of(request), "review")
    if not request.emergency:
        raise InvalidState(f"cannot review request {request.id}: it is not emergency access")
    if request.emergency_reviewed_at is not None or not await store.record_emergency_review(
        request, reviewer_id=uuid.UUID(actor.id), at=change.now, accepted=accepted, note=note
    ):
        raise InvalidState(f"cannot review request {request.id}: it has been reviewed already")
    stored = request.status.value
    detail: dict[str, object] = {"from": stored, "to": stored, "accepted": accepted}
    if note:
        detail["note"] = note
    await _audit_decision(change, actor, request, AuditAction.REQUEST_EMERGENCY_REVIEWED, detail)
    _announce(change, request)
    if not accepted and status_of(request, change.now) is Status.APPROVED:
        reason = note or "emergency access was not accepted on review"
        await _apply(change, actor, request, Action.REVOKE, reason)


async def provider_approve(
    deps: Deps, actor: Actor, request_id: str, reason: str | None = None
) -> AccessRequest:
    """providerApproveRequest: the provider's support manager lets the
    request reach the customer (PENDING; the deciders are told now). The
    customer's deadline restarts from now."""
    reason = _optional_text(reason, "reason", MAX_REASON)
    key = store.as_uuid(request_id)
    async with changing(deps) as change:
        request = None if key is None else await store.lock_request(key)
        request = visible(actor, request)
        if request is None:
            raise NotFound.of("access request", request_id)
        tenant = await store.get_tenant(request.tenant_id)
        assert tenant is not None  # a request's tenant is a foreign key
        await _apply(
            change,
            actor,
            request,
            Action.PROVIDER_APPROVE,
            reason,
            pending_ttl_seconds=tenant.pending_request_ttl_seconds,
        )
        if not tenant.lockbox_enabled:
            why = f"approved automatically: lockbox is disabled for tenant {tenant.name}"
            await _apply(change, None, request, Action.AUTO_APPROVE, why)
    return request


async def _audit_decision(
    change: Change,
    actor: Actor,
    request: AccessRequest,
    action: AuditAction,
    detail: dict[str, object],
) -> None:
    """Audit a decision that changes no status (a quorum vote, an emergency
    review): the row as decided, and the digest of its signed record."""
    detail.update(audit.decided_fields_of(request))
    detail["decisionHash"] = await record_decision(change, actor, request, action.value)
    await change.audit(
        request.tenant_id, action, actor_id=actor.id, request_id=request.id, detail=detail
    )


async def record_decision(change: Change, actor: Actor, request: AccessRequest, action: str) -> str:
    """The one place a decision (approval, denial, revocation, any decider's,
    reviewer's or provider's call) is recorded, signed with LOCKBOX_SIGNING_KEY
    when set, in `change`'s transaction. `action` is the audit action of the
    event that records it; that event carries the payload's digest (returned)
    as `decisionHash`."""
    payload = audit.decision_payload_of(request, actor.id, action, change.now)
    return await change.decision(
        request.tenant_id, request.id, action=action, decider_id=actor.id, payload=payload
    )


async def list_visible(
    deps: Deps,
    actor: Actor,
    *,
    statuses: list[Status] | None,
    window: Window,
    emergency_unreviewed: bool = False,
) -> list[AccessRequest]:
    """Requests the actor can see along a walk of the creation order (in walk order);
    `emergency_unreviewed`: only break-glass access no decider has reviewed yet."""
    now = deps.clock.now()
    tenant_id = None if actor.tenant_id is None else uuid.UUID(actor.tenant_id)
    engineer_id = uuid.UUID(actor.id) if actor.role is Role.ENGINEER else None
    # An approver's scopes are filtered in SQL; policy.can_see still checks
    # each row (defence in depth), reading on should it ever drop one.
    scopes = actor.scopes if actor.role is Role.APPROVER else None
    found: list[AccessRequest] = []
    walk = window
    while len(found) < window.limit:
        batch = await store.list_requests(
            now=now,
            statuses=statuses,
            tenant_id=tenant_id,
            engineer_id=engineer_id,
            window=walk,
            within_scopes=scopes,
            customer_visible_only=actor.role not in policy.OPERATOR_ROLES,
            emergency_unreviewed=emergency_unreviewed,
        )
        found.extend(r for r in batch if policy.can_see(actor, facts_of(r)))
        if len(batch) < walk.limit:
            break
        walk = walk.beyond((batch[-1].created_at, batch[-1].id))
    return found[: window.limit]
