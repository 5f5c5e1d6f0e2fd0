"""Brokers carry wake-ups between processes: memory:// (one process) and redis://."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Protocol
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from lockbox.realtime.hub import Message

log = logging.getLogger(__name__)

Deliver = Callable[[str, Message], None]
Resync = Callable[[], None]


class Broker(Protocol):
    async def start(self, deliver: Deliver, resync: Resync) -> None:
        """Begin passing every published message to `deliver` in this process."""
        ...

    async def publish(self, topic: str, message: Message) -> None:
        """Send a wake-up. Never raises: the database stays the source of truth."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class MemoryBroker:
    """Everything in one process: publishing is delivering."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver, resync: Resync) -> None:
        self._deliver = deliver

    async def publish(self, topic: str, message: Message) -> None:
        if self._deliver is not None:
            self._deliver(topic, message)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._deliver = None


class RedisBroker:
    """One Redis pub/sub channel shared by all processes.

    Each process runs one listener that hands messages to its hub. After the
    connection drops and comes back, every local subscriber is told to re-read
    from its last delivered position, so nothing published meanwhile is lost.
    """

    DEFAULT_CHANNEL = "lockbox:wakeups"

    def __init__(self, url: str, *, retry_seconds: float = 0.5) -> None:
        import redis.asyncio as redis

        # `?channel=NAME` lets several deployments (or test runs) share a Redis.
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.channel = query.pop("channel", [self.DEFAULT_CHANNEL])[0]
        clean = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        self._redis = redis.Redis.from_url(
            clean, socket_connect_timeout=2, socket_timeout=None, health_check_interval=5
        )
        self._retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, deliver: Deliver, resync: Resync) -> None:
        self._task = asyncio.create_task(self._listen(deliver, resync), name="redis-listener")
        # Wait briefly for the first subscription so early publishes are heard;
        # if Redis is down the listener keeps retrying in the background.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def _listen(self, deliver: Deliver, resync: Resync) -> None:
        first = True
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._ready.set()
                if not first:
                    log.info("redis broker reconnected; subscribers re-read from the database")
                    resync()
                first = False
                async for raw in pubsub.listen():
                    if raw.get("type") != "message":
                        continue
                    envelope = json.loads(raw["data"])
                    deliver(envelope["topic"], envelope["message"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any connection fault: retry
                log.warning("redis broker connection lost (%s); retrying", type(exc).__name__)
                first = False
                await asyncio.sleep(self._retry_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def publish(self, topic: str, message: Message) -> None:
        payload = json.dumps({"topic": topic, "message": message}, separators=(",", ":"))
        try:
            await self._redis.publish(self.channel, payload)
        except Exception as exc:
            # Subscribers catch up from the database when the broker returns.
            log.warning("redis publish failed (%s); subscribers will resync", type(exc).__name__)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), timeout=2))
        except Exception:
            return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()


class BrokerUrlError(ValueError):
    pass


def broker_from_url(url: str) -> Broker:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryBroker()
    if scheme in ("redis", "rediss"):
        return RedisBroker(url)
    raise BrokerUrlError(f"unsupported broker URL scheme {scheme!r}: use memory:// or redis://")
