"""Limits on an HTTP request's body, applied before anything reads or parses it.

- Size (LOCKBOX_MAX_BODY_BYTES): without it a client, authenticated or not,
  could send any amount, and the GraphQL view would read it all into memory
  before looking at the token. Over it: 413, at once when Content-Length
  says so, else as soon as the bytes read pass it.
- Time (LOCKBOX_BODY_TIMEOUT_SECONDS): a client that sends one byte every few
  seconds (slowloris) would hold a connection, and its memory, for ever. The
  body has one deadline from the moment the app sees the request; past it:
  408 and the connection is closed.

Both answer with a GraphQL error (BAD_USER_INPUT), log one line, and close
the connection; `0` turns either off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# How much of a refused body is still read, and for how long, before the
# answer: a client still sending then reads it instead of a reset connection.
DRAIN_BYTES = 1024 * 1024
DRAIN_SECONDS = 1.0


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = status
        self.message = message


class BodyGuard:
    def __init__(self, app: ASGIApp, *, max_bytes: int, seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.max_bytes <= 0 and self.seconds <= 0):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length") or b""
        # A length of more than 18 digits is over any limit (and too long for int()).
        length = (2**63 if len(declared) > 18 else int(declared)) if declared.isdigit() else 0
        if 0 < self.max_bytes < length:
            await _drain(receive)
            await self._refuse(scope, send, self._too_large())
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds if self.seconds > 0 else None
        received = 0
        complete = False
        started = False

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _Refused(
                    408, f"request body not received within {self.seconds:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if 0 < self.max_bytes < received:
                    raise self._too_large()
            complete = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracked_send)
        except _Refused as refused:
            if refused.http_status == 413:
                await _drain(receive)
            if not started:
                await self._refuse(scope, send, refused)

    def _too_large(self) -> _Refused:
        return _Refused(413, f"the request body is larger than {self.max_bytes} bytes")

    async def _refuse(self, scope: Scope, send: Send, refused: _Refused) -> None:
        client = scope.get("client") or ("?", 0)
        log.warning("refused a request from %s: %s", client[0], refused.message)
        error = {"message": refused.message, "extensions": {"code": "BAD_USER_INPUT"}}
        body = json.dumps({"errors": [error]}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": refused.http_status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    """Read (and drop) a little more of a refused body, briefly. Bounded: a
    flood is simply cut off."""
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while drained <= DRAIN_BYTES:
                message = await receive()
                drained += len(message.get("body", b""))
                if message["type"] != "http.request" or not message.get("more_body"):
                    return
