"""Webhooks end to end (contract section 6): signed deliveries through the
outbox to a real receiver, retries and deduplication, the SSRF checks at
creation and again at delivery, and `activity.denied` as an early warning
through the running server.

Every webhook here points at 127.0.0.1: this machine sends nothing off
loopback. That a public address is accepted is checked on the pure function.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from lockbox.clock import ManualClock
from lockbox.domain.audit import AuditAction
from lockbox.domain.errors import BadUserInput, NotFound
from lockbox.domain.lifecycle import Action
from lockbox.domain.notifications import (
    Channel,
    DeliveryStatus,
    Event,
    RetryPolicy,
    clean_webhook_url,
    delivery_body,
    is_public_address,
    is_public_target,
)
from lockbox.notify import DeliveryError
from lockbox.notify import webhook as webhook_transport
from lockbox.notify.webhook import WebhookTransport
from lockbox.services import requests, webhooks
from lockbox.services.deps import Deps
from lockbox.services.outbox import Outbox
from lockbox.store.models import AccessRequest, AuditEvent, Notification, Webhook
from tests.conftest import Live, World
from tests.notify.webhook_support import NOWHERE, PRIVATE_WEBHOOKS, Arrival, Receiver

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"
OUT_OF_SCOPE = "/subscriptions/contoso-dev/resourceGroups/rg1"
FAST = RetryPolicy(first=timedelta(milliseconds=50))
BODY_KEYS = {"id", "type", "occurredAt", "tenantId", "data"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver().start()
    try:
        yield hooks
    finally:
        await asyncio.to_thread(hooks.stop)


def transport_for(clock: ManualClock, **options: Any) -> WebhookTransport:
    """A transport whose signatures follow the test's clock (which starts at
    the real time), so each retry is signed at a new second."""
    return WebhookTransport(
        allow_private=options.pop("allow_private", True),
        timeout_seconds=options.pop("timeout_seconds", 5.0),
        unix_time=lambda: clock.now().timestamp(),
    )


@pytest.fixture
async def transport(clock: ManualClock) -> AsyncIterator[WebhookTransport]:
    sender = transport_for(clock)
    try:
        yield sender
    finally:
        await sender.aclose()


def worker(deps: Deps, transport: WebhookTransport) -> Outbox:
    return Outbox(deps, {Channel.WEBHOOK: transport}, retry=FAST, jitter=lambda: 0.0)


async def hook_for(
    deps: Deps, world: World, receiver: Receiver, events: list[str] | None = None
) -> Webhook:
    """contoso's webhook to the receiver, made while loopback targets are allowed."""
    deps.webhook_allow_private = True
    webhook, secret = await webhooks.create_webhook(
        deps, world.actors["contoso-admin"], receiver.url, events
    )
    deps.webhook_allow_private = False
    receiver.secret = secret
    return webhook


async def new_request(deps: Deps, world: World) -> AccessRequest:
    return await requests.create(
        deps,
        world.actors["engineer-alice"],
        ticket_id=world.ticket("contoso"),
        resources=[PROD],
        justification="investigating the ticket",
        duration_seconds=600,
    )


async def pending() -> int:
    return await Notification.filter(status=DeliveryStatus.PENDING).count()


async def drain(outbox: Outbox, clock: ManualClock, rounds: int = 20) -> None:
    """Run the worker until nothing is left to send, moving the clock past
    each retry's time (the retry policy is short; the clock is manual)."""
    for _ in range(rounds):
        await outbox.deliver_due()
        if await pending() == 0:
            return
        clock.advance(1)
    raise AssertionError(f"{await pending()} deliveries still pending")


def assert_well_formed(arrival: Arrival, tenant_id: str) -> None:
    assert arrival.signature_ok, arrival.headers
    assert arrival.headers["content-type"] == "application/json"
    assert arrival.headers["user-agent"] == "Lockbox-Webhooks"
    assert arrival.headers["lockbox-event-id"] == arrival.body["id"]
    assert set(arrival.body) == BODY_KEYS
    assert arrival.body["tenantId"] == tenant_id
    occurred = datetime.fromisoformat(arrival.body["occurredAt"])
    assert occurred.utcoffset() == timedelta(0)
    # The raw body is compact UTF-8 JSON: what was signed is what was parsed.
    compact = json.dumps(arrival.body, separators=(",", ":"), ensure_ascii=False)
    assert arrival.raw == compact.encode("utf-8")


