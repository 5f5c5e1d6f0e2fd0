"""Provisioning from the shell: tenants, principals, tickets and tokens.

These run with the operator's own authority (whoever can reach the database),
so they take no Actor. Changes that concern a tenant (its creation, its
principals, their tokens, its tickets) are audited in its chain;
operator-side principals have no chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockbox.domain.audit import AuditAction
from lockbox.domain.errors import BadUserInput, NotFound
from lockbox.domain.notifications import clean_address
from lockbox.domain.policy import OPERATOR_ROLES, Role
from lockbox.domain.resources import normalize, within_any
from lockbox.domain.text import check_text
from lockbox.realtime.topics import principal_topic
from lockbox.services.auth import hash_secret, new_secret
from lockbox.services.deps import Deps
from lockbox.services.writing import Change, changing
from lockbox.store import queries as store
from lockbox.store.models import ApiToken, Principal, SupportTicket, Tenant


def _name(value: str, what: str) -> str:
    value = check_text(value.strip(), f"{what} name")
    if not value or len(value) > 200:
        raise BadUserInput(f"{what} name must be 1 to 200 characters")
    return value


async def find_tenant(ref: str) -> Tenant:
    """A tenant by id or by name."""
    tenant = await store.get_tenant(ref) or await store.tenant_by_name(ref)
    if tenant is None:
        raise NotFound.of("tenant", ref)
    return tenant


async def find_principal(ref: str) -> Principal:
    principal = await store.get_principal(ref) or await store.principal_by_name(ref)
    if principal is None:
        raise NotFound.of("principal", ref)
    return principal


async def create_tenant(
    deps: Deps, name: str, resource_roots: list[str], lockbox_enabled: bool
) -> Tenant:
    """A new tenant; its audit chain starts with its creation."""
    name = _name(name, "tenant")
    if not resource_roots:
        raise BadUserInput("a tenant needs at least one resource root")
    roots = [normalize(root, what="resource root") for root in resource_roots]
    if await store.tenant_by_name(name) is not None:
        raise BadUserInput(f"tenant {name} already exists")
    async with changing(deps) as change:
        tenant = await store.create_tenant(name, roots, lockbox_enabled)
        await change.audit(
            tenant.id,
            AuditAction.TENANT_CREATED,
            actor_id=None,
            detail={"tenant": name, "resourceRoots": roots, "lockboxEnabled": lockbox_enabled},
        )
    return tenant


async def create_principal(
    deps: Deps,
    name: str,
    role: Role,
    *,
    tenant_ref: str | None,
    scopes: list[str],
    email: str | None,
) -> Principal:
    name = _name(name, "principal")
    email = None if email is None else clean_address(email, "email")
    if await store.principal_by_name(name) is not None:
        raise BadUserInput(f"principal {name} already exists")
    if role in OPERATOR_ROLES:
        if tenant_ref is not None or scopes:
            raise BadUserInput(f"{role.value} is operator-side: give it no tenant and no scopes")
        return await store.create_principal(name, role, None, [], email)
    if tenant_ref is None:
        raise BadUserInput(f"{role.value} belongs to a tenant: give --tenant")
    tenant = await find_tenant(tenant_ref)
    cleaned = [normalize(scope, what="scope") for scope in scopes]
    if role is Role.APPROVER:
        if not cleaned:
            raise BadUserInput("an APPROVER needs at least one scope")
        for scope in cleaned:
            if not within_any(scope, tenant.resource_roots):
                raise BadUserInput(f"scope {scope} is not within a resource root of {tenant.name}")
    elif cleaned:
        raise BadUserInput(f"{role.value} covers the whole tenant: give it no scopes")
    async with changing(deps) as change:
        principal = await store.create_principal(name, role, tenant.id, cleaned, email)
        await change.audit(
            tenant.id,
            AuditAction.PRINCIPAL_CREATED,
            actor_id=None,
            detail={"principal": name, "role": role.value, "scopes": cleaned},
        )
    return principal


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


async def issue_token(deps: Deps, principal_ref: str, label: str = "") -> IssuedToken:
    principal = await find_principal(principal_ref)
    secret = new_secret()
    async with changing(deps) as change:
        token = await store.create_token(principal.id, hash_secret(secret), label)
        await _audit_principal(change, principal, AuditAction.TOKEN_ISSUED, token)
    return IssuedToken(token=token, secret=secret)


async def revoke_token(deps: Deps, token_id: str) -> ApiToken:
    token = await store.get_token(token_id)
    if token is None:
        raise NotFound.of("token", token_id)
    principal = await find_principal(str(token.principal_id))
    async with changing(deps) as change:
        if await store.revoke_token(token.id, change.now):
            await _audit_principal(change, principal, AuditAction.TOKEN_REVOKED, token)
        change.announce(principal_topic(principal.id), {"reason": "token revoked"})
    refreshed = await store.get_token(token.id)
    assert refreshed is not None
    return refreshed


async def disable_principal(deps: Deps, principal_ref: str) -> Principal:
    principal = await find_principal(principal_ref)
    async with changing(deps) as change:
        if await store.disable_principal(principal.id, change.now):
            await _audit_principal(change, principal, AuditAction.PRINCIPAL_DISABLED)
        change.announce(principal_topic(principal.id), {"reason": "principal disabled"})
    return await find_principal(str(principal.id))


async def enable_principal(deps: Deps, principal_ref: str) -> Principal:
    principal = await find_principal(principal_ref)
    async with changing(deps) as change:
        if await store.enable_principal(principal.id):
            await _audit_principal(change, principal, AuditAction.PRINCIPAL_ENABLED)
    return await find_principal(str(principal.id))


async def update_principal_email(deps: Deps, principal_ref: str, email: str | None) -> Principal:
    """Set or change a principal's e-mail address (None removes it). Audited
    in its tenant's chain as principal.updated, naming the principal and the
    field, never the address."""
    address = None if email is None else clean_address(email, "email")
    principal = await find_principal(principal_ref)
    async with changing(deps) as change:
        if await store.set_principal_email(principal.id, address):
            await _audit_principal(
                change, principal, AuditAction.PRINCIPAL_UPDATED, changed=["email"]
            )
    return await find_principal(str(principal.id))


async def _audit_principal(
    change: Change,
    principal: Principal,
    action: AuditAction,
    token: ApiToken | None = None,
    *,
    changed: list[str] | None = None,
) -> None:
    if principal.tenant_id is None:
        return  # operator-side principals have no tenant chain
    detail: dict[str, object] = {"principal": principal.name}
    if token is not None:
        detail["tokenId"] = str(token.id)
    if changed is not None:
        detail["changed"] = changed
    await change.audit(principal.tenant_id, action, actor_id=None, detail=detail)


async def create_ticket(deps: Deps, tenant_ref: str, title: str) -> SupportTicket:
    tenant = await find_tenant(tenant_ref)
    title = check_text(title.strip(), "ticket title")
    if not title or len(title) > 500:
        raise BadUserInput("ticket title must be 1 to 500 characters")
    async with changing(deps) as change:
        ticket = await store.create_ticket(tenant.id, title)
        await _audit_ticket(change, ticket, AuditAction.TICKET_CREATED)
    return ticket


async def set_ticket_open(deps: Deps, ticket_id: str, is_open: bool) -> SupportTicket:
    """Close a ticket (no new requests may cite it) or reopen it."""
    ticket = await store.get_ticket(ticket_id)
    if ticket is None:
        raise NotFound.of("support ticket", ticket_id)
    async with changing(deps) as change:
        if await store.set_ticket_open(ticket.id, is_open):
            action = AuditAction.TICKET_REOPENED if is_open else AuditAction.TICKET_CLOSED
            await _audit_ticket(change, ticket, action)
    ticket.is_open = is_open
    return ticket


async def _audit_ticket(change: Change, ticket: SupportTicket, action: AuditAction) -> None:
    detail = {"ticketId": str(ticket.id), "title": ticket.title}
    await change.audit(ticket.tenant_id, action, actor_id=None, detail=detail)
