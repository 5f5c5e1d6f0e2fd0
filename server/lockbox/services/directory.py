"""What has been provisioned: tenants, principals, tickets and tokens, for the shell.

Like the provisioning in `admin`, these run with the operator's own authority,
so they take no Actor and hide nothing.
"""

from __future__ import annotations

from lockbox.services.admin import find_principal, find_tenant
from lockbox.store import queries as store
from lockbox.store.models import ApiToken, Principal, SupportTicket, Tenant


async def list_tenants() -> list[Tenant]:
    """Every tenant, by name."""
    return await store.list_tenants()


async def list_principals(tenant_ref: str | None = None) -> list[Principal]:
    """Principals by name: all of them, or one tenant's (by id or name)."""
    tenant_id = None if tenant_ref is None else (await find_tenant(tenant_ref)).id
    return await store.list_principals(tenant_id)


async def list_tickets(tenant_ref: str | None = None) -> list[SupportTicket]:
    """Support tickets, oldest first: all of them, or one tenant's (by id or name)."""
    tenant_id = None if tenant_ref is None else (await find_tenant(tenant_ref)).id
    return await store.list_tickets(tenant_id)


async def list_tokens(principal_ref: str) -> list[ApiToken]:
    """A principal's tokens (by id or name), revoked ones included, oldest first."""
    principal = await find_principal(principal_ref)
    return await store.list_tokens(principal.id)
