"""GraphQL over HTTP as stock clients expect it (contract section 11): the
graphql-http audit, media types, request errors, GET for queries only, and
every refusal a GraphQL error with a code."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Live, World

STOCK = Path(__file__).resolve().parents[2] / "client-examples" / "stock"
AUDIT = STOCK / "audit-http.mjs"

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ME = "{ me { name } }"


def auth(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


async def post(
    live: Live, body: object, *, accept: str | None = None, token: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json", **auth(token)}
    if accept is not None:
        headers["Accept"] = accept
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await live.http.client.post(live.http.url, content=content, headers=headers)


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


# --- the graphql-http audit -------------------------------------------------------------


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_the_graphql_http_audit_passes_every_audit(live: Live) -> None:
    if not (STOCK / "node_modules" / "graphql-http").is_dir():
        pytest.fail("client-examples/stock/node_modules has no graphql-http: run npm ci there")
    process = await asyncio.to_thread(
        subprocess.run,
        ["node", str(AUDIT), live.http.url],
        cwd=STOCK,
        capture_output=True,
        text=True,
        timeout=120,
    )
    results = [json.loads(line) for line in process.stdout.splitlines() if line.strip()]
    failed = [r for r in results if r["status"] != "ok"]

    assert len(results) == 61, process.stderr
    assert failed == [], failed
    assert process.returncode == 0, process.stderr


# --- media types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, JSON),
        ("*/*", JSON),
        (JSON, JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        # Apollo Client's and urql's Accept.
        (f"{GRAPHQL_RESPONSE},{JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
        (f"{GRAPHQL_RESPONSE};q=0", JSON),
    ],
)
async def test_the_answer_is_in_the_media_type_the_client_prefers(
    live: Live, world: World, accept: str | None, media_type: str
) -> None:
    response = await post(live, {"query": ME}, accept=accept, token=world.token("contoso-admin"))

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.json() == {"data": {"me": {"name": "contoso-admin"}}}


REQUEST_ERRORS = [
    ("a document that does not parse", {"query": "{ me {"}, "GRAPHQL_PARSE_FAILED"),
    ("an unknown field", {"query": "{ me { nope } }"}, "GRAPHQL_VALIDATION_FAILED"),
    ("an unknown argument", {"query": "{ me(x: 1) { name } }"}, "GRAPHQL_VALIDATION_FAILED"),
    (
        "a missing required argument",
        {"query": "{ accessRequest { id } }"},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "a variable that does not coerce",
        {
            "query": "query($n: Int) { pendingRequests(first: $n) { edges { cursor } } }",
            "variables": {"n": "many"},
        },
        "BAD_USER_INPUT",
    ),
    (
        "a missing variable",
        {"query": "query($id: ID!) { accessRequest(id: $id) { id } }"},
        "BAD_USER_INPUT",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "code"), REQUEST_ERRORS, ids=[c[0] for c in REQUEST_ERRORS]
)
async def test_a_request_error_is_400_without_data_under_graphql_response_json(
    live: Live, world: World, case: str, body: dict[str, Any], code: str
) -> None:
    token = world.token("contoso-admin")

    strict = await post(live, body, accept=GRAPHQL_RESPONSE, token=token)
    legacy = await post(live, body, accept=JSON, token=token)

    assert strict.status_code == 400, strict.text
    assert strict.headers["content-type"].split(";")[0] == GRAPHQL_RESPONSE
    assert "data" not in strict.json()
    assert codes(strict) == [code]
    # The legacy media type: the same errors, with 200, and no data either.
    assert legacy.status_code == 200, legacy.text
    assert legacy.headers["content-type"].split(";")[0] == JSON
    assert legacy.json() == strict.json()


async def test_a_field_error_keeps_its_data_and_200(live: Live) -> None:
    """Execution started: an error at a path is not a request error."""
    response = await post(live, {"query": "{ __typename me { name } }"}, accept=GRAPHQL_RESPONSE)

    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None  # `me` is non-null: its error nulls the whole answer
    assert codes(response) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["path"] == ["me"]


# --- requests that are not well-formed --------------------------------------------------

NOT_WELL_FORMED: list[tuple[str, bytes]] = [
    ("JSON null", b"null"),
    ("a JSON array", b"[]"),
    ("a JSON string", b'"{ me { name } }"'),
    ("a JSON number", b"1"),
    ("a JSON boolean", b"true"),
    ("not JSON", b'{ "not JSON'),
    ("no body", b""),
    ("a batch", b'[{"query": "{ me { name } }"}]'),
    ("no query", b'{"qeury": "{ me { name } }"}'),
    ("a query that is not a string", b'{"query": {"a": 1}}'),
    ("variables that are not an object", b'{"query": "{ me { name } }", "variables": []}'),
    ("an operationName that is not a string", b'{"query": "{ me { name } }", "operationName": 1}'),
    ("extensions that are not an object", b'{"query": "{ me { name } }", "extensions": "x"}'),
]


@pytest.mark.parametrize(("case", "body"), NOT_WELL_FORMED, ids=[c[0] for c in NOT_WELL_FORMED])
@pytest.mark.parametrize("accept", [None, JSON, GRAPHQL_RESPONSE])
async def test_a_request_that_is_not_well_formed_is_a_400_json_error_with_a_code(
    live: Live, world: World, case: str, body: bytes, accept: str | None
) -> None:
    response = await post(live, body, accept=accept, token=world.token("contoso-admin"))

    assert response.status_code == 400, response.text
    expected = GRAPHQL_RESPONSE if accept == GRAPHQL_RESPONSE else JSON
    assert response.headers["content-type"].split(";")[0] == expected
    assert "data" not in response.json()
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_a_body_that_is_not_json_is_415_with_a_code(live: Live) -> None:
    for content_type in ("text/plain", None):
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = await live.http.client.post(
            live.http.url, content=b'{"query": "{ __typename }"}', headers=headers
        )
        assert response.status_code == 415, response.text
        assert codes(response) == ["BAD_USER_INPUT"]


# --- GET --------------------------------------------------------------------------------

DISABLE = "mutation { setLockboxEnabled(enabled: false) { lockboxEnabled } }"


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_get_runs_queries_and_refuses_mutations_with_405(
    live: Live, world: World, accept: str
) -> None:
    token = world.token("contoso-admin")
    headers = {"Accept": accept, **auth(token)}

    query = await live.http.client.get(live.http.url, params={"query": ME}, headers=headers)
    mutation = await live.http.client.get(live.http.url, params={"query": DISABLE}, headers=headers)

    assert query.status_code == 200
    assert query.json() == {"data": {"me": {"name": "contoso-admin"}}}
    assert mutation.status_code == 405, mutation.text
    assert mutation.headers["allow"] == "POST"
    assert codes(mutation) == ["BAD_USER_INPUT"]
    assert "data" not in mutation.json()
    # Nothing ran.
    tenant = await live.http.data(token, "{ me { tenant { lockboxEnabled } } }")
    assert tenant["me"]["tenant"]["lockboxEnabled"] is True


async def test_other_methods_are_405(live: Live) -> None:
    response = await live.http.client.put(live.http.url, json={"query": ME})

    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


async def test_a_subscription_asked_for_as_one_json_answer_is_a_clear_400(
    live: Live, world: World
) -> None:
    response = await post(
        live,
        {"query": "subscription { accessRequestUpdates { id } }"},
        accept=JSON,
        token=world.token("contoso-admin"),
    )

    assert response.status_code == 400, response.text
    assert codes(response) == ["BAD_USER_INPUT"]
    message = response.json()["errors"][0]["message"]
    assert "WebSocket" in message and "multipart/mixed" in message
    assert "Traceback" not in response.text
