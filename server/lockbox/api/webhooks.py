"""Webhooks in the schema (contract section 6): the type, the creation's
answer (the only place the secret is ever shown) and the input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from lockbox.api.types import identifier, stored
from lockbox.store import models


def _events(root: Any) -> list[str]:
    return list(root.row.events)


@strawberry.type(name="Webhook")
class WebhookType:
    row: strawberry.Private[models.Webhook]
    id: strawberry.ID = identifier()
    url: str = stored("url")
    events: list[str] = strawberry.field(
        resolver=_events, description="The event types delivered; empty: every event type."
    )
    enabled: bool = stored("enabled")
    created_at: datetime = stored("created_at")
    last_delivery_at: datetime | None = stored("last_delivery_at")
    last_error: str | None = stored("last_error")


@strawberry.type
class WebhookCreated:
    webhook: WebhookType
    secret: str = strawberry.field(
        description="Signs every delivery (Lockbox-Signature). Shown only here."
    )


@strawberry.input
class CreateWebhookInput:
    url: str
    events: list[str] | None = strawberry.field(
        default=None, description="Event types to deliver; null or empty: every event type."
    )
