"""How many SQL statements a page of pending requests costs.

The real app (`lockbox.app.create_app`) runs in-process behind httpx's ASGI
transport, in a process of its own (`python -m bench.query_cost`, JSON on
stdin and stdout: tortoise caches SQL per model for the first database kind a
process uses, so each backend gets a fresh process). Tortoise logs each
statement at DEBUG on `tortoise.db_client`.
Only statements issued on behalf of the measured call are counted: a context
variable is set around the call, and the tasks it starts (DataLoader batches)
inherit it, while the app's background tasks (sweeper, lockout watcher) do not.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from bench.servers import BenchError
from bench.world import CREATE, PENDING, RESOURCE_ROOT, World

SQL_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")

_measuring: contextvars.ContextVar[bool] = contextvars.ContextVar("bench_measuring", default=False)


class _StatementLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not _measuring.get():
            return
        message = record.getMessage().lstrip()
        if message[:6].upper().startswith(SQL_VERBS):
            self.statements.append(message)


@contextmanager
def _statement_log() -> Iterator[_StatementLog]:
    logger = logging.getLogger("tortoise.db_client")
    handler = _StatementLog()
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _short(statement: str) -> str:
    """The statement without its bound values, cut to a readable length."""
    text = " ".join(statement.split(": [")[0].split())
    return text if len(text) <= 160 else text[:157] + "..."


async def _call(client: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise BenchError(f"in-process GraphQL call failed: {body}")
    return body["data"]


def in_process_app(database_url: str) -> Any:
    """The app on `database_url`, run in this process with no background
    noise (no rate limit, no sweeps), for measurements that count or time
    single calls."""
    from lockbox.app import create_app
    from lockbox.settings import Settings

    return create_app(
        Settings(
            database_url=database_url,
            broker_url="memory://",
            rate_limit_per_second=0,
            sweep_interval_seconds=3600,
            lockout_poll_seconds=3600,
        )
    )


async def measure(
    database_url: str, world: World, *, pending: int, pages: tuple[int, ...]
) -> dict[str, Any]:
    """Create `pending` pending requests, then count statements per page size."""
    app = in_process_app(database_url)
    result: dict[str, Any] = {"pending_requests": pending}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            engineers = ("engineer-alice", "engineer-bob")
            for i in range(pending):
                await _call(
                    client,
                    world.token(engineers[i % 2]),
                    CREATE,
                    ticket=world.ticket("contoso-ticket"),
                    resources=[f"{RESOURCE_ROOT}/pending{i}"],
                    why=f"benchmark: pending {i}",
                )
            admin = world.token("contoso-admin")
            await _call(client, admin, PENDING, first=1)  # warm caches and imports
            with _statement_log() as log:
                for first in pages:
                    log.statements.clear()
                    token = _measuring.set(True)
                    try:
                        data = await _call(client, admin, PENDING, first=first)
                    finally:
                        _measuring.reset(token)
                    edges = data["pendingRequests"]["edges"]
                    if len(edges) < min(first, pending):
                        raise BenchError(f"pendingRequests(first: {first}) gave {len(edges)}")
                    result[f"statements_first_{first}"] = len(log.statements)
                    result[f"sql_first_{first}"] = [_short(s) for s in log.statements]
    return result


def main() -> None:
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(
        measure(
            spec["database_url"],
            World(spec["world"]),
            pending=int(spec["pending"]),
            pages=tuple(int(p) for p in spec["pages"]),
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
