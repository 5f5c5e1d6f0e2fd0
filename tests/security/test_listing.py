"""An approver's lists are filtered by scope in SQL (finding 9): the store's
filter agrees with `policy.can_see` request for request, by whole segments
and case-sensitively, and a page costs one query however many requests of
the tenant lie outside the approver's scopes."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lockbox.clock import ManualClock
from lockbox.domain import policy
from lockbox.domain.cursors import Window
from lockbox.domain.lifecycle import Status
from lockbox.domain.policy import Actor, RequestFacts, Role
from lockbox.services import requests as request_service
from lockbox.services.deps import Deps
from lockbox.store import config as db
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, RequestResource
from tests.conftest import STACK, World

ROOT = "/subscriptions/contoso-prod"
# Segment names chosen to trip a prefix test that is not segment-wise
# (`b` / `bc`), a LIKE that is not escaped (`_`), one that ignores ASCII
# case (SQLite's LIKE: `B`), and non-ASCII text.
SEGMENTS = ["a", "b", "bc", "b_c", "bxc", "B", "é", "x"]


def _path(rng: random.Random, depth: int) -> str:
    return ROOT + "".join("/" + rng.choice(SEGMENTS) for _ in range(depth))


def _approver(scopes: list[str], tenant_id: str) -> Actor:
    return Actor(
        id=str(uuid.uuid4()), name="approver", role=Role.APPROVER, tenant_id=tenant_id,
        scopes=tuple(scopes),
    )  # fmt: skip


def _facts(row: AccessRequest) -> RequestFacts:
    return request_service.facts_of(row)


async def _insert(world: World, resources: list[str], at: datetime) -> AccessRequest:
    async with store.transaction():
        return await store.insert_request(
            tenant_id=uuid.UUID(world.tenant("contoso")),
            ticket_id=uuid.UUID(world.ticket("contoso")),
            engineer_id=uuid.UUID(world.actors["engineer-alice"].id),
            resources=resources,
            justification="listing",
            duration_seconds=3600,
            created_at=at,
            expires_at=at + timedelta(days=30),
        )


async def test_sql_scope_filter_agrees_with_can_see(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    NOW = clock.now() - timedelta(hours=1)
    rng = random.Random(20261205)
    tenant = world.tenant("contoso")
    rows: list[AccessRequest] = []
    for i in range(160):
        count = rng.randint(1, 4)
        resources = list(dict.fromkeys(_path(rng, rng.randint(0, 3)) for _ in range(count)))
        rows.append(await _insert(world, resources, NOW + timedelta(seconds=i)))
    # The traps, explicitly.
    rows.append(await _insert(world, [f"{ROOT}/a/bc"], NOW + timedelta(seconds=500)))
    rows.append(await _insert(world, [f"{ROOT}/a/b_c/x"], NOW + timedelta(seconds=501)))
    rows.append(await _insert(world, [f"{ROOT}/a/B"], NOW + timedelta(seconds=502)))
    rows.append(await _insert(world, [f"{ROOT}/a/b", f"{ROOT}/a/bc"], NOW + timedelta(seconds=503)))
    # Around the byte range a scope `s` is also looked up by, [`s/`, `s0`):
    # characters between '/' and '0' ('-', '.'), '0' itself, `s` alone, and
    # a non-ASCII segment inside it.
    rows.append(await _insert(world, [f"{ROOT}/a/b-c"], NOW + timedelta(seconds=504)))
    rows.append(await _insert(world, [f"{ROOT}/a/b.c/x"], NOW + timedelta(seconds=505)))
    rows.append(await _insert(world, [f"{ROOT}/a/b0"], NOW + timedelta(seconds=506)))
    rows.append(await _insert(world, [f"{ROOT}/a/b"], NOW + timedelta(seconds=507)))
    both = [f"{ROOT}/a/b/é", f"{ROOT}/a/b.c"]
    rows.append(await _insert(world, both, NOW + timedelta(seconds=508)))

    scope_sets: list[list[str]] = [
        [f"{ROOT}/a/b"],
        [f"{ROOT}/a/b_c"],
        [f"{ROOT}/a/bxc"],
        [f"{ROOT}/a/b", f"{ROOT}/a/bc"],
        [f"{ROOT}/a/B"],
        [ROOT],
        ["/subscriptions/contoso"],
        ["/subscriptions/contoso-dev"],
        [f"{ROOT}/é"],
        [f"{ROOT}/a/b", f"{ROOT}/a/b.c"],
        [f"{ROOT}/a/b-c", f"{ROOT}/a/b0"],
        [],
    ]
    for _ in range(40):
        scope_sets.append(
            [_path(rng, rng.randint(1, 3)) for _ in range(rng.randint(1, 3))]
        )  # fmt: skip

    for scopes in scope_sets:
        actor = _approver(scopes, tenant)
        expected = [r.id for r in rows if policy.can_see(actor, _facts(r))]
        listed = await store.list_requests(
            now=NOW,
            statuses=None,
            tenant_id=uuid.UUID(tenant),
            engineer_id=None,
            window=Window(10_000),
            within_scopes=scopes,
        )
        assert [r.id for r in listed] == expected, scopes
    # The traps, spelled out.
    only_b = _approver([f"{ROOT}/a/b"], tenant)
    visible = {tuple(r.resources) for r in rows if policy.can_see(only_b, _facts(r))}
    assert (f"{ROOT}/a/bc",) not in visible
    assert (f"{ROOT}/a/b_c/x",) not in visible
    assert (f"{ROOT}/a/B",) not in visible


async def test_an_approver_page_is_one_query_past_invisible_requests(
    deps: Deps, world: World, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: scope was checked in Python over batches of 50, so the first
    visible request behind 120 invisible ones took three reads and more."""
    NOW = clock.now() - timedelta(hours=1)
    for i in range(120):
        await _insert(world, ["/subscriptions/contoso-dev/x"], NOW + timedelta(seconds=i))
    wanted = await _insert(world, [f"{ROOT}/rg"], NOW + timedelta(seconds=200))
    calls: list[dict[str, Any]] = []
    real = store.list_requests

    async def counting(**kwargs: Any) -> list[AccessRequest]:
        calls.append(kwargs)
        return await real(**kwargs)

    monkeypatch.setattr(store, "list_requests", counting)
    found = await request_service.list_visible(
        deps,
        world.actors["contoso-approver-prod"],
        statuses=[Status.PENDING],
        window=Window(2),
    )
    assert [r.id for r in found] == [wanted.id]
    assert len(calls) == 1
    assert calls[0]["within_scopes"] == (ROOT,)


