"""Reading and verifying the audit chain."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lockbox.domain import evidence, policy
from lockbox.domain.audit import (
    Anchor,
    AuditRecord,
    ChainBreak,
    MalformedEvent,
    RequestLedger,
    RequestMismatch,
    RequestRow,
    StoredAuditEvent,
    decided_fields,
    export_line,
    verify_chain,
)
from lockbox.domain.cursors import Window
from lockbox.domain.errors import Forbidden
from lockbox.domain.policy import Actor
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, AuditEvent, Tenant

VERIFY_BATCH = 1000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """auditLog's filters: one request's events, some actions, `since` (at or
    after) and `until` (before). `nothing`: no event can match (a request id
    that is not an id)."""

    request_id: uuid.UUID | None = None
    actions: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    nothing: bool = False

    @classmethod
    def of(
        cls,
        *,
        request_id: str | None,
        actions: Sequence[str] | None,
        since: datetime | None,
        until: datetime | None,
    ) -> AuditFilter:
        key = None if request_id is None else store.as_uuid(request_id)
        return cls(
            request_id=key,
            actions=None if actions is None else tuple(dict.fromkeys(actions)),
            since=_utc(since),
            until=_utc(until),
            nothing=request_id is not None and key is None,
        )


def _utc(moment: datetime | None) -> datetime | None:
    """A filter's time; one without an offset is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


async def page(actor: Actor, window: Window, only: AuditFilter | None = None) -> list[AuditEvent]:
    if not policy.can_read_audit(actor) or actor.tenant_id is None:
        raise Forbidden(f"{actor.name} may not read the audit log")
    only = only or AuditFilter()
    if only.nothing:
        return []
    return await store.audit_page(
        uuid.UUID(actor.tenant_id),
        window,
        request_id=only.request_id,
        actions=only.actions,
        since=only.since,
        until=only.until,
    )


