"""What the conformance tests share: a request with activity to subscribe
to (its replay proves a subscription is registered before anything live is
made, so no test waits on luck), and HTTP's answer to compare with."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Live, World

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"
CREATE = """
mutation($ticket: ID!, $resources: [String!]!) {
  createAccessRequest(input: {ticketId: $ticket, resources: $resources,
                              justification: "conformance"}) { id status }
}"""
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { id status } }"
AUTHORIZE = """
mutation($id: ID!, $resource: String!) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: "read"}) {
    allowed event { cursor }
  }
}"""
ACTIVITY = """
subscription($id: ID!) { engineerActivity(requestId: $id) { cursor resource allowed } }"""


async def approved_request(live: Live, world: World) -> str:
    created = await live.http.data(
        world.token("engineer-alice"), CREATE, ticket=world.ticket("contoso"), resources=[PROD]
    )
    request_id: str = created["createAccessRequest"]["id"]
    await live.http.data(world.token("contoso-admin"), APPROVE, id=request_id)
    return request_id


async def authorize(live: Live, world: World, request_id: str, resource: str) -> str:
    """One gate call by the request's engineer: one activity event, its cursor."""
    data = await live.http.data(
        world.token("engineer-alice"), AUTHORIZE, id=request_id, resource=resource
    )
    cursor: str = data["authorizeAccess"]["event"]["cursor"]
    return cursor


async def http_errors(live: Live, token: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The errors HTTP answers an operation with, whatever the status."""
    async with httpx.AsyncClient(timeout=20) as client:
        response = await client.post(
            f"{live.server.http_url}/graphql",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
    errors: list[dict[str, Any]] = response.json()["errors"]
    return errors
