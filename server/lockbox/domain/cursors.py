"""Opaque pagination cursors: base64 of a kind tag and a position."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from lockbox.domain.errors import BadUserInput
from lockbox.domain.ids import parse_uuid

# The kind of an activity event's cursor (ActivityEvent.cursor, engineerActivity's `after`).
ACTIVITY = "activity"


def encode(kind: str, position: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode(kind: str, cursor: str | None) -> str | None:
    """The position inside `cursor`, None when no cursor was given."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadUserInput(f"cursor {cursor!r} is not a valid cursor") from None
    tag, sep, position = raw.partition(":")
    if tag != kind or not sep or not position:
        raise BadUserInput(f"cursor {cursor!r} is not a {kind} cursor")
    return position


def encode_int(kind: str, position: int) -> str:
    return encode(kind, str(position))


def decode_int(kind: str, cursor: str | None) -> int:
    """An integer position; 0 (before the first) when no cursor was given."""
    position = decode(kind, cursor)
    if position is None:
        return 0
    if not (position.isascii() and position.isdigit()) or len(position) > 18:
        raise BadUserInput(f"cursor {cursor!r} is not a valid {kind} cursor")
    return int(position)


MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


# A keyset cursor's time must lie in this range: every time Lockbox writes
# does, and the database is never handed a date it cannot represent
# (year 1 with an offset, say, is not a UTC date-time at all).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def encode_keyset(kind: str, at: datetime, key: uuid.UUID) -> str:
    """A position in a list ordered by (time, id)."""
    return encode(kind, f"{at.isoformat()}|{key}")


def decode_keyset(kind: str, cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (time, id) inside a keyset cursor, its time in UTC; None when no
    cursor was given."""
    position = decode(kind, cursor)
    if position is None:
        return None
    at, _, key = position.partition("|")
    try:
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("no offset")
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadUserInput(f"cursor {cursor!r} is not a valid {kind} cursor") from None
    found = parse_uuid(key)
    if found is None or not EARLIEST <= parsed < LATEST:
        raise BadUserInput(f"cursor {cursor!r} is not a valid {kind} cursor")
    return parsed, found


# --- pages --------------------------------------------------------------------------
# Every connection pages the same way (Relay's cursor connections): `first`
# items after `after`, or the `last` items before `before`. A list is
# ordered by a key (a sequence number, or a (time, id) pair); a cursor is
# the key of one item, so a position stays valid whatever is added later.

Position = tuple[Any, ...]
RowT = TypeVar("RowT")
RowT_contra = TypeVar("RowT_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class Window:
    """One walk along an ordered list, as the store runs it: up to `limit`
    items strictly between the positions `after` and `before` (either may be
    open), from `after` onwards, or, `backward`, from `before` back. The
    store answers in walk order. `inclusive`: the position the walk starts
    from is itself part of the walk."""

    limit: int
    backward: bool = False
    after: Position | None = None
    before: Position | None = None
    inclusive: bool = False

    def beyond(self, position: Position) -> Window:
        """The rest of this walk past `position` (for callers that filter
        what the store returned and need to read on)."""
        if self.backward:
            return replace(self, before=position, inclusive=False)
        return replace(self, after=position, inclusive=False)


class Keyset(Protocol[RowT_contra]):
    """How one list's items are ordered, as its cursors say."""

    def cursor(self, row: RowT_contra) -> str: ...

    def position(self, cursor: str) -> Position: ...


@dataclass(frozen=True)
class SeqKeyset(Generic[RowT]):
    """A list ordered by an integer sequence number."""

    kind: str
    seq: Callable[[RowT], int]

    def cursor(self, row: RowT) -> str:
        return encode_int(self.kind, self.seq(row))

    def position(self, cursor: str) -> Position:
        return (decode_int(self.kind, cursor),)


@dataclass(frozen=True)
class TimeKeyset(Generic[RowT]):
    """A list ordered by (time, id)."""

    kind: str
    key: Callable[[RowT], tuple[datetime, uuid.UUID]]

    def cursor(self, row: RowT) -> str:
        return encode_keyset(self.kind, *self.key(row))

    def position(self, cursor: str) -> Position:
        found = decode_keyset(self.kind, cursor)
        assert found is not None  # a cursor was given
        return found


@dataclass(frozen=True, slots=True)
class Plan:
    """A connection's arguments, checked: `size` items (0 for an empty
    page), walking backward when `last` was given."""

    size: int
    backward: bool
    after: Position | None
    before: Position | None

    def window(self) -> Window:
        """The page's walk, one item longer: the extra item only says that
        there is more in the walk's direction."""
        return Window(self.size + 1, self.backward, self.after, self.before)

    def probe(self) -> Window | None:
        """A walk of one item from the page's starting cursor away from the
        page (the cursor's own item included): whether anything lies on the
        other side. None when the page starts at the list's end."""
        if self.backward:
            if self.before is None:
                return None
            return Window(1, backward=False, after=self.before, inclusive=True)
        if self.after is None:
            return None
        return Window(1, backward=True, before=self.after, inclusive=True)


def _size(name: str, value: int) -> int:
    if not 0 <= value <= MAX_PAGE_SIZE:
        raise BadUserInput(f"{name} must be from 0 to {MAX_PAGE_SIZE}, got {value}")
    return value


def plan(
    keyset: Keyset[Any],
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Plan:
    """Check a connection's arguments. `first` is None unless the client gave
    it; with neither `first` nor `last` a page is the first 50 items."""
    if first is not None and last is not None:
        raise BadUserInput("give first or last, not both")
    if last is not None:
        size = _size("last", last)
    else:
        size = DEFAULT_PAGE_SIZE if first is None else _size("first", first)
    return Plan(
        size=size,
        backward=last is not None,
        after=None if after is None else keyset.position(after),
        before=None if before is None else keyset.position(before),
    )


def dense_span(window: Window, count: int) -> tuple[int, int]:
    """The numbers (low, high; empty when low > high) a walk covers in a
    list numbered 1 to `count` without gaps, as a request's activity is."""
    low = 1 if window.after is None else int(window.after[0]) + 1
    high = count if window.before is None else int(window.before[0]) - 1
    if window.inclusive and window.backward and window.before is not None:
        high += 1
    elif window.inclusive and not window.backward and window.after is not None:
        low -= 1
    low, high = max(low, 1), min(high, count)
    if window.backward:
        return max(low, high - window.limit + 1), high
    return low, min(high, low + window.limit - 1)
