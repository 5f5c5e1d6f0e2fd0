"""Rate limits: a burst, then refusals with a retry hint; Redis trouble never blocks the gate."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from lockbox.domain.errors import RateLimited
from lockbox.ratelimit import rate_limit_for
from lockbox.ratelimit.memory import LocalRateLimit, TokenBucket
from lockbox.ratelimit.redis import RedisRateLimit


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    limiter = TokenBucket(rate=2, burst=3)
    for _ in range(3):
        limiter.check("alice", now=10.0)
    with pytest.raises(RateLimited) as refused:
        limiter.check("alice", now=10.0)
    assert refused.value.retry_after_seconds == 1
    limiter.check("bob", now=10.0)  # buckets are per caller
    limiter.check("alice", now=10.5)  # half a second at 2/s is one call back
    with pytest.raises(RateLimited):
        limiter.check("alice", now=10.5)


def test_zero_rate_means_no_limit() -> None:
    limiter = TokenBucket(rate=0, burst=0)
    for _ in range(1000):
        limiter.check("alice", now=0.0)


def test_redis_is_used_only_with_a_redis_broker() -> None:
    assert isinstance(rate_limit_for("memory://", 10, 20), LocalRateLimit)
    assert isinstance(rate_limit_for("redis://127.0.0.1:1/0", 0, 20), LocalRateLimit)
    assert isinstance(rate_limit_for("redis://127.0.0.1:1/0", 10, 20), RedisRateLimit)


async def test_unreachable_redis_lets_calls_through() -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limit = RedisRateLimit(f"redis://127.0.0.1:{port}/0", rate=0.1, burst=1)
    try:
        for _ in range(3):
            await limit.check("alice")
    finally:
        await limit.close()


@pytest.mark.skipif(not os.environ.get("LOCKBOX_TEST_REDIS_URL"), reason="needs Redis")
async def test_processes_sharing_redis_share_one_bucket() -> None:
    url = f"{os.environ['LOCKBOX_TEST_REDIS_URL']}?channel=rate-{uuid.uuid4().hex}"
    first, second = RedisRateLimit(url, 0.01, 2), RedisRateLimit(url, 0.01, 2)
    try:
        await first.check("alice")
        await second.check("alice")
        with pytest.raises(RateLimited):
            await first.check("alice")
        with pytest.raises(RateLimited):
            await second.check("alice")
    finally:
        await first.close()
        await second.close()
