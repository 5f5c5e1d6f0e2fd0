"""GraphQL object types. Each wraps a stored row; related objects come
through the batch loaders in the context."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from lockbox.api.context import Context
from lockbox.domain import cursors, policy
from lockbox.domain.lifecycle import Status, effective_status
from lockbox.domain.nodes import Numbered, numbered_id
from lockbox.domain.policy import Role as DomainRole
from lockbox.services import evidence as evidence_service
from lockbox.services import tenants as tenant_service
from lockbox.store import models

Role = strawberry.enum(DomainRole, name="Role")
AccessRequestStatus = strawberry.enum(Status, name="AccessRequestStatus")

LockboxInfo = Info[Context, None]
NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")


@strawberry.interface(
    name="Node",
    description=(
        "An object with an id unique across types (a UUID); `node` and `nodes` fetch it again."
    ),
)
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo


def _given(info: LockboxInfo, argument: str) -> bool:
    """Whether the client gave `argument` a value, rather than leaving it to
    its default (an unset variable or null counts as not given)."""
    fields = info.selected_fields
    return (
        bool(fields)
        and isinstance(fields[0], SelectedField)
        and fields[0].arguments.get(argument) is not None
    )


async def paginate(
    info: LockboxInfo,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    keyset: cursors.Keyset[RowT],
    fetch: Callable[[cursors.Window], Awaitable[Sequence[RowT]]],
    node: Callable[[RowT], NodeT],
) -> Connection[NodeT]:
    """Every connection's page (Relay's cursor connections).

    `first`/`after`/`last`/`before` are the field's arguments as received
    (`first` may carry its schema default of 50: it counts only when the
    client gave it). `keyset` says how the list is ordered and reads and
    writes its cursors; `fetch(window)` returns the rows along one walk of
    the list (domain.cursors.Window: bounds, direction, limit), in walk
    order, applying the caller's visibility; `node` wraps a row.
    """
    plan = cursors.plan(
        keyset,
        first=first if _given(info, "first") else None,
        after=after,
        last=last,
        before=before,
    )
    rows = list(await fetch(plan.window()))
    more = len(rows) > plan.size
    rows = rows[: plan.size]
    if plan.backward:
        rows.reverse()
    probe = plan.probe()
    # Whether anything lies on the other side of the starting cursor.
    beyond = probe is not None and bool(await fetch(probe))
    edges = [Edge(cursor=keyset.cursor(row), node=node(row)) for row in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=beyond if plan.backward else more,
            has_previous_page=more if plan.backward else beyond,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


@strawberry.type
class LockboxSettings:
    pending_request_ttl_seconds: int
    default_access_seconds: int
    max_access_seconds: int
    notification_emails: list[str] = strawberry.field(
        description=(
            "Addresses that receive the deciders' mails but cannot decide. Only the "
            "tenant's TENANT_ADMINs read them; for every other caller the list is empty."
        )
    )
    required_approvals: int = strawberry.field(
        description="Approvals from distinct deciders a new request needs (1 to 5)."
    )
    allow_emergency_access: bool = strawberry.field(
        description="Whether engineers may use emergency (break-glass) access."
    )
    emergency_max_seconds: int = strawberry.field(
        description="The longest emergency access window, in seconds (60 to 14,400)."
    )


def stored(attribute: str) -> Any:
    """A field whose value is the wrapped row's attribute, as stored."""

    def resolve(root: Any) -> Any:
        return getattr(root.row, attribute)

    return strawberry.field(resolver=resolve)


def identifier() -> Any:
    """The row's primary key as a GraphQL ID."""

    def resolve(root: Any) -> strawberry.ID:
        return strawberry.ID(str(root.row.id))

    return strawberry.field(resolver=resolve)


def numbered_identifier(kind: Numbered) -> Any:
    """A numbered row's id: a UUID naming its table and row (domain.nodes)."""

    def resolve(root: Any) -> strawberry.ID:
        return strawberry.ID(str(numbered_id(kind, root.row.id)))

    return strawberry.field(resolver=resolve)


