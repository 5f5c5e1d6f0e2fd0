"""Background duties that run every few seconds in every process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(seconds: float, what: str, work: Callable[[], Awaitable[object]]) -> None:
    """Run `work` forever, `seconds` apart. A failure is logged (once while it
    keeps failing the same way) and retried; it never stops the loop."""
    failing: str | None = None
    while True:
        try:
            await work()
            if failing is not None:
                log.warning("%s works again", what)
                failing = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if failing != type(exc).__name__:
                log.exception("%s failed; retrying every %s s", what, seconds)
            failing = type(exc).__name__
        await asyncio.sleep(seconds)
