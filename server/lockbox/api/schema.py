"""The schema: the three roots, and the extensions every operation runs
through (document limits, caches, error codes)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache

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
        yield


def build_schema() -> strawberry.Schema:
    return LockboxSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            DocumentLimits,
            # Clients repeat the same few documents: parse and validate once.
            partial(DocumentCache, maxsize=256),
            partial(ValidationCache, maxsize=256),
            ErrorCodes,
        ],
    )
