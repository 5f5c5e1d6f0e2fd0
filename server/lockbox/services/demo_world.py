"""The demo world of the contract (section 1), created in one go; and the
policies the tour (`lockbox demo`) turns on over it."""

from __future__ import annotations

from typing import Any

from lockbox.domain.errors import BadUserInput
from lockbox.domain.policy import Role
from lockbox.services import admin, tenants
from lockbox.services.auth import actor_of
from lockbox.services.deps import Deps
from lockbox.store import queries as store

TENANTS: list[tuple[str, list[str], bool]] = [
    ("contoso", ["/subscriptions/contoso-prod", "/subscriptions/contoso-dev"], True),
    ("fabrikam", ["/subscriptions/fabrikam-prod"], True),
    ("northwind", ["/subscriptions/northwind-prod"], False),
]

PRINCIPALS: list[tuple[str, Role, str | None, list[str]]] = [
    ("contoso-admin", Role.TENANT_ADMIN, "contoso", []),
    ("contoso-approver-prod", Role.APPROVER, "contoso", ["/subscriptions/contoso-prod"]),
    ("contoso-approver-dev", Role.APPROVER, "contoso", ["/subscriptions/contoso-dev"]),
    ("contoso-auditor", Role.AUDITOR, "contoso", []),
    ("fabrikam-admin", Role.TENANT_ADMIN, "fabrikam", []),
    ("fabrikam-approver", Role.APPROVER, "fabrikam", ["/subscriptions/fabrikam-prod"]),
    ("northwind-admin", Role.TENANT_ADMIN, "northwind", []),
    ("engineer-alice", Role.ENGINEER, None, []),
    ("engineer-bob", Role.ENGINEER, None, []),
    ("support-manager", Role.SUPPORT_MANAGER, None, []),
    ("operator-admin", Role.OPERATOR_ADMIN, None, []),
]


async def seed(deps: Deps) -> dict[str, Any]:
    """Create the demo world and return its ids and fresh tokens."""
    if await store.tenant_by_name("contoso") is not None:
        raise BadUserInput("the demo world already exists in this database")
    world: dict[str, Any] = {"tenants": {}, "principals": {}, "tickets": {}}
    async with store.transaction():
        for name, roots, enabled in TENANTS:
            tenant = await admin.create_tenant(deps, name, roots, enabled)
            world["tenants"][name] = {"id": str(tenant.id)}
            ticket = await admin.create_ticket(
                deps, str(tenant.id), f"{name}: customer reports slow queries on production"
            )
            world["tickets"][f"{name}-ticket"] = {"id": str(ticket.id)}
        for name, role, tenant_name, scopes in PRINCIPALS:
            principal = await admin.create_principal(
                deps, name, role, tenant_ref=tenant_name, scopes=scopes, email=f"{name}@example.com"
            )
            issued = await admin.issue_token(deps, str(principal.id), label="demo")
            world["principals"][name] = {"id": str(principal.id), "token": issued.secret}
    return world


# The tour shows the approval policy on one tenant: a fabrikam request needs
# both fabrikam-admin and fabrikam-approver. `seed-demo` (the contract's demo
# world, which tests and scripts build on) leaves every tenant at the default.
TOUR_REQUIRED_APPROVALS = {"fabrikam": 2}


async def seed_tour(deps: Deps) -> dict[str, Any]:
    """The demo world with the tour's policies, as its tenant admins would set them."""
    world = await seed(deps)
    for tenant, required in TOUR_REQUIRED_APPROVALS.items():
        principal = await store.principal_by_name(f"{tenant}-admin")
        assert principal is not None  # created by `seed` above
        await tenants.update_settings(
            deps,
            actor_of(principal),
            pending_request_ttl_seconds=None,
            default_access_seconds=None,
            max_access_seconds=None,
            required_approvals=required,
        )
    return world
