"""Tamper evidence against someone who can write the database (contract
section 10): a keyed chain, anchored heads, request rows the chain vouches
for, and malformed rows reported rather than crashed on.

Everything runs the real `lockbox audit` command; the tampering goes straight
to the database (sqlite3 on the file, asyncpg on PostgreSQL), the way a
database writer without Lockbox's key would do it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from lockbox.clock import ManualClock
from lockbox.domain.audit import AuditRecord, chain_hash
from lockbox.domain.lifecycle import Action
from lockbox.realtime.broker import broker_from_url
from lockbox.realtime.hub import Hub
from lockbox.services import requests
from lockbox.services.deps import Deps
from lockbox.store.models import AccessRequest
from tests.conftest import STACK, Stack, World
from tests.e2e.cli_support import Lockbox, Result, Sql, clean_env

KEY = "correct horse battery staple, kept in a vault"
PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"
TENANT_ID = "(SELECT id FROM tenant WHERE name = '{}')"


@pytest.fixture
async def deps(
    request: pytest.FixtureRequest, database: Stack, clock: ManualClock
) -> AsyncIterator[Deps]:
    """The services with LOCKBOX_AUDIT_KEY (or, parametrised, with None)."""
    key: str | None = getattr(request, "param", KEY)
    services = Deps(
        clock=clock,
        broker=broker_from_url(database.broker_url),
        hub=Hub(),
        audit_key=None if key is None else key.encode(),
    )
    await services.broker.start(services.hub.deliver, services.hub.resync_all)
    try:
        yield services
    finally:
        await services.broker.close()


@pytest.fixture
def lockbox(tmp_path: Path) -> Lockbox:
    return Lockbox(tmp_path)


async def approved(deps: Deps, world: World, resources: list[str] | None = None) -> AccessRequest:
    request = await requests.create(
        deps,
        world.actors["engineer-alice"],
        ticket_id=world.ticket("contoso"),
        resources=resources or [PROD],
        justification="tamper tests",
        duration_seconds=3600,
    )
    return await requests.transition(
        deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE, "looks fine"
    )


async def verify(lockbox: Lockbox, stack: Stack, *args: str, key: str | None = KEY) -> Result:
    env = clean_env() if key is None else clean_env(LOCKBOX_AUDIT_KEY=key)
    return await lockbox("audit", "verify", "--database-url", stack.database_url, *args, env=env)


def broken_lines(result: Result, tenant: str) -> list[str]:
    """The BROKEN lines about `tenant` of a verify that exited 1 cleanly."""
    assert result.returncode == 1, result.describe()
    assert "Traceback" not in result.stdout + result.stderr, result.describe()
    lines = [line for line in result.stdout.splitlines() if "BROKEN" in line and tenant in line]
    assert lines, result.describe()
    return lines


def names_event(line: str, seq: int, event_id: int) -> bool:
    return bool(re.search(rf"#{seq}\b", line)) and bool(re.search(rf"\bid {event_id}\b", line))


async def chain(sql: Sql, tenant: str) -> list[tuple[int, int]]:
    """(id, seq) of a tenant's audit events in seq order."""
    rows = await sql.fetch(
        f"SELECT id, seq FROM audit_event WHERE tenant_id = {TENANT_ID.format(tenant)} ORDER BY seq"
    )
    return [(int(row[0]), int(row[1])) for row in rows]


async def rewrite_chain(
    sql: Sql, tenant: str, edit_id: int, detail: dict[str, object], key: bytes | None
) -> None:
    """Edit one event's detail, then recompute every link from there on (with
    `key`: plain SHA-256 when None, a guessed key otherwise) and move the
    tenant's head: what a writer who knows the hash rule would do."""
    rows = await sql.fetch(
        "SELECT e.id, e.seq, CAST(e.at AS TEXT), e.action, CAST(e.actor_id AS TEXT), "
        "CAST(e.request_id AS TEXT), CAST(e.detail AS TEXT), e.hash, CAST(t.id AS TEXT) "
        f"FROM audit_event e JOIN tenant t ON t.id = e.tenant_id "
        f"WHERE t.name = '{tenant}' ORDER BY e.seq"
    )
    statements: list[str] = []
    prev: str | None = None
    rewriting = False
    for event_id, seq, at, action, actor, request_id, stored_detail, stored_hash, tenant_id in rows:
        rewriting = rewriting or int(event_id) == edit_id
        body = detail if int(event_id) == edit_id else json.loads(stored_detail)
        record = AuditRecord(
            tenant_id=str(tenant_id),
            seq=int(seq),
            at=datetime.fromisoformat(str(at)),
            action=str(action),
            actor_id=actor,
            request_id=request_id,
            detail=body,
        )
        if not rewriting:
            prev = str(stored_hash)
            continue
        digest = chain_hash(prev, record, key)
        text = json.dumps(body).replace("'", "''")
        prev_sql = "NULL" if prev is None else f"'{prev}'"
        statements.append(
            f"UPDATE audit_event SET detail = '{text}', prev_hash = {prev_sql}, "
            f"hash = '{digest}' WHERE id = {event_id}"
        )
        prev = digest
    statements.append(f"UPDATE tenant SET audit_head = '{prev}' WHERE name = '{tenant}'")
    await sql.execute(*statements)


