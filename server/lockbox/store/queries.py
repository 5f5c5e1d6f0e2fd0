"""Every query Lockbox runs: the only module that talks to the ORM."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from pypika_tortoise.context import SqlContext
from pypika_tortoise.terms import Term, ValueWrapper
from pypika_tortoise.utils import format_alias_sql
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, RawSQL
from tortoise.transactions import in_transaction

from lockbox.domain.audit import AuditRecord, chain_hash
from lockbox.domain.ids import parse_uuid
from lockbox.domain.lifecycle import DEADLINES, TRANSITIONS, Columns, Deadline, Status
from lockbox.domain.notifications import DeliveryStatus
from lockbox.domain.policy import Role
from lockbox.store.models import (
    AccessRequest,
    ActivityEvent,
    ApiToken,
    AuditEvent,
    Notification,
    Principal,
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


async def principal_for_token(token_hash: str) -> tuple[ApiToken, Principal] | None:
    """The live token with this hash and its enabled principal, in one query."""
    token = (
        await ApiToken.filter(
            token_hash=token_hash, revoked_at__isnull=True, principal__disabled_at__isnull=True
        )
        .select_related("principal")
        .first()
    )
    return None if token is None else (token, token.principal)


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
) -> AccessRequest:
    """A new request, in the lifecycle's initial status (the column's default),
    with its request_resource rows. Call it inside the caller's transaction."""
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
        "updated_at": now,
    }
    written = {name: value for name, value in values.items() if value is not None}
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
        inside: list[str] = []
        for scope in self.scopes:
            exact = ValueWrapper(scope).get_sql(ctx)
            length = ValueWrapper(len(scope) + 1).get_sql(ctx)
            prefix = ValueWrapper(scope + "/").get_sql(ctx)
            inside.append(f'rr."path"={exact} OR substr(rr."path",1,{length})={prefix}')
        sql = (
            'NOT EXISTS(SELECT 1 FROM "request_resource" rr'
            ' WHERE rr."request_id"="access_request"."id"'
            f" AND NOT ({' OR '.join(inside) or '1=0'}))"
        )
        return format_alias_sql(sql=sql, alias=self.alias, ctx=ctx) if ctx.with_alias else sql


async def list_requests(
    *,
    now: datetime,
    statuses: Sequence[Status] | None,
    tenant_id: uuid.UUID | None,
    engineer_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
    within_scopes: Sequence[str] | None = None,
) -> list[AccessRequest]:
    """Requests in (created_at, id) order after a keyset position; with
    `within_scopes`, only those whose every resource lies within a scope."""
    query = AccessRequest.all()
    if within_scopes is not None:
        query = query.annotate(within_scopes=_WithinScopes(within_scopes)).filter(
            within_scopes=True
        )
    if statuses:
        query = query.filter(Q(*(_reads_as(status, now) for status in statuses), join_type="OR"))
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    if engineer_id is not None:
        query = query.filter(engineer_id=engineer_id)
    if after is not None:
        created, key = after
        query = query.filter(Q(created_at__gt=created) | Q(created_at=created, id__gt=key))
    return await query.order_by("created_at", "id").limit(limit)


async def count_pending(engineer_id: uuid.UUID, now: datetime) -> int:
    """How many of an engineer's requests read as PENDING at `now`."""
    return await AccessRequest.filter(
        _reads_as(Status.PENDING, now), engineer_id=engineer_id
    ).count()


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


# --- activity --------------------------------------------------------------------


async def append_activity(request: AccessRequest, **values: Any) -> ActivityEvent:
    """Record an activity event on a request locked by `lock_request`.

    The request's counter advances in memory; `save_activity_seq` writes it
    once, however many events the transaction records.
    """
    request.activity_seq += 1
    return await ActivityEvent.create(request_id=request.id, seq=request.activity_seq, **values)


async def save_activity_seq(request: AccessRequest) -> None:
    await AccessRequest.filter(id=request.id).update(activity_seq=request.activity_seq)


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


async def audit_page(tenant_id: uuid.UUID, after_seq: int, limit: int) -> list[AuditEvent]:
    return (
        await AuditEvent.filter(tenant_id=tenant_id, seq__gt=after_seq).order_by("seq").limit(limit)
    )


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


async def notification_page(
    tenant_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Notification]:
    """A tenant's outbox rows, newest first, after a keyset position
    (created_at, id) taken from the previous page."""
    query = Notification.filter(tenant_id=tenant_id)
    if after is not None:
        created, key = after
        query = query.filter(Q(created_at__lt=created) | Q(created_at=created, id__lt=key))
    return await query.order_by("-created_at", "-id").limit(limit)


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
