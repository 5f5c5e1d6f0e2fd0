"""The schema: the three roots, and the extensions every operation runs
through (document limits, caches, error codes)."""

from __future__ import annotations

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


def build_schema() -> strawberry.Schema:
    return LockboxSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            DocumentLimits,
            # Clients repeat the same few documents: parse and validate once.
            partial(ParserCache, maxsize=256),
            partial(ValidationCache, maxsize=256),
            ErrorCodes,
        ],
    )
