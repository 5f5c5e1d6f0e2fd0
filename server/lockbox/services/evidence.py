"""Compliance evidence: signed decisions and activity chains, checked; one
request's evidence in one report (accessReport, `lockbox audit report`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lockbox.domain import policy
from lockbox.domain.audit import StoredAuditEvent, canonical_time, chain_hash
from lockbox.domain.errors import NotFound
from lockbox.domain.evidence import (
    ActivityHead,
    ActivityRecord,
    StoredActivity,
    digest,
    head_from_detail,
    verify_activity,
)
from lockbox.domain.policy import Actor
from lockbox.services import audit
from lockbox.services.deps import Deps
from lockbox.services.requests import get_visible
from lockbox.services.signing import Verifier
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, ActivityEvent, AuditEvent, Decision

BATCH = 1000


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """What the audit chain says about a decision: the event that carries its digest."""

    seq: int
    action: str
    request_id: str | None


def recorded_decisions(events: Iterable[StoredAuditEvent]) -> dict[str, RecordedDecision]:
    """The decisions an (intact) audit chain vouches for, by payload digest."""
    found: dict[str, RecordedDecision] = {}
    for event in events:
        marker = event.record.detail.get("decisionHash")
        if isinstance(marker, str):
            found[marker] = RecordedDecision(
                event.record.seq, event.record.action, event.record.request_id
            )
    return found


def recorded_heads(events: Iterable[StoredAuditEvent]) -> dict[str, ActivityHead]:
    """The activity heads requests' final audit events carry, by request id."""
    heads: dict[str, ActivityHead] = {}
    for event in events:
        head = head_from_detail(event.record.detail)
        if head is not None and event.record.request_id is not None:
            heads[event.record.request_id] = head
    return heads


def _payload(row: Decision) -> Any:
    try:
        return json.loads(row.payload)
    except ValueError:
        return None


def payload_of(row: Decision) -> Any:
    """A decision's payload as served (parsed from the exact text signed)."""
    return _payload(row)


async def decisions_of(request: AccessRequest) -> list[Decision]:
    """Decisions on a request the caller already sees, oldest first."""
    return await store.decisions_of(request.id)


def decision_problems(
    row: Decision,
    recorded: dict[str, RecordedDecision],
    verifier: Verifier | None,
) -> list[str]:
    """What is wrong with one stored decision: not the one the audit chain
    recorded, or (with `verifier`) a signature that does not verify."""
    name = f"decision {row.id} ({row.action} on request {row.request_id})"
    payload = _payload(row)
    if not isinstance(payload, dict):
        return [f"{name}: payload is not a JSON object"]
    problems: list[str] = []
    if digest(payload) not in recorded:
        problems.append(f"{name}: payload is not the one the audit chain recorded (edited)")
    elif (
        payload.get("action") != row.action
        or payload.get("requestId") != str(row.request_id)
        or payload.get("deciderId") != str(row.decider_id)
    ):
        problems.append(f"{name}: its columns differ from its signed payload")
    if verifier is not None:
        if row.signature is None:
            problems.append(f"{name}: unsigned")
        elif row.key_id is not None and row.key_id != verifier.key_id:
            problems.append(
                f"{name}: signed with key {row.key_id}, not with the given key {verifier.key_id}"
            )
        elif not verifier.verifies(payload, row.signature):
            problems.append(f"{name}: signature does not verify under key {verifier.key_id}")
    return problems


