"""`lockbox admin principal create … --email` and `principal update NAME
--email ADDR` (contract section 6): validated, audited without the address,
and seen at once by the running server."""

from __future__ import annotations

import json

from tests.conftest import Live, Stack, World
from tests.e2e.cli_support import Lockbox, Sql, assert_clean_failure
from tests.e2e.test_cli_admin import admin, admin_result, flags

ME = "{ me { name email } }"
AUDIT = "{ auditLog(first: 200) { edges { node { action actor { name } detail } } } }"


async def audit_trail(live: Live, world: World) -> list[dict[str, object]]:
    data = await live.http.data(world.token("contoso-admin"), AUDIT)
    return [edge["node"] for edge in data["auditLog"]["edges"]]


async def test_create_takes_an_email_and_refuses_a_bad_one(lockbox: Lockbox, stack: Stack) -> None:
    (await lockbox("admin", "tenant", "create", "acme", "--root", "/s/acme", *flags(stack))).ok()

    created = await admin(
        lockbox,
        stack,
        "principal",
        "create",
        "acme-admin",
        "--role",
        "TENANT_ADMIN",
        "--tenant",
        "acme",
        "--email",
        " admin@acme.example ",
    )
    assert created["email"] == "admin@acme.example"
    dana = await admin(
        lockbox,
        stack,
        "principal",
        "create",
        "dana",
        "--role",
        "ENGINEER",
        "--email",
        "d@p.example",
    )
    assert (dana["role"], dana["email"]) == ("ENGINEER", "d@p.example")
    plain = await admin(lockbox, stack, "principal", "create", "erin", "--role", "ENGINEER")
    assert plain["email"] is None

    for bad in ("not-an-address", "two@at@acme.example", "a@acme.example\nBcc: x@y.example"):
        auditor = ["acme-x", "--role", "AUDITOR", "--tenant", "acme", "--email", bad]
        refused = await admin_result(lockbox, stack, "principal", "create", *auditor)
        assert_clean_failure(refused, "not a valid e-mail address")
    names = {p["name"] for p in await admin(lockbox, stack, "principal", "list")}
    assert names == {"acme-admin", "dana", "erin"}


async def test_update_changes_the_email_audited_without_the_address(
    lockbox: Lockbox, live: Live, world: World
) -> None:
    stack = live.stack
    approver = world.token("contoso-approver-prod")
    before = await audit_trail(live, world)

    updated = await admin(
        lockbox,
        stack,
        "principal",
        "update",
        "contoso-approver-prod",
        "--email",
        "ap@contoso.example",
    )
    assert updated["name"] == "contoso-approver-prod"
    assert updated["email"] == "ap@contoso.example"
    assert (await live.http.data(approver, ME))["me"]["email"] == "ap@contoso.example"

    # The same address again is no change; by id works as well as by name.
    again = await admin(
        lockbox, stack, "principal", "update", updated["id"], "--email", "ap@contoso.example"
    )
    assert again == updated

    cleared = await admin(lockbox, stack, "principal", "update", updated["id"], "--no-email")
    assert cleared["email"] is None
    assert (await live.http.data(approver, ME))["me"]["email"] is None

    new = (await audit_trail(live, world))[len(before) :]
    assert [e["action"] for e in new] == ["principal.updated", "principal.updated"]
    for event in new:
        assert event["detail"] == {"principal": "contoso-approver-prod", "changed": ["email"]}
        assert event["actor"] is None  # the shell acts with the operator's own authority
    assert "ap@contoso.example" not in json.dumps(new)

    # Operator-side principals change too; they have no tenant chain to audit in.
    alice = await admin(
        lockbox, stack, "principal", "update", "engineer-alice", "--email", "alice@p.example"
    )
    assert alice["email"] == "alice@p.example"
    assert len(await audit_trail(live, world)) == len(before) + 2

    verified = await lockbox("audit", "verify", "--database-url", stack.database_url)
    assert verified.returncode == 0, verified.describe()


async def test_update_refuses_bad_input_with_one_clear_line(
    lockbox: Lockbox, live: Live, world: World
) -> None:
    stack = live.stack
    sql = Sql(stack.database_url)
    emails_before = await sql.fetch("SELECT name, email FROM principal ORDER BY name")

    bad = await admin_result(
        lockbox, stack, "principal", "update", "contoso-admin", "--email", "contoso admin@x.example"
    )
    assert_clean_failure(bad, "'contoso admin@x.example'", "not a valid e-mail address")
    unknown = await admin_result(
        lockbox, stack, "principal", "update", "nobody-here", "--email", "n@x.example"
    )
    assert_clean_failure(unknown, "nobody-here", "not found")
    missing = await admin_result(lockbox, stack, "principal", "update", "contoso-admin")
    assert missing.returncode == 2
    assert_clean_failure(missing, "--email")
    both = await admin_result(
        lockbox, stack, "principal", "update", "contoso-admin", "--email", "a@x.example",
        "--no-email",
    )  # fmt: skip
    assert_clean_failure(both, "not allowed with")

    assert await sql.fetch("SELECT name, email FROM principal ORDER BY name") == emails_before


async def test_help_documents_the_email_flags(lockbox: Lockbox) -> None:
    listing = (await lockbox("admin", "principal", "--help")).ok().stdout
    assert "update" in listing
    update = (await lockbox("admin", "principal", "update", "--help")).ok().stdout
    assert "--email ADDR" in update and "--no-email" in update and "--json" in update
    create = (await lockbox("admin", "principal", "create", "--help")).ok().stdout
    assert "--email ADDR" in create
