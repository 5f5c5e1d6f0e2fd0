"""Who sees what and who decides: the access rules of the contract, section 5."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lockbox.domain.errors import BadUserInput, Forbidden, InvalidState
from lockbox.domain.lifecycle import Party
from lockbox.domain.resources import MAX_RESOURCES_PER_REQUEST, parse_path, within_any


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
    # False while the provider has not approved it (LOCKBOX_PROVIDER_APPROVAL),
    # and for good once the provider denied it: for customer principals it
    # does not exist.
    customer_visible: bool = True


def approver_covers(actor: Actor, resources: tuple[str, ...] | list[str]) -> bool:
    return bool(resources) and all(within_any(r, actor.scopes) for r in resources)


def can_see(actor: Actor, request: RequestFacts) -> bool:
    if actor.role not in OPERATOR_ROLES and not request.customer_visible:
        return False
    if actor.role in (Role.TENANT_ADMIN, Role.AUDITOR):
        return actor.tenant_id == request.tenant_id
    if actor.role is Role.APPROVER:
        return actor.tenant_id == request.tenant_id and approver_covers(actor, request.resources)
    if actor.role is Role.ENGINEER:
        return actor.id == request.engineer_id
    return actor.role in OPERATOR_OVERSIGHT


def can_decide(actor: Actor, request: RequestFacts) -> bool:
    if actor.id == request.engineer_id or not request.customer_visible:
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
    elif party is Party.PROVIDER and actor is not None:
        require_provider_approver(actor, request, verb)
    elif party in (Party.DECIDER, Party.ENGINEER, Party.PROVIDER) or actor is not None:
        who = "nobody" if actor is None else actor.name
        raise Forbidden(f"{who} may not {verb} request {request.id}: that is for the {party}")


def require_provider_approver(actor: Actor, request: RequestFacts, verb: str) -> None:
    """The provider's pre-approval: a SUPPORT_MANAGER, never the requester."""
    if actor.role is not Role.SUPPORT_MANAGER:
        raise Forbidden(f"{actor.name} may not {verb} request {request.id}: needs SUPPORT_MANAGER")
    if actor.id == request.engineer_id:
        raise Forbidden(f"{actor.name} may not {verb} request {request.id}: it is their own")


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


# --- approval policy: quorum and narrowing (contract section 8) ----------------


@dataclass(frozen=True, slots=True)
class Grant:
    """What the approvals so far grant: the narrowest of them."""

    seconds: int
    resources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ApprovalFacts:
    """One recorded approval: who, and what it granted (None: as before it)."""

    approver_id: str
    seconds: int | None
    resources: tuple[str, ...] | None


def grant_of(
    requested_seconds: int, requested: tuple[str, ...], approvals: list[ApprovalFacts]
) -> Grant:
    """The grant after `approvals`, in the order they were given: the
    shortest duration, and the resources of the last approver who narrowed
    them (each lies within what the earlier ones granted)."""
    grant = Grant(requested_seconds, requested)
    for approval in approvals:
        grant = Grant(
            grant.seconds if approval.seconds is None else min(grant.seconds, approval.seconds),
            grant.resources if approval.resources is None else approval.resources,
        )
    return grant


def narrowed(
    request_id: str,
    requested_seconds: int,
    so_far: Grant,
    seconds: int | None,
    resources: list[str] | tuple[str, ...] | None,
) -> tuple[int | None, tuple[str, ...] | None]:
    """An approver's narrowing, checked: `seconds` from 1 to the requested
    duration, each of `resources` within one of those granted so far
    (segment-wise). BadUserInput for anything wider; None where unchanged."""
    if seconds is not None and (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not 1 <= seconds <= requested_seconds
    ):
        raise BadUserInput(
            f"durationSeconds must be a whole number of seconds from 1 to {requested_seconds}, "
            f"the duration request {request_id} asked for"
        )
    if resources is None:
        return seconds, None
    if not 1 <= len(resources) <= MAX_RESOURCES_PER_REQUEST:
        raise BadUserInput(
            f"resources must list 1 to {MAX_RESOURCES_PER_REQUEST} paths, got {len(resources)}"
        )
    cleaned: list[str] = []
    for path in resources:
        parse_path(path)
        if not within_any(path, so_far.resources):
            raise BadUserInput(
                f"resource {path!r} is not within what request {request_id} is granted so far; "
                "an approval may only narrow it"
            )
        if path not in cleaned:
            cleaned.append(path)
    return seconds, tuple(cleaned)


def require_new_approver(request_id: str, approver_id: str, approvals: list[ApprovalFacts]) -> None:
    """Each approval of a quorum is a different decider's."""
    if any(a.approver_id == approver_id for a in approvals):
        raise InvalidState(
            f"cannot approve request {request_id}: it is PENDING and already approved by you"
        )
