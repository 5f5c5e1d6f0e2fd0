"""The outbox across real processes: several `lockbox serve` on one PostgreSQL
send each mail once, and a process killed after the commit and before the
send loses nothing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from lockbox.domain.notifications import Channel, DeliveryStatus
from lockbox.notify.sink import LoopbackController
from lockbox.store.models import Notification
from tests.conftest import Stack, World
from tests.notify.smtp_support import Mail, SmtpTestServer, smtp_server
from tests.scaleout import flows
from tests.scaleout.procs import lockbox_servers, spawn_server
from tests.support import GraphQLHttp

DECIDERS = 2  # contoso-admin and contoso-approver-prod have addresses and cover PROD


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    """Poll an async condition until it holds, against a deadline."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def all_mail_sent() -> bool:
    return not await Notification.filter(
        channel=Channel.EMAIL, status=DeliveryStatus.PENDING
    ).exists()


async def receive(smtp: SmtpTestServer, count: int) -> list[Mail]:
    return [await smtp.next_mail(timeout=30) for _ in range(count)]


async def test_three_processes_on_postgres_send_each_mail_once(
    world: World, database: Stack, tmp_path: Path
) -> None:
    requests = 12
    async with smtp_server() as smtp:
        env = {"LOCKBOX_SMTP_URL": smtp.url, "LOCKBOX_OUTBOX_POLL_SECONDS": "0.2"}
        async with lockbox_servers(
            3, tmp_path, database_url=database.database_url, broker_url=database.broker_url, env=env
        ) as servers:
            clients = [GraphQLHttp(s.http_url) for s in servers]
            try:
                engineer, ticket = world.token("engineer-alice"), world.ticket("contoso")
                await asyncio.gather(
                    *(
                        flows.create_request(clients[i % 3], engineer, ticket)
                        for i in range(requests)
                    )
                )
                mails = await receive(smtp, requests * DECIDERS)
                await wait_for(all_mail_sent, 30, "every mail row to be SENT")
            finally:
                for client in clients:
                    await client.aclose()
        ids = Counter(mail.message["Message-ID"] for mail in mails)
        assert len(ids) == requests * DECIDERS
        assert set(ids.values()) == {1}
        smtp.assert_no_mail()  # nothing beyond the one mail per row
    rows = await Notification.filter(channel=Channel.EMAIL)
    assert {(r.status, r.attempts) for r in rows} == {(DeliveryStatus.SENT, 1)}
    assert {f"<{r.id}@localhost>" for r in rows} == set(ids)


class _Stall:
    """An SMTP handler that takes the message's envelope and never answers
    DATA: the sending process is caught between its commit and its send."""

    def __init__(self) -> None:
        self.reached = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.reached.set()
        await asyncio.Event().wait()  # until the client goes away
        return "250 never"


async def test_a_process_killed_between_commit_and_send_loses_no_mail(
    world: World, database: Stack, tmp_path: Path
) -> None:
    stall = _Stall()
    stalled = LoopbackController(stall)
    await asyncio.to_thread(stalled.start)
    try:
        first = spawn_server(
            "doomed",
            tmp_path,
            database_url=database.database_url,
            broker_url=database.broker_url,
            env={
                "LOCKBOX_SMTP_URL": f"smtp://127.0.0.1:{stalled.port}",
                "LOCKBOX_OUTBOX_LEASE_SECONDS": "2",
                "LOCKBOX_RATE_LIMIT_PER_SECOND": "0",
            },
        )
        await first.wait_healthy()
        http = GraphQLHttp(first.http_url)
        try:
            await flows.create_request(http, world.token("engineer-alice"), world.ticket("contoso"))
        finally:
            await http.aclose()
        # The change is committed and the worker is inside its SMTP session.
        assert await asyncio.to_thread(stall.reached.wait, 30)
        await first.kill()
    finally:
        await asyncio.to_thread(stalled.stop)
    assert not await Notification.filter(status=DeliveryStatus.SENT).exists()

    async with smtp_server() as smtp:
        second = spawn_server(
            "successor",
            tmp_path,
            database_url=database.database_url,
            broker_url=database.broker_url,
            env={"LOCKBOX_SMTP_URL": smtp.url, "LOCKBOX_OUTBOX_POLL_SECONDS": "0.2"},
        )
        try:
            await second.wait_healthy()
            # The dead process's claims run out (2 s) and its rows are sent.
            mails = await receive(smtp, DECIDERS)
            await wait_for(all_mail_sent, 30, "every mail row to be SENT")
        finally:
            await second.terminate()
        smtp.assert_no_mail()
    assert sorted(m.recipients[0] for m in mails) == [
        "contoso-admin@example.com",
        "contoso-approver-prod@example.com",
    ]
