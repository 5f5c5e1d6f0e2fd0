"""One reader per request per process for live activity.

Without it, every subscriber of a request would query the database on every
wake-up: a thousand subscribers, a thousand identical queries per event. A
feed keeps the request's recent events in memory and fetches new ones once
per wake-up for all of them; a subscriber that is further behind than the
feed remembers reads the database on its own until it catches up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from lockbox.realtime.hub import Hub, Inbox
from lockbox.realtime.topics import activity_topic
from lockbox.store import queries as store
from lockbox.store.models import ActivityEvent

FETCH_BATCH = 500


class ActivityFeed:
    def __init__(self, request_id: uuid.UUID, inbox: Inbox, start: int, capacity: int) -> None:
        self.request_id = request_id
        self.events: deque[ActivityEvent] = deque(maxlen=capacity)
        # Highest sequence number fetched. Events up to `start` were committed
        # before the feed's inbox existed; everything later rings it.
        self.last = start
        self._inbox = inbox
        self._fresh = True
        self._lock = asyncio.Lock()
        self.subscribers = 0

    async def after(self, position: int, limit: int) -> list[ActivityEvent]:
        """Up to `limit` events after `position`, in order."""
        oldest = self.events[0].seq if self.events else self.last + 1
        if position + 1 < oldest:
            return await store.activity_after(self.request_id, position, limit)
        await self._refresh()
        found: list[ActivityEvent] = []
        for event in self.events:
            if event.seq > position:
                found.append(event)
                if len(found) == limit:
                    break
        return found

    async def _refresh(self) -> None:
        async with self._lock:
            wakeup = self._inbox.drain()
            if not (self._fresh or wakeup.rung or wakeup.resync):
                return
            self._fresh = False
            while True:
                rows = await store.activity_after(self.request_id, self.last, FETCH_BATCH)
                self.events.extend(rows)
                if rows:
                    self.last = rows[-1].seq
                if len(rows) < FETCH_BATCH:
                    return


class Feeds:
    """The live feeds of this process, one per watched request."""

    def __init__(self, hub: Hub, capacity: int = 1000) -> None:
        self._hub = hub
        self._capacity = capacity
        self._feeds: dict[uuid.UUID, tuple[ActivityFeed, AsyncExitStack]] = {}

    @asynccontextmanager
    async def open(self, request_id: uuid.UUID, start: int) -> AsyncIterator[ActivityFeed]:
        entry = self._feeds.get(request_id)
        if entry is None:
            stack = AsyncExitStack()
            inbox = stack.enter_context(
                self._hub.subscribe(activity_topic(request_id), keep_messages=False)
            )
            entry = (ActivityFeed(request_id, inbox, start, self._capacity), stack)
            self._feeds[request_id] = entry
        feed, stack = entry
        feed.subscribers += 1
        try:
            yield feed
        finally:
            feed.subscribers -= 1
            if feed.subscribers == 0 and self._feeds.get(request_id) is entry:
                del self._feeds[request_id]
                await stack.aclose()
