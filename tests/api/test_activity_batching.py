"""Nested activity pages are batched: a list of requests with their activity
costs the same statements for 5 requests as for 50, in either direction."""

from __future__ import annotations

from typing import Any

import pytest

from lockbox.api.schema import build_schema
from lockbox.domain import cursors
from lockbox.domain.lifecycle import Action
from lockbox.services import gate
from lockbox.services.deps import Deps
from tests.api.helpers import PROD, seed_request
from tests.api.test_query_cost import http_context, sql_statements
from tests.conftest import World

ACTIVITY_PAGES = """
query Pages($first: Int!, $activity: String) {
  accessRequests(first: $first) {
    edges { node {
      id
      activity(%s) {
        edges { cursor node { id seq: cursor resource } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    } }
  }
}
"""
FORWARD = ACTIVITY_PAGES % "first: 5, after: $activity"
BACKWARD = ACTIVITY_PAGES % "last: 5, before: $activity"


async def world_of_requests(deps: Deps, world: World, count: int) -> None:
    """`count` approved requests, each with 7 events."""
    alice = world.actors["engineer-alice"]
    for _ in range(count):
        request = await seed_request(deps, world, then=((Action.APPROVE, "contoso-admin"),))
        for n in range(7):
            await gate.authorize(
                deps,
                alice,
                request_id=request,
                resource=f"{PROD}/vm{n}",
                action="read",
                detail=None,
            )


async def run(deps: Deps, token: str, document: str, **variables: Any) -> tuple[Any, int]:
    schema = build_schema()
    with sql_statements() as statements:
        result = await schema.execute(
            document, variable_values=variables, context_value=http_context(deps, token)
        )
    assert result.errors is None, result.errors
    return result.data, len(statements)


@pytest.mark.parametrize(
    ("document", "cursor"),
    [(FORWARD, None), (FORWARD, 2), (BACKWARD, None), (BACKWARD, 6)],
    ids=["first", "first-after", "last", "last-before"],
)
async def test_activity_of_a_list_costs_the_same_statements_for_5_or_50_requests(
    deps: Deps, world: World, document: str, cursor: int | None
) -> None:
    await world_of_requests(deps, world, 50)
    token = world.token("contoso-admin")
    # The cursor of the same position (the cursor-th event) in every request's activity.
    after = None if cursor is None else cursors.encode_int(cursors.ACTIVITY, cursor)

    counts = {}
    for first in (5, 50):
        data, counts[first] = await run(deps, token, document, first=first, activity=after)
        requests = data["accessRequests"]["edges"]
        assert len(requests) == first
        for edge in requests:
            page = edge["node"]["activity"]
            resources = [e["node"]["resource"] for e in page["edges"]]
            expected = {
                (FORWARD, None): [f"{PROD}/vm{n}" for n in range(5)],
                (FORWARD, 2): [f"{PROD}/vm{n}" for n in range(2, 7)],
                (BACKWARD, None): [f"{PROD}/vm{n}" for n in range(2, 7)],
                (BACKWARD, 6): [f"{PROD}/vm{n}" for n in range(0, 5)],
            }[document, cursor]
            assert resources == expected
            info = page["pageInfo"]
            assert (info["hasPreviousPage"], info["hasNextPage"]) == {
                (FORWARD, None): (False, True),
                (FORWARD, 2): (True, False),
                (BACKWARD, None): (True, False),
                (BACKWARD, 6): (False, True),
            }[document, cursor]
    assert counts[5] == counts[50], counts
    # Authentication, the page of requests, the activity (and its probe).
    assert counts[50] <= 6, counts
