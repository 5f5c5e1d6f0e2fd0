"""`lockbox audit verify` against a seeded database, intact and tampered with.

The tampering goes straight to the database (sqlite3 on the file, asyncpg on
PostgreSQL), the way someone with database access but no Lockbox would.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import stat
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lockbox.domain.audit import HASHED_FIELDS, AuditRecord, chain_hash
from lockbox.domain.lifecycle import Action
from lockbox.services import admin, gate, requests, signing
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, AuditEvent, Tenant
from tests.conftest import Stack, World
from tests.e2e.cli_support import LOCKBOX, Lockbox, Result, Sql, assert_clean_failure, clean_env

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


# --- compliance evidence (contract section 9) ---------------------------------------------

VERIFY_EXPORT = Path(__file__).resolve().parents[2] / "docs" / "verify_export.py"
PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"


def stdlib_verify(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """docs/verify_export.py under a bare interpreter: isolated (-I: no
    user site, no environment, no script folder on sys.path) and without
    site-packages (-S), so nothing but the standard library is importable."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(VERIFY_EXPORT), str(path)],
        capture_output=True,
        text=True,
        env={**clean_env(), **env},
        timeout=600,
        check=False,
    )


async def decided(deps: Deps, world: World, *, uses: int = 3) -> AccessRequest:
    """A request approved, used and revoked: decisions and activity on record."""
    request = await requests.create(
        deps,
        world.actors["engineer-alice"],
        ticket_id=world.ticket("contoso"),
        resources=[PROD],
        justification="évidence, with a non-ASCII letter",
        duration_seconds=3600,
    )
    admin = world.actors["contoso-admin"]
    await requests.transition(deps, admin, str(request.id), Action.APPROVE, "ok")
    for n in range(uses):
        await gate.authorize(
            deps,
            world.actors["engineer-alice"],
            request_id=str(request.id),
            resource=f"{PROD}/vm{n}",
            action="read",
            detail={"n": n},
        )
    await requests.transition(deps, admin, str(request.id), Action.REVOKE, "terminé")
    return request


async def test_keys_generate_writes_a_private_key_only_its_owner_reads(
    lockbox: Lockbox, tmp_path: Path
) -> None:
    result = (await lockbox("keys", "generate", "signing.pem")).ok()
    path = tmp_path / "signing.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert signing.load_signer(str(path)).key_id in result.stdout
    again = await lockbox("keys", "generate", "signing.pem")
    assert_clean_failure(again, "already exists")
    assert signing.load_signer(str(path)).key_id in result.stdout  # untouched


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_an_export_re_verifies_with_the_standard_library_alone(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, tmp_path: Path, fmt: str
) -> None:
    await decided(deps, world)
    result = (
        await lockbox("audit", "export", "--database-url", stack.database_url, "--format", fmt)
    ).ok()
    total = int(await Sql(stack.database_url).scalar("SELECT count(*) FROM audit_event"))
    export = tmp_path / f"export.{fmt}"
    export.write_text(result.stdout, encoding="utf-8")
    if fmt == "jsonl":
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(lines) == total
        assert set(lines[0]) == {"id", "hash", "prevHash", *HASHED_FIELDS}
        assert "terminé" in result.stdout  # UTF-8, not ASCII escapes
        # Chain order: tenant by tenant, each by seq from 1.
        seqs: dict[str, list[int]] = {}
        for line in lines:
            seqs.setdefault(line["tenantId"], []).append(line["seq"])
        assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())
    else:
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert len(rows) == total
        assert list(rows[0]) == ["id", "hash", "prevHash", *HASHED_FIELDS]
        assert json.loads(rows[0]["detail"]) is not None
    checked = stdlib_verify(export)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == f"ok      {total} events verify"

    # One changed byte in the export (a detail value) is caught and named.
    original = export.read_text(encoding="utf-8")
    target = '"to":"REVOKED"' if fmt == "jsonl" else '""to"":""REVOKED""'
    assert original.count(target) == 1
    export.write_text(original.replace(target, target.replace("REVOKED", "APPROVED")))
    broken = stdlib_verify(export)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "hash does not match its content" in broken.stdout


