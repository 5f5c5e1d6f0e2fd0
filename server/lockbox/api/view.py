"""The ASGI GraphQL endpoint: HTTP, both WebSocket sub-protocols, GraphiQL.

GraphiQL is our own page (`lockbox/static/graphiql`), served with the pages'
security headers; its assets come from Lockbox too (`pages.graphiql_assets`).
With it turned off, a browser's GET is answered as strawberry does: 404.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from lockbox.api import pages
from lockbox.api.client_address import IPNetwork, scope_client_address
from lockbox.api.context import Context
from lockbox.api.operations import (
    MAX_CLOSE_REASON_BYTES,
    LegacyWSHandler,
    SocketRefused,
    TransportWSHandler,
)
from lockbox.api.schema import build_schema
from lockbox.api.sockets import RETRY_AFTER_SECONDS, SocketLimits
from lockbox.domain.errors import RateLimited, Unauthenticated
from lockbox.services.deps import Deps

log = logging.getLogger(__name__)


def _too_many_sockets(what: str) -> RateLimited:
    return RateLimited(
        f"too many open sockets {what}; retry in {RETRY_AFTER_SECONDS} s",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )


class WebSocketAdapter(ASGIWebSocketAdapter):
    """strawberry's socket, for what a hostile client can make of it.

    uvicorn closes a socket itself on a protocol error (a text frame that is
    not UTF-8: 1007), and then answers the app's next send or close with a
    RuntimeError, not a disconnect: a traceback when the app was busy (an
    authentication) as the bad frame came in. Here that socket is gone, as
    any other closed socket.
    """

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await super().send_json(message)
        except RuntimeError as exc:  # closed already
            raise WebSocketDisconnected from exc

    async def close(self, code: int, reason: str) -> None:
        """A close reason is at most 123 bytes of UTF-8 (RFC 6455). The stock
        handlers put the client's own text in some (an unknown message type,
        a duplicate id, a syntax error): a lone surrogate or a long one was
        an exception in the middle of closing."""
        cut = reason.encode("utf-8", "replace")[:MAX_CLOSE_REASON_BYTES]
        with contextlib.suppress(RuntimeError):  # closed already
            await super().close(code, cut.decode("utf-8", "ignore"))


class LockboxGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = WebSocketAdapter
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self,
        deps: Deps,
        *,
        graphiql: bool,
        trusted_proxies: Sequence[IPNetwork] = (),
        sockets: SocketLimits | None = None,
        max_subscriptions: int = 100,
    ) -> None:
        super().__init__(
            build_schema(),
            graphql_ide="graphiql" if graphiql else None,
            # Every operation a socket runs at once (api.operations answers the
            # one over with BAD_USER_INPUT); 0: no limit.
            max_subscriptions_per_connection=max_subscriptions or None,
        )
        self.deps = deps
        self.trusted_proxies = tuple(trusted_proxies)
        self.sockets = sockets or SocketLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        # A socket holds a slot for its address from the moment it opens, and
        # one for its principal from connection_init; both go back however it ends.
        websocket = WebSocket(scope, receive=receive, send=send)
        address = scope_client_address(scope, self.trusted_proxies)
        if not self.sockets.per_address.acquire(address):
            log.warning("refused a WebSocket from %s: too many open sockets", address)
            await self._refuse(websocket, SocketRefused(_too_many_sockets("from this address")))
            return
        context = Context(deps=self.deps, request=websocket, client_address=address)
        try:
            await self.run(websocket, context=context)
        finally:
            self.sockets.per_address.release(address)
            if context.socket_principal is not None:
                self.sockets.per_principal.release(context.socket_principal)

    async def _refuse(self, websocket: WebSocket, refusal: SocketRefused) -> None:
        """Refuse a socket before connection_init: accepted, then closed with
        the error (the legacy protocol's `connection_error` first), so that a
        browser's client sees the code and the retry hint."""
        subprotocol = await self.pick_websocket_subprotocol(websocket)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):  # already gone
            await websocket.accept(subprotocol=subprotocol)
            if subprotocol == GRAPHQL_WS_PROTOCOL:
                await websocket.send_json({"type": "connection_error", "payload": refusal.error})
            await websocket.close(code=refusal.code, reason=refusal.reason)

    def decode_json(self, data: str | bytes) -> object:
        """A request body or WebSocket frame: a JSON object. Anything else is
        a JSONDecodeError, which strawberry answers as a client's error (HTTP
        400; graphql-transport-ws close 4400; ignored on graphql-ws). The
        stock method let invalid UTF-8, integers over 4,300 digits, nesting
        past the recursion limit, and bodies that are not objects (`null`,
        `[]`) through as faults."""
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise json.JSONDecodeError(f"not JSON ({type(exc).__name__})", "", 0) from None
        if not isinstance(value, dict):
            raise json.JSONDecodeError("not a JSON object", "", 0)
        return value

    async def render_graphql_ide(self, request: Request) -> Response:
        return pages.page(pages.GRAPHIQL_PAGE, request, pages.GRAPHIQL_STYLE_HASHES)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(
            deps=self.deps,
            request=request,
            client_address=scope_client_address(request.scope, self.trusted_proxies),
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate the socket (counted against the rate limits) and take
        its principal's slot: a bad token is refused (4403), a limit is
        RATE_LIMITED (4429 with retryAfterSeconds; each logged once where
        it is decided, never with a traceback)."""
        try:
            actor = await context.actor()
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": exc.message}) from None
        except RateLimited as exc:
            raise SocketRefused(exc) from None
        if not self.sockets.per_principal.acquire(actor.id):
            log.warning("refused a WebSocket of %s: too many open sockets", actor.name)
            raise SocketRefused(_too_many_sockets("for this principal"))
        context.socket_principal = actor.id
        return {"principal": actor.name}
