"""Automatic persisted queries, as Apollo's link speaks them (contract section
11): an unknown hash answers PersistedQueryNotFound (HTTP 200, so the link
retries with the document), a document sent with its hash is kept and then
served by hash over POST and GET, a hash that does not match is
BAD_USER_INPUT; the cache is bounded, and shared through Redis."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest

from lockbox.api.persisted_queries import MAX_DOCUMENT_BYTES, MemoryDocuments, RedisDocuments
from tests.conftest import REDIS_URL, Live, Stack, World, start_server
from tests.support import GraphQLHttp

ME = "query Me { me { name } }"


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def post(http: GraphQLHttp, token: str, body: dict[str, Any]) -> httpx.Response:
    return await http.client.post(
        http.url,
        json=body,
        headers={
            "Authorization": f"Bearer {token}",
            # Apollo Client's Accept: the strict media type.
            "Accept": "application/graphql-response+json,application/json;q=0.9",
        },
    )


async def get(http: GraphQLHttp, token: str, digest: str) -> httpx.Response:
    return await http.client.get(
        http.url,
        params={"extensions": json.dumps(persisted(digest)), "operationName": "Me"},
        headers={"Authorization": f"Bearer {token}"},
    )


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }


async def test_apollo_protocol_unknown_hash_then_registration_then_by_hash(
    live: Live, world: World
) -> None:
    token = world.token("contoso-admin")
    digest = sha256(ME)

    # 1. The link sends the hash alone: not known yet.
    assert_not_found(await post(live.http, token, {"extensions": persisted(digest)}))
    assert_not_found(await get(live.http, token, digest))
    # 2. It retries with the document and the hash: run, and kept.
    registered = await post(live.http, token, {"query": ME, "extensions": persisted(digest)})
    # 3. From now on the hash alone is enough, over POST and over GET.
    by_post = await post(live.http, token, {"extensions": persisted(digest)})
    by_get = await get(live.http, token, digest)

    expected = {"data": {"me": {"name": "contoso-admin"}}}
    for response in (registered, by_post, by_get):
        assert response.status_code == 200, response.text
        assert response.json() == expected
    # Variables still apply to a persisted document.
    document = "query($n: Int) { pendingRequests(first: $n) { edges { cursor } } }"
    await post(live.http, token, {"query": document, "extensions": persisted(sha256(document))})
    answer = await post(
        live.http, token, {"variables": {"n": 0}, "extensions": persisted(sha256(document))}
    )
    assert answer.json() == {"data": {"pendingRequests": {"edges": []}}}


async def test_a_hash_that_does_not_match_its_document_is_bad_input_and_not_kept(
    live: Live, world: World
) -> None:
    token = world.token("contoso-admin")
    other = sha256("{ __typename }")

    response = await post(live.http, token, {"query": ME, "extensions": persisted(other)})

    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "sha256Hash" in error["message"]
    assert "data" not in response.json()
    # The wrong hash was not stored under either name.
    assert_not_found(await post(live.http, token, {"extensions": persisted(other)}))
    assert_not_found(await post(live.http, token, {"extensions": persisted(sha256(ME))}))


@pytest.mark.parametrize(
    "extension",
    [
        1,
        {"version": 2, "sha256Hash": "0" * 64},
        {"version": 1},
        {"version": 1, "sha256Hash": "abc"},
    ],
    ids=["not-an-object", "version-2", "no-hash", "short-hash"],
)
async def test_a_malformed_persisted_query_extension_is_bad_input(
    live: Live, world: World, extension: object
) -> None:
    response = await post(
        live.http,
        world.token("contoso-admin"),
        {"query": ME, "extensions": {"persistedQuery": extension}},
    )

    assert response.status_code == 400, response.text
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_USER_INPUT"]


async def test_the_process_cache_keeps_the_most_recently_used_documents() -> None:
    documents = MemoryDocuments(max_entries=3)
    for n in range(3):
        await documents.put(f"h{n}", f"document {n}")
    assert await documents.get("h0") == "document 0"  # h0 is now the most recent

    await documents.put("h3", "document 3")

    assert len(documents) == 3
    assert await documents.get("h1") is None  # the least recently used went
    assert [await documents.get(h) for h in ("h0", "h2", "h3")] == [
        "document 0",
        "document 2",
        "document 3",
    ]


async def test_a_document_over_the_size_bound_runs_but_is_not_kept(
    live: Live, world: World
) -> None:
    token = world.token("contoso-admin")
    # Valid, small in tokens, large in bytes: a long comment.
    large = "# " + "x" * MAX_DOCUMENT_BYTES + "\n" + ME

    ran = await post(live.http, token, {"query": large, "extensions": persisted(sha256(large))})

    assert ran.json() == {"data": {"me": {"name": "contoso-admin"}}}
    assert_not_found(await post(live.http, token, {"extensions": persisted(sha256(large))}))


# --- shared through Redis ----------------------------------------------------------------

needs_redis = pytest.mark.skipif(
    REDIS_URL is None, reason="LOCKBOX_TEST_REDIS_URL is not set (Redis-shared cache)"
)


@needs_redis
async def test_a_hash_registered_on_one_process_is_served_by_another(
    database: Stack, world: World, clock: Any
) -> None:
    assert REDIS_URL is not None
    shared = Stack(
        database.name, database.database_url, f"{REDIS_URL}?channel=apq-{uuid.uuid4().hex}"
    )
    first = start_server(shared, clock)
    second = start_server(shared, clock)
    a, b = GraphQLHttp(first.http_url), GraphQLHttp(second.http_url)
    token = world.token("contoso-admin")
    digest = sha256(ME)
    try:
        assert_not_found(await post(b, token, {"extensions": persisted(digest)}))
        await post(a, token, {"query": ME, "extensions": persisted(digest)})
        served = await post(b, token, {"extensions": persisted(digest)})
    finally:
        await a.aclose()
        await b.aclose()
        await asyncio.gather(asyncio.to_thread(first.stop), asyncio.to_thread(second.stop))

    assert served.json() == {"data": {"me": {"name": "contoso-admin"}}}


@needs_redis
async def test_the_redis_cache_is_bounded_and_expires() -> None:
    assert REDIS_URL is not None
    import redis.asyncio as redis

    url = f"{REDIS_URL}?channel=apq-bound-{uuid.uuid4().hex}"
    documents = RedisDocuments(url, max_entries=3, ttl_seconds=60)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for n in range(5):
            document = f"query Q{n} {{ __typename }}"
            await documents.put(sha256(document), document)
        keys = [k async for k in client.scan_iter(match=documents.prefix + "*")]
        stored = [k for k in keys if k.decode() != documents.index]
        ttls = [await client.ttl(k) for k in keys]
        # Another process (no local copy) reads what Redis kept: the newest three.
        other = RedisDocuments(url, max_entries=3, ttl_seconds=60)
        found = [await other.get(sha256(f"query Q{n} {{ __typename }}")) for n in range(5)]
        await other.close()
    finally:
        for key in [k async for k in client.scan_iter(match=documents.prefix + "*")]:
            await client.delete(key)
        await client.aclose()
        await documents.close()

    assert len(stored) == 3
    assert all(0 < ttl <= 60 for ttl in ttls)
    assert found[:2] == [None, None]
    assert found[2:] == [f"query Q{n} {{ __typename }}" for n in (2, 3, 4)]
