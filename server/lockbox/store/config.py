"""How Lockbox talks to its database: tortoise configuration and lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.context import TortoiseContext, _current_context
from tortoise.migrations.api import migrate as run_migrations

MODELS_MODULE = "lockbox.store.models"
MIGRATIONS_MODULE = "lockbox.store.migrations"


class DatabaseUrlError(ValueError):
    pass


def _engine_url(url: str, pool_min: int, pool_max: int, connect_timeout: int) -> str:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return url
    if scheme in ("postgres", "postgresql", "asyncpg"):
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}minsize={pool_min}&maxsize={pool_max}&timeout={connect_timeout}"
    raise DatabaseUrlError(
        f"unsupported database URL scheme {scheme!r}: use sqlite://PATH or postgres://…"
    )


def tortoise_config(
    url: str, *, pool_min: int = 1, pool_max: int = 10, connect_timeout: int = 5
) -> dict[str, Any]:
    return {
        "connections": {"default": _engine_url(url, pool_min, pool_max, connect_timeout)},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "migrations": MIGRATIONS_MODULE,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Used by `python -m tortoise -c lockbox.store.config.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = tortoise_config("sqlite://:memory:")


async def migrate(url: str) -> None:
    """Apply pending migrations, then close the connections migrate opened."""
    async with TortoiseContext():
        await run_migrations(config=tortoise_config(url))


@asynccontextmanager
async def database(
    url: str, *, pool_min: int = 1, pool_max: int = 10, connect_timeout: int = 5
) -> AsyncIterator[TortoiseContext]:
    """Connect for the duration of the block, in the current task and the
    tasks it starts. Each app owns its own context, so several can share a
    process (as tests do) without sharing connections."""
    async with TortoiseContext() as context:
        config = tortoise_config(
            url, pool_min=pool_min, pool_max=pool_max, connect_timeout=connect_timeout
        )
        await context.init(config=config)
        yield context


@dataclass
class Binding:
    """The database context an app is serving with (set by its lifespan)."""

    context: TortoiseContext | None = None


class BindDatabase:
    """ASGI middleware that makes the app's database current for each call.

    Server tasks do not inherit the lifespan's context variables, so each
    request and WebSocket binds the app's context for its own task. The
    binding is reset when the call returns.
    """

    def __init__(self, app: ASGIApp, binding: Binding) -> None:
        self.app = app
        self.binding = binding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.binding.context is None or scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        token = _current_context.set(self.binding.context)
        try:
            await self.app(scope, receive, send)
        finally:
            _current_context.reset(token)


def pool_usage(context: TortoiseContext | None) -> dict[str, int] | None:
    """The PostgreSQL pool behind the default connection: connections open,
    idle and the most it may open. None on SQLite (tortoise keeps one
    connection there, no pool) or before the app has connected."""
    if context is None or not context.inited:
        return None
    pool = getattr(context.connections.get("default"), "_pool", None)
    if pool is None:
        return None
    return {"open": pool.get_size(), "idle": pool.get_idle_size(), "max": pool.get_max_size()}
