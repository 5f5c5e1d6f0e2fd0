"""Subscriptions: replay from the database, then tail wake-ups, never a gap.

Each stream registers its inbox *before* reading the database, so anything
committed while it reads rings the bell and is read on the next pass. Events
are read by position (the activity number), which rules out duplicates.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from lockbox.domain.errors import RateLimited
from lockbox.domain.lifecycle import Status
from lockbox.domain.policy import Actor, Role
from lockbox.realtime.direct import DirectDelivery, Sink
from lockbox.realtime.feed import ActivityFeed
from lockbox.realtime.topics import REQUESTS_TOPIC, activity_topic, principal_topic
from lockbox.services.deps import Deps
from lockbox.services.requests import get_visible, visible
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, ActivityEvent

# Re-checks the caller's token; raises Unauthenticated once it is revoked.
Reauthenticate = Callable[[], Awaitable[Actor]]

REPLAY_BATCH = 200


async def activity(
    deps: Deps,
    actor: Actor,
    reauthenticate: Reauthenticate,
    request_id: str,
    after_seq: int,
    direct: DirectDelivery | None = None,
) -> AsyncGenerator[ActivityEvent, None]:
    """The request's activity after `after_seq`, then live. Raises NotFound at
    once (not on first iteration) when the actor cannot see the request.

    With `direct`, once the stream has caught up it stops yielding and the
    feed writes further events through `direct` (the stream then only watches
    for the caller's lockout and for delivery failures)."""
    request = await get_visible(actor, request_id)
    # Only the id and the activity counter: the stream lives as long as the
    # subscription, and thousands of idle ones should not each keep a row.
    return _activity(
        deps, actor, reauthenticate, request.id, request.activity_seq, after_seq, direct
    )


async def _activity(
    deps: Deps,
    actor: Actor,
    reauthenticate: Reauthenticate,
    request_id: uuid.UUID,
    activity_seq: int,
    after_seq: int,
    direct: DirectDelivery | None,
) -> AsyncGenerator[ActivityEvent, None]:
    progress = _Progress(after_seq)
    lockout = principal_topic(actor.id)
    async with deps.feeds.open(request_id, activity_seq) as feed:
        async for event in _catch_up(deps, feed, lockout, reauthenticate, progress, direct):
            yield event
        # Caught up with `direct`: from here the feed writes the events, and
        # this stream only ends the subscription on lockout or failure.
        assert direct is not None
        with deps.hub.subscribe(lockout, keep_messages=False) as guard:
            sink = Sink(direct, progress.position, guard)
            feed.attach(sink)
            try:
                while True:
                    await guard.wait()
                    wakeup = guard.drain()
                    if sink.error is not None:
                        raise sink.error
                    if wakeup.resync or lockout in wakeup.rung:
                        await reauthenticate()
            finally:
                feed.detach(sink)


@dataclass
class _Progress:
    position: int


async def _catch_up(
    deps: Deps,
    feed: ActivityFeed,
    lockout: str,
    reauthenticate: Reauthenticate,
    progress: _Progress,
    direct: DirectDelivery | None,
) -> AsyncGenerator[ActivityEvent, None]:
    """Yield events after `progress.position`: forever without `direct`,
    until caught up with it."""
    # A bare doorbell: any ring means "read again after the position"; a
    # ring on the principal's topic means "check the token is still good".
    topic = activity_topic(feed.request_id)
    with deps.hub.subscribe(topic, lockout, keep_messages=False) as inbox:
        while True:
            batch = await feed.after(progress.position, REPLAY_BATCH)
            for event in batch:
                yield event
                progress.position = event.seq
            if len(batch) == REPLAY_BATCH:
                continue
            caught_up = direct is not None and progress.position >= feed.last
            if not caught_up:
                await inbox.wait()
            wakeup = inbox.drain()
            if wakeup.resync or lockout in wakeup.rung:
                await reauthenticate()
            if caught_up:
                # The feed writes everything after the position from its
                # buffer, including whatever arrived since this last read.
                return


def _may_concern(actor: Actor, message: dict[str, str]) -> bool:
    """A cheap filter before loading the request (the policy decides after)."""
    if actor.role is Role.ENGINEER:
        return message.get("engineer") == actor.id
    if actor.tenant_id is not None:
        return message.get("tenant") == actor.tenant_id
    return True


# After a broker outage, changes from this far before the last one seen are
# re-read from the database (covers clock differences between processes).
RESYNC_MARGIN = timedelta(seconds=30)
REMEMBERED_CHANGES = 10_000


@dataclass(frozen=True, slots=True)
class RequestChange:
    """A request as one change left it: `status` is the stored status that
    change led to. Several changes of one request can arrive together; each
    is shown in turn, with the request's latest row."""

    request: AccessRequest
    status: Status


async def request_updates(
    deps: Deps, actor: Actor, reauthenticate: Reauthenticate
) -> AsyncGenerator[RequestChange, None]:
    """Each status change of a request the actor sees, as it happens.

    Wake-ups carry the change. When the broker reconnects (wake-ups may have
    been lost), requests changed since shortly before the last wake-up are
    re-read from the database and any status not yet shown is shown.
    """
    shown: OrderedDict[tuple[str, str], None] = OrderedDict()
    since = deps.clock.now()
    with deps.hub.subscribe(REQUESTS_TOPIC, principal_topic(actor.id)) as inbox:
        while True:
            await inbox.wait()
            wakeup = inbox.drain()
            if wakeup.overflowed:
                raise RateLimited(
                    "accessRequestUpdates ended: the client fell behind; subscribe again",
                    retry_after_seconds=1,
                )
            if wakeup.resync or principal_topic(actor.id) in wakeup.rung:
                actor = await reauthenticate()
            changes: list[tuple[str, str]] = []
            for topic, message in wakeup.messages:
                change = (message.get("id", ""), message.get("status", ""))
                relevant = topic == REQUESTS_TOPIC and _may_concern(actor, message)
                if relevant and change not in changes:
                    changes.append(change)
            found = await _load(actor, changes)
            if wakeup.resync:
                found += await _changed_since(actor, since - RESYNC_MARGIN)
            since = deps.clock.now()
            for found_change in found:
                change = (str(found_change.request.id), str(found_change.status))
                if change in shown:
                    continue
                shown[change] = None
                if len(shown) > REMEMBERED_CHANGES:
                    shown.popitem(last=False)
                yield found_change


async def _load(actor: Actor, changes: list[tuple[str, str]]) -> list[RequestChange]:
    """The announced changes, in order, as the actor may see them."""
    if not changes:
        return []
    ids = list({uuid.UUID(request_id) for request_id, _ in changes})
    loaded = {str(r.id): r for r in await store.get_requests(ids)}
    found: list[RequestChange] = []
    for request_id, status in changes:
        request = visible(actor, loaded.get(request_id))
        if request is not None:
            found.append(RequestChange(request, Status(status)))
    return found


async def _changed_since(actor: Actor, since: datetime) -> list[RequestChange]:
    tenant_id = None if actor.tenant_id is None else uuid.UUID(actor.tenant_id)
    engineer_id = uuid.UUID(actor.id) if actor.role is Role.ENGINEER else None
    changed = await store.requests_changed_since(
        since, tenant_id=tenant_id, engineer_id=engineer_id
    )
    return [RequestChange(r, r.status) for r in changed if visible(actor, r) is not None]
