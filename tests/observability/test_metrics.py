"""GET /metrics on a live server, after real traffic: the gate, mutations,
a socket and its subscription, the fan-out, mail and a failing webhook in
the outbox, the sweeper, the database pool and the broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lockbox.clock import ManualClock
from lockbox.domain.gate import GateFacts, denial_reason
from lockbox.domain.lifecycle import Status
from lockbox.notify.sink import MailSink, ReceivedMail
from lockbox.observability.metrics import reason_class
from lockbox.settings import Settings
from tests.api.helpers import DEV, PROD, act, create_request
from tests.conftest import STACK, Live, Stack, World, start_server
from tests.scaleout.procs import free_port
from tests.support import GraphQLHttp, WsClient

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

WATCH = """
subscription($id: ID!) { engineerActivity(requestId: $id) { cursor allowed denialReason } }
"""
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { status } }"
CREATE_WEBHOOK = "mutation($url: String!) { createWebhook(input: {url: $url}) { secret } }"


async def scrape(http: httpx.AsyncClient, base: str) -> Samples:
    response = await http.get(f"{base}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` that has `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def scrape_until(
    http: httpx.AsyncClient, base: str, what: str, done: Callable[[Samples], bool]
) -> Samples:
    deadline = time.monotonic() + 10
    while True:
        samples = await scrape(http, base)
        if done(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never showed {what}")
        await asyncio.sleep(0.05)


async def test_metrics_count_real_traffic_on_a_live_server(
    world: World, database: Stack, clock: ManualClock
) -> None:
    loop = asyncio.get_running_loop()
    mails: asyncio.Queue[ReceivedMail] = asyncio.Queue()
    sink = MailSink(on_mail=lambda mail: loop.call_soon_threadsafe(mails.put_nowait, mail))
    await asyncio.to_thread(sink.start)
    server = start_server(
        database,
        clock,
        metrics=True,
        smtp_url=sink.url,
        outbox_poll_seconds=0.05,
        webhook_allow_private=True,
    )
    live = Live(server=server, http=GraphQLHttp(server.http_url), clock=clock, stack=database)
    base = server.http_url
    client = httpx.AsyncClient(timeout=20)
    socket = WsClient(server.ws_url)
    try:
        admin = world.token("contoso-admin")
        # A webhook nobody listens at: its deliveries fail and are retried.
        await live.http.data(admin, CREATE_WEBHOOK, url=f"http://127.0.0.1:{free_port()}/hook")
        request = await create_request(live, world)
        await live.http.data(admin, APPROVE, id=request["id"])

        await socket.connect(admin)
        await socket.subscribe("1", WATCH, id=request["id"])
        await scrape_until(
            client,
            base,
            "the running subscription",
            lambda s: (
                value(s, "lockbox_subscriptions_active", subscription="engineerActivity") == 1
            ),
        )
        alice = world.token("engineer-alice")
        allowed = await act(live, alice, "authorizeAccess", request["id"], PROD)
        denied = await act(live, alice, "authorizeAccess", request["id"], DEV)
        assert allowed["data"]["authorizeAccess"]["allowed"] is True
        assert denied["data"]["authorizeAccess"]["allowed"] is False
        streamed = [await socket.next_data() for _ in range(2)]
        assert [e["engineerActivity"]["allowed"] for e in streamed] == [True, False]
        # Events reach a subscriber through the feed's direct writes once it
        # has caught up; those that raced its catching up were replayed. More
        # calls, each seen on the socket, until one was written directly.
        extra = 0
        while not value(await scrape(client, base), "lockbox_fanout_lag_seconds_count"):
            assert extra < 50, "no event was ever written to the subscriber directly"
            extra += 1
            await act(live, alice, "authorizeAccess", request["id"], PROD)
            assert (await socket.next_data())["engineerActivity"]["allowed"] is True
        await asyncio.wait_for(mails.get(), 10)  # a decider's mail went out

        during = await scrape_until(
            client,
            base,
            "a sent mail and a webhook retry",
            lambda s: (
                value(s, "lockbox_outbox_deliveries_total", channel="EMAIL", outcome="sent") >= 1
                and value(s, "lockbox_outbox_deliveries_total", channel="WEBHOOK", outcome="retry")
                >= 1
            ),
        )
        await socket.close()

        # The gate: allowed calls, one denied (the resource is outside the request).
        assert (
            value(during, "lockbox_gate_decisions_total", outcome="allowed", reason="") == 1 + extra
        )
        assert (
            value(during, "lockbox_gate_decisions_total", outcome="denied", reason="out_of_scope")
            == 1
        )
        assert value(during, "lockbox_gate_seconds_count") == 2 + extra
        assert value(during, "lockbox_gate_seconds_sum") > 0
        # Mutations by field.
        for field, count in (
            ("createAccessRequest", 1),
            ("approveRequest", 1),
            ("authorizeAccess", 2 + extra),
            ("createWebhook", 1),
        ):
            assert value(during, "lockbox_mutation_seconds_count", mutation=field) == count, field
        # The socket and its subscription, while open.
        assert value(during, "lockbox_websockets_open") == 1
        assert value(during, "lockbox_subscriptions_active", subscription="engineerActivity") == 1
        # Both events reached the caught-up subscriber: the fan-out was timed.
        assert value(during, "lockbox_fanout_lag_seconds_count") >= 1
        # The webhook's delivery waits for its retry: the outbox is not empty.
        assert value(during, "lockbox_outbox_pending", channel="WEBHOOK") >= 1
        backend = "redis" if database.broker_url.startswith("redis") else "memory"
        assert value(during, "lockbox_broker_up", backend=backend) == 1
        if STACK == "postgres":
            assert value(during, "lockbox_db_pool_connections", state="open") >= 1
            assert value(during, "lockbox_db_pool_connections", state="max") >= 1
        else:  # SQLite: one connection, no pool to report
            assert total(during, "lockbox_db_pool_connections") == 0

        # Past the window's end and the webhook's retry horizon: the sweeper
        # records the completion late (by the manual clock), and the webhook
        # delivery is given up.
        clock.advance(2 * 24 * 3600)
        after = await scrape_until(
            client,
            base,
            "the sweeper's completion, the failed webhook and the closed socket",
            lambda s: (
                value(s, "lockbox_sweeper_lag_seconds_count") >= 1
                and value(s, "lockbox_outbox_deliveries_total", channel="WEBHOOK", outcome="failed")
                >= 1
                and value(s, "lockbox_websockets_open") == 0
            ),
        )
        assert value(after, "lockbox_sweeper_lag_seconds_sum") > 3600
        assert value(after, "lockbox_sweeper_passes_total") >= 1
        assert value(after, "lockbox_subscriptions_active", subscription="engineerActivity") == 0
    finally:
        await socket.close()
        await client.aclose()
        await live.http.aclose()
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(sink.stop)


@pytest.mark.parametrize("live", [{"metrics": True}], indirect=True)
async def test_a_refused_gate_call_is_counted_by_its_code(live: Live, world: World) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    answer = await act(live, world.token("engineer-alice"), "authorizeAccess", missing)
    assert answer["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    async with httpx.AsyncClient() as client:
        samples = await scrape(client, live.server.http_url)
    assert (
        value(samples, "lockbox_gate_decisions_total", outcome="refused", reason="NOT_FOUND") == 1
    )


async def test_metrics_are_not_served_unless_turned_on(live: Live) -> None:
    assert live.server.app.state.deps.metrics is None  # nothing is measured either
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{live.server.http_url}/metrics")
    assert response.status_code == 404


def test_lockbox_metrics_turns_them_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCKBOX_METRICS", raising=False)
    assert Settings.from_env().metrics is False
    monkeypatch.setenv("LOCKBOX_METRICS", "1")
    assert Settings.from_env().metrics is True


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("request 5f0c is PENDING", "pending"),
        ("request 5f0c is REVOKED", "revoked"),
        ("request 5f0c is AWAITING_PROVIDER_APPROVAL", "awaiting_provider_approval"),
        ("the access window of request 5f0c has not started", "not_started"),
        ("resource /a/b is outside the resources of request 5f0c", "out_of_scope"),
        ("something new", "other"),
    ],
)
def test_denial_reasons_become_a_few_label_values(reason: str, kind: str) -> None:
    assert reason_class(reason) == kind


def test_every_reason_the_gate_gives_has_a_class_of_its_own() -> None:
    """The classes follow the gate's own wording (domain.gate.denial_reason)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    hour = timedelta(hours=1)

    def facts(status: Status, starts: datetime | None = now - hour) -> GateFacts:
        return GateFacts(
            request_id="r1",
            status=status,
            expires_at=now + hour,
            access_starts_at=starts,
            access_ends_at=now + hour,
            resources=("/subscriptions/a",),
        )

    cases = {
        "revoked": denial_reason(facts(Status.REVOKED), "/subscriptions/a", now),
        "pending": denial_reason(facts(Status.PENDING, None), "/subscriptions/a", now),
        "not_started": denial_reason(facts(Status.APPROVED, now + hour), "/subscriptions/a", now),
        "out_of_scope": denial_reason(facts(Status.APPROVED), "/subscriptions/b", now),
    }
    for kind, reason in cases.items():
        assert reason is not None
        assert reason_class(reason) == kind, reason
