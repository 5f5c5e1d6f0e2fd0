"""The schema: the three roots, and the extensions every operation runs
through (document limits, caches, error codes)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionContext

from lockbox.api.errors import ErrorCodes
from lockbox.api.limits import DocumentLimits
from lockbox.api.mutations import Mutation
from lockbox.api.queries import Query
from lockbox.api.subscriptions import Subscription


class LockboxSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Client errors are answers, not faults; unexpected faults are logged
        # once, with their traceback, where they are masked (api.errors).
        return None


class OperationNameRequired(CannotGetOperationTypeError):
    """Several operations and no operationName. strawberry ran the first
    one; GraphQL says such a request is an error (BAD_USER_INPUT, api.errors;
    HTTP 400)."""

    def __init__(self) -> None:
        super().__init__(None)

    def as_http_error_reason(self) -> str:
        return "Must provide operationName if the document contains several operations."


def _require_operation_name(context: ExecutionContext) -> None:
    document = context.graphql_document
    # `operation_name` falls back to the first operation's name: what the
    # client sent is kept where strawberry keeps it.
    if document is None or context._provided_operation_name is not None:
        return
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) > 1:
        raise OperationNameRequired


class DocumentCache(ParserCache):
    """strawberry's ParserCache, except for a document that does not parse.
    The stock one raises its syntax error from the parsing hook, outside
    the operation, where no extension sees it: it reached the client with no
    code. Here such a document is left to strawberry's own parse, whose
    error is answered inside the operation (api.errors gives it its code)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):  # reported when strawberry parses it
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        _require_operation_name(context)
        yield


def build_schema(observers: Sequence[type[SchemaExtension]] = ()) -> strawberry.Schema:
    """`observers`: extensions that time or trace each operation (lockbox.observability),
    first, so that they see all of it."""
    return LockboxSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            *observers,
            DocumentLimits,
            # Clients repeat the same few documents: parse and validate once.
            partial(DocumentCache, maxsize=256),
            partial(ValidationCache, maxsize=256),
            ErrorCodes,
        ],
    )
