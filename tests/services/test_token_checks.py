"""Token checks: concurrent ones share one query, each still gets its own answer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from lockbox.domain.errors import Unauthenticated
from lockbox.services import auth
from lockbox.services.deps import Deps
from lockbox.services.group_commit import GroupCommit
from lockbox.store import queries as store
from tests.conftest import World


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The hashes each lookup query was asked for."""
    asked: list[list[str]] = []
    real = store.principals_for_tokens

    async def counted(token_hashes: Sequence[str]) -> dict[str, object]:
        asked.append(list(token_hashes))
        return await real(token_hashes)  # type: ignore[return-value]

    monkeypatch.setattr(store, "principals_for_tokens", counted)
    return asked


async def test_concurrent_checks_share_a_query_and_each_gets_its_own_answer(
    deps: Deps, world: World, queries: list[list[str]]
) -> None:
    names = ["contoso-admin", "engineer-alice", "fabrikam-admin"] * 10
    headers = [f"Bearer {world.token(name)}" for name in names]
    headers.append("Bearer lbx_no-such-token")
    outcomes = await asyncio.gather(
        *(auth.authenticate(deps, header) for header in headers), return_exceptions=True
    )
    for name, outcome in zip(names, outcomes, strict=False):
        assert isinstance(outcome, auth.Session), outcome
        assert outcome.actor == world.actors[name]
    assert isinstance(outcomes[-1], Unauthenticated)
    # All 31 were waiting before the first query went: one query, each
    # distinct hash asked for once.
    assert len(queries) == 1, queries
    assert sorted(queries[0]) == sorted({auth.hash_secret(h.split()[1]) for h in headers})


async def test_a_check_after_a_revocation_is_refused_while_others_pass(
    deps: Deps, world: World, queries: list[list[str]]
) -> None:
    revoked = f"Bearer {world.token('contoso-admin')}"
    session = await auth.authenticate(deps, revoked)
    assert await store.revoke_token(session.token_id, deps.clock.now()) == 1
    kept = f"Bearer {world.token('engineer-alice')}"
    outcomes = await asyncio.gather(
        auth.authenticate(deps, revoked),
        auth.authenticate(deps, kept),
        auth.authenticate(deps, revoked),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], Unauthenticated)
    assert isinstance(outcomes[1], auth.Session)
    assert outcomes[1].actor == world.actors["engineer-alice"]
    assert isinstance(outcomes[2], Unauthenticated)


async def test_a_disabled_principal_is_refused(deps: Deps, world: World) -> None:
    header = f"Bearer {world.token('contoso-approver-prod')}"
    session = await auth.authenticate(deps, header)
    assert await store.disable_principal(uuid.UUID(session.actor.id), deps.clock.now()) == 1
    with pytest.raises(Unauthenticated):
        await auth.authenticate(deps, header)


async def test_checks_waiting_on_a_stopped_batch_are_answered() -> None:
    """A batch stopped mid-query (the loop closing) answers every waiting
    caller instead of leaving it waiting for ever."""
    started = asyncio.Event()

    async def never_finishes(calls: list[str]) -> list[str]:
        started.set()
        await asyncio.Event().wait()
        return calls

    batches = GroupCommit(never_finishes)
    first = asyncio.ensure_future(batches.submit("a"))
    await started.wait()
    second = asyncio.ensure_future(batches.submit("b"))  # waits for the next batch
    assert batches._writer is not None
    batches._writer.cancel()
    for waiting in (first, second):
        with pytest.raises(RuntimeError, match="stopped"):
            await asyncio.wait_for(waiting, 5)
