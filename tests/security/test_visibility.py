"""Customer addresses stay with the customer, and activity details with the
parties to the request (contract section 10, operator-side visibility)."""

from __future__ import annotations

from tests.api.helpers import PROD, create_request
from tests.conftest import Live, World

DECIDED = """
query($id: ID!) {
  accessRequest(id: $id) {
    decidedBy { name email }
    engineer { name email }
    activity(first: 10) { edges { node { action detail } } }
  }
}"""
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { status } }"
AUTHORIZE = """
mutation($id: ID!, $resource: String!, $detail: JSON) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: "read",
                          detail: $detail}) { allowed }
}"""


async def decided_request(live: Live, world: World) -> str:
    request = await create_request(live, world)
    await live.http.data(world.token("contoso-admin"), APPROVE, id=request["id"])
    await live.http.data(
        world.token("engineer-alice"),
        AUTHORIZE,
        id=request["id"],
        resource=PROD,
        detail={"rows": 3},
    )
    return str(request["id"])


async def view(live: Live, world: World, who: str, request_id: str) -> dict[str, object]:
    data = await live.http.data(world.token(who), DECIDED, id=request_id)
    request: dict[str, object] = data["accessRequest"]
    return request


async def test_engineers_and_operators_never_read_a_deciders_address(
    live: Live, world: World
) -> None:
    request_id = await decided_request(live, world)
    for who in ("engineer-alice", "support-manager", "operator-admin"):
        seen = await view(live, world, who, request_id)
        assert seen["decidedBy"] == {"name": "contoso-admin", "email": None}, who
    admin = await view(live, world, "contoso-admin", request_id)
    assert admin["decidedBy"] == {"name": "contoso-admin", "email": "contoso-admin@example.com"}
    # The engineer's own address is the provider's, not a customer's.
    assert admin["engineer"] == {"name": "engineer-alice", "email": "engineer-alice@example.com"}


async def test_operator_oversight_sees_activity_but_not_its_detail(
    live: Live, world: World
) -> None:
    request_id = await decided_request(live, world)
    for who, detail in (
        ("support-manager", None),
        ("operator-admin", None),
        ("contoso-admin", {"rows": 3}),
        ("engineer-alice", {"rows": 3}),
    ):
        seen = await view(live, world, who, request_id)
        edges = seen["activity"]["edges"]  # type: ignore[index]
        assert [e["node"] for e in edges] == [{"action": "read", "detail": detail}], who
