"""Shared fixtures.

The suite runs against one stack per pytest run, chosen by LOCKBOX_TEST_STACK:
`sqlite` (the default: SQLite and the in-process broker) or `postgres`
(LOCKBOX_TEST_POSTGRES_URL, with Redis at LOCKBOX_TEST_REDIS_URL when set).
`make test` runs it once per available stack. One stack per process because
tortoise caches compiled queries per connection name, not per dialect.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from lockbox.app import create_app
from lockbox.clock import ManualClock
from lockbox.domain.policy import Actor
from lockbox.realtime.broker import broker_from_url
from lockbox.realtime.hub import Hub
from lockbox.services import demo_world
from lockbox.services.auth import actor_of
from lockbox.services.deps import Deps
from lockbox.settings import Settings
from lockbox.store import config as db
from lockbox.store import queries as store
from tests.support import GraphQLHttp, LiveServer

POSTGRES_URL = os.environ.get("LOCKBOX_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("LOCKBOX_TEST_REDIS_URL")
STACK = os.environ.get("LOCKBOX_TEST_STACK", "sqlite")
if STACK not in ("sqlite", "postgres"):
    raise RuntimeError(f"LOCKBOX_TEST_STACK must be sqlite or postgres, not {STACK!r}")
if STACK == "postgres" and not POSTGRES_URL:
    raise RuntimeError("LOCKBOX_TEST_STACK=postgres needs LOCKBOX_TEST_POSTGRES_URL")


def pytest_report_header() -> str:
    broker = "redis" if STACK == "postgres" and REDIS_URL else "memory"
    return f"lockbox stack: {STACK} database, {broker} broker"


@dataclass(frozen=True)
class Stack:
    name: str
    database_url: str
    broker_url: str


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def pg_admin(statement: str) -> None:
    """Run one statement on the PostgreSQL server (CREATE/DROP DATABASE)."""
    assert POSTGRES_URL is not None
    connection = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(db.migrate(f"sqlite://{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database that each test's database is copied from."""
    assert POSTGRES_URL is not None
    name = f"lockbox_template_{os.getpid()}"
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    asyncio.run(db.migrate(with_database(POSTGRES_URL, name)))
    yield name
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def fresh_stack(
    request: pytest.FixtureRequest, folder: Path, prefix: str = "lockbox_test"
) -> Iterator[Stack]:
    """A fresh, migrated database (and a broker URL), copied from the template."""
    if STACK == "sqlite":
        path = folder / "lockbox.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield Stack("sqlite", f"sqlite://{path}", "memory://")
        return
    assert POSTGRES_URL is not None
    template = request.getfixturevalue("postgres_template")
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    broker = f"{REDIS_URL}?channel=lockbox-test-{name}" if REDIS_URL else "memory://"
    try:
        yield Stack("postgres", with_database(POSTGRES_URL, name), broker)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """A fresh, migrated database (and a broker URL) for one test."""
    with fresh_stack(request, tmp_path) as fresh:
        yield fresh


@pytest.fixture
async def database(stack: Stack) -> AsyncIterator[Stack]:
    """The test's own connection to its database (the server has another)."""
    async with db.database(stack.database_url):
        yield stack


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def deps(database: Stack, clock: ManualClock) -> AsyncIterator[Deps]:
    """Services wired as in the app, with a started broker and a manual clock."""
    services = Deps(clock=clock, broker=broker_from_url(database.broker_url), hub=Hub())
    await services.broker.start(services.hub.deliver, services.hub.resync_all)
    try:
        yield services
    finally:
        await services.broker.close()


@dataclass
class World:
    """The demo world: ids, tokens, and an Actor per principal."""

    raw: dict[str, Any]
    actors: dict[str, Actor]

    def token(self, principal: str) -> str:
        return str(self.raw["principals"][principal]["token"])

    def ticket(self, tenant: str) -> str:
        return str(self.raw["tickets"][f"{tenant}-ticket"]["id"])

    def tenant(self, name: str) -> str:
        return str(self.raw["tenants"][name]["id"])


@pytest.fixture
async def world(deps: Deps) -> World:
    raw = await demo_world.seed(deps)
    actors: dict[str, Actor] = {}
    for name in raw["principals"]:
        principal = await store.principal_by_name(name)
        assert principal is not None
        actors[name] = actor_of(principal)
    return World(raw=raw, actors=actors)


@dataclass
class Live:
    """A running server on the test's database, and clients for it."""

    server: LiveServer
    http: GraphQLHttp
    clock: ManualClock
    stack: Stack

    @property
    def ws_url(self) -> str:
        return self.server.ws_url


def start_server(stack: Stack, clock: ManualClock, **settings: Any) -> LiveServer:
    app = create_app(
        Settings(
            database_url=stack.database_url,
            broker_url=stack.broker_url,
            sweep_interval_seconds=settings.pop("sweep_interval_seconds", 0.05),
            lockout_poll_seconds=settings.pop("lockout_poll_seconds", 0.2),
            **settings,
        ),
        clock=clock,
    )
    return LiveServer(app).start()


@pytest.fixture
async def live(
    request: pytest.FixtureRequest, world: World, database: Stack, clock: ManualClock
) -> AsyncIterator[Live]:
    """The app under uvicorn. Settings to change come in as the fixture's
    parameter: `@pytest.mark.parametrize("live", [{"setting": value}], indirect=True)`."""
    server = start_server(database, clock, **getattr(request, "param", {}))
    http = GraphQLHttp(server.http_url)
    try:
        yield Live(server=server, http=http, clock=clock, stack=database)
    finally:
        await http.aclose()
        await asyncio.to_thread(server.stop)
