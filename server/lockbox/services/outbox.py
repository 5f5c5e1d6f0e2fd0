"""The delivery worker: sends what the outbox holds, in every process.

Rows are claimed for a while (the lease) before they are sent, so two
workers never send one row at once; a claim left by a process that died
runs out and the row is claimed again. Delivery is therefore at least once:
a process that dies after sending and before recording sends again later,
with the same id (mail Message-ID, webhook Lockbox-Event-Id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from datetime import timedelta

from lockbox.domain.audit import AuditAction
from lockbox.domain.notifications import RETRY, Channel, DeliveryStatus, RetryPolicy
from lockbox.notify import DeliveryError, Transport
from lockbox.realtime.topics import OUTBOX_TOPIC
from lockbox.services.deps import Deps
from lockbox.services.periodic import every
from lockbox.services.writing import changing
from lockbox.store import queries as store
from lockbox.store.models import Notification, Webhook

log = logging.getLogger(__name__)

BATCH = 50


class Outbox:
    def __init__(
        self,
        deps: Deps,
        transports: Mapping[Channel, Transport],
        *,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        retry: RetryPolicy = RETRY,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.deps = deps
        self.transports = dict(transports)
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.retry = retry
        self.jitter = jitter

    async def run(self) -> None:
        """Forever: deliver what is due, then wait for a wake-up or the next poll."""
        with self.deps.hub.subscribe(OUTBOX_TOPIC, keep_messages=False) as bell:

            async def once() -> None:
                try:
                    while await self.deliver_due() == BATCH:
                        pass  # a full batch: there may be more due right now
                finally:  # also after a failure: no busy loop while the database is down
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_seconds):
                            await bell.wait()
                    bell.drain()

            await every(0, "outbox", once)

    async def deliver_due(self) -> int:
        """Claim due rows, send each, record the outcome. How many were claimed."""
        now = self.deps.clock.now()
        rows = await store.claim_notifications(now, now + self.lease, BATCH)
        webhook_ids = [row.webhook_id for row in rows if row.webhook_id is not None]
        webhooks = {w.id: w for w in await store.get_webhooks(webhook_ids)} if webhook_ids else {}
        for row in rows:
            webhook = None if row.webhook_id is None else webhooks.get(row.webhook_id)
            await self._deliver(row, webhook)
        return len(rows)

    async def _deliver(self, row: Notification, webhook: Webhook | None) -> None:
        transport = self.transports.get(row.channel)
        try:
            if transport is None:
                raise DeliveryError(f"no {row.channel.value.lower()} transport is configured")
            await transport.send(row, webhook)
        except DeliveryError as failure:
            await self._failed(row, failure)
        except Exception:
            log.exception("delivering notification %s failed unexpectedly", row.id)
            await self._failed(row, DeliveryError("unexpected error while sending"))
        else:
            await store.record_delivery(row, status=DeliveryStatus.SENT, now=self.deps.clock.now())
            self._count(row, "sent")

    def _count(self, row: Notification, outcome: str) -> None:
        if self.deps.metrics is not None:
            self.deps.metrics.delivery(row.channel.value, outcome)

    async def _failed(self, row: Notification, failure: DeliveryError) -> None:
        now = self.deps.clock.now()
        retry_at = None
        if not failure.permanent:
            retry_at = self.retry.next_attempt(row.attempts + 1, row.created_at, now, self.jitter())
        if retry_at is not None:
            await store.record_delivery(
                row,
                status=DeliveryStatus.PENDING,
                now=now,
                next_attempt_at=retry_at,
                error=failure.message,
            )
            self._count(row, "retry")
            return
        self._count(row, "failed")
        async with changing(self.deps) as change:
            if await store.record_delivery(
                row, status=DeliveryStatus.FAILED, now=now, error=failure.message
            ):
                await change.audit(
                    row.tenant_id,
                    AuditAction.NOTIFICATION_FAILED,
                    actor_id=None,
                    request_id=row.request_id,
                    detail={
                        "notificationId": str(row.id),
                        "channel": row.channel.value,
                        "event": row.event,
                        "recipient": row.recipient,
                        "webhookId": None if row.webhook_id is None else str(row.webhook_id),
                        "attempts": row.attempts + 1,
                        "lastError": failure.message,
                    },
                )
