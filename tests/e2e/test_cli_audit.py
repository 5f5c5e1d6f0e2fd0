"""`lockbox audit verify` against a seeded database, intact and tampered with.

The tampering goes straight to the database (sqlite3 on the file, asyncpg on
PostgreSQL), the way someone with database access but no Lockbox would.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import Stack, World
from tests.e2e.cli_support import Lockbox, Result, Sql

# Fabrikam's events are not the first rows of the table, so an event's id and
# its seq differ and the report must name the right one.
TARGET = "fabrikam"
OTHERS = ("contoso", "northwind")
TARGET_ID = f"(SELECT id FROM tenant WHERE name = '{TARGET}')"


async def verify(lockbox: Lockbox, stack: Stack, *args: str) -> Result:
    return await lockbox("audit", "verify", "--database-url", stack.database_url, *args)


async def target_chain(sql: Sql) -> list[tuple[int, int]]:
    """(id, seq) of the target tenant's audit events, in seq order."""
    rows = await sql.fetch(
        f"SELECT id, seq FROM audit_event WHERE tenant_id = {TARGET_ID} ORDER BY seq"
    )
    chain = [(int(row[0]), int(row[1])) for row in rows]
    assert len(chain) >= 4, chain
    assert chain[0][0] != chain[0][1], "ids and seqs coincide; pick another tenant"
    return chain


def broken_line(result: Result) -> str:
    """The one line that reports the target tenant broken; the others are intact."""
    assert result.returncode == 1, result.describe()
    assert "Traceback" not in result.stdout + result.stderr, result.describe()
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if TARGET in line and "BROKEN" in line]
    assert len(lines) == 1, result.describe()
    for other in OTHERS:
        assert not [line for line in output.splitlines() if other in line and "BROKEN" in line], (
            result.describe()
        )
    return lines[0]


def names_event(line: str, seq: int, event_id: int) -> bool:
    """Whether the report names this event by its seq and its id."""
    return bool(re.search(rf"#{seq}\b", line)) and bool(re.search(rf"\b{event_id}\b", line))


async def test_verify_reports_every_intact_chain_and_exits_zero(
    lockbox: Lockbox, stack: Stack, world: World
) -> None:
    events = int(await Sql(stack.database_url).scalar("SELECT count(*) FROM audit_event"))
    assert events > 0
    result = await verify(lockbox, stack)
    assert result.returncode == 0, result.describe()
    for tenant in ("contoso", "fabrikam", "northwind"):
        assert re.search(rf"^ok\b.*\b{tenant}\b.*intact", result.stdout, re.MULTILINE), (
            result.stdout
        )
    assert f"{events} events" in result.stdout
    assert "0 broken" in result.stdout

    only = await verify(lockbox, stack, "--tenant", "fabrikam")
    assert only.returncode == 0, only.describe()
    assert "fabrikam" in only.stdout
    assert "contoso" not in only.stdout


@pytest.mark.parametrize(
    "change",
    [
        pytest.param("""detail = '{"principal": "mallory"}'""", id="detail"),
        pytest.param("action = 'token.revoked'", id="action"),
    ],
)
async def test_editing_an_event_breaks_the_chain_at_that_event(
    lockbox: Lockbox, stack: Stack, world: World, change: str
) -> None:
    sql = Sql(stack.database_url)
    chain = await target_chain(sql)
    event_id, seq = chain[2]
    await sql.execute(f"UPDATE audit_event SET {change} WHERE id = {event_id}")
    line = broken_line(await verify(lockbox, stack))
    assert names_event(line, seq, event_id), line

    # Verifying an untouched tenant alone still passes.
    other = await verify(lockbox, stack, "--tenant", OTHERS[0])
    assert other.returncode == 0, other.describe()


async def test_deleting_a_middle_event_breaks_the_chain_at_the_gap(
    lockbox: Lockbox, stack: Stack, world: World
) -> None:
    sql = Sql(stack.database_url)
    chain = await target_chain(sql)
    deleted_id, deleted_seq = chain[1]
    await sql.execute(f"DELETE FROM audit_event WHERE id = {deleted_id}")
    line = broken_line(await verify(lockbox, stack, "--tenant", TARGET))
    # The first broken event is the one after the gap; the missing seq is named.
    next_id, next_seq = chain[2]
    assert names_event(line, next_seq, next_id), line
    assert f"#{deleted_seq}" in line


async def test_swapping_two_events_breaks_the_chain_at_the_first_of_them(
    lockbox: Lockbox, stack: Stack, world: World
) -> None:
    sql = Sql(stack.database_url)
    chain = await target_chain(sql)
    (first_id, first_seq), (second_id, second_seq) = chain[1], chain[2]
    # (tenant, seq) is unique, so swap through a spare value.
    await sql.execute(
        f"UPDATE audit_event SET seq = -1 WHERE id = {first_id}",
        f"UPDATE audit_event SET seq = {first_seq} WHERE id = {second_id}",
        f"UPDATE audit_event SET seq = {second_seq} WHERE id = {first_id}",
    )
    line = broken_line(await verify(lockbox, stack))
    assert re.search(rf"\b{first_id}\b", line), line
    assert f"#{first_seq}" in line or f"#{second_seq}" in line, line


async def test_swapping_the_contents_of_two_events_breaks_the_chain_at_the_first_of_them(
    lockbox: Lockbox, stack: Stack, world: World
) -> None:
    sql = Sql(stack.database_url)
    chain = await target_chain(sql)
    (first_id, first_seq), (second_id, _) = chain[1], chain[2]
    columns = "action, detail, actor_id, request_id, at, prev_hash, hash"
    rows = {
        int(row[0]): row[1:]
        for row in await sql.fetch(
            f"SELECT id, {columns} FROM audit_event WHERE id IN ({first_id}, {second_id})"
        )
    }
    assert rows[first_id] != rows[second_id]
    # Move every hashed column except seq: the rows trade places in the chain.
    statements = []
    for target, source in ((first_id, second_id), (second_id, first_id)):
        assignments = ", ".join(
            f"{column} = (SELECT {column} FROM audit_event_copy WHERE id = {source})"
            for column in columns.split(", ")
        )
        statements.append(f"UPDATE audit_event SET {assignments} WHERE id = {target}")
    await sql.execute(
        "CREATE TABLE audit_event_copy AS SELECT * FROM audit_event",
        *statements,
        "DROP TABLE audit_event_copy",
    )
    line = broken_line(await verify(lockbox, stack))
    assert names_event(line, first_seq, first_id), line


async def test_deleting_the_newest_event_is_detected(
    lockbox: Lockbox, stack: Stack, world: World
) -> None:
    sql = Sql(stack.database_url)
    chain = await target_chain(sql)
    newest_id, newest_seq = chain[-1]
    await sql.execute(f"DELETE FROM audit_event WHERE id = {newest_id}")
    line = broken_line(await verify(lockbox, stack))
    assert f"#{newest_seq}" in line, line
