"""Relay paging on every connection (contract section 11): `first`/`after`
and `last`/`before`, a complete PageInfo, empty pages, and the arguments
that do not go together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from lockbox.domain.lifecycle import Action
from lockbox.services import gate, tenants
from lockbox.services import requests as request_service
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from tests.api.helpers import PROD, seed_request
from tests.api.test_notifications_query import outbox_row
from tests.conftest import Live, World

PAGE = "edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
ARGUMENTS = "$first: Int, $after: String, $last: Int, $before: String"
PAGING = "first: $first, after: $after, last: $last, before: $before"


@dataclass(frozen=True)
class Listing:
    """One connection: its document, and where its page lies in the answer."""

    document: str
    path: tuple[str, ...]

    def page(self, data: dict[str, Any]) -> dict[str, Any]:
        for key in self.path:
            data = data[key]
        return data


def root(field: str, extra: str = "") -> Listing:
    return Listing(f"query({ARGUMENTS}) {{ {field}({PAGING}{extra}) {{ {PAGE} }} }}", (field,))


LISTINGS: dict[str, Listing] = {
    "pendingRequests": root("pendingRequests"),
    "accessRequests": root("accessRequests"),
    "accessRequests(status)": Listing(
        f"query({ARGUMENTS}) {{ list: accessRequests(status: [PENDING, APPROVED], {PAGING}) "
        f"{{ {PAGE} }} }}",
        ("list",),
    ),
    "emergencyAccessToReview": root("emergencyAccessToReview"),
    "auditLog": root("auditLog"),
    "auditLog(actions)": Listing(
        f'query({ARGUMENTS}) {{ log: auditLog(actions: ["request.created"], {PAGING}) '
        f"{{ {PAGE} }} }}",
        ("log",),
    ),
    "notifications": root("notifications"),
    "activity": Listing(
        f"query($id: ID!, {ARGUMENTS}) {{ accessRequest(id: $id) {{ activity({PAGING}) "
        f"{{ {PAGE} }} }} }}",
        ("accessRequest", "activity"),
    ),
}


@pytest.fixture
async def filled(live: Live, deps: Deps, world: World) -> str:
    """At least seven of each kind in contoso; the id of the request with activity."""
    requests = [await seed_request(deps, world) for _ in range(7)]
    approved = await seed_request(deps, world, then=((Action.APPROVE, "contoso-admin"),))
    requests.append(approved)
    for n in range(7):
        await gate.authorize(
            deps,
            world.actors["engineer-alice"],
            request_id=approved,
            resource=f"{PROD}/vm{n}",
            action="read",
            detail=None,
        )
    await tenants.update_settings(
        deps,
        world.actors["contoso-admin"],
        pending_request_ttl_seconds=None,
        default_access_seconds=None,
        max_access_seconds=None,
        allow_emergency_access=True,
    )
    for _ in range(7):
        await request_service.create(
            deps,
            world.actors["engineer-bob"],
            ticket_id=world.ticket("contoso"),
            resources=[PROD],
            justification="production is down; reading the failing job's logs",
            duration_seconds=None,
            emergency=True,
        )
    start = live.clock.now()
    await store.insert_notifications(
        [outbox_row(world, "contoso", start + timedelta(seconds=n)) for n in range(7)]
    )
    return approved


async def read(
    live: Live, world: World, listing: Listing, request: str, **paging: Any
) -> dict[str, Any]:
    variables = dict(paging, id=request) if "$id" in listing.document else paging
    data = await live.http.data(world.token("contoso-admin"), listing.document, **variables)
    return listing.page(data)


def ids(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in page["edges"]]


def cursors_of(page: dict[str, Any]) -> list[str]:
    return [edge["cursor"] for edge in page["edges"]]


def info(page: dict[str, Any]) -> tuple[bool, bool, str | None, str | None]:
    p = page["pageInfo"]
    return p["hasPreviousPage"], p["hasNextPage"], p["startCursor"], p["endCursor"]


@pytest.mark.parametrize("name", list(LISTINGS))
async def test_pages_forward_and_backward(live: Live, world: World, filled: str, name: str) -> None:
    listing = LISTINGS[name]
    whole = await read(live, world, listing, filled, first=200)
    everything, cursors = ids(whole), cursors_of(whole)
    assert len(everything) >= 7, name
    assert info(whole) == (False, False, cursors[0], cursors[-1])

    # Forward from the start, then from a cursor.
    first = await read(live, world, listing, filled, first=2)
    assert ids(first) == everything[:2]
    assert info(first) == (False, True, cursors[0], cursors[1])
    middle = await read(live, world, listing, filled, first=2, after=cursors[1])
    assert ids(middle) == everything[2:4]
    assert info(middle) == (True, True, cursors[2], cursors[3])
    tail = await read(live, world, listing, filled, first=50, after=cursors[-3])
    assert ids(tail) == everything[-2:]
    assert info(tail) == (True, False, cursors[-2], cursors[-1])

    # Backward from the end (`last` alone: `first` keeps no default), then from a cursor.
    last = await read(live, world, listing, filled, last=2)
    assert ids(last) == everything[-2:]
    assert info(last) == (True, False, cursors[-2], cursors[-1])
    before = await read(live, world, listing, filled, last=2, before=cursors[-2])
    assert ids(before) == everything[-4:-2]
    assert info(before) == (True, True, cursors[-4], cursors[-3])
    head = await read(live, world, listing, filled, last=50, before=cursors[2])
    assert ids(head) == everything[:2]
    assert info(head) == (False, True, cursors[0], cursors[1])

    # Between two cursors, from either end.
    assert (
        ids(await read(live, world, listing, filled, after=cursors[0], before=cursors[4]))
        == (everything[1:4])
    )
    between = await read(live, world, listing, filled, last=1, after=cursors[0], before=cursors[4])
    assert ids(between) == everything[3:4]

    # Walking all the way back with `before` reads the whole list once.
    seen: list[str] = []
    page = await read(live, world, listing, filled, last=3)
    while True:
        seen[:0] = ids(page)
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        page = await read(
            live, world, listing, filled, last=3, before=page["pageInfo"]["startCursor"]
        )
    assert seen == everything


@pytest.mark.parametrize("name", list(LISTINGS))
@pytest.mark.parametrize("argument", ["first", "last"])
async def test_a_page_of_zero_is_empty(
    live: Live, world: World, filled: str, name: str, argument: str
) -> None:
    page = await read(live, world, LISTINGS[name], filled, **{argument: 0})
    assert page["edges"] == []
    assert (page["pageInfo"]["startCursor"], page["pageInfo"]["endCursor"]) == (None, None)
    # Zero items of a longer list: more lies in the direction of the walk.
    more = "hasNextPage" if argument == "first" else "hasPreviousPage"
    assert page["pageInfo"][more] is True


@pytest.mark.parametrize("name", list(LISTINGS))
@pytest.mark.parametrize(
    ("paging", "needle"),
    [
        ({"first": 1, "last": 1}, "first or last"),
        ({"first": 0, "last": 0}, "first or last"),
        ({"last": -1}, "last"),
        ({"last": 201}, "last"),
        ({"first": -1}, "first"),
        ({"before": "not a cursor"}, "cursor"),
    ],
    ids=["both", "both-zero", "last-negative", "last-201", "first-negative", "bad-before"],
)
async def test_arguments_that_do_not_go_together_are_bad_user_input(
    live: Live, world: World, filled: str, name: str, paging: dict[str, Any], needle: str
) -> None:
    listing = LISTINGS[name]
    variables = dict(paging, id=filled) if "$id" in listing.document else paging
    error = await live.http.error(world.token("contoso-admin"), listing.document, **variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert needle in error["message"]


async def test_first_given_as_null_counts_as_not_given(
    live: Live, world: World, filled: str
) -> None:
    listing = LISTINGS["accessRequests"]
    whole = ids(await read(live, world, listing, filled, first=200))
    assert ids(await read(live, world, listing, filled, first=None, last=2)) == whole[-2:]
    assert ids(await read(live, world, listing, filled)) == whole[:50]


async def test_last_two_are_the_newest_two(live: Live, deps: Deps, world: World) -> None:
    made = []
    for _ in range(4):
        made.append(await seed_request(deps, world))
        live.clock.advance(60)
    data = await live.http.data(
        world.token("contoso-admin"), "{ accessRequests(last: 2) { edges { node { id } } } }"
    )
    assert [e["node"]["id"] for e in data["accessRequests"]["edges"]] == made[-2:]


@pytest.mark.parametrize(
    "paging",
    ["last: 200", "first: null, last: 200", "last: $size", "first: $unset, last: $size"],
)
async def test_the_query_cost_counts_last_like_first(live: Live, world: World, paging: str) -> None:
    """200 requests times 200 events is over the 20,000 limit, whichever way it pages."""
    declared = [f"${name}: Int" for name in ("size", "unset") if f"${name}" in paging]
    head = f"query({', '.join(declared)})" if declared else "query"
    document = (
        f"{head} {{ accessRequests({paging}) {{ edges {{ node {{ "
        f"activity({paging}) {{ edges {{ node {{ id }} }} }} }} }} }} }}"
    )
    variables = {"size": 200} if "$size" in paging else {}
    token = world.token("contoso-admin")
    error = await live.http.error(token, document, **variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert "costs 40200" in error["message"]
    # The same shape with small pages runs.
    small = document.replace("200", "20")
    variables = {"size": 20} if "$size" in paging else {}
    assert "accessRequests" in await live.http.data(token, small, **variables)
