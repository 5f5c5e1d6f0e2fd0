"""Opaque pagination cursors: base64 of a kind tag and a position."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

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


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput(f"first must be from 1 to {MAX_PAGE_SIZE}, got {first}")
    return first


def encode_keyset(kind: str, at: datetime, key: uuid.UUID) -> str:
    """A position in a list ordered by (time, id)."""
    return encode(kind, f"{at.isoformat()}|{key}")


def decode_keyset(kind: str, cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (time, id) inside a keyset cursor; None when no cursor was given."""
    position = decode(kind, cursor)
    if position is None:
        return None
    at, _, key = position.partition("|")
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        raise BadUserInput(f"cursor {cursor!r} is not a valid {kind} cursor") from None
    found = parse_uuid(key)
    if found is None:
        raise BadUserInput(f"cursor {cursor!r} is not a valid {kind} cursor")
    return parsed, found
