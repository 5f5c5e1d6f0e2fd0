"""Mail through the running server: written with the change, sent by the
server's own worker, retried while the SMTP server is down, sent once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from lockbox.clock import ManualClock
from lockbox.domain.notifications import Channel, DeliveryStatus
from lockbox.notify.sink import MailSink, ReceivedMail
from lockbox.store.models import Notification
from tests.api.helpers import create_request
from tests.conftest import Live, Stack, World, start_server
from tests.scaleout.procs import free_port
from tests.support import GraphQLHttp


async def rows_where(condition: dict[str, object], count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while await Notification.filter(channel=Channel.EMAIL, **condition).count() < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} mail rows with {condition} after {timeout} s")
        await asyncio.sleep(0.05)


async def test_mail_written_while_smtp_is_down_arrives_once_when_it_is_back(
    world: World, database: Stack, clock: ManualClock
) -> None:
    port = free_port()  # nothing listens here yet: the SMTP server is down
    server = start_server(
        database, clock, smtp_url=f"smtp://127.0.0.1:{port}", outbox_poll_seconds=0.05
    )
    http = GraphQLHttp(server.http_url)
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[ReceivedMail] = asyncio.Queue()
    sink = MailSink(
        on_mail=lambda mail: loop.call_soon_threadsafe(received.put_nowait, mail),
        controller_options={"port": port},
    )
    try:
        live = Live(server=server, http=http, clock=clock, stack=database)
        request = await create_request(live, world)
        # Both deciders' mails were tried, refused, and wait for a retry.
        await rows_where({"status": DeliveryStatus.PENDING, "attempts__gte": 1}, 2)
        failed = await Notification.filter(channel=Channel.EMAIL).first()
        assert failed is not None and failed.last_error
        assert "refused" in failed.last_error or "connect" in failed.last_error.lower()

        await asyncio.to_thread(sink.start)
        clock.advance(30)  # the first retry comes within 30 s
        mails = [await asyncio.wait_for(received.get(), 10) for _ in range(2)]
        await rows_where({"status": DeliveryStatus.SENT}, 2)
    finally:
        await http.aclose()
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(sink.stop)
    assert received.empty()
    assert sorted(m.recipients[0] for m in mails) == [
        "contoso-admin@example.com",
        "contoso-approver-prod@example.com",
    ]
    assert all(request["id"] in m.raw.decode() for m in mails)
    rows = await Notification.filter(channel=Channel.EMAIL)
    assert Counter(r.status for r in rows) == {DeliveryStatus.SENT: 2}
    assert all(r.attempts == 2 for r in rows)


async def test_serve_without_smtp_sends_no_mail_and_writes_none(live: Live, world: World) -> None:
    await create_request(live, world)
    assert not await Notification.filter(channel=Channel.EMAIL).exists()
