"""Error codes on the wire: every error leaves with `extensions.code`.

Domain errors carry their own code and message. Anything else raised in a
resolver is a fault: it is logged here, with its traceback, and reaches the
client only as MASKED_ERROR, so no internal detail (SQL, paths, exception
types) leaks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from lockbox.api.privacy import hide_hints_from_anonymous
from lockbox.domain.errors import LockboxError

log = logging.getLogger("lockbox.api")

MASKED_MESSAGE = "Unexpected error."
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
# What a client sees of a fault, wherever it is rendered: by the schema's
# result pipeline (ErrorCodes) or by a directly delivered event (api.operations).
MASKED_ERROR: dict[str, object] = {
    "message": MASKED_MESSAGE,
    "extensions": {"code": INTERNAL_SERVER_ERROR},
}


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None or isinstance(original, LockboxError | GraphQLError):
        return False
    if isinstance(original, InvalidOperationTypeError | CannotGetOperationTypeError):
        # A query or mutation sent to graphql-ws (subscriptions only), or an
        # operationName the document lacks: the client's error, not a fault.
        error.message = (
            original.as_http_error_reason("graphql-ws")
            if isinstance(original, InvalidOperationTypeError)
            else original.as_http_error_reason()
        )
        return False
    log.error("unexpected error in %s", error.path, exc_info=original)
    return True


def _code_of(error: GraphQLError) -> str:
    """The code of an error that has none: the document's own errors."""
    if isinstance(error.original_error, InvalidOperationTypeError | CannotGetOperationTypeError):
        return "BAD_USER_INPUT"
    if isinstance(error, GraphQLSyntaxError):
        # graphql-core reports the token limit as a syntax error.
        return "BAD_USER_INPUT" if "tokens" in error.message else "GRAPHQL_PARSE_FAILED"
    bad_input = error.message.startswith("Variable ") or "argument" in error.message
    return "BAD_USER_INPUT" if bad_input else "GRAPHQL_VALIDATION_FAILED"


class ErrorCodes(MaskErrors):
    """Every error leaves with a code: domain errors carry theirs, unexpected
    faults are masked as INTERNAL_SERVER_ERROR, and errors of the document
    itself are GRAPHQL_PARSE_FAILED (syntax) or GRAPHQL_VALIDATION_FAILED, or
    BAD_USER_INPUT when a variable's value is wrong or a limit refuses it.

    Unauthenticated callers get no "Did you mean …?" hints (api.privacy).
    Introspection stays open: the schema is published with the project
    (schema/schema.graphql), and GraphiQL loads its documentation before a
    token is typed.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=_should_mask, error_message=MASKED_MESSAGE)

    async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
        masking = super().on_operation()
        next(masking)
        yield
        await hide_hints_from_anonymous(self.execution_context)
        for _ in masking:  # the stock masking, after the hints are gone
            pass

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": _code_of(error)}
        return processed
