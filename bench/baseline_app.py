"""The baselines: what the same work costs without GraphQL.

A minimal Starlette app, served by uvicorn with the options `lockbox serve`
uses, in its own process, pinned and driven exactly like the real server:

- `POST /authorize`: the gate's essential work through the same ORM and
  database: authenticate the bearer token (one indexed select, as Lockbox
  does), then in one transaction read and lock the request row, check
  engineer, status, window and resource, take the next activity number and
  insert an ActivityEvent row. JSON in, JSON out; no GraphQL.
- `WS /graphql`: a bare WebSocket endpoint that speaks just enough of
  graphql-transport-ws (ack, subscribe, ping) for the same client to connect
  to it, and adds each subscribed socket to one broadcast set.
- `POST /broadcast`: inserts nothing; answers, then sends one event, rendered
  once, to every subscribed socket (each message carries that socket's
  operation id, as a GraphQL server's would).
- `GET /healthz`: the trivial endpoint.

Run: `python -m bench.baseline_app --port P --database-url URL`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from tortoise.transactions import in_transaction

from lockbox.store import config as db
from lockbox.store.models import AccessRequest, ActivityEvent, ApiToken

SUBPROTOCOL = "graphql-transport-ws"


def uvicorn_options() -> dict[str, Any]:
    """The uvicorn options of `lockbox serve`, so both run the same server stack."""
    try:
        from lockbox.app import UVICORN_OPTIONS
    except ImportError:  # older servers passed the options inline
        return {"ws": "websockets-sansio"}
    return dict(UVICORN_OPTIONS)


def _within(path: str, root: str) -> bool:
    p, r = path.strip("/").split("/"), root.strip("/").split("/")
    return p[: len(r)] == r


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Broadcaster:
    """Every subscribed socket and its operation id."""

    def __init__(self) -> None:
        self.sockets: dict[WebSocket, str] = {}
        self.numbers = itertools.count(1)

    async def send(self, event: dict[str, Any]) -> None:
        rendered = json.dumps({"data": {"engineerActivity": event}}, separators=(",", ":"))
        tail = '","type":"next","payload":' + rendered + "}"
        for socket, op_id in list(self.sockets.items()):
            try:
                await socket.send_text('{"id":"' + op_id + tail)
            except Exception:  # a socket that went away meanwhile
                self.sockets.pop(socket, None)


def create_app(database_url: str, pool_min: int, pool_max: int) -> Starlette:
    binding = db.Binding()
    hub = Broadcaster()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with db.database(database_url, pool_min=pool_min, pool_max=pool_max) as context:
            binding.context = context
            try:
                yield
            finally:
                binding.context = None

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def authorize(request: Request) -> JSONResponse:
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret:
            return _error(401, "missing token")
        body = await request.json()
        resource, action = str(body["resource"]), str(body["action"])
        try:
            request_id = uuid.UUID(str(body["requestId"]))
        except ValueError:
            return _error(404, "no such request")
        token = (
            await ApiToken.filter(
                token_hash=hashlib.sha256(secret.strip().encode()).hexdigest(),
                revoked_at__isnull=True,
                principal__disabled_at__isnull=True,
            )
            .select_related("principal")
            .first()
        )
        if token is None:
            return _error(401, "unknown token")
        engineer_id = token.principal.id
        async with in_transaction():
            row = await AccessRequest.select_for_update().get_or_none(id=request_id)
            if row is None or row.engineer_id != engineer_id:
                return _error(404, "no such request")
            now = datetime.now(UTC)
            reason: str | None = None
            if row.status != "APPROVED" or row.access_ends_at is None or now >= row.access_ends_at:
                reason = "not approved"
            elif row.access_starts_at is None or now < row.access_starts_at:
                reason = "window not started"
            elif not any(_within(resource, root) for root in row.resources):
                reason = "outside the request"
            row.activity_seq += 1
            await AccessRequest.filter(id=row.id).update(activity_seq=row.activity_seq)
            event = await ActivityEvent.create(
                request_id=row.id,
                seq=row.activity_seq,
                at=now,
                engineer_id=engineer_id,
                resource=resource,
                action=action,
                allowed=reason is None,
                denial_reason=reason,
            )
        return JSONResponse(
            {"allowed": reason is None, "reason": reason, "event": {"id": str(event.id)}}
        )

    async def broadcast(request: Request) -> JSONResponse:
        body = await request.json()
        number = next(hub.numbers)
        event = {
            "id": str(number),
            "cursor": f"bench-{number}",
            "at": datetime.now(UTC).isoformat(),
            "resource": str(body.get("resource", "")),
            "action": str(body.get("action", "")),
            "allowed": True,
            "denialReason": None,
        }
        return JSONResponse(
            {"event": {"id": event["id"]}, "subscribers": len(hub.sockets)},
            background=BackgroundTask(hub.send, event),
        )

    async def subscriptions(socket: WebSocket) -> None:
        await socket.accept(subprotocol=SUBPROTOCOL)
        try:
            for _ in range(1_000_000):
                message = json.loads(await socket.receive_text())
                kind = message.get("type")
                if kind == "connection_init":
                    await socket.send_text('{"type":"connection_ack"}')
                elif kind == "subscribe":
                    hub.sockets[socket] = str(message["id"])
                elif kind == "ping":
                    await socket.send_text('{"type":"pong"}')
                elif kind == "complete":
                    hub.sockets.pop(socket, None)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.sockets.pop(socket, None)

    async def not_found(request: Request) -> Response:
        return Response(status_code=404)

    return Starlette(
        middleware=[Middleware(db.BindDatabase, binding=binding)],
        routes=[
            Route("/healthz", healthz),
            Route("/authorize", authorize, methods=["POST"]),
            Route("/broadcast", broadcast, methods=["POST"]),
            Route("/graphql", not_found, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", subscriptions),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.baseline_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args(argv)
    pool_min = int(os.environ.get("LOCKBOX_DB_POOL_MIN") or 1)
    pool_max = int(os.environ.get("LOCKBOX_DB_POOL_MAX") or 10)
    app = create_app(args.database_url, pool_min, pool_max)
    with contextlib.suppress(KeyboardInterrupt):
        # log_level "info" (access log on) as `lockbox serve` runs it.
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", **uvicorn_options())


if __name__ == "__main__":
    main()
