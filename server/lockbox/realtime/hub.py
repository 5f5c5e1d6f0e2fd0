"""In-process fan-out of broker messages to the subscribers of this process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]

# A wake-up's publication time (wall clock), stamped on it when metrics are
# on (services.deps), for the fan-out lag.
PUBLISHED_AT = "t"


@dataclass(frozen=True, slots=True)
class Wakeup:
    messages: list[tuple[str, Message]]
    rung: set[str]  # topics that rang
    resync: bool  # the broker reconnected: anything may have been missed
    overflowed: bool  # messages were dropped because the inbox was full


class Inbox:
    """One subscriber's mailbox: a doorbell, the topics that rang it, and
    (optionally) a bounded list of the messages themselves.

    A subscriber that cannot keep up is not allowed to grow memory: once full,
    the inbox is marked `overflowed` and the subscriber decides how to recover
    (re-read from the database, or end the stream with a clear reason).
    Thousands of these sit idle at once, so they are kept small.
    """

    __slots__ = (
        "_rang",
        "_waiter",
        "maxsize",
        "messages",
        "overflowed",
        "resync",
        "rung",
        "topics",
    )

    def __init__(self, topics: tuple[str, ...], maxsize: int) -> None:
        self.topics = topics
        self.maxsize = maxsize
        self.messages: list[tuple[str, Message]] = []
        self.rung: set[str] = set()
        self.overflowed = False
        self.resync = False
        self._rang = False
        self._waiter: asyncio.Future[None] | None = None

    def deliver(self, topic: str, message: Message) -> None:
        self.rung.add(topic)
        if self.maxsize:
            if len(self.messages) >= self.maxsize:
                self.overflowed = True
            else:
                self.messages.append((topic, message))
        self._ring()

    def ring_resync(self) -> None:
        """Messages may have been lost (broker reconnect): re-read everything."""
        self.resync = True
        self._ring()

    def _ring(self) -> None:
        self._rang = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the doorbell has rung since the last drain (one waiter at a time)."""
        if self._rang:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def drain(self) -> Wakeup:
        """Take everything that arrived since the last drain, atomically."""
        self._rang = False
        wakeup = Wakeup(self.messages, self.rung, self.resync, self.overflowed)
        self.messages = []
        self.rung = set()
        self.resync = self.overflowed = False
        return wakeup


class Registration:
    """`with hub.subscribe(...) as inbox:` (a class, not a generator: it is small)."""

    __slots__ = ("hub", "inbox")

    def __init__(self, hub: Hub, inbox: Inbox) -> None:
        self.hub = hub
        self.inbox = inbox

    def __enter__(self) -> Inbox:
        return self.inbox

    def __exit__(self, *exc: object) -> None:
        self.hub.unsubscribe_inbox(self.inbox)


class Hub:
    def __init__(self, inbox_size: int = 1000) -> None:
        self._by_topic: dict[str, set[Inbox]] = {}
        self._inbox_size = inbox_size
        # Set when metrics are on (lockbox.observability): told the seconds
        # from a wake-up's publication to its events written to subscribers.
        self.fanout_lag: Callable[[float], None] | None = None

    def subscribe(self, *topics: str, keep_messages: bool = True) -> Registration:
        """An inbox on `topics` for the duration of a `with` block.

        With keep_messages=False the inbox is a bare doorbell, for subscribers
        that re-read the database on every ring and need no message content.
        """
        return Registration(self, self.subscribe_inbox(*topics, keep_messages=keep_messages))

    def subscribe_inbox(self, *topics: str, keep_messages: bool = True) -> Inbox:
        """Like `subscribe`, for an owner that unsubscribes explicitly."""
        inbox = Inbox(topics, self._inbox_size if keep_messages else 0)
        for topic in topics:
            self._by_topic.setdefault(topic, set()).add(inbox)
        return inbox

    def unsubscribe_inbox(self, inbox: Inbox) -> None:
        for topic in inbox.topics:
            inboxes = self._by_topic.get(topic)
            if inboxes is not None:
                inboxes.discard(inbox)
                if not inboxes:
                    del self._by_topic[topic]

    def deliver(self, topic: str, message: Message) -> None:
        for inbox in tuple(self._by_topic.get(topic, ())):
            inbox.deliver(topic, message)

    def delivered(self, messages: list[tuple[str, Message]]) -> None:
        """The events these wake-ups announced are written: note the lag
        from the earliest one's publication."""
        observe = self.fanout_lag
        if observe is None:
            return
        stamps = [message[PUBLISHED_AT] for _, message in messages if PUBLISHED_AT in message]
        if stamps:
            observe(max(0.0, time.time() - min(stamps)))

    def resync_all(self) -> None:
        for inboxes in tuple(self._by_topic.values()):
            for inbox in tuple(inboxes):
                inbox.ring_resync()
