"""Scale-out tests need PostgreSQL and Redis: they are skipped on other stacks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent
AVAILABLE = os.environ.get("LOCKBOX_TEST_STACK") == "postgres" and bool(
    os.environ.get("LOCKBOX_TEST_REDIS_URL")
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if AVAILABLE:
        return
    skip = pytest.mark.skip(
        reason="scale-out tests need PostgreSQL and Redis "
        "(LOCKBOX_TEST_STACK=postgres and LOCKBOX_TEST_REDIS_URL)"
    )
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)