@strawberry.type(name="Tenant")
class TenantType(Node):
    row: strawberry.Private[models.Tenant]
    id: strawberry.ID = identifier()
    name: str = stored("name")
    lockbox_enabled: bool = stored("lockbox_enabled")
    resource_roots: list[str] = stored("resource_roots")

    @strawberry.field
    async def settings(self, info: LockboxInfo) -> LockboxSettings:
        seen = tenant_service.settings_seen_by(await info.context.viewer(), self.row)
        return LockboxSettings(
            pending_request_ttl_seconds=seen.pending_request_ttl_seconds,
            default_access_seconds=seen.default_access_seconds,
            max_access_seconds=seen.max_access_seconds,
            notification_emails=list(seen.notification_emails),
            required_approvals=seen.required_approvals,
            allow_emergency_access=seen.allow_emergency_access,
            emergency_max_seconds=seen.emergency_max_seconds,
        )


@strawberry.type(name="Principal")
class PrincipalType(Node):
    row: strawberry.Private[models.Principal]
    id: strawberry.ID = identifier()
    name: str = stored("name")

    @strawberry.field
    def email(self, info: LockboxInfo) -> str | None:
        viewer = info.context.known_viewer()
        tenant = None if self.row.tenant_id is None else str(self.row.tenant_id)
        if viewer is None or not policy.can_read_email(viewer, str(self.row.id), tenant):
            return None
        return self.row.email

    role: Role = stored("role")  # type: ignore[valid-type]

    @strawberry.field
    async def tenant(self, info: LockboxInfo) -> TenantType | None:
        if self.row.tenant_id is None:
            return None
        return TenantType(row=await info.context.loaders.tenant_of(self.row.tenant_id))

    scopes: list[str] = stored("scopes")


@strawberry.type(name="SupportTicket")
class SupportTicketType(Node):
    row: strawberry.Private[models.SupportTicket]
    id: strawberry.ID = identifier()
    title: str = stored("title")
    is_open: bool = stored("is_open")

    @strawberry.field
    async def tenant(self, info: LockboxInfo) -> TenantType:
        return TenantType(row=await info.context.loaders.tenant_of(self.row.tenant_id))


ACTIVITY = cursors.ACTIVITY
REQUEST = "request"
AUDIT = "audit"


# How each list is ordered, as its cursors say (see `paginate`).
REQUESTS: cursors.TimeKeyset[models.AccessRequest] = cursors.TimeKeyset(
    REQUEST, lambda row: (row.created_at, row.id)
)
ACTIVITY_EVENTS: cursors.SeqKeyset[models.ActivityEvent] = cursors.SeqKeyset(
    ACTIVITY, lambda row: row.seq
)
AUDIT_EVENTS: cursors.SeqKeyset[models.AuditEvent] = cursors.SeqKeyset(AUDIT, lambda row: row.seq)


