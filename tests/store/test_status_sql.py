"""The SQL that lists requests by status reads the clock exactly as the
lifecycle does, including requests past a deadline that no sweep has recorded."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from lockbox.domain.cursors import Window
from lockbox.domain.lifecycle import Status, due_action, effective_status
from lockbox.services.requests import state_of
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest
from tests.conftest import World

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)
EXPIRES = [NOW - HOUR, NOW - TICK, NOW, NOW + TICK, NOW + HOUR]
ENDS: list[datetime | None] = [None, NOW - HOUR, NOW, NOW + TICK, NOW + HOUR]


async def _grid(world: World) -> list[AccessRequest]:
    """One request per (stored status, pending deadline, window end)."""
    rows: list[AccessRequest] = []
    for status, expires_at, ends_at in itertools.product(Status, EXPIRES, ENDS):
        row = await store.insert_request(
            tenant_id=uuid.UUID(world.tenant("contoso")),
            ticket_id=uuid.UUID(world.ticket("contoso")),
            engineer_id=uuid.UUID(world.actors["engineer-alice"].id),
            resources=["/subscriptions/contoso-prod"],
            justification="grid",
            duration_seconds=3600,
            created_at=NOW - 2 * HOUR,
            expires_at=expires_at,
        )
        # Set up stored states directly: this test is about reading them.
        await AccessRequest.filter(id=row.id).update(status=status, access_ends_at=ends_at)
        rows.append(await AccessRequest.get(id=row.id))
    return rows


async def _listed(statuses: list[Status]) -> set[uuid.UUID]:
    rows = await store.list_requests(
        now=NOW, statuses=statuses, tenant_id=None, engineer_id=None, window=Window(10_000)
    )
    return {row.id for row in rows}


def _reads(row: AccessRequest) -> Status:
    return effective_status(row.status, NOW, row.expires_at, row.access_ends_at)


async def test_sql_status_filter_agrees_with_the_lifecycle_on_every_grid_point(
    world: World,
) -> None:
    grid = await _grid(world)
    assert len(grid) == len(Status) * len(EXPIRES) * len(ENDS)
    for status in Status:
        expected = {row.id for row in grid if _reads(row) is status}
        assert await _listed([status]) == expected, status
    # Past its deadline but not yet swept: listed as EXPIRED, not PENDING.
    unswept = [r for r in grid if r.status is Status.PENDING and r.expires_at <= NOW]
    assert unswept
    assert {r.id for r in unswept} <= await _listed([Status.EXPIRED])
    assert not {r.id for r in unswept} & await _listed([Status.PENDING])


async def test_sql_filter_for_several_statuses_is_their_union(world: World) -> None:
    grid = await _grid(world)
    for pair in itertools.combinations([Status.PENDING, Status.EXPIRED, Status.COMPLETED], 2):
        expected = {row.id for row in grid if _reads(row) in pair}
        assert await _listed(list(pair)) == expected, pair


async def test_requests_due_are_exactly_those_the_clock_acts_on(world: World) -> None:
    grid = await _grid(world)
    due = {row.id for row in await store.requests_due(NOW, limit=10_000)}
    assert due == {row.id for row in grid if due_action(state_of(row), NOW) is not None}
