"""Hostile input gets a clear BAD_USER_INPUT, changes nothing, and never
fails someone else's call (contract section 10)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from lockbox.domain.errors import BadUserInput
from lockbox.domain.text import check_detail, check_text
from lockbox.store.models import AccessRequest, ActivityEvent
from tests.api.helpers import PROD, create_request
from tests.conftest import Live, World

AUTHORIZE = """
mutation($id: ID!, $resource: String!, $action: String!, $detail: JSON) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: $action,
                          detail: $detail}) { allowed reason }
}"""
CREATE = """
mutation($ticket: ID!, $resources: [String!]!, $why: String!) {
  createAccessRequest(input: {ticketId: $ticket, resources: $resources,
                              justification: $why}) { id }
}"""
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { status } }"


async def approved(live: Live, world: World, engineer: str = "engineer-alice") -> str:
    request = await create_request(live, world, engineer=engineer)
    await live.http.data(world.token("contoso-admin"), APPROVE, id=request["id"])
    return str(request["id"])


async def raw_call(live: Live, token: str, body: str) -> dict[str, Any]:
    """A request body sent as written (JSON with NaN is not what httpx writes)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{live.server.http_url}/graphql",
            content=body.encode("utf-8", "surrogatepass"),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    answer: dict[str, Any] = response.json()
    return answer


def codes(answer: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in answer.get("errors", [])]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_a_non_finite_number_in_detail_is_refused_and_nothing_is_recorded(
    live: Live, world: World, number: str
) -> None:
    request_id = await approved(live, world)
    variables = (
        f'{{"id": "{request_id}", "resource": "{PROD}", "action": "read",'
        f' "detail": {{"rows": {number}}}}}'
    )
    body = f'{{"query": {json.dumps(AUTHORIZE)}, "variables": {variables}}}'
    answer = await raw_call(live, world.token("engineer-alice"), body)
    assert codes(answer) == ["BAD_USER_INPUT"]
    assert not await ActivityEvent.filter(request_id=request_id).exists()


@pytest.mark.parametrize(
    ("detail", "why"),
    [
        ("hello", "must be a JSON object or array"),
        (42, "must be a JSON object or array"),
        ({"note": "nul\u0000byte"}, "U+0000"),
        ({"note": "\u202eevil"}, "U+202E"),
    ],
)
async def test_detail_must_be_an_object_or_array_of_plain_values(
    live: Live, world: World, detail: Any, why: str
) -> None:
    request_id = await approved(live, world)
    error = await live.http.error(
        world.token("engineer-alice"),
        AUTHORIZE,
        id=request_id,
        resource=PROD,
        action="read",
        detail=detail,
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert why in error["message"]
    assert not await ActivityEvent.filter(request_id=request_id).exists()


@pytest.mark.parametrize(
    "action", ["read\u001b[31mCRITICAL", "line\rbreak", "nul\u0000", "\u200bzero-width"]
)
async def test_an_action_with_control_or_format_characters_is_refused(
    live: Live, world: World, action: str
) -> None:
    request_id = await approved(live, world)
    code = await live.http.error_code(
        world.token("engineer-alice"), AUTHORIZE, id=request_id, resource=PROD, action=action
    )
    assert code == "BAD_USER_INPUT"
    assert not await ActivityEvent.filter(request_id=request_id).exists()


async def test_a_lone_surrogate_is_refused_not_a_server_error(live: Live, world: World) -> None:
    request_id = await approved(live, world)
    body = (
        f'{{"query": {json.dumps(AUTHORIZE)}, "variables": {{"id": "{request_id}",'
        f' "resource": "{PROD}", "action": "read \\ud800"}}}}'
    )
    answer = await raw_call(live, world.token("engineer-alice"), body)
    assert codes(answer) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "resource",
    [
        f"{PROD}/%2e%2e/%2e%2e/contoso-dev/secrets",
        f"{PROD}/..%2fsecrets",
        f"{PROD}/\uff0e\uff0e/secrets",  # fullwidth dots: ".." after NFKC
        f"{PROD}\\..\\secrets",
        f"{PROD}/\u202etxt.exe",
        f"{PROD}/a\u200bb",
        f"{PROD}/a\u2028b",
    ],
)
async def test_ambiguous_resources_are_refused_at_the_gate_and_in_requests(
    live: Live, world: World, resource: str
) -> None:
    request_id = await approved(live, world)
    alice = world.token("engineer-alice")
    gate = await live.http.error_code(
        alice, AUTHORIZE, id=request_id, resource=resource, action="read"
    )
    assert gate == "BAD_USER_INPUT"
    before = await AccessRequest.all().count()
    create = await live.http.error_code(
        alice, CREATE, ticket=world.ticket("contoso"), resources=[resource], why="x"
    )
    assert create == "BAD_USER_INPUT"
    assert await AccessRequest.all().count() == before


