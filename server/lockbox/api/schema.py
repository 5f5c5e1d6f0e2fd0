"""Query, Mutation and Subscription: parse, authenticate, call a service, wrap."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from functools import partial
from typing import Any, TypeVar

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.scalars import JSON

from lockbox.api.direct import direct_delivery
from lockbox.api.types import (
    AUDIT,
    AccessDecision,
    AccessRequestStatus,
    AccessRequestType,
    ActivityEventType,
    AuditEventType,
    Connection,
    LockboxInfo,
    PrincipalType,
    TenantType,
    audit_cursor,
    connection,
    parse_request_cursor,
    request_cursor,
)
from lockbox.domain import cursors
from lockbox.domain.errors import LockboxError
from lockbox.domain.lifecycle import Action, Status
from lockbox.services import audit, gate, streams, tenants
from lockbox.services import requests as request_service

log = logging.getLogger("lockbox.api")

RowT = TypeVar("RowT")
NodeT = TypeVar("NodeT")

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000


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
        return await _request_page(info, status, first, after)

    @strawberry.field(description="Null when the request does not exist or is not visible.")
    async def access_request(
        self, info: LockboxInfo, id: strawberry.ID
    ) -> AccessRequestType | None:
        actor = await info.context.actor()
        row = await request_service.find_visible(actor, id)
        return None if row is None else AccessRequestType(row=row)

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


@strawberry.input
class CreateAccessRequestInput:
    ticket_id: strawberry.ID
    resources: list[str]
    justification: str
    duration_seconds: int | None = None


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


async def _transition(
    info: LockboxInfo, id: strawberry.ID, action: Action, reason: str | None = None
) -> AccessRequestType:
    actor = await info.context.actor()
    row = await request_service.transition(info.context.deps, actor, id, action, reason)
    return AccessRequestType(row=row)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="ENGINEER: ask for access to a tenant's resources.")
    async def create_access_request(
        self, info: LockboxInfo, input: CreateAccessRequestInput
    ) -> AccessRequestType:
        actor = await info.context.actor()
        row = await request_service.create(
            info.context.deps,
            actor,
            ticket_id=input.ticket_id,
            resources=input.resources,
            justification=input.justification,
            duration_seconds=input.duration_seconds,
        )
        return AccessRequestType(row=row)

    @strawberry.mutation(description="The request's engineer withdraws it while PENDING.")
    async def cancel_access_request(
        self, info: LockboxInfo, id: strawberry.ID
    ) -> AccessRequestType:
        return await _transition(info, id, Action.CANCEL)

    @strawberry.mutation(description="The request's engineer ends an open window early.")
    async def release_access(self, info: LockboxInfo, id: strawberry.ID) -> AccessRequestType:
        return await _transition(info, id, Action.RELEASE)

    @strawberry.mutation(description="A customer decider approves; the access window opens.")
    async def approve_request(
        self, info: LockboxInfo, id: strawberry.ID, reason: str | None = None
    ) -> AccessRequestType:
        return await _transition(info, id, Action.APPROVE, reason)

    @strawberry.mutation(description="A customer decider denies a pending request.")
    async def deny_request(
        self, info: LockboxInfo, id: strawberry.ID, reason: str | None = None
    ) -> AccessRequestType:
        return await _transition(info, id, Action.DENY, reason)

    @strawberry.mutation(description="A customer decider ends an open window now.")
    async def revoke_access(
        self, info: LockboxInfo, id: strawberry.ID, reason: str | None = None
    ) -> AccessRequestType:
        return await _transition(info, id, Action.REVOKE, reason)

    @strawberry.mutation(description="The gate: may the engineer do this now? Always recorded.")
    async def authorize_access(
        self, info: LockboxInfo, input: AuthorizeAccessInput
    ) -> AccessDecision:
        actor = await info.context.actor()
        event = await gate.authorize(
            info.context.deps,
            actor,
            request_id=input.request_id,
            resource=input.resource,
            action=input.action,
            detail=input.detail,
        )
        return AccessDecision(
            allowed=event.allowed, reason=event.denial_reason, event=ActivityEventType(row=event)
        )

    @strawberry.mutation(description="TENANT_ADMIN: turn lockbox on or off for the tenant.")
    async def set_lockbox_enabled(self, info: LockboxInfo, enabled: bool) -> TenantType:
        actor = await info.context.actor()
        return TenantType(row=await tenants.set_lockbox_enabled(info.context.deps, actor, enabled))

    @strawberry.mutation(description="TENANT_ADMIN: change expiry and access durations.")
    async def update_lockbox_settings(
        self, info: LockboxInfo, input: LockboxSettingsInput
    ) -> TenantType:
        actor = await info.context.actor()
        row = await tenants.update_settings(
            info.context.deps,
            actor,
            pending_request_ttl_seconds=input.pending_request_ttl_seconds,
            default_access_seconds=input.default_access_seconds,
            max_access_seconds=input.max_access_seconds,
        )
        return TenantType(row=row)


async def _wrapped(
    rows: AsyncGenerator[RowT, None], wrap: Callable[[RowT], NodeT]
) -> AsyncGenerator[NodeT, None]:
    async with aclosing(rows):
        async for row in rows:
            yield wrap(row)


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
        return _wrapped(rows, lambda row: ActivityEventType(row=row))

    @strawberry.subscription(description="Requests the caller sees, each time one changes.")
    async def access_request_updates(
        self, info: LockboxInfo
    ) -> AsyncGenerator[AccessRequestType, None]:
        actor = await info.context.actor()
        rows = streams.request_updates(info.context.deps, actor, info.context.still_authenticated)
        return _wrapped(rows, lambda row: AccessRequestType(row=row))


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None or isinstance(original, LockboxError | GraphQLError):
        return False
    log.error("unexpected error in %s", error.path, exc_info=original)
    return True


class ErrorCodes(MaskErrors):
    """Every error leaves with a code: domain errors carry theirs, unexpected
    faults are masked as INTERNAL_SERVER_ERROR, and errors of the document
    itself (syntax, validation, limits) are GRAPHQL_VALIDATION_FAILED, or
    BAD_USER_INPUT when a variable's value is wrong."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_should_mask)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if not (error.extensions or {}).get("code"):
                bad_input = error.message.startswith("Variable ") or "argument" in error.message
                code = "BAD_USER_INPUT" if bad_input else "GRAPHQL_VALIDATION_FAILED"
                error.extensions = {**(error.extensions or {}), "code": code}
        return processed


# Built once: the validation cache is keyed by the rule classes, so rules
# made afresh for every request (as the stock limiters do) never hit it.
_LIMIT_RULES: list[type[ASTValidationRule]] = [
    depth_rule(MAX_DEPTH, should_ignore=None),
    alias_rule(MAX_ALIASES),
]


class DocumentLimits(AddValidationRules):
    """Size, depth and alias limits on every document (one extension: each
    costs memory for as long as a subscription lives)."""

    def __init__(self) -> None:
        super().__init__(_LIMIT_RULES)

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = MAX_TOKENS
        yield from super().on_operation()


class LockboxSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Client errors are answers, not faults; unexpected faults are logged
        # once, with their traceback, where they are masked (_should_mask).
        return None


def build_schema() -> strawberry.Schema:
    return LockboxSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            DocumentLimits,
            # Clients repeat the same few documents: parse and validate once.
            partial(ParserCache, maxsize=256),
            partial(ValidationCache, maxsize=256),
            ErrorCodes,
        ],
    )