# --- delivery through the outbox ----------------------------------------------------


async def test_request_events_arrive_signed_and_in_order(
    deps: Deps,
    world: World,
    clock: ManualClock,
    receiver: Receiver,
    transport: WebhookTransport,
) -> None:
    webhook = await hook_for(deps, world, receiver)
    request = await new_request(deps, world)
    clock.advance(1)
    await requests.transition(
        deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE, "ok"
    )

    await drain(worker(deps, transport), clock)

    created, approved = await receiver.next(), await receiver.next()
    assert [created.type, approved.type] == [
        Event.REQUEST_CREATED.value,
        Event.REQUEST_APPROVED.value,
    ]
    for arrival, status in ((created, "PENDING"), (approved, "APPROVED")):
        assert_well_formed(arrival, world.tenant("contoso"))
        assert (arrival.attempt, arrival.answer) == (1, 200)
        assert arrival.data["requestId"] == str(request.id)
        assert arrival.data["status"] == status
        assert arrival.data["resources"] == [PROD]
    assert approved.data["decisionReason"] == "ok"
    assert approved.data["decidedBy"] == "contoso-admin"
    # Each delivery's id is its outbox row's, now SENT.
    rows = {str(r.id): r for r in await Notification.filter(webhook_id=webhook.id)}
    assert set(rows) == {created.event_id, approved.event_id}
    assert {r.status for r in rows.values()} == {DeliveryStatus.SENT}
    await webhook.refresh_from_db()
    assert webhook.last_delivery_at is not None
    assert webhook.last_error is None


async def test_a_failed_delivery_is_retried_with_the_same_id_and_a_fresh_signature(
    deps: Deps,
    world: World,
    clock: ManualClock,
    receiver: Receiver,
    transport: WebhookTransport,
) -> None:
    webhook = await hook_for(deps, world, receiver)
    receiver.fail_first = 2
    await new_request(deps, world)
    outbox = worker(deps, transport)

    assert await outbox.deliver_due() == 1
    row = await Notification.get(webhook_id=webhook.id)
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.PENDING, 1, "HTTP 500")
    await webhook.refresh_from_db()
    assert webhook.last_error == "HTTP 500"
    await drain(outbox, clock)

    tries = [await receiver.next() for _ in range(3)]
    assert [(t.attempt, t.answer) for t in tries] == [(1, 500), (2, 500), (3, 200)]
    assert {t.event_id for t in tries} == {str(row.id)}
    assert all(t.signature_ok for t in tries)
    assert len({t.headers["lockbox-signature"] for t in tries}) == 3
    assert len({t.timestamp for t in tries}) == 3
    assert len({t.raw for t in tries}) == 1  # the same event, byte for byte
    sent = await Notification.get(id=row.id)
    assert (sent.status, sent.attempts) == (DeliveryStatus.SENT, 3)
    assert sent.last_error is None
    await webhook.refresh_from_db()
    assert webhook.last_error is None


async def test_a_delivery_whose_answer_was_lost_comes_again_and_is_deduplicated(
    deps: Deps, world: World, clock: ManualClock, receiver: Receiver
) -> None:
    # The receiver takes the first delivery but answers too late: the sender
    # cannot know it arrived, and sends it again (at least once).
    receiver.stall_first, receiver.stall_seconds = 1, 1.5
    sender = transport_for(clock, timeout_seconds=0.3)
    try:
        webhook = await hook_for(deps, world, receiver)
        await new_request(deps, world)
        outbox = worker(deps, sender)

        await outbox.deliver_due()
        row = await Notification.get(webhook_id=webhook.id)
        assert (row.status, row.last_error) == (DeliveryStatus.PENDING, "timed out")
        await drain(outbox, clock)
    finally:
        await sender.aclose()

    first, again = await receiver.next(), await receiver.next()
    assert first.event_id == again.event_id == str(row.id)
    assert first.accepted
    assert again.duplicate and again.answer == 200
    assert list(receiver.accepted) == [str(row.id)]  # one event, however often it came
    await row.refresh_from_db()
    assert row.status is DeliveryStatus.SENT