def stored_event(event: AuditEvent) -> StoredAuditEvent:
    return StoredAuditEvent(
        id=str(event.id),
        record=AuditRecord(
            tenant_id=str(event.tenant_id),
            seq=event.seq,
            at=event.at,
            action=event.action,
            actor_id=None if event.actor_id is None else str(event.actor_id),
            request_id=None if event.request_id is None else str(event.request_id),
            detail=event.detail,
        ),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def decided_fields_of(request: AccessRequest) -> dict[str, Any]:
    """What a request event carries of its row (see `domain.audit.decided_fields`)."""
    return decided_fields(
        resources=request.resources,
        duration_seconds=request.duration_seconds,
        decided_by=None if request.decided_by_id is None else str(request.decided_by_id),
        access_starts_at=request.access_starts_at,
        access_ends_at=request.access_ends_at,
        granted_resources=request.granted_resources,
    )


def content_hash_of(request: AccessRequest) -> str:
    """The digest of what the engineer asked for (`domain.evidence.request_content`)."""
    return evidence.digest(
        evidence.request_content(
            request_id=str(request.id),
            tenant_id=str(request.tenant_id),
            ticket_id=str(request.ticket_id),
            engineer_id=str(request.engineer_id),
            resources=request.resources,
            justification=request.justification,
            duration_seconds=request.duration_seconds,
            created_at=request.created_at,
        )
    )


def decision_payload_of(
    request: AccessRequest, decider_id: str, action: str, at: datetime
) -> dict[str, Any]:
    """A decision on `request` as it stands after the decision, to be signed:
    the resources granted (as asked until an approval narrows them)."""
    granted = request.granted_resources
    return evidence.decision_payload(
        request_id=str(request.id),
        tenant_id=str(request.tenant_id),
        decider_id=decider_id,
        action=action,
        resources=request.resources if granted is None else granted,
        access_starts_at=request.access_starts_at,
        access_ends_at=request.access_ends_at,
        at=at,
        content_hash=content_hash_of(request),
    )


def activity_head_of(request: AccessRequest) -> dict[str, Any]:
    """The head of the request's activity chain, as its final audit event records it."""
    return evidence.ActivityHead(request.activity_seq, request.activity_head).as_json()


# --- reading stored rows without trusting them ----------------------------------------


class _Garbage(ValueError):
    pass


def _moment(text: str | None, name: str) -> datetime:
    if text is None:
        raise _Garbage(f"{name} is null")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Garbage(f"{name} is not a date-time: {_clip(text)}") from None
    # As the ORM reads it: a naive value is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _optional_moment(text: str | None, name: str) -> datetime | None:
    return None if text is None else _moment(text, name)


def _uuid(text: str | None, name: str) -> str:
    if text is None:
        raise _Garbage(f"{name} is null")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise _Garbage(f"{name} is not an id: {_clip(text)}") from None


def _optional_uuid(text: str | None, name: str) -> str | None:
    return None if text is None else _uuid(text, name)


def _whole(text: str | None, name: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise _Garbage(f"{name} is not a whole number: {_clip(text)}") from None


def _json(text: str | None, name: str) -> Any:
    if text is None:
        raise _Garbage(f"{name} is null")
    try:
        return json.loads(text)
    except ValueError:
        raise _Garbage(f"{name} is not JSON: {_clip(text)}") from None


def _text(value: str | None, name: str) -> str:
    if value is None:
        raise _Garbage(f"{name} is null")
    return value


def _clip(text: str | None) -> str:
    shown = json.dumps(text, ensure_ascii=True)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def audit_row(row: dict[str, Any], tenant_id: uuid.UUID) -> StoredAuditEvent | MalformedEvent:
    """One stored audit row (as `store.audit_rows` reads it), or what is wrong with it."""
    event_id = str(row["id"])
    seq: int | None = None
    try:
        seq = _whole(row["seq"], "seq")
        detail = _json(row["detail"], "detail")
        if not isinstance(detail, dict):
            raise _Garbage(f"detail is not a JSON object: {_clip(row['detail'])}")
        record = AuditRecord(
            tenant_id=str(tenant_id),
            seq=seq,
            at=_moment(row["at"], "at"),
            action=_text(row["action"], "action"),
            actor_id=_optional_uuid(row["actor_id"], "actor_id"),
            request_id=_optional_uuid(row["request_id"], "request_id"),
            detail=detail,
        )
        return StoredAuditEvent(
            id=event_id,
            record=record,
            prev_hash=row["prev_hash"],
            hash=_text(row["hash"], "hash"),
        )
    except _Garbage as exc:
        return MalformedEvent(event_id, seq, str(exc))


def request_row(row: dict[str, Any]) -> RequestRow | RequestMismatch:
    """One stored request row (as `store.audited_request_rows` reads it)."""
    request_id = str(row["id"])
    try:
        resources = _json(row["resources"], "resources")
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise _Garbage(f"resources is not a list of paths: {_clip(row['resources'])}")
        granted = _granted(row.get("granted_resources"))
        return RequestRow(
            id=_uuid(row["id"], "id"),
            engineer_id=_uuid(row["engineer_id"], "engineer_id"),
            ticket_id=_uuid(row["ticket_id"], "ticket_id"),
            status=_text(row["status"], "status"),
            fields=decided_fields(
                resources=resources,
                duration_seconds=_whole(row["duration_seconds"], "duration_seconds"),
                decided_by=_optional_uuid(row["decided_by_id"], "decided_by_id"),
                access_starts_at=_optional_moment(row["access_starts_at"], "access_starts_at"),
                access_ends_at=_optional_moment(row["access_ends_at"], "access_ends_at"),
                granted_resources=granted,
            ),
        )
    except _Garbage as exc:
        return RequestMismatch(request_id, None, f"malformed row: {exc}")


def _granted(text: str | None) -> list[str] | None:
    """A row's granted_resources: null until approved, else a list of paths
    (a JSON null stored as text reads as null too)."""
    value = None if text is None else _json(text, "granted_resources")
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(r, str) for r in value)
    ):
        raise _Garbage(f"granted_resources is not a list of paths: {_clip(text)}")
    return value


