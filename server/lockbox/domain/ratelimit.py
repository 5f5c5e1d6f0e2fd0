"""A token bucket per caller: bursts are fine, floods are not."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lockbox.domain.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`rate` calls per second on average, up to `burst` at once, per key.

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
