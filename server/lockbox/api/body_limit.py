"""The HTTP request body limit, applied before anything reads or parses it.

Without it a client (authenticated or not) could send any amount, and the
GraphQL view would read it all into memory before looking at the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# How much of a refused body is still read, and for how long, before the
# answer (see BodyLimit._drain).
DRAIN_BYTES = 1024 * 1024
DRAIN_SECONDS = 1.0


class BodyTooLarge(Exception):
    pass


def _refusal(limit: int) -> bytes:
    error = {
        "message": f"the request body is larger than {limit} bytes",
        "extensions": {"code": "BAD_USER_INPUT"},
    }
    return json.dumps({"errors": [error]}).encode()


class BodyLimit:
    """413 with a GraphQL error (BAD_USER_INPUT) for a body over `limit`
    bytes: at once when Content-Length says so, else as soon as the bytes
    read pass it. `limit` 0 turns the limit off."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._drain(receive)
            await self._refuse(scope, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._drain(receive)
                await self._refuse(scope, send)

    async def _drain(self, receive: Receive) -> None:
        """Read (and drop) a little more of the body, briefly, so that a
        client still sending reads our answer instead of a reset connection.
        Bounded: a flood is simply cut off."""
        drained = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_SECONDS):
                while drained <= DRAIN_BYTES:
                    message = await receive()
                    drained += len(message.get("body", b""))
                    if message["type"] != "http.request" or not message.get("more_body"):
                        return

    async def _refuse(self, scope: Scope, send: Send) -> None:
        client = scope.get("client") or ("?", 0)
        log.warning("refused a request body over %d bytes from %s", self.limit, client[0])
        body = _refusal(self.limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
