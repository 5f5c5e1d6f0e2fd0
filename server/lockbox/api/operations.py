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
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from graphql import DocumentNode, FieldNode, OperationDefinitionNode, execute_sync, print_ast
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from lockbox.api.context import Context
from lockbox.api.errors import MASKED_ERROR
from lockbox.api.types import ActivityEventType, LockboxInfo
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
        send_text: Callable[[str], Awaitable[None]],
        is_open: Callable[[], bool],
    ) -> None:
        self.prefix = f'{{"id":{json.dumps(operation_id)},"type":"{message_type}","payload":'
        self.send_text = send_text
        self.is_open = is_open

    async def send_payload(self, payload_json: str) -> None:
        if self.is_open():
            await self.send_text(self.prefix + payload_json + "}")


CURRENT_OPERATION: ContextVar[OperationChannel | None] = ContextVar(
    "lockbox_current_operation", default=None
)


def _socket_sender(handler: Any) -> Callable[[str], Awaitable[None]]:
    send_text: Callable[[str], Awaitable[None]] = handler.websocket.ws.send_text
    return send_text


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def run_operation(self, operation: Operation[Context, None]) -> None:
        CURRENT_OPERATION.set(
            OperationChannel(
                operation_id=operation.id,
                message_type="next",
                send_text=_socket_sender(self),
                is_open=lambda: not operation.completed,
            )
        )
        await super().run_operation(operation)


# Close code for a second connection_init (contract section 10; the same as
# graphql-transport-ws uses for "too many initialisation requests").
REINITIALISED = 4429


# Close code when connection_init does not come in time (as graphql-transport-ws).
INIT_TIMEOUT = 4408


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
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
        await super().handle_connection_init(message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        CURRENT_OPERATION.set(
            OperationChannel(
                operation_id=operation_id,
                message_type="data",
                send_text=_socket_sender(self),
                is_open=lambda: operation_id in self.tasks,
            )
        )
        await super().handle_async_results(operation_id, query, operation_name, variables)


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
            for error in result.errors:
                log.error("rendering activity event %s failed: %s", event.id, error)
            return json.dumps({"data": None, "errors": [MASKED_ERROR]})
        return json.dumps({"data": result.data})

    # Interned: thousands of identical subscriptions share one key.
    key = sys.intern(print_ast(operation) + json.dumps(variables, sort_keys=True, default=str))
    return DirectDelivery(render_key=key, render=render, send=channel.send_payload)