async def test_only_the_events_a_webhook_asks_for_are_delivered(
    deps: Deps,
    world: World,
    clock: ManualClock,
    receiver: Receiver,
    transport: WebhookTransport,
) -> None:
    await hook_for(deps, world, receiver, [Event.REQUEST_APPROVED.value])
    request = await new_request(deps, world)
    await requests.transition(deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE)

    await drain(worker(deps, transport), clock)

    assert (await receiver.next()).type == Event.REQUEST_APPROVED.value
    assert receiver.arrivals.empty()


# --- transport failures -------------------------------------------------------------


def delivery(tenant_id: str) -> Notification:
    now = datetime.now().astimezone()
    return Notification(
        id=uuid.uuid4(),
        tenant_id=uuid.UUID(tenant_id),
        channel=Channel.WEBHOOK,
        event=Event.REQUEST_CREATED.value,
        payload={"requestId": "r"},
        created_at=now,
        next_attempt_at=now,
    )


async def test_transport_failures_say_what_happened_and_never_the_secret(
    deps: Deps, world: World, transport: WebhookTransport
) -> None:
    row = delivery(world.tenant("contoso"))
    secret = "never-shown-" + uuid.uuid4().hex

    def hook(**values: Any) -> Webhook:
        return Webhook(tenant_id=row.tenant_id, url=NOWHERE, events=[], secret=secret, **values)

    with pytest.raises(DeliveryError) as refused:
        await transport.send(row, hook(enabled=True))
    assert (refused.value.message, refused.value.permanent) == ("could not connect", False)

    for webhook, why in ((None, "deleted"), (hook(enabled=False), "disabled")):
        with pytest.raises(DeliveryError) as gone:
            await transport.send(row, webhook)
        assert gone.value.permanent and why in gone.value.message
        assert secret not in gone.value.message


# --- SSRF: at creation and again at delivery ------------------------------------------

UNSAFE_URLS = [
    "http://127.0.0.1/x",
    "http://10.0.0.1/x",
    "http://[::1]/x",
    "http://169.254.169.254/latest",
    "http://localhost:1/x",  # a name that resolves to loopback
    "http://[::ffff:127.0.0.1]/x",
    "http://2130706433/x",  # 127.0.0.1 as one number
    "http://0.0.0.0:8000/x",
    "http://224.0.0.1/x",
]
CREATE = """
mutation($url: String!) { createWebhook(input: {url: $url}) { webhook { id } secret } }
"""
STATE = "{ webhooks { id } auditLog(first: 200) { edges { node { action } } } }"


async def test_non_public_targets_are_refused_at_creation_and_change_nothing(
    live: Live, world: World
) -> None:
    token = world.token("contoso-admin")
    before = await live.http.data(token, STATE)

    for url in UNSAFE_URLS:
        error = await live.http.error(token, CREATE, url=url)
        assert (url, error["extensions"]["code"]) == (url, "BAD_USER_INPUT")
        assert "public" in error["message"]

    assert await live.http.data(token, STATE) == before
    assert await Webhook.all().count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/x",
        "127.0.0.1/x",
        "http:///x",
        "http://user:pass@127.0.0.1/x",
        "http://127.0.0.1:0/x",
        "http://127.0.0.1:70000/x",
        "http://127.0.0.1/a b",
        "http://127.0.0.1\\@10.0.0.1/x",
        "http://127.0.0.1/" + "x" * 2048,
    ],
)
async def test_malformed_urls_are_refused(deps: Deps, world: World, url: str) -> None:
    deps.webhook_allow_private = True  # refused for what they are, not where they point
    with pytest.raises(BadUserInput):
        await webhooks.create_webhook(deps, world.actors["contoso-admin"], url, None)
    assert await Webhook.all().count() == 0


