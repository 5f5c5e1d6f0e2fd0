"""Automatic persisted queries, as Apollo's clients speak them.

A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": H}`
and no `query`. If H is known, the document it names runs; if not, the
answer is the error `PersistedQueryNotFound` (code PERSISTED_QUERY_NOT_FOUND,
HTTP 200 so that Apollo's link retries at once with the document and the
hash). A document sent with a hash is stored under it only if the hash is
its SHA-256; one that does not match is BAD_USER_INPUT.

The store is bounded twice over: by count (least recently used goes first)
and by document size (a larger document still runs, it just is not kept).
With a Redis broker the documents are also kept in Redis, with a TTL and
under the same count, so that a hash registered on one process is served by
every other; a process keeps its own small LRU in front of it, and runs on
that alone while Redis is away.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Any, Protocol
from urllib.parse import urlsplit

from strawberry.http import GraphQLRequestData

from lockbox.api.over_http import RequestError

log = logging.getLogger(__name__)

# A document over this is run but not kept: the store's memory stays bounded
# at about `max_entries` times this, in each process and in Redis.
MAX_DOCUMENT_BYTES = 32 * 1024

NOT_FOUND = RequestError(
    "PersistedQueryNotFound",
    code="PERSISTED_QUERY_NOT_FOUND",
    # 200 whatever the media type: Apollo's link retries with the document
    # on this answer, and treats a 4xx as a failure of the network.
    status=200,
    json_status=200,
)


class DocumentStore(Protocol):
    async def get(self, sha256: str) -> str | None: ...

    async def put(self, sha256: str, document: str) -> None: ...

    async def close(self) -> None: ...


class MemoryDocuments:
    """This process's least recently used documents, at most `max_entries`."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._documents: OrderedDict[str, str] = OrderedDict()

    async def get(self, sha256: str) -> str | None:
        document = self._documents.get(sha256)
        if document is not None:
            self._documents.move_to_end(sha256)
        return document

    async def put(self, sha256: str, document: str) -> None:
        self._documents[sha256] = document
        self._documents.move_to_end(sha256)
        while len(self._documents) > self.max_entries:
            self._documents.popitem(last=False)

    def __len__(self) -> int:
        return len(self._documents)

    async def close(self) -> None:
        return None


# Store one document and trim the index to its bound, atomically, on Redis's
# clock: KEYS = {document key, index}, ARGV = {document, ttl, max entries}.
# The index orders keys by when they were stored; a key that expired on its
# own is among the oldest, and is trimmed from the index in its turn.
_PUT_SCRIPT = """
local clock = redis.call('TIME')
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(clock[1]) + tonumber(clock[2]) / 1000000, KEYS[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  redis.call('DEL', unpack(oldest))
end
return excess
"""


class RedisDocuments:
    """Documents shared by every process through Redis, with a TTL and at
    most `max_entries` of them, behind this process's own LRU."""

    def __init__(self, url: str, *, max_entries: int, ttl_seconds: int) -> None:
        # Imported here: a deployment on memory:// never loads the client.
        import redis.asyncio as redis

        parts = urlsplit(url)
        self.prefix = f"lockbox:apq:{parts.query}:"
        self.index = self.prefix + "index"
        self.ttl_seconds = max(1, ttl_seconds)
        self.max_entries = max_entries
        self.local = MemoryDocuments(max_entries)
        self._redis: Any = redis.Redis.from_url(
            parts._replace(query="").geturl(), socket_connect_timeout=1, socket_timeout=1
        )
        self._put = self._redis.register_script(_PUT_SCRIPT)
        self._failing = False

    async def get(self, sha256: str) -> str | None:
        document = await self.local.get(sha256)
        if document is not None:
            return document
        try:
            stored = await self._redis.get(self.prefix + sha256)
        except Exception as exc:
            self._unreachable(exc)
            return None
        self._failing = False
        if stored is None:
            return None
        document = stored.decode() if isinstance(stored, bytes) else str(stored)
        # Stored only under its own hash; checked again all the same, since
        # whoever can write Redis is not necessarily trusted with our documents.
        if sha256_of(document) != sha256:
            log.warning("persisted query %s in Redis does not match its hash: ignored", sha256)
            return None
        await self.local.put(sha256, document)
        return document

    async def put(self, sha256: str, document: str) -> None:
        await self.local.put(sha256, document)
        try:
            await self._put(
                keys=[self.prefix + sha256, self.index],
                args=[document, self.ttl_seconds, self.max_entries],
            )
        except Exception as exc:
            self._unreachable(exc)
            return
        self._failing = False

    def _unreachable(self, exc: Exception) -> None:
        if not self._failing:
            log.warning(
                "persisted queries: Redis unreachable (%s); this process's own cache only",
                type(exc).__name__,
            )
        self._failing = True

    async def close(self) -> None:
        await self._redis.aclose()


def documents_for(broker_url: str, *, max_entries: int, ttl_seconds: int) -> DocumentStore:
    """Shared through Redis when the processes share a Redis broker."""
    if urlsplit(broker_url).scheme in ("redis", "rediss"):
        return RedisDocuments(broker_url, max_entries=max_entries, ttl_seconds=ttl_seconds)
    return MemoryDocuments(max_entries)


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()


def _bad(message: str) -> RequestError:
    return RequestError(message, code="BAD_USER_INPUT")


async def resolve(documents: DocumentStore, request: GraphQLRequestData) -> None:
    """Fill in the document of a request that names one by its hash, and
    store a document sent with its hash; raise RequestError when the hash
    is unknown or does not match. A request without the extension is left
    as it is."""
    persisted = (request.extensions or {}).get("persistedQuery")
    if persisted is None:
        return
    if not isinstance(persisted, dict):
        raise _bad("extensions.persistedQuery must be an object")
    if persisted.get("version") != 1:
        raise _bad("extensions.persistedQuery: only version 1 is supported")
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise _bad("extensions.persistedQuery.sha256Hash must be a SHA-256 in hex")
    sha256 = sha256.lower()
    if request.query is None:
        document = await documents.get(sha256)
        if document is None:
            raise NOT_FOUND
        request.query = document
        return
    if sha256_of(request.query) != sha256:
        raise _bad("extensions.persistedQuery.sha256Hash does not match the query")
    if len(request.query.encode("utf-8", "surrogatepass")) <= MAX_DOCUMENT_BYTES:
        await documents.put(sha256, request.query)
