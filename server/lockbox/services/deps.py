"""What every use case needs: the clock, the way to wake subscribers, and the
process's shared machinery (live feeds, group commits, the rate limit)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockbox.clock import Clock, SystemClock
from lockbox.ratelimit import RateLimit
from lockbox.ratelimit.memory import LocalRateLimit
from lockbox.realtime.broker import Broker, MemoryBroker
from lockbox.realtime.feed import Feeds
from lockbox.realtime.hub import PUBLISHED_AT, Hub, Message
from lockbox.services.group_commit import BatchWriter, CallT, GroupCommit, ResultT
from lockbox.services.signing import Signer

if TYPE_CHECKING:
    from lockbox.observability.metrics import Metrics
    from lockbox.observability.tracing import Tracing


def _no_limit() -> RateLimit:
    return LocalRateLimit(rate=0, burst=0)


@dataclass
class Deps:
    clock: Clock = field(default_factory=SystemClock)
    broker: Broker = field(default_factory=MemoryBroker)
    hub: Hub = field(default_factory=Hub)
    limiter: RateLimit = field(default_factory=_no_limit)
    # Failed authentications per client address ("authfail:<address>"), charged
    # only on failure: past it, UNAUTHENTICATED becomes RATE_LIMITED.
    auth_failures: RateLimit = field(default_factory=_no_limit)
    # Whether mail is sent at all (LOCKBOX_SMTP_URL is set): without it, no
    # mail is written to the outbox either.
    mail_enabled: bool = False
    # Requests an engineer may have waiting at once (0: no limit).
    max_pending_per_engineer: int = 50
    # The most a GraphQL document may cost (api.limits.document_cost; 0: no limit).
    max_query_cost: int = 20_000
    # LOCKBOX_WEBHOOK_ALLOW_PRIVATE: webhooks may point at loopback, private and
    # link-local addresses (development and tests only).
    webhook_allow_private: bool = False
    # LOCKBOX_AUDIT_KEY: every audit link is an HMAC under it (None: plain SHA-256).
    audit_key: bytes | None = field(default=None, repr=False)
    # LOCKBOX_PROVIDER_APPROVAL: new requests wait for a support manager first.
    provider_approval: bool = False
    # LOCKBOX_SIGNING_KEY: every decision is signed with it (None: unsigned).
    signer: Signer | None = field(default=None, repr=False)
    # LOCKBOX_METRICS (None: off, nothing is measured) and OpenTelemetry
    # tracing (None: off); lockbox.observability.
    metrics: Metrics | None = field(default=None, repr=False)
    tracing: Tracing | None = field(default=None, repr=False)
    feeds: Feeds = field(init=False)
    _group_commits: dict[Any, GroupCommit[Any, Any]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.feeds = Feeds(self.hub)

    def group_commit(self, write: BatchWriter[CallT, ResultT]) -> GroupCommit[CallT, ResultT]:
        """This process's group commit for one kind of batched write."""
        found = self._group_commits.get(write)
        if found is None:
            found = self._group_commits[write] = GroupCommit(write)
        return found

    async def publish(self, topic: str, message: Message) -> None:
        if self.metrics is not None:
            # When it was published, for the fan-out lag (realtime.feed).
            message = {**message, PUBLISHED_AT: time.time()}
        await self.broker.publish(topic, message)
