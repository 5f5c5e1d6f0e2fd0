"""Every query Lockbox runs: the only module that talks to the ORM."""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, TypeVar

from pypika_tortoise.context import SqlContext
from pypika_tortoise.enums import Dialects
from pypika_tortoise.terms import Criterion, Term, ValueWrapper
from pypika_tortoise.utils import format_alias_sql
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, RawSQL, ResolveContext, Subquery
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.query_utils import QueryModifier
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from lockbox.domain.audit import AuditRecord, chain_hash
from lockbox.domain.cursors import Position, Window
from lockbox.domain.evidence import ActivityRecord, activity_hash
from lockbox.domain.ids import parse_uuid
from lockbox.domain.lifecycle import (
    DEADLINES,
    INITIAL,
    INITIAL_STATUSES,
    TRANSITIONS,
    Columns,
    Deadline,
    Status,
)
from lockbox.domain.notifications import DeliveryStatus
from lockbox.domain.policy import Role
from lockbox.store.models import (
    AccessRequest,
    ActivityEvent,
    ApiToken,
    AuditEvent,
    Decision,
    Notification,
    Principal,
    RequestApproval,
    RequestResource,
    SupportTicket,
    Tenant,
    Webhook,
)


def transaction() -> AbstractAsyncContextManager[Any]:
    return in_transaction()


def savepoint() -> AbstractAsyncContextManager[Any]:
    """Inside a transaction, a savepoint: an error in the block rolls back
    the block's writes only (tortoise nests `in_transaction` so)."""
    return in_transaction()


as_uuid = parse_uuid


async def ping() -> None:
    """Fails unless the database answers and has Lockbox's tables."""
    await Tenant.all().limit(1)


# --- pages -----------------------------------------------------------------------


def _past(keys: Sequence[str], position: Position, *, greater: bool, inclusive: bool) -> Q:
    """Rows whose `keys`, compared as a tuple, lie past `position`: above it
    (`greater`) or below it; `inclusive`, the position itself too."""
    clauses: list[Q] = []
    for i, key in enumerate(keys):
        condition: dict[str, Any] = dict(zip(keys[:i], position[:i], strict=True))
        lookup = ("gt" if greater else "lt") + ("e" if inclusive and i == len(keys) - 1 else "")
        condition[f"{key}__{lookup}"] = position[i]
        clauses.append(Q(**condition))
    return Q(*clauses, join_type="OR")


ModelT = TypeVar("ModelT", bound=Model)


def walk(
    query: QuerySet[ModelT], keys: Sequence[str], window: Window, *, descending: bool = False
) -> QuerySet[ModelT]:
    """`query` along a page's walk (domain.cursors.Window), for a list
    ordered by `keys` (unique together), ascending or `descending`."""
    if window.after is not None:
        query = query.filter(
            _past(
                keys,
                window.after,
                greater=not descending,
                inclusive=window.inclusive and not window.backward,
            )
        )
    if window.before is not None:
        query = query.filter(
            _past(
                keys,
                window.before,
                greater=descending,
                inclusive=window.inclusive and window.backward,
            )
        )
    ascending = descending == window.backward
    return query.order_by(*(key if ascending else f"-{key}" for key in keys)).limit(window.limit)


# --- tenants -----------------------------------------------------------------


async def get_tenant(tenant_id: str | uuid.UUID) -> Tenant | None:
    key = as_uuid(tenant_id)
    return None if key is None else await Tenant.get_or_none(id=key)


async def get_tenants(ids: Sequence[uuid.UUID]) -> list[Tenant]:
    return await Tenant.filter(id__in=list(ids))


async def tenant_by_name(name: str) -> Tenant | None:
    return await Tenant.get_or_none(name=name)


async def list_tenants() -> list[Tenant]:
    return await Tenant.all().order_by("name")


async def create_tenant(name: str, resource_roots: list[str], lockbox_enabled: bool) -> Tenant:
    return await Tenant.create(
        name=name, resource_roots=resource_roots, lockbox_enabled=lockbox_enabled
    )


async def lock_tenant(tenant_id: uuid.UUID) -> Tenant:
    """Re-read a tenant inside a transaction, locking its row until commit.

    FOR NO KEY UPDATE on PostgreSQL: it excludes other lockers (so appends to
    the audit chain are serialised) but not the KEY SHARE lock that inserting
    a row referencing the tenant takes. With FOR UPDATE, two transactions that
    each inserted such a row (a new request) and then locked the tenant
    deadlocked on each other.
    """
    return await Tenant.select_for_update(no_key=True).get(id=tenant_id)


async def save_tenant(tenant: Tenant, fields: list[str]) -> None:
    await tenant.save(update_fields=fields)


# --- principals and tokens -----------------------------------------------------


async def create_principal(
    name: str,
    role: str,
    tenant_id: uuid.UUID | None,
    scopes: list[str],
    email: str | None,
) -> Principal:
    return await Principal.create(
        name=name, role=role, tenant_id=tenant_id, scopes=scopes, email=email
    )


async def get_principal(principal_id: str | uuid.UUID) -> Principal | None:
    key = as_uuid(principal_id)
    return None if key is None else await Principal.get_or_none(id=key)


