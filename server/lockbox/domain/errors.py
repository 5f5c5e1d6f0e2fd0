"""Domain errors. Each carries the public error code of the contract.

`extensions` is read by graphql-core when it wraps an exception raised in a
resolver, so an error raised anywhere below the API reaches the client with
its code and nothing else.
"""

from __future__ import annotations

# How much of a caller's reference an error message repeats.
MAX_SHOWN_REF = 64


def _odd(ref: str) -> bool:
    """A reference that is not plain printable text is shown quoted (repr)."""
    return not ref.isprintable() or " " in ref


class LockboxError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code}


class Unauthenticated(LockboxError):
    code = "UNAUTHENTICATED"


class Forbidden(LockboxError):
    code = "FORBIDDEN"


class NotFound(LockboxError):
    code = "NOT_FOUND"

    @classmethod
    def of(cls, what: str, ref: object) -> NotFound:
        """`<what> <ref> not found`, with a caller's reference shown short
        (the reference is whatever the caller sent, of any length)."""
        shown = str(ref)
        if len(shown) > MAX_SHOWN_REF:
            shown = shown[:MAX_SHOWN_REF] + "…"
        return cls(f"{what} {shown!r} not found" if _odd(shown) else f"{what} {shown} not found")


class BadUserInput(LockboxError):
    code = "BAD_USER_INPUT"


class InvalidState(LockboxError):
    code = "INVALID_STATE"


class RateLimited(LockboxError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "retryAfterSeconds": self.retry_after_seconds}