async def test_an_export_of_a_keyed_chain_needs_the_key_and_filters_by_tenant_and_time(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, tmp_path: Path
) -> None:
    deps.audit_key = b"kept in a vault"
    tenant = await store.get_tenant(world.tenant("fabrikam"))
    assert tenant is not None
    # Key the chain from here on: a fresh tenant would start keyed; fabrikam
    # has unkeyed events, so export only what follows them.
    deps.clock.advance(3600)  # type: ignore[attr-defined]
    since = deps.clock.now()
    await admin.create_ticket(deps, "fabrikam", "keyed 1")
    await admin.create_ticket(deps, "fabrikam", "keyed 2")
    result = (
        await lockbox(
            "audit",
            "export",
            "--database-url",
            stack.database_url,
            "--tenant",
            "fabrikam",
            "--since",
            since.isoformat(),
        )
    ).ok()
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["action"] for line in lines] == ["ticket.created", "ticket.created"]
    assert {line["tenantId"] for line in lines} == {str(tenant.id)}
    export = tmp_path / "keyed.jsonl"
    export.write_text(result.stdout, encoding="utf-8")
    assert stdlib_verify(export).returncode == 1  # plain SHA-256 does not match an HMAC
    keyed = stdlib_verify(export, LOCKBOX_AUDIT_KEY="kept in a vault")
    assert keyed.returncode == 0, keyed.stdout + keyed.stderr
    until = await lockbox(
        "audit", "export", "--database-url", stack.database_url, "--until", since.isoformat()
    )
    assert "keyed 1" not in until.ok().stdout
    bad = await lockbox("audit", "export", "--database-url", stack.database_url, "--since", "x")
    assert_clean_failure(bad, "--since")


async def _seed_chain(tenant_id: uuid.UUID, count: int) -> None:
    """`count` audit events appended to a tenant's chain, written in bulk."""
    tenant = await store.get_tenant(tenant_id)
    assert tenant is not None
    prev, seq = tenant.audit_head, tenant.audit_seq
    at = datetime.now(UTC)
    batch: list[AuditEvent] = []
    for _ in range(count):
        seq += 1
        record = AuditRecord(str(tenant_id), seq, at, "ticket.created", None, None, {"n": seq})
        link = chain_hash(prev, record)
        batch.append(
            AuditEvent(
                tenant_id=tenant_id,
                seq=seq,
                at=at,
                action=record.action,
                detail=record.detail,
                prev_hash=prev,
                hash=link,
            )
        )
        prev = link
        if len(batch) == 5000:
            await AuditEvent.bulk_create(batch)
            batch = []
    await AuditEvent.bulk_create(batch)
    await Tenant.filter(id=tenant_id).update(audit_seq=seq, audit_head=prev)


def _export_peak_rss(database_url: str, tenant: str, out: Path) -> int:
    """Peak RSS (KiB) of one `lockbox audit export` process, stdout to a file."""
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [str(LOCKBOX), "audit", "export", "--database-url", database_url, "--tenant", tenant],
            stdout=sink,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    return usage.ru_maxrss


async def test_exporting_100000_events_keeps_memory_flat(
    stack: Stack, world: World, deps: Deps, tmp_path: Path
) -> None:
    await _seed_chain(uuid.UUID(world.tenant("contoso")), 10_000)
    await _seed_chain(uuid.UUID(world.tenant("fabrikam")), 100_000)
    small = await asyncio.to_thread(
        _export_peak_rss, stack.database_url, "contoso", tmp_path / "small.jsonl"
    )
    large = await asyncio.to_thread(
        _export_peak_rss, stack.database_url, "fabrikam", tmp_path / "large.jsonl"
    )
    print(f"peak RSS of audit export: 10,000 events {small} KiB, 100,000 events {large} KiB")
    with (tmp_path / "large.jsonl").open(encoding="utf-8") as exported:
        assert sum(1 for _ in exported) >= 100_000
    # Ten times the events, (nearly) the same memory: a batch at a time.
    assert large - small < 8 * 1024, (small, large)
    checked = stdlib_verify(tmp_path / "large.jsonl")
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_verify_checks_every_signature_with_the_public_key(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, tmp_path: Path
) -> None:
    deps.signer = signing.generate(str(tmp_path / "signing.pem"))
    public = tmp_path / "public.pem"
    public.write_bytes(deps.signer.verifier.public_pem)
    first = await decided(deps, world)
    second = await decided(deps, world)
    ok = await verify(lockbox, stack, "--public-key", str(public))
    assert ok.returncode == 0, ok.describe()
    assert re.search(r"contoso: 6 decision\(s\), every signature verifies", ok.stdout), ok.stdout

    unchecked = await verify(lockbox, stack)
    assert unchecked.returncode == 0, unchecked.describe()
    assert "signatures not checked (no --public-key)" in unchecked.stdout

    sql = Sql(stack.database_url)
    (deleted,) = await sql.fetch(
        f"SELECT id FROM decision WHERE request_id = '{second.id}' AND action = 'request.revoked'"
    )
    other = signing.generate(str(tmp_path / "other.pem"))
    approval = f"request_id = '{first.id}' AND action = 'request.approved'"
    payload = await sql.scalar(f"SELECT payload FROM decision WHERE {approval}")
    forged = other.sign(json.loads(str(payload)))  # the same payload, another key
    await sql.execute(
        f"UPDATE decision SET signature = '{forged}' "
        f"WHERE request_id = '{first.id}' AND action = 'request.approved'",
        f"DELETE FROM decision WHERE id = {deleted[0]}",
    )
    result = await verify(lockbox, stack, "--public-key", str(public))
    assert result.returncode == 1, result.describe()
    lines = [line for line in result.stdout.splitlines() if line.startswith("BROKEN")]
    assert len(lines) == 2, result.stdout
    assert f"request.approved on request {first.id}): signature does not verify" in lines[0]
    assert f"request {second.id}: the request.revoked decision" in lines[1]
    assert "is missing (deleted)" in lines[1]
    assert "1 broken" in result.stdout

    missing = await verify(lockbox, stack, "--public-key", str(tmp_path / "nowhere.pem"))
    assert_clean_failure(missing, "nowhere.pem")


