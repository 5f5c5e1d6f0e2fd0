"""Document limits (depth, aliases, tokens), GraphiQL, and the health endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from lockbox.api.limits import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from lockbox.domain.nodes import Numbered, numbered_id
from lockbox.services import gate
from lockbox.services.deps import Deps
from tests.api.helpers import APPROVED_BY_ADMIN, PROD, seed_request
from tests.conftest import Live, World, start_server

# A path through the schema that can nest as deep as wanted: the field at
# index i sits at depth i (the root field is depth 0). Pages of one keep the
# document under the query-cost limit, so only its depth is in question.
NESTING = ["accessRequests(first: 1)", "edges", "node"] + [
    "activity(first: 1)",
    "edges",
    "node",
    "request",
] * 4
OBJECTS_WITH_ID = {"node", "request"}


def nested_query(depth: int) -> str:
    """A valid query whose deepest field (an `id`) is at `depth`."""
    path = NESTING[:depth]
    assert path[-1] in OBJECTS_WITH_ID, f"no id to select at depth {depth}"
    return "{ " + " { ".join(path) + " { id" + " }" * len(path) + " }"


def ids_in(value: Any) -> list[Any]:
    """Every `id` in a nested result, at any depth."""
    if isinstance(value, list):
        return [found for item in value for found in ids_in(item)]
    if not isinstance(value, dict):
        return []
    found = [value["id"]] if "id" in value else []
    return found + [deeper for v in value.values() for deeper in ids_in(v)]


def rejected(body: dict[str, Any], *words: str) -> str:
    """The message of a document rejected before it ran."""
    assert body.get("data") is None, body
    message = " ".join(e["message"] for e in body["errors"])
    for word in words:
        assert word in message.lower(), message
    return message


async def test_query_nested_past_the_depth_limit_is_rejected(
    live: Live, deps: Deps, world: World
) -> None:
    request = await seed_request(deps, world, then=APPROVED_BY_ADMIN)
    event = await gate.authorize(
        deps,
        world.actors["engineer-alice"],
        request_id=request,
        resource=PROD,
        action="read",
        detail=None,
    )
    token = world.token("contoso-admin")

    at_limit = await live.http.call(token, nested_query(MAX_DEPTH))
    too_deep = await live.http.call(token, nested_query(MAX_DEPTH + 1))

    assert not at_limit.get("errors"), at_limit
    # The activity event, at the bottom.
    assert ids_in(at_limit["data"]) == [str(numbered_id(Numbered.ACTIVITY, event.id))]
    rejected(too_deep, "depth")


async def test_document_with_too_many_aliases_is_rejected_before_running(
    live: Live, world: World
) -> None:
    token = world.token("engineer-alice")
    mutation = (
        "mutation($input: CreateAccessRequestInput!) { "
        + " ".join(
            f"r{i}: createAccessRequest(input: $input) {{ id }}" for i in range(MAX_ALIASES + 1)
        )
        + " }"
    )
    payload = {
        "ticketId": world.ticket("contoso"),
        "resources": [PROD],
        "justification": "one request per alias",
    }
    many = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(MAX_ALIASES + 1)) + " }"
    fine = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(MAX_ALIASES)) + " }"

    rejected(await live.http.call(token, mutation, input=payload), "alias")
    rejected(await live.http.call(token, many), "alias")
    assert len(await live.http.data(token, fine)) == MAX_ALIASES
    # The rejected mutations created nothing.
    mine = await live.http.data(token, "{ accessRequests { edges { cursor } } }")
    assert mine["accessRequests"]["edges"] == []


DASHBOARD = """
query Dashboard {
  me { name role tenant { name lockboxEnabled } }
  pendingRequests(first: 20) {
    edges { cursor node {
      id status resources justification durationSeconds createdAt expiresAt
      ticket { title tenant { name } } engineer { name email }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_document_with_too_many_tokens_is_rejected(live: Live, world: World) -> None:
    token = world.token("contoso-admin")
    # `name` plus the braces: about MAX_TOKENS + 5 lexical tokens.
    huge = "{ me { " + " ".join(["name"] * MAX_TOKENS) + " } }"

    rejected(await live.http.call(token, huge), "token")
    # A realistic dashboard query is far below every limit.
    dashboard = await live.http.call(token, DASHBOARD)
    assert dashboard["data"]["me"]["name"] == "contoso-admin"


async def test_browser_gets_graphiql_unless_disabled(live: Live) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml"}

    page = await live.http.client.get(live.http.url, headers=browser)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()

    server = start_server(live.stack, live.clock, graphiql=False)
    try:
        hidden = await live.http.client.get(f"{server.http_url}/graphql", headers=browser)
    finally:
        await asyncio.to_thread(server.stop)
    assert "graphiql" not in hidden.text.lower()
    assert hidden.status_code >= 400


async def test_queries_also_work_over_http_get(live: Live, world: World) -> None:
    headers = {"Authorization": f"Bearer {world.token('contoso-admin')}"}

    query = await live.http.client.get(
        live.http.url, params={"query": "{ me { name } }"}, headers=headers
    )
    mutation = await live.http.client.get(
        live.http.url,
        params={"query": "mutation { setLockboxEnabled(enabled: false) { name } }"},
        headers=headers,
    )

    assert query.json() == {"data": {"me": {"name": "contoso-admin"}}}
    assert mutation.status_code >= 400
    tenant = await live.http.data(
        world.token("contoso-admin"), "{ me { tenant { lockboxEnabled } } }"
    )
    assert tenant["me"]["tenant"]["lockboxEnabled"] is True


async def test_health_endpoints_answer_with_json(live: Live) -> None:
    for path in ("/healthz", "/readyz"):
        response = await live.http.client.get(f"{live.server.http_url}{path}")
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert isinstance(response.json(), dict)
        assert "status" in response.json()
