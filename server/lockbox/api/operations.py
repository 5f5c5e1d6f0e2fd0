"""Which subscription operation, on which socket, a resolver is serving.

strawberry's WebSocket protocol handlers are extended to note the current
operation (an `OperationChannel`) before its resolver runs. From it,
`direct_delivery(info)` builds the realtime.direct.DirectDelivery that lets
the request's feed render an `engineerActivity` event once per distinct
subscription and write the frame to every such socket itself, once the
subscriber has caught up and its selection is leaf fields only (immutable
facts of the event, so one rendering serves every caller).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute_sync,
    get_operation_ast,
    parse,
    print_ast,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult, PreExecutionError

from lockbox.api.context import Context, begin_operation
from lockbox.api.errors import masked_error
from lockbox.api.types import ActivityEventType, LockboxInfo
from lockbox.domain.errors import LockboxError
from lockbox.observability import logs
from lockbox.realtime.direct import DirectDelivery
from lockbox.store.models import ActivityEvent

log = logging.getLogger(__name__)


class OperationChannel:
    """One subscription operation on one socket."""

    __slots__ = ("is_open", "prefix", "send_text")

    def __init__(
        self,
        operation_id: str,
        message_type: str,  # "next" (graphql-transport-ws) or "data" (graphql-ws)
        send_text: Callable[[str], Coroutine[Any, Any, None]],
        is_open: Callable[[], bool],
    ) -> None:
        self.prefix = f'{{"id":{json.dumps(operation_id)},"type":"{message_type}","payload":'
        self.send_text = send_text
        self.is_open = is_open

    def send_payload(self, payload_json: str) -> Coroutine[Any, Any, None]:
        """The socket write itself, not a coroutine around it: the feed makes
        one such call per subscriber per event."""
        if self.is_open():
            return self.send_text(self.prefix + payload_json + "}")
        return _sent_nothing()


async def _sent_nothing() -> None:
    return None


CURRENT_OPERATION: ContextVar[OperationChannel | None] = ContextVar(
    "lockbox_current_operation", default=None
)


def _socket_sender(handler: Any) -> Callable[[str], Coroutine[Any, Any, None]]:
    send_text: Callable[[str], Coroutine[Any, Any, None]] = handler.websocket.ws.send_text
    return send_text


# Close code when a socket is refused for a limit (a rate limit, too many
# sockets): the reason carries the error, with retryAfterSeconds.
TOO_MANY = 4429

# The most a WebSocket close reason may hold (RFC 6455: 125 bytes of control
# frame payload, 2 of them the code).
MAX_CLOSE_REASON_BYTES = 123


class SocketRefused(Exception):
    """A socket refused for a limit, before or at `connection_init`: closed
    with `code` and the error in the close reason (legacy protocol: first a
    `connection_error` whose payload is the error)."""

    def __init__(self, error: LockboxError, code: int = TOO_MANY) -> None:
        super().__init__(error.message)
        self.code = code
        self.error: dict[str, object] = {"message": error.message, "extensions": error.extensions}

    @property
    def reason(self) -> str:
        reason = json.dumps(self.error, separators=(",", ":"))
        if len(reason.encode()) > MAX_CLOSE_REASON_BYTES:
            reason = json.dumps({"extensions": self.error["extensions"]}, separators=(",", ":"))
        return reason


def _too_many_subscriptions(limit: int) -> dict[str, object]:
    log.warning("refused a subscription over the limit of %d on one socket", limit)
    return {
        "message": f"a socket may run at most {limit} operations at once",
        "extensions": {"code": "BAD_USER_INPUT"},
    }


# A frame that is JSON but not a message the protocol defines is closed
# with 4400 (graphql-transport-ws's "bad request"); the legacy protocol,
# which has no such code, answers an `error` frame instead.
BAD_MESSAGE = 4400


def malformed(message: object, start: str, stop: str) -> str | None:
    """Why a client's frame cannot be acted on, or None. The stock handlers
    index the message blindly: a frame that is a JSON array, an id that is
    not a string or a payload that is not an object was an unhandled
    exception (a traceback per frame)."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "a message must be a JSON object with a string type"
    kind = message["type"]
    if kind in (start, stop) and not isinstance(message.get("id"), str):
        return f"a {kind} message needs a string id"
    if kind == start:
        payload = message.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return f"a {kind} message needs a payload with a string query"
        if not isinstance(payload.get("variables"), dict | None):
            return f"the variables of a {kind} message must be an object"
        if not isinstance(payload.get("operationName"), str | None):
            return f"the operationName of a {kind} message must be a string"
    return None


def _is_request_error(result: object, query: str, operation_name: str | None) -> bool:
    """The result of a query or mutation that never ran: no data, and errors
    about the request itself, none at a path (a variable that does not
    coerce). HTTP answers it as a request error (4xx); the sockets answer it
    with an `error` frame, as a document that fails validation, instead of a
    `next`/`data` frame. (strawberry yields a subscription's refusals, and
    a refusing limit's, as PreExecutionError already.)"""
    if not (
        isinstance(result, ExecutionResult)
        and not isinstance(result, PreExecutionError)
        and result.data is None
        and result.errors
        and all(error.path is None for error in result.errors)
    ):
        return False
    # A subscription's first result may also be its last, an error once it
    # has run (a revoked token) when the feed wrote its events to the socket
    # itself: an event, not a refusal. Parsed again only on this rare path.
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLError:
        return True
    return operation is None or operation.operation != OperationType.SUBSCRIPTION