async def get_principals(ids: Sequence[uuid.UUID]) -> list[Principal]:
    return await Principal.filter(id__in=list(ids))


async def principal_by_name(name: str) -> Principal | None:
    return await Principal.get_or_none(name=name)


async def list_principals(tenant_id: uuid.UUID | None = None) -> list[Principal]:
    query = Principal.all() if tenant_id is None else Principal.filter(tenant_id=tenant_id)
    return await query.order_by("name")


async def disable_principal(principal_id: uuid.UUID, now: datetime) -> int:
    return await Principal.filter(id=principal_id, disabled_at__isnull=True).update(disabled_at=now)


async def enable_principal(principal_id: uuid.UUID) -> int:
    return await Principal.filter(id=principal_id).update(disabled_at=None)


async def set_principal_email(principal_id: uuid.UUID, email: str | None) -> int:
    """1 when the address changed, 0 when it already was so."""
    query = Principal.filter(id=principal_id)
    if email is None:
        query = query.filter(email__isnull=False)
    else:
        query = query.filter(Q(email__isnull=True) | Q(email__not=email))
    return await query.update(email=email)


async def latest_lockouts() -> datetime | None:
    """The newest token revocation or principal disabling, if any."""
    token = await ApiToken.filter(revoked_at__isnull=False).order_by("-revoked_at").first()
    principal = await Principal.filter(disabled_at__isnull=False).order_by("-disabled_at").first()
    times = [t for t in (token and token.revoked_at, principal and principal.disabled_at) if t]
    return max(times) if times else None


async def lockouts_since(since: datetime | None) -> tuple[set[uuid.UUID], datetime | None]:
    """Principals locked out (token revoked or disabled) after `since`, and the newest time."""
    tokens = ApiToken.filter(revoked_at__isnull=False)
    principals = Principal.filter(disabled_at__isnull=False)
    if since is not None:
        tokens = tokens.filter(revoked_at__gt=since)
        principals = principals.filter(disabled_at__gt=since)
    found: set[uuid.UUID] = set()
    times: list[datetime] = [] if since is None else [since]
    for token in await tokens:
        found.add(token.principal_id)
        times.extend(t for t in (token.revoked_at,) if t is not None)
    for principal in await principals:
        found.add(principal.id)
        times.extend(t for t in (principal.disabled_at,) if t is not None)
    return found, max(times) if times else None


async def create_token(principal_id: uuid.UUID, token_hash: str, label: str) -> ApiToken:
    return await ApiToken.create(principal_id=principal_id, token_hash=token_hash, label=label)


@functools.cache
def _token_lookup_sql(dialect: str) -> str:
    """The token lookup's one statement. It runs for every call, and built by
    the ORM each time its SQL cost about three times the query itself, so it
    is written once per dialect. The hashes are one parameter (an array on
    PostgreSQL, a JSON array on SQLite), so the text is the same for any
    number of them."""
    if dialect == "postgres":
        match = 't."token_hash" = ANY($1::text[])'
    else:
        match = 't."token_hash" IN (SELECT value FROM json_each(?))'
    columns = ", ".join(f'p."{c}"' for c in Principal._meta.fields_db_projection.values())
    return (
        f'SELECT t."token_hash" AS "token_hash", t."id" AS "token_id", {columns}'
        ' FROM "api_token" t JOIN "principal" p ON p."id" = t."principal_id"'
        f' WHERE {match} AND t."revoked_at" IS NULL AND p."disabled_at" IS NULL'
    )


async def principals_for_tokens(
    token_hashes: Sequence[str],
) -> dict[str, tuple[uuid.UUID, Principal]]:
    """For each hash of a live token: the token's id and its enabled
    principal, in one query (hashes of no live token are absent)."""
    db = ApiToken._meta.db
    dialect = db.capabilities.dialect
    sql = _token_lookup_sql(dialect)
    hashes = list(token_hashes)
    _, rows = await db.execute_query(sql, [hashes if dialect == "postgres" else json.dumps(hashes)])
    token_id_field = ApiToken._meta.fields_map["id"]
    found: dict[str, tuple[uuid.UUID, Principal]] = {}
    for row in rows:
        columns = dict(row)
        token_hash = columns.pop("token_hash")
        token_id = token_id_field.to_python_value(columns.pop("token_id"))
        found[token_hash] = (token_id, Principal._init_from_db(**columns))
    return found


async def get_token(token_id: str | uuid.UUID) -> ApiToken | None:
    key = as_uuid(token_id)
    return None if key is None else await ApiToken.get_or_none(id=key)


async def list_tokens(principal_id: uuid.UUID) -> list[ApiToken]:
    return await ApiToken.filter(principal_id=principal_id).order_by("created_at")


async def revoke_token(token_id: uuid.UUID, now: datetime) -> int:
    return await ApiToken.filter(id=token_id, revoked_at__isnull=True).update(revoked_at=now)


# --- tickets -------------------------------------------------------------------


async def create_ticket(tenant_id: uuid.UUID, title: str) -> SupportTicket:
    return await SupportTicket.create(tenant_id=tenant_id, title=title)


