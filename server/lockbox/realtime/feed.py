"""One reader per request per process for live activity.

Without it, every subscriber of a request would query the database on every
wake-up: a thousand subscribers, a thousand identical queries per event. A
feed keeps the request's recent events in memory and fetches new ones once
per wake-up for all of them; a subscriber that is further behind than the
feed remembers reads the database on its own until it catches up.

Subscribers that have caught up may also hand their delivery to the feed
(a `Sink`, see realtime.direct): the feed then renders each new event once
per distinct subscription and writes it to every such subscriber in one
pass, instead of waking one task per subscriber per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Hashable

from lockbox.domain.errors import RateLimited
from lockbox.realtime.direct import Sink
from lockbox.realtime.hub import Hub, Inbox
from lockbox.realtime.topics import activity_topic
from lockbox.store import queries as store
from lockbox.store.models import ActivityEvent

log = logging.getLogger(__name__)

FETCH_BATCH = 500


class ActivityFeed:
    """One request's recent activity, read once for all of this process's
    subscribers of it (see the module docstring)."""

    def __init__(
        self,
        request_id: uuid.UUID,
        hub: Hub,
        inbox: Inbox,
        start: int,
        capacity: int,
        stall_seconds: float,
    ) -> None:
        self.request_id = request_id
        self.events: deque[ActivityEvent] = deque(maxlen=capacity)
        # Highest sequence number fetched. Events up to `start` were committed
        # before the feed's inbox existed; everything later rings it.
        self.last = start
        self._hub = hub
        self._inbox = inbox
        self._fresh = True
        self._lock = asyncio.Lock()
        self.subscribers = 0
        self.sinks: set[Sink] = set()
        self._writer: asyncio.Task[None] | None = None
        self._writer_bell: Inbox | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stall_seconds = stall_seconds
        # The sink being written to, and since when (see _watch).
        self._sending: tuple[Sink, float] | None = None

    def _buffered_after(self, position: int, limit: int) -> list[ActivityEvent]:
        # Buffered sequence numbers are consecutive, so index by arithmetic.
        if not self.events:
            return []
        start = max(0, position + 1 - self.events[0].seq)
        return list(itertools.islice(self.events, start, start + limit))

    async def after(self, position: int, limit: int) -> list[ActivityEvent]:
        """Up to `limit` events after `position`, in order."""
        oldest = self.events[0].seq if self.events else self.last + 1
        if position + 1 < oldest:
            return await store.activity_after(self.request_id, position, limit)
        await self._refresh()
        return self._buffered_after(position, limit)

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

    # --- direct delivery ---------------------------------------------------------

    def attach(self, sink: Sink) -> None:
        """Start writing events after `sink.position` to the sink."""
        self.sinks.add(sink)
        if self._writer is None or self._writer.done():
            self._start_writer()
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch())
        # Events may have been committed since the sink's last read, with
        # their wake-up already consumed: look once more.
        assert self._writer_bell is not None
        self._writer_bell.ring_resync()

    def _start_writer(self) -> None:
        if self._writer_bell is None:
            self._writer_bell = self._hub.subscribe_inbox(
                activity_topic(self.request_id), keep_messages=False
            )
        self._writer = asyncio.create_task(self._write(self._writer_bell))

    def detach(self, sink: Sink) -> None:
        sink.active = False
        self.sinks.discard(sink)

    async def close(self) -> None:
        self._hub.unsubscribe_inbox(self._inbox)
        for task in (self._watchdog, self._writer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._writer_bell is not None:
            self._hub.unsubscribe_inbox(self._writer_bell)

    async def _write(self, bell: Inbox) -> None:
        while True:
            await bell.wait()
            bell.drain()
            try:
                await self._refresh()
                await self._deliver()
            except Exception:
                log.exception("activity feed could not deliver; retrying on the next wake-up")

    async def _watch(self) -> None:
        """Cut off a subscriber whose socket has stopped taking frames.

        A send waits while the socket's write buffer is full; one client that
        stops reading would otherwise hold up every other subscriber of the
        request. Checked from outside the writer, so the hot path only notes
        which sink it is writing to.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._stall_seconds / 2)
            sending = self._sending
            if sending is None or loop.time() - sending[1] < self._stall_seconds:
                continue
            sink = sending[0]
            self.detach(sink)
            sink.fail(
                RateLimited(
                    "engineerActivity ended: the client is not reading; "
                    "subscribe again with the last cursor",
                    retry_after_seconds=1,
                )
            )
            assert self._writer is not None
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._sending = None
            self._start_writer()
            assert self._writer_bell is not None
            self._writer_bell.ring_resync()

    async def _deliver(self) -> None:
        loop = asyncio.get_running_loop()
        while self.sinks:
            behind = min(sink.position for sink in self.sinks)
            batch = self._buffered_after(behind, FETCH_BATCH)
            if not batch:
                return
            for sink in [s for s in self.sinks if s.position < batch[0].seq - 1]:
                self.detach(sink)
                sink.fail(
                    RateLimited(
                        "engineerActivity ended: the client fell behind; "
                        "subscribe again with the last cursor",
                        retry_after_seconds=1,
                    )
                )
            for event in batch:
                rendered: dict[Hashable, str] = {}
                for sink in list(self.sinks):
                    if event.seq <= sink.position or not sink.active:
                        continue
                    delivery = sink.delivery
                    payload = rendered.get(delivery.render_key)
                    if payload is None:
                        payload = rendered[delivery.render_key] = delivery.render(event)
                    self._sending = (sink, loop.time())
                    try:
                        await delivery.send(payload)
                    except Exception:  # the socket is gone; its task ends it
                        self.detach(sink)
                        continue
                    finally:
                        self._sending = None
                    sink.position = event.seq
            if len(batch) < FETCH_BATCH:
                return


class Feeds:
    """The live feeds of this process, one per watched request."""

    def __init__(self, hub: Hub, capacity: int = 1000, stall_seconds: float = 5.0) -> None:
        self._hub = hub
        self._capacity = capacity
        self._stall_seconds = stall_seconds
        self._feeds: dict[uuid.UUID, ActivityFeed] = {}

    def open(self, request_id: uuid.UUID, start: int) -> FeedLease:
        """`async with feeds.open(...) as feed:` shares the request's feed."""
        return FeedLease(self, request_id, start)

    def _acquire(self, request_id: uuid.UUID, start: int) -> ActivityFeed:
        feed = self._feeds.get(request_id)
        if feed is None:
            inbox = self._hub.subscribe_inbox(activity_topic(request_id), keep_messages=False)
            feed = ActivityFeed(
                request_id, self._hub, inbox, start, self._capacity, self._stall_seconds
            )
            self._feeds[request_id] = feed
        feed.subscribers += 1
        return feed

    async def _release(self, feed: ActivityFeed) -> None:
        feed.subscribers -= 1
        if feed.subscribers == 0 and self._feeds.get(feed.request_id) is feed:
            del self._feeds[feed.request_id]
            await feed.close()


class FeedLease:
    __slots__ = ("feed", "feeds", "request_id", "start")

    def __init__(self, feeds: Feeds, request_id: uuid.UUID, start: int) -> None:
        self.feeds = feeds
        self.request_id = request_id
        self.start = start
        self.feed: ActivityFeed | None = None

    async def __aenter__(self) -> ActivityFeed:
        self.feed = self.feeds._acquire(self.request_id, self.start)
        return self.feed

    async def __aexit__(self, *exc: object) -> None:
        assert self.feed is not None
        await self.feeds._release(self.feed)
