"""The token bucket, and the limiter that runs it in this process (memory://).

The bucket is a pure rule: time is passed in, so it is tested without
waiting. The Redis backend runs the same rule inside Redis.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from lockbox.domain.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """`rate` calls per second on average, up to `burst` at once, per key:
    bursts are fine, floods are not.

    Time is passed in (a monotonic clock in seconds), so the rule is pure.
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key: str, now: float) -> None:
        """Take one token for `key`, or raise RateLimited saying when to retry."""
        if self.rate <= 0:
            return
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # bounded memory; forgetting only forgives
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) / self.rate)
            raise RateLimited(f"too many calls; retry in {wait} s", retry_after_seconds=wait)
        bucket.tokens -= 1


class LocalRateLimit:
    """A `RateLimit` for one process: each process keeps its own buckets."""

    def __init__(self, rate: float, burst: int) -> None:
        self._limiter = TokenBucket(rate, burst)

    async def check(self, key: str) -> None:
        self._limiter.check(key, time.monotonic())

    async def close(self) -> None:
        return None
