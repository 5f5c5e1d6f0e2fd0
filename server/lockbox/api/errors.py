"""Error codes on the wire: every error leaves with `extensions.code`.

Domain errors carry their own code and message. Anything else raised in a
resolver is a fault: it is logged here, with its traceback, and reaches the
client only as MASKED_ERROR, so no internal detail (SQL, paths, exception
types) leaks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from lockbox.api.privacy import hide_hints_from_anonymous
from lockbox.domain.errors import LockboxError
from lockbox.observability.logs import current_request_id

log = logging.getLogger("lockbox.api")

MASKED_MESSAGE = "Unexpected error."
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
# What a client sees of a fault, wherever it is rendered: by the schema's
# result pipeline (ErrorCodes) or by a directly delivered event (api.operations).
MASKED_ERROR: dict[str, object] = {
    "message": MASKED_MESSAGE,
    "extensions": {"code": INTERNAL_SERVER_ERROR},
}


def masked_error(request_id: str | None) -> dict[str, object]:
    """MASKED_ERROR with the request id its log line carries
    (lockbox.observability.logs), for the user to quote."""
    if request_id is None:
        return MASKED_ERROR
    return {**MASKED_ERROR, "extensions": {"code": INTERNAL_SERVER_ERROR, "requestId": request_id}}


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


VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


def _code_of(error: GraphQLError) -> str:
    """The code of an error that has none. Validation errors have theirs by
    now (ErrorCodes.on_validate; the limits' rules set BAD_USER_INPUT), so
    what is left is the document's syntax, or a variable's value that does
    not coerce (no path: execution never started)."""
    if isinstance(error.original_error, InvalidOperationTypeError | CannotGetOperationTypeError):
        return "BAD_USER_INPUT"
    if isinstance(error, GraphQLSyntaxError):
        # graphql-core reports the token limit as a syntax error.
        return "BAD_USER_INPUT" if "tokens" in error.message else "GRAPHQL_PARSE_FAILED"
    return "BAD_USER_INPUT" if error.path is None else INTERNAL_SERVER_ERROR


class ErrorCodes(MaskErrors):
    """Every error leaves with a code: domain errors carry theirs, unexpected
    faults are masked as INTERNAL_SERVER_ERROR, and errors of the document
    itself are GRAPHQL_PARSE_FAILED (syntax) or GRAPHQL_VALIDATION_FAILED
    (against the schema), or BAD_USER_INPUT when a variable's value does not
    coerce or a limit refuses the document (contract section 11).

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

    def on_validate(self) -> Iterator[None]:
        """A document that fails validation against the schema (an unknown
        field or argument, a missing required argument, a variable never
        defined...) is GRAPHQL_VALIDATION_FAILED, as Apollo names it; a
        limit's rule has set BAD_USER_INPUT on its own (api.limits)."""
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": VALIDATION_FAILED}

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        extensions: dict[str, object] = {"code": INTERNAL_SERVER_ERROR}
        request_id = current_request_id()  # the one its log line carries
        if request_id is not None:
            extensions["requestId"] = request_id
        masked.extensions = extensions
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": _code_of(error)}
        return processed
