"""Delivery of outbox rows: one transport per channel (mail.py: SMTP,
webhook.py: signed HTTP POST). The delivery worker (services.outbox)
claims due rows and hands each to its channel's transport."""

from __future__ import annotations

from typing import Protocol

from lockbox.store.models import Notification, Webhook


class DeliveryError(Exception):
    """A delivery that did not go through; retried later. The message is kept
    as the row's lastError (and shown to tenant admins): say what happened,
    never a secret."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # Permanent: retrying cannot help (e.g. the webhook was deleted).
        self.permanent = permanent


class Transport(Protocol):
    async def send(self, notification: Notification, webhook: Webhook | None) -> None:
        """Deliver one row, or raise DeliveryError. `webhook` is the row's
        webhook for the WEBHOOK channel (None once it was deleted)."""
        ...
