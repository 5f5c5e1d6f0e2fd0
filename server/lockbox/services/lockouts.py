"""Ends the live subscriptions of principals whose token was revoked or who
were disabled, wherever that happened (another process, or the shell).

The broker carries such news at once when it can; this poll of the database
is the backstop that needs no broker, so `lockbox admin` works on memory://.
"""

from __future__ import annotations

import asyncio
import logging

from lockbox.realtime.topics import principal_topic
from lockbox.services.deps import Deps
from lockbox.store import queries as store

log = logging.getLogger(__name__)


async def watch(deps: Deps, interval_seconds: float) -> None:
    since = await store.latest_lockouts()
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            principals, since = await store.lockouts_since(since)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("lockout poll failed; retrying")
            continue
        for principal_id in principals:
            deps.hub.deliver(principal_topic(principal_id), {"reason": "locked out"})
