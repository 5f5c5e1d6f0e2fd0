"""How long a client may take to send a request's headers.

Without it a client that sends one byte every few seconds (slowloris) holds
a connection, and its memory, for ever: uvicorn's `timeout_keep_alive` only
covers the idle time between requests. `header_timeout_protocol`
(LOCKBOX_HEADER_TIMEOUT_SECONDS; `0` turns it off) is uvicorn's h11 protocol
with a timer from the moment the connection opens (and again after each
response, for the next request on a kept-alive connection) until the
request's headers are complete; when it fires, the connection is closed. It
is passed to uvicorn as its `http` class (`lockbox.app.uvicorn_options`).
The body's own deadline is in api.request_body.
"""

from __future__ import annotations

import asyncio
import logging

import h11
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
