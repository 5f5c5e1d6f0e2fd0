"""The resume recipe of each stock client (client-examples/stock/watch-*.mjs)
across a real restart: the server stops (every socket closed with 1012),
refuses connections for a while, starts again on the same port and database,
and the watcher prints every event exactly once, in order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from lockbox.services.deps import Deps
from tests.clients.node import needs_node, running
from tests.clients.steps import Restarts, act, act_offline, approved_request, recorded
from tests.conftest import Live, World

pytestmark = needs_node

WATCHERS = ["watch-apollo.mjs", "watch-urql.mjs", "watch-graphql-ws.mjs"]


@pytest.fixture
async def restarts(live: Live) -> AsyncIterator[Restarts]:
    restarts = Restarts(live)
    try:
        yield restarts
    finally:
        await restarts.close()


@pytest.mark.parametrize("watcher", WATCHERS)
async def test_watcher_sees_every_event_once_across_a_restart(
    watcher: str, live: Live, world: World, deps: Deps, restarts: Restarts
) -> None:
    request_id = await approved_request(live, world)
    await act(live, world, request_id, "before-watch")
    auditor = world.token("contoso-auditor")
    async with running(
        watcher, request_id, "--limit", "5", url=live.server.http_url, token=auditor
    ) as watch:
        assert (await watch.out.json())["action"] == "before-watch", watch
        await act(live, world, request_id, "live")
        assert (await watch.out.json())["action"] == "live", watch

        await restarts.stop()
        await watch.err.expect(r"closed with 1012")
        await watch.err.expect(r"could not connect")
        # Written while no server runs: nothing announces it, only the
        # replay after the last cursor can deliver it.
        await act_offline(deps, world, request_id, "while-down")
        await restarts.start()
        await act(live, world, request_id, "after-restart")
        await watch.err.expect(r"connected, watching after")
        await act(live, world, request_id, "live-again")
        assert await watch.exit_code() == 0, watch

    printed = [json.loads(line) for line in watch.out.lines]
    assert [(event["cursor"], event["action"]) for event in printed] == await recorded(
        live, world, request_id
    )
    assert [event["action"] for event in printed] == [
        "before-watch",
        "live",
        "while-down",
        "after-restart",
        "live-again",
    ]


@pytest.mark.parametrize("watcher", WATCHERS)
async def test_watcher_gives_up_when_retrying_cannot_help(
    watcher: str, live: Live, world: World
) -> None:
    """A refused token (close 4403) and a request the caller cannot see
    (NOT_FOUND) end the watcher at once, with the reason, and no retry."""
    request_id = await approved_request(live, world)
    url = live.server.http_url
    async with running(watcher, request_id, url=url, token="lbx_not-a-real-token") as watch:
        assert await watch.exit_code() == 1, watch
    assert any("4403" in line for line in watch.err.lines), watch
    assert not any("resuming" in line for line in watch.err.lines), watch

    async with running(watcher, request_id, url=url, token=world.token("fabrikam-admin")) as watch:
        assert await watch.exit_code() == 1, watch
    assert any("NOT_FOUND" in line for line in watch.err.lines), watch
    assert not any("resuming" in line for line in watch.err.lines), watch
