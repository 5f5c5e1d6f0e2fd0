"""What reaches the log: what a client can make the server log (one line,
never a traceback), and what must never be logged (tokens, secrets, mail).

uvicorn logs a WebSocket text frame that is not valid UTF-8 with
`logger.exception`: a traceback for every such frame any client sends (the
socket is closed with 1007 all the same). The filter keeps the line and
drops the traceback, at WARNING: a client's error, not the server's.

Lockbox's own lines never name a token, a secret or a mail's body. Some
libraries' DEBUG lines do: tortoise logs each query with its parameters
(webhook secrets, addresses) and the pool's settings (the database
password), aiosqlite each call and the rows it returns, aiosmtpd (the demo's
mail server) every line of every mail and of the SMTP AUTH exchange. Those
loggers are held at INFO (`quiet_payload_loggers`), and whatever still looks
like an API token or a Bearer value is replaced on the way out (`redact`,
used by the formatters of lockbox.observability.logs).
"""

from __future__ import annotations

import logging
import re

CLIENT_FAULTS = ("Invalid UTF-8 sequence received from client.",)


class ClientFaultsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in CLIENT_FAULTS:
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        return True


_FILTER = ClientFaultsWithoutTraceback()


def install() -> None:
    """Once per process, however many apps are built."""
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


# Loggers whose DEBUG lines carry data (see the module docstring).
PAYLOAD_LOGGERS = ("tortoise", "aiosqlite", "mail.log", "mail.debug")


def quiet_payload_loggers() -> None:
    """Hold PAYLOAD_LOGGERS at INFO when the log level would let DEBUG through."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


# API tokens (services.auth: "lbx_" and 43 URL-safe characters), and whatever
# follows "Bearer " (an Authorization value quoted by a library).
_SECRETS = re.compile(r"lbx_[A-Za-z0-9_-]{8,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with anything shaped like a token or a Bearer value replaced."""
    return _SECRETS.sub(REDACTED, text) if ("lbx_" in text or "earer" in text) else text
