"""GraphQL object types. Each wraps a stored row; related objects come
through the batch loaders in the context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Generic, TypeVar, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from lockbox.api.context import Context
from lockbox.domain import cursors
from lockbox.domain.errors import BadUserInput
from lockbox.domain.ids import parse_uuid
from lockbox.domain.lifecycle import Status
from lockbox.domain.policy import Role as DomainRole
from lockbox.services import requests as request_service
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


@strawberry.type(name="Tenant")
class TenantType:
    row: strawberry.Private[models.Tenant]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def lockbox_enabled(self) -> bool:
        return self.row.lockbox_enabled

    @strawberry.field
    def resource_roots(self) -> list[str]:
        return list(self.row.resource_roots)

    @strawberry.field
    def settings(self) -> LockboxSettings:
        return LockboxSettings(
            pending_request_ttl_seconds=self.row.pending_request_ttl_seconds,
            default_access_seconds=self.row.default_access_seconds,
            max_access_seconds=self.row.max_access_seconds,
        )


@strawberry.type(name="Principal")
class PrincipalType:
    row: strawberry.Private[models.Principal]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def email(self) -> str | None:
        return self.row.email

    @strawberry.field
    def role(self) -> Role:  # type: ignore[valid-type]
        return DomainRole(self.row.role)

    @strawberry.field
    async def tenant(self, info: LockboxInfo) -> TenantType | None:
        if self.row.tenant_id is None:
            return None
        return TenantType(row=await info.context.loaders.tenant_of(self.row.tenant_id))

    @strawberry.field
    def scopes(self) -> list[str]:
        return list(self.row.scopes)


@strawberry.type(name="SupportTicket")
class SupportTicketType:
    row: strawberry.Private[models.SupportTicket]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def title(self) -> str:
        return self.row.title

    @strawberry.field
    def is_open(self) -> bool:
        return self.row.is_open

    @strawberry.field
    async def tenant(self, info: LockboxInfo) -> TenantType:
        return TenantType(row=await info.context.loaders.tenant_of(self.row.tenant_id))


ACTIVITY = "activity"
REQUEST = "request"
AUDIT = "audit"


def request_cursor(row: models.AccessRequest) -> str:
    return cursors.encode(REQUEST, f"{row.created_at.isoformat()}|{row.id}")


def parse_request_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    position = cursors.decode(REQUEST, cursor)
    if position is None:
        return None
    created, _, key = position.partition("|")
    try:
        parsed = datetime.fromisoformat(created)
    except ValueError:
        raise BadUserInput(f"cursor {cursor!r} is not a valid request cursor") from None
    request_id = parse_uuid(key)
    if request_id is None:
        raise BadUserInput(f"cursor {cursor!r} is not a valid request cursor")
    return parsed, request_id


@strawberry.type(name="AccessRequest")
class AccessRequestType:
    row: strawberry.Private[models.AccessRequest]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    async def tenant(self, info: LockboxInfo) -> TenantType:
        return TenantType(row=await info.context.loaders.tenant_of(self.row.tenant_id))

    @strawberry.field
    async def ticket(self, info: LockboxInfo) -> SupportTicketType:
        return SupportTicketType(row=await info.context.loaders.ticket_of(self.row.ticket_id))

    @strawberry.field
    async def engineer(self, info: LockboxInfo) -> PrincipalType:
        return PrincipalType(row=await info.context.loaders.principal_of(self.row.engineer_id))

    @strawberry.field
    def resources(self) -> list[str]:
        return list(self.row.resources)

    @strawberry.field
    def justification(self) -> str:
        return self.row.justification

    @strawberry.field
    def duration_seconds(self) -> int:
        return self.row.duration_seconds

    @strawberry.field
    def status(self, info: LockboxInfo) -> AccessRequestStatus:  # type: ignore[valid-type]
        return request_service.status_of(self.row, info.context.deps.clock.now())

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def expires_at(self) -> datetime:
        return self.row.expires_at

    @strawberry.field
    def decided_at(self) -> datetime | None:
        return self.row.decided_at

    @strawberry.field
    async def decided_by(self, info: LockboxInfo) -> PrincipalType | None:
        if self.row.decided_by_id is None:
            return None
        return PrincipalType(row=await info.context.loaders.principal_of(self.row.decided_by_id))

    @strawberry.field
    def decision_reason(self) -> str | None:
        return self.row.decision_reason

    @strawberry.field
    def access_starts_at(self) -> datetime | None:
        return self.row.access_starts_at

    @strawberry.field
    def access_ends_at(self) -> datetime | None:
        return self.row.access_ends_at

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

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def cursor(self) -> str:
        return activity_cursor(self.row)

    @strawberry.field
    def at(self) -> datetime:
        return self.row.at

    @strawberry.field
    async def request(self, info: LockboxInfo) -> AccessRequestType:
        return AccessRequestType(row=await info.context.loaders.request_of(self.row.request_id))

    @strawberry.field
    async def engineer(self, info: LockboxInfo) -> PrincipalType:
        return PrincipalType(row=await info.context.loaders.principal_of(self.row.engineer_id))

    @strawberry.field
    def resource(self) -> str:
        return self.row.resource

    @strawberry.field
    def action(self) -> str:
        return self.row.action

    @strawberry.field
    def allowed(self) -> bool:
        return self.row.allowed

    @strawberry.field
    def denial_reason(self) -> str | None:
        return self.row.denial_reason

    @strawberry.field
    def detail(self) -> JSON | None:
        return cast(JSON, self.row.detail)


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

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def seq(self) -> int:
        return int(self.row.seq)

    @strawberry.field
    def at(self) -> datetime:
        return self.row.at

    @strawberry.field
    def action(self) -> str:
        return self.row.action

    @strawberry.field
    async def actor(self, info: LockboxInfo) -> PrincipalType | None:
        if self.row.actor_id is None:
            return None
        principal = await info.context.loaders.principal.load(self.row.actor_id)
        return None if principal is None else PrincipalType(row=principal)

    @strawberry.field
    def request_id(self) -> strawberry.ID | None:
        return None if self.row.request_id is None else strawberry.ID(str(self.row.request_id))

    @strawberry.field
    def detail(self) -> JSON | None:
        return cast(JSON, self.row.detail)

    @strawberry.field
    def hash(self) -> str:
        return self.row.hash

    @strawberry.field
    def prev_hash(self) -> str | None:
        return self.row.prev_hash