async def test_unknown_event_types_are_refused(deps: Deps, world: World) -> None:
    deps.webhook_allow_private = True
    with pytest.raises(BadUserInput, match="unknown event type"):
        await webhooks.create_webhook(
            deps, world.actors["contoso-admin"], NOWHERE, ["access_request.exploded"]
        )


def test_public_addresses_pass_the_pure_check() -> None:
    # Pure functions only: no test may send traffic to a public address.
    assert is_public_address("93.184.215.14")
    assert is_public_target("93.184.215.14")
    assert is_public_target("2606:4700:4700::1111")
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fec0::1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
        "ff02::1",
        "not an address",
    ):
        assert not is_public_target(address), address
    target = clean_webhook_url("https://Hooks.Example.com:8443/in?x=1")
    assert (target.host, target.port) == ("hooks.example.com", 8443)


def test_the_delivery_body_is_compact_utf8_with_a_utc_time() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.now().astimezone().tzinfo)
    raw = delivery_body("n1", "activity.denied", at, "t1", {"engineer": "zoë"})
    assert raw.decode("utf-8").startswith('{"id":"n1","type":"activity.denied","occurredAt":"')
    assert "zoë".encode() in raw
    assert datetime.fromisoformat(json.loads(raw)["occurredAt"]) == at


@pytest.mark.parametrize(
    ("host", "permanent"),
    [("127.0.0.1", True), ("localhost", False)],  # an address cannot change; a name can
)
async def test_targets_are_checked_again_at_delivery(
    deps: Deps,
    world: World,
    clock: ManualClock,
    receiver: Receiver,
    host: str,
    permanent: bool,
) -> None:
    # Stored while private targets were allowed; delivered where they are not.
    deps.webhook_allow_private = True
    webhook, _ = await webhooks.create_webhook(
        deps,
        world.actors["contoso-admin"],
        f"http://{host}:{receiver.server.port}/hook",
        None,
    )
    deps.webhook_allow_private = False
    await new_request(deps, world)
    strict = transport_for(clock, allow_private=False)
    try:
        assert await worker(deps, strict).deliver_due() == 1
    finally:
        await strict.aclose()

    assert receiver.nothing_arrived()
    row = await Notification.get(webhook_id=webhook.id)
    assert row.last_error is not None and row.last_error.startswith("target refused")
    assert row.status is (DeliveryStatus.FAILED if permanent else DeliveryStatus.PENDING)
    if permanent:
        failed = await AuditEvent.filter(action=AuditAction.NOTIFICATION_FAILED.value).count()
        assert failed == 1


