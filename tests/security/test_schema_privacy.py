"""What an unauthenticated caller learns about the server (finding 15): no
schema through introspection, no "Did you mean" hints, and no exception
class names from /readyz. Authenticated callers keep introspection and hints."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from lockbox.app import create_app
from lockbox.settings import Settings
from tests.conftest import Live, World

INTROSPECTION = "{ __schema { queryType { name } types { name } } }"
TYPE = '{ __type(name: "AccessRequest") { fields { name } } }'
TYPO = "{ pendingRequest(first: 1) { edges { node { id } } } }"
ENUM_TYPO = "{ accessRequests(status: [PENDIN]) { edges { node { id } } } }"
VARIABLE_TYPO = (
    "query($s: [AccessRequestStatus!]) { accessRequests(status: $s) { pageInfo { hasNextPage } } }"
)


async def _post(
    live: Live, query: str, token: str | None, **variables: object
) -> dict[str, object]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = await live.http.client.post(
        live.http.url, json={"query": query, "variables": variables}, headers=headers
    )
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("query", [INTROSPECTION, TYPE])
async def test_introspection_is_open_the_schema_is_public(
    live: Live, world: World, query: str
) -> None:
    """The schema ships with the project (schema/schema.graphql); GraphiQL
    loads its documentation before a token is typed."""
    for token in (None, world.token("engineer-alice")):
        body = await _post(live, query, token)
        assert not body.get("errors"), body
        assert body["data"]


@pytest.mark.parametrize("query", [TYPO, ENUM_TYPO])
async def test_no_suggestions_without_a_token(live: Live, world: World, query: str) -> None:
    anonymous = await _post(live, query, None)
    assert anonymous.get("errors"), anonymous
    assert "Did you mean" not in str(anonymous)
    assert "pendingRequests" not in str(anonymous) and "'PENDING'" not in str(anonymous)
    # The same document with a token keeps its hint (and the hint-free
    # answer above did not change the cached validation result).
    known = await _post(live, query, world.token("contoso-admin"))
    assert "Did you mean" in str(known), known
    again = await _post(live, query, None)
    assert "Did you mean" not in str(again)


async def test_no_suggestions_in_variable_errors_without_a_token(live: Live, world: World) -> None:
    anonymous = await _post(live, VARIABLE_TYPO, None, s=["PENDIN"])
    assert anonymous.get("errors"), anonymous
    assert "Did you mean" not in str(anonymous)
    known = await _post(live, VARIABLE_TYPO, world.token("contoso-admin"), s=["PENDIN"])
    assert "Did you mean" in str(known), known


async def test_readyz_names_no_exception_class(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without Lockbox's tables: the ping fails with a driver error.
    app = create_app(
        Settings(
            database_url=f"sqlite://{tmp_path / 'empty.db'}",
            broker_url="memory://",
            sweep_interval_seconds=3600,
            lockout_poll_seconds=3600,
        )
    )
    with caplog.at_level(logging.WARNING, logger="lockbox"):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                answers = [await client.get("/readyz") for _ in range(3)]
    for answer in answers:
        assert answer.status_code == 503
        assert answer.json()["database"] == "unreachable"
        assert "Error" not in answer.text and "(" not in answer.text
    logged = [r.getMessage() for r in caplog.records if "readiness" in r.getMessage()]
    assert len(logged) == 1 and "OperationalError" in logged[0], logged
