"""What every use case needs: the clock and the way to wake subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lockbox.clock import Clock, SystemClock
from lockbox.realtime.broker import Broker, MemoryBroker
from lockbox.realtime.hub import Hub, Message
from lockbox.realtime.ratelimit import LocalRateLimit, RateLimit
from lockbox.services.feed import Feeds

if TYPE_CHECKING:
    from lockbox.services.gate import GroupCommit


def _no_limit() -> RateLimit:
    return LocalRateLimit(rate=0, burst=0)


@dataclass
class Deps:
    clock: Clock = field(default_factory=SystemClock)
    broker: Broker = field(default_factory=MemoryBroker)
    hub: Hub = field(default_factory=Hub)
    limiter: RateLimit = field(default_factory=_no_limit)
    feeds: Feeds = field(init=False)
    group_commit: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        # Imported here: the gate's use cases themselves take a Deps.
        from lockbox.services.gate import GroupCommit

        self.feeds = Feeds(self.hub)
        self.group_commit = GroupCommit()

    async def publish(self, topic: str, message: Message) -> None:
        await self.broker.publish(topic, message)