async def test_approver_keyset_pages_match_can_see(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    NOW = clock.now() - timedelta(hours=1)
    rng = random.Random(7)
    rows = []
    for i in range(45):
        root = rng.choice([ROOT, "/subscriptions/contoso-dev"])
        rows.append(
            await _insert(world, [f"{root}/{rng.choice(SEGMENTS)}"], NOW + timedelta(seconds=i))
        )
    actor = world.actors["contoso-approver-prod"]
    expected = [r.id for r in rows if policy.can_see(actor, _facts(r))]
    assert 5 < len(expected) < 45
    seen: list[uuid.UUID] = []
    after = None
    while True:
        page = await request_service.list_visible(
            deps, actor, statuses=[Status.PENDING], window=Window(4, after=after)
        )
        seen.extend(r.id for r in page)
        if len(page) < 4:
            break
        after = (page[-1].created_at, page[-1].id)
    assert seen == expected


async def test_new_requests_write_their_resource_rows(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    NOW = clock.now() - timedelta(hours=1)
    row = await _insert(world, [f"{ROOT}/a", f"{ROOT}/b"], NOW)
    paths = await RequestResource.filter(request_id=row.id).values_list("path", flat=True)
    assert sorted(paths) == [f"{ROOT}/a", f"{ROOT}/b"]


@pytest.mark.skipif(STACK != "sqlite", reason="the migration's data step, on a scratch SQLite file")
async def test_the_migration_backfills_existing_requests(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'old.db'}"
    from tortoise.context import TortoiseContext
    from tortoise.migrations.api import migrate

    async with TortoiseContext():
        await migrate(config=db.tortoise_config(url), target="models.0003_notifications")
    async with db.database(url) as context:
        client = context.connections.get("default")
        tenant, ticket, engineer = (str(uuid.uuid4()) for _ in range(3))
        await client.execute_script(
            f"""
            INSERT INTO tenant (id, name, lockbox_enabled, resource_roots,
              pending_request_ttl_seconds, default_access_seconds, max_access_seconds,
              audit_seq, notification_emails, created_at)
              VALUES ('{tenant}', 't', 1, '["/s"]', 60, 60, 60, 0, '[]', '2026-01-01');
            INSERT INTO support_ticket (id, tenant_id, title, is_open, created_at)
              VALUES ('{ticket}', '{tenant}', 't', 1, '2026-01-01');
            INSERT INTO principal (id, name, role, tenant_id, scopes, created_at)
              VALUES ('{engineer}', 'e', 'ENGINEER', NULL, '[]', '2026-01-01');
            INSERT INTO access_request (id, tenant_id, ticket_id, engineer_id, resources,
              justification, duration_seconds, status, created_at, expires_at, activity_seq)
              VALUES ('{uuid.uuid4()}', '{tenant}', '{ticket}', '{engineer}',
                      '["/s/a","/s/b_c"]', 'j', 60, 'PENDING', '2026-01-01', '2026-02-01', 0);
            """
        )
    async with TortoiseContext():
        await migrate(config=db.tortoise_config(url))
    async with db.database(url):
        paths = await RequestResource.all().values_list("path", flat=True)
        assert sorted(paths) == ["/s/a", "/s/b_c"]
