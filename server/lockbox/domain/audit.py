"""The tamper-evident audit chain: hash = sha256(prevHash + canonical JSON of the event)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class AuditAction(StrEnum):
    """Everything the audit log can say happened; nothing else is appended."""

    REQUEST_CREATED = "request.created"
    REQUEST_APPROVED = "request.approved"
    REQUEST_DENIED = "request.denied"
    REQUEST_EXPIRED = "request.expired"
    REQUEST_REVOKED = "request.revoked"
    REQUEST_COMPLETED = "request.completed"
    REQUEST_CANCELED = "request.canceled"
    TENANT_CREATED = "tenant.created"
    TENANT_LOCKBOX_ENABLED = "tenant.lockbox_enabled"
    TENANT_LOCKBOX_DISABLED = "tenant.lockbox_disabled"
    TENANT_SETTINGS_UPDATED = "tenant.settings_updated"
    PRINCIPAL_CREATED = "principal.created"
    PRINCIPAL_DISABLED = "principal.disabled"
    PRINCIPAL_ENABLED = "principal.enabled"
    PRINCIPAL_UPDATED = "principal.updated"
    TOKEN_ISSUED = "token.issued"  # noqa: S105 (an event name, not a secret)
    TOKEN_REVOKED = "token.revoked"  # noqa: S105
    TICKET_CREATED = "ticket.created"
    TICKET_CLOSED = "ticket.closed"
    TICKET_REOPENED = "ticket.reopened"
    NOTIFICATION_FAILED = "notification.failed"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_DELETED = "webhook.deleted"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An audit event as it is hashed. `seq` numbers a tenant's chain from 1."""

    tenant_id: str
    seq: int
    at: datetime
    action: str
    actor_id: str | None
    request_id: str | None
    detail: dict[str, Any]


def canonical_json(record: AuditRecord) -> str:
    body = {
        "tenantId": record.tenant_id,
        "seq": record.seq,
        "at": record.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "action": record.action,
        "actorId": record.actor_id,
        "requestId": record.request_id,
        "detail": record.detail,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str | None, record: AuditRecord) -> str:
    return hashlib.sha256(((prev_hash or "") + canonical_json(record)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredAuditEvent:
    id: str
    record: AuditRecord
    prev_hash: str | None
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    event_id: str | None
    seq: int
    reason: str


def verify_chain(
    events: Iterable[StoredAuditEvent], head_hash: str | None, head_seq: int
) -> ChainBreak | None:
    """The first break in a tenant's chain (events in stored order), or None.

    `head_hash`/`head_seq` are what the tenant row says the chain ends with, so
    deleting the newest events is caught too.
    """
    prev: str | None = None
    expected_seq = 1
    for event in events:
        if event.record.seq != expected_seq:
            return ChainBreak(
                event.id,
                event.record.seq,
                f"expected event #{expected_seq} here (missing or moved)",
            )
        if event.prev_hash != prev:
            return ChainBreak(
                event.id, event.record.seq, "prevHash does not match the event before"
            )
        if chain_hash(prev, event.record) != event.hash:
            return ChainBreak(event.id, event.record.seq, "hash does not match the event's content")
        prev = event.hash
        expected_seq += 1
    if expected_seq - 1 != head_seq or prev != head_hash:
        return ChainBreak(
            None, expected_seq, f"chain ends at #{expected_seq - 1} but the head says #{head_seq}"
        )
    return None
