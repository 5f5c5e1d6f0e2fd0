"""What an unauthenticated caller's errors say about the schema.

Validation errors lose graphql-core's "Did you mean …?" hints (field,
argument, type and enum value names) unless the caller authenticates: a
prober learns nothing by guessing. Introspection itself stays open, since the
schema is published with the project (schema/schema.graphql) and GraphiQL
loads its documentation before a token is typed. The check is per caller,
after the (cached, per-document) validation, so the validation cache stays
shared.
"""

from __future__ import annotations

import re
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLError,
)
from strawberry.types import ExecutionContext
from strawberry.types.execution import ExecutionResult as StrawberryResult

from lockbox.domain.errors import LockboxError

_SUGGESTION = re.compile(r"\s*Did you mean\b.*\Z", re.DOTALL)


async def is_authenticated(context: Any) -> bool:
    """True when the operation's context carries a valid token (the session
    is kept, so the root field does not authenticate again over HTTP)."""
    actor = getattr(context, "actor", None)
    if actor is None:
        return False
    try:
        await actor()
    except LockboxError:
        return False
    return True


def _without_hint(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        _SUGGESTION.sub("", error.message),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )


async def hide_hints_from_anonymous(execution_context: ExecutionContext) -> None:
    """Drop "Did you mean …?" from the result's errors unless the caller is
    authenticated. New error objects: validation errors are cached and shared."""
    result = execution_context.result
    if not isinstance(result, ExecutionResult | StrawberryResult) or not result.errors:
        return
    if not any("Did you mean" in error.message for error in result.errors):
        return
    if await is_authenticated(execution_context.context):
        return
    result.errors = [_without_hint(e) if "Did you mean" in e.message else e for e in result.errors]
