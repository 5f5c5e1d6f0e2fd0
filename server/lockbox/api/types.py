"""GraphQL object types. Each wraps a stored row; related objects come
through the batch loaders in the context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from lockbox.api.context import Context
from lockbox.domain import cursors, policy
from lockbox.domain.lifecycle import Status, effective_status
from lockbox.domain.policy import Role as DomainRole
from lockbox.services import requests as request_service
from lockbox.services import tenants as tenant_service
from lockbox.store import models

Role = strawberry.enum(DomainRole, name="Role")
AccessRequestStatus = strawberry.enum(Status, name="AccessRequestStatus")

LockboxInfo = Info[Context, None]
NodeT = TypeVar("NodeT")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo


def connection(nodes: list[NodeT], cursors_: list[str], limit: int) -> Connection[NodeT]:
    """A page from up to limit + 1 items: the extra one only says there is more."""
    edges = [Edge(cursor=c, node=n) for n, c in zip(nodes[:limit], cursors_[:limit], strict=True)]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(nodes) > limit,
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


@strawberry.type(name="Tenant")
class TenantType:
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
        )


@strawberry.type(name="Principal")
class PrincipalType:
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
class SupportTicketType:
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


def request_cursor(row: models.AccessRequest) -> str:
    return cursors.encode_keyset(REQUEST, row.created_at, row.id)


def parse_request_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    return cursors.decode_keyset(REQUEST, cursor)


@strawberry.type(name="AccessRequest")
class AccessRequestType:
    row: strawberry.Private[models.AccessRequest]
    # The status one announced change led to (accessRequestUpdates), where it
    # differs from the row's latest; None: the row's own.
    stored_status: strawberry.Private[Status | None] = None
    id: strawberry.ID = identifier()

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

    @strawberry.field
    async def activity(
        self, info: LockboxInfo, first: int | None = 50, after: str | None = None
    ) -> Connection[ActivityEventType]:
        limit = cursors.page_size(first)
        rows = await request_service.activity_page(
            self.row, cursors.decode_int(ACTIVITY, after), limit + 1
        )
        nodes = [ActivityEventType(row=r) for r in rows]
        return connection(nodes, [activity_cursor(r) for r in rows], limit)


def activity_cursor(row: models.ActivityEvent) -> str:
    return cursors.encode_int(ACTIVITY, row.seq)


@strawberry.type(name="ActivityEvent")
class ActivityEventType:
    row: strawberry.Private[models.ActivityEvent]
    id: strawberry.ID = identifier()

    @strawberry.field
    def cursor(self) -> str:
        return activity_cursor(self.row)

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


@strawberry.type
class AccessDecision:
    allowed: bool
    reason: str | None
    event: ActivityEventType


def audit_cursor(row: models.AuditEvent) -> str:
    return cursors.encode_int(AUDIT, row.seq)


@strawberry.type(name="AuditEvent")
class AuditEventType:
    row: strawberry.Private[models.AuditEvent]
    id: strawberry.ID = identifier()
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
