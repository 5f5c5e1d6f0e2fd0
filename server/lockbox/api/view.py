"""The ASGI GraphQL endpoint: HTTP, both WebSocket sub-protocols, GraphiQL.

GraphiQL is our own page (`lockbox/static/graphiql`), served with the pages'
security headers; its assets come from Lockbox too (`pages.graphiql_assets`).
With it turned off, a browser's GET is answered as strawberry does: 404.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.exceptions import NonJsonMessageReceived, WebSocketDisconnected
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from lockbox.api import over_http, pages, persisted_queries
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

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        """The legacy protocol's handler asks for frames that are not JSON
        objects to be dropped: the client would wait for an answer that never
        comes. Such a frame comes through as None instead, which the handler
        answers with an error frame (api.operations)."""
        while True:
            try:
                async for message in super().iter_json():
                    yield message
                return
            except NonJsonMessageReceived:
                if not ignore_parsing_errors:
                    raise
            yield None

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
        documents: persisted_queries.DocumentStore | None = None,
        cors_origins: Sequence[str] = (),
        observers: Sequence[type[SchemaExtension]] = (),
    ) -> None:
        super().__init__(
            build_schema(observers),
            graphql_ide="graphiql" if graphiql else None,
            # Subscriptions over HTTP too, as Apollo's HttpLink asks for them
            # (multipart/mixed;subscriptionSpec=1.0): the same resolvers, so
            # the same replay-then-tail, under the sockets' limits (below).
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
            ),
            # The origins LOCKBOX_CORS_ORIGINS lets call over HTTP may open
            # WebSockets too; any other page's handshake is refused (403).
            allowed_origins=cors_origins,
            # Every operation a socket runs at once (api.operations answers the
            # one over with BAD_USER_INPUT); 0: no limit.
            max_subscriptions_per_connection=max_subscriptions or None,
        )
        self.deps = deps
        self.trusted_proxies = tuple(trusted_proxies)
        self.sockets = sockets or SocketLimits()
        self.documents = documents or persisted_queries.MemoryDocuments(1000)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._serve_http(Request(scope, receive=receive), send)
            return
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

    # --- HTTP (api.over_http) -------------------------------------------------------

    async def _serve_http(self, request: Request, send: Send) -> None:
        """Every refusal is a GraphQL error with a code, in the media type the
        client asked for; a subscription streamed over HTTP holds its slots
        (the sockets' limits) until its response ends, however it ends."""
        media_type = over_http.response_media_type(request.headers.get("accept"))
        try:
            try:
                response = await self.run(request)
            except HTTPException as exc:
                raise over_http.from_strawberry(exc) from None
        except over_http.RequestError as error:
            response = error.response(media_type)
        try:
            await response(request.scope, request.receive, send)
        finally:
            address = getattr(request.state, "stream_address", None)
            if address is not None:
                self.sockets.per_address.release(address)
            principal = getattr(request.state, "stream_principal", None)
            if principal is not None:
                self.sockets.per_principal.release(principal)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """Not for a GET that names a persisted query (no `query` either)."""
        has_extensions = request.query_params.get("extensions") is not None
        return not has_extensions and super().should_render_graphql_ide(request)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = over_http.response_media_type(request.headers.get("accept"))
        return sub_response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or over_http.JSON
        body: object = response_data
        status = 200
        if isinstance(response_data, dict):
            result = dict(response_data)
            if media_type == over_http.GRAPHQL_RESPONSE:
                body, status = over_http.graphql_response(result)
            else:
                body = over_http.without_data(result)
        response = Response(self.encode_json(body), status_code=status, media_type=media_type)
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """strawberry's parsing, plus what it lets through (an operationName
        that is not a string), plus persisted queries."""
        parsed = await super().parse_http_body(request)
        if isinstance(parsed, GraphQLRequestData):
            if not isinstance(parsed.operation_name, str | None):
                raise over_http.RequestError(
                    "The GraphQL operation's `operationName` must be a string or null, "
                    "if provided.",
                    code="BAD_USER_INPUT",
                )
            await persisted_queries.resolve(self.documents, parsed)
        return parsed

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """One operation answered with one result: a query (GET or POST) or
        a mutation (POST only: over GET, 405 with `Allow: POST`). A
        subscription streams (multipart, or a WebSocket); asked for a single
        result, it is the client's error, not a fault."""
        allowed = {OperationType.QUERY}
        if request_adapter.method == "POST":
            allowed.add(OperationType.MUTATION)
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type == OperationType.MUTATION:
                raise over_http.RequestError(
                    "mutations are sent with POST",
                    code="BAD_USER_INPUT",
                    status=405,
                    json_status=405,
                    headers={"Allow": "POST"},
                ) from None
            raise over_http.RequestError(
                "a subscription needs a WebSocket (graphql-transport-ws or graphql-ws) "
                "or a streamed HTTP response (Accept: multipart/mixed;subscriptionSpec=1.0)",
                code="BAD_USER_INPUT",
            ) from None
        except CannotGetOperationTypeError as exc:  # no operation by the name given
            raise over_http.RequestError(
                exc.as_http_error_reason(), code="BAD_USER_INPUT"
            ) from None
        except MissingQueryError:
            raise over_http.RequestError(
                "No GraphQL query found in the request", code="BAD_USER_INPUT"
            ) from None

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        if (
            isinstance(request_data, GraphQLRequestData)
            and request_data.protocol == MULTIPART_SUBSCRIPTION_PROTOCOL
        ):
            await self._open_stream(request, context)
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def _open_stream(self, request: Request, context: Context) -> None:
        """A subscription streamed over HTTP is a long-lived connection as a
        WebSocket is: it takes a slot for its address and one for its
        principal (429 with retryAfterSeconds past either), and its caller
        authenticates before anything streams (counted against the rate
        limit once; the resolver reuses the check)."""
        address = context.address
        if not self.sockets.per_address.acquire(address):
            log.warning("refused a streamed subscription from %s: too many open", address)
            raise self._too_many(_too_many_sockets("from this address"))
        request.state.stream_address = address
        try:
            actor = await context.actor()
        except (Unauthenticated, RateLimited) as exc:
            if isinstance(exc, RateLimited):
                raise self._too_many(exc) from None
            raise over_http.RequestError(
                exc.message, code=exc.code, status=401, json_status=401
            ) from None
        if not self.sockets.per_principal.acquire(actor.id):
            log.warning("refused a streamed subscription of %s: too many open", actor.name)
            raise self._too_many(_too_many_sockets("for this principal"))
        request.state.stream_principal = actor.id

    @staticmethod
    def _too_many(error: RateLimited) -> over_http.RequestError:
        return over_http.RequestError(
            error.message,
            code=error.code,
            status=429,
            json_status=429,
            headers={"Retry-After": str(error.retry_after_seconds)},
            extensions={"retryAfterSeconds": error.retry_after_seconds},
        )

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
            # The legacy protocol's connection_error carries it, with its code.
            refusal: dict[str, object] = {"message": exc.message, "extensions": exc.extensions}
            raise ConnectionRejectionError(refusal) from None
        except RateLimited as exc:
            raise SocketRefused(exc) from None
        if not self.sockets.per_principal.acquire(actor.id):
            log.warning("refused a WebSocket of %s: too many open sockets", actor.name)
            raise SocketRefused(_too_many_sockets("for this principal"))
        context.socket_principal = actor.id
        return {"principal": actor.name}
