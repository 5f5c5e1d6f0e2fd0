"""The access request lifecycle, whole: statuses, actions, who takes each
action, what it leads to, what it records and which columns it writes.

Nothing else decides a status. Services ask `transition_for` before every
change, readers ask `effective_status`, the sweeper asks `due_action`, and
the store builds its "reads as" SQL from `DEADLINES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from lockbox.domain.audit import AuditAction
from lockbox.domain.errors import InvalidState


class Status(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    # Waiting for the provider's own support manager (LOCKBOX_PROVIDER_APPROVAL);
    # the customer sees nothing of it yet.
    AWAITING_PROVIDER_APPROVAL = "AWAITING_PROVIDER_APPROVAL"


# Every request starts here (or, when the provider approves first, in
# AWAITING_PROVIDER_APPROVAL: see `initial_status`); only a transition moves it on.
INITIAL = Status.PENDING


INITIAL_STATUSES = frozenset({INITIAL, Status.AWAITING_PROVIDER_APPROVAL})


def initial_status(*, provider_approval: bool) -> Status:
    return Status.AWAITING_PROVIDER_APPROVAL if provider_approval else INITIAL


class Action(StrEnum):
    APPROVE = "approve"
    AUTO_APPROVE = "auto-approve"
    DENY = "deny"
    CANCEL = "cancel"
    EXPIRE = "expire"
    REVOKE = "revoke"
    RELEASE = "release"
    COMPLETE = "complete"
    EMERGENCY_APPROVE = "emergency-approve"
    PROVIDER_APPROVE = "provider-approve"
    PROVIDER_DENY = "provider-deny"


class Party(StrEnum):
    """Who may take an action."""

    DECIDER = "decider"  # a customer decider of the request (see policy.can_decide)
    ENGINEER = "engineer"  # the request's own engineer
    CLOCK = "clock"  # time itself, once the deadline has passed (recorded by the sweeper)
    LOCKBOX = "lockbox"  # Lockbox on its own: lockbox disabled, or break-glass allowed
    PROVIDER = "provider"  # a SUPPORT_MANAGER of the provider, not the requester


@dataclass(frozen=True, slots=True)
class RequestState:
    """What the lifecycle needs to know of a request, as stored."""

    id: str
    status: Status
    expires_at: datetime
    access_ends_at: datetime | None
    duration_seconds: int
    resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One action being taken: by whom (None for the clock and Lockbox), why, when.

    An approval may grant less than was asked (`granted_seconds`,
    `granted_resources`; None: as asked). A provider's approval restarts the
    customer's decision deadline from now (`pending_ttl_seconds`).
    """

    actor_id: str | None
    reason: str | None
    now: datetime
    granted_seconds: int | None = None
    granted_resources: tuple[str, ...] | None = None
    pending_ttl_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Columns:
    """The request columns a transition writes besides its status.

    None leaves a column as it is (no transition ever clears one).
    """

    decided_at: datetime | None = None
    decided_by_id: str | None = None
    decision_reason: str | None = None
    access_starts_at: datetime | None = None
    access_ends_at: datetime | None = None
    granted_resources: tuple[str, ...] | None = None
    expires_at: datetime | None = None
    provider_approved_at: datetime | None = None
    provider_approved_by_id: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    target: Status
    by: Party
    audit: AuditAction
    writes: Callable[[RequestState, Step], Columns]


def _nothing(state: RequestState, step: Step) -> Columns:
    return Columns()


def _open_window(state: RequestState, step: Step) -> Columns:
    """The window opens now for the granted duration, on the granted resources
    (as asked unless an approver narrowed them)."""
    seconds = state.duration_seconds if step.granted_seconds is None else step.granted_seconds
    return Columns(
        decided_at=step.now,
        decided_by_id=step.actor_id,
        decision_reason=step.reason,
        access_starts_at=step.now,
        access_ends_at=step.now + timedelta(seconds=seconds),
        granted_resources=state.resources
        if step.granted_resources is None
        else step.granted_resources,
    )


def _hand_to_customer(state: RequestState, step: Step) -> Columns:
    """The provider approved: the customer's decision deadline starts now."""
    if step.pending_ttl_seconds is None:
        raise ValueError("a provider approval needs the tenant's pendingRequestTtlSeconds")
    return Columns(
        expires_at=step.now + timedelta(seconds=step.pending_ttl_seconds),
        provider_approved_at=step.now,
        provider_approved_by_id=step.actor_id,
    )


def _refuse(state: RequestState, step: Step) -> Columns:
    return Columns(decided_at=step.now, decided_by_id=step.actor_id, decision_reason=step.reason)


def _close_window(state: RequestState, step: Step) -> Columns:
    # The approval stays on record; a revoker's reason replaces the approver's.
    return Columns(access_ends_at=step.now, decision_reason=step.reason)


