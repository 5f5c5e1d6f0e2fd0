"""The outbox: rows written with the change that causes them, to the right
people, and delivered once each by the workers, with retries."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from lockbox.clock import ManualClock
from lockbox.domain.audit import AuditAction
from lockbox.domain.lifecycle import Action
from lockbox.domain.notifications import Channel, DeliveryStatus, Event, RetryPolicy
from lockbox.notify import DeliveryError
from lockbox.services import gate, notifications, requests
from lockbox.services.deps import Deps
from lockbox.services.outbox import Outbox
from lockbox.services.writing import changing
from lockbox.store.models import AccessRequest, AuditEvent, Notification, Tenant, Webhook
from tests.conftest import World

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"


@pytest.fixture
def mailing(deps: Deps) -> Deps:
    deps.mail_enabled = True
    return deps


async def new_request(deps: Deps, world: World, tenant: str = "contoso") -> AccessRequest:
    resource = PROD if tenant == "contoso" else f"/subscriptions/{tenant}-prod/rg"
    return await requests.create(
        deps,
        world.actors["engineer-alice"],
        ticket_id=world.ticket(tenant),
        resources=[resource],
        justification="investigating the ticket",
        duration_seconds=600,
    )


async def mails(request: AccessRequest) -> list[tuple[str, str | None, str]]:
    rows = await Notification.filter(request_id=request.id, channel=Channel.EMAIL).order_by(
        "recipient"
    )
    return [(row.event, row.recipient, row.payload["audience"]) for row in rows]


async def add_webhook(world: World, tenant: str, events: list[str]) -> Webhook:
    return await Webhook.create(
        tenant_id=world.tenant(tenant),
        url="http://127.0.0.1:9/hook",
        events=events,
        secret="s3cret",
        created_at=ManualClock().now(),
    )


async def test_new_pending_request_mails_its_deciders_and_the_tenant_list(
    mailing: Deps, world: World
) -> None:
    await Tenant.filter(id=world.tenant("contoso")).update(notification_emails=["soc@contoso.test"])
    request = await new_request(mailing, world)
    created = Event.REQUEST_CREATED.value
    # The dev approver does not cover prod; the auditor never decides.
    assert await mails(request) == [
        (created, "contoso-admin@example.com", "decider"),
        (created, "contoso-approver-prod@example.com", "decider"),
        (created, "soc@contoso.test", "decider"),
    ]
    row = await Notification.get(request_id=request.id, recipient="soc@contoso.test")
    assert row.status is DeliveryStatus.PENDING
    assert row.payload["ticketTitle"]
    assert row.payload["resources"] == [PROD]
    assert row.payload["engineer"] == "engineer-alice"


async def test_the_engineer_hears_each_outcome_and_nothing_else(
    mailing: Deps, world: World, clock: ManualClock
) -> None:
    admin = world.actors["contoso-admin"]
    outcomes = {}
    for action in (Action.APPROVE, Action.DENY):
        request = await new_request(mailing, world)
        await requests.transition(mailing, admin, str(request.id), action, "checked")
        outcomes[action] = [m for m in await mails(request) if m[2] == "engineer"]
    assert outcomes[Action.APPROVE] == [
        ("access_request.approved", "engineer-alice@example.com", "engineer")
    ]
    assert outcomes[Action.DENY] == [
        ("access_request.denied", "engineer-alice@example.com", "engineer")
    ]
    canceled = await new_request(mailing, world)
    await requests.transition(
        mailing, world.actors["engineer-alice"], str(canceled.id), Action.CANCEL
    )
    assert [m for m in await mails(canceled) if m[2] == "engineer"] == []


async def test_automatic_approval_mails_the_admins_and_the_engineer_not_the_deciders(
    mailing: Deps, world: World
) -> None:
    request = await new_request(mailing, world, tenant="northwind")
    approved = Event.REQUEST_APPROVED.value
    assert await mails(request) == [
        (approved, "engineer-alice@example.com", "engineer"),
        (approved, "northwind-admin@example.com", "admin"),
    ]


async def test_without_smtp_no_mail_is_written_but_webhooks_are(deps: Deps, world: World) -> None:
    await add_webhook(world, "contoso", [])
    request = await new_request(deps, world)
    rows = await Notification.filter(request_id=request.id)
    assert [(r.channel, r.event) for r in rows] == [(Channel.WEBHOOK, "access_request.created")]


async def test_a_rolled_back_change_leaves_no_notification(mailing: Deps, world: World) -> None:
    request = await new_request(mailing, world)
    before = await Notification.all().count()
    with pytest.raises(RuntimeError):
        async with changing(mailing) as change:
            await notifications.request_event(change, request, Event.REQUEST_CREATED)
            assert await Notification.all().count() > before  # written in the transaction …
            raise RuntimeError("the change fails after staging")
    assert await Notification.all().count() == before  # … and gone with it


async def test_allowed_gate_calls_write_no_outbox_row_denied_ones_only_if_asked(
    deps: Deps, world: World
) -> None:
    alice = world.actors["engineer-alice"]
    request = await new_request(deps, world)
    await requests.transition(deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE)
    await add_webhook(world, "contoso", ["access_request.approved"])
    before = await Notification.all().count()

    async def call(resource: str) -> None:
        await gate.authorize(
            deps, alice, request_id=str(request.id), resource=resource, action="read", detail=None
        )

    await call(PROD)
    await call("/subscriptions/contoso-dev/rg")  # denied, but nobody asked for activity.denied
    assert await Notification.all().count() == before
    await add_webhook(world, "contoso", ["activity.denied"])
    await call(PROD)
    assert await Notification.all().count() == before
    await call("/subscriptions/contoso-dev/rg")
    rows = await Notification.filter(event="activity.denied")
    assert len(rows) == 1
    assert rows[0].payload["resource"] == "/subscriptions/contoso-dev/rg"
    assert rows[0].payload["denialReason"]


@dataclass
class FakeTransport:
    """Fails the first `failures` sends of each row, then records it."""

    failures: int = 0
    permanent: bool = False
    sent: list[uuid.UUID] = field(default_factory=list)
    tries: dict[uuid.UUID, int] = field(default_factory=dict)

    async def send(self, notification: Notification, webhook: Webhook | None) -> None:
        tries = self.tries[notification.id] = self.tries.get(notification.id, 0) + 1
        if tries <= self.failures:
            raise DeliveryError(f"try {tries} failed", permanent=self.permanent)
        self.sent.append(notification.id)


def outbox(deps: Deps, transport: FakeTransport, **options: object) -> Outbox:
    return Outbox(
        deps,
        {Channel.EMAIL: transport, Channel.WEBHOOK: transport},
        jitter=lambda: 0.0,
        **options,  # type: ignore[arg-type]
    )


async def test_failed_sends_are_retried_with_backoff_until_they_go_through(
    mailing: Deps, world: World, clock: ManualClock
) -> None:
    request = await new_request(mailing, world)
    transport = FakeTransport(failures=2)
    worker = outbox(mailing, transport)
    assert await worker.deliver_due() == 2
    row = await Notification.filter(request_id=request.id).first()
    assert row is not None
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.PENDING, 1, "try 1 failed")
    # The first retry comes within 30 s, not before its time.
    assert timedelta(0) < row.next_attempt_at - clock.now() <= timedelta(seconds=30)
    assert await worker.deliver_due() == 0
    clock.advance(30)
    await worker.deliver_due()
    clock.advance(60)
    await worker.deliver_due()
    rows = await Notification.filter(request_id=request.id)
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {(DeliveryStatus.SENT, 3, None)}
    assert sorted(transport.sent) == sorted(r.id for r in rows)


async def test_a_delivery_that_never_succeeds_fails_after_a_day_with_an_audit_event(
    mailing: Deps, world: World, clock: ManualClock
) -> None:
    request = await new_request(mailing, world)
    transport = FakeTransport(failures=10_000)
    worker = outbox(mailing, transport)
    for _ in range(200):
        await worker.deliver_due()
        clock.advance(15 * 60)
        if not await Notification.filter(status=DeliveryStatus.PENDING).exists():
            break
    rows = await Notification.filter(request_id=request.id)
    assert {r.status for r in rows} == {DeliveryStatus.FAILED}
    assert max(r.attempts for r in rows) < 200
    failed = await AuditEvent.filter(action=AuditAction.NOTIFICATION_FAILED.value)
    assert {e.detail["notificationId"] for e in failed} == {str(r.id) for r in rows}
    assert transport.sent == []


async def test_a_permanent_failure_is_not_retried(mailing: Deps, world: World) -> None:
    await new_request(mailing, world)
    transport = FakeTransport(failures=1, permanent=True)
    await outbox(mailing, transport).deliver_due()
    assert {r.status for r in await Notification.all()} == {DeliveryStatus.FAILED}


async def test_two_workers_never_send_one_row_twice(mailing: Deps, world: World) -> None:
    for _ in range(10):
        await new_request(mailing, world)
    transport = FakeTransport()
    first, second = outbox(mailing, transport), outbox(mailing, transport)
    await asyncio.gather(*(w.deliver_due() for w in (first, second, first, second)))
    rows = await Notification.all()
    assert len(transport.sent) == len(set(transport.sent)) == len(rows) == 20  # 2 deciders each


async def test_a_claim_left_by_a_dead_worker_runs_out_and_the_row_is_sent(
    mailing: Deps, world: World, clock: ManualClock
) -> None:
    await new_request(mailing, world)
    from lockbox.store import queries as store

    now = clock.now()
    claimed = await store.claim_notifications(now, now + timedelta(seconds=60), 50)
    assert claimed  # ... and the process that claimed them dies here
    transport = FakeTransport()
    worker = outbox(mailing, transport)
    assert await worker.deliver_due() == 0
    clock.advance(60)
    assert await worker.deliver_due() == len(claimed)
    assert sorted(transport.sent) == sorted(r.id for r in claimed)


def test_retry_policy_backs_off_exponentially_up_to_fifteen_minutes_within_a_day() -> None:
    policy = RetryPolicy()
    start = ManualClock().now()
    gaps = []
    now = start
    for attempt in range(1, 200):
        at = policy.next_attempt(attempt, start, now, jitter=0.999)
        if at is None:
            break
        gaps.append(at - now)
        now = at
    assert gaps[0] <= timedelta(seconds=30)
    assert gaps == sorted(gaps)
    assert max(gaps) <= timedelta(minutes=15)
    assert timedelta(hours=23) < now - start <= timedelta(hours=24)


async def test_deliveries_to_a_webhook_deleted_meanwhile_are_dropped_not_the_change(
    deps: Deps, world: World, clock: ManualClock
) -> None:
    from lockbox.store import queries as store

    kept = await add_webhook(world, "contoso", [])
    gone = await add_webhook(world, "contoso", [])
    rows = [
        Notification(
            tenant_id=world.tenant("contoso"),
            channel=Channel.WEBHOOK,
            event=Event.ACTIVITY_DENIED.value,
            webhook_id=webhook.id,
            payload={},
            next_attempt_at=clock.now(),
            created_at=clock.now(),
        )
        for webhook in (kept, gone)
    ]
    async with changing(deps):
        await Webhook.filter(id=gone.id).delete()  # as a concurrent deleteWebhook would
        await store.insert_notifications(rows)
    assert [r.webhook_id for r in await Notification.all()] == [kept.id]