# --- verifying -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantVerdict:
    tenant: Tenant
    events: int
    broken: ChainBreak | None
    # Request rows that say something the (intact) chain does not.
    requests: list[RequestMismatch] = field(default_factory=list)
    # The chain's events, when it is intact (for the checks that build on it).
    chain: list[StoredAuditEvent] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.broken is None and not self.requests


async def _events(tenant_id: uuid.UUID) -> Any:
    last_id = 0
    while True:
        batch = await store.audit_rows(tenant_id, last_id, VERIFY_BATCH)
        for row in batch:
            yield audit_row(row, tenant_id)
        if len(batch) < VERIFY_BATCH:
            return
        last_id = int(batch[-1]["id"])


async def _request_rows(tenant_id: uuid.UUID) -> list[RequestRow | RequestMismatch]:
    rows: list[RequestRow | RequestMismatch] = []
    after: uuid.UUID | None = None
    while True:
        batch = await store.audited_request_rows(tenant_id, after, VERIFY_BATCH)
        rows.extend(request_row(row) for row in batch)
        if len(batch) < VERIFY_BATCH:
            return rows
        after = uuid.UUID(str(batch[-1]["id"]))


async def verify_tenant(
    tenant: Tenant, *, key: bytes | None = None, expect: Anchor | None = None
) -> TenantVerdict:
    """Check a tenant's chain (under `key`, up to the recorded head `expect`),
    then, if it is intact, that every request row says what the chain says."""
    events: list[StoredAuditEvent | MalformedEvent] = [e async for e in _events(tenant.id)]
    ledger = RequestLedger()
    broken = verify_chain(
        events, tenant.audit_head, tenant.audit_seq, key=key, expect=expect, ledger=ledger
    )
    mismatches: list[RequestMismatch] = []
    if broken is None:
        rows = await _request_rows(tenant.id)
        mismatches = [r for r in rows if isinstance(r, RequestMismatch)]
        mismatches += ledger.mismatches(r for r in rows if isinstance(r, RequestRow))
    intact = [e for e in events if isinstance(e, StoredAuditEvent)] if broken is None else []
    return TenantVerdict(
        tenant=tenant, events=len(events), broken=broken, requests=mismatches, chain=intact
    )


@dataclass(frozen=True, slots=True)
class Head:
    tenant_id: str
    name: str
    seq: int
    hash: str | None

    def as_json(self) -> dict[str, Any]:
        return {"tenantId": self.tenant_id, "name": self.name, "seq": self.seq, "hash": self.hash}


def head_of(tenant: Tenant) -> Head:
    """The tenant's current head, as its row records it."""
    return Head(str(tenant.id), tenant.name, tenant.audit_seq, tenant.audit_head)


async def export_lines(
    tenant_id: uuid.UUID, since: datetime | None, until: datetime | None, batch: int
) -> AsyncIterator[dict[str, Any]]:
    """A tenant's audit events in chain order as export lines
    (`domain.audit.export_line`), read `batch` at a time by seq."""
    after = 0
    while True:
        rows = await store.audit_export_rows(tenant_id, after, batch, since=since, until=until)
        for row in rows:
            record = AuditRecord(
                tenant_id=str(row["tenant_id"]),
                seq=row["seq"],
                at=row["at"],
                action=row["action"],
                actor_id=None if row["actor_id"] is None else str(row["actor_id"]),
                request_id=None if row["request_id"] is None else str(row["request_id"]),
                detail=row["detail"],
            )
            yield export_line(str(row["id"]), record, row["prev_hash"], row["hash"])
        if len(rows) < batch:
            return
        after = int(rows[-1]["seq"])
