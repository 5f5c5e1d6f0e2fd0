"""accessReport: one request's evidence in one document, checked."""

from __future__ import annotations

import strawberry

from lockbox.api.types import (
    AccessRequestType,
    ActivityEventType,
    AuditEventType,
    LockboxInfo,
    SignedDecisionType,
)
from lockbox.services import evidence


@strawberry.type(name="AccessReport")
class AccessReportType:
    request: AccessRequestType
    decisions: list[SignedDecisionType]
    activity: list[ActivityEventType]
    audit_events: list[AuditEventType] = strawberry.field(
        description="The request's audit events (empty for callers who may not read "
        "the tenant's audit log)."
    )
    verified: bool = strawberry.field(
        description="True when every check below found nothing: the request's audit "
        "events hash to what they say, its decisions are the ones the audit chain "
        "recorded (and their signatures verify under this server's key), and its "
        "activity chain is whole and ends where the request row and its final audit "
        "event say."
    )
    problems: list[str]


async def access_report(info: LockboxInfo, request_id: strawberry.ID) -> AccessReportType:
    actor = await info.context.actor()
    found = await evidence.report(info.context.deps, actor, request_id)
    return AccessReportType(
        request=AccessRequestType(row=found.request),
        decisions=[SignedDecisionType(row=d) for d in found.decisions],
        activity=[ActivityEventType(row=a) for a in found.activity],
        audit_events=[AuditEventType(row=e) for e in evidence.audit_events_seen_by(actor, found)],
        verified=found.verified,
        problems=found.problems,
    )
