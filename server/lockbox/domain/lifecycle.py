"""The access request lifecycle: statuses, actions and the transition table."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from lockbox.domain.errors import InvalidState


class Status(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


class Action(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    CANCEL = "cancel"
    EXPIRE = "expire"
    REVOKE = "revoke"
    RELEASE = "release"
    COMPLETE = "complete"


# The whole lifecycle. A (status, action) pair that is not here is INVALID_STATE.
# Terminal statuses have no entry at all.
TRANSITIONS: dict[Status, dict[Action, Status]] = {
    Status.PENDING: {
        Action.APPROVE: Status.APPROVED,
        Action.DENY: Status.DENIED,
        Action.CANCEL: Status.CANCELED,
        Action.EXPIRE: Status.EXPIRED,
    },
    Status.APPROVED: {
        Action.REVOKE: Status.REVOKED,
        Action.RELEASE: Status.COMPLETED,
        Action.COMPLETE: Status.COMPLETED,
    },
}

TERMINAL: frozenset[Status] = frozenset(s for s in Status if s not in TRANSITIONS)


def next_status(request_id: str, current: Status, action: Action) -> Status:
    """The status `action` leads to from `current`, or InvalidState naming both."""
    target = TRANSITIONS.get(current, {}).get(action)
    if target is None:
        raise InvalidState(f"cannot {action.value} request {request_id}: it is {current.value}")
    return target


def effective_status(
    stored: Status,
    now: datetime,
    expires_at: datetime,
    access_ends_at: datetime | None,
) -> Status:
    """The status a reader sees: time-based changes hold before any job records them."""
    if stored is Status.PENDING and now >= expires_at:
        return Status.EXPIRED
    if stored is Status.APPROVED and access_ends_at is not None and now >= access_ends_at:
        return Status.COMPLETED
    return stored
