"""The tamper-evident audit chain: hash = sha256(prevHash + canonical JSON of the event).

With an audit key (LOCKBOX_AUDIT_KEY, a secret kept outside the database)
every link is HMAC-SHA256(key, prevHash + canonical JSON) instead, so someone
who can write the database but does not hold the key cannot recompute the
chain after an edit. The key is always a parameter here: the domain never
reads settings.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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
    # Approval policy (contract section 8).
    REQUEST_APPROVAL_RECORDED = "request.approval_recorded"
    REQUEST_EMERGENCY_APPROVED = "request.emergency_approved"
    REQUEST_EMERGENCY_REVIEWED = "request.emergency_reviewed"
    REQUEST_PROVIDER_APPROVED = "request.provider_approved"
    REQUEST_PROVIDER_DENIED = "request.provider_denied"
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


def canonical_time(at: datetime) -> str:
    """A moment as the chain writes it: UTC, with microseconds."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


# The fields a link's hash covers, under the names the hash input uses (and
# an export writes them under).
HASHED_FIELDS = ("tenantId", "seq", "at", "action", "actorId", "requestId", "detail")


def hashed_fields(record: AuditRecord) -> dict[str, Any]:
    """The event as its hash covers it: these names, `at` as `canonical_time`."""
    return {
        "tenantId": record.tenant_id,
        "seq": record.seq,
        "at": canonical_time(record.at),
        "action": record.action,
        "actorId": record.actor_id,
        "requestId": record.request_id,
        "detail": record.detail,
    }


def canonical_json(record: AuditRecord) -> str:
    body = hashed_fields(record)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def export_line(
    event_id: str, record: AuditRecord, prev_hash: str | None, hash_: str
) -> dict[str, Any]:
    """One exported event: its id and link, and exactly what the hash covers."""
    return {"id": event_id, "hash": hash_, "prevHash": prev_hash, **hashed_fields(record)}


def chain_hash(prev_hash: str | None, record: AuditRecord, key: bytes | None = None) -> str:
    """One link: sha256(prevHash + canonical JSON), or HMAC-SHA256 under `key`."""
    message = ((prev_hash or "") + canonical_json(record)).encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredAuditEvent:
    id: str
    record: AuditRecord
    prev_hash: str | None
    hash: str


@dataclass(frozen=True, slots=True)
class MalformedEvent:
    """A stored row that is not an audit event at all (a garbage `at`, a
    `detail` that is not a JSON object, a missing hash…): a broken link."""

    id: str
    seq: int | None
    problem: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    event_id: str | None
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """A head recorded elsewhere (`lockbox audit head --json`): the event at
    `seq` had `hash`, so nothing up to it may have changed since."""

    seq: int
    hash: str | None


def _hash_mismatch(
    event: StoredAuditEvent,
    prev: str | None,
    key: bytes | None,
    following: StoredAuditEvent | MalformedEvent | None,
) -> str:
    """Why an event's hash does not verify, as precisely as can be told."""
    if key is not None and chain_hash(prev, event.record) == event.hash:
        if prev is None and event.record.seq == 1:
            return (
                "hash does not match: the audit key does not match (this event is a plain "
                "SHA-256: the chain was written without LOCKBOX_AUDIT_KEY, or rewritten by "
                "someone who does not hold it)"
            )
        return (
            "hash is a plain SHA-256, not an HMAC under the audit key: rewritten by "
            "someone who does not hold LOCKBOX_AUDIT_KEY (or written without it)"
        )
    if prev is None and event.record.seq == 1:
        # An edit breaks one link; a key that does not match breaks them all.
        if isinstance(following, StoredAuditEvent) and (
            chain_hash(following.prev_hash, following.record, key) != following.hash
        ):
            if key is None:
                return (
                    "hash does not match: the audit key does not match (this chain is "
                    "keyed; verify with the LOCKBOX_AUDIT_KEY it was written with)"
                )
            return (
                "hash does not match: the audit key does not match (the chain was written "
                "with another LOCKBOX_AUDIT_KEY, or rewritten by someone without this one)"
            )
        if following is None:
            return "hash does not match the event's content (or the audit key does not match)"
    if key is not None:
        return "hash does not match the event's content under the audit key"
    return "hash does not match the event's content"


def verify_chain(
    events: Iterable[StoredAuditEvent | MalformedEvent],
    head_hash: str | None,
    head_seq: int,
    *,
    key: bytes | None = None,
    expect: Anchor | None = None,
    ledger: RequestLedger | None = None,
) -> ChainBreak | None:
    """The first break in a tenant's chain (events in stored order), or None.

    `head_hash`/`head_seq` are what the tenant row says the chain ends with, so
    deleting the newest events is caught too. `key` is the audit key the chain
    was written with (None: plain SHA-256). `expect` is a head recorded
    elsewhere: the chain must still reach it, with the same hash there, which
    catches a chain deleted or rewritten together with its head. `ledger`, if
    given, is fed every verified event (see `RequestLedger`).
    """
    prev: str | None = None
    expected_seq = 1
    anchored: StoredAuditEvent | None = None
    stream: Iterator[StoredAuditEvent | MalformedEvent] = iter(events)
    following = next(stream, None)
    while following is not None:
        event, following = following, next(stream, None)
        if isinstance(event, MalformedEvent):
            seq = expected_seq if event.seq is None else event.seq
            return ChainBreak(event.id, seq, f"malformed row: {event.problem}")
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
        if chain_hash(prev, event.record, key) != event.hash:
            return ChainBreak(
                event.id, event.record.seq, _hash_mismatch(event, prev, key, following)
            )
        if expect is not None and event.record.seq == expect.seq:
            anchored = event
        if ledger is not None:
            ledger.add(event.record)
        prev = event.hash
        expected_seq += 1
    if expected_seq - 1 != head_seq or prev != head_hash:
        return ChainBreak(
            None, expected_seq, f"chain ends at #{expected_seq - 1} but the head says #{head_seq}"
        )
    if expect is not None and expect.seq > 0:
        if anchored is None:
            return ChainBreak(
                None,
                expect.seq,
                f"the recorded head is #{expect.seq} but the chain ends at #{expected_seq - 1} "
                "(events deleted, or the chain reset)",
            )
        if anchored.hash != expect.hash:
            return ChainBreak(
                anchored.id,
                expect.seq,
                f"hash {anchored.hash[:16]}… differs from the recorded head's "
                f"{(expect.hash or '')[:16]}… (the chain was rewritten up to here)",
            )
    return None


