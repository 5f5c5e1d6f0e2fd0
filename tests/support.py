"""Test helpers: real servers on free ports and real GraphQL clients."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from contextlib import suppress
from typing import Any

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette

from lockbox.app import UVICORN_OPTIONS


class LiveServer:
    """A real uvicorn server for `app`, in a thread with its own event loop."""

    def __init__(self, app: Starlette, port: int = 0) -> None:
        """On a free port, or on `port` (a restart where a stopped server was)."""
        self.app = app
        # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for such sockets.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on", **UVICORN_OPTIONS)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self, timeout: float = 15) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        with suppress(OSError):
            self.sock.close()


class GraphQLHttp:
    """GraphQL over HTTP POST, as a client would speak it."""

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/graphql"
        self.client = httpx.AsyncClient(timeout=20)

    async def call(self, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        response = await self.client.post(
            self.url, json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.call(token, query, **variables)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error(self, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.call(token, query, **variables)
        assert body.get("errors"), body
        error: dict[str, Any] = body["errors"][0]
        return error

    async def error_code(self, token: str | None, query: str, **variables: Any) -> str:
        error = await self.error(token, query, **variables)
        return str(error["extensions"]["code"])

    async def aclose(self) -> None:
        await self.client.aclose()


TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


class WsClient:
    """A GraphQL WebSocket client speaking either sub-protocol."""

    def __init__(self, url: str, protocol: str = TRANSPORT_WS) -> None:
        self.url = url
        self.protocol = protocol
        self.ws: Any = None

    async def connect(self, token: str | None, *, expect_ack: bool = True) -> dict[str, Any]:
        self.ws = await websockets.connect(self.url, subprotocols=[self.protocol])  # type: ignore[list-item]
        payload = {} if token is None else {"authorization": f"Bearer {token}"}
        await self.send({"type": "connection_init", "payload": payload})
        reply = await self.receive()
        if expect_ack:
            assert reply["type"] == "connection_ack", reply
        return reply

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") not in ("ka", "ping", "pong"):
                return message

    async def subscribe(self, op_id: str, query: str, **variables: Any) -> None:
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send(
            {"id": op_id, "type": kind, "payload": {"query": query, "variables": variables}}
        )

    async def next_data(self, timeout: float = 10) -> dict[str, Any]:
        """The data of the next result; fails on an error or completion."""
        message = await self.receive(timeout)
        assert message["type"] in ("next", "data"), message
        assert not message["payload"].get("errors"), message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
