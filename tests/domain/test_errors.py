"""Domain errors carry the contract's public error codes."""

from __future__ import annotations

import pytest

from lockbox.domain.errors import (
    BadUserInput,
    Forbidden,
    InvalidState,
    LockboxError,
    NotFound,
    RateLimited,
    Unauthenticated,
)


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (Unauthenticated, "UNAUTHENTICATED"),
        (Forbidden, "FORBIDDEN"),
        (NotFound, "NOT_FOUND"),
        (BadUserInput, "BAD_USER_INPUT"),
        (InvalidState, "INVALID_STATE"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_each_error_carries_its_contract_code(cls: type[LockboxError], code: str) -> None:
    error = cls("request 42 is gone")
    assert error.extensions == {"code": code}
    assert error.code == code
    assert error.message == "request 42 is gone"
    assert str(error) == "request 42 is gone"
    assert isinstance(error, LockboxError)
    with pytest.raises(LockboxError):
        raise error


def test_rate_limited_says_when_to_retry() -> None:
    error = RateLimited("too many calls", retry_after_seconds=17)
    assert error.extensions == {"code": "RATE_LIMITED", "retryAfterSeconds": 17}
    assert error.retry_after_seconds == 17
    assert error.message == "too many calls"
    assert isinstance(error, LockboxError)


def test_base_error_is_an_internal_error() -> None:
    assert LockboxError("boom").extensions == {"code": "INTERNAL_SERVER_ERROR"}


def test_error_classes_have_distinct_codes() -> None:
    classes = [Unauthenticated, Forbidden, NotFound, BadUserInput, InvalidState, RateLimited]
    assert len({c.code for c in classes}) == len(classes)
