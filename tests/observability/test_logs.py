"""Structured logs: request ids from the response to the log line, JSON
lines, and nothing secret in the log, even at DEBUG."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from lockbox.api import log_hygiene
from lockbox.clock import ManualClock
from lockbox.notify.sink import MailSink, ReceivedMail
from lockbox.observability import logs
from lockbox.services import signing
from tests.api.helpers import DEV, PROD, act, create_request
from tests.conftest import Live, Stack, World, start_server
from tests.scaleout.procs import free_port
from tests.support import GraphQLHttp, WsClient

LEAK = "the clock broke while holding a secret-looking message"
AUDIT_KEY = "audit-key-4b1d0c5e9f2a7c3e8d6b"
APPROVE = """
mutation($id: ID!, $reason: String) { approveRequest(id: $id, reason: $reason) { status } }
"""
CREATE_WEBHOOK = "mutation($url: String!) { createWebhook(input: {url: $url}) { secret } }"
WATCH = "subscription($id: ID!) { engineerActivity(requestId: $id) { cursor allowed } }"
# Reads the request's status, which asks the clock.
WATCH_STATUS = """
subscription($id: ID!) { engineerActivity(requestId: $id) { cursor request { status } } }
"""


class BreakableClock(ManualClock):
    """Fails on demand, as an unexpected fault inside a resolver."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def now(self) -> datetime:
        if self.broken:
            raise RuntimeError(LEAK)
        return super().now()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything this process logs, as the server would write it: JSON
    lines, from DEBUG on, through the handler `lockbox` installs."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in log_hygiene.PAYLOAD_LOGGERS}
    stream = io.StringIO()
    logs.configure(level="DEBUG", format="json", stream=stream)
    try:
        yield stream
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    entries = []
    for line in stream.getvalue().splitlines():
        entry = json.loads(line)  # every line is one JSON object
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
        entries.append(entry)
    return entries


def mail_texts(mail: ReceivedMail) -> list[str]:
    message = email.message_from_bytes(mail.raw, policy=email.policy.default)
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            texts.append(str(part.get_content()))  # type: ignore[attr-defined]
    assert texts, mail.summary()
    return texts


async def test_a_full_flow_logs_no_token_secret_or_mail_body_even_at_debug(
    captured: io.StringIO, world: World, database: Stack, tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    mails: asyncio.Queue[ReceivedMail] = asyncio.Queue()
    sink = MailSink(on_mail=lambda mail: loop.call_soon_threadsafe(mails.put_nowait, mail))
    await asyncio.to_thread(sink.start)
    key_path = tmp_path / "signing.pem"
    signing.generate(str(key_path))
    clock = BreakableClock()
    server = start_server(
        database,
        clock,
        smtp_url=sink.url,
        outbox_poll_seconds=0.05,
        webhook_allow_private=True,
        audit_key=AUDIT_KEY,
        signing_key=str(key_path),
        sweep_interval_seconds=3600,
    )
    live = Live(server=server, http=GraphQLHttp(server.http_url), clock=clock, stack=database)
    client = httpx.AsyncClient(timeout=20)
    admin, alice = world.token("contoso-admin"), world.token("engineer-alice")
    try:
        made = await live.http.data(
            admin, CREATE_WEBHOOK, url=f"http://127.0.0.1:{free_port()}/hook"
        )
        webhook_secret = made["createWebhook"]["secret"]
        request = await create_request(live, world)
        await live.http.data(admin, APPROVE, id=request["id"], reason="ticket checks out")

        socket = WsClient(server.ws_url)
        await socket.connect(admin)
        await socket.subscribe("watch", WATCH, id=request["id"])
        assert (await act(live, alice, "authorizeAccess", request["id"], PROD))["data"]
        assert (await act(live, alice, "authorizeAccess", request["id"], DEV))["data"]
        streamed = [await socket.next_data() for _ in range(2)]
        assert [e["engineerActivity"]["allowed"] for e in streamed] == [True, False]
        # The deciders' mails and the engineer's approval mail.
        received = [await asyncio.wait_for(mails.get(), 10) for _ in range(3)]

        # A fault, over HTTP and on a socket: masked, with the request id.
        clock.broken = True
        try:
            response = await client.post(
                f"{server.http_url}/graphql",
                json={"query": "{ accessRequests { edges { node { id status } } } }"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            await socket.subscribe("fault", WATCH_STATUS, id=request["id"])
            fault = await socket.receive()
        finally:
            clock.broken = False
        await socket.close()
    finally:
        await client.aclose()
        await live.http.aclose()
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(sink.stop)

    (error,) = response.json()["errors"]
    assert error["message"] == "Unexpected error."
    http_id = error["extensions"]["requestId"]
    assert response.headers["x-request-id"] == http_id
    assert fault["type"] in ("error", "next"), fault
    socket_errors = fault["payload"] if fault["type"] == "error" else fault["payload"]["errors"]
    socket_id = socket_errors[0]["extensions"]["requestId"]
    assert socket_id != http_id

    entries = lines_of(captured)
    assert any(e["level"] == "DEBUG" for e in entries)  # DEBUG was really on
    # Each user-visible id leads to its fault's line, traceback included.
    for request_id in (http_id, socket_id):
        found = [e for e in entries if e.get("requestId") == request_id and e["level"] == "ERROR"]
        assert found, f"no ERROR line with requestId {request_id}"
        assert any(LEAK in e.get("exception", "") for e in found)

    text = captured.getvalue()
    secrets = [world.token(name) for name in world.raw["principals"]]
    secrets += [webhook_secret, AUDIT_KEY]
    pem = key_path.read_text().splitlines()
    secrets += [line for line in pem if line and not line.startswith("-----")]
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:6]}…) is in the log"
    bodies = [
        line.strip() for mail in received for body in mail_texts(mail) for line in body.splitlines()
    ]
    distinctive = [line for line in bodies if len(line) >= 40]
    assert distinctive
    for line in distinctive:
        assert line not in text, f"a mail's body is in the log: {line!r}"
    # What must never be logged is not just absent by luck: the flow wrote
    # the tokens over HTTP and the socket, and the mails went through SMTP.
    assert len(entries) > 50