# The whole lifecycle. A (status, action) pair that is not here is INVALID_STATE;
# terminal statuses have no entry at all.
TRANSITIONS: dict[Status, dict[Action, Transition]] = {
    Status.AWAITING_PROVIDER_APPROVAL: {
        Action.PROVIDER_APPROVE: Transition(
            Status.PENDING,
            Party.PROVIDER,
            AuditAction.REQUEST_PROVIDER_APPROVED,
            _hand_to_customer,
        ),
        Action.PROVIDER_DENY: Transition(
            Status.DENIED, Party.PROVIDER, AuditAction.REQUEST_PROVIDER_DENIED, _refuse
        ),
        Action.CANCEL: Transition(
            Status.CANCELED, Party.ENGINEER, AuditAction.REQUEST_CANCELED, _nothing
        ),
        Action.EXPIRE: Transition(
            Status.EXPIRED, Party.CLOCK, AuditAction.REQUEST_EXPIRED, _nothing
        ),
    },
    Status.PENDING: {
        Action.APPROVE: Transition(
            Status.APPROVED, Party.DECIDER, AuditAction.REQUEST_APPROVED, _open_window
        ),
        Action.AUTO_APPROVE: Transition(
            Status.APPROVED, Party.LOCKBOX, AuditAction.REQUEST_APPROVED, _open_window
        ),
        Action.EMERGENCY_APPROVE: Transition(
            Status.APPROVED, Party.LOCKBOX, AuditAction.REQUEST_EMERGENCY_APPROVED, _open_window
        ),
        Action.DENY: Transition(Status.DENIED, Party.DECIDER, AuditAction.REQUEST_DENIED, _refuse),
        Action.CANCEL: Transition(
            Status.CANCELED, Party.ENGINEER, AuditAction.REQUEST_CANCELED, _nothing
        ),
        Action.EXPIRE: Transition(
            Status.EXPIRED, Party.CLOCK, AuditAction.REQUEST_EXPIRED, _nothing
        ),
    },
    Status.APPROVED: {
        Action.REVOKE: Transition(
            Status.REVOKED, Party.DECIDER, AuditAction.REQUEST_REVOKED, _close_window
        ),
        Action.RELEASE: Transition(
            Status.COMPLETED, Party.ENGINEER, AuditAction.REQUEST_COMPLETED, _close_window
        ),
        Action.COMPLETE: Transition(
            Status.COMPLETED, Party.CLOCK, AuditAction.REQUEST_COMPLETED, _nothing
        ),
    },
}


@dataclass(frozen=True, slots=True)
class Deadline:
    """A stored status that the clock ends: from `column` on, `action` is due."""

    status: Status
    column: Literal["expires_at", "access_ends_at"]  # a RequestState field and a request column
    action: Action


DEADLINES: tuple[Deadline, ...] = (
    # While awaiting the provider, `expires_at` is creation + pendingRequestTtlSeconds;
    # the provider's approval resets it for the customer's decision.
    Deadline(Status.AWAITING_PROVIDER_APPROVAL, "expires_at", Action.EXPIRE),
    Deadline(Status.PENDING, "expires_at", Action.EXPIRE),
    Deadline(Status.APPROVED, "access_ends_at", Action.COMPLETE),
)


def due_action(state: RequestState, now: datetime) -> Action | None:
    """The clock's action that is due on a request at `now`, if any."""
    for deadline in DEADLINES:
        if state.status is deadline.status:
            at: datetime | None = getattr(state, deadline.column)
            if at is not None and now >= at:
                return deadline.action
    return None


def effective_status(
    stored: Status, now: datetime, expires_at: datetime, access_ends_at: datetime | None
) -> Status:
    """The status a reader sees: time-based changes hold before any job records them."""
    state = RequestState("", stored, expires_at, access_ends_at, 0)
    action = due_action(state, now)
    return stored if action is None else TRANSITIONS[stored][action].target


def transition_for(state: RequestState, action: Action, now: datetime) -> Transition:
    """The transition `action` takes at `now`, or InvalidState naming the status.

    People act on the status as the clock reads it (an approval after the
    deadline finds EXPIRED); the clock acts on the stored status, once due.
    """
    if action not in CLOCK_ACTIONS:
        current = effective_status(state.status, now, state.expires_at, state.access_ends_at)
        return _transition(state.id, current, action)
    transition = _transition(state.id, state.status, action)
    if due_action(state, now) is not action:
        raise InvalidState(f"cannot {action.value} request {state.id}: it is not due yet")
    return transition


def next_status(request_id: str, current: Status, action: Action) -> Status:
    """The status `action` leads to from `current`, or InvalidState naming both."""
    return _transition(request_id, current, action).target


def _transition(request_id: str, current: Status, action: Action) -> Transition:
    transition = TRANSITIONS.get(current, {}).get(action)
    if transition is None:
        raise InvalidState(f"cannot {action.value} request {request_id}: it is {current.value}")
    return transition


CLOCK_ACTIONS = frozenset(
    action
    for actions in TRANSITIONS.values()
    for action, transition in actions.items()
    if transition.by is Party.CLOCK
)
