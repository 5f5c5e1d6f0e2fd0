"""How long a client may take to send a request: its headers, then its body.

Without these a client that sends one byte every few seconds (slowloris)
holds a connection, and its memory, for ever: uvicorn's `timeout_keep_alive`
only covers the idle time between requests.

- Headers (LOCKBOX_HEADER_TIMEOUT_SECONDS): `header_timeout_protocol` is
  uvicorn's h11 protocol with a timer from the moment the connection opens
  (and again after each response, for the next request on a kept-alive
  connection) until the request's headers are complete; when it fires, the
  connection is closed. It is passed to uvicorn as its `http` class
  (`lockbox.app.uvicorn_options`).
- Body (LOCKBOX_BODY_TIMEOUT_SECONDS): `BodyTimeout` is ASGI middleware that
  gives each request's body one deadline from the moment the app sees the
  request; past it, 408 and the connection is closed.

`0` turns either off.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class _HeaderTimeoutH11Protocol(H11Protocol):
    header_timeout_seconds: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request's headers are in
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the next request's headers, on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        if self.header_timeout_seconds > 0:
            self._header_timer = self.loop.call_later(
                self.header_timeout_seconds, self._header_timeout
            )

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        client = self.client[0] if self.client else "?"
        log.warning(
            "closed a connection from %s: no complete request headers within %g s",
            client,
            self.header_timeout_seconds,
        )
        self.transport.close()


class HeaderTimeoutH11Protocol(_HeaderTimeoutH11Protocol):
    """The default (10 s), named in `lockbox.app.UVICORN_OPTIONS`."""


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers
    are not complete within `seconds` (0: no limit)."""
    if seconds == HeaderTimeoutH11Protocol.header_timeout_seconds:
        return HeaderTimeoutH11Protocol
    return type(
        "HeaderTimeoutH11Protocol",
        (_HeaderTimeoutH11Protocol,),
        {"header_timeout_seconds": seconds},
    )


class BodyReadTimeout(Exception):
    pass


_REFUSAL = json.dumps(
    {
        "errors": [
            {
                "message": "the request body was not received in time",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }
).encode()


class BodyTimeout:
    """A request's body must arrive within `seconds` of the request (0: no
    limit); past it the request is answered 408 and its connection closed."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        complete = False
        started = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimeout from None
            complete = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except BodyReadTimeout:
            client = scope.get("client") or ("?", 0)
            log.warning(
                "closed a connection from %s: request body not received within %g s",
                client[0],
                self.seconds,
            )
            if not started:
                await _send_refusal(send)


async def _send_refusal(send: Send) -> None:
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_REFUSAL)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": _REFUSAL})
