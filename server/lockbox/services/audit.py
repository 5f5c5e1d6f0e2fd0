"""Reading and verifying the audit chain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lockbox.domain import policy
from lockbox.domain.audit import AuditRecord, ChainBreak, StoredAuditEvent, verify_chain
from lockbox.domain.errors import Forbidden
from lockbox.domain.policy import Actor
from lockbox.store import queries as store
from lockbox.store.models import AuditEvent, Tenant

VERIFY_BATCH = 1000


async def page(actor: Actor, after_seq: int, limit: int) -> list[AuditEvent]:
    if not policy.can_read_audit(actor) or actor.tenant_id is None:
        raise Forbidden(f"{actor.name} may not read the audit log")
    return await store.audit_page(uuid.UUID(actor.tenant_id), after_seq, limit)


def stored_event(event: AuditEvent) -> StoredAuditEvent:
    return StoredAuditEvent(
        id=str(event.id),
        record=AuditRecord(
            tenant_id=str(event.tenant_id),
            seq=event.seq,
            at=event.at,
            action=event.action,
            actor_id=None if event.actor_id is None else str(event.actor_id),
            request_id=None if event.request_id is None else str(event.request_id),
            detail=event.detail,
        ),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


@dataclass(frozen=True, slots=True)
class TenantVerdict:
    tenant: Tenant
    events: int
    broken: ChainBreak | None


async def verify_tenant(tenant: Tenant) -> TenantVerdict:
    events: list[StoredAuditEvent] = []
    last_id = 0
    while True:
        batch = await store.audit_chain(tenant.id, last_id, VERIFY_BATCH)
        events.extend(stored_event(e) for e in batch)
        if len(batch) < VERIFY_BATCH:
            break
        last_id = batch[-1].id
    broken = verify_chain(events, tenant.audit_head, tenant.audit_seq)
    return TenantVerdict(tenant=tenant, events=len(events), broken=broken)