@strawberry.type(name="AccessRequest")
class AccessRequestType(Node):
    row: strawberry.Private[models.AccessRequest]
    # The status one announced change led to (accessRequestUpdates), where it
    # differs from the row's latest; None: the row's own.
    stored_status: strawberry.Private[Status | None] = None
    id: strawberry.ID = identifier()

    @staticmethod
    def of(row: models.AccessRequest) -> AccessRequestType:
        return AccessRequestType(row=row)

    @strawberry.field
    async def tenant(self, info: LockboxInfo) -> TenantType:
        return TenantType(row=await info.context.loaders.tenant_of(self.row.tenant_id))

    @strawberry.field
    async def ticket(self, info: LockboxInfo) -> SupportTicketType:
        return SupportTicketType(row=await info.context.loaders.ticket_of(self.row.ticket_id))

    @strawberry.field
    async def engineer(self, info: LockboxInfo) -> PrincipalType:
        return PrincipalType(row=await info.context.loaders.principal_of(self.row.engineer_id))

    resources: list[str] = stored("resources")
    justification: str = stored("justification")
    duration_seconds: int = stored("duration_seconds")

    @strawberry.field
    def status(self, info: LockboxInfo) -> AccessRequestStatus:  # type: ignore[valid-type]
        stored = self.row.status if self.stored_status is None else self.stored_status
        row, now = self.row, info.context.deps.clock.now()
        return effective_status(stored, now, row.expires_at, row.access_ends_at)

    created_at: datetime = stored("created_at")
    expires_at: datetime = stored("expires_at")
    decided_at: datetime | None = stored("decided_at")

    @strawberry.field
    async def decided_by(self, info: LockboxInfo) -> PrincipalType | None:
        if self.row.decided_by_id is None:
            return None
        return PrincipalType(row=await info.context.loaders.principal_of(self.row.decided_by_id))

    decision_reason: str | None = stored("decision_reason")
    access_starts_at: datetime | None = stored("access_starts_at")
    access_ends_at: datetime | None = stored("access_ends_at")
    required_approvals: int = strawberry.field(
        resolver=lambda root: root.row.required_approvals,
        description="Approvals the request needs: the tenant's setting when it was made.",
    )

    @strawberry.field(description="The approvals given so far, oldest first.")
    async def approvals(self, info: LockboxInfo) -> list[ApprovalType]:
        rows = await info.context.loaders.approvals.load(self.row.id)
        return [ApprovalType(row=r) for r in rows]

    granted_resources: list[str] | None = strawberry.field(
        resolver=lambda root: root.row.granted_resources,
        description=(
            "What the approval granted (the gate checks these): the resources, or "
            "narrower ones where an approver narrowed them. Null until approved."
        ),
    )
    emergency: bool = stored("emergency")

    @strawberry.field(description="A decider's review of emergency access; null until reviewed.")
    def emergency_review(self) -> EmergencyReviewType | None:
        if self.row.emergency_reviewed_at is None or self.row.emergency_reviewed_by_id is None:
            return None
        return EmergencyReviewType(
            reviewer_id=self.row.emergency_reviewed_by_id,
            at=self.row.emergency_reviewed_at,
            accepted=bool(self.row.emergency_review_accepted),
            note=self.row.emergency_review_note,
        )

    @strawberry.field(
        description="Every decision on the request, oldest first, each signed with "
        "LOCKBOX_SIGNING_KEY when one is configured (GET /.well-known/lockbox-signing-key)."
    )
    async def decisions(self, info: LockboxInfo) -> list[SignedDecisionType]:
        rows = await info.context.loaders.decisions.load(self.row.id)
        return [SignedDecisionType(row=r) for r in rows]

    @strawberry.field
    async def activity(
        self,
        info: LockboxInfo,
        first: int | None = 50,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[ActivityEventType]:
        # Through the loader: the pages of every request of a list in one statement.
        request, load = self.row, info.context.loaders.activity.load
        return await paginate(
            info,
            first=first,
            after=after,
            last=last,
            before=before,
            keyset=ACTIVITY_EVENTS,
            fetch=lambda window: load((request.id, request.activity_seq, window)),
            node=ActivityEventType.of,
        )


@strawberry.type(name="ActivityEvent")
class ActivityEventType(Node):
    row: strawberry.Private[models.ActivityEvent]
    id: strawberry.ID = numbered_identifier(Numbered.ACTIVITY)

    @staticmethod
    def of(row: models.ActivityEvent) -> ActivityEventType:
        return ActivityEventType(row=row)

    @strawberry.field
    def cursor(self) -> str:
        return ACTIVITY_EVENTS.cursor(self.row)

    at: datetime = stored("at")

    @strawberry.field
    async def request(self, info: LockboxInfo) -> AccessRequestType:
        return AccessRequestType(row=await info.context.loaders.request_of(self.row.request_id))

    @strawberry.field
    async def engineer(self, info: LockboxInfo) -> PrincipalType:
        return PrincipalType(row=await info.context.loaders.principal_of(self.row.engineer_id))

    resource: str = stored("resource")
    action: str = stored("action")
    allowed: bool = stored("allowed")
    denial_reason: str | None = stored("denial_reason")

    @strawberry.field
    def detail(self, info: LockboxInfo) -> JSON | None:
        viewer = info.context.known_viewer()
        if viewer is None or not policy.can_read_activity_detail(viewer):
            return None
        detail: JSON | None = self.row.detail
        return detail

    hash: str | None = strawberry.field(
        resolver=lambda root: root.row.hash,
        description="This event's link in its request's activity hash chain "
        "(null on events written before activity was chained).",
    )
    prev_hash: str | None = stored("prev_hash")


@strawberry.type(name="SignedDecision")
class SignedDecisionType:
    row: strawberry.Private[models.Decision]
    action: str = stored("action")

    @strawberry.field
    async def decider(self, info: LockboxInfo) -> PrincipalType:
        return PrincipalType(row=await info.context.loaders.principal_of(self.row.decider_id))

    at: datetime = stored("at")

    @strawberry.field(description="What was decided, exactly as signed.")
    def payload(self) -> JSON:
        value: JSON = evidence_service.payload_of(self.row)
        return value

    signature: str | None = strawberry.field(
        resolver=lambda root: root.row.signature,
        description="Standard base64 Ed25519 signature over the UTF-8 bytes of the "
        "canonical JSON of `payload` (sorted keys, `,` `:` separators, no ASCII "
        "escaping); null when no signing key was configured.",
    )
    key_id: str | None = stored("key_id")


@strawberry.type(name="Approval")
class ApprovalType:
    row: strawberry.Private[models.RequestApproval]

    @strawberry.field
    async def approver(self, info: LockboxInfo) -> PrincipalType:
        return PrincipalType(row=await info.context.loaders.principal_of(self.row.approver_id))

    at: datetime = stored("at")
    reason: str | None = stored("reason")
    duration_seconds: int | None = strawberry.field(
        resolver=lambda root: root.row.duration_seconds,
        description="The duration this approver granted, when shorter than asked.",
    )
    resources: list[str] | None = strawberry.field(
        resolver=lambda root: root.row.resources,
        description="The resources this approver granted, when narrower than before.",
    )


@strawberry.type(name="EmergencyReview")
class EmergencyReviewType:
    reviewer_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def reviewer(self, info: LockboxInfo) -> PrincipalType:
        return PrincipalType(row=await info.context.loaders.principal_of(self.reviewer_id))

    at: datetime
    accepted: bool
    note: str | None


@strawberry.type
class AccessDecision:
    allowed: bool
    reason: str | None
    event: ActivityEventType


@strawberry.type(name="AuditEvent")
class AuditEventType(Node):
    row: strawberry.Private[models.AuditEvent]
    id: strawberry.ID = numbered_identifier(Numbered.AUDIT)

    @staticmethod
    def of(row: models.AuditEvent) -> AuditEventType:
        return AuditEventType(row=row)

    seq: int = stored("seq")
    at: datetime = stored("at")
    action: str = stored("action")

    @strawberry.field
    async def actor(self, info: LockboxInfo) -> PrincipalType | None:
        if self.row.actor_id is None:
            return None
        principal = await info.context.loaders.principal.load(self.row.actor_id)
        return None if principal is None else PrincipalType(row=principal)

    @strawberry.field
    def request_id(self) -> strawberry.ID | None:
        return None if self.row.request_id is None else strawberry.ID(str(self.row.request_id))

    detail: JSON | None = stored("detail")
    hash: str = stored("hash")
    prev_hash: str | None = stored("prev_hash")


def as_node(row: object) -> Node | None:
    """The GraphQL object for a row `services.nodes.find` returned."""
    if isinstance(row, models.AccessRequest):
        return AccessRequestType(row=row)
    if isinstance(row, models.ActivityEvent):
        return ActivityEventType(row=row)
    if isinstance(row, models.AuditEvent):
        return AuditEventType(row=row)
    if isinstance(row, models.Principal):
        return PrincipalType(row=row)
    if isinstance(row, models.SupportTicket):
        return SupportTicketType(row=row)
    if isinstance(row, models.Tenant):
        return TenantType(row=row)
    return None