async def get_ticket(ticket_id: str | uuid.UUID) -> SupportTicket | None:
    key = as_uuid(ticket_id)
    return None if key is None else await SupportTicket.get_or_none(id=key)


async def get_tickets(ids: Sequence[uuid.UUID]) -> list[SupportTicket]:
    return await SupportTicket.filter(id__in=list(ids))


async def list_tickets(tenant_id: uuid.UUID | None = None) -> list[SupportTicket]:
    query = SupportTicket.all() if tenant_id is None else SupportTicket.filter(tenant_id=tenant_id)
    return await query.order_by("created_at")


async def set_ticket_open(ticket_id: uuid.UUID, is_open: bool) -> int:
    """1 when the ticket changed, 0 when it already was so."""
    return await SupportTicket.filter(id=ticket_id, is_open=not is_open).update(is_open=is_open)


# --- access requests -----------------------------------------------------------


async def insert_request(
    *,
    tenant_id: uuid.UUID,
    ticket_id: uuid.UUID,
    engineer_id: uuid.UUID,
    resources: list[str],
    justification: str,
    duration_seconds: int,
    created_at: datetime,
    expires_at: datetime,
    status: Status = INITIAL,
    required_approvals: int = 1,
    emergency: bool = False,
) -> AccessRequest:
    """A new request, in the lifecycle's initial status (`status`: PENDING, or
    AWAITING_PROVIDER_APPROVAL), with its request_resource rows. Call it inside
    the caller's transaction."""
    if status not in INITIAL_STATUSES:  # any later status is a transition's to write
        raise ValueError(f"a new request cannot start {status.value}")
    request = await AccessRequest.create(
        tenant_id=tenant_id,
        ticket_id=ticket_id,
        engineer_id=engineer_id,
        resources=resources,
        justification=justification,
        duration_seconds=duration_seconds,
        created_at=created_at,
        updated_at=created_at,
        expires_at=expires_at,
        status=status,
        required_approvals=required_approvals,
        emergency=emergency,
        needs_provider_approval=status is Status.AWAITING_PROVIDER_APPROVAL,
    )
    await RequestResource.bulk_create(
        [RequestResource(request_id=request.id, path=path) for path in dict.fromkeys(resources)]
    )
    return request


async def get_request(request_id: str | uuid.UUID) -> AccessRequest | None:
    key = as_uuid(request_id)
    return None if key is None else await AccessRequest.get_or_none(id=key)


async def get_requests(ids: Sequence[uuid.UUID]) -> list[AccessRequest]:
    return await AccessRequest.filter(id__in=list(ids))


# Where a UUID may name an object, most often found first.
_UUID_KEYED: tuple[type[AccessRequest | Principal | Tenant | SupportTicket], ...] = (
    AccessRequest,
    Principal,
    Tenant,
    SupportTicket,
)


async def objects_by_uuid(
    keys: Sequence[uuid.UUID],
) -> dict[uuid.UUID, AccessRequest | Principal | Tenant | SupportTicket]:
    """The requests, principals, tenants and tickets with these keys: one
    statement per table, in a fixed order, each only for keys not found yet
    (random UUIDs never repeat across tables)."""
    found: dict[uuid.UUID, AccessRequest | Principal | Tenant | SupportTicket] = {}
    missing = set(keys)
    for model in _UUID_KEYED:
        if not missing:
            break
        for row in await model.filter(id__in=list(missing)):
            found[row.id] = row
            missing.discard(row.id)
    return found


async def lock_request(request_id: uuid.UUID) -> AccessRequest | None:
    """Read a request inside a transaction, locking its row until commit.

    On PostgreSQL this waits for any transaction changing the row, so the
    status read is the latest committed one. SQLite runs one transaction at a
    time, which gives the same guarantee.
    """
    return await AccessRequest.select_for_update().get_or_none(id=request_id)


async def transition_request(
    request: AccessRequest, to_status: Status, columns: Columns, *, now: datetime
) -> bool:
    """Move a request to `to_status` and write `columns`, only if its stored
    status is still the one `request` was read with. On success `request`
    holds the new values too. The only write of a request's status."""
    values: dict[str, Any] = {
        "decided_at": columns.decided_at,
        "decided_by_id": as_uuid(columns.decided_by_id) if columns.decided_by_id else None,
        "decision_reason": columns.decision_reason,
        "access_starts_at": columns.access_starts_at,
        "access_ends_at": columns.access_ends_at,
        "granted_resources": None
        if columns.granted_resources is None
        else list(columns.granted_resources),
        "expires_at": columns.expires_at,
        "provider_approved_at": columns.provider_approved_at,
        "provider_approved_by_id": as_uuid(columns.provider_approved_by_id)
        if columns.provider_approved_by_id
        else None,
        "updated_at": now,
    }
    written = {name: value for name, value in values.items() if value is not None}
    if columns.provider_approved_at is not None:
        written["needs_provider_approval"] = False  # the customer sees it from now on
    updated = await AccessRequest.filter(id=request.id, status=request.status).update(
        status=to_status, **written
    )
    if updated != 1:
        return False
    request.update_from_dict(written)
    request.status = to_status
    return True


