"""Compliance evidence, as plain values: the canonical JSON every hash and
signature is taken over, signed decision payloads, and the per-request
activity hash chain.

The canonical form is the one the audit chain uses (`domain.audit`): keys
sorted, `,` and `:` separators, no ASCII escaping, encoded as UTF-8, moments
in UTC with microseconds. Anyone can recompute it with the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lockbox.domain.audit import canonical_time


def canonical(value: Any) -> str:
    """`value` as canonical JSON (sorted keys, `,` `:`, no ASCII escaping)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """SHA-256 (hex) of the UTF-8 bytes of `value`'s canonical JSON."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def _moment(at: datetime | None) -> str | None:
    return None if at is None else canonical_time(at)


# --- the request a decision is about ---------------------------------------------


def request_content(
    *,
    request_id: str,
    tenant_id: str,
    ticket_id: str,
    engineer_id: str,
    resources: Sequence[str],
    justification: str,
    duration_seconds: int,
    created_at: datetime,
) -> dict[str, Any]:
    """What an engineer asked for, fixed when the request is created: a
    decision's `contentHash` is the digest of this, so a decision cannot be
    moved onto a request whose content was changed afterwards."""
    return {
        "id": request_id,
        "tenantId": tenant_id,
        "ticketId": ticket_id,
        "engineerId": engineer_id,
        "resources": list(resources),
        "justification": justification,
        "durationSeconds": duration_seconds,
        "createdAt": canonical_time(created_at),
    }


# --- decisions ---------------------------------------------------------------------


def decision_payload(
    *,
    request_id: str,
    tenant_id: str,
    decider_id: str,
    action: str,
    resources: Sequence[str],
    access_starts_at: datetime | None,
    access_ends_at: datetime | None,
    at: datetime,
    content_hash: str,
) -> dict[str, Any]:
    """What a decider decided, as it is signed and served."""
    return {
        "requestId": request_id,
        "tenantId": tenant_id,
        "deciderId": decider_id,
        "action": action,
        "resources": list(resources),
        "accessStartsAt": _moment(access_starts_at),
        "accessEndsAt": _moment(access_ends_at),
        "at": canonical_time(at),
        "contentHash": content_hash,
    }


def signed_bytes(payload: Any) -> bytes:
    """The bytes a decision's signature is over."""
    return canonical(payload).encode()


# --- the activity chain --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    """An activity event as it is hashed. `seq` numbers a request's events from 1."""

    request_id: str
    seq: int
    at: datetime
    engineer_id: str
    resource: str
    action: str
    allowed: bool
    denial_reason: str | None
    detail: Any

    def hashed(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id,
            "seq": self.seq,
            "at": canonical_time(self.at),
            "engineerId": self.engineer_id,
            "resource": self.resource,
            "action": self.action,
            "allowed": self.allowed,
            "denialReason": self.denial_reason,
            "detail": self.detail,
        }


def activity_hash(prev_hash: str | None, record: ActivityRecord, key: bytes | None = None) -> str:
    """One link of a request's activity chain, as the audit chain links:
    sha256(prevHash + canonical JSON), or HMAC-SHA256 under the audit key."""
    message = ((prev_hash or "") + canonical(record.hashed())).encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredActivity:
    id: str
    record: ActivityRecord
    prev_hash: str | None
    hash: str | None  # None: written before activity was chained


@dataclass(frozen=True, slots=True)
class ActivityHead:
    seq: int
    hash: str | None

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}


def head_from_detail(detail: Any) -> ActivityHead | None:
    """The activity head a request's final audit event records, if any."""
    head = detail.get("activityHead") if isinstance(detail, dict) else None
    if not isinstance(head, dict):
        return None
    seq, hash_ = head.get("seq"), head.get("hash")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(hash_, str | None):
        return None
    return ActivityHead(seq, hash_)


def verify_activity(
    request_id: str,
    events: Iterable[StoredActivity],
    row_head: ActivityHead,
    recorded: ActivityHead | None,
    *,
    key: bytes | None = None,
) -> list[str]:
    """What is wrong with one request's activity chain (events in seq order).

    `row_head` is what the request row says the chain ends with; `recorded`
    the head its final audit event carries (None while the request is open).
    Events written before chaining existed (no hash) may only come first.
    """
    problems: list[str] = []
    prev: str | None = None
    expected = 1
    chained = False
    for event in events:
        where = f"request {request_id}: activity #{event.record.seq} (id {event.id})"
        if event.record.seq != expected:
            problems.append(f"{where}: expected activity #{expected} here (deleted or reordered)")
            return problems
        if event.hash is None:
            if chained:
                problems.append(f"{where}: has no hash after chained events")
                return problems
        else:
            chained = True
            if event.prev_hash != prev:
                problems.append(
                    f"{where}: prevHash does not match the event before (deleted or reordered)"
                )
                return problems
            if activity_hash(prev, event.record, key) != event.hash:
                problems.append(f"{where}: hash does not match the event's content (edited)")
                return problems
        prev = event.hash
        expected += 1
    last = expected - 1
    if (last, prev) != (row_head.seq, row_head.hash):
        problems.append(
            f"request {request_id}: activity ends at #{last} but the request row says "
            f"#{row_head.seq} (events deleted, or the row edited)"
        )
    if recorded is not None and (last, prev) != (recorded.seq, recorded.hash):
        problems.append(
            f"request {request_id}: activity ends at #{last} but the audit chain recorded "
            f"#{recorded.seq} with hash {(recorded.hash or '-')[:16]} when the request ended"
        )
    return problems
