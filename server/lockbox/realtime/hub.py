"""In-process fan-out of broker messages to the subscribers of this process."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]


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
    """

    def __init__(self, topics: tuple[str, ...], maxsize: int) -> None:
        self.topics = topics
        self.maxsize = maxsize
        self.messages: deque[tuple[str, Message]] = deque()
        self.rung: set[str] = set()
        self.overflowed = False
        self.resync = False
        self._bell = asyncio.Event()

    def deliver(self, topic: str, message: Message) -> None:
        self.rung.add(topic)
        if self.maxsize:
            if len(self.messages) >= self.maxsize:
                self.overflowed = True
            else:
                self.messages.append((topic, message))
        self._bell.set()

    def ring_resync(self) -> None:
        """Messages may have been lost (broker reconnect): re-read everything."""
        self.resync = True
        self._bell.set()

    async def wait(self) -> None:
        await self._bell.wait()

    def drain(self) -> Wakeup:
        """Take everything that arrived since the last drain, atomically."""
        self._bell.clear()
        wakeup = Wakeup(list(self.messages), self.rung, self.resync, self.overflowed)
        self.messages.clear()
        self.rung = set()
        self.resync = self.overflowed = False
        return wakeup


class Hub:
    def __init__(self, inbox_size: int = 1000) -> None:
        self._by_topic: dict[str, set[Inbox]] = {}
        self._inbox_size = inbox_size

    @contextmanager
    def subscribe(self, *topics: str, keep_messages: bool = True) -> Iterator[Inbox]:
        """Register an inbox on `topics` until the block ends.

        With keep_messages=False the inbox is a bare doorbell, for subscribers
        that re-read the database on every ring and need no message content.
        """
        inbox = self.subscribe_inbox(*topics, keep_messages=keep_messages)
        try:
            yield inbox
        finally:
            self.unsubscribe_inbox(inbox)

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

    def resync_all(self) -> None:
        for inboxes in tuple(self._by_topic.values()):
            for inbox in tuple(inboxes):
                inbox.ring_resync()

    @property
    def subscriber_count(self) -> int:
        return len({inbox for inboxes in self._by_topic.values() for inbox in inboxes})