# --- the request rows the chain vouches for -----------------------------------------

# What a request event says the row holds. `request.created` fixes the engineer,
# ticket, resources and duration; every later request event carries the row's
# decided fields as they stand after it (`decided_fields`).
DECIDED_FIELDS = (
    "resources",
    "durationSeconds",
    "decidedBy",
    "accessStartsAt",
    "accessEndsAt",
    "grantedResources",
)
_LATER_ONLY = ("decidedBy", "accessStartsAt", "accessEndsAt", "grantedResources")
_REQUEST_ACTIONS = frozenset(a.value for a in AuditAction if a.value.startswith("request."))


def decided_fields(
    *,
    resources: Iterable[str],
    duration_seconds: int,
    decided_by: str | None,
    access_starts_at: datetime | None,
    access_ends_at: datetime | None,
    granted_resources: Iterable[str] | None = None,
) -> dict[str, Any]:
    """What a request's transition event carries of the row, so that the row
    cannot be widened (resources, what the approval granted, window) or
    re-attributed unnoticed."""
    return {
        "resources": list(resources),
        "durationSeconds": duration_seconds,
        "decidedBy": decided_by,
        "accessStartsAt": None if access_starts_at is None else canonical_time(access_starts_at),
        "accessEndsAt": None if access_ends_at is None else canonical_time(access_ends_at),
        "grantedResources": None if granted_resources is None else list(granted_resources),
    }


@dataclass(frozen=True, slots=True)
class RequestRow:
    """A request row as stored, in the chain's terms."""

    id: str
    engineer_id: str
    ticket_id: str
    status: str
    fields: Mapping[str, Any]  # DECIDED_FIELDS, as `decided_fields` writes them


@dataclass(frozen=True, slots=True)
class RequestMismatch:
    request_id: str
    seq: int | None  # the chain's last event about the request
    reason: str


@dataclass(slots=True)
class _Expected:
    seq: int
    values: dict[str, Any] = field(default_factory=dict)


class RequestLedger:
    """What a tenant's chain says each of its request rows holds, folded from
    the request events in chain order; then compared with the rows."""

    def __init__(self) -> None:
        self._requests: dict[str, _Expected] = {}

    def add(self, record: AuditRecord) -> None:
        if record.request_id is None or record.action not in _REQUEST_ACTIONS:
            return
        detail = record.detail
        if record.action == AuditAction.REQUEST_CREATED:
            self._requests[record.request_id] = _Expected(
                record.seq,
                {
                    "engineer": record.actor_id,
                    "ticket": detail.get("ticketId"),
                    # A request may start awaiting the provider's approval.
                    "status": detail.get("status", "PENDING"),
                    "resources": detail.get("resources"),
                    "durationSeconds": detail.get("durationSeconds"),
                    "decidedBy": None,
                    "accessStartsAt": None,
                    "accessEndsAt": None,
                    "grantedResources": None,
                },
            )
            return
        expected = self._requests.setdefault(record.request_id, _Expected(record.seq))
        expected.seq = record.seq
        expected.values["status"] = detail.get("to")
        for name in DECIDED_FIELDS:
            if name in detail:
                expected.values[name] = detail[name]
            elif name in _LATER_ONLY:
                # Written before events carried them: unknown from here on.
                expected.values.pop(name, None)

    def mismatches(self, rows: Iterable[RequestRow]) -> list[RequestMismatch]:
        """Every request whose row says something its chain does not, and every
        request the chain knows whose row is gone."""
        found: list[RequestMismatch] = []
        seen: set[str] = set()
        for row in rows:
            seen.add(row.id)
            expected = self._requests.get(row.id)
            if expected is None:
                found.append(
                    RequestMismatch(
                        row.id, None, "the row has no request.created event in the chain"
                    )
                )
                continue
            actual: dict[str, Any] = {
                "engineer": row.engineer_id,
                "ticket": row.ticket_id,
                "status": row.status,
                **row.fields,
            }
            differences = [
                f"{name} is {_show(actual.get(name))} in the row but {_show(value)} in the chain"
                for name, value in expected.values.items()
                if actual.get(name) != value
            ]
            if differences:
                found.append(RequestMismatch(row.id, expected.seq, "; ".join(differences)))
        for request_id, expected in self._requests.items():
            if request_id not in seen:
                found.append(
                    RequestMismatch(
                        request_id, expected.seq, "the chain has it but its row is gone"
                    )
                )
        return found


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)