class DecisionTally:
    """Which of the decisions the audit chain recorded have turned up as rows:
    a row whose payload was edited stands for one of its request's (it is
    reported as edited, not again as missing)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.edited: dict[str, int] = {}

    def add(self, row: Decision, recorded: dict[str, RecordedDecision]) -> None:
        payload = _payload(row)
        marker = digest(payload) if isinstance(payload, dict) else None
        if marker is not None and marker in recorded:
            self.seen.add(marker)
        else:
            request_id = str(row.request_id)
            self.edited[request_id] = self.edited.get(request_id, 0) + 1

    def missing(self, recorded: dict[str, RecordedDecision]) -> list[str]:
        found: list[str] = []
        edited = dict(self.edited)
        for marker, decision in recorded.items():
            if marker in self.seen:
                continue
            request_id = decision.request_id or ""
            if edited.get(request_id, 0) > 0:
                edited[request_id] -= 1
                continue
            found.append(
                f"request {decision.request_id}: the {decision.action} decision recorded by "
                f"audit event #{decision.seq} is missing (deleted)"
            )
        return found


def stored_activity(row: ActivityEvent) -> StoredActivity:
    return StoredActivity(
        id=str(row.id),
        record=ActivityRecord(
            request_id=str(row.request_id),
            seq=row.seq,
            at=row.at,
            engineer_id=str(row.engineer_id),
            resource=row.resource,
            action=row.action,
            allowed=row.allowed,
            denial_reason=row.denial_reason,
            detail=row.detail,
        ),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


# --- a tenant, whole (`lockbox audit verify`) --------------------------------------------


@dataclass(slots=True)
class EvidenceVerdict:
    decisions: int = 0
    unsigned: int = 0
    activity: int = 0
    problems: list[str] = field(default_factory=list)


async def verify_tenant_evidence(
    tenant_id: uuid.UUID,
    events: Sequence[StoredAuditEvent],
    *,
    key: bytes | None,
    verifier: Verifier | None,
) -> EvidenceVerdict:
    """Check a tenant's decisions against its (already verified) audit chain
    and their signatures, and every request's activity chain."""
    verdict = EvidenceVerdict()
    recorded = recorded_decisions(events)
    tally = DecisionTally()
    after = 0
    while True:
        rows = await store.decisions_after(tenant_id, after, BATCH)
        for row in rows:
            verdict.decisions += 1
            verdict.unsigned += row.signature is None
            tally.add(row, recorded)
            verdict.problems += decision_problems(row, recorded, verifier)
        if len(rows) < BATCH:
            break
        after = rows[-1].id
    verdict.problems += tally.missing(recorded)

    heads = recorded_heads(events)
    position: uuid.UUID | None = None
    while True:
        requests = await store.activity_heads(tenant_id, position, BATCH)
        if not requests:
            break
        verdict.activity += await _verify_activity_of(requests, heads, key, verdict.problems)
        if len(requests) < BATCH:
            break
        position = uuid.UUID(str(requests[-1]["id"]))
    return verdict


async def _verify_activity_of(
    requests: list[dict[str, Any]],
    heads: dict[str, ActivityHead],
    key: bytes | None,
    problems: list[str],
) -> int:
    """Verify the activity chains of a batch of requests, reading their events
    in (request, seq) order a batch at a time; how many events there were."""
    by_id = {str(r["id"]): r for r in requests}
    pending: dict[str, list[StoredActivity]] = {request_id: [] for request_id in by_id}
    after: tuple[uuid.UUID, int] | None = None
    count = 0
    current: str | None = None

    def finish(request_id: str) -> None:
        row = by_id[request_id]
        head = ActivityHead(int(row["activity_seq"]), row["activity_head"])
        problems.extend(
            verify_activity(
                request_id, pending.pop(request_id), head, heads.get(request_id), key=key
            )
        )

    while True:
        batch = await store.activity_batch([uuid.UUID(i) for i in by_id], after, BATCH)
        for row in batch:
            request_id = str(row.request_id)
            if current is not None and request_id != current:
                finish(current)
            current = request_id
            pending[request_id].append(stored_activity(row))
            count += 1
        if len(batch) < BATCH:
            break
        after = (batch[-1].request_id, batch[-1].seq)
    if current is not None:
        finish(current)
    for request_id in list(pending):  # requests without activity
        finish(request_id)
    return count


# --- one request (accessReport, `lockbox audit report`) ------------------------------------


@dataclass(frozen=True, slots=True)
class AccessReport:
    request: AccessRequest
    decisions: list[Decision]
    activity: list[ActivityEvent]
    audit_events: list[AuditEvent]
    problems: list[str]

    @property
    def verified(self) -> bool:
        return not self.problems


def _audit_problems(events: list[AuditEvent], key: bytes | None) -> list[str]:
    """Each of the request's audit events must still hash to what it says
    (the whole chain is `lockbox audit verify`'s to walk)."""
    problems: list[str] = []
    for event in events:
        stored = audit.stored_event(event)
        if chain_hash(event.prev_hash, stored.record, key) != event.hash:
            problems.append(
                f"audit event #{event.seq} (id {event.id}, {event.action}): "
                "hash does not match the event's content"
            )
    return problems


