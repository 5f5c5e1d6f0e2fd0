"""Who sees what and who decides: the access rules of the contract, section 5."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lockbox.domain.errors import Forbidden
from lockbox.domain.lifecycle import Party
from lockbox.domain.resources import within_any


class Role(StrEnum):
    TENANT_ADMIN = "TENANT_ADMIN"
    APPROVER = "APPROVER"
    AUDITOR = "AUDITOR"
    ENGINEER = "ENGINEER"
    SUPPORT_MANAGER = "SUPPORT_MANAGER"
    OPERATOR_ADMIN = "OPERATOR_ADMIN"


OPERATOR_ROLES = frozenset({Role.ENGINEER, Role.SUPPORT_MANAGER, Role.OPERATOR_ADMIN})
# Operator-side oversight: they see every request (never decide one).
OPERATOR_OVERSIGHT = frozenset({Role.SUPPORT_MANAGER, Role.OPERATOR_ADMIN})


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller."""

    id: str
    name: str
    role: Role
    tenant_id: str | None
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the policy needs to know about an access request."""

    id: str
    tenant_id: str
    engineer_id: str
    resources: tuple[str, ...]


def approver_covers(actor: Actor, resources: tuple[str, ...] | list[str]) -> bool:
    return bool(resources) and all(within_any(r, actor.scopes) for r in resources)


def can_see(actor: Actor, request: RequestFacts) -> bool:
    if actor.role in (Role.TENANT_ADMIN, Role.AUDITOR):
        return actor.tenant_id == request.tenant_id
    if actor.role is Role.APPROVER:
        return actor.tenant_id == request.tenant_id and approver_covers(actor, request.resources)
    if actor.role is Role.ENGINEER:
        return actor.id == request.engineer_id
    return actor.role in OPERATOR_OVERSIGHT


def can_decide(actor: Actor, request: RequestFacts) -> bool:
    if actor.id == request.engineer_id:
        return False
    if actor.role is Role.TENANT_ADMIN:
        return actor.tenant_id == request.tenant_id
    if actor.role is Role.APPROVER:
        return actor.tenant_id == request.tenant_id and approver_covers(actor, request.resources)
    return False


def require_decider(actor: Actor, request: RequestFacts, verb: str) -> None:
    if not can_decide(actor, request):
        raise Forbidden(f"{actor.name} may not {verb} request {request.id}")


def require_own_engineer(actor: Actor, request: RequestFacts, verb: str) -> None:
    if actor.id != request.engineer_id:
        raise Forbidden(f"only the requesting engineer may {verb} request {request.id}")


def require_party(actor: Actor | None, request: RequestFacts, party: Party, verb: str) -> None:
    """`actor` may take an action that the lifecycle gives to `party`.

    The clock and Lockbox act on their own (actor None); nobody acts for them.
    """
    if party is Party.DECIDER and actor is not None:
        require_decider(actor, request, verb)
    elif party is Party.ENGINEER and actor is not None:
        require_own_engineer(actor, request, verb)
    elif party in (Party.DECIDER, Party.ENGINEER) or actor is not None:
        who = "nobody" if actor is None else actor.name
        raise Forbidden(f"{who} may not {verb} request {request.id}: that is for the {party}")


def require_role(actor: Actor, roles: frozenset[Role] | set[Role], what: str) -> None:
    if actor.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(f"{what} needs role {allowed}; {actor.name} is {actor.role.value}")


def can_read_audit(actor: Actor) -> bool:
    return actor.role in (Role.TENANT_ADMIN, Role.AUDITOR)


def can_read_email(viewer: Actor, principal_id: str, principal_tenant_id: str | None) -> bool:
    """A customer principal's address stays with its own tenant: engineers
    and the operator side never read it (contract section 10)."""
    if principal_tenant_id is None or viewer.id == principal_id:
        return True
    return viewer.tenant_id == principal_tenant_id


def can_read_activity_detail(viewer: Actor) -> bool:
    """Operator-side oversight sees that an action happened, not its detail."""
    return viewer.role not in OPERATOR_OVERSIGHT
