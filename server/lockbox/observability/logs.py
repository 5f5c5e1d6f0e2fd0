"""Log lines a support desk can search: request ids, plain text or JSON.

Every HTTP request and every WebSocket operation has a request id. It is in
each log line written while serving it, in the `X-Request-Id` response
header, and in a masked error's `extensions.requestId`, so that a user's
"Unexpected error." leads to its traceback in the log.

An incoming `X-Request-Id` (from a load balancer or a client's own tracing)
is kept when it is 1 to 64 characters of letters, digits and `._:-`; any
other is replaced by a fresh one, so a header can neither forge log lines
nor bloat them.

`LOCKBOX_LOG_FORMAT=json` writes one JSON object per line (time, level,
logger, message, requestId, the record's own fields, and the traceback if
any); plain text is the default. Either way what must never be logged is
kept out as api.log_hygiene says: libraries that log payloads at DEBUG are
held at INFO, and token-shaped text is redacted by both formatters.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockbox.api import log_hygiene
from lockbox.api.log_hygiene import redact

REQUEST_ID: ContextVar[str | None] = ContextVar("lockbox_request_id", default=None)

HEADER = b"x-request-id"  # as ASGI spells header names
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    return os.urandom(8).hex()


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def accepted_request_id(raw: bytes | None) -> str:
    """The client's id when it is sane, else a new one."""
    if raw is not None:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return new_request_id()
        if _SANE_ID.fullmatch(text):
            return text
    return new_request_id()


def start_operation() -> str:
    """A fresh id for one WebSocket operation (it runs in its own task, so
    the id stays with it)."""
    request_id = new_request_id()
    REQUEST_ID.set(request_id)
    return request_id


class RequestIds:
    """ASGI middleware: a request id per HTTP request and per WebSocket (each
    WebSocket operation then takes its own, api.operations), made current for
    the call and returned in the `X-Request-Id` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == HEADER:
                incoming = value
                break
        request_id = accepted_request_id(incoming)
        token = REQUEST_ID.set(request_id)
        try:
            if kind != "http":
                # A socket's `send` is left unwrapped: every live event goes
                # through it. Its operations' errors carry their own ids.
                await self.app(scope, receive, send)
                return
            header = (HEADER, request_id.encode())

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), header]
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


# --- formatting ----------------------------------------------------------------------

# Attributes every LogRecord has: the rest are the caller's `extra` fields.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "request_id", "taskName"}
    # uvicorn's copy of the message with terminal colours.
    | {"color_message"}
)


class RequestIdFilter(logging.Filter):
    """Notes the current request id on each record (unless `extra` set one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.rid = f" [{request_id}]" if request_id else ""
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["requestId"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key != "rid":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


FORMATS = ("text", "json")


def configure(
    *, level: str | int = "WARNING", format: str = "text", stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record to `stream` (stderr) in `format`, from `level` on.
    Replaces the root logger's handlers; returns the one it installs."""
    if format not in FORMATS:
        raise ValueError(f"LOCKBOX_LOG_FORMAT must be text or json, got {format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    log_hygiene.quiet_payload_loggers()
    return handler


def configure_from_env() -> logging.Handler:
    """LOCKBOX_LOG_LEVEL and LOCKBOX_LOG_FORMAT."""
    return configure(
        level=os.environ.get("LOCKBOX_LOG_LEVEL") or "WARNING",
        format=(os.environ.get("LOCKBOX_LOG_FORMAT") or "text").lower(),
    )
