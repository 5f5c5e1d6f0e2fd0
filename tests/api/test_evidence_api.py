"""Compliance evidence over the API (contract section 9): the signing key at
its well-known address, signed decisions, accessReport, auditLog's filters."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from lockbox.api.schema import build_schema
from lockbox.clock import ManualClock
from lockbox.domain.lifecycle import Action
from lockbox.services import signing
from lockbox.services.deps import Deps
from tests.api.helpers import APPROVED_BY_ADMIN, OPERATIONS, PROD, seed_request
from tests.api.test_query_cost import http_context, sql_statements
from tests.conftest import Live, Stack, World, start_server
from tests.e2e.cli_support import Sql
from tests.support import GraphQLHttp

KEY_PATH = "/.well-known/lockbox-signing-key"

DECISIONS = """
query($id: ID!) { accessRequest(id: $id) {
  decisions { action decider { name } at payload signature keyId }
} }
"""

REPORT = """
query($id: ID!) { accessReport(requestId: $id) {
  request { id status }
  decisions { action signature }
  activity { cursor resource hash prevHash }
  auditEvents { seq action }
  verified
  problems
} }
"""


@pytest.fixture
async def signed(
    world: World, database: Stack, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[tuple[Live, signing.Signer]]:
    """The app under uvicorn with LOCKBOX_SIGNING_KEY set."""
    key = tmp_path / "signing.pem"
    signer = signing.generate(str(key))
    server = start_server(database, clock, signing_key=str(key))
    http = GraphQLHttp(server.http_url)
    try:
        yield Live(server=server, http=http, clock=clock, stack=database), signer
    finally:
        await http.aclose()
        await asyncio.to_thread(server.stop)


async def _decide(live: Live, world: World, request_id: str, *operations: str) -> None:
    for operation in operations:
        await live.http.data(world.token("contoso-admin"), OPERATIONS[operation], id=request_id)


async def _use(live: Live, world: World, request_id: str, count: int) -> None:
    for n in range(count):
        await live.http.data(
            world.token("engineer-alice"),
            OPERATIONS["authorizeAccess"],
            id=request_id,
            resource=f"{PROD}/vm{n}",
        )


async def test_the_public_key_is_served_at_its_well_known_address(
    signed: tuple[Live, signing.Signer], world: World
) -> None:
    live, signer = signed
    async with httpx.AsyncClient() as client:
        response = await client.get(live.server.http_url + KEY_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-pem-file"
    assert response.headers["x-lockbox-key-id"] == signer.key_id
    assert response.content == signer.verifier.public_pem
    assert response.text.startswith("-----BEGIN PUBLIC KEY-----")


async def test_without_a_key_the_well_known_address_says_so(live: Live) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(live.server.http_url + KEY_PATH)
    assert response.status_code == 404
    assert "LOCKBOX_SIGNING_KEY" in response.text


async def test_decisions_verify_with_only_the_served_key_and_the_payload_as_served(
    signed: tuple[Live, signing.Signer], deps: Deps, world: World
) -> None:
    live, signer = signed
    request_id = await seed_request(deps, world)
    await _decide(live, world, request_id, "approveRequest", "revokeAccess")
    async with httpx.AsyncClient() as client:
        pem = (await client.get(live.server.http_url + KEY_PATH)).content
    public = load_pem_public_key(pem)
    assert isinstance(public, Ed25519PublicKey)
    data = await live.http.data(world.token("contoso-admin"), DECISIONS, id=request_id)
    decisions = data["accessRequest"]["decisions"]
    # The approver's own approval, the approval it completes, the revocation.
    assert [d["action"] for d in decisions] == [
        "request.approval_recorded",
        "request.approved",
        "request.revoked",
    ]
    for decision in decisions:
        assert decision["decider"]["name"] == "contoso-admin"
        assert decision["keyId"] == signer.key_id
        payload = decision["payload"]
        assert payload["requestId"] == request_id
        assert payload["action"] == decision["action"]
        assert len(payload["contentHash"]) == 64
        message = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        public.verify(base64.b64decode(decision["signature"]), message.encode())
    _, approve, revoke = (d["payload"] for d in decisions)
    assert approve["accessStartsAt"] is not None
    assert revoke["accessEndsAt"] == revoke["at"]  # revoking closes the window now


async def test_without_a_key_decisions_are_served_unsigned(
    live: Live, deps: Deps, world: World
) -> None:
    request_id = await seed_request(deps, world)
    await _decide(live, world, request_id, "denyRequest")
    data = await live.http.data(world.token("contoso-admin"), DECISIONS, id=request_id)
    (decision,) = data["accessRequest"]["decisions"]
    assert decision["action"] == "request.denied"
    assert decision["signature"] is None and decision["keyId"] is None


async def test_access_report_is_one_checked_document_and_names_tampering(
    signed: tuple[Live, signing.Signer], deps: Deps, world: World
) -> None:
    live, _ = signed
    request_id = await seed_request(deps, world)
    await _decide(live, world, request_id, "approveRequest")
    await _use(live, world, request_id, 3)
    await _decide(live, world, request_id, "revokeAccess")

    report = (await live.http.data(world.token("contoso-admin"), REPORT, id=request_id))[
        "accessReport"
    ]
    assert report["verified"] is True and report["problems"] == []
    assert report["request"] == {"id": request_id, "status": "REVOKED"}
    assert [d["action"] for d in report["decisions"]] == [
        "request.approval_recorded",
        "request.approved",
        "request.revoked",
    ]
    assert all(d["signature"] for d in report["decisions"])
    activity = report["activity"]
    assert [a["resource"] for a in activity] == [f"{PROD}/vm{n}" for n in range(3)]
    assert activity[0]["prevHash"] is None
    assert [a["prevHash"] for a in activity[1:]] == [a["hash"] for a in activity[:-1]]
    assert [e["action"] for e in report["auditEvents"]] == [
        "request.created",
        "request.approval_recorded",
        "request.approved",
        "request.revoked",
    ]
    # The engineer sees the report of their own request, not the audit log.
    own = await live.http.data(world.token("engineer-alice"), REPORT, id=request_id)
    assert own["accessReport"]["verified"] is True
    assert own["accessReport"]["auditEvents"] == []
    # Another tenant's admin does not see the request at all.
    for principal in ("fabrikam-admin", "engineer-bob"):
        code = await live.http.error_code(world.token(principal), REPORT, id=request_id)
        assert code == "NOT_FOUND", principal

    await Sql(live.stack.database_url).execute(
        f"UPDATE activity_event SET action = 'write' WHERE request_id = '{request_id}' AND seq = 2"
    )
    tampered = (await live.http.data(world.token("contoso-admin"), REPORT, id=request_id))[
        "accessReport"
    ]
    assert tampered["verified"] is False
    (problem,) = tampered["problems"]
    assert f"request {request_id}: activity #2" in problem
    assert "hash does not match" in problem


# --- auditLog's filters ------------------------------------------------------------------

AUDIT_LOG = """
query($first: Int, $requestId: ID, $actions: [String!], $since: DateTime, $until: DateTime) {
  auditLog(first: $first, requestId: $requestId, actions: $actions, since: $since, until: $until) {
    edges { node { seq action requestId actor { name } } }
    pageInfo { hasNextPage }
  }
}
"""


async def _audit_log(deps: Deps, token: str, **variables: Any) -> Any:
    result = await build_schema().execute(
        AUDIT_LOG, variable_values=variables, context_value=http_context(deps, token)
    )
    return result


async def test_audit_log_filters_by_request_action_and_time_within_the_tenant(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    first = await seed_request(deps, world, then=APPROVED_BY_ADMIN)
    clock.advance(3600)
    middle = clock.now()
    second = await seed_request(deps, world, then=((Action.DENY, "contoso-admin"),))
    clock.advance(3600)
    end = clock.now()
    await seed_request(deps, world, then=APPROVED_BY_ADMIN)
    admin = world.token("contoso-admin")

    def nodes(result: Any) -> list[dict[str, Any]]:
        assert result.errors is None, result.errors
        return [e["node"] for e in result.data["auditLog"]["edges"]]

    only_first = nodes(await _audit_log(deps, admin, requestId=first))
    assert [n["action"] for n in only_first] == [
        "request.created",
        "request.approval_recorded",
        "request.approved",
    ]
    assert {n["requestId"] for n in only_first} == {first}

    approvals = nodes(await _audit_log(deps, admin, actions=["request.approved"]))
    assert len(approvals) == 2 and {n["action"] for n in approvals} == {"request.approved"}
    both = nodes(await _audit_log(deps, admin, actions=["request.denied", "request.approved"]))
    assert [n["action"] for n in both] == ["request.approved", "request.denied", "request.approved"]

    window = nodes(await _audit_log(deps, admin, since=middle.isoformat(), until=end.isoformat()))
    assert {n["requestId"] for n in window} == {second}
    combined = nodes(
        await _audit_log(
            deps, admin, requestId=second, actions=["request.denied"], since=middle.isoformat()
        )
    )
    assert [n["action"] for n in combined] == ["request.denied"]

    # Another tenant's auditor finds nothing of contoso's request; a bad id is no match.
    assert nodes(await _audit_log(deps, world.token("fabrikam-admin"), requestId=first)) == []
    assert nodes(await _audit_log(deps, admin, requestId="not-an-id")) == []

    too_many = await _audit_log(deps, admin, actions=[f"a{n}" for n in range(101)])
    assert too_many.errors is not None
    assert too_many.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert "100" in too_many.errors[0].message


async def test_a_filtered_audit_page_costs_the_same_statements_at_any_size(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    for _ in range(30):
        await seed_request(deps, world, then=APPROVED_BY_ADMIN)
        clock.advance(1)
    since = (clock.now() - timedelta(days=1)).isoformat()
    admin = world.token("contoso-admin")
    counts: dict[int, int] = {}
    for size in (5, 25):
        with sql_statements() as statements:
            result = await _audit_log(
                deps, admin, first=size, actions=["request.approved"], since=since
            )
        assert result.errors is None, result.errors
        edges = result.data["auditLog"]["edges"]
        assert len(edges) == size
        assert {e["node"]["actor"]["name"] for e in edges} == {"contoso-admin"}
        counts[size] = len(statements)
    assert counts[5] == counts[25], counts
    assert 0 < counts[25] <= 6, counts


REQUESTS_WITH_DECISIONS = """
query($first: Int) { accessRequests(first: $first) {
  edges { node { id decisions { action decider { name } payload signature } } }
} }
"""


async def test_decisions_in_a_page_cost_the_same_statements_at_any_size(
    deps: Deps, world: World
) -> None:
    for _ in range(30):
        await seed_request(deps, world, then=APPROVED_BY_ADMIN)
    token = world.token("contoso-admin")
    counts: dict[int, int] = {}
    for size in (5, 25):
        with sql_statements() as statements:
            result = await build_schema().execute(
                REQUESTS_WITH_DECISIONS,
                variable_values={"first": size},
                context_value=http_context(deps, token),
            )
        assert result.errors is None, result.errors
        edges = result.data["accessRequests"]["edges"]
        assert len(edges) == size
        for edge in edges:
            decisions = edge["node"]["decisions"]
            actions = [d["action"] for d in decisions]
            assert actions == ["request.approval_recorded", "request.approved"]
            assert {d["decider"]["name"] for d in decisions} == {"contoso-admin"}
            assert {d["payload"]["requestId"] for d in decisions} == {edge["node"]["id"]}
        counts[size] = len(statements)
    assert counts[5] == counts[25], counts