def _reads_as(status: Status, now: datetime) -> Q:
    """SQL for "reads as `status` at `now`", built from the lifecycle's deadlines
    (the same rule as `lifecycle.effective_status`)."""
    own = Q(status=status)
    for deadline in DEADLINES:
        if deadline.status is status:
            own &= _compare(deadline.column, "isnull", True) | _compare(deadline.column, "gt", now)
    reached = [
        _due(deadline, now)
        for deadline in DEADLINES
        if TRANSITIONS[deadline.status][deadline.action].target is status
    ]
    return Q(own, *reached, join_type="OR")


def _due(deadline: Deadline, now: datetime) -> Q:
    return Q(status=deadline.status) & _compare(deadline.column, "lte", now)


def _compare(column: str, lookup: str, value: Any) -> Q:
    condition: dict[str, Any] = {f"{column}__{lookup}": value}
    return Q(**condition)


class _WithinScopes(Term):
    """SQL for "every resource of the request lies within one of `scopes`",
    by whole segments: a scope `s` covers `s` and `s/...`, never `s2`.

    `NOT EXISTS` a request_resource row (found through its request_id index)
    outside every scope. The prefix test is `substr(path, 1, len(s) + 1) =
    s || '/'`, not LIKE: it needs no escaping and is case-sensitive on SQLite
    too (SQLite's LIKE ignores ASCII case). Scopes are bound parameters.
    """

    is_aggregate = False

    def __init__(self, scopes: Sequence[str]) -> None:
        super().__init__()
        self.scopes = tuple(scopes)

    def get_sql(self, ctx: SqlContext) -> str:
        if ctx.with_alias:
            # The select list: every row the WHERE clause let through is
            # within scope. Repeating the subquery there made PostgreSQL
            # scan request_resource a second time (25 ms instead of 15 at
            # 20,000 requests, bench.approver_scope). Checked before any
            # scope is bound: a bound parameter would count without a place.
            return format_alias_sql(sql="TRUE", alias=self.alias, ctx=ctx)
        inside: list[str] = []
        for scope in self.scopes:
            exact = ValueWrapper(scope).get_sql(ctx)
            length = ValueWrapper(len(scope) + 1).get_sql(ctx)
            prefix = ValueWrapper(scope + "/").get_sql(ctx)
            inside.append(f'rr."path"={exact} OR substr(rr."path",1,{length})={prefix}')
        return (
            'NOT EXISTS(SELECT 1 FROM "request_resource" rr'
            ' WHERE rr."request_id"="access_request"."id"'
            f" AND NOT ({' OR '.join(inside) or '1=0'}))"
        )


class _TouchesScopes(Criterion):
    """SQL for "some resource of the request lies within one of `scopes`":
    `"access_request"."id" IN (SELECT request_id ... WHERE path in range)`.

    Implied by _WithinScopes (every request has at least one resource), it
    adds nothing to the answer, but lets the planner start from the few
    request_resource rows in scope, through the path index (migration 0007),
    instead of walking the tenant's requests in order and testing each: at
    20,000 requests with the newest 50 in scope, 17 ms became 1 ms on
    PostgreSQL (bench.approver_scope). SQLite, without statistics, always
    walks, checking each request against a list of the in-scope requests
    built once: 5 ms instead of 20 there, but 15 instead of 1 when the
    scopes hold nearly every request.

    A scope `s` covers `s` and `s/...`: the paths from `s/` up to, not
    including, `s0` ('0' follows '/'), in byte order. SQLite's default
    (BINARY) collation is byte order; PostgreSQL's depends on the database,
    so comparisons there say COLLATE "C", as the index does.

    On PostgreSQL the statement also carries a digest of the scopes in a
    comment, so that each set of scopes has its own prepared statement. The
    best plan depends on how many resources the scopes hold, and once a
    statement has run a few times PostgreSQL may keep one generic plan for
    all its parameters: after narrow scopes had run ten times, a generic plan
    starting from the in-scope resources took 70 ms for scopes holding all
    but 50 of 20,000 requests (7 ms walking in order instead)."""

    def __init__(self, scopes: Sequence[str]) -> None:
        super().__init__()
        self.scopes = tuple(scopes)

    def get_sql(self, ctx: SqlContext) -> str:
        path = 'rs."path"'
        digest = ""
        if ctx.dialect is Dialects.POSTGRESQL:
            path += ' COLLATE "C"'
            # Hex only: nothing of a scope's text reaches the SQL.
            named = hashlib.sha256("\0".join(self.scopes).encode()).hexdigest()[:32]
            digest = f"/* scopes {named} */ "
        inside: list[str] = []
        for scope in self.scopes:
            exact = ValueWrapper(scope).get_sql(ctx)
            low = ValueWrapper(scope + "/").get_sql(ctx)
            high = ValueWrapper(scope + "0").get_sql(ctx)
            inside.append(f"{path}={exact} OR ({path}>={low} AND {path}<{high})")
        return (
            f'"access_request"."id" IN ({digest}SELECT rs."request_id" FROM "request_resource" rs'
            f" WHERE {' OR '.join(inside) or '1=0'})"
        )


