"""The Query root: what the caller may read, always filtered by what it may see."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from lockbox.api.evidence import AccessReportType, access_report
from lockbox.api.notifications import NOTIFICATIONS, NotificationType
from lockbox.api.notifications import node as notification_node
from lockbox.api.types import (
    AUDIT_EVENTS,
    REQUESTS,
    AccessRequestStatus,
    AccessRequestType,
    AuditEventType,
    Connection,
    LockboxInfo,
    Node,
    PrincipalType,
    as_node,
    paginate,
)
from lockbox.api.webhooks import WebhookType
from lockbox.domain.errors import BadUserInput
from lockbox.domain.lifecycle import Status
from lockbox.services import audit, notification_log
from lockbox.services import nodes as node_service
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
    info: LockboxInfo,
    statuses: list[Status] | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    *,
    emergency_unreviewed: bool = False,
) -> Connection[AccessRequestType]:
    actor = await info.context.actor()
    return await paginate(
        info,
        first=first,
        after=after,
        last=last,
        before=before,
        keyset=REQUESTS,
        fetch=lambda window: request_service.list_visible(
            info.context.deps,
            actor,
            statuses=statuses,
            window=window,
            emergency_unreviewed=emergency_unreviewed,
        ),
        node=AccessRequestType.of,
    )


@strawberry.type
class Query:
    @strawberry.field
    async def me(self, info: LockboxInfo) -> PrincipalType:
        actor = await info.context.actor()
        return PrincipalType(row=await info.context.loaders.principal_of(uuid.UUID(actor.id)))

    @strawberry.field(description="Requests waiting for a decision, oldest first.")
    async def pending_requests(
        self,
        info: LockboxInfo,
        first: int | None = 50,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AccessRequestType]:
        return await _request_page(info, [Status.PENDING], first, after, last, before)

    @strawberry.field(description="Requests the caller can see, oldest first.")
    async def access_requests(
        self,
        info: LockboxInfo,
        status: list[AccessRequestStatus] | None = None,  # type: ignore[valid-type]
        first: int | None = 50,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AccessRequestType]:
        return await _request_page(info, _statuses(status), first, after, last, before)

    @strawberry.field(
        description=(
            "Emergency (break-glass) access that no decider has reviewed yet, oldest first."
        )
    )
    async def emergency_access_to_review(
        self,
        info: LockboxInfo,
        first: int | None = 50,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AccessRequestType]:
        return await _request_page(
            info, None, first, after, last, before, emergency_unreviewed=True
        )

    @strawberry.field(
        description="The object with this id; null when none exists that the caller can see."
    )
    async def node(self, info: LockboxInfo, id: strawberry.ID) -> Node | None:
        actor = await info.context.actor()
        return as_node((await node_service.find(actor, [id]))[0])

    @strawberry.field(
        description=(
            f"The objects with these ids (at most {MAX_LIST_ITEMS}), in the same order; "
            "null for each that does not exist or that the caller cannot see."
        )
    )
    async def nodes(self, info: LockboxInfo, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_LIST_ITEMS:
            raise BadUserInput(f"ids lists at most {MAX_LIST_ITEMS} items, got {len(ids)}")
        actor = await info.context.actor()
        return [as_node(row) for row in await node_service.find(actor, ids)]

    @strawberry.field(description="Null when the request does not exist or is not visible.")
    async def access_request(
        self, info: LockboxInfo, id: strawberry.ID
    ) -> AccessRequestType | None:
        actor = await info.context.actor()
        row = await request_service.find_visible(actor, id)
        return None if row is None else AccessRequestType(row=row)

    @strawberry.field(
        description="One request's evidence in one document, checked (NOT_FOUND when "
        "the request does not exist or is not visible)."
    )
    async def access_report(self, info: LockboxInfo, request_id: strawberry.ID) -> AccessReportType:
        return await access_report(info, request_id)

    @strawberry.field(description="The caller's tenant's webhooks, oldest first (TENANT_ADMIN).")
    async def webhooks(self, info: LockboxInfo) -> list[WebhookType]:
        actor = await info.context.actor()
        rows = await webhook_service.list_webhooks(info.context.deps, actor)
        return [WebhookType(row=row) for row in rows]

    @strawberry.field(description="The caller's tenant audit chain, oldest first.")
    async def audit_log(
        self,
        info: LockboxInfo,
        first: int | None = 50,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        request_id: strawberry.ID | None = None,
        actions: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Connection[AuditEventType]:
        actor = await info.context.actor()
        if actions is not None and len(actions) > MAX_LIST_ITEMS:
            raise BadUserInput(f"actions lists at most {MAX_LIST_ITEMS} items, got {len(actions)}")
        only = audit.AuditFilter.of(
            request_id=request_id, actions=actions, since=since, until=until
        )
        return await paginate(
            info,
            first=first,
            after=after,
            last=last,
            before=before,
            keyset=AUDIT_EVENTS,
            fetch=lambda window: audit.page(actor, window, only),
            node=AuditEventType.of,
        )

    @strawberry.field(
        description=(
            "The caller's tenant's mails and webhook deliveries, newest first (TENANT_ADMIN only)."
        )
    )
    async def notifications(
        self,
        info: LockboxInfo,
        first: int | None = 50,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[NotificationType]:
        actor = await info.context.actor()
        return await paginate(
            info,
            first=first,
            after=after,
            last=last,
            before=before,
            keyset=NOTIFICATIONS,
            fetch=lambda window: notification_log.page(actor, window),
            node=notification_node,
        )
