"""Crafted keyset cursors whose time is extreme or out of range are refused
as BAD_USER_INPUT on both stacks, never a fault in the database driver."""

from __future__ import annotations

import uuid

import pytest

from lockbox.domain import cursors
from lockbox.services.deps import Deps
from tests.api.helpers import seed_request
from tests.conftest import Live, World

KEY = uuid.UUID("00000000-0000-4000-8000-000000000000")

EXTREME = [
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
    "9999-12-31T23:59:59.999999+00:00",
    "9999-12-31T23:59:59.999999-05:00",  # past year 9999 in UTC
    "1899-12-31T23:59:59+00:00",
    "9000-01-01T00:00:00+00:00",
    "2030-01-01T00:00:00",  # no offset
    "275760-09-13T00:00:00+00:00",
    "2030-02-30T00:00:00+00:00",
]

LISTS = {
    "pendingRequests": "request",
    "accessRequests": "request",
    "notifications": "notification",
}


@pytest.mark.parametrize("at", EXTREME)
@pytest.mark.parametrize("field", list(LISTS))
@pytest.mark.parametrize("argument", ["after", "before"])
async def test_extreme_cursor_times_are_bad_user_input(
    live: Live, world: World, at: str, field: str, argument: str
) -> None:
    cursor = cursors.encode(LISTS[field], f"{at}|{KEY}")
    error = await live.http.error(
        world.token("contoso-admin"),
        f"query($c: String) {{ {field}({argument}: $c) {{ edges {{ cursor }} }} }}",
        c=cursor,
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert "cursor" in error["message"]


@pytest.mark.parametrize(
    ("at", "seen"),
    [("1900-01-01T00:00:00+00:00", True), ("8999-12-31T23:59:59+14:00", False)],
    ids=["earliest", "latest"],
)
async def test_times_at_the_edges_of_the_range_page_normally(
    live: Live, deps: Deps, world: World, at: str, seen: bool
) -> None:
    request = await seed_request(deps, world)
    cursor = cursors.encode("request", f"{at}|{KEY}")
    data = await live.http.data(
        world.token("contoso-admin"),
        "query($c: String) { accessRequests(after: $c) { edges { node { id } } } }",
        c=cursor,
    )
    found = [edge["node"]["id"] for edge in data["accessRequests"]["edges"]]
    assert found == ([request] if seen else [])