class _Where(Q):
    """A filter given as SQL (a Criterion), joined to the query's WHERE as it
    is: an annotation filtered `=TRUE` would hide an `IN (SELECT ...)` from
    PostgreSQL, which turns such a subquery into a join only at the top
    level of the WHERE clause."""

    __slots__ = ("criterion",)

    def __init__(self, criterion: Criterion) -> None:
        super().__init__()
        self.criterion = criterion

    def resolve(self, resolve_context: ResolveContext) -> QueryModifier:
        return QueryModifier(where_criterion=self.criterion)


async def list_requests(
    *,
    now: datetime,
    statuses: Sequence[Status] | None,
    tenant_id: uuid.UUID | None,
    engineer_id: uuid.UUID | None,
    window: Window,
    within_scopes: Sequence[str] | None = None,
    customer_visible_only: bool = False,
    emergency_unreviewed: bool = False,
) -> list[AccessRequest]:
    """Requests along a walk of the (created_at, id) order; with
    `within_scopes`, only those whose every resource lies within a scope;
    with `customer_visible_only`, none the provider has yet to approve (or
    denied); with `emergency_unreviewed`, only break-glass requests that no
    decider has reviewed yet."""
    query = AccessRequest.all()
    if within_scopes is not None:
        query = query.annotate(within_scopes=_WithinScopes(within_scopes)).filter(
            _Where(_TouchesScopes(within_scopes)), within_scopes=True
        )
    if customer_visible_only:
        query = query.filter(needs_provider_approval=False)
    if emergency_unreviewed:
        query = query.filter(emergency=True, emergency_reviewed_at__isnull=True)
    if statuses:
        query = query.filter(Q(*(_reads_as(status, now) for status in statuses), join_type="OR"))
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    if engineer_id is not None:
        query = query.filter(engineer_id=engineer_id)
    return await walk(query, ("created_at", "id"), window)


async def count_pending(engineer_id: uuid.UUID, now: datetime) -> int:
    """How many of an engineer's requests read as PENDING (or awaiting the
    provider's approval) at `now`."""
    waiting = _reads_as(Status.PENDING, now) | _reads_as(Status.AWAITING_PROVIDER_APPROVAL, now)
    return await AccessRequest.filter(waiting, engineer_id=engineer_id).count()


async def requests_changed_since(
    since: datetime,
    *,
    tenant_id: uuid.UUID | None,
    engineer_id: uuid.UUID | None,
    limit: int = 1000,
) -> list[AccessRequest]:
    """Requests created or changed after `since`, oldest change first."""
    query = AccessRequest.filter(updated_at__gt=since)
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    if engineer_id is not None:
        query = query.filter(engineer_id=engineer_id)
    return await query.order_by("updated_at").limit(limit)


async def requests_due(now: datetime, limit: int) -> list[AccessRequest]:
    """Requests whose time-based change (EXPIRED or COMPLETED) is not yet recorded."""
    due = Q(*(_due(deadline, now) for deadline in DEADLINES), join_type="OR")
    return await AccessRequest.filter(due).order_by("created_at").limit(limit)


async def record_emergency_review(
    request: AccessRequest,
    *,
    reviewer_id: uuid.UUID,
    at: datetime,
    accepted: bool,
    note: str | None,
) -> bool:
    """Record the review of a break-glass request, once: False when another
    decider's review got there first."""
    values: dict[str, Any] = {
        "emergency_reviewed_at": at,
        "emergency_reviewed_by_id": reviewer_id,
        "emergency_review_accepted": accepted,
        "emergency_review_note": note,
    }
    updated = await AccessRequest.filter(
        id=request.id, emergency=True, emergency_reviewed_at__isnull=True
    ).update(updated_at=at, **values)
    if updated != 1:
        return False
    request.update_from_dict({**values, "updated_at": at})
    return True


# --- approvals --------------------------------------------------------------------


async def insert_approval(
    request_id: uuid.UUID,
    approver_id: uuid.UUID,
    *,
    at: datetime,
    reason: str | None,
    duration_seconds: int | None,
    resources: list[str] | None,
) -> RequestApproval:
    """One decider's approval, in the caller's transaction (on the locked request)."""
    return await RequestApproval.create(
        request_id=request_id,
        approver_id=approver_id,
        at=at,
        reason=reason,
        duration_seconds=duration_seconds,
        resources=resources,
    )


async def approvals_of(request_ids: Sequence[uuid.UUID]) -> list[RequestApproval]:
    """The approvals of some requests, each request's in the order given."""
    if not request_ids:
        return []
    return await RequestApproval.filter(request_id__in=list(request_ids)).order_by("id")


# --- activity --------------------------------------------------------------------


