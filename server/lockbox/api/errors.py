"""Error codes on the wire: every error leaves with `extensions.code`.

Domain errors carry their own code and message. Anything else raised in a
resolver is a fault: it is logged here, with its traceback, and reaches the
client only as MASKED_ERROR, so no internal detail (SQL, paths, exception
types) leaks.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

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
    log.error("unexpected error in %s", error.path, exc_info=original)
    return True


class ErrorCodes(MaskErrors):
    """Every error leaves with a code: domain errors carry theirs, unexpected
    faults are masked as INTERNAL_SERVER_ERROR, and errors of the document
    itself (syntax, validation, limits) are GRAPHQL_VALIDATION_FAILED, or
    BAD_USER_INPUT when a variable's value is wrong."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_should_mask, error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if not (error.extensions or {}).get("code"):
                bad_input = error.message.startswith("Variable ") or "argument" in error.message
                code = "BAD_USER_INPUT" if bad_input else "GRAPHQL_VALIDATION_FAILED"
                error.extensions = {**(error.extensions or {}), "code": code}
        return processed
