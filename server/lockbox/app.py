"""The ASGI application: `create_app()` wires everything and owns the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from lockbox.api import log_hygiene, pages
from lockbox.api.client_address import parse_networks
from lockbox.api.cors import cors_middleware, cors_origins
from lockbox.api.persisted_queries import documents_for
from lockbox.api.read_timeouts import header_timeout_protocol
from lockbox.api.request_body import BodyGuard
from lockbox.api.sockets import SocketLimits
from lockbox.api.view import LockboxGraphQL
from lockbox.clock import Clock, SystemClock
from lockbox.domain.notifications import Channel
from lockbox.notify import Transport
from lockbox.notify.mail import MailTransport
from lockbox.notify.webhook import WebhookTransport
from lockbox.observability import logs, metrics, tracing
from lockbox.observability.metrics import Metrics
from lockbox.ratelimit import rate_limit_for
from lockbox.realtime.broker import Broker, broker_from_url
from lockbox.realtime.hub import Hub
from lockbox.services import lockouts, signing, sweeper
from lockbox.services.deps import Deps
from lockbox.services.outbox import Outbox
from lockbox.settings import Settings
from lockbox.store import config as db
from lockbox.store import queries as store

log = logging.getLogger("lockbox")

STATIC = Path(__file__).parent / "static"

# The customer's console (/dashboard): our own static files, no build step.
# Its assets are served by name from this list and nothing else.
CONSOLE = STATIC / "console"
CONSOLE_ASSETS_PATH = "/dashboard/assets"
CONSOLE_ASSETS = (
    "console.js",
    "console.css",
    "admin.js",
    "api.js",
    "app.js",
    "audit.js",
    "dom.js",
    "history.js",
    "paging.js",
    "queries.js",
    "requests.js",
)

# How `lockbox serve` runs uvicorn. Compression is off: a GraphQL event is a
# few hundred bytes, and a deflate context per socket costs far more memory
# than it saves bandwidth once thousands of dashboards are connected.
UVICORN_OPTIONS: dict[str, Any] = {
    "ws": "websockets-sansio",
    "ws_per_message_deflate": False,
    # A larger frame is closed with 1009 (LOCKBOX_WS_MAX_FRAME_BYTES).
    "ws_max_size": Settings.ws_max_frame_bytes,
    "timeout_graceful_shutdown": 10,
    # Request headers within LOCKBOX_HEADER_TIMEOUT_SECONDS, or the connection closes.
    # (by name: these options are also reported as JSON by bench/).
    "http": "lockbox.api.read_timeouts:HeaderTimeoutH11Protocol",
    # X-Forwarded-For is believed only from LOCKBOX_TRUSTED_PROXIES
    # (api.client_address), never by uvicorn on its own.
    "proxy_headers": False,
    # The gate answers every engineer action; a log line each is the audit
    # trail's job (activity events), not the access log's.
    "access_log": False,
}


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """UVICORN_OPTIONS with the limits `settings` set."""
    return {
        **UVICORN_OPTIONS,
        "ws_max_size": settings.ws_max_frame_bytes or 2**31,
        "http": header_timeout_protocol(settings.header_timeout_seconds),
    }


@asynccontextmanager
async def background(
    name: str, work: Callable[[], Coroutine[Any, Any, None]]
) -> AsyncIterator[None]:
    task = asyncio.create_task(work(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def running_broker(broker: Broker, hub: Hub) -> AsyncIterator[None]:
    await broker.start(hub.deliver, hub.resync_all)
    try:
        yield
    finally:
        await broker.close()


Worker = Callable[[Deps], Coroutine[Any, Any, None]]


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    broker: Broker | None = None,
    workers: Sequence[Worker] = (),
    tracer_provider: Any = None,
) -> Starlette:
    """Build the app. Nothing connects until the lifespan starts.

    `tracer_provider`: an OpenTelemetry TracerProvider to trace with (else
    one exporting over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else none).

    `workers` run in the background for the app's lifetime, with its
    database and services (the demo's simulated engineer is one).
    """
    settings = settings or Settings.from_env()
    trusted_proxies = parse_networks(settings.trusted_proxies)  # a bad one fails at start
    origins = cors_origins(settings.cors_origins)  # so does a bad origin
    deps = Deps(
        clock=clock or SystemClock(),
        broker=broker or broker_from_url(settings.broker_url),
        hub=Hub(),
        limiter=rate_limit_for(
            settings.broker_url, settings.rate_limit_per_second, settings.rate_limit_burst
        ),
        auth_failures=rate_limit_for(
            settings.broker_url,
            settings.auth_failures_per_minute / 60,
            settings.auth_failures_per_minute,
        ),
        mail_enabled=settings.smtp_url is not None,
        webhook_allow_private=settings.webhook_allow_private,
        max_pending_per_engineer=settings.max_pending_per_engineer,
        max_query_cost=settings.max_query_cost,
        audit_key=settings.audit_key_bytes,
        # Loaded now, so that a bad LOCKBOX_SIGNING_KEY fails at start.
        signer=None if settings.signing_key is None else signing.load_signer(settings.signing_key),
        provider_approval=settings.provider_approval,
        metrics=Metrics() if settings.metrics else None,
        tracing=tracing.from_env(tracer_provider),
    )
    if deps.metrics is not None:
        deps.hub.fanout_lag = deps.metrics.fanout_lag.observe
    # Built now, so that a bad LOCKBOX_SMTP_URL fails at start, not at the first mail.
    mail = MailTransport.from_settings(settings) if settings.smtp_url else None

    binding = db.Binding()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            binding.context = await stack.enter_async_context(
                db.database(
                    settings.database_url,
                    pool_min=settings.db_pool_min,
                    pool_max=settings.db_pool_max,
                    connect_timeout=settings.db_connect_timeout_seconds,
                )
            )
            stack.callback(setattr, binding, "context", None)
            await stack.enter_async_context(running_broker(deps.broker, deps.hub))
            if deps.tracing is not None:
                stack.callback(deps.tracing.shutdown)  # the last spans are sent
            stack.push_async_callback(deps.limiter.close)
            stack.push_async_callback(deps.auth_failures.close)
            stack.push_async_callback(documents.close)
            await stack.enter_async_context(
                background("sweeper", lambda: sweeper.run(deps, settings.sweep_interval_seconds))
            )
            await stack.enter_async_context(
                background("lockouts", lambda: lockouts.watch(deps, settings.lockout_poll_seconds))
            )
            webhooks = WebhookTransport(allow_private=settings.webhook_allow_private)
            stack.push_async_callback(webhooks.aclose)
            transports: dict[Channel, Transport] = {Channel.WEBHOOK: webhooks}
            if mail is not None:
                transports[Channel.EMAIL] = mail
            outbox = Outbox(
                deps,
                transports,
                lease_seconds=settings.outbox_lease_seconds,
                poll_seconds=settings.outbox_poll_seconds,
            )
            await stack.enter_async_context(background("outbox", outbox.run))
            for worker in workers:
                await stack.enter_async_context(background("worker", partial(worker, deps)))
            yield

    async def dashboard(request: Request) -> Response:
        return pages.page(CONSOLE / "index.html", request)

    console_assets = pages.Assets({name: CONSOLE / name for name in CONSOLE_ASSETS})

    async def signing_key(request: Request) -> Response:
        if deps.signer is None:
            return PlainTextResponse(
                "no signing key is configured (LOCKBOX_SIGNING_KEY): decisions are unsigned\n",
                status_code=404,
            )
        return Response(
            deps.signer.verifier.public_pem,
            media_type="application/x-pem-file",
            headers={"X-Lockbox-Key-Id": deps.signer.key_id, "Cache-Control": "no-cache"},
        )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    # The cause of an unreachable database goes to the log (once per change
    # of cause), never to the probe's caller.
    database_failure: list[str] = []

    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            await asyncio.wait_for(store.ping(), timeout=2)
            checks["database"] = "ok"
            database_failure.clear()
        except Exception as exc:
            checks["database"] = "unreachable"
            if database_failure != [type(exc).__name__]:
                database_failure[:] = [type(exc).__name__]
                log.warning("readiness: the database is unreachable (%s)", type(exc).__name__)
        checks["broker"] = "ok" if await deps.broker.ping() else "unreachable"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", **checks},
            status_code=200 if ready else 503,
        )

    log_hygiene.install()  # a client's bad frame is a log line, not a traceback
    # Automatic persisted queries (api.persisted_queries): shared through Redis
    # when the broker is Redis.
    documents = documents_for(
        settings.broker_url,
        max_entries=max(1, settings.persisted_queries_max),
        ttl_seconds=settings.persisted_queries_ttl_seconds,
    )
    graphql = LockboxGraphQL(
        deps,
        graphiql=settings.graphiql,
        trusted_proxies=trusted_proxies,
        sockets=SocketLimits.of(
            per_address=settings.max_sockets_per_address,
            per_principal=settings.max_sockets_per_principal,
        ),
        max_subscriptions=settings.ws_max_subscriptions,
        documents=documents,
        cors_origins=origins,
        observers=[
            *([metrics.mutation_timer(deps.metrics)] if deps.metrics is not None else []),
            *([tracing.tracing_extension(deps.tracing)] if deps.tracing is not None else []),
        ],
    )
    if deps.metrics is not None:
        deps.metrics.count_websockets(graphql.sockets.per_address.total)
    # Both sub-protocols: graphql-transport-ws closes with 4408 (strawberry),
    # the legacy one answers connection_error and closes (api.operations).
    graphql.connection_init_wait_timeout = timedelta(seconds=settings.ws_init_timeout_seconds)
    app = Starlette(
        middleware=[
            # Outermost: a preflight is answered before anything reads a body.
            *cors_middleware(origins),
            # A request id for every request and socket (lockbox.observability.logs).
            Middleware(logs.RequestIds),
            Middleware(
                BodyGuard,
                max_bytes=settings.max_body_bytes,
                seconds=settings.body_timeout_seconds,
            ),
            Middleware(db.BindDatabase, binding=binding),
        ],
        routes=[
            Route("/dashboard", dashboard),
            Route(f"{CONSOLE_ASSETS_PATH}/{{name}}", console_assets.endpoint),
            Route("/healthz", healthz),
            Route("/.well-known/lockbox-signing-key", signing_key),
            Route("/readyz", readyz),
            # LOCKBOX_METRICS=1; otherwise /metrics is a 404 like any unknown path.
            *(
                [
                    Route(
                        "/metrics",
                        metrics.endpoint(deps.metrics, settings.broker_url, deps.broker, binding),
                    )
                ]
                if deps.metrics is not None
                else []
            ),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *(
                [Route(f"{pages.GRAPHIQL_ASSETS_PATH}/{{name}}", pages.graphiql_assets().endpoint)]
                if settings.graphiql
                else []
            ),
        ],
        lifespan=lifespan,
    )
    app.state.deps = deps
    app.state.sockets = graphql.sockets  # open WebSockets per address and principal
    app.state.settings = settings
    return app