async def append_activity(
    request: AccessRequest,
    *,
    at: datetime,
    engineer_id: uuid.UUID,
    resource: str,
    action: str,
    allowed: bool,
    denial_reason: str | None,
    detail: Any,
    key: bytes | None = None,
) -> ActivityEvent:
    """Record an activity event on a request locked by `lock_request`.

    The request's counter and activity chain head advance in memory (the
    head was read with the row lock; the hash is computed here and stored in
    the same insert); `save_activity_seq` writes both once, however many
    events the transaction records. With `key` the link is an HMAC under it.
    """
    seq = request.activity_seq + 1
    record = ActivityRecord(
        request_id=str(request.id),
        seq=seq,
        at=at,
        engineer_id=str(engineer_id),
        resource=resource,
        action=action,
        allowed=allowed,
        denial_reason=denial_reason,
        detail=detail,
    )
    prev = request.activity_head
    link = activity_hash(prev, record, key)
    event = await ActivityEvent.create(
        request_id=request.id,
        seq=seq,
        at=at,
        engineer_id=engineer_id,
        resource=resource,
        action=action,
        allowed=allowed,
        denial_reason=denial_reason,
        detail=detail,
        prev_hash=prev,
        hash=link,
    )
    request.activity_seq, request.activity_head = seq, link
    return event


async def save_activity_seq(request: AccessRequest) -> None:
    await AccessRequest.filter(id=request.id).update(
        activity_seq=request.activity_seq, activity_head=request.activity_head
    )


async def activity_spans(spans: Sequence[tuple[uuid.UUID, int, int]]) -> list[ActivityEvent]:
    """The activity of several requests in one statement: for each (request,
    low, high), its events numbered low to high, in no particular order."""
    if not spans:
        return []
    wanted = [Q(request_id=key, seq__gte=low, seq__lte=high) for key, low, high in spans]
    return await ActivityEvent.filter(Q(*wanted, join_type="OR"))


async def get_activity_events(ids: Sequence[int]) -> list[ActivityEvent]:
    return await ActivityEvent.filter(id__in=list(ids))


async def activity_after(request_id: uuid.UUID, after_seq: int, limit: int) -> list[ActivityEvent]:
    return (
        await ActivityEvent.filter(request_id=request_id, seq__gt=after_seq)
        .order_by("seq")
        .limit(limit)
    )


# --- outbox ----------------------------------------------------------------------


async def deciders_with_email(tenant_id: uuid.UUID) -> list[Principal]:
    """The tenant's enabled admins and approvers that have an address (the
    policy then picks those who decide a given request)."""
    return await Principal.filter(
        tenant_id=tenant_id,
        role__in=[Role.TENANT_ADMIN, Role.APPROVER],
        email__isnull=False,
        disabled_at__isnull=True,
    ).order_by("name")


async def enabled_webhooks(tenant_ids: Sequence[uuid.UUID]) -> list[Webhook]:
    return await Webhook.filter(tenant_id__in=list(tenant_ids), enabled=True).order_by("created_at")


async def insert_notifications(rows: list[Notification]) -> None:
    """Write outbox rows, in the caller's transaction.

    A webhook deleted (and committed) after the caller read it fails the
    insert's foreign key; its deliveries are dropped rather than failing the
    change that caused them (a gate batch does not lock the tenant). The
    insert runs in a savepoint, so the retry happens in a clean state.
    """
    for _ in range(2):
        if not rows:
            return
        try:
            async with in_transaction():
                await Notification.bulk_create(rows)
            return
        except IntegrityError:
            webhook_ids = {row.webhook_id for row in rows if row.webhook_id is not None}
            alive = {w.id for w in await Webhook.filter(id__in=list(webhook_ids))}
            rows = [row for row in rows if row.webhook_id is None or row.webhook_id in alive]
    await Notification.bulk_create(rows)


def _claimable(now: datetime) -> Q:
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    )


async def claim_notifications(now: datetime, until: datetime, limit: int) -> list[Notification]:
    """Claim up to `limit` due deliveries until `until`, oldest due first.

    SKIP LOCKED lets several processes claim side by side on PostgreSQL
    without waiting on each other; the claim itself is the conditional
    update, so a row is never claimed twice while its claim lasts.
    """
    async with in_transaction():
        due = (
            await Notification.filter(_claimable(now))
            .order_by("next_attempt_at")
            .limit(limit)
            .select_for_update(skip_locked=True)
        )
        ids = [row.id for row in due]
        if ids:
            await Notification.filter(_claimable(now), id__in=ids).update(claimed_until=until)
    claimed = await Notification.filter(id__in=ids, claimed_until=until) if ids else []
    return sorted(claimed, key=lambda row: row.next_attempt_at)


async def pending_notifications_by_channel() -> dict[str, int]:
    """How many deliveries wait to be sent (due or not yet), per channel
    (the outbox's depth, for metrics)."""
    rows = await (
        Notification.filter(status=DeliveryStatus.PENDING)
        .group_by("channel")
        .annotate(pending=Count("id"))
        .values_list("channel", "pending")
    )
    return {str(getattr(channel, "value", channel)): int(count) for channel, count in rows}


async def get_webhooks(ids: Sequence[uuid.UUID]) -> list[Webhook]:
    return await Webhook.filter(id__in=list(ids))


async def record_delivery(
    row: Notification,
    *,
    status: DeliveryStatus,
    now: datetime,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
) -> bool:
    """Record one attempt on a row this worker claimed: SENT, PENDING again
    (a retry at `next_attempt_at`) or FAILED. False when the claim had run
    out and another worker has the row now."""
    updated = await Notification.filter(id=row.id, claimed_until=row.claimed_until).update(
        status=status,
        attempts=row.attempts + 1,
        claimed_until=None,
        last_error=error,
        sent_at=now if status is DeliveryStatus.SENT else None,
        next_attempt_at=next_attempt_at or row.next_attempt_at,
    )
    if row.webhook_id is not None:
        await Webhook.filter(id=row.webhook_id).update(last_delivery_at=now, last_error=error)
    return updated == 1


