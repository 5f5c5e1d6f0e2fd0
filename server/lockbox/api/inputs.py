"""Input objects of the mutations (contract section 4)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON


@strawberry.input
class CreateAccessRequestInput:
    ticket_id: strawberry.ID
    resources: list[str]
    justification: str
    duration_seconds: int | None = None
    emergency: bool | None = strawberry.field(
        default=False,
        description=(
            "Break-glass: approved at once where the tenant allows emergency access "
            "(its window cut to emergencyMaxSeconds), FORBIDDEN where it does not."
        ),
    )


@strawberry.input
class AuthorizeAccessInput:
    request_id: strawberry.ID
    resource: str
    action: str
    detail: JSON | None = None


@strawberry.input
class LockboxSettingsInput:
    pending_request_ttl_seconds: int | None = None
    default_access_seconds: int | None = None
    max_access_seconds: int | None = None
    notification_emails: list[str] | None = strawberry.field(
        default=None,
        description=(
            "Replaces the whole list (0 to 50 addresses; [] clears it). They receive the "
            "deciders' mails but cannot decide. Omitted or null: unchanged."
        ),
    )
    required_approvals: int | None = strawberry.field(
        default=None, description="Approvals from distinct deciders a new request needs (1 to 5)."
    )
    allow_emergency_access: bool | None = strawberry.field(
        default=None, description="Whether engineers may use emergency (break-glass) access."
    )
    emergency_max_seconds: int | None = strawberry.field(
        default=None, description="The longest emergency access window (60 to 14,400 seconds)."
    )
