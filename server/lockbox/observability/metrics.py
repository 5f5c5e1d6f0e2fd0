"""Prometheus metrics, served at GET /metrics when LOCKBOX_METRICS=1.

Each app has its own `Metrics` and its own CollectorRegistry (never the
process-wide default one), so several apps in one process (tests, the demo)
keep separate counts. With metrics off an app has no `Metrics` at all: every
hook is behind an `is not None` check, and nothing is measured.

Counters and histograms are bumped where things happen (the gate, mutations,
the outbox, the sweeper, the fan-out). Values that are states rather than
events (open sockets, outbox depth, the database pool, the broker) are read
when Prometheus scrapes, so they cost nothing in between.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

from graphql import FieldNode, OperationDefinitionNode
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from lockbox.realtime.broker import Broker
from lockbox.store import config as db
from lockbox.store import queries as store

log = logging.getLogger(__name__)

# Latencies of the gate and of mutations: a gate call is a few milliseconds
# when the database is near, so the low end is fine-grained.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Fan-out and sweeper lags: from milliseconds (a wake-up in one process) to
# many seconds (a sweeper that fell behind).
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# How long a scrape waits for the database or the broker before it reports
# what it could not read as missing (outbox depth) or down (broker).
SCRAPE_TIMEOUT_SECONDS = 2.0

_STATUS_DENIAL = re.compile(r"^request \S+ is ([A-Z_]+)$")


def reason_class(reason: str) -> str:
    """A denial reason (domain.gate.denial_reason, one per request and
    resource) as one of a few classes: a label must not grow with the data."""
    found = _STATUS_DENIAL.match(reason)
    if found is not None:
        return found.group(1).lower()  # pending, expired, revoked, completed...
    if "has not started" in reason:
        return "not_started"
    if "is outside the" in reason:
        return "out_of_scope"
    return "other"


class Metrics:
    """Every metric of one app, in the app's own registry."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.gate_decisions = Counter(
            "lockbox_gate_decisions",
            "authorizeAccess calls by outcome: allowed, denied (reason: why, as a class) "
            "or refused (reason: the error code; nothing was recorded)",
            ["outcome", "reason"],
            registry=registry,
        )
        self.gate_seconds = Histogram(
            "lockbox_gate_seconds",
            "Time to decide and commit one authorizeAccess call (group commit included)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.mutation_seconds = Histogram(
            "lockbox_mutation_seconds",
            "Time to run one GraphQL mutation operation, by its first root field",
            ["mutation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.websockets_open = Gauge(
            "lockbox_websockets_open", "Open GraphQL WebSockets in this process", registry=registry
        )
        self.subscriptions_active = Gauge(
            "lockbox_subscriptions_active",
            "Running GraphQL subscriptions in this process, by field",
            ["subscription"],
            registry=registry,
        )
        self.fanout_lag = Histogram(
            "lockbox_fanout_lag_seconds",
            "From the publication of an activity wake-up (after its commit, in any process) "
            "to its events written to every caught-up subscriber in this process",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.outbox_pending = Gauge(
            "lockbox_outbox_pending",
            "Deliveries in the outbox not yet sent (due now or waiting for a retry), by channel",
            ["channel"],
            registry=registry,
        )
        self.outbox_deliveries = Counter(
            "lockbox_outbox_deliveries",
            "Delivery attempts by this process: sent, retry (failed, tried again later) "
            "or failed (given up, audited as notification.failed)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.sweeper_lag = Histogram(
            "lockbox_sweeper_lag_seconds",
            "How long after its deadline the sweeper recorded an expiry or completion "
            "(by the server's clock)",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.sweeper_passes = Counter(
            "lockbox_sweeper_passes",
            "Sweeper passes that completed in this process",
            registry=registry,
        )
        self.db_pool = Gauge(
            "lockbox_db_pool_connections",
            "The PostgreSQL connection pool (asyncpg, as tortoise holds it): open and idle "
            "connections, and the most it may open; absent on SQLite (one connection, no pool)",
            ["state"],
            registry=registry,
        )
        self.broker_up = Gauge(
            "lockbox_broker_up",
            "1 when the broker answers a ping at scrape time, else 0 (memory:// is always up)",
            ["backend"],
            registry=registry,
        )
        # Children resolved once: a label lookup takes a lock and builds a
        # tuple, and the gate calls this on every decision.
        self._allowed = self.gate_decisions.labels("allowed", "")
        self._decisions: dict[tuple[str, str], Any] = {}
        self._mutations: dict[str, Histogram] = {}

    # --- hooks on the hot paths -------------------------------------------------------

    def gate_decided(self, allowed: bool, denial_reason: str | None, seconds: float) -> None:
        self.gate_seconds.observe(seconds)
        if allowed:
            self._allowed.inc()
        else:
            self._decision("denied", reason_class(denial_reason or "")).inc()

    def gate_refused(self, code: str, seconds: float) -> None:
        self.gate_seconds.observe(seconds)
        self._decision("refused", code).inc()

    def _decision(self, outcome: str, reason: str) -> Any:
        child = self._decisions.get((outcome, reason))
        if child is None:
            child = self._decisions[(outcome, reason)] = self.gate_decisions.labels(outcome, reason)
        return child

    def mutation_took(self, field: str, seconds: float) -> None:
        child = self._mutations.get(field)
        if child is None:
            child = self._mutations[field] = self.mutation_seconds.labels(field)
        child.observe(seconds)

    def subscription_started(self, field: str) -> None:
        self.subscriptions_active.labels(field).inc()

    def subscription_ended(self, field: str) -> None:
        self.subscriptions_active.labels(field).dec()

    def delivery(self, channel: str, outcome: str) -> None:
        self.outbox_deliveries.labels(channel, outcome).inc()

    def swept(self, deadline: datetime, now: datetime) -> None:
        self.sweeper_lag.observe(max(0.0, (now - deadline).total_seconds()))

    # --- read at scrape time -----------------------------------------------------------

    def count_websockets(self, count: Callable[[], int]) -> None:
        self.websockets_open.set_function(count)

    async def render(self, refresh: Callable[[], Awaitable[None]]) -> bytes:
        """The exposition, after `refresh` has read what is read per scrape."""
        await refresh()
        return generate_latest(self.registry)

    async def refresh_outbox(self, pending: Callable[[], Awaitable[dict[str, int]]]) -> None:
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
                counts = await pending()
        except Exception as exc:
            # Not a guess: an unreadable depth is left out, and the log says why.
            log.warning("metrics: outbox depth unavailable (%s)", type(exc).__name__)
            self.outbox_pending.clear()
            return
        self.outbox_pending.clear()
        for channel, count in counts.items():
            self.outbox_pending.labels(channel).set(count)

    def refresh_pool(self, usage: dict[str, int] | None) -> None:
        self.db_pool.clear()
        for state, value in (usage or {}).items():
            self.db_pool.labels(state).set(value)

    async def refresh_broker(self, backend: str, ping: Callable[[], Awaitable[bool]]) -> None:
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
                up = await ping()
        except Exception:
            up = False
        self.broker_up.labels(backend).set(1 if up else 0)


def mutation_timer(metrics: Metrics) -> type[SchemaExtension]:
    """A schema extension: each mutation's time, by its first root field
    (only the schema's own fields: a label never holds a client's text)."""

    class MutationTimes(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            started = perf_counter()
            yield
            field = first_mutation_field(self.execution_context)
            if field is not None:
                metrics.mutation_took(field, perf_counter() - started)

    return MutationTimes


def first_mutation_field(context: ExecutionContext) -> str | None:
    """The first root field of a mutation that ran, if the schema has it."""
    if context.operation_type is not OperationType.MUTATION:
        return None
    document = context.graphql_document
    if document is None:
        return None
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        wanted = context.operation_name
        if wanted is not None and (definition.name is None or definition.name.value != wanted):
            continue
        selections = definition.selection_set.selections
        first = selections[0] if selections else None
        mutation_type = context.schema._schema.mutation_type
        if isinstance(first, FieldNode) and mutation_type is not None:
            name = first.name.value
            return name if name in mutation_type.fields else None
        return None
    return None


def endpoint(
    metrics: Metrics, broker_url: str, broker: Broker, binding: db.Binding
) -> Callable[[Request], Awaitable[Response]]:
    """GET /metrics, in the Prometheus text format. The database pool, the
    outbox's depth and the broker are read as it is scraped."""
    scheme = urlsplit(broker_url).scheme
    backend = "redis" if scheme == "rediss" else scheme  # memory or redis

    async def refresh() -> None:
        metrics.refresh_pool(db.pool_usage(binding.context))
        await metrics.refresh_outbox(store.pending_notifications_by_channel)
        await metrics.refresh_broker(backend, broker.ping)

    async def serve_metrics(request: Request) -> Response:
        body = await metrics.render(refresh)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return serve_metrics
