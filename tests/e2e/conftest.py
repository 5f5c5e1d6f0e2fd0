"""Fixtures for the end-to-end tests of the `lockbox` command."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL, STACK, Stack, pg_admin, with_database
from tests.e2e.cli_support import Lockbox


@pytest.fixture
def lockbox(tmp_path: Path) -> Lockbox:
    """The installed `lockbox` script, run in the test's scratch folder."""
    return Lockbox(tmp_path)


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[Stack]:
    """A database nobody has migrated: a new SQLite file, or a new PostgreSQL database."""
    if STACK == "sqlite":
        yield Stack("sqlite", f"sqlite://{tmp_path / 'empty.db'}", "memory://")
        return
    assert POSTGRES_URL is not None
    name = f"lockbox_empty_{uuid.uuid4().hex[:16]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    broker = f"{REDIS_URL}?channel=lockbox-test-{name}" if REDIS_URL else "memory://"
    try:
        yield Stack("postgres", with_database(POSTGRES_URL, name), broker)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
