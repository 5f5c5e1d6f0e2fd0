"""Replay-then-tail streams: no gap, no duplicate, whatever the timing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from lockbox.domain.errors import NotFound, RateLimited, Unauthenticated
from lockbox.domain.lifecycle import Action, Status
from lockbox.domain.policy import Actor
from lockbox.realtime.direct import DirectDelivery
from lockbox.realtime.feed import Feeds
from lockbox.realtime.hub import Hub
from lockbox.services import admin, gate, requests, streams
from lockbox.services.auth import authenticate
from lockbox.services.deps import Deps
from lockbox.store.models import AccessRequest, ActivityEvent
from tests.conftest import World

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"


async def approved_request(deps: Deps, world: World) -> AccessRequest:
    request = await requests.create(
        deps,
        world.actors["engineer-alice"],
        ticket_id=world.ticket("contoso"),
        resources=[PROD],
        justification="streams",
        duration_seconds=None,
    )
    return await requests.transition(
        deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE
    )


async def act(deps: Deps, world: World, request: AccessRequest, n: int) -> None:
    for i in range(n):
        await gate.authorize(
            deps,
            world.actors["engineer-alice"],
            request_id=str(request.id),
            resource=f"{PROD}/item{i}",
            action="read",
            detail=None,
        )


def still_valid(actor: Actor):  # type: ignore[no-untyped-def]
    async def check() -> Actor:
        return actor

    return check


async def take(stream: AsyncIterator[ActivityEvent], n: int) -> list[int]:
    seqs: list[int] = []
    async with asyncio.timeout(20):
        while len(seqs) < n:
            seqs.append((await anext(stream)).seq)
    return seqs


async def test_events_committed_during_replay_arrive_once_in_order(
    deps: Deps, world: World
) -> None:
    request = await approved_request(deps, world)
    await act(deps, world, request, streams.REPLAY_BATCH + 50)
    viewer = world.actors["contoso-admin"]
    stream = await streams.activity(deps, viewer, still_valid(viewer), str(request.id), 0)
    # Read a little of the replay, then commit more while it is mid-way.
    first = await take(stream, 10)
    await act(deps, world, request, 30)
    rest = await take(stream, streams.REPLAY_BATCH + 50 + 30 - 10)
    await stream.aclose()
    assert first + rest == list(range(1, streams.REPLAY_BATCH + 50 + 30 + 1))


async def test_live_events_follow_replay_and_resume_from_a_cursor(deps: Deps, world: World) -> None:
    request = await approved_request(deps, world)
    await act(deps, world, request, 3)
    viewer = world.actors["contoso-approver-prod"]
    stream = await streams.activity(deps, viewer, still_valid(viewer), str(request.id), 0)
    assert await take(stream, 3) == [1, 2, 3]
    waiting = asyncio.create_task(take(stream, 2))
    await act(deps, world, request, 2)
    assert await waiting == [4, 5]
    await stream.aclose()
    # A reconnect passing the last cursor continues exactly after it.
    resumed = await streams.activity(deps, viewer, still_valid(viewer), str(request.id), 4)
    assert await take(resumed, 1) == [5]
    await resumed.aclose()


async def test_broker_resync_rereads_without_doubling(deps: Deps, world: World) -> None:
    # An in-process broker, so that no wake-up can arrive late by chance.
    deps = Deps(clock=deps.clock)
    await deps.broker.start(deps.hub.deliver, deps.hub.resync_all)
    request = await approved_request(deps, world)
    viewer = world.actors["contoso-admin"]
    stream = await streams.activity(deps, viewer, still_valid(viewer), str(request.id), 0)
    await act(deps, world, request, 1)
    assert await take(stream, 1) == [1]  # the stream is now tailing
    waiting = asyncio.create_task(take(stream, 2))
    # Write without publishing, as if the broker dropped the wake-ups …
    silent = Deps(clock=deps.clock, broker=_Silent(), hub=Hub())
    await act(silent, world, request, 2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(waiting), 0.3)
    # … then the broker reconnects and every subscriber re-reads.
    deps.hub.resync_all()
    assert await waiting == [2, 3]
    await stream.aclose()


class _Silent:
    async def start(self, deliver: object, resync: object) -> None: ...

    async def publish(self, topic: str, message: object) -> None: ...

    async def ping(self) -> bool:
        return True

    async def close(self) -> None: ...


async def test_stream_of_an_invisible_request_is_not_found(deps: Deps, world: World) -> None:
    request = await approved_request(deps, world)
    outsider = world.actors["fabrikam-admin"]
    with pytest.raises(NotFound):
        await streams.activity(deps, outsider, still_valid(outsider), str(request.id), 0)


async def test_revoked_token_ends_the_stream(deps: Deps, world: World) -> None:
    request = await approved_request(deps, world)
    header = f"Bearer {world.token('contoso-admin')}"
    session = await authenticate(deps, header)

    async def reauthenticate() -> Actor:
        return (await authenticate(deps, header)).actor

    stream = await streams.activity(deps, session.actor, reauthenticate, str(request.id), 0)
    await act(deps, world, request, 1)
    assert await take(stream, 1) == [1]  # the stream is now tailing
    waiting = asyncio.create_task(take(stream, 1))
    await admin.revoke_token(deps, str(session.token_id))
    with pytest.raises(Unauthenticated):
        async with asyncio.timeout(10):
            await waiting


async def test_request_updates_show_each_status_change_to_those_who_see_it(
    deps: Deps, world: World
) -> None:
    admin_actor = world.actors["contoso-admin"]
    outsider = world.actors["fabrikam-admin"]
    updates = streams.request_updates(deps, admin_actor, still_valid(admin_actor))
    others = streams.request_updates(deps, outsider, still_valid(outsider))
    seen = asyncio.create_task(_collect(updates, 3))
    unseen = asyncio.create_task(_collect(others, 1))
    await asyncio.sleep(0)
    request = await approved_request(deps, world)  # created, then approved
    await requests.transition(deps, admin_actor, str(request.id), Action.REVOKE)
    assert await seen == [Status.PENDING, Status.APPROVED, Status.REVOKED]
    assert not unseen.done()
    unseen.cancel()


async def _collect(stream: AsyncIterator[streams.RequestChange], n: int) -> list[Status]:
    out: list[Status] = []
    async with asyncio.timeout(10):
        while len(out) < n:
            out.append(Status((await anext(stream)).status))
    return out


async def test_slow_update_consumer_is_cut_off_not_buffered(deps: Deps, world: World) -> None:
    tiny = Deps(clock=deps.clock, broker=deps.broker, hub=Hub(inbox_size=2))
    viewer = world.actors["contoso-admin"]
    updates = streams.request_updates(tiny, viewer, still_valid(viewer))
    pending = asyncio.create_task(anext(updates))
    await asyncio.sleep(0)
    for _ in range(5):
        tiny.hub.deliver("requests", {"id": "x", "tenant": viewer.tenant_id, "status": "PENDING"})
    with pytest.raises(RateLimited):
        async with asyncio.timeout(10):
            await pending


async def test_request_updates_catch_up_after_a_broker_outage(deps: Deps, world: World) -> None:
    viewer = world.actors["contoso-admin"]
    updates = streams.request_updates(deps, viewer, still_valid(viewer))
    first = asyncio.create_task(_collect(updates, 1))
    request = await approved_request(deps, world)  # PENDING, then APPROVED
    assert await first == [Status.PENDING]
    assert await _collect(updates, 1) == [Status.APPROVED]
    # A change whose wake-up is lost, as when the broker is down …
    silent = Deps(clock=deps.clock, broker=_Silent(), hub=Hub())
    await requests.transition(silent, viewer, str(request.id), Action.REVOKE)
    waiting = asyncio.create_task(_collect(updates, 1))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(waiting), 0.3)
    # … is found in the database when the broker comes back, and shown once.
    deps.hub.resync_all()
    assert await waiting == [Status.REVOKED]
    deps.hub.resync_all()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_collect(updates, 1), 0.3)


async def test_caught_up_stream_hands_delivery_to_the_feed_without_gap_or_double(
    deps: Deps, world: World
) -> None:
    request = await approved_request(deps, world)
    await act(deps, world, request, 3)
    delivered: list[str] = []
    got_all = asyncio.Event()

    async def send(payload: str) -> None:
        delivered.append(payload)
        if len(delivered) == 7:
            got_all.set()

    direct = DirectDelivery("key", lambda event: str(event.seq), send)
    viewer = world.actors["contoso-admin"]
    stream = await streams.activity(
        deps, viewer, still_valid(viewer), str(request.id), 0, direct=direct
    )
    # The replay is yielded as usual …
    assert await take(stream, 3) == [1, 2, 3]
    # … then, caught up, the stream parks and the feed writes the rest.
    parked = asyncio.create_task(anext(stream))
    await act(deps, world, request, 7)
    async with asyncio.timeout(10):
        await got_all.wait()
    assert delivered == [str(seq) for seq in range(4, 11)]
    assert not parked.done()
    parked.cancel()


async def test_direct_subscriber_that_falls_behind_is_ended_not_buffered(
    deps: Deps, world: World
) -> None:
    small = Deps(clock=deps.clock, broker=deps.broker, hub=deps.hub)
    small.feeds = Feeds(small.hub, capacity=3)
    request = await approved_request(small, world)
    stuck = asyncio.Event()

    async def send(payload: str) -> None:
        await stuck.wait()  # a client that never reads

    direct = DirectDelivery("key", lambda event: str(event.seq), send)
    viewer = world.actors["contoso-admin"]
    stream = await streams.activity(
        small, viewer, still_valid(viewer), str(request.id), 0, direct=direct
    )
    parked = asyncio.create_task(anext(stream))
    # More events than the feed keeps, while the client reads nothing.
    await act(small, world, request, 7)
    stuck.set()
    with pytest.raises(RateLimited):
        async with asyncio.timeout(10):
            await parked


async def test_a_subscriber_that_stops_reading_does_not_hold_up_the_others(
    deps: Deps, world: World
) -> None:
    quick = Deps(clock=deps.clock, broker=deps.broker, hub=deps.hub)
    quick.feeds = Feeds(quick.hub, stall_seconds=0.2)
    request = await approved_request(quick, world)
    viewer = world.actors["contoso-admin"]
    never = asyncio.Event()
    healthy: list[str] = []
    three = asyncio.Event()

    async def stuck_send(payload: str) -> None:
        await never.wait()  # a socket whose buffer never drains

    async def healthy_send(payload: str) -> None:
        healthy.append(payload)
        if len(healthy) == 3:
            three.set()

    stuck = await streams.activity(
        quick,
        viewer,
        still_valid(viewer),
        str(request.id),
        0,
        direct=DirectDelivery("k", lambda e: str(e.seq), stuck_send),
    )
    fine = await streams.activity(
        quick,
        viewer,
        still_valid(viewer),
        str(request.id),
        0,
        direct=DirectDelivery("k", lambda e: str(e.seq), healthy_send),
    )
    stuck_parked = asyncio.create_task(anext(stuck))
    fine_parked = asyncio.create_task(anext(fine))
    await act(quick, world, request, 3)
    with pytest.raises(RateLimited, match="not reading"):
        async with asyncio.timeout(10):
            await stuck_parked
    async with asyncio.timeout(10):
        await three.wait()
    assert healthy == ["1", "2", "3"]
    assert not fine_parked.done()
    fine_parked.cancel()
