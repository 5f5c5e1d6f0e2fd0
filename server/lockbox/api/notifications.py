"""The notification log (contract section 6): the `Notification` type, its
enums and its cursor. The query field itself is in api.queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from lockbox.api.types import identifier, stored
from lockbox.domain import cursors
from lockbox.domain.notifications import Channel
from lockbox.domain.notifications import DeliveryStatus as DomainDeliveryStatus
from lockbox.services.notification_log import LoggedNotification
from lockbox.store import models

NotificationChannel = strawberry.enum(Channel, name="NotificationChannel")
DeliveryStatus = strawberry.enum(DomainDeliveryStatus, name="DeliveryStatus")

NOTIFICATION = "notification"


def described(attribute: str, description: str) -> Any:
    """A field whose value is the wrapped row's attribute, with a description."""

    def resolve(root: Any) -> Any:
        return getattr(root.row, attribute)

    return strawberry.field(resolver=resolve, description=description)


# The log runs newest first by (created_at, id).
NOTIFICATIONS: cursors.TimeKeyset[LoggedNotification] = cursors.TimeKeyset(
    NOTIFICATION, lambda logged: (logged.row.created_at, logged.row.id)
)


def _webhook_id(root: NotificationType) -> strawberry.ID | None:
    webhook = root.row.webhook_id
    return None if webhook is None else strawberry.ID(str(webhook))


def _webhook_url(root: NotificationType) -> str | None:
    return root.webhook_url_


def _request_id(root: NotificationType) -> strawberry.ID | None:
    request = root.row.request_id
    return None if request is None else strawberry.ID(str(request))


@strawberry.type(
    name="Notification",
    description="One mail or webhook delivery of the caller's tenant, as the outbox holds it.",
)
class NotificationType:
    row: strawberry.Private[models.Notification]
    webhook_url_: strawberry.Private[str | None] = None
    id: strawberry.ID = identifier()
    channel: NotificationChannel = stored("channel")  # type: ignore[valid-type]
    event: str = described("event", "The event that caused it, e.g. access_request.created.")
    recipient: str | None = described("recipient", "The address, for mail.")
    webhook_id: strawberry.ID | None = strawberry.field(
        resolver=_webhook_id, description="The webhook, for a webhook delivery (null once deleted)."
    )
    webhook_url: str | None = strawberry.field(
        resolver=_webhook_url, description="The webhook's URL (null for mail and once deleted)."
    )
    status: DeliveryStatus = stored("status")  # type: ignore[valid-type]
    attempts: int = described("attempts", "Delivery attempts made so far.")
    last_error: str | None = described("last_error", "Why the last attempt failed, if it did.")
    created_at: datetime = stored("created_at")
    sent_at: datetime | None = stored("sent_at")
    request_id: strawberry.ID | None = strawberry.field(
        resolver=_request_id, description="The access request it is about, if any."
    )


def node(logged: LoggedNotification) -> NotificationType:
    return NotificationType(row=logged.row, webhook_url_=logged.webhook_url)
