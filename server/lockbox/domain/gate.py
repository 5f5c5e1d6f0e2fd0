"""The lockbox gate: may this engineer touch this resource right now?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lockbox.domain.lifecycle import Status, effective_status
from lockbox.domain.resources import within_any


@dataclass(frozen=True, slots=True)
class GateFacts:
    request_id: str
    status: Status
    expires_at: datetime
    access_starts_at: datetime | None
    access_ends_at: datetime | None
    resources: tuple[str, ...]


def denial_reason(facts: GateFacts, resource: str, now: datetime) -> str | None:
    """None when access is allowed, else why not (recorded on the activity event)."""
    status = effective_status(facts.status, now, facts.expires_at, facts.access_ends_at)
    if status is not Status.APPROVED:
        return f"request {facts.request_id} is {status.value}"
    if facts.access_starts_at is None or now < facts.access_starts_at:
        return f"the access window of request {facts.request_id} has not started"
    if not within_any(resource, facts.resources):
        return f"resource {resource} is outside the resources of request {facts.request_id}"
    return None
