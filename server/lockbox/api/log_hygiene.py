"""What a client can make the server log: one line, never a traceback.

uvicorn logs a WebSocket text frame that is not valid UTF-8 with
`logger.exception`: a traceback for every such frame any client sends (the
socket is closed with 1007 all the same). The filter keeps the line and
drops the traceback, at WARNING: a client's error, not the server's.
"""

from __future__ import annotations

import logging

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
