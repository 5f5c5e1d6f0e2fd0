"""The `notifications` query: a tenant's mails and webhook deliveries, newest
first, for its TENANT_ADMINs (roles and tenants: tests/api/test_isolation.py).

Rows are written straight into the outbox table, as the outbox would, so that
their every state can be shown; the last test makes them the real way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lockbox.domain import cursors
from lockbox.domain.notifications import Channel, DeliveryStatus, Event
from lockbox.services import tenants
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from lockbox.store.models import Notification, Webhook
from tests.api.helpers import seed_request
from tests.conftest import Live, World

NOTIFICATIONS = """
query($first: Int, $after: String) {
  notifications(first: $first, after: $after) {
    edges { cursor node {
      id channel event recipient webhookId webhookUrl status attempts lastError
      createdAt sentAt requestId
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

T0 = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def outbox_row(world: World, tenant: str, created: datetime, **values: Any) -> Notification:
    """An outbox row as services.notifications writes it, with `values` on top."""
    fields: dict[str, Any] = {
        "tenant_id": uuid.UUID(world.tenant(tenant)),
        "request_id": uuid.uuid4(),
        "channel": Channel.EMAIL,
        "event": Event.REQUEST_CREATED.value,
        "recipient": f"{tenant}-admin@example.com",
        "payload": {"audience": "decider"},
        "next_attempt_at": created,
        "created_at": created,
    }
    fields.update(values)
    return Notification(**fields)


async def add_webhook(world: World, tenant: str, url: str) -> Webhook:
    return await Webhook.create(
        tenant_id=world.tenant(tenant), url=url, events=[], secret="s3cret", created_at=T0
    )


async def read_all(live: Live, token: str, first: int = 50) -> list[dict[str, Any]]:
    """Every notification the caller sees, page by page."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await live.http.data(token, NOTIFICATIONS, first=first, after=after))[
            "notifications"
        ]
        nodes.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def test_an_admin_reads_each_delivery_as_the_outbox_holds_it(
    live: Live, world: World
) -> None:
    hook = await add_webhook(world, "contoso", "https://hooks.contoso.example/lockbox")
    request_id = uuid.uuid4()
    mail = outbox_row(
        world,
        "contoso",
        at(0),
        request_id=request_id,
        status=DeliveryStatus.SENT,
        attempts=1,
        sent_at=at(2),
    )
    failing = outbox_row(
        world,
        "contoso",
        at(10),
        request_id=request_id,
        channel=Channel.WEBHOOK,
        event=Event.REQUEST_APPROVED.value,
        recipient=None,
        webhook_id=hook.id,
        status=DeliveryStatus.FAILED,
        attempts=7,
        last_error="HTTP 503 from the receiver",
    )
    orphan = outbox_row(
        world,
        "contoso",
        at(20),
        request_id=None,
        channel=Channel.WEBHOOK,
        event=Event.ACTIVITY_DENIED.value,
        recipient=None,
        webhook_id=None,  # its webhook was deleted
    )
    await store.insert_notifications([mail, failing, orphan])

    nodes = await read_all(live, world.token("contoso-admin"))

    assert [n["id"] for n in nodes] == [str(orphan.id), str(failing.id), str(mail.id)]
    for node in nodes:
        node["createdAt"], node["sentAt"] = when(node["createdAt"]), when(node["sentAt"])
    assert nodes == [
        {
            "id": str(orphan.id),
            "channel": "WEBHOOK",
            "event": "activity.denied",
            "recipient": None,
            "webhookId": None,
            "webhookUrl": None,
            "status": "PENDING",
            "attempts": 0,
            "lastError": None,
            "createdAt": at(20),
            "sentAt": None,
            "requestId": None,
        },
        {
            "id": str(failing.id),
            "channel": "WEBHOOK",
            "event": "access_request.approved",
            "recipient": None,
            "webhookId": str(hook.id),
            "webhookUrl": "https://hooks.contoso.example/lockbox",
            "status": "FAILED",
            "attempts": 7,
            "lastError": "HTTP 503 from the receiver",
            "createdAt": at(10),
            "sentAt": None,
            "requestId": str(request_id),
        },
        {
            "id": str(mail.id),
            "channel": "EMAIL",
            "event": "access_request.created",
            "recipient": "contoso-admin@example.com",
            "webhookId": None,
            "webhookUrl": None,
            "status": "SENT",
            "attempts": 1,
            "lastError": None,
            "createdAt": at(0),
            "sentAt": at(2),
            "requestId": str(request_id),
        },
    ]


async def test_pages_run_newest_first_with_no_gap_or_repeat(live: Live, world: World) -> None:
    # Ten rows, several written by one change (the same created_at).
    times = [at(0), at(0), at(0), at(5), at(7), at(7), at(9), at(9), at(9), at(12)]
    rows = [
        outbox_row(world, "contoso", t, recipient=f"w{i}@c.example") for i, t in enumerate(times)
    ]
    await store.insert_notifications(rows)
    token = world.token("contoso-admin")

    one_page = await read_all(live, token, first=50)
    for size in (1, 3, 4, 10):
        assert await read_all(live, token, first=size) == one_page, size

    assert sorted(n["id"] for n in one_page) == sorted(str(r.id) for r in rows)
    order = [(when(n["createdAt"]), n["id"]) for n in one_page]
    assert order == sorted(order, reverse=True)

    # A row written after a page was read shows on top, never in later pages.
    first = (await live.http.data(token, NOTIFICATIONS, first=4))["notifications"]
    await store.insert_notifications([outbox_row(world, "contoso", at(60))])
    rest = await live.http.data(
        token, NOTIFICATIONS, first=50, after=first["pageInfo"]["endCursor"]
    )
    seen = [e["node"]["id"] for e in first["edges"] + rest["notifications"]["edges"]]
    assert seen == [n["id"] for n in one_page]
    assert rest["notifications"]["pageInfo"] == {
        "hasNextPage": False,
        "endCursor": rest["notifications"]["edges"][-1]["cursor"],
    }


async def test_an_empty_log_is_an_empty_page(live: Live, world: World) -> None:
    data = await live.http.data(world.token("northwind-admin"), NOTIFICATIONS, first=10)
    assert data["notifications"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"after": "not a cursor!"}, "cursor"),
        ({"after": cursors.encode_int("audit", 1)}, "not a notification cursor"),
        ({"after": cursors.encode("notification", "yesterday|x")}, "cursor"),
        ({"after": cursors.encode("notification", f"{T0.isoformat()}|not-a-uuid")}, "cursor"),
        ({"first": -1}, "first"),
        ({"first": 201}, "first"),
    ],
    ids=["garbage", "audit-cursor", "bad-time", "bad-id", "first-negative", "first-201"],
)
async def test_bad_paging_arguments_are_bad_user_input(
    live: Live, world: World, variables: dict[str, Any], fragment: str
) -> None:
    error = await live.http.error(world.token("contoso-admin"), NOTIFICATIONS, **variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert fragment in error["message"]


async def test_a_new_request_shows_its_mails_to_the_admin(
    live: Live, deps: Deps, world: World
) -> None:
    """Made the real way: the request's change stages its mails (deciders
    with an address, plus notificationEmails), and the log shows them."""
    deps.mail_enabled = True
    await tenants.update_settings(
        deps,
        world.actors["contoso-admin"],
        pending_request_ttl_seconds=None,
        default_access_seconds=None,
        max_access_seconds=None,
        notification_emails=["security@contoso.example"],
    )

    request_id = await seed_request(deps, world)  # on contoso-prod
    await seed_request(deps, world, tenant="fabrikam")

    nodes = await read_all(live, world.token("contoso-admin"))
    mails = {n["recipient"] for n in nodes if n["requestId"] == request_id}
    assert mails == {
        "contoso-admin@example.com",
        "contoso-approver-prod@example.com",
        "security@contoso.example",
    }
    assert {(n["channel"], n["event"]) for n in nodes} == {("EMAIL", "access_request.created")}
    assert {n["requestId"] for n in nodes} == {request_id}
    # fabrikam's mails are fabrikam's.
    theirs = await read_all(live, world.token("fabrikam-admin"))
    assert {n["recipient"] for n in theirs} == {
        "fabrikam-admin@example.com",
        "fabrikam-approver@example.com",
    }
