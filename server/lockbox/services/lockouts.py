"""Ends the live subscriptions of principals whose token was revoked or who
were disabled, wherever that happened (another process, or the shell).

The broker carries such news at once when it can; this poll of the database
is the backstop that needs no broker, so `lockbox admin` works on memory://.
"""

from __future__ import annotations

from datetime import datetime

from lockbox.realtime.topics import principal_topic
from lockbox.services.deps import Deps
from lockbox.services.periodic import every
from lockbox.store import queries as store


class LockoutWatch:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.started = False
        self.since: datetime | None = None

    async def poll(self) -> None:
        if not self.started:
            # Lockouts before this process started concern no socket of ours.
            self.since = await store.latest_lockouts()
            self.started = True
            return
        principals, self.since = await store.lockouts_since(self.since)
        for principal_id in principals:
            self.deps.hub.deliver(principal_topic(principal_id), {"reason": "locked out"})


async def watch(deps: Deps, interval_seconds: float) -> None:
    await every(interval_seconds, "lockout poll", LockoutWatch(deps).poll)