async def _request_errors_first(
    results: AsyncIterator[Any], query: str, operation_name: str | None
) -> AsyncGenerator[Any, None]:
    first = True
    async for result in results:
        if first and _is_request_error(result, query, operation_name):
            result = PreExecutionError(
                data=None, errors=result.errors, extensions=result.extensions
            )
        first = False
        yield result


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    @staticmethod
    def _get_pre_execution_close_reason(error: Any) -> str | None:
        """Never close for a bad document: the stock handler closed the whole
        socket (4400) for a syntax error or an unknown operationName, ending
        every other operation a client multiplexes on it, and the reason had
        no code. Such a document gets its `error` frame with a code, as a
        validation error does (GRAPHQL_PARSE_FAILED, BAD_USER_INPUT)."""
        return None

    async def handle_message(self, message: Any) -> None:
        why = malformed(message, "subscribe", "complete")
        if why is not None:
            await self.websocket.close(code=BAD_MESSAGE, reason=why)
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except SocketRefused as refusal:
            await self.websocket.close(code=refusal.code, reason=refusal.reason)

    async def handle_subscribe(self, message: Any) -> None:
        """Over LOCKBOX_WS_MAX_SUBSCRIPTIONS: an error frame with a code (the
        stock one has none)."""
        limit = self.max_subscriptions_per_connection
        if (
            limit is not None
            and self.connection_acknowledged
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            error = _too_many_subscriptions(limit)
            await self.websocket.send_json(
                {"id": message["id"], "type": "error", "payload": [error]}
            )
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        begin_operation()
        logs.start_operation()  # its own request id, in its log lines and errors
        CURRENT_OPERATION.set(
            OperationChannel(
                operation_id=operation.id,
                message_type="next",
                send_text=_socket_sender(self),
                is_open=lambda: not operation.completed,
            )
        )
        await super().run_operation(operation)

    async def _send_result_stream(
        self, operation: Operation[Context, None], result_source: Any
    ) -> None:
        refusals_first = _request_errors_first(
            result_source, operation.query, operation.operation_name
        )
        async with aclosing(refusals_first) as results:
            await super()._send_result_stream(operation, results)


# Close code for a second connection_init (contract section 10; the same as
# graphql-transport-ws uses for "too many initialisation requests").
REINITIALISED = TOO_MANY


# Close code when connection_init does not come in time (as graphql-transport-ws).
INIT_TIMEOUT = 4408


# What a client may send on the legacy protocol (subscriptions-transport-ws).
LEGACY_CLIENT_MESSAGES = ("connection_init", "start", "stop", "connection_terminate")

# Close code for an operation started before connection_init (as graphql-transport-ws).
UNAUTHORIZED = 4401


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy protocol, which has no close codes of its own: whatever a
    client gets wrong is answered with an `error` frame with a code (the stock
    handler ignored frames that are not JSON objects and messages of unknown
    types, and refused queries and mutations)."""

    async def handle_message(self, message: Any) -> None:
        why = malformed(message, "start", "stop")
        if why is None and message["type"] not in LEGACY_CLIENT_MESSAGES:
            why = f"unknown message type {message['type'][:40]!r}"
        if why is not None:
            await self._send_error(message, why, "BAD_USER_INPUT")
            return
        await super().handle_message(message)

    async def _send_error(self, message: Any, why: str, code: str) -> None:
        error: dict[str, Any] = {
            "type": "error",
            "payload": {"message": why, "extensions": {"code": code}},
        }
        if isinstance(message, dict) and isinstance(message.get("id"), str):
            error["id"] = message["id"]
        await self.send_message(error)  # type: ignore[arg-type]

    async def handle(self) -> None:
        # The legacy protocol has no init timeout of its own: a socket that
        # never says who it is would stay open for ever.
        deadline = asyncio.create_task(self._require_init())
        try:
            await super().handle()
        finally:
            deadline.cancel()

    async def _require_init(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self.connection_acknowledged:
            await self.send_message(
                {
                    "type": "connection_error",
                    "payload": {"message": "connection_init not received in time"},
                }
            )
            await self.websocket.close(
                code=INIT_TIMEOUT, reason="Connection initialisation timeout"
            )

    async def handle_connection_init(self, message: Any) -> None:
        """A socket's identity is set once. The legacy protocol's stock
        handler would take a second connection_init with another token and
        change who the open subscriptions run as."""
        if self.connection_acknowledged:
            await self.send_message(
                {
                    "type": "connection_error",
                    "payload": {"message": "the connection is already initialised"},
                }
            )
            await self.websocket.close(
                code=REINITIALISED, reason="Too many initialisation requests"
            )
            return
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            # The stock refusal said nothing (connection_error with no payload).
            await self.send_message(
                {
                    "type": "connection_error",
                    "payload": {
                        "message": "the connection_init payload must be an object",
                        "extensions": {"code": "BAD_USER_INPUT"},
                    },
                }
            )
            await self.websocket.close(code=BAD_MESSAGE, reason="Invalid connection init payload")
            return
        try:
            await super().handle_connection_init(message)
        except SocketRefused as refusal:
            await self.send_message({"type": "connection_error", "payload": refusal.error})
            await self.websocket.close(code=refusal.code, reason=refusal.reason)

    async def handle_start(self, message: Any) -> None:
        """Before connection_init: UNAUTHENTICATED, then the socket is closed
        (the stock handler closed it with no word). Over
        LOCKBOX_WS_MAX_SUBSCRIPTIONS: an error frame with a code (the stock one
        has none). A restarted id replaces its operation, as the protocol has it."""
        if not self.connection_acknowledged:
            await self._send_error(message, "send connection_init first", "UNAUTHENTICATED")
            await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized")
            return
        if message["id"] in self.tasks:
            await self._stop(message["id"])
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.tasks) >= limit:
            error = _too_many_subscriptions(limit)
            await self.websocket.send_json({"type": "error", "id": message["id"], "payload": error})
            return
        await super().handle_start(message)

    async def handle_stop(self, message: Any) -> None:
        """A stop is confirmed with `complete` (the stock handler confirmed it
        only for an operation still running; an unknown id got silence)."""
        await self._stop(message["id"])

    async def _stop(self, operation_id: str) -> None:
        """Cancels the operation, if it runs, and confirms with `complete`.
        The confirmation is sent here, not by the operation's task: a task
        cancelled before its first step never runs its own handlers, which
        happens when a start and its stop arrive in one read."""
        await self.cleanup_operation(operation_id)
        await self.send_message({"type": "complete", "id": operation_id})

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """Any operation, as the protocol allows: a query or mutation is one
        `data` then `complete`, a subscription a `data` per event. The stock
        handler ran subscriptions only (`schema.subscribe`); the rest of its
        bookkeeping is kept as it was."""
        begin_operation()
        logs.start_operation()  # its own request id, in its log lines and errors
        CURRENT_OPERATION.set(
            OperationChannel(
                operation_id=operation_id,
                message_type="data",
                send_text=_socket_sender(self),
                is_open=lambda: operation_id in self.tasks,
            )
        )
        try:
            results = await self.schema.stream(
                query=query,
                variable_values=variables,
                operation_name=operation_name,
                context_value=self.context,
                root_value=self.root_value,
            )
            self.subscriptions[operation_id] = results
            first = True
            async for result in results:
                refused = isinstance(result, PreExecutionError) or _is_request_error(
                    result, query, operation_name
                )
                if first and refused:
                    assert isinstance(result, ExecutionResult) and result.errors
                    # The protocol's `error` carries one error: the first.
                    error = result.errors[0].formatted
                    await self.send_message({"type": "error", "id": operation_id, "payload": error})
                    return
                if not isinstance(result, ExecutionResult):
                    # Incremental delivery (@defer, @stream) has no frame here.
                    await self._send_error(
                        {"id": operation_id},
                        "incremental delivery is not supported over graphql-ws",
                        "BAD_USER_INPUT",
                    )
                    return
                await self.send_data_message(result, operation_id)
                first = False
            await self.send_message({"type": "complete", "id": operation_id})
        finally:  # also when stopped (`_stop` confirms it) or the socket closed
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)


def _leaf_only(operation: OperationDefinitionNode) -> bool:
    roots = operation.selection_set.selections
    if len(roots) != 1 or not isinstance(roots[0], FieldNode) or roots[0].directives:
        return False
    selection = roots[0].selection_set
    return selection is not None and all(
        isinstance(node, FieldNode) and node.selection_set is None and not node.directives
        for node in selection.selections
    )


def direct_delivery(info: LockboxInfo) -> DirectDelivery | None:
    """How the feed may write this subscription's events, if it may."""
    channel = CURRENT_OPERATION.get()
    operation = info.operation
    if channel is None or not _leaf_only(operation):
        return None
    document = DocumentNode(definitions=(operation,))
    variables = dict(info.variable_values)
    schema = info.schema._schema  # the graphql-core schema strawberry built
    context = info.context

    def render(event: ActivityEvent) -> str:
        result = execute_sync(
            schema,
            document,
            root_value=ActivityEventType(row=event),
            context_value=context,
            variable_values=variables,
        )
        if result.errors:
            # Rendered once for many subscribers, in the feed's task: an id
            # of its own, in the log line and in the error each of them gets.
            request_id = logs.new_request_id()
            for error in result.errors:
                log.error(
                    "rendering activity event %s failed: %s",
                    event.id,
                    error,
                    extra={"request_id": request_id},
                )
            return json.dumps({"data": None, "errors": [masked_error(request_id)]})
        return json.dumps({"data": result.data})

    # Interned: thousands of identical subscriptions share one key.
    key = sys.intern(print_ast(operation) + json.dumps(variables, sort_keys=True, default=str))
    return DirectDelivery(render_key=key, render=render, send=channel.send_payload)
