"""authorizeAccess: the gate in front of customer data.

Concurrent calls are written in group commits (services.group_commit).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from time import perf_counter
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

log = logging.getLogger(__name__)

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


def _newest(outcomes: Sequence[ActivityEvent | Exception]) -> dict[uuid.UUID, int]:
    newest: dict[uuid.UUID, int] = {}
    for outcome in outcomes:
        if isinstance(outcome, ActivityEvent):
            newest[outcome.request_id] = max(outcome.seq, newest.get(outcome.request_id, 0))
    return newest


Outcome = ActivityEvent | Exception


async def _write_batch(batch: list[_Call]) -> list[Outcome]:
    """One group commit: every call decided and recorded in one change, and
    each request's subscribers woken once, after the commit.

    The batch is first written without savepoints (none of the extra
    statements they cost on the hot path). If that fails, nothing was
    committed, and the batch is written again with a savepoint per call: a
    call that fails while writing (a row the database refuses) is rolled back
    alone and answered with its own error, and the others still commit.
    """
    try:
        return await _write(batch, isolated=False)
    except Exception as failure:
        if len(batch) == 1:
            raise
        log.warning(
            "a gate batch of %d calls failed (%s); writing it again call by call",
            len(batch),
            type(failure).__name__,
        )
        return await _write(batch, isolated=True)


async def _write(batch: list[_Call], *, isolated: bool) -> list[Outcome]:
    async with changing(batch[0].deps) as change:
        outcomes = await _decide_all(batch, isolated=isolated)
        denied = [o for o in outcomes if isinstance(o, ActivityEvent) and not o.allowed]
        if denied:  # allowed calls write nothing to the outbox
            await notifications.activity_denied(change, denied)
        for request_id, seq in _newest(outcomes).items():
            change.announce(activity_topic(request_id), {"seq": seq}, key=str(request_id))
    return outcomes


async def _decide_all(batch: list[_Call], *, isolated: bool = False) -> list[Outcome]:
    """Decide and record each call, in order, inside the caller's transaction.

    Each request row is locked once per batch, so a revocation that has
    committed is always seen, and activity numbers follow commit order.
    `isolated`: each call's writes in a savepoint of their own; a call whose
    write fails is rolled back to it and answered with its error.
    """
    locked: dict[uuid.UUID, AccessRequest | None] = {}
    outcomes: list[Outcome] = []
    for call in batch:
        key = store.as_uuid(call.request_id)
        if key is not None and key not in locked:
            locked[key] = await store.lock_request(key)  # outside any savepoint
        request = None if key is None else locked[key]
        if isolated:
            outcomes.append(await _decide_in_savepoint(call, request))
            continue
        try:
            outcomes.append(await _decide(call, request))
        except LockboxError as refusal:
            outcomes.append(refusal)
    for request_id in _newest(outcomes):
        request = locked[request_id]
        assert request is not None
        await store.save_activity_seq(request)
    return outcomes


async def _decide_in_savepoint(call: _Call, request: AccessRequest | None) -> Outcome:
    seq = None if request is None else request.activity_seq
    head = None if request is None else request.activity_head
    try:
        async with store.savepoint():
            return await _decide(call, request)
    except Exception as failure:
        if request is not None and seq is not None:
            # The number and chain link it took were rolled back.
            request.activity_seq, request.activity_head = seq, head
        if not isinstance(failure, LockboxError):
            log.warning(
                "a gate call on request %s failed while writing (%s); its batch goes on",
                call.request_id[:64],
                type(failure).__name__,
            )
        return failure


async def _decide(call: _Call, locked: AccessRequest | None) -> ActivityEvent:
    request = visible(call.actor, locked)
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
        # What the approval granted (narrower than asked, if an approver said
        # so); requests approved before grants were recorded have none.
        resources=tuple(
            request.resources if request.granted_resources is None else request.granted_resources
        ),
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
        key=call.deps.audit_key,
    )


async def authorize(
    deps: Deps, actor: Actor, *, request_id: str, resource: str, action: str, detail: Any
) -> ActivityEvent:
    """Decide and record one engineer action; answered once it is committed."""
    if deps.metrics is None and deps.tracing is None:
        return await _authorize(deps, actor, request_id, resource, action, detail)
    # Observed (lockbox.observability): a span, the latency and the outcome.
    started = perf_counter()
    span = nullcontext() if deps.tracing is None else deps.tracing.span("lockbox.gate")
    try:
        with span:
            event = await _authorize(deps, actor, request_id, resource, action, detail)
    except LockboxError as refusal:
        if deps.metrics is not None:
            deps.metrics.gate_refused(refusal.code, perf_counter() - started)
        raise
    if deps.metrics is not None:
        deps.metrics.gate_decided(event.allowed, event.denial_reason, perf_counter() - started)
    return event


async def _authorize(
    deps: Deps, actor: Actor, request_id: str, resource: str, action: str, detail: Any
) -> ActivityEvent:
    call = _Call(
        deps=deps,
        actor=actor,
        request_id=request_id,
        resource=resource,
        action=_validate(resource, action, detail),
        detail=detail,
    )
    return await deps.group_commit(_write_batch).submit(call)