async def test_a_checked_name_is_called_at_the_address_that_was_checked(
    deps: Deps,
    world: World,
    clock: ManualClock,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The POST goes to an address the check approved, not to whatever the
    name resolves to when the client connects (DNS rebinding), and still
    names the URL's host. A stand-in check approves loopback for a name in
    .invalid, which never resolves: nothing can leave this machine."""
    checked: list[tuple[str, int]] = []

    async def approve_loopback(host: str, port: int, **_: Any) -> list[str]:
        checked.append((host, port))
        return ["127.0.0.1"]

    monkeypatch.setattr(webhook_transport, "public_addresses", approve_loopback)
    port = receiver.server.port
    deps.webhook_allow_private = True
    _, receiver.secret = await webhooks.create_webhook(
        deps, world.actors["contoso-admin"], f"http://hooks.invalid:{port}/hook", None
    )
    await new_request(deps, world)
    strict = transport_for(clock, allow_private=False)
    try:
        await drain(worker(deps, strict), clock)
    finally:
        await strict.aclose()

    arrival = await receiver.next()
    assert checked == [("hooks.invalid", port)]
    assert arrival.headers["host"] == f"hooks.invalid:{port}"
    assert_well_formed(arrival, world.tenant("contoso"))


# --- deletion --------------------------------------------------------------------------


async def test_deleting_a_webhook_gives_up_what_it_has_not_received(
    deps: Deps,
    world: World,
    clock: ManualClock,
    receiver: Receiver,
    transport: WebhookTransport,
) -> None:
    webhook = await hook_for(deps, world, receiver)
    await new_request(deps, world)
    row = await Notification.get(webhook_id=webhook.id)

    assert await webhooks.delete_webhook(deps, world.actors["contoso-admin"], str(webhook.id))

    await row.refresh_from_db()
    assert (row.status, row.last_error, row.webhook_id) == (
        DeliveryStatus.FAILED,
        "webhook deleted",
        None,
    )
    assert await Webhook.filter(id=webhook.id).count() == 0
    assert await worker(deps, transport).deliver_due() == 0
    assert receiver.nothing_arrived()
    event = await AuditEvent.get(action=AuditAction.WEBHOOK_DELETED.value)
    assert event.detail["webhookId"] == str(webhook.id)
    assert event.detail["url"] == receiver.url
    assert receiver.secret not in json.dumps(event.detail)
    # Once deleted, it is gone: a second delete finds nothing.
    with pytest.raises(NotFound):
        await webhooks.delete_webhook(deps, world.actors["contoso-admin"], str(webhook.id))


# --- activity.denied as an early warning, through the running server -------------------

APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { status } }"
CREATE_REQUEST = """
mutation($input: CreateAccessRequestInput!) { createAccessRequest(input: $input) { id } }
"""
AUTHORIZE = """
mutation($id: ID!, $resource: String!) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: "read"}) { allowed }
}
"""
CREATE_HOOK = """
mutation($url: String!, $events: [String!]) {
  createWebhook(input: {url: $url, events: $events}) { webhook { id events } secret }
}
"""


@pytest.mark.parametrize("live", [PRIVATE_WEBHOOKS], indirect=True, ids=["private-webhooks"])
async def test_a_denied_gate_call_reaches_the_webhook_within_a_second(
    live: Live, world: World, receiver: Receiver
) -> None:
    admin, alice = world.token("contoso-admin"), world.token("engineer-alice")
    # Every event type: an allowed call, if it announced anything, would show.
    made = await live.http.data(admin, CREATE_HOOK, url=receiver.url, events=None)
    receiver.secret = made["createWebhook"]["secret"]
    request = await live.http.data(
        alice,
        CREATE_REQUEST,
        input={"ticketId": world.ticket("contoso"), "resources": [PROD], "justification": "j"},
    )
    request_id = request["createAccessRequest"]["id"]
    await live.http.data(admin, APPROVE, id=request_id)
    # The request's own events first: the outbox is idle after them.
    assert [(await receiver.next()).type for _ in range(2)] == [
        Event.REQUEST_CREATED.value,
        Event.REQUEST_APPROVED.value,
    ]

    allowed = await live.http.data(alice, AUTHORIZE, id=request_id, resource=PROD)
    assert allowed["authorizeAccess"]["allowed"] is True
    denied = await live.http.data(alice, AUTHORIZE, id=request_id, resource=OUT_OF_SCOPE)
    answered = time.monotonic()
    assert denied["authorizeAccess"]["allowed"] is False

    warning = await receiver.next(timeout=5)
    latency = warning.at - answered
    print(f"activity.denied reached the receiver {latency * 1000:.1f} ms after the gate answered")
    assert latency < 1.0
    assert warning.type == Event.ACTIVITY_DENIED.value
    assert_well_formed(warning, world.tenant("contoso"))
    assert warning.data["requestId"] == request_id
    assert warning.data["resource"] == OUT_OF_SCOPE
    assert warning.data["action"] == "read"
    assert warning.data["engineer"] == "engineer-alice"
    assert warning.data["denialReason"]
    # The allowed call wrote no delivery: only the denied one exists.
    activity = await Notification.filter(event__startswith="activity.").all()
    assert [(n.event, n.payload["resource"]) for n in activity] == [
        (Event.ACTIVITY_DENIED.value, OUT_OF_SCOPE)
    ]
    assert receiver.arrivals.empty()
