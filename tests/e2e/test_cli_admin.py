"""`lockbox admin`: provisioning from the shell, against a running server.

The admin commands run as separate processes; the `live` server sees their
revocations through the broker (Redis on the PostgreSQL stack) or, on the
in-process memory broker, through its database poll.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import websockets

from tests.conftest import Live, Stack, World
from tests.e2e.cli_support import Lockbox, Result, Sql, assert_clean_failure
from tests.support import LEGACY_WS, TRANSPORT_WS, WsClient

ME = "{ me { name role scopes tenant { name } } }"
CREATE_REQUEST = """
mutation($ticket: ID!, $resource: String!) {
  createAccessRequest(input: {ticketId: $ticket, resources: [$resource],
                              justification: "checking the slow queries"}) { id status }
}"""
AUTHORIZE = """
mutation($id: ID!, $resource: String!) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: "read rows"}) {
    allowed event { cursor }
  }
}"""
ACTIVITY = "subscription($id: ID!) { engineerActivity(requestId: $id) { cursor action allowed } }"


def flags(stack: Stack) -> list[str]:
    return ["--database-url", stack.database_url, "--broker-url", stack.broker_url, "--json"]


async def admin(lockbox: Lockbox, stack: Stack, *args: str) -> Any:
    return (await lockbox("admin", *args, *flags(stack))).json()


async def admin_result(lockbox: Lockbox, stack: Stack, *args: str) -> Result:
    return await lockbox("admin", *args, *flags(stack))


async def open_subscriptions(live: Live, token: str, request_id: str) -> list[WsClient]:
    """One engineerActivity subscription per protocol, each past its replay."""
    clients = []
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        client = WsClient(live.ws_url, protocol)
        await client.connect(token)
        await client.subscribe("activity", ACTIVITY, id=request_id)
        first = await client.next_data()
        assert first["engineerActivity"]["action"] == "read rows"
        clients.append(client)
    return clients


async def assert_subscription_ends(client: WsClient, timeout: float = 10) -> None:
    """The server ends the open subscription: an UNAUTHENTICATED error, then
    `complete` (both protocols). Fails if the deadline passes first."""
    message = await client.receive(timeout)
    assert message["type"] in ("next", "data", "error"), message
    payload = message["payload"]
    errors = payload if isinstance(payload, list) else payload.get("errors", [payload])
    assert errors and errors[0]["extensions"]["code"] == "UNAUTHENTICATED", message
    if message["type"] != "error":
        done = await client.receive(timeout)
        assert done == {"type": "complete", "id": message["id"]}, done


async def request_with_activity(live: Live, world: World, ticket: str, resource: str) -> str:
    """A pending request by engineer-alice with one (denied) gate call recorded."""
    alice = world.token("engineer-alice")
    created = await live.http.data(alice, CREATE_REQUEST, ticket=ticket, resource=resource)
    request_id = str(created["createAccessRequest"]["id"])
    decision = await live.http.data(alice, AUTHORIZE, id=request_id, resource=resource)
    assert decision["authorizeAccess"]["allowed"] is False  # still pending
    return request_id


async def test_provisioned_tenant_approver_and_token_work_until_the_token_is_revoked(
    lockbox: Lockbox, live: Live, world: World
) -> None:
    stack = live.stack
    tenant = await admin(
        lockbox,
        stack,
        "tenant",
        "create",
        "acme",
        "--root",
        "/subscriptions/acme-prod",
        "--root",
        "/subscriptions/acme-dev",
    )
    assert tenant["name"] == "acme"
    assert tenant["resourceRoots"] == ["/subscriptions/acme-prod", "/subscriptions/acme-dev"]
    assert tenant["lockboxEnabled"] is True
    listed = await admin(lockbox, stack, "tenant", "list")
    assert "acme" in {t["name"] for t in listed}

    outside = await admin_result(
        lockbox,
        stack,
        "principal",
        "create",
        "acme-stray",
        "--role",
        "APPROVER",
        "--tenant",
        "acme",
        "--scope",
        "/subscriptions/contoso-prod",
    )
    assert_clean_failure(outside, "/subscriptions/contoso-prod", "acme")
    principal = await admin(
        lockbox,
        stack,
        "principal",
        "create",
        "acme-approver",
        "--role",
        "APPROVER",
        "--tenant",
        "acme",
        "--scope",
        "/subscriptions/acme-prod",
    )
    assert principal["role"] == "APPROVER"
    assert principal["scopes"] == ["/subscriptions/acme-prod"]
    assert principal["tenantId"] == tenant["id"]
    names = {
        p["name"] for p in await admin(lockbox, stack, "principal", "list", "--tenant", "acme")
    }
    assert names == {"acme-approver"}

    ticket = await admin(lockbox, stack, "ticket", "create", "--tenant", "acme", "Disk is full")
    assert ticket["tenantId"] == tenant["id"]
    assert ticket["open"] is True

    issued = await admin(lockbox, stack, "token", "issue", "acme-approver", "--label", "laptop")
    secret = str(issued["token"])
    token_id = str(issued["id"])

    # The secret is shown once: never by `token list`, never stored.
    for listing in (
        await lockbox(
            "admin", "token", "list", "acme-approver", "--database-url", stack.database_url
        ),
        await lockbox("admin", "token", "list", "acme-approver", *flags(stack)),
    ):
        assert token_id in listing.ok().stdout
        assert secret not in listing.stdout
    rows = await Sql(stack.database_url).fetch("SELECT * FROM api_token")
    assert secret not in repr(rows)
    assert hashlib.sha256(secret.encode()).hexdigest() in repr(rows)

    me = (await live.http.data(secret, ME))["me"]
    assert me == {
        "name": "acme-approver",
        "role": "APPROVER",
        "scopes": ["/subscriptions/acme-prod"],
        "tenant": {"name": "acme"},
    }

    request_id = await request_with_activity(
        live, world, ticket["id"], "/subscriptions/acme-prod/resourceGroups/rg1"
    )
    clients = await open_subscriptions(live, secret, request_id)
    try:
        revoked = await admin(lockbox, stack, "token", "revoke", token_id)
        assert revoked["revoked"] is True
        assert await live.http.error_code(secret, ME) == "UNAUTHENTICATED"
        for client in clients:
            await assert_subscription_ends(client)
    finally:
        for client in clients:
            await client.close()

    tokens = await admin(lockbox, stack, "token", "list", "acme-approver")
    assert [(t["id"], t["revoked"]) for t in tokens] == [(token_id, True)]


async def test_disabling_a_principal_locks_it_out_at_once_and_enabling_lets_it_back(
    lockbox: Lockbox, live: Live, world: World
) -> None:
    stack = live.stack
    token = world.token("contoso-approver-prod")
    request_id = await request_with_activity(
        live, world, world.ticket("contoso"), "/subscriptions/contoso-prod/resourceGroups/rg1"
    )
    clients = await open_subscriptions(live, token, request_id)
    try:
        disabled = await admin(lockbox, stack, "principal", "disable", "contoso-approver-prod")
        assert disabled["disabled"] is True
        assert await live.http.error_code(token, ME) == "UNAUTHENTICATED"
        for client in clients:
            await assert_subscription_ends(client)
    finally:
        for client in clients:
            await client.close()

    refused = WsClient(live.ws_url, TRANSPORT_WS)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await refused.connect(token, expect_ack=False)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    await refused.close()

    enabled = await admin(lockbox, stack, "principal", "enable", "contoso-approver-prod")
    assert enabled["disabled"] is False
    assert (await live.http.data(token, ME))["me"]["name"] == "contoso-approver-prod"


async def test_admin_refuses_bad_provisioning_with_one_clear_line(
    lockbox: Lockbox, stack: Stack
) -> None:
    (
        await lockbox(
            "admin", "tenant", "create", "acme", "--root", "/subscriptions/acme", *flags(stack)
        )
    ).ok()
    duplicate = await admin_result(lockbox, stack, "tenant", "create", "acme", "--root", "/x")
    assert_clean_failure(duplicate, "acme", "already exists")
    no_scope = await admin_result(
        lockbox, stack, "principal", "create", "p1", "--role", "APPROVER", "--tenant", "acme"
    )
    assert_clean_failure(no_scope, "scope")
    unknown_tenant = await admin_result(
        lockbox, stack, "principal", "create", "p2", "--role", "AUDITOR", "--tenant", "nowhere"
    )
    assert_clean_failure(unknown_tenant, "nowhere")
    unknown_token = await admin_result(lockbox, stack, "token", "revoke", "not-a-token-id")
    assert_clean_failure(unknown_token, "not-a-token-id")
