"""Lean HTTP/1.1 and WebSocket wire helpers for the load generator.

The load generator must cost far less per message than the servers it
measures, so it does the minimum: pre-encoded requests on keep-alive
connections (an asyncio protocol), a response parser that only understands
what uvicorn sends, and WebSocket framing for the selector-based subscribers
of `bench.fanout`.

Only loopback traffic is expected; nothing here is meant for the open network.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_FRAME_BYTES = 4 * 1024 * 1024


class WireError(Exception):
    """The peer sent something these clients do not accept."""


# --- HTTP --------------------------------------------------------------------


def http_request(
    method: str,
    path: str,
    host: str,
    port: int,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    """One pre-encoded HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_post(path: str, host: str, port: int, payload: Any, *, token: str | None = None) -> bytes:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http_request(
        "POST", path, host, port, body=json.dumps(payload).encode(), headers=headers
    )


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes
    received_at: float  # time.monotonic() when the last byte was read


class HttpConnection(asyncio.BufferedProtocol):
    """One keep-alive connection; one request in flight at a time.

    A buffered protocol: asyncio reads into one small reusable buffer instead
    of allocating a fresh 256 KiB bytes object for every read.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._incoming = memoryview(bytearray(64 * 1024))
        self._buffer = bytearray()
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._lost: BaseException | None = None

    @classmethod
    async def open(cls, host: str, port: int, wait_s: float = 10.0) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(cls, host, port), timeout=wait_s
        )
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("connection closed by the server")
        self._transport = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._incoming

    def buffer_updated(self, nbytes: int) -> None:
        self._buffer += self._incoming[:nbytes]
        if len(self._buffer) > MAX_RESPONSE_BYTES:
            self._fail(WireError("response larger than the client accepts"))
            return
        try:
            parsed = self._parse()
        except WireError as exc:
            self._fail(exc)
            return
        if parsed is not None and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(parsed)

    def _fail(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def _parse(self) -> HttpResponse | None:
        parsed = parse_response(self._buffer)
        if parsed is None:
            return None
        status, body = parsed
        return HttpResponse(status, body, time.monotonic())

    async def request(self, raw: bytes, wait_s: float = 30.0) -> HttpResponse:
        if self._transport is None:
            raise self._lost or ConnectionError("not connected")
        if self._waiter is not None and not self._waiter.done():
            raise RuntimeError("one request at a time on an HttpConnection")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await asyncio.wait_for(self._waiter, timeout=wait_s)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def parse_response(buf: bytearray) -> tuple[int, bytes] | None:
    """Status and body of the first complete response in `buf` (consumed), else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise WireError(f"not an HTTP/1.x status line: {head[0]!r}")
    status = int(parts[1])
    length: int | None = None
    chunked = False
    for line in head[1:]:
        name, _, value = line.partition(":")
        lowered = name.strip().lower()
        if lowered == "content-length":
            length = int(value.strip())
        elif lowered == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    start = end + 4
    if chunked:
        decoded = _dechunk(buf, start)
        if decoded is None:
            return None
        body, consumed = decoded
    else:
        size = length or 0
        if len(buf) - start < size:
            return None
        body, consumed = bytes(buf[start : start + size]), start + size
    del buf[:consumed]
    return status, body


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """The body of a chunked response and the bytes it used, None if incomplete."""
    body = bytearray()
    pos = start
    for _ in range(100_000):
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 2
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        pos += size + 2
    raise WireError("too many chunks")


# --- WebSocket ---------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def upgrade_request(host: str, port: int, path: str, subprotocol: str | None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A single, final, masked client frame."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + key + _mask(payload, key)


def text_frame(message: Any) -> bytes:
    return encode_frame(OP_TEXT, json.dumps(message).encode())


def split_frames(buf: bytearray) -> list[tuple[int, bool, bytes]]:
    """(opcode, final, payload) of every complete server frame in `buf` (consumed)."""
    frames: list[tuple[int, bool, bytes]] = []
    pos, size = 0, len(buf)
    while size - pos >= 2:
        first, second = buf[pos], buf[pos + 1]
        if second & 0x80:
            raise WireError("servers must not mask frames")
        length, header = second & 0x7F, 2
        if length == 126:
            if size - pos < 4:
                break
            length, header = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if size - pos < 10:
                break
            length, header = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
        if length > MAX_FRAME_BYTES:
            raise WireError("frame larger than the client accepts")
        if size - pos < header + length:
            break
        start = pos + header
        frames.append((first & 0x0F, bool(first & 0x80), bytes(buf[start : start + length])))
        pos = start + length
    if pos:
        del buf[:pos]
    return frames