async def test_verify_says_decisions_are_unsigned_without_a_key_and_still_checks_activity(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, tmp_path: Path
) -> None:
    await decided(deps, world)
    result = await verify(lockbox, stack, "--tenant", "contoso")
    assert result.returncode == 0, result.describe()
    assert "3 decision(s), 0 signed" in result.stdout
    assert "3 unsigned (no LOCKBOX_SIGNING_KEY when decided)" in result.stdout
    assert "3 activity events, activity chains intact" in result.stdout
    public = tmp_path / "public.pem"
    public.write_bytes(signing.generate(str(tmp_path / "k.pem")).verifier.public_pem)
    signed = await verify(lockbox, stack, "--tenant", "contoso", "--public-key", str(public))
    assert signed.returncode == 1
    assert signed.stdout.count(": unsigned") == 3, signed.stdout

    sql = Sql(stack.database_url)
    await sql.execute("UPDATE activity_event SET allowed = NOT allowed WHERE seq = 2")
    tampered = await verify(lockbox, stack, "--tenant", "contoso")
    assert tampered.returncode == 1
    assert "activity #2" in tampered.stdout and "hash does not match" in tampered.stdout


async def test_report_prints_one_request_s_evidence_and_fails_when_tampered(
    lockbox: Lockbox, stack: Stack, world: World, deps: Deps, tmp_path: Path
) -> None:
    key = tmp_path / "signing.pem"
    deps.signer = signing.generate(str(key))
    request = await decided(deps, world)
    env = clean_env(LOCKBOX_SIGNING_KEY=str(key))
    args = ("audit", "report", str(request.id), "--database-url", stack.database_url)
    document = (await lockbox(*args, env=env)).json()
    assert document["verified"] is True and document["problems"] == []
    assert document["request"]["id"] == str(request.id)
    assert document["request"]["status"] == "REVOKED"
    decided_as = ["request.approval_recorded", "request.approved", "request.revoked"]
    assert [d["action"] for d in document["decisions"]] == decided_as
    assert all(d["signature"] and d["keyId"] == deps.signer.key_id for d in document["decisions"])
    assert [a["seq"] for a in document["activity"]] == [1, 2, 3]
    actions = [e["action"] for e in document["auditEvents"]]
    assert actions == ["request.created", *decided_as]

    await Sql(stack.database_url).execute(
        f"UPDATE access_request SET justification = 'something else' WHERE id = '{request.id}'"
    )
    tampered = await lockbox(*args, env=env)
    assert tampered.returncode == 1, tampered.describe()
    found = json.loads(tampered.stdout)
    assert found["verified"] is False
    assert len(found["problems"]) == 3  # each decision names the changed request
    assert all("content changed after it was decided" in p for p in found["problems"])

    unknown = await lockbox(
        "audit", "report", str(uuid.uuid4()), "--database-url", stack.database_url
    )
    assert_clean_failure(unknown, "access request")