async def test_justification_keeps_tabs_and_line_breaks_but_refuses_nul(
    live: Live, world: World
) -> None:
    alice, ticket = world.token("engineer-alice"), world.ticket("contoso")
    fine = await live.http.data(alice, CREATE, ticket=ticket, resources=[PROD], why="a\tb\nc")
    assert fine["createAccessRequest"]["id"]
    code = await live.http.error_code(alice, CREATE, ticket=ticket, resources=[PROD], why="a\0b")
    assert code == "BAD_USER_INPUT"


async def test_one_engineers_bad_calls_never_fail_anothers_good_ones(
    live: Live, world: World
) -> None:
    """Bad calls are refused before they join a group commit, so the good
    calls that share its batch all land."""
    good_request = await approved(live, world, "engineer-alice")
    bad_request = await approved(live, world, "engineer-bob")
    alice, bob = world.token("engineer-alice"), world.token("engineer-bob")

    async def good(n: int) -> dict[str, Any]:
        return await live.http.call(
            alice, AUTHORIZE, id=good_request, resource=PROD, action=f"read {n}"
        )

    async def bad(n: int) -> dict[str, Any]:
        return await live.http.call(
            bob, AUTHORIZE, id=bad_request, resource=PROD, action=f"x\u0000{n}"
        )

    answers = await asyncio.gather(*(f(n) for n in range(30) for f in (good, bad)))
    goods, bads = answers[0::2], answers[1::2]
    assert all(a["data"]["authorizeAccess"]["allowed"] for a in goods)
    assert all(codes(a) == ["BAD_USER_INPUT"] for a in bads)
    assert await ActivityEvent.filter(request_id=good_request).count() == 30
    assert not await ActivityEvent.filter(request_id=bad_request).exists()


def test_text_rules_name_the_character_and_allow_tabs_only_in_free_text() -> None:
    assert check_text("a\tb\nc", "note", free_text=True) == "a\tb\nc"
    with pytest.raises(BadUserInput, match="U\\+0009"):
        check_text("a\tb", "action")
    with pytest.raises(BadUserInput, match="U\\+2029"):
        check_text("a\u2029b", "note", free_text=True)
    assert check_detail({"a": [1, 2.5, "x", None, True, {"b": []}]}) is not None
    with pytest.raises(BadUserInput, match="deeper"):
        nested: Any = []
        for _ in range(50):
            nested = [nested]
        check_detail(nested)


async def test_a_long_unknown_id_is_not_echoed_back_in_full(live: Live, world: World) -> None:
    error = await live.http.error(world.token("contoso-admin"), APPROVE, id="x" * 10_000)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert len(error["message"]) < 200


async def test_an_engineer_may_have_only_so_many_requests_waiting(world: World, deps: Any) -> None:
    deps.max_pending_per_engineer = 3
    from lockbox.services import requests as request_service

    alice = world.actors["engineer-alice"]

    async def ask() -> object:
        return await request_service.create(
            deps,
            alice,
            ticket_id=world.ticket("contoso"),
            resources=[PROD],
            justification="one more",
            duration_seconds=None,
        )

    for _ in range(3):
        await ask()
    with pytest.raises(Exception, match="already has 3 requests waiting") as refused:
        await ask()
    assert refused.value.extensions == {"code": "INVALID_STATE"}  # type: ignore[attr-defined]
    # Another engineer is not held back by alice's queue.
    bob = world.actors["engineer-bob"]
    await request_service.create(
        deps,
        bob,
        ticket_id=world.ticket("contoso"),
        resources=[PROD],
        justification="mine",
        duration_seconds=None,
    )
