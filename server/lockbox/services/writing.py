"""The one way Lockbox changes anything.

`async with changing(deps) as change:` opens one transaction. Inside it a
service locks what it changes, asks the domain what may happen, writes
through the store, appends audit events with `change.audit(...)` and stages
wake-ups with `change.announce(...)`. Wake-ups go out only after the commit:
a subscriber never hears of a change it cannot yet read, and a change that
rolls back announces nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from lockbox.domain.audit import AuditAction
from lockbox.domain.evidence import canonical, digest
from lockbox.realtime.hub import Message
from lockbox.services.deps import Deps
from lockbox.store import queries as store


class Change:
    """One transaction's worth of writes: its clock reading, its audit events
    and the wake-ups to send once it has committed."""

    __slots__ = ("_announcements", "deps", "now")

    def __init__(self, deps: Deps, now: datetime) -> None:
        self.deps = deps
        self.now = now
        self._announcements: dict[tuple[str, str], Message] = {}

    async def audit(
        self,
        tenant_id: uuid.UUID,
        action: AuditAction,
        *,
        actor_id: str | uuid.UUID | None,
        request_id: uuid.UUID | None = None,
        detail: dict[str, Any],
    ) -> None:
        """Append to the tenant's audit chain, in this change's transaction."""
        await store.append_audit(
            tenant_id,
            at=self.now,
            action=action.value,
            actor_id=None if actor_id is None else uuid.UUID(str(actor_id)),
            request_id=request_id,
            detail=detail,
            key=self.deps.audit_key,
        )

    async def decision(
        self,
        tenant_id: uuid.UUID,
        request_id: uuid.UUID,
        *,
        action: str,
        decider_id: str,
        payload: dict[str, Any],
    ) -> str:
        """Record a decision in this change's transaction, signed with
        LOCKBOX_SIGNING_KEY when set. Returns the digest of its payload, for
        the audit event that records the same decision to carry."""
        signer = self.deps.signer
        await store.insert_decision(
            tenant_id=tenant_id,
            request_id=request_id,
            action=action,
            decider_id=uuid.UUID(decider_id),
            at=self.now,
            payload=canonical(payload),
            signature=None if signer is None else signer.sign(payload),
            key_id=None if signer is None else signer.key_id,
        )
        return digest(payload)

    def announce(self, topic: str, message: Message, *, key: str = "") -> None:
        """Stage a wake-up. A later one with the same topic and key replaces
        it: subscribers hear where the change ended, once."""
        self._announcements[(topic, key)] = message

    @property
    def announcements(self) -> list[tuple[str, Message]]:
        return [(topic, message) for (topic, _), message in self._announcements.items()]


@asynccontextmanager
async def changing(deps: Deps) -> AsyncIterator[Change]:
    change = Change(deps, deps.clock.now())
    async with store.transaction():
        yield change
    for topic, message in change.announcements:
        await deps.publish(topic, message)
