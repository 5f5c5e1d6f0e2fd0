"""The notification log: a tenant's mails and webhook deliveries as the
outbox holds them (waiting, sent, or given up on), for its TENANT_ADMINs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lockbox.domain import policy
from lockbox.domain.cursors import Window
from lockbox.domain.errors import Forbidden
from lockbox.domain.policy import Actor, Role
from lockbox.store import queries as store
from lockbox.store.models import Notification


@dataclass(frozen=True, slots=True)
class LoggedNotification:
    row: Notification
    webhook_url: str | None  # None for mail, and once the webhook is deleted


async def page(actor: Actor, window: Window) -> list[LoggedNotification]:
    """The caller's tenant's notifications along a walk of the newest-first order."""
    policy.require_role(actor, {Role.TENANT_ADMIN}, "notifications")
    if actor.tenant_id is None:  # a TENANT_ADMIN always has a tenant
        raise Forbidden(f"{actor.name} belongs to no tenant")
    tenant_id = uuid.UUID(actor.tenant_id)
    rows = await store.notification_page(tenant_id, window)
    urls = await store.webhook_urls(
        tenant_id, list({row.webhook_id for row in rows if row.webhook_id is not None})
    )
    return [
        LoggedNotification(
            row=row, webhook_url=None if row.webhook_id is None else urls.get(row.webhook_id)
        )
        for row in rows
    ]
