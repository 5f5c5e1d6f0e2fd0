"""Objects by id, for `node` and `nodes`: None for whatever the caller cannot
see, exactly as for an id that names nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from lockbox.domain import nodes
from lockbox.domain.ids import parse_uuid
from lockbox.domain.nodes import Numbered
from lockbox.domain.policy import Actor
from lockbox.services import requests as request_service
from lockbox.store import queries as store
from lockbox.store.models import (
    AccessRequest,
    ActivityEvent,
    AuditEvent,
    Principal,
    SupportTicket,
    Tenant,
)

Found = AccessRequest | ActivityEvent | AuditEvent | Principal | SupportTicket | Tenant


async def find(actor: Actor, ids: Sequence[str]) -> list[Found | None]:
    """The object each id names, if `actor` may see it, in the order asked.
    A few statements whatever the number of ids: one per table involved."""
    keys = {value: parse_uuid(value) for value in ids}
    numbered: dict[Numbered, list[int]] = {kind: [] for kind in Numbered}
    plain: list[uuid.UUID] = []
    for key in keys.values():
        if key is None:
            continue
        named = nodes.parse_numbered(key)
        if named is None:
            plain.append(key)
        else:
            numbered[named[0]].append(named[1])

    rows: dict[uuid.UUID, Found] = dict(await store.objects_by_uuid(plain)) if plain else {}
    activity_ids, audit_ids = numbered[Numbered.ACTIVITY], numbered[Numbered.AUDIT]
    activity = await store.get_activity_events(activity_ids) if activity_ids else []
    audit = await store.get_audit_events(audit_ids) if audit_ids else []
    rows.update({nodes.numbered_id(Numbered.ACTIVITY, row.id): row for row in activity})
    rows.update({nodes.numbered_id(Numbered.AUDIT, row.id): row for row in audit})

    # An activity event is seen by whoever sees its request.
    requests = {row.id: row for row in rows.values() if isinstance(row, AccessRequest)}
    wanted = list({row.request_id for row in activity} - requests.keys())
    requests.update({row.id: row for row in await store.get_requests(wanted)} if wanted else {})

    def seen(key: uuid.UUID | None) -> Found | None:
        row = None if key is None else rows.get(key)
        if row is None:
            return None
        if isinstance(row, AccessRequest):
            return request_service.visible(actor, row)
        if isinstance(row, ActivityEvent):
            request = request_service.visible(actor, requests.get(row.request_id))
            return row if request is not None else None
        if isinstance(row, AuditEvent):
            return row if nodes.can_see_audit_event(actor, str(row.tenant_id)) else None
        if isinstance(row, Principal):
            tenant = None if row.tenant_id is None else str(row.tenant_id)
            return row if nodes.can_see_principal(actor, str(row.id), tenant) else None
        if isinstance(row, SupportTicket):
            return row if nodes.can_see_ticket(actor, str(row.tenant_id)) else None
        return row if nodes.can_see_tenant(actor, str(row.id)) else None

    return [seen(keys[value]) for value in ids]
