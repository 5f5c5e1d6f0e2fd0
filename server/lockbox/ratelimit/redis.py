"""The rate limit shared by every process through Redis (redis://)."""

from __future__ import annotations

import logging
import math
from urllib.parse import urlsplit

from lockbox.domain.errors import RateLimited

log = logging.getLogger(__name__)

# The token bucket of ratelimit.memory, run atomically inside Redis on
# Redis's own clock. Returns {allowed, seconds until one token is back}.
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring((1 - tokens) / rate)}
"""


class RedisRateLimit:
    """One bucket per principal in Redis. If Redis cannot be reached the call
    is allowed (and logged): the gate must keep working through an outage."""

    def __init__(self, url: str, rate: float, burst: int) -> None:
        # Imported here: a deployment on memory:// never loads the client.
        import redis.asyncio as redis

        self._rate = rate
        self._burst = burst
        parts = urlsplit(url)
        self._prefix = f"lockbox:rate:{parts.query}:"
        self._redis = redis.Redis.from_url(
            parts._replace(query="").geturl(), socket_connect_timeout=1, socket_timeout=1
        )
        self._script = self._redis.register_script(_BUCKET_SCRIPT)

    async def check(self, key: str) -> None:
        if self._rate <= 0:
            return
        try:
            allowed, wait = await self._script(
                keys=[self._prefix + key], args=[self._rate, self._burst]
            )
        except Exception as exc:
            log.warning("rate limit not checked: Redis unreachable (%s)", type(exc).__name__)
            return
        if not int(allowed):
            seconds = max(1, math.ceil(float(wait)))
            raise RateLimited(f"too many calls; retry in {seconds} s", retry_after_seconds=seconds)

    async def close(self) -> None:
        await self._redis.aclose()