async def report(deps: Deps, actor: Actor, request_id: str) -> AccessReport:
    """One request's evidence, checked: NOT_FOUND where it is not visible."""
    request = await get_visible(actor, request_id)
    return await build_report(request, key=deps.audit_key, verifier=_verifier(deps))


async def find_request(request_id: str) -> AccessRequest:
    """A request by id, whoever's (the operator's shell)."""
    request = await store.get_request(request_id)
    if request is None:
        raise NotFound.of("access request", request_id)
    return request


def _verifier(deps: Deps) -> Verifier | None:
    return None if deps.signer is None else deps.signer.verifier


async def build_report(
    request: AccessRequest, *, key: bytes | None, verifier: Verifier | None
) -> AccessReport:
    events = await store.audit_of_request(request.tenant_id, request.id)
    decisions = await store.decisions_of(request.id)
    activity = await store.activity_of(request.id)
    problems = _audit_problems(events, key)
    intact = [audit.stored_event(e) for e in events]
    recorded = recorded_decisions(intact)
    content = audit.content_hash_of(request)
    tally = DecisionTally()
    for row in decisions:
        tally.add(row, recorded)
        payload = _payload(row)
        if isinstance(payload, dict) and payload.get("contentHash") != content:
            problems.append(
                f"decision {row.id} ({row.action}): the request's content changed "
                "after it was decided"
            )
        # Signatures by a key other than this server's are left to `audit verify --public-key`.
        mine = verifier if verifier is not None and row.key_id == verifier.key_id else None
        problems += decision_problems(row, recorded, mine)
    problems += tally.missing(recorded)
    head = ActivityHead(request.activity_seq, request.activity_head)
    recorded_head = recorded_heads(intact).get(str(request.id))
    problems += verify_activity(
        str(request.id), [stored_activity(a) for a in activity], head, recorded_head, key=key
    )
    return AccessReport(request, decisions, activity, events, problems)


def audit_events_seen_by(actor: Actor, found: AccessReport) -> list[AuditEvent]:
    """The report's audit events, for those who may read the tenant's audit log."""
    if policy.can_read_audit(actor) and actor.tenant_id == str(found.request.tenant_id):
        return found.audit_events
    return []


# --- as JSON (`lockbox audit report`) ---------------------------------------------------


def _time(value: Any) -> str | None:
    return None if value is None else canonical_time(value)


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def decision_json(row: Decision) -> dict[str, Any]:
    return {
        "action": row.action,
        "decider": {"id": str(row.decider_id)},
        "at": canonical_time(row.at),
        "payload": _payload(row),
        "signature": row.signature,
        "keyId": row.key_id,
    }


def report_json(found: AccessReport) -> dict[str, Any]:
    """The report as accessReport serves it, for the shell."""
    request = found.request
    return {
        "request": {
            "id": str(request.id),
            "tenant": {"id": str(request.tenant_id)},
            "ticket": {"id": str(request.ticket_id)},
            "engineer": {"id": str(request.engineer_id)},
            "resources": request.resources,
            "justification": request.justification,
            "durationSeconds": request.duration_seconds,
            "status": str(request.status),
            "createdAt": canonical_time(request.created_at),
            "decidedAt": _time(request.decided_at),
            "decidedBy": None
            if request.decided_by_id is None
            else {"id": str(request.decided_by_id)},
            "accessStartsAt": _time(request.access_starts_at),
            "accessEndsAt": _time(request.access_ends_at),
        },
        "decisions": [decision_json(d) for d in found.decisions],
        "activity": [
            {
                "id": str(a.id),
                "seq": a.seq,
                "at": canonical_time(a.at),
                "engineer": {"id": str(a.engineer_id)},
                "resource": a.resource,
                "action": a.action,
                "allowed": a.allowed,
                "denialReason": a.denial_reason,
                "detail": a.detail,
                "hash": a.hash,
                "prevHash": a.prev_hash,
            }
            for a in found.activity
        ],
        "auditEvents": [
            {
                "id": str(e.id),
                "seq": e.seq,
                "at": canonical_time(e.at),
                "action": e.action,
                "actor": None if e.actor_id is None else {"id": str(e.actor_id)},
                "requestId": _id(e.request_id),
                "detail": e.detail,
                "hash": e.hash,
                "prevHash": e.prev_hash,
            }
            for e in found.audit_events
        ],
        "verified": found.verified,
        "problems": found.problems,
    }
