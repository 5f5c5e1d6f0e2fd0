"""Render a broadcast event once per distinct subscription, not once per subscriber.

graphql-core executes a subscription's selection set for every subscriber and
every event. When a thousand dashboards watch one request, that is a thousand
identical executions per event. Activity events are immutable facts, so a
selection of their leaf fields is a pure function of (event, selection,
variables): this executor computes it once and hands the same result to every
subscriber whose subscription is the same document and variables.

Only selections of leaf fields on the root field are shared; anything that
follows a relation (`request { status }`) may change over time and is
executed per subscriber as usual.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any

from graphql import FieldNode, OperationDefinitionNode, OperationType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from lockbox.api.types import ActivityEventType

MAX_ENTRIES = 4096

# (event id, operation node id, variables) -> (operation node, result or task)
_renders: OrderedDict[tuple[int, int, str], tuple[OperationDefinitionNode, Any]] = OrderedDict()


def _leaf_only(operation: OperationDefinitionNode) -> bool:
    """True when the subscription selects only leaf fields of its root field."""
    roots = operation.selection_set.selections
    if len(roots) != 1 or not isinstance(roots[0], FieldNode):
        return False
    selection = roots[0].selection_set
    if selection is None:
        return False
    return all(
        isinstance(node, FieldNode) and node.selection_set is None and not node.directives
        for node in selection.selections
    )


class SharedRenderExecutor(StrawberryGraphQLCoreExecutionContext):
    def execute_operation(self, serially: bool | None = None) -> Any:
        payload = self.root_value
        operation = self.operation
        if (
            not isinstance(payload, ActivityEventType)
            or operation.operation is not OperationType.SUBSCRIPTION
            or not _leaf_only(operation)
        ):
            return super().execute_operation(serially)
        variables = json.dumps(self.variable_values.coerced, sort_keys=True, default=str)
        key = (payload.row.id, id(operation), variables)
        cached = _renders.get(key)
        if cached is not None and cached[0] is operation:
            _renders.move_to_end(key)
            return cached[1]
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            result = asyncio.ensure_future(result)
        _renders[key] = (operation, result)
        if len(_renders) > MAX_ENTRIES:
            _renders.popitem(last=False)
        return result
