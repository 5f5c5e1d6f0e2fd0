"""An approver's page of pending requests at scale, against the admin's.

Finding 9: an APPROVER's `pendingRequests(first: 1)` filtered scopes in
Python over the whole tenant (3.7 s at 20,000 requests; 12 ms for the
admin). In its own process (`python -m bench.approver_scope`, JSON on stdin
and stdout), like bench.query_cost: N pending requests are written straight
into the store (the API caps waiting requests per engineer), then the real
app, in-process behind httpx's ASGI transport, answers `pendingRequests(first:
50)` with the nested fields of bench.world.PENDING for

- contoso-admin (sees every request),
- contoso-approver-prod (its scope covers all but the last 50), and
- contoso-approver-dev (worst case: only the last 50 lie within its scope,
  so the filter passes over every other request of the tenant first).

Each call is timed `repeats` times after one warm-up; the median counts.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.query_cost import _call, in_process_app
from bench.world import PENDING, World

PROD = "/subscriptions/contoso-prod/rg"
DEV = "/subscriptions/contoso-dev/rg"
CALLERS = ("contoso-admin", "contoso-approver-prod", "contoso-approver-dev")
VISIBLE_TO_DEV = 50


async def _seed(world: World, count: int) -> None:
    """`count` pending requests by engineer-alice on the contoso ticket, the
    last VISIBLE_TO_DEV under contoso-dev, the others under contoso-prod;
    each with its request_resource row, as store.insert_request writes them."""
    from lockbox.store.models import AccessRequest, RequestResource, SupportTicket
    from lockbox.store.queries import principal_by_name, transaction

    engineer = await principal_by_name("engineer-alice")
    assert engineer is not None
    ticket = await SupportTicket.get(id=uuid.UUID(world.ticket("contoso-ticket")))
    start = datetime.now(UTC) - timedelta(hours=1)
    batch = 1000
    for first in range(0, count, batch):
        requests: list[AccessRequest] = []
        rows: list[RequestResource] = []
        for i in range(first, min(first + batch, count)):
            root = DEV if i >= count - VISIBLE_TO_DEV else PROD
            path = f"{root}/vm{i}"
            at = start + timedelta(milliseconds=i)
            request = AccessRequest(
                id=uuid.uuid4(),
                tenant_id=ticket.tenant_id,
                ticket_id=ticket.id,
                engineer_id=engineer.id,
                resources=[path],
                justification=f"benchmark: approver scope {i}",
                duration_seconds=3600,
                created_at=at,
                updated_at=at,
                expires_at=at + timedelta(days=4),
            )
            requests.append(request)
            rows.append(RequestResource(request_id=request.id, path=path))
        async with transaction():
            await AccessRequest.bulk_create(requests)
            await RequestResource.bulk_create(rows)


async def _time_callers(client: httpx.AsyncClient, world: World, repeats: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in CALLERS:
        token = world.token(name)
        data = await _call(client, token, PENDING, first=50)  # warm-up
        edges = len(data["pendingRequests"]["edges"])
        times: list[float] = []
        for _ in range(repeats):
            started = time.perf_counter()
            await _call(client, token, PENDING, first=50)
            times.append((time.perf_counter() - started) * 1000)
        result[name] = {
            "edges": edges,
            "median_ms": round(statistics.median(times), 2),
            "min_ms": round(min(times), 2),
            "max_ms": round(max(times), 2),
        }
    admin = result["contoso-admin"]["median_ms"]
    for name in CALLERS[1:]:
        result[name]["ratio"] = round(result[name]["median_ms"] / admin, 2) if admin else None
    return result


async def _analyze() -> None:
    """What PostgreSQL's autovacuum does within a minute of a bulk load
    (20,000 rows is far past its threshold of 50 + 10 %): without it, the
    planner believes the tables empty."""
    from tortoise import connections

    await connections.get("default").execute_script(
        "ANALYZE access_request; ANALYZE request_resource"
    )


async def measure(
    database_url: str, world: World, *, requests: int, repeats: int
) -> dict[str, Any]:
    app = in_process_app(database_url)
    result: dict[str, Any] = {"requests": requests, "first": 50, "repeats": repeats}
    postgres = database_url.startswith(("postgres://", "postgresql://"))
    async with app.router.lifespan_context(app):
        started = time.perf_counter()
        await _seed(world, requests)
        result["seed_seconds"] = round(time.perf_counter() - started, 2)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            if postgres:
                # Right after the bulk load, before statistics: kept for
                # comparison, the headline figures are those after ANALYZE.
                result["before_analyze"] = await _time_callers(client, world, repeats)
                await _analyze()
                result["analyzed"] = True
            result.update(await _time_callers(client, world, repeats))
    return result


def main() -> None:
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(
        measure(
            spec["database_url"],
            World(spec["world"]),
            requests=int(spec["requests"]),
            repeats=int(spec.get("repeats", 5)),
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
