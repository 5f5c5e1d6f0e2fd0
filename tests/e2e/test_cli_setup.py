"""`lockbox migrate` and `lockbox seed-demo`, run as the installed script."""

from __future__ import annotations

import copy
import hashlib

from tortoise.migrations.autodetector import MigrationAutodetector

from lockbox.store import config as db
from tests.conftest import Stack
from tests.e2e.cli_support import (
    DEMO_PRINCIPALS,
    DEMO_TENANTS,
    DEMO_TICKETS,
    Lockbox,
    Sql,
    assert_clean_failure,
    clean_env,
)

LOCKBOX_TABLES = {
    "tenant",
    "principal",
    "api_token",
    "support_ticket",
    "access_request",
    "activity_event",
    "audit_event",
}


async def _counts(sql: Sql) -> dict[str, int]:
    return {
        table: int(await sql.scalar(f"SELECT count(*) FROM {table}"))
        for table in ("tenant", "principal", "api_token", "support_ticket", "audit_event")
    }


async def test_migrate_creates_the_schema_in_an_empty_database_and_is_idempotent(
    lockbox: Lockbox, empty_database: Stack
) -> None:
    sql = Sql(empty_database.database_url)
    assert not (await sql.tables()) & LOCKBOX_TABLES

    first = (await lockbox("migrate", "--database-url", empty_database.database_url)).ok()
    assert "up to date" in first.stdout
    assert await sql.tables() >= LOCKBOX_TABLES

    again = (await lockbox("migrate", "--database-url", empty_database.database_url)).ok()
    assert "up to date" in again.stdout
    assert await _counts(sql) == dict.fromkeys(
        ("tenant", "principal", "api_token", "support_ticket", "audit_event"), 0
    )


async def test_migrate_reads_the_database_url_from_the_environment(
    lockbox: Lockbox, empty_database: Stack
) -> None:
    env = clean_env(LOCKBOX_DATABASE_URL=empty_database.database_url)
    (await lockbox("migrate", env=env)).ok()
    assert await Sql(empty_database.database_url).tables() >= LOCKBOX_TABLES


async def test_models_and_migrations_describe_the_same_schema(stack: Stack) -> None:
    """What `make migrations` would write: nothing, or a migration is missing."""
    config = db.tortoise_config(stack.database_url)
    async with db.database(stack.database_url) as context:
        detector = MigrationAutodetector(context.apps, copy.deepcopy(config["apps"]))
        writers = await detector.changes()
    pending = {
        writer.name: [f"{type(op).__name__} {vars(op)}" for op in writer.operations]
        for writer in writers
    }
    assert pending == {}, f"models changed without a migration: {pending}"


async def test_seed_demo_prints_one_json_object_with_the_demo_world(
    lockbox: Lockbox, empty_database: Stack
) -> None:
    """Seeding migrates first, so an empty database will do."""
    result = (
        await lockbox("seed-demo", "--json", "--database-url", empty_database.database_url)
    ).ok()
    assert "Traceback" not in result.stderr

    world = result.json()  # the whole of stdout parses as one JSON value
    assert isinstance(world, dict)
    assert set(world) >= {"tenants", "principals", "tickets"}
    assert set(world["tenants"]) == set(DEMO_TENANTS)
    assert set(world["principals"]) == set(DEMO_PRINCIPALS)
    assert set(world["tickets"]) == set(DEMO_TICKETS)
    ids = [v["id"] for group in ("tenants", "principals", "tickets") for v in world[group].values()]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(set(ids)) == len(ids)
    tokens = [p["token"] for p in world["principals"].values()]
    assert all(isinstance(t, str) and len(t) >= 20 for t in tokens)
    assert len(set(tokens)) == len(tokens)

    # Each printed token is live in the database, kept as its hash only.
    sql = Sql(empty_database.database_url)
    stored = {row[0] for row in await sql.fetch("SELECT token_hash FROM api_token")}
    assert {hashlib.sha256(t.encode()).hexdigest() for t in tokens} <= stored
    assert not set(tokens) & stored

    names = {row[0]: str(row[1]) for row in await sql.fetch("SELECT name, id FROM tenant")}
    assert names == {name: world["tenants"][name]["id"] for name in DEMO_TENANTS}


async def test_seeding_the_demo_twice_fails_clearly_and_creates_no_duplicates(
    lockbox: Lockbox, stack: Stack
) -> None:
    sql = Sql(stack.database_url)
    (await lockbox("seed-demo", "--json", "--database-url", stack.database_url)).ok()
    before = await _counts(sql)
    assert before["tenant"] == len(DEMO_TENANTS)
    assert before["principal"] == len(DEMO_PRINCIPALS)

    again = await lockbox("seed-demo", "--json", "--database-url", stack.database_url)
    assert_clean_failure(again, "already exists")
    assert await _counts(sql) == before
