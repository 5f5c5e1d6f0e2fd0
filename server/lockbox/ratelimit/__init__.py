"""Rate limits per principal.

A small core in the style of encode/broadcaster: the `RateLimit` protocol the
services depend on, and `rate_limit_for(url)`, which picks a backend from the
broker URL. One file per backend: `memory` (this process only) and `redis`
(shared by every process), so that the limit a caller sees does not depend on
how many processes serve it.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from lockbox.ratelimit.memory import LocalRateLimit
from lockbox.ratelimit.redis import RedisRateLimit


class RateLimit(Protocol):
    async def check(self, key: str) -> None:
        """Take one call for `key`, or raise RateLimited."""
        ...

    async def close(self) -> None: ...


def rate_limit_for(broker_url: str, rate: float, burst: int) -> RateLimit:
    """Shared through Redis when the processes share a Redis broker."""
    if urlsplit(broker_url).scheme in ("redis", "rediss") and rate > 0:
        return RedisRateLimit(broker_url, rate, burst)
    return LocalRateLimit(rate, burst)
