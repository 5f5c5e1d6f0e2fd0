"""GraphQL documents and small helpers shared by the API tests."""

from __future__ import annotations

from typing import Any

from lockbox.domain.lifecycle import Action
from lockbox.services import requests as request_service
from lockbox.services.deps import Deps
from lockbox.store.models import Tenant
from tests.conftest import Live, World

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"
DEV = "/subscriptions/contoso-dev/resourceGroups/rg1"
FABRIKAM = "/subscriptions/fabrikam-prod/resourceGroups/rg1"
NORTHWIND = "/subscriptions/northwind-prod/resourceGroups/rg1"
RESOURCE_OF = {"contoso": PROD, "fabrikam": FABRIKAM, "northwind": NORTHWIND}
JUSTIFICATION = "customer reports slow queries; need to read the query plans"

REQUEST_FIELDS = """
    id status resources justification durationSeconds createdAt expiresAt
    decidedAt decisionReason accessStartsAt accessEndsAt
    decidedBy { name }
"""

CREATE = f"""
mutation Create($input: CreateAccessRequestInput!) {{
  createAccessRequest(input: $input) {{ {REQUEST_FIELDS} }}
}}
"""

GET = f"query Get($id: ID!) {{ accessRequest(id: $id) {{ {REQUEST_FIELDS} }} }}"

AUDIT = """
{ auditLog(first: 200) {
    edges { node { id action requestId detail hash prevHash actor { name } } }
} }
"""

MY_TENANT = """
{ me { tenant { id name lockboxEnabled
  settings { pendingRequestTtlSeconds defaultAccessSeconds maxAccessSeconds } } } }
"""

# Every operation of the contract that acts on one request. Each takes $id;
# authorizeAccess also takes $resource (servers ignore unused variables).
OPERATIONS: dict[str, str] = {
    "approveRequest": "mutation($id: ID!) { approveRequest(id: $id) { id status } }",
    "denyRequest": "mutation($id: ID!) { denyRequest(id: $id) { id status } }",
    "revokeAccess": "mutation($id: ID!) { revokeAccess(id: $id) { id status } }",
    "cancelAccessRequest": "mutation($id: ID!) { cancelAccessRequest(id: $id) { id status } }",
    "releaseAccess": "mutation($id: ID!) { releaseAccess(id: $id) { id status } }",
    "authorizeAccess": """
        mutation($id: ID!, $resource: String!) {
          authorizeAccess(input: {requestId: $id, resource: $resource, action: "read"}) {
            allowed reason
          }
        }
    """,
}
DECIDER_OPERATIONS = ("approveRequest", "denyRequest", "revokeAccess")
# The approval policy's operations on one request (contract section 8); each takes $id.
POLICY_OPERATIONS: dict[str, str] = {
    "reviewEmergencyAccess": """
        mutation($id: ID!) { reviewEmergencyAccess(id: $id, accepted: true) { id status } }
    """,
    "providerApproveRequest": """
        mutation($id: ID!) { providerApproveRequest(id: $id) { id status } }
    """,
    "providerDenyRequest": "mutation($id: ID!) { providerDenyRequest(id: $id) { id status } }",
}
PROVIDER_OPERATIONS = ("providerApproveRequest", "providerDenyRequest")
# Operations that can only succeed on an APPROVED request (the others need PENDING).
NEEDS_APPROVED = frozenset({"revokeAccess", "releaseAccess", "authorizeAccess"})

Steps = tuple[tuple[Action, str], ...]
APPROVED_BY_ADMIN: Steps = ((Action.APPROVE, "contoso-admin"),)


async def seed_request(
    deps: Deps,
    world: World,
    *,
    engineer: str = "engineer-alice",
    tenant: str = "contoso",
    resources: list[str] | None = None,
    ticket: str | None = None,
    then: Steps = (),
    emergency: bool = False,
) -> str:
    """Set-up without the HTTP round trips: a request made through the
    services, then taken through `then`, (action, principal) steps. Its id.
    `emergency`: break-glass access (the tenant must allow it)."""
    row = await request_service.create(
        deps,
        world.actors[engineer],
        ticket_id=ticket or world.ticket(tenant),
        resources=resources or [RESOURCE_OF[tenant]],
        justification=JUSTIFICATION,
        duration_seconds=None,
        emergency=emergency,
    )
    for action, principal in then:
        await request_service.transition(deps, world.actors[principal], str(row.id), action)
    return str(row.id)


async def create_request(
    live: Live,
    world: World,
    *,
    engineer: str = "engineer-alice",
    tenant: str = "contoso",
    resources: list[str] | None = None,
) -> dict[str, Any]:
    """A new access request made over HTTP, as its engineer sees it."""
    payload = {
        "ticketId": world.ticket(tenant),
        "resources": resources or [RESOURCE_OF[tenant]],
        "justification": JUSTIFICATION,
    }
    data = await live.http.data(world.token(engineer), CREATE, input=payload)
    request: dict[str, Any] = data["createAccessRequest"]
    return request


async def act(
    live: Live, token: str, operation: str, request_id: str, resource: str = PROD
) -> dict[str, Any]:
    """Run one request operation; the whole response body."""
    document = OPERATIONS.get(operation) or POLICY_OPERATIONS[operation]
    return await live.http.call(token, document, id=request_id, resource=resource)


async def allow_emergency(tenant_id: str) -> None:
    """Let a tenant's engineers use break-glass access (set-up, no audit)."""
    await Tenant.filter(id=tenant_id).update(allow_emergency_access=True)


async def seed_awaiting(deps: Deps, world: World, **kw: Any) -> str:
    """A request made while the provider approves first (LOCKBOX_PROVIDER_APPROVAL)."""
    deps.provider_approval = True
    try:
        return await seed_request(deps, world, **kw)
    finally:
        deps.provider_approval = False


async def read_request(
    live: Live, world: World, request_id: str, viewer: str = "contoso-admin"
) -> dict[str, Any] | None:
    data = await live.http.data(world.token(viewer), GET, id=request_id)
    request: dict[str, Any] | None = data["accessRequest"]
    return request


async def status(live: Live, world: World, request_id: str, viewer: str = "contoso-admin") -> str:
    request = await read_request(live, world, request_id, viewer)
    assert request is not None, f"{viewer} cannot see request {request_id}"
    return str(request["status"])


async def audit_events(live: Live, token: str) -> list[dict[str, Any]]:
    data = await live.http.data(token, AUDIT)
    return [edge["node"] for edge in data["auditLog"]["edges"]]


async def my_tenant(live: Live, world: World, principal: str) -> dict[str, Any]:
    data = await live.http.data(world.token(principal), MY_TENANT)
    tenant: dict[str, Any] = data["me"]["tenant"]
    return tenant


def ws_errors(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The GraphQL errors a WebSocket message carries, in either protocol."""
    if message["type"] == "error":
        payload = message["payload"]
        return list(payload) if isinstance(payload, list) else [payload]
    assert message["type"] in ("next", "data"), message
    errors: list[dict[str, Any]] = message["payload"].get("errors") or []
    return errors
