"""The Query root: what the caller may read, always filtered by what it may see."""

from __future__ import annotations

import uuid

import strawberry

from lockbox.api.notifications import (
    NotificationType,
    notification_cursor,
    parse_notification_cursor,
)
from lockbox.api.notifications import node as notification_node
from lockbox.api.types import (
    AUDIT,
    AccessRequestStatus,
    AccessRequestType,
    AuditEventType,
    Connection,
    LockboxInfo,
    PrincipalType,
    audit_cursor,
    connection,
    parse_request_cursor,
    request_cursor,
)
from lockbox.api.webhooks import WebhookType
from lockbox.domain import cursors
from lockbox.domain.errors import BadUserInput
from lockbox.domain.lifecycle import Status
from lockbox.services import audit, notification_log
from lockbox.services import requests as request_service
from lockbox.services import webhooks as webhook_service

# Contract section 10: list arguments take at most 100 items.
MAX_LIST_ITEMS = 100


def _statuses(status: list[Status] | None) -> list[Status] | None:
    """The `status` argument, bounded before any query is built, without repeats."""
    if status is None:
        return None
    if len(status) > MAX_LIST_ITEMS:
        raise BadUserInput(f"status lists at most {MAX_LIST_ITEMS} items, got {len(status)}")
    return list(dict.fromkeys(status))


async def _request_page(
    info: LockboxInfo, statuses: list[Status] | None, first: int | None, after: str | None
) -> Connection[AccessRequestType]:
    actor = await info.context.actor()
    limit = cursors.page_size(first)
    rows = await request_service.list_visible(
        info.context.deps,
        actor,
        statuses=statuses,
        after=parse_request_cursor(after),
        limit=limit + 1,
    )
    return connection(
        [AccessRequestType(row=r) for r in rows], [request_cursor(r) for r in rows], limit
    )


@strawberry.type
class Query:
    @strawberry.field
    async def me(self, info: LockboxInfo) -> PrincipalType:
        actor = await info.context.actor()
        return PrincipalType(row=await info.context.loaders.principal_of(uuid.UUID(actor.id)))

    @strawberry.field(description="Requests waiting for a decision, oldest first.")
    async def pending_requests(
        self, info: LockboxInfo, first: int | None = 50, after: str | None = None
    ) -> Connection[AccessRequestType]:
        return await _request_page(info, [Status.PENDING], first, after)

    @strawberry.field(description="Requests the caller can see, oldest first.")
    async def access_requests(
        self,
        info: LockboxInfo,
        status: list[AccessRequestStatus] | None = None,  # type: ignore[valid-type]
        first: int | None = 50,
        after: str | None = None,
    ) -> Connection[AccessRequestType]:
        return await _request_page(info, _statuses(status), first, after)

    @strawberry.field(description="Null when the request does not exist or is not visible.")
    async def access_request(
        self, info: LockboxInfo, id: strawberry.ID
    ) -> AccessRequestType | None:
        actor = await info.context.actor()
        row = await request_service.find_visible(actor, id)
        return None if row is None else AccessRequestType(row=row)

    @strawberry.field(description="The caller's tenant's webhooks, oldest first (TENANT_ADMIN).")
    async def webhooks(self, info: LockboxInfo) -> list[WebhookType]:
        actor = await info.context.actor()
        rows = await webhook_service.list_webhooks(info.context.deps, actor)
        return [WebhookType(row=row) for row in rows]

    @strawberry.field(description="The caller's tenant audit chain, oldest first.")
    async def audit_log(
        self, info: LockboxInfo, first: int | None = 50, after: str | None = None
    ) -> Connection[AuditEventType]:
        actor = await info.context.actor()
        limit = cursors.page_size(first)
        rows = await audit.page(actor, cursors.decode_int(AUDIT, after), limit + 1)
        return connection(
            [AuditEventType(row=r) for r in rows], [audit_cursor(r) for r in rows], limit
        )

    @strawberry.field(
        description=(
            "The caller's tenant's mails and webhook deliveries, newest first (TENANT_ADMIN only)."
        )
    )
    async def notifications(
        self, info: LockboxInfo, first: int | None = 50, after: str | None = None
    ) -> Connection[NotificationType]:
        actor = await info.context.actor()
        limit = cursors.page_size(first)
        logged = await notification_log.page(actor, parse_notification_cursor(after), limit + 1)
        return connection(
            [notification_node(n) for n in logged],
            [notification_cursor(n.row) for n in logged],
            limit,
        )
