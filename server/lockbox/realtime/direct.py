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

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any

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
    send: Callable[[str], Coroutine[Any, Any, None]]


@dataclass(eq=False, slots=True)
class Sink:
    """A caught-up subscriber whose events the feed writes through `delivery`.

    `position` is the last event handed to it. `wake` is rung when the sink
    fails, and `error` then says why (the subscriber ends with it).

    While its socket takes frames at once, a sink costs nothing but this
    object. When a write has to wait (the client is not reading fast enough),
    the sink gets a `backlog` of payloads and a `writer` task of its own that
    drains it, so the feed's pass over the other subscribers goes on at once
    (see realtime.feed).
    """

    delivery: DirectDelivery
    position: int
    wake: Inbox
    error: LockboxError | None = None
    active: bool = True
    backlog: deque[str] | None = None
    writer: asyncio.Task[None] | None = None

    def fail(self, error: LockboxError) -> None:
        self.active = False
        self.error = error
        self.wake.deliver("sink", {})


def start_now(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coro` until it first has to wait: None if it finished without
    waiting, else a task that finishes it.

    A socket write returns at once unless the socket's buffer is full, so
    writing to a thousand sockets costs no task per socket; only a write that
    must wait gets one. (Python 3.12's eager tasks do the same.)
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_resume(coro, waiting_on))


async def _resume(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive `coro` on from where `start_now` left it, as a task would."""
    while True:
        try:
            if waiting_on is None:  # a bare yield: let the loop run once
                await asyncio.sleep(0)
            else:
                # The coroutine yielded an asyncio future, asking the task
                # that runs it to wait on it; it reads the outcome itself.
                # As a task does, take the future's "a task waits on me" mark
                # before waiting on it here.
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except asyncio.CancelledError:
            # Pass the cancellation into the coroutine, where it was waiting.
            try:
                waiting_on = coro.throw(asyncio.CancelledError())
            except StopIteration:
                return
            continue
        except Exception:  # noqa: S110 - the coroutine reads the future's outcome itself
            pass
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return
