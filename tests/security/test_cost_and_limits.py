"""Query cost is computed from the document and its variables and refused
before anything runs (contract section 10)."""

from __future__ import annotations

import pytest
from graphql import parse

from lockbox.api.limits import document_cost
from lockbox.api.schema import build_schema
from tests.api.helpers import create_request
from tests.conftest import Live, World
from tests.support import TRANSPORT_WS, WsClient

SCHEMA = build_schema()._schema

# One query (1,096 characters in the report) that once produced 640,000
# nodes: nested activity pages under 15 aliases.
NESTED = (
    "query($id: ID!) {"
    + " ".join(
        f"a{i}: accessRequest(id: $id) {{ activity(first: 200) {{ edges {{ node {{"
        f" request {{ activity(first: 200) {{ edges {{ node {{ id }} }} }} }} }} }} }} }}"
        for i in range(15)
    )
    + "}"
)


def cost(query: str, **variables: object) -> int:
    return document_cost(SCHEMA, parse(query), None, variables)


def test_a_connection_costs_its_page_times_what_it_is_nested_in() -> None:
    assert cost("{ me { name } }") == 0
    assert cost("{ accessRequests(first: 10) { edges { node { id } } } }") == 10
    assert cost("{ accessRequests { edges { node { id } } } }") == 50  # the default page
    nested = (
        "{ accessRequests(first: 10) { edges { node {"
        " activity(first: 20) { edges { node { id } } } } } } }"
    )
    assert cost(nested) == 10 + 10 * 20
    assert cost("query($n: Int) { auditLog(first: $n) { edges { node { id } } } }", n=7) == 7


def test_fragments_and_aliases_each_count() -> None:
    query = """
    query { a: pendingRequests(first: 5) { ...page } b: pendingRequests(first: 5) { ...page } }
    fragment page on AccessRequestConnection {
      edges { node { activity(first: 4) { edges { node { id } } } } }
    }
    """
    assert cost(query) == 2 * (5 + 5 * 4)


def test_the_reported_amplifying_query_costs_far_over_the_limit() -> None:
    assert cost(NESTED, id="x") == 15 * (200 + 200 * 200)


@pytest.mark.parametrize("transport", ["http"])
async def test_an_over_cost_document_is_refused_before_it_runs(
    live: Live, world: World, transport: str
) -> None:
    request = await create_request(live, world)
    answer = await live.http.call(world.token("engineer-alice"), NESTED, id=request["id"])
    assert answer.get("data") is None
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "costs 603000" in error["message"]
    # The same shape with small pages is fine.
    small = NESTED.replace("first: 200", "first: 5")
    ok = await live.http.call(world.token("engineer-alice"), small, id=request["id"])
    assert not ok.get("errors"), ok


async def test_an_over_cost_subscription_is_refused_before_it_starts(
    live: Live, world: World
) -> None:
    request = await create_request(live, world)
    client = WsClient(live.ws_url, TRANSPORT_WS)
    await client.connect(world.token("contoso-admin"))
    try:
        await client.subscribe(
            "1",
            """subscription($id: ID!) { engineerActivity(requestId: $id) {
                 request { activity(first: 200) { edges { node {
                   request { activity(first: 200) { edges { node { id } } } } } } } } } }""",
            id=request["id"],
        )
        reply = await client.receive()
    finally:
        await client.close()
    # An `error` message, or a result that carries only the error: no event runs.
    assert reply["type"] in ("error", "next"), reply
    errors = reply["payload"] if reply["type"] == "error" else reply["payload"]["errors"]
    assert reply["type"] == "error" or reply["payload"].get("data") is None
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "costs 40200" in errors[0]["message"]


# --- list arguments (finding 11: a `status` list of 500+ entries was a
# RecursionError, 1M entries +356 MB) ------------------------------------------

STATUS_LIST = (
    "query($s: [AccessRequestStatus!]) { accessRequests(status: $s) { edges { node { id } } } }"
)


@pytest.mark.parametrize("count", [101, 600, 50_000])
async def test_a_status_list_over_100_items_is_bad_user_input(
    live: Live, world: World, count: int
) -> None:
    answer = await live.http.call(world.token("contoso-admin"), STATUS_LIST, s=["PENDING"] * count)
    assert answer.get("data") is None or answer["data"]["accessRequests"] is None, answer
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at most 100" in error["message"]


async def test_a_status_list_of_100_items_is_fine(live: Live, world: World) -> None:
    await create_request(live, world)
    statuses = ["PENDING", "APPROVED", "DENIED", "EXPIRED"] * 25
    answer = await live.http.call(world.token("contoso-admin"), STATUS_LIST, s=statuses)
    assert not answer.get("errors"), answer
    assert len(answer["data"]["accessRequests"]["edges"]) == 1
    inline = (
        "{ accessRequests(status: ["
        + ", ".join(["PENDING"] * 100)
        + "]) { edges { node { id } } } }"
    )
    answer = await live.http.call(world.token("contoso-admin"), inline)
    assert not answer.get("errors"), answer