# --- audit -----------------------------------------------------------------------


async def append_audit(
    tenant_id: uuid.UUID,
    *,
    at: datetime,
    action: str,
    actor_id: uuid.UUID | None,
    request_id: uuid.UUID | None,
    detail: dict[str, Any],
    key: bytes | None = None,
) -> AuditEvent:
    """Append to the tenant's hash chain. Call inside the change's transaction.

    Locking the tenant row serialises appends to one chain across processes.
    With `key` (LOCKBOX_AUDIT_KEY) the link is an HMAC under it.
    """
    tenant = await lock_tenant(tenant_id)
    record = AuditRecord(
        tenant_id=str(tenant_id),
        seq=tenant.audit_seq + 1,
        at=at,
        action=action,
        actor_id=None if actor_id is None else str(actor_id),
        request_id=None if request_id is None else str(request_id),
        detail=detail,
    )
    digest = chain_hash(tenant.audit_head, record, key)
    event = await AuditEvent.create(
        tenant_id=tenant_id,
        seq=record.seq,
        at=at,
        action=action,
        actor_id=actor_id,
        request_id=request_id,
        detail=detail,
        prev_hash=tenant.audit_head,
        hash=digest,
    )
    await Tenant.filter(id=tenant_id).update(audit_seq=record.seq, audit_head=digest)
    return event


async def audit_page(
    tenant_id: uuid.UUID,
    window: Window,
    *,
    request_id: uuid.UUID | None = None,
    actions: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEvent]:
    """A tenant's audit events along a walk of the seq order, filtered (each
    filter has an index starting with the tenant: see AuditEvent.Meta).

    The events of requests the provider has not approved (or denied) are
    left out: for the customer, who reads this, such a request does not exist."""
    hidden = AccessRequest.filter(tenant_id=tenant_id, needs_provider_approval=True)
    query = AuditEvent.filter(
        Q(request_id__isnull=True) | ~Q(request_id__in=Subquery(hidden.values("id"))),
        tenant_id=tenant_id,
    )
    if request_id is not None:
        query = query.filter(request_id=request_id)
    if actions is not None:
        query = query.filter(action__in=list(actions))
    if since is not None:
        query = query.filter(at__gte=since)
    if until is not None:
        query = query.filter(at__lt=until)
    return await walk(query, ("seq",), window)


async def get_audit_events(ids: Sequence[int]) -> list[AuditEvent]:
    return await AuditEvent.filter(id__in=list(ids))


async def audit_of_request(tenant_id: uuid.UUID, request_id: uuid.UUID) -> list[AuditEvent]:
    """Every audit event about one request, in seq order."""
    return await AuditEvent.filter(tenant_id=tenant_id, request_id=request_id).order_by("seq")


_EXPORT_COLUMNS = (
    "id",
    "tenant_id",
    "seq",
    "at",
    "action",
    "actor_id",
    "request_id",
    "detail",
    "prev_hash",
    "hash",
)


async def audit_export_rows(
    tenant_id: uuid.UUID,
    after_seq: int,
    limit: int,
    *,
    since: datetime | None,
    until: datetime | None,
) -> list[dict[str, Any]]:
    """A batch of a tenant's audit events in chain order, as plain values
    (no model objects: an export walks every event)."""
    query = AuditEvent.filter(tenant_id=tenant_id, seq__gt=after_seq)
    if since is not None:
        query = query.filter(at__gte=since)
    if until is not None:
        query = query.filter(at__lt=until)
    return list(await query.order_by("seq").limit(limit).values(*_EXPORT_COLUMNS))


# --- decisions and the activity chain, for verification -------------------------


async def insert_decision(
    *,
    tenant_id: uuid.UUID,
    request_id: uuid.UUID,
    action: str,
    decider_id: uuid.UUID,
    at: datetime,
    payload: str,
    signature: str | None,
    key_id: str | None,
) -> Decision:
    return await Decision.create(
        tenant_id=tenant_id,
        request_id=request_id,
        action=action,
        decider_id=decider_id,
        at=at,
        payload=payload,
        signature=signature,
        key_id=key_id,
    )


async def decisions_of(request_id: uuid.UUID) -> list[Decision]:
    return await Decision.filter(request_id=request_id).order_by("id")


async def decisions_of_requests(request_ids: Sequence[uuid.UUID]) -> list[Decision]:
    """The decisions on several requests, in one statement, oldest first."""
    if not request_ids:
        return []
    return await Decision.filter(request_id__in=list(request_ids)).order_by("id")


async def decisions_after(tenant_id: uuid.UUID, after_id: int, limit: int) -> list[Decision]:
    return await Decision.filter(tenant_id=tenant_id, id__gt=after_id).order_by("id").limit(limit)


