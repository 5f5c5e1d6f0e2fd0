"""Opaque pagination cursors and page sizes."""

from __future__ import annotations

import base64
import re

import pytest

from lockbox.domain import cursors
from lockbox.domain.errors import BadUserInput


@pytest.mark.parametrize(
    "position", ["1", "42", "abc", "2025-03-01T12:00:00+00:00|id", "a:b:c", "名前"]
)
def test_cursor_round_trips_its_position(position: str) -> None:
    cursor = cursors.encode("activity", position)
    assert cursors.decode("activity", cursor) == position


def test_cursor_is_url_safe_without_padding() -> None:
    for position in ["1", "12", "123", "1234", "x" * 50]:
        cursor = cursors.encode("audit", position)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor), cursor


def test_cursor_does_not_show_its_position_in_plain_text() -> None:
    assert "12345" not in cursors.encode("audit", "12345")


@pytest.mark.parametrize("position", [0, 1, 7, 10**12])
def test_integer_cursor_round_trips(position: int) -> None:
    assert cursors.decode_int("audit", cursors.encode_int("audit", position)) == position


def test_missing_cursor_means_from_the_beginning() -> None:
    assert cursors.decode("audit", None) is None
    assert cursors.decode_int("audit", None) == 0


def test_cursor_of_another_kind_is_refused() -> None:
    cursor = cursors.encode_int("activity", 5)
    with pytest.raises(BadUserInput, match="not a audit cursor") as caught:
        cursors.decode_int("audit", cursor)
    assert caught.value.extensions == {"code": "BAD_USER_INPUT"}


def test_kind_must_match_exactly_not_by_prefix() -> None:
    with pytest.raises(BadUserInput):
        cursors.decode("audit", cursors.encode("auditlog", "5"))
    with pytest.raises(BadUserInput):
        cursors.decode("auditlog", cursors.encode("audit", "5"))


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("a", id="one-char"),
        pytest.param("!!!!", id="punctuation"),
        pytest.param("====", id="padding-only"),
        pytest.param("not a cursor", id="words"),
        pytest.param("é", id="non-ascii"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(), id="not-utf8"),
        pytest.param(_b64("audit"), id="no-separator"),
        pytest.param(_b64("audit:"), id="empty-position"),
        pytest.param(_b64(":5"), id="empty-kind"),
        pytest.param(_b64("audit:abc"), id="not-a-number"),
        pytest.param(_b64("audit:-1"), id="negative"),
        pytest.param(_b64("audit:1.5"), id="fraction"),
        pytest.param(_b64("audit: 5"), id="space"),
        pytest.param("audit:5", id="unencoded"),
    ],
)
def test_garbage_integer_cursor_is_bad_user_input(cursor: str) -> None:
    with pytest.raises(BadUserInput):
        cursors.decode_int("audit", cursor)


@pytest.mark.parametrize("position", ["²", "9" * 5000], ids=["superscript-two", "5000-digits"])
def test_crafted_numeric_looking_cursor_is_bad_user_input(position: str) -> None:
    with pytest.raises(BadUserInput):
        cursors.decode_int("audit", cursors.encode("audit", position))


@pytest.mark.parametrize(("first", "size"), [(None, 50), (1, 1), (50, 50), (200, 200)])
def test_page_size_defaults_to_50_and_allows_1_to_200(first: int | None, size: int) -> None:
    assert cursors.page_size(first) == size


@pytest.mark.parametrize("first", [0, -1, 201, 10**6])
def test_page_size_outside_1_to_200_is_refused(first: int) -> None:
    with pytest.raises(BadUserInput, match=str(first)):
        cursors.page_size(first)
