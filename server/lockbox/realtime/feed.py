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
from lockbox.realtime.direct import Sink, start_now
from lockbox.realtime.hub import Hub, Inbox
from lockbox.realtime.topics import activity_topic
from lockbox.store import queries as store
from lockbox.store.models import ActivityEvent

log = logging.getLogger(__name__)

FETCH_BATCH = 500
# Payloads queued for one subscriber whose socket is not taking frames (at
# most the feed's capacity); past this, or when one write waits
# `stall_seconds`, the subscriber is cut off.
SINK_BACKLOG = 100


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
        self._stall_seconds = stall_seconds
        self._backlog = min(SINK_BACKLOG, capacity)

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
        # Events may have been committed since the sink's last read, with
        # their wake-up already consumed: look once more.
        assert self._writer_bell is not None
        self._writer_bell.ring_resync()

    def _start_writer(self) -> None:
        if self._writer_bell is None:
            self._writer_bell = self._hub.subscribe_inbox(
                activity_topic(self.request_id),
                # With metrics on, the wake-ups too: when each was published.
                keep_messages=self._hub.fanout_lag is not None,
            )
        self._writer = asyncio.create_task(self._write(self._writer_bell))

    def detach(self, sink: Sink) -> None:
        sink.active = False
        self.sinks.discard(sink)

    async def close(self) -> None:
        self._hub.unsubscribe_inbox(self._inbox)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._writer_bell is not None:
            self._hub.unsubscribe_inbox(self._writer_bell)

    async def _write(self, bell: Inbox) -> None:
        while True:
            await bell.wait()
            wakeup = bell.drain()
            try:
                await self._refresh()
                await self._deliver()
                if wakeup.messages:
                    self._hub.delivered(wakeup.messages)
            except Exception:
                log.exception("activity feed could not deliver; retrying on the next wake-up")

    async def _deliver(self) -> None:
        while self.sinks:
            behind = min(sink.position for sink in self.sinks)
            batch = self._buffered_after(behind, FETCH_BATCH)
            if not batch:
                return
            for sink in [s for s in self.sinks if s.position < batch[0].seq - 1]:
                self._cut_off(sink, "fell behind")
            for event in batch:
                rendered: dict[Hashable, str] = {}
                for sink in list(self.sinks):
                    if event.seq <= sink.position or not sink.active:
                        continue
                    delivery = sink.delivery
                    payload = rendered.get(delivery.render_key)
                    if payload is None:
                        payload = rendered[delivery.render_key] = delivery.render(event)
                    sink.position = event.seq
                    self._send(sink, payload)
            if len(batch) < FETCH_BATCH:
                return

    def _send(self, sink: Sink, payload: str) -> None:
        """Write `payload` to the sink without ever waiting on its socket.

        A write normally completes at once. One that must wait (the socket's
        buffer is full: the client is not reading) goes on in a task of the
        sink's own, and later payloads queue behind it, bounded: a client that
        cannot keep up is cut off, never allowed to hold up the others.
        """
        backlog = sink.backlog
        if backlog is not None:
            if len(backlog) >= self._backlog:
                self._cut_off(sink, "is not reading")
            else:
                backlog.append(payload)
            return
        try:
            waiting = start_now(sink.delivery.send(payload))
        except Exception:  # the socket is gone; its task ends it
            self.detach(sink)
            return
        if waiting is not None:
            sink.backlog = deque()
            sink.writer = asyncio.create_task(self._drain(sink, waiting))

    async def _drain(self, sink: Sink, waiting: asyncio.Task[None]) -> None:
        """Finish a sink's waiting write, then write its backlog, each write
        within the stall limit."""
        backlog = sink.backlog
        assert backlog is not None
        try:
            async with asyncio.timeout(self._stall_seconds):
                await waiting
            while backlog and sink.active:
                async with asyncio.timeout(self._stall_seconds):
                    await sink.delivery.send(backlog.popleft())
        except TimeoutError:
            waiting.cancel()
            self._cut_off(sink, "is not reading")
        except Exception:  # the socket is gone; its task ends it
            self.detach(sink)
        finally:
            sink.backlog = None
            sink.writer = None

    def _cut_off(self, sink: Sink, why: str) -> None:
        if not sink.active:
            return
        self.detach(sink)
        if sink.backlog is not None:
            sink.backlog.clear()
        sink.fail(
            RateLimited(
                f"engineerActivity ended: the client {why}; subscribe again with the last cursor",
                retry_after_seconds=1,
            )
        )


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
