"""Node ids and who may fetch what by id (`node`, `nodes`; contract section 11).

Every object a client can fetch by id carries a UUID unique across types.
Tenants, principals, tickets and requests have random (version 4) UUIDs as
their keys. Activity and audit events are numbered rows; their id is a
version 8 UUID (RFC 9562's custom layout) that spells out which table and
which row, so a lookup goes straight to its row and can never collide with
a random UUID (whose version is 4).
"""

from __future__ import annotations

import uuid
from enum import Enum

from lockbox.domain.policy import OPERATOR_ROLES, Actor, can_read_audit

# The UUID's first 32 bits: "this is one of Lockbox's numbered rows".
_PREFIX = 0x10CB0C5E
_ROW_BITS = 62
_VERSION_8 = 0x8 << 76
_VARIANT = 0b10 << 62
# Everything but the row number: prefix, kind, version, 12 zero bits, variant.
_FIXED = ~((1 << _ROW_BITS) - 1) & ((1 << 128) - 1)


class Numbered(Enum):
    """The numbered tables, each with the code its ids carry."""

    ACTIVITY = 1
    AUDIT = 2


def numbered_id(kind: Numbered, row_id: int) -> uuid.UUID:
    if not 0 <= row_id < 1 << _ROW_BITS:
        raise ValueError(f"row {row_id} does not fit a node id")
    return uuid.UUID(int=(_PREFIX << 96) | (kind.value << 80) | _VERSION_8 | _VARIANT | row_id)


def parse_numbered(value: uuid.UUID) -> tuple[Numbered, int] | None:
    """The table and row a numbered id names; None for any other UUID."""
    number = value.int
    for kind in Numbered:
        if number & _FIXED == numbered_id(kind, 0).int:
            return kind, number & ((1 << _ROW_BITS) - 1)
    return None


# --- who sees which object ----------------------------------------------------------
# Requests follow policy.can_see and activity follows its request (both in
# services.requests). The objects around them: a customer principal reaches
# its own tenant, its tickets and principals, and the provider's principals
# (a request's engineer, an audit event's actor); the provider's side, which
# serves every tenant, reaches every tenant, ticket and principal. Nobody
# reaches another customer's.


def can_see_tenant(viewer: Actor, tenant_id: str) -> bool:
    return viewer.role in OPERATOR_ROLES or viewer.tenant_id == tenant_id


def can_see_ticket(viewer: Actor, ticket_tenant_id: str) -> bool:
    return can_see_tenant(viewer, ticket_tenant_id)


def can_see_principal(viewer: Actor, principal_id: str, principal_tenant_id: str | None) -> bool:
    if viewer.id == principal_id or principal_tenant_id is None:
        return True
    return can_see_tenant(viewer, principal_tenant_id)


def can_see_audit_event(viewer: Actor, event_tenant_id: str) -> bool:
    """As the audit log: its tenant's TENANT_ADMINs and AUDITORs."""
    return can_read_audit(viewer) and viewer.tenant_id == event_tenant_id
