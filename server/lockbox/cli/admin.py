"""`lockbox admin`: provisioning tenants, principals, tickets and tokens.

Each verb is an async function from the parsed flags to (JSON data, text);
`@verb` gives it the database, a broker to announce revocations on, and the
printing of one or the other.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lockbox.cli.common import Command, check_broker_url, print_result, with_database
from lockbox.domain.policy import Role
from lockbox.realtime.broker import broker_from_url
from lockbox.services import admin, directory
from lockbox.services.deps import Deps
from lockbox.settings import Settings

if TYPE_CHECKING:
    from lockbox.store.models import ApiToken, Principal, SupportTicket, Tenant

Output = tuple[Any, str]
Verb = Callable[[Deps, argparse.Namespace], Awaitable[Output]]


def verb(work: Verb) -> Command:
    """A command that runs `work` against the database and prints its output."""

    @functools.wraps(work)
    def command(args: argparse.Namespace, settings: Settings) -> None:
        async def run() -> Output:
            check_broker_url(settings.broker_url)
            deps = Deps(
                broker=broker_from_url(settings.broker_url), audit_key=settings.audit_key_bytes
            )
            try:
                return await work(deps, args)
            finally:
                await deps.broker.close()

        data, text = asyncio.run(with_database(settings.database_url, run, migrate=False))
        print_result(data, args.json, text)

    return command


# --- tenants -----------------------------------------------------------------


@verb
async def tenant_create(deps: Deps, args: argparse.Namespace) -> Output:
    """Create a tenant with its resource roots."""
    t = await admin.create_tenant(deps, args.name, args.root, not args.lockbox_disabled)
    return _tenant_json(t), f"created tenant {t.name} ({t.id})"


@verb
async def tenant_list(deps: Deps, args: argparse.Namespace) -> Output:
    """List every tenant."""
    rows = [_tenant_json(t) for t in await directory.list_tenants()]
    return rows, "\n".join(f"{t['id']}  {t['name']}  {t['resourceRoots']}" for t in rows)


# --- principals --------------------------------------------------------------


@verb
async def principal_create(deps: Deps, args: argparse.Namespace) -> Output:
    """Create a principal: operator-side, or in a tenant with its scopes."""
    p = await admin.create_principal(
        deps,
        args.name,
        Role(args.role),
        tenant_ref=args.tenant,
        scopes=args.scope,
        email=args.email,
    )
    return _principal_json(p), f"created {p.role} {p.name} ({p.id})"


@verb
async def principal_update(deps: Deps, args: argparse.Namespace) -> Output:
    """Change a principal's e-mail address, or remove it with --no-email."""
    p = await admin.update_principal_email(
        deps, args.principal, None if args.no_email else args.email
    )
    return _principal_json(p), f"{p.name}'s e-mail address is {p.email or 'not set'}"


@verb
async def principal_list(deps: Deps, args: argparse.Namespace) -> Output:
    """List principals, all or one tenant's."""
    rows = [_principal_json(p) for p in await directory.list_principals(args.tenant)]
    return rows, "\n".join(
        f"{p['id']}  {p['name']}  {p['role']}{'  (disabled)' if p['disabled'] else ''}"
        for p in rows
    )


@verb
async def principal_disable(deps: Deps, args: argparse.Namespace) -> Output:
    """Disable a principal: its tokens stop working and its sockets close."""
    p = await admin.disable_principal(deps, args.principal)
    return _principal_json(p), f"disabled {p.name}"


@verb
async def principal_enable(deps: Deps, args: argparse.Namespace) -> Output:
    """Enable a disabled principal again."""
    p = await admin.enable_principal(deps, args.principal)
    return _principal_json(p), f"enabled {p.name}"


# --- tickets -----------------------------------------------------------------


@verb
async def ticket_create(deps: Deps, args: argparse.Namespace) -> Output:
    """Open a support ticket for a tenant."""
    ticket = await admin.create_ticket(deps, args.tenant, args.title)
    return _ticket_json(ticket), f"opened ticket {ticket.id}"


@verb
async def ticket_close(deps: Deps, args: argparse.Namespace) -> Output:
    """Close a ticket."""
    return _ticket_state(await admin.set_ticket_open(deps, args.ticket, False))


@verb
async def ticket_reopen(deps: Deps, args: argparse.Namespace) -> Output:
    """Reopen a closed ticket."""
    return _ticket_state(await admin.set_ticket_open(deps, args.ticket, True))


@verb
async def ticket_list(deps: Deps, args: argparse.Namespace) -> Output:
    """List tickets, all or one tenant's."""
    rows = [_ticket_json(t) for t in await directory.list_tickets(args.tenant)]
    return rows, "\n".join(f"{t['id']}  {t['title']}" for t in rows)


# --- tokens ------------------------------------------------------------------


@verb
async def token_issue(deps: Deps, args: argparse.Namespace) -> Output:
    """Issue a token; its secret is printed now and never again."""
    issued = await admin.issue_token(deps, args.principal, args.label)
    data = {**_token_json(issued.token), "token": issued.secret}
    return data, f"{issued.secret}\n(token id {issued.token.id}; shown once, store it now)"


@verb
async def token_revoke(deps: Deps, args: argparse.Namespace) -> Output:
    """Revoke a token: it stops working at once, open sockets included."""
    token = await admin.revoke_token(deps, args.token)
    return _token_json(token), f"revoked token {token.id}"


@verb
async def token_list(deps: Deps, args: argparse.Namespace) -> Output:
    """List a principal's tokens."""
    rows = [_token_json(t) for t in await directory.list_tokens(args.principal)]
    return rows, "\n".join(
        f"{t['id']}  {t['label']}{'  (revoked)' if t['revoked'] else ''}" for t in rows
    )


# --- output ------------------------------------------------------------------


def _tenant_json(t: Tenant) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "name": t.name,
        "lockboxEnabled": t.lockbox_enabled,
        "resourceRoots": list(t.resource_roots),
    }


def _principal_json(p: Principal) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "name": p.name,
        "role": str(p.role),
        "tenantId": None if p.tenant_id is None else str(p.tenant_id),
        "scopes": list(p.scopes),
        "email": p.email,
        "disabled": p.disabled_at is not None,
    }


def _ticket_json(t: SupportTicket) -> dict[str, Any]:
    return {"id": str(t.id), "tenantId": str(t.tenant_id), "title": t.title, "open": t.is_open}


def _ticket_state(ticket: SupportTicket) -> Output:
    state = "open" if ticket.is_open else "closed"
    return _ticket_json(ticket), f"ticket {ticket.id} is {state}"


def _token_json(t: ApiToken) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "principalId": str(t.principal_id),
        "label": t.label,
        "revoked": t.revoked_at is not None,
    }
