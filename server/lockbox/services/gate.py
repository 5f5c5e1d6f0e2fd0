"""authorizeAccess: the gate in front of customer data.

Concurrent calls are written in group commits (services.group_commit).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lockbox.domain import policy
from lockbox.domain.errors import BadUserInput, LockboxError, NotFound
from lockbox.domain.gate import GateFacts, denial_reason
from lockbox.domain.lifecycle import Status
from lockbox.domain.policy import Actor
from lockbox.domain.resources import parse_path
from lockbox.domain.text import check_detail, check_text
from lockbox.realtime.topics import activity_topic
from lockbox.services import notifications
from lockbox.services.deps import Deps
from lockbox.services.requests import facts_of, visible
from lockbox.services.writing import changing
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, ActivityEvent

MAX_ACTION = 200
MAX_DETAIL_BYTES = 16 * 1024


def _validate(resource: str, action: str, detail: Any) -> str:
    """Every input checked before the call joins a batch: one caller's bad
    input never reaches (or fails) a group commit it shares with others."""
    parse_path(resource)
    action = check_text(action.strip(), "action")
    if not action or len(action) > MAX_ACTION:
        raise BadUserInput(f"action must be 1 to {MAX_ACTION} characters")
    if check_detail(detail) is not None and len(json.dumps(detail)) > MAX_DETAIL_BYTES:
        raise BadUserInput(f"detail is larger than {MAX_DETAIL_BYTES} bytes of JSON")
    return action


@dataclass(frozen=True, slots=True)
class _Call:
    deps: Deps
    actor: Actor
    request_id: str
    resource: str
    action: str
    detail: Any


def _newest(outcomes: Sequence[ActivityEvent | LockboxError]) -> dict[uuid.UUID, int]:
    newest: dict[uuid.UUID, int] = {}
    for outcome in outcomes:
        if isinstance(outcome, ActivityEvent):
            newest[outcome.request_id] = max(outcome.seq, newest.get(outcome.request_id, 0))
    return newest


async def _write_batch(batch: list[_Call]) -> list[ActivityEvent | LockboxError]:
    """One group commit: every call decided and recorded in one change, and
    each request's subscribers woken once, after the commit."""
    async with changing(batch[0].deps) as change:
        outcomes = await _decide_all(batch)
        denied = [o for o in outcomes if isinstance(o, ActivityEvent) and not o.allowed]
        if denied:  # allowed calls write nothing to the outbox
            await notifications.activity_denied(change, denied)
        for request_id, seq in _newest(outcomes).items():
            change.announce(activity_topic(request_id), {"seq": seq}, key=str(request_id))
    return outcomes


async def _decide_all(batch: list[_Call]) -> list[ActivityEvent | LockboxError]:
    """Decide and record each call, in order, inside the caller's transaction.

    Each request row is locked once per batch, so a revocation that has
    committed is always seen, and activity numbers follow commit order.
    """
    locked: dict[uuid.UUID, AccessRequest | None] = {}
    outcomes: list[ActivityEvent | LockboxError] = []
    for call in batch:
        try:
            outcomes.append(await _decide(call, locked))
        except LockboxError as refusal:
            outcomes.append(refusal)
    for request_id in _newest(outcomes):
        request = locked[request_id]
        assert request is not None
        await store.save_activity_seq(request)
    return outcomes


async def _decide(call: _Call, locked: dict[uuid.UUID, AccessRequest | None]) -> ActivityEvent:
    key = store.as_uuid(call.request_id)
    if key is not None and key not in locked:
        locked[key] = await store.lock_request(key)
    request = visible(call.actor, None if key is None else locked[key])
    if request is None:
        raise NotFound.of("access request", call.request_id)
    policy.require_own_engineer(call.actor, facts_of(request), "use")
    now = call.deps.clock.now()
    facts = GateFacts(
        request_id=str(request.id),
        status=Status(request.status),
        expires_at=request.expires_at,
        access_starts_at=request.access_starts_at,
        access_ends_at=request.access_ends_at,
        resources=tuple(request.resources),
    )
    reason = denial_reason(facts, call.resource, now)
    return await store.append_activity(
        request,
        at=now,
        engineer_id=uuid.UUID(call.actor.id),
        resource=call.resource,
        action=call.action,
        allowed=reason is None,
        denial_reason=reason,
        detail=call.detail,
    )


async def authorize(
    deps: Deps, actor: Actor, *, request_id: str, resource: str, action: str, detail: Any
) -> ActivityEvent:
    """Decide and record one engineer action; answered once it is committed."""
    call = _Call(
        deps=deps,
        actor=actor,
        request_id=request_id,
        resource=resource,
        action=_validate(resource, action, detail),
        detail=detail,
    )
    return await deps.group_commit(_write_batch).submit(call)
