"""The demo world and the GraphQL documents the benchmark sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from bench.servers import BenchError

RESOURCE_ROOT = "/subscriptions/contoso-prod/rg"
RESOURCE = RESOURCE_ROOT + "/vm1"

CREATE = """
mutation($ticket: ID!, $resources: [String!]!, $why: String!) {
  createAccessRequest(input: {ticketId: $ticket, resources: $resources, justification: $why}) {
    id status
  }
}"""

APPROVE = 'mutation($id: ID!) { approveRequest(id: $id, reason: "benchmark") { id status } }'

AUTHORIZE = """
mutation($id: ID!, $resource: String!) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: "read"}) {
    allowed event { id cursor }
  }
}"""

ACTIVITY = """
subscription($id: ID!) {
  engineerActivity(requestId: $id) { id cursor at resource action allowed denialReason }
}"""

PENDING = """
query($first: Int!) {
  pendingRequests(first: $first) {
    edges {
      cursor
      node {
        id status resources createdAt
        ticket { id title tenant { id name } }
        engineer { id name role }
        tenant { id name lockboxEnabled }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""


@dataclass(frozen=True)
class World:
    """Tokens and ids printed by `lockbox seed-demo --json`."""

    raw: dict[str, Any]

    def token(self, principal: str) -> str:
        token: str = self.raw["principals"][principal]["token"]
        return token

    def ticket(self, name: str) -> str:
        ticket: str = self.raw["tickets"][name]["id"]
        return ticket


def graphql(
    client: httpx.Client, base_url: str, token: str, query: str, **variables: Any
) -> dict[str, Any]:
    response = client.post(
        base_url + "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise BenchError(f"GraphQL call failed ({response.status_code}): {body}")
    data: dict[str, Any] = body["data"]
    return data


def approved_request(base_url: str, world: World, label: str) -> str:
    """A request by engineer-alice on the contoso ticket, approved by contoso-admin."""
    with httpx.Client(timeout=30) as client:
        created = graphql(
            client,
            base_url,
            world.token("engineer-alice"),
            CREATE,
            ticket=world.ticket("contoso-ticket"),
            resources=[RESOURCE_ROOT],
            why=f"benchmark: {label}",
        )
        request_id: str = created["createAccessRequest"]["id"]
        approved = graphql(client, base_url, world.token("contoso-admin"), APPROVE, id=request_id)
        if approved["approveRequest"]["status"] != "APPROVED":
            raise BenchError(f"request {request_id} was not approved: {approved}")
    return request_id


def authorize_body(request_id: str) -> dict[str, Any]:
    return {"query": AUTHORIZE, "variables": {"id": request_id, "resource": RESOURCE}}


def baseline_authorize_body(request_id: str) -> dict[str, Any]:
    return {"requestId": request_id, "resource": RESOURCE, "action": "read"}
