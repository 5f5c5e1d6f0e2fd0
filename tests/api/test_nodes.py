"""`node` and `nodes` (contract section 11): every type fetched again by its
own id, and null for whatever the caller cannot see, across roles and
tenants."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lockbox.domain.lifecycle import Action
from lockbox.domain.nodes import Numbered, numbered_id
from lockbox.services import gate
from lockbox.services.deps import Deps
from tests.api.helpers import PROD, seed_request
from tests.conftest import Live, World

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"

CONTOSO = ("contoso-admin", "contoso-approver-prod", "contoso-approver-dev", "contoso-auditor")
PROVIDER = ("engineer-alice", "engineer-bob", "support-manager", "operator-admin")
OTHERS = ("fabrikam-admin", "fabrikam-approver", "northwind-admin")
# Who sees alice's contoso-prod request (and so its activity).
SEES_REQUEST = {
    "contoso-admin",
    "contoso-approver-prod",
    "contoso-auditor",
    "engineer-alice",
    "support-manager",
    "operator-admin",
}


async def objects(live: Live, deps: Deps, world: World) -> dict[str, tuple[str, str, set[str]]]:
    """Contoso's objects of every type: name -> (id, type, who sees it)."""
    request = await seed_request(deps, world, then=((Action.APPROVE, "contoso-admin"),))
    await gate.authorize(
        deps,
        world.actors["engineer-alice"],
        request_id=request,
        resource=f"{PROD}/vm1",
        action="read",
        detail=None,
    )
    data = await live.http.data(
        world.token("contoso-admin"),
        """query($id: ID!) {
          accessRequest(id: $id) {
            id tenant { id } ticket { id } engineer { id }
            activity { edges { node { id } } }
          }
          auditLog(last: 1) { edges { node { id } } }
          me { id }
        }""",
        id=request,
    )
    found = data["accessRequest"]
    customers_and_provider = set(CONTOSO) | set(PROVIDER)
    everybody = customers_and_provider | set(OTHERS)
    return {
        "request": (request, "AccessRequest", SEES_REQUEST),
        "activity": (
            found["activity"]["edges"][0]["node"]["id"],
            "ActivityEvent",
            SEES_REQUEST,
        ),
        "audit": (
            data["auditLog"]["edges"][0]["node"]["id"],
            "AuditEvent",
            {"contoso-admin", "contoso-auditor"},
        ),
        "tenant": (found["tenant"]["id"], "Tenant", customers_and_provider),
        "ticket": (found["ticket"]["id"], "SupportTicket", customers_and_provider),
        "customer": (data["me"]["id"], "Principal", customers_and_provider),
        "engineer": (found["engineer"]["id"], "Principal", everybody),
    }


async def test_every_type_is_fetched_again_by_its_id_by_those_who_see_it(
    live: Live, deps: Deps, world: World
) -> None:
    known = await objects(live, deps, world)
    assert len({object_id for object_id, _, _ in known.values()}) == len(known)
    for object_id, _, _ in known.values():
        uuid.UUID(object_id)  # every id is a UUID

    for principal in world.raw["principals"]:
        token = world.token(principal)
        names = list(known)
        listed = await live.http.data(token, NODES, ids=[known[n][0] for n in names])
        for name, answer in zip(names, listed["nodes"], strict=True):
            object_id, typename, seen_by = known[name]
            single = (await live.http.data(token, NODE, id=object_id))["node"]
            expected = {"__typename": typename, "id": object_id} if principal in seen_by else None
            assert (principal, name, single) == (principal, name, expected)
            assert (principal, name, answer) == (principal, name, expected)


async def test_ids_that_name_nothing_answer_null(live: Live, world: World) -> None:
    missing = [
        str(uuid.uuid4()),
        str(numbered_id(Numbered.ACTIVITY, 10**12)),
        str(numbered_id(Numbered.AUDIT, 10**12)),
        "not-an-id",
        "",
        "5",
    ]
    token = world.token("operator-admin")
    me = (await live.http.data(token, "{ me { id } }"))["me"]["id"]
    data = await live.http.data(token, NODES, ids=[*missing, me, me])
    # In the order asked, repeats included.
    assert data["nodes"] == [None] * len(missing) + [{"__typename": "Principal", "id": me}] * 2
    for value in missing:
        assert (await live.http.data(token, NODE, id=value)) == {"node": None}


async def test_fragments_on_a_node_read_the_type_fields(
    live: Live, deps: Deps, world: World
) -> None:
    request = await seed_request(deps, world)
    data = await live.http.data(
        world.token("contoso-admin"),
        """query($id: ID!) { node(id: $id) {
            id ... on AccessRequest { status tenant { name } }
            ... on Tenant { lockboxEnabled }
        } }""",
        id=request,
    )
    assert data["node"] == {"id": request, "status": "PENDING", "tenant": {"name": "contoso"}}


@pytest.mark.parametrize(("count", "ok"), [(100, True), (101, False)])
async def test_nodes_takes_at_most_100_ids(live: Live, world: World, count: int, ok: bool) -> None:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    body: dict[str, Any] = await live.http.call(world.token("contoso-admin"), NODES, ids=ids)
    if ok:
        assert body["data"]["nodes"] == [None] * count
    else:
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "100" in body["errors"][0]["message"]


async def test_the_query_cost_counts_each_id_of_nodes(live: Live, world: World) -> None:
    """Two lists of 100 nodes, each with a page of 150 events: 30,000 events."""
    page = "... on AccessRequest { activity(first: 150) { edges { node { id } } } }"
    document = (
        f"query($ids: [ID!]!) {{ a: nodes(ids: $ids) {{ id {page} }} "
        f"b: nodes(ids: $ids) {{ id {page} }} }}"
    )
    ids = [str(uuid.uuid4()) for _ in range(100)]
    error = await live.http.error(world.token("contoso-admin"), document, ids=ids)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert "costs 30000" in error["message"]
    # Half as many ids is within the limit.
    data = await live.http.data(world.token("contoso-admin"), document, ids=ids[:50])
    assert data == {"a": [None] * 50, "b": [None] * 50}