def test_an_incoming_request_id_is_kept_only_when_it_is_sane() -> None:
    assert logs.accepted_request_id(b"lb-7f3a.2024:01_x") == "lb-7f3a.2024:01_x"
    for bad in (b"", b"a b", b"line\nbreak", b"x" * 65, "é".encode(), b"\xff", b'"quoted"'):
        replaced = logs.accepted_request_id(bad)
        assert re.fullmatch(r"[0-9a-f]{16}", replaced), bad
    assert logs.accepted_request_id(None) != logs.accepted_request_id(None)


async def test_every_response_carries_a_request_id(live: Live) -> None:
    async with httpx.AsyncClient() as client:
        base = live.server.http_url
        fresh = await client.get(f"{base}/healthz")
        kept = await client.get(f"{base}/healthz", headers={"X-Request-Id": "edge-42"})
        replaced = await client.get(f"{base}/healthz", headers={"X-Request-Id": "no way"})
        missing = await client.get(f"{base}/nowhere")
    assert re.fullmatch(r"[0-9a-f]{16}", fresh.headers["x-request-id"])
    assert kept.headers["x-request-id"] == "edge-42"
    assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["x-request-id"])
    assert missing.status_code == 404 and missing.headers["x-request-id"]


def test_plain_text_is_the_default_and_carries_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.TextFormatter())
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger("lockbox.test.text")
    logger.addHandler(handler)
    logger.propagate = False
    token = logs.REQUEST_ID.set("abc123")
    try:
        logger.warning("refused %s", "Bearer lbx_" + "A" * 43)
    finally:
        logs.REQUEST_ID.reset(token)
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert " WARNING lockbox.test.text [abc123]: refused [redacted]" in line
    assert "lbx_" not in line


def test_json_lines_carry_extra_fields_and_tracebacks() -> None:
    formatter = logs.JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "lockbox.x", logging.ERROR, "f.py", 1, "failed %s", ("it",), sys.exc_info()
        )
    record.request_id = "r1"
    record.notification = "n-1"
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "failed it"
    assert entry["requestId"] == "r1" and entry["notification"] == "n-1"
    assert entry["level"] == "ERROR" and entry["logger"] == "lockbox.x"
    assert "ValueError: boom" in entry["exception"]


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="LOCKBOX_LOG_FORMAT"):
        logs.configure(format="xml")