# --- the key ----------------------------------------------------------------------------


async def test_a_keyed_chain_verifies_with_its_key_and_says_so_without_it(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps
) -> None:
    await approved(deps, world)
    ok = await verify(lockbox, stack)
    assert ok.returncode == 0, ok.describe()
    assert "0 broken" in ok.stdout

    sql = Sql(stack.database_url)
    for key in (None, "another key"):
        result = await verify(lockbox, stack, key=key)
        for tenant in ("contoso", "fabrikam", "northwind"):
            (line,) = broken_lines(result, tenant)
            first_id, first_seq = (await chain(sql, tenant))[0]
            assert names_event(line, first_seq, first_id), line
            assert "audit key does not match" in line, line


@pytest.mark.parametrize(
    "forger_key",
    [pytest.param(None, id="plain-sha256"), pytest.param(b"guessed", id="guessed-key")],
)
async def test_an_edit_with_every_following_hash_recomputed_is_caught_with_the_key(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, forger_key: bytes | None
) -> None:
    await approved(deps, world)
    sql = Sql(stack.database_url)
    events = await chain(sql, "contoso")
    edit_id, edit_seq = events[2]
    await rewrite_chain(sql, "contoso", edit_id, {"principal": "mallory"}, forger_key)

    # Consistent as far as plain SHA-256 goes...
    if forger_key is None:
        unkeyed = await verify(lockbox, stack, "--tenant", "contoso", key=None)
        (line,) = broken_lines(unkeyed, "contoso")
        assert "#1 " in line and "audit key does not match" in line, line
    # ...but not under the key: caught at the edited event, the others intact.
    result = await verify(lockbox, stack)
    (line,) = broken_lines(result, "contoso")
    assert names_event(line, edit_seq, edit_id), line
    assert not [x for x in result.stdout.splitlines() if "BROKEN" in x and "contoso" not in x]


# --- anchored heads ---------------------------------------------------------------------


async def head_file(lockbox: Lockbox, stack: Stack, folder: Path, key: str | None) -> Path:
    env = clean_env() if key is None else clean_env(LOCKBOX_AUDIT_KEY=key)
    result = await lockbox("audit", "head", "--database-url", stack.database_url, "--json", env=env)
    path = folder / "heads.json"
    path.write_text(result.ok().stdout)
    return path


async def test_audit_head_json_round_trips_into_expect_head(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, tmp_path: Path
) -> None:
    path = await head_file(lockbox, stack, tmp_path, KEY)
    heads = json.loads(path.read_text())
    sql = Sql(stack.database_url)
    stored = {
        str(row[0]): (str(row[1]), int(row[2]), row[3])
        for row in await sql.fetch(
            "SELECT CAST(id AS TEXT), name, audit_seq, audit_head FROM tenant"
        )
    }
    assert {h["tenantId"]: (h["name"], h["seq"], h["hash"]) for h in heads} == stored

    text = await lockbox(
        "audit", "head", "--database-url", stack.database_url, "--tenant", "fabrikam"
    )
    assert "fabrikam" in text.ok().stdout and "contoso" not in text.stdout

    # The chain grows after the heads were recorded: still fine.
    await approved(deps, world)
    result = await verify(lockbox, stack, "--expect-head", str(path))
    assert result.returncode == 0, result.describe()
    assert result.stdout.count("recorded head matches") == 3, result.stdout


async def test_a_deleted_chain_with_its_head_reset_is_caught_by_expect_head(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, tmp_path: Path
) -> None:
    path = await head_file(lockbox, stack, tmp_path, KEY)
    sql = Sql(stack.database_url)
    seq = len(await chain(sql, "fabrikam"))
    await sql.execute(
        f"DELETE FROM audit_event WHERE tenant_id = {TENANT_ID.format('fabrikam')}",
        "UPDATE tenant SET audit_seq = 0, audit_head = NULL WHERE name = 'fabrikam'",
    )
    # An empty chain with an empty head is self-consistent...
    plain = await verify(lockbox, stack)
    assert plain.returncode == 0, plain.describe()
    # ...but it no longer reaches the head recorded elsewhere.
    result = await verify(lockbox, stack, "--expect-head", str(path))
    (line,) = broken_lines(result, "fabrikam")
    assert f"#{seq}" in line, line
    assert not [x for x in result.stdout.splitlines() if "BROKEN" in x and "fabrikam" not in x]


