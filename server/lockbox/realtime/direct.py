"""Direct delivery: the feed writes live events to caught-up subscribers.

Normally every event travels through each subscriber's own task (and, for
GraphQL, its result pipeline). Once a subscriber has caught up, its transport
may instead hand the feed a `DirectDelivery`: the feed then renders each new
event once per distinct subscription and writes it to every such subscriber
in one pass, instead of waking one task per subscriber per event (see
realtime.feed). What "render" and "send" mean is the transport's business
(api.operations builds them for a GraphQL WebSocket operation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from lockbox.domain.errors import LockboxError
from lockbox.realtime.hub import Inbox
from lockbox.store.models import ActivityEvent


@dataclass(frozen=True, slots=True)
class DirectDelivery:
    """How a transport takes events written by the feed itself.

    `render` turns an event into the subscriber's payload; subscribers with
    the same `render_key` share one rendering per event. `send` writes one
    payload to the subscriber.
    """

    render_key: Hashable
    render: Callable[[ActivityEvent], str]
    send: Callable[[str], Awaitable[None]]


@dataclass(eq=False, slots=True)
class Sink:
    """A caught-up subscriber whose events the feed writes through `delivery`.

    `position` is the last event written to it. `wake` is rung when the sink
    fails, and `error` then says why (the subscriber ends with it).
    """

    delivery: DirectDelivery
    position: int
    wake: Inbox
    error: LockboxError | None = None
    active: bool = True

    def fail(self, error: LockboxError) -> None:
        self.active = False
        self.error = error
        self.wake.deliver("sink", {})