async def activity_of(request_id: uuid.UUID) -> list[ActivityEvent]:
    return await ActivityEvent.filter(request_id=request_id).order_by("seq")


async def activity_heads(
    tenant_id: uuid.UUID, after_id: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    """A tenant's requests by id: (id, activity_seq, activity_head)."""
    query = AccessRequest.filter(tenant_id=tenant_id)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    return list(
        await query.order_by("id").limit(limit).values("id", "activity_seq", "activity_head")
    )


async def activity_batch(
    request_ids: Sequence[uuid.UUID], after: tuple[uuid.UUID, int] | None, limit: int
) -> list[ActivityEvent]:
    """Activity of some requests in (request, seq) order after a keyset position."""
    query = ActivityEvent.filter(request_id__in=list(request_ids))
    if after is not None:
        request_id, seq = after
        query = query.filter(Q(request_id__gt=request_id) | Q(request_id=request_id, seq__gt=seq))
    return await query.order_by("request_id", "seq").limit(limit)


async def audit_chain(tenant_id: uuid.UUID, after_id: int, limit: int) -> list[AuditEvent]:
    """A tenant's audit events in the order they were written (by row id)."""
    return await AuditEvent.filter(tenant_id=tenant_id, id__gt=after_id).order_by("id").limit(limit)


_AUDIT_COLUMNS = ("seq", "at", "action", "actor_id", "request_id", "detail", "prev_hash", "hash")
_REQUEST_COLUMNS = (
    "id",
    "engineer_id",
    "ticket_id",
    "status",
    "resources",
    "duration_seconds",
    "decided_by_id",
    "access_starts_at",
    "access_ends_at",
    "granted_resources",
)


def _as_text(columns: Sequence[str]) -> dict[str, Any]:
    return {column: RawSQL(f'CAST("{column}" AS TEXT)') for column in columns}


async def audit_rows(tenant_id: uuid.UUID, after_id: int, limit: int) -> list[dict[str, Any]]:
    """A tenant's audit rows in the order they were written (by row id), each
    column but the id as the database's text (or None), unparsed: `audit
    verify` judges every value itself, so a garbage one is a broken event
    rather than a crash in the ORM."""
    text = _as_text(_AUDIT_COLUMNS)
    rows = (
        await AuditEvent.filter(tenant_id=tenant_id, id__gt=after_id)
        .order_by("id")
        .limit(limit)
        .annotate(**{f"{name}_text": value for name, value in text.items()})
        .values("id", *(f"{name}_text" for name in text))
    )
    return [
        {"id": row["id"], **{name: row[f"{name}_text"] for name in _AUDIT_COLUMNS}} for row in rows
    ]


async def audited_request_rows(
    tenant_id: uuid.UUID, after_id: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    """A tenant's request rows by id, the columns the audit chain vouches for,
    as text (or None), unparsed (as `audit_rows`)."""
    text = _as_text(_REQUEST_COLUMNS)
    query = AccessRequest.filter(tenant_id=tenant_id)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    rows = (
        await query.order_by("id")
        .limit(limit)
        .annotate(**{f"{name}_text": value for name, value in text.items()})
        .values("id", *(f"{name}_text" for name in text))
    )
    return [{name: row[f"{name}_text"] for name in _REQUEST_COLUMNS} for row in rows]


# --- notification log ---


async def notification_page(tenant_id: uuid.UUID, window: Window) -> list[Notification]:
    """A tenant's outbox rows along a walk of the newest-first (created_at, id) order."""
    query = Notification.filter(tenant_id=tenant_id)
    return await walk(query, ("created_at", "id"), window, descending=True)


async def webhook_urls(tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The URLs of a tenant's webhooks, by id (deleted ones are absent)."""
    if not ids:
        return {}
    rows = await Webhook.filter(tenant_id=tenant_id, id__in=list(ids))
    return {row.id: row.url for row in rows}


# --- webhooks --------------------------------------------------------------------


async def create_webhook(
    tenant_id: uuid.UUID, *, url: str, events: list[str], secret: str, created_at: datetime
) -> Webhook:
    return await Webhook.create(
        tenant_id=tenant_id, url=url, events=events, secret=secret, created_at=created_at
    )


async def count_webhooks(tenant_id: uuid.UUID) -> int:
    return await Webhook.filter(tenant_id=tenant_id).count()


async def list_webhooks(tenant_id: uuid.UUID) -> list[Webhook]:
    return await Webhook.filter(tenant_id=tenant_id).order_by("created_at", "id")


async def lock_webhook(tenant_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook | None:
    """A tenant's webhook, locked until the transaction ends; None when it
    does not exist or belongs to another tenant."""
    return await Webhook.filter(id=webhook_id, tenant_id=tenant_id).select_for_update().first()


async def fail_pending_deliveries(webhook_id: uuid.UUID, error: str) -> int:
    """Give up the webhook's deliveries that are still to be sent, claimed
    ones included (the claim is dropped, so a worker sending one right now
    cannot record it afterwards). How many."""
    return await Notification.filter(webhook_id=webhook_id, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, claimed_until=None, last_error=error
    )


async def delete_webhook(webhook_id: uuid.UUID) -> int:
    return await Webhook.filter(id=webhook_id).delete()