@pytest.mark.parametrize("deps", [None], indirect=True, ids=["no-key"])
async def test_without_a_key_a_rewritten_chain_is_caught_by_expect_head(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, tmp_path: Path
) -> None:
    path = await head_file(lockbox, stack, tmp_path, None)
    sql = Sql(stack.database_url)
    events = await chain(sql, "fabrikam")
    edit_id, _ = events[1]
    await rewrite_chain(sql, "fabrikam", edit_id, {"principal": "mallory"}, None)
    plain = await verify(lockbox, stack, key=None)
    assert plain.returncode == 0, plain.describe()

    result = await verify(lockbox, stack, "--expect-head", str(path), key=None)
    (line,) = broken_lines(result, "fabrikam")
    last_id, last_seq = events[-1]
    assert names_event(line, last_seq, last_id), line


# --- request rows -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param(
            """resources = '["/subscriptions/contoso-prod"]'""", "resources", id="resources"
        ),
        pytest.param("access_ends_at = '2099-01-01 00:00:00+00:00'", "accessEndsAt", id="window"),
        pytest.param(
            "access_starts_at = '2000-01-01 00:00:00+00:00', "
            "access_ends_at = '2099-01-01 00:00:00+00:00'",
            "accessStartsAt",
            id="window-both",
        ),
        pytest.param(
            "decided_by_id = (SELECT id FROM principal WHERE name = 'contoso-approver-prod')",
            "decidedBy",
            id="decider",
        ),
        pytest.param("duration_seconds = 86400", "durationSeconds", id="duration"),
        pytest.param(
            "engineer_id = (SELECT id FROM principal WHERE name = 'engineer-bob')",
            "engineer",
            id="engineer",
        ),
    ],
)
@pytest.mark.parametrize("deps", [KEY, None], indirect=True, ids=["key", "no-key"])
async def test_a_widened_or_reattributed_request_row_is_caught(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, change: str, named: str
) -> None:
    request = await approved(deps, world)
    key = KEY if deps.audit_key else None
    ok = await verify(lockbox, stack, key=key)
    assert ok.returncode == 0, ok.describe()

    await Sql(stack.database_url).execute(
        f"UPDATE access_request SET {change} WHERE id = '{request.id}'"
    )
    result = await verify(lockbox, stack, key=key)
    (line,) = broken_lines(result, "contoso")
    assert str(request.id) in line and named in line, line


async def test_a_revoked_request_set_back_to_approved_is_caught(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps
) -> None:
    request = await approved(deps, world)
    await requests.transition(
        deps, world.actors["contoso-admin"], str(request.id), Action.REVOKE, "done"
    )
    await Sql(stack.database_url).execute(
        "UPDATE access_request SET status = 'APPROVED', "
        f"access_ends_at = '2099-01-01 00:00:00+00:00' WHERE id = '{request.id}'"
    )
    (line,) = broken_lines(await verify(lockbox, stack), "contoso")
    assert str(request.id) in line and "status" in line and "accessEndsAt" in line, line


# --- malformed rows -------------------------------------------------------------------------


# (what to write, what the report names, whether PostgreSQL's column types allow it)
GARBAGE = [
    pytest.param("at = 'not a time'", "at", False, id="at"),
    pytest.param("detail = 'not json {'", "detail", False, id="detail-not-json"),
    pytest.param("""detail = '"hello"'""", "detail", True, id="detail-string"),
    pytest.param("detail = '[1, 2]'", "detail", True, id="detail-array"),
    pytest.param("detail = 'null'", "detail", True, id="detail-null"),
    pytest.param("actor_id = 'mallory'", "actor_id", False, id="actor"),
    pytest.param("seq = 'x'", "seq", False, id="seq"),
]


@pytest.mark.parametrize(("change", "named", "on_postgres"), GARBAGE)
@pytest.mark.parametrize("deps", [KEY, None], indirect=True, ids=["key", "no-key"])
async def test_a_malformed_row_is_a_broken_event_not_a_crash(
    lockbox: Lockbox,
    stack: Stack,
    world: World,
    deps: Deps,
    change: str,
    named: str,
    on_postgres: bool,
) -> None:
    if STACK != "sqlite" and not on_postgres:
        pytest.skip("PostgreSQL's column types refuse this value")
    sql = Sql(stack.database_url)
    event_id, seq = (await chain(sql, "contoso"))[2]
    await sql.execute(f"UPDATE audit_event SET {change} WHERE id = {event_id}")
    key = KEY if deps.audit_key else None
    result = await verify(lockbox, stack, key=key)
    (line,) = broken_lines(result, "contoso")
    assert re.search(rf"\bid {event_id}\b", line), line
    assert f"#{seq}" in line, line
    assert "malformed" in line and named in line, line
    assert "1 broken" in result.stdout, result.stdout
