"""A tenant's webhooks, managed by its TENANT_ADMINs.

A webhook receives the tenant's events (contract section 6) as signed POSTs
from the outbox (services.outbox, notify.webhook). Its secret is made here,
stored, and shown once, in the answer to its creation: never listed, never
audited.
"""

from __future__ import annotations

import secrets
import uuid

from lockbox.domain import policy
from lockbox.domain.audit import AuditAction
from lockbox.domain.errors import BadUserInput, Forbidden, NotFound
from lockbox.domain.ids import parse_uuid
from lockbox.domain.notifications import clean_events, clean_webhook_url
from lockbox.domain.policy import Actor, Role
from lockbox.notify.webhook import UnsafeTarget, public_addresses
from lockbox.services.deps import Deps
from lockbox.services.writing import changing
from lockbox.store import queries as store
from lockbox.store.models import Webhook

# Each webhook adds a delivery to every event of the tenant (the gate's
# denied calls included): a tenant has a handful, not hundreds.
MAX_WEBHOOKS_PER_TENANT = 20
# What a deleted webhook's undelivered notifications say.
DELETED = "webhook deleted"


def _own_tenant_id(actor: Actor, what: str) -> uuid.UUID:
    policy.require_role(actor, {Role.TENANT_ADMIN}, what)
    if actor.tenant_id is None:  # a TENANT_ADMIN always has a tenant
        raise Forbidden(f"{actor.name} belongs to no tenant")
    return uuid.UUID(actor.tenant_id)


def _described(webhook: Webhook) -> dict[str, object]:
    """A webhook as the audit log tells of it: never its secret."""
    return {"webhookId": str(webhook.id), "url": webhook.url, "events": list(webhook.events)}


async def create_webhook(
    deps: Deps, actor: Actor, url: str, events: list[str] | None
) -> tuple[Webhook, str]:
    """A new webhook of the caller's tenant, and its secret (shown only now)."""
    tenant_id = _own_tenant_id(actor, "createWebhook")
    target = clean_webhook_url(url)
    wanted = clean_events(events)
    if not deps.webhook_allow_private:
        try:
            await public_addresses(target.host, target.port)
        except UnsafeTarget as refused:
            raise BadUserInput(f"url refused: {refused.message}") from None
    secret = secrets.token_urlsafe(32)
    async with changing(deps) as change:
        await store.lock_tenant(tenant_id)  # counts and creations of one tenant in turn
        if await store.count_webhooks(tenant_id) >= MAX_WEBHOOKS_PER_TENANT:
            raise BadUserInput(f"a tenant has at most {MAX_WEBHOOKS_PER_TENANT} webhooks")
        webhook = await store.create_webhook(
            tenant_id, url=target.url, events=wanted, secret=secret, created_at=change.now
        )
        await change.audit(
            tenant_id, AuditAction.WEBHOOK_CREATED, actor_id=actor.id, detail=_described(webhook)
        )
    return webhook, secret


async def list_webhooks(deps: Deps, actor: Actor) -> list[Webhook]:
    """The caller's tenant's webhooks, oldest first."""
    return await store.list_webhooks(_own_tenant_id(actor, "webhooks"))


async def delete_webhook(deps: Deps, actor: Actor, webhook_id: str) -> bool:
    """Delete one of the caller's tenant's webhooks; what it had not yet
    received is given up (FAILED, "webhook deleted") in the same change."""
    tenant_id = _own_tenant_id(actor, "deleteWebhook")
    key = parse_uuid(webhook_id)
    if key is None:
        raise NotFound.of("webhook", webhook_id)
    async with changing(deps) as change:
        # The tenant first, as every audited change does: one lock order.
        await store.lock_tenant(tenant_id)
        webhook = await store.lock_webhook(tenant_id, key)
        if webhook is None:  # missing, or another tenant's: the same answer
            raise NotFound.of("webhook", webhook_id)
        given_up = await store.fail_pending_deliveries(webhook.id, DELETED)
        await store.delete_webhook(webhook.id)
        await change.audit(
            tenant_id,
            AuditAction.WEBHOOK_DELETED,
            actor_id=actor.id,
            detail={**_described(webhook), "undeliveredNotifications": given_up},
        )
    return True
