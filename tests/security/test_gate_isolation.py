"""The gate's group commit isolates each call (finding 6): a call whose write
the database refuses is answered with its own error, and every other call of
the same batch is still recorded and answered."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from lockbox.domain.errors import LockboxError
from lockbox.domain.lifecycle import Action
from lockbox.services import gate, requests
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, ActivityEvent
from tests.conftest import World

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"


async def _approved(deps: Deps, world: World, engineer: str) -> AccessRequest:
    request = await requests.create(
        deps,
        world.actors[engineer],
        ticket_id=world.ticket("contoso"),
        resources=[PROD],
        justification="isolation",
        duration_seconds=3600,
    )
    return await requests.transition(
        deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE, "ok"
    )


def _refuse_writes_on(monkeypatch: pytest.MonkeyPatch, request_id: uuid.UUID) -> None:
    """A test-only fault: for one request, the activity row is written and then
    a second row with the same (request, seq) is inserted, which the database
    refuses (a unique constraint). On PostgreSQL that aborts the transaction
    unless a savepoint contains it."""
    real = store.append_activity

    async def faulty(request: AccessRequest, **values: Any) -> ActivityEvent:
        event = await real(request, **values)
        if request.id == request_id:
            await ActivityEvent.create(request_id=request.id, seq=event.seq, **values)
        return event

    monkeypatch.setattr(store, "append_activity", faulty)


def _spy_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = gate._decide_all

    async def spy(batch: list[Any], **kwargs: Any) -> Any:
        sizes.append(len(batch))
        return await real(batch, **kwargs)

    monkeypatch.setattr(gate, "_decide_all", spy)
    return sizes


async def _call(deps: Deps, world: World, engineer: str, request: AccessRequest, i: int) -> Any:
    return await gate.authorize(
        deps,
        world.actors[engineer],
        request_id=str(request.id),
        resource=f"{PROD}/vm{i}",
        action=f"read {i}",
        detail={"i": i},
    )


async def test_a_failing_write_fails_only_its_own_call(
    deps: Deps, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = await _approved(deps, world, "engineer-bob")
    bad = await _approved(deps, world, "engineer-alice")
    _refuse_writes_on(monkeypatch, bad.id)
    sizes = _spy_batches(monkeypatch)

    # One engineer floods bad calls between another's good ones, all at once.
    calls = []
    for i in range(30):
        calls.append(_call(deps, world, "engineer-bob", good, i))
        calls.append(_call(deps, world, "engineer-alice", bad, i))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    assert sizes[0] == 60  # they all shared one batch
    good_outcomes, bad_outcomes = outcomes[0::2], outcomes[1::2]
    assert all(isinstance(o, ActivityEvent) and o.allowed for o in good_outcomes), good_outcomes
    assert all(isinstance(o, Exception) for o in bad_outcomes)
    assert not any(isinstance(o, LockboxError) for o in bad_outcomes)

    recorded = await ActivityEvent.filter(request_id=good.id).order_by("seq")
    assert [e.action for e in recorded] == [f"read {i}" for i in range(30)]
    assert [e.seq for e in recorded] == list(range(1, 31))  # no gaps
    assert await ActivityEvent.filter(request_id=bad.id).count() == 0
    stored = await store.get_request(good.id)
    assert stored is not None and stored.activity_seq == 30


async def test_after_a_failed_batch_the_gate_goes_on(
    deps: Deps, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = await _approved(deps, world, "engineer-bob")
    bad = await _approved(deps, world, "engineer-alice")
    with monkeypatch.context() as patch:
        _refuse_writes_on(patch, bad.id)
        await asyncio.gather(
            _call(deps, world, "engineer-alice", bad, 0),
            _call(deps, world, "engineer-bob", good, 0),
            return_exceptions=True,
        )
    # Without the fault, both engineers are recorded, numbered from where they were.
    again = await asyncio.gather(
        _call(deps, world, "engineer-alice", bad, 1),
        _call(deps, world, "engineer-bob", good, 1),
    )
    assert [e.seq for e in again] == [1, 2]
    assert all(e.allowed for e in again)


async def test_refusals_and_allowed_calls_of_a_batch_take_no_savepoint(
    deps: Deps, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path: a batch without a failing write is written once, with no
    savepoint (and so no extra statement per call)."""
    good = await _approved(deps, world, "engineer-bob")
    savepoints: list[int] = []
    real = store.savepoint

    def counting() -> Any:
        savepoints.append(1)
        return real()

    monkeypatch.setattr(store, "savepoint", counting)
    outcomes = await asyncio.gather(
        _call(deps, world, "engineer-bob", good, 0),
        _call(deps, world, "engineer-alice", good, 1),  # not hers: refused
        _call(deps, world, "engineer-bob", good, 2),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], ActivityEvent) and isinstance(outcomes[2], ActivityEvent)
    assert isinstance(outcomes[1], LockboxError)
    assert savepoints == []
