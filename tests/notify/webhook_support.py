"""A webhook receiver for tests: a small Starlette app under a real uvicorn
server on a free 127.0.0.1 port, written as a careful receiver would be.

It checks every delivery's signature against the secret it was given and
that the signature's timestamp is within 5 minutes, deduplicates on
`Lockbox-Event-Id`, and can be told to fail (HTTP 500) or stall the first
attempts of each id. Every attempt is put on an asyncio queue of the test's
loop, so a test waits for deliveries, never sleeps for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support import LiveServer

# What the live fixture needs to accept webhooks on loopback, and to look
# for due deliveries often.
PRIVATE_WEBHOOKS: dict[str, Any] = {"webhook_allow_private": True}
# A loopback port nothing listens on: deliveries there fail, and stay on this machine.
NOWHERE = "http://127.0.0.1:9/hook"
TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class Arrival:
    """One POST the receiver got, and what it answered."""

    event_id: str
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    timestamp: int | None
    signature_ok: bool
    attempt: int  # 1 for the first POST of this id
    answer: int
    duplicate: bool  # an id already accepted before
    at: float  # time.monotonic() on arrival

    @property
    def type(self) -> str:
        return str(self.body["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.body["data"]
        return data

    @property
    def accepted(self) -> bool:
        return self.answer == 200 and not self.duplicate


def verify(secret: str, header: str, raw: bytes, now: float) -> tuple[int | None, bool]:
    """(timestamp, whether the signature is valid and fresh)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return None, False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    fresh = abs(now - timestamp) <= TOLERANCE_SECONDS
    return timestamp, fresh and hmac.compare_digest(expected.hexdigest(), fields.get("v1", ""))


class Receiver:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.arrivals: asyncio.Queue[Arrival] = asyncio.Queue()
        self.secret = ""
        self.fail_first = 0  # answer 500 to the first N attempts of each id
        self.stall_first = 0  # hold the first N attempts of each id this long first
        self.stall_seconds = 0.0
        self.attempts: Counter[str] = Counter()
        self.accepted: dict[str, Arrival] = {}
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        self.server = LiveServer(app)

    @property
    def url(self) -> str:
        return f"{self.server.http_url}/hook"

    async def hook(self, request: Request) -> JSONResponse:
        raw = await request.body()
        event_id = request.headers.get("lockbox-event-id", "")
        self.attempts[event_id] += 1
        attempt = self.attempts[event_id]
        timestamp, signature_ok = verify(
            self.secret, request.headers.get("lockbox-signature", ""), raw, time.time()
        )
        duplicate = signature_ok and event_id in self.accepted
        if not signature_ok:
            answer = 401
        elif attempt <= self.fail_first and not duplicate:
            answer = 500
        else:
            answer = 200
        arrival = Arrival(
            event_id=event_id,
            body=json.loads(raw),
            raw=raw,
            headers=dict(request.headers),
            timestamp=timestamp,
            signature_ok=signature_ok,
            attempt=attempt,
            answer=answer,
            duplicate=duplicate,
            at=time.monotonic(),
        )
        if arrival.accepted:
            self.accepted[event_id] = arrival
        self.loop.call_soon_threadsafe(self.arrivals.put_nowait, arrival)
        if attempt <= self.stall_first:
            await asyncio.sleep(self.stall_seconds)  # a slow receiver, not a wait for an event
        return JSONResponse({"ok": answer == 200}, status_code=answer)

    async def next(self, timeout: float = 10) -> Arrival:
        return await asyncio.wait_for(self.arrivals.get(), timeout)

    def nothing_arrived(self) -> bool:
        return self.arrivals.empty() and not self.attempts

    def start(self) -> Receiver:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
