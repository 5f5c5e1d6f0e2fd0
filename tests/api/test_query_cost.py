"""Nested fields are batch-loaded: a page costs the same number of SQL
statements whatever its size (no N+1)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request

from lockbox.api.context import Context
from lockbox.api.schema import build_schema
from lockbox.services import admin
from lockbox.services.deps import Deps
from tests.api.helpers import DEV, PROD, seed_request
from tests.conftest import World

PENDING_PAGE = """
query Page($first: Int!) {
  pendingRequests(first: $first) {
    edges { node {
      id
      ticket { title tenant { name } }
      engineer { name tenant { name } }
      tenant { name }
    } }
    pageInfo { hasNextPage }
  }
}
"""

SQL_VERBS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"})


class StatementLog(logging.Handler):
    """Collects the SQL statements tortoise runs in this thread.

    Tortoise's clients log every statement at DEBUG on "tortoise.db_client",
    as `"<sql>: <values>"` (or the bare SQL); the same logger also reports
    connections being opened and closed, which are not statements.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().lstrip()
        verb = message.split(None, 1)[0].upper() if message else ""
        if record.thread == self.thread and verb in SQL_VERBS:
            self.statements.append(message)


@contextmanager
def sql_statements() -> Iterator[list[str]]:
    logger = logging.getLogger("tortoise.db_client")
    handler = StatementLog()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler.statements
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def http_context(deps: Deps, token: str) -> Context:
    """The context the app builds for an HTTP request carrying `token`."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
    }
    return Context(deps=deps, request=Request(scope))


async def test_page_of_pending_requests_costs_the_same_statements_at_any_size(
    deps: Deps, world: World
) -> None:
    tickets = [world.ticket("contoso")] + [
        str((await admin.create_ticket(deps, "contoso", f"incident {n}")).id) for n in range(2)
    ]
    for n in range(60):
        await seed_request(
            deps,
            world,
            engineer=("engineer-alice", "engineer-bob")[n % 2],
            ticket=tickets[n % 3],
            resources=[(PROD, DEV)[n % 4 == 0]],
        )
    schema = build_schema()
    token = world.token("contoso-admin")

    counts: dict[int, int] = {}
    pages: dict[int, Any] = {}
    for first in (5, 50):
        with sql_statements() as statements:
            result = await schema.execute(
                PENDING_PAGE,
                variable_values={"first": first},
                context_value=http_context(deps, token),
            )
        assert result.errors is None, result.errors
        counts[first] = len(statements)
        pages[first] = result.data

    for first, page in pages.items():
        edges = page["pendingRequests"]["edges"]
        assert len(edges) == first
        assert page["pendingRequests"]["pageInfo"]["hasNextPage"] is True
        node = edges[0]["node"]
        assert node["tenant"]["name"] == node["ticket"]["tenant"]["name"] == "contoso"
        assert node["engineer"]["name"].startswith("engineer-")
        assert node["ticket"]["title"]
    titles = {e["node"]["ticket"]["title"] for e in pages[50]["pendingRequests"]["edges"]}
    assert len(titles) == 3
    assert counts[5] == counts[50], counts
    assert 0 < counts[50] <= 10, counts
