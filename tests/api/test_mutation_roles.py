"""Each mutation declares who may call it (api.permissions); the declaration
shows in the SDL and matches who actually succeeds.

The services enforce the rules; the declaration only describes them. So every
principal of the demo world tries every mutation on a request where a
rightful caller would succeed: the roles of those who succeed must be exactly
the declared roles.
"""

from __future__ import annotations

import uuid
from typing import Any

import graphql
import pytest

from lockbox.api.mutations import Mutation
from lockbox.api.permissions import declared_callers
from lockbox.api.schema import build_schema
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from tests.api.helpers import (
    APPROVED_BY_ADMIN,
    CREATE,
    JUSTIFICATION,
    NEEDS_APPROVED,
    OPERATIONS,
    POLICY_OPERATIONS,
    PROD,
    PROVIDER_OPERATIONS,
    act,
    allow_emergency,
    seed_awaiting,
    seed_request,
)
from tests.conftest import Live, World
from tests.notify.webhook_support import NOWHERE, PRIVATE_WEBHOOKS

DECLARED = declared_callers(Mutation)

# The mutations that act on the caller's tenant rather than on one request.
TENANT_DOCUMENTS = {
    "setLockboxEnabled": "mutation { setLockboxEnabled(enabled: true) { name } }",
    "updateLockboxSettings": """
        mutation { updateLockboxSettings(input: {pendingRequestTtlSeconds: 3600}) { name } }
    """,
    "createWebhook": f'mutation {{ createWebhook(input: {{url: "{NOWHERE}"}}) {{ secret }} }}',
}
# The mutations on one webhook of the caller's tenant; each takes $id.
WEBHOOK_DOCUMENTS = {"deleteWebhook": "mutation($id: ID!) { deleteWebhook(id: $id) }"}


def test_every_mutation_declares_its_callers_in_the_schema() -> None:
    served = graphql.build_schema(build_schema().as_str()).mutation_type
    assert served is not None
    assert set(DECLARED) == set(served.fields)
    # ... and each one is tried below.
    assert set(DECLARED) == {
        "createAccessRequest",
        *TENANT_DOCUMENTS,
        *WEBHOOK_DOCUMENTS,
        *OPERATIONS,
        *POLICY_OPERATIONS,
    }
    for name, callers in DECLARED.items():
        assert callers.roles, name
        description = served.fields[name].description or ""
        assert description.endswith(callers.describe()), (name, description)


async def succeeds(live: Live, deps: Deps, world: World, principal: str, operation: str) -> bool:
    """Whether `principal` may take `operation` where a rightful caller could."""
    token = world.token(principal)
    body: dict[str, Any]
    if operation == "createAccessRequest":
        payload = {"ticketId": world.ticket("contoso"), "resources": [PROD]}
        body = await live.http.call(
            token, CREATE, input={**payload, "justification": JUSTIFICATION}
        )
    elif operation in TENANT_DOCUMENTS:
        body = await live.http.call(token, TENANT_DOCUMENTS[operation])
    elif operation in WEBHOOK_DOCUMENTS:
        # A webhook of the caller's own tenant (contoso's for operator-side callers).
        tenant = world.actors[principal].tenant_id or world.tenant("contoso")
        webhook = await store.create_webhook(
            uuid.UUID(tenant), url=NOWHERE, events=[], secret="s", created_at=deps.clock.now()
        )
        body = await live.http.call(token, WEBHOOK_DOCUMENTS[operation], id=str(webhook.id))
    elif operation == "reviewEmergencyAccess":
        await allow_emergency(world.tenant("contoso"))
        request = await seed_request(deps, world, emergency=True)
        body = await act(live, token, operation, request)
    elif operation in PROVIDER_OPERATIONS:
        # Made by engineer-bob: the support manager is never its requester.
        request = await seed_awaiting(deps, world, engineer="engineer-bob")
        body = await act(live, token, operation, request)
    else:
        # A fresh request each time: an earlier success must not change the next outcome.
        then = APPROVED_BY_ADMIN if operation in NEEDS_APPROVED else ()
        request = await seed_request(deps, world, then=then)
        body = await act(live, token, operation, request)
    if body.get("errors"):
        assert body["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND"), body
        return False
    return operation != "authorizeAccess" or bool(body["data"][operation]["allowed"])


# createWebhook succeeds only where its loopback URL is allowed.
@pytest.mark.parametrize("live", [PRIVATE_WEBHOOKS], indirect=True, ids=["private-webhooks"])
@pytest.mark.parametrize("operation", sorted(DECLARED))
async def test_declared_roles_are_the_roles_that_succeed(
    live: Live, deps: Deps, world: World, operation: str
) -> None:
    succeeded = [
        principal
        for principal in world.actors
        if await succeeds(live, deps, world, principal, operation)
    ]

    assert {world.actors[p].role for p in succeeded} == set(DECLARED[operation].roles), succeeded
