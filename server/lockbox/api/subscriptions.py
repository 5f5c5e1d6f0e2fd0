"""The Subscription root: live streams, each replayed from the database first
(services.streams) and wrapped here into GraphQL types."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import TypeVar

import strawberry

from lockbox.api.operations import direct_delivery
from lockbox.api.types import AccessRequestType, ActivityEventType, LockboxInfo
from lockbox.domain import cursors
from lockbox.services import streams

RowT = TypeVar("RowT")
NodeT = TypeVar("NodeT")


async def _wrapped(
    rows: AsyncGenerator[RowT, None], wrap: Callable[[RowT], NodeT], info: LockboxInfo
) -> AsyncGenerator[NodeT, None]:
    metrics = info.context.deps.metrics  # counts running subscriptions, when on
    if metrics is not None:
        metrics.subscription_started(info.field_name)
    try:
        async with aclosing(rows):
            async for row in rows:
                yield wrap(row)
    finally:
        if metrics is not None:
            metrics.subscription_ended(info.field_name)


@strawberry.type
class Subscription:
    # These resolvers authenticate and check visibility *before* returning the
    # stream, so a refusal is a subscription error (an `error` message on
    # graphql-transport-ws), not an event.

    @strawberry.subscription(description="A request's activity: replay after `after`, then live.")
    async def engineer_activity(
        self, info: LockboxInfo, request_id: strawberry.ID, after: str | None = None
    ) -> AsyncGenerator[ActivityEventType, None]:
        actor = await info.context.actor()
        position = cursors.decode_int("activity", after)
        rows = await streams.activity(
            info.context.deps,
            actor,
            info.context.still_authenticated,
            request_id,
            position,
            direct=direct_delivery(info),
        )
        return _wrapped(rows, lambda row: ActivityEventType(row=row), info)

    @strawberry.subscription(description="Requests the caller sees, each time one changes.")
    async def access_request_updates(
        self, info: LockboxInfo
    ) -> AsyncGenerator[AccessRequestType, None]:
        actor = await info.context.actor()
        rows = streams.request_updates(info.context.deps, actor, info.context.still_authenticated)
        return _wrapped(
            rows,
            lambda change: AccessRequestType(row=change.request, stored_status=change.status),
            info,
        )
