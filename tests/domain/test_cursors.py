"""Opaque pagination cursors and page sizes."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any

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


SEQ: cursors.SeqKeyset[int] = cursors.SeqKeyset("audit", lambda row: row)
TIME = cursors.TimeKeyset("request", lambda row: row)


def plan(**arguments: Any) -> cursors.Plan:
    paging: dict[str, Any] = {"first": None, "after": None, "last": None, "before": None}
    return cursors.plan(SEQ, **(paging | arguments))


@pytest.mark.parametrize(
    ("arguments", "size", "backward"),
    [
        ({}, 50, False),
        ({"first": 0}, 0, False),
        ({"first": 200}, 200, False),
        ({"last": 0}, 0, True),
        ({"last": 2}, 2, True),
        ({"last": 200, "before": cursors.encode_int("audit", 9)}, 200, True),
    ],
)
def test_a_page_is_first_or_last_from_0_to_200_else_50(
    arguments: dict[str, Any], size: int, backward: bool
) -> None:
    found = plan(**arguments)
    assert (found.size, found.backward) == (size, backward)


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"first": 1, "last": 1}, "first or last"),
        ({"first": 0, "last": 0}, "first or last"),
        ({"first": -1}, "first"),
        ({"first": 201}, "first"),
        ({"last": -1}, "last"),
        ({"last": 10**6}, "last"),
    ],
)
def test_page_arguments_out_of_range_or_together_are_refused(
    arguments: dict[str, Any], name: str
) -> None:
    with pytest.raises(BadUserInput, match=name):
        plan(**arguments)


def test_the_probe_looks_past_the_starting_cursor_from_it() -> None:
    cursor = cursors.encode_int("audit", 7)
    assert plan(first=2).probe() is None
    assert plan(last=2).probe() is None
    assert plan(first=2, after=cursor).probe() == cursors.Window(
        1, backward=True, before=(7,), inclusive=True
    )
    assert plan(last=2, before=cursor).probe() == cursors.Window(
        1, backward=False, after=(7,), inclusive=True
    )
    assert plan(first=2, after=cursor).window() == cursors.Window(3, after=(7,))


@pytest.mark.parametrize(
    ("window", "span"),
    [
        (cursors.Window(3), (1, 3)),
        (cursors.Window(3, after=(8,)), (9, 10)),
        (cursors.Window(3, backward=True), (8, 10)),
        (cursors.Window(3, backward=True, before=(2,)), (1, 1)),
        (cursors.Window(50, after=(2,), before=(5,)), (3, 4)),
        (cursors.Window(1, backward=True, before=(4,), inclusive=True), (4, 4)),
        (cursors.Window(1, backward=True, before=(40,), inclusive=True), (10, 10)),
        (cursors.Window(1, after=(0,), inclusive=True), (1, 1)),
        (cursors.Window(1, after=(11,), inclusive=True), (11, 10)),
    ],
)
def test_dense_span_of_ten_numbered_items(window: cursors.Window, span: tuple[int, int]) -> None:
    assert cursors.dense_span(window, 10) == span


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "1899-12-31T23:59:59+00:00",
        "9000-01-01T00:00:00+00:00",
        "2030-01-01T00:00:00",
    ],
)
def test_keyset_cursor_times_outside_1900_to_9000_utc_are_refused(at: str) -> None:
    cursor = cursors.encode("request", f"{at}|00000000-0000-4000-8000-000000000000")
    with pytest.raises(BadUserInput, match="cursor"):
        TIME.position(cursor)


def test_keyset_cursor_time_reads_in_utc() -> None:
    key = uuid.uuid4()
    cursor = cursors.encode("request", f"2030-01-01T05:00:00+05:00|{key}")
    assert TIME.position(cursor) == (datetime(2030, 1, 1, tzinfo=UTC), key)
