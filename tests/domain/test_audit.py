"""The tamper-evident audit chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lockbox.domain.audit import (
    AuditRecord,
    ChainBreak,
    StoredAuditEvent,
    canonical_json,
    chain_hash,
    verify_chain,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def record(seq: int, **changes: object) -> AuditRecord:
    base = AuditRecord(
        tenant_id="tenant-contoso",
        seq=seq,
        at=T0 + timedelta(minutes=seq),
        action=f"request.action{seq}",
        actor_id=f"actor-{seq}",
        request_id="req-1",
        detail={"n": seq, "reason": "ticket 7"},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def build_chain(n: int) -> list[StoredAuditEvent]:
    events: list[StoredAuditEvent] = []
    prev: str | None = None
    for seq in range(1, n + 1):
        rec = record(seq)
        digest = chain_hash(prev, rec)
        events.append(StoredAuditEvent(id=f"ev-{seq}", record=rec, prev_hash=prev, hash=digest))
        prev = digest
    return events


def head(events: list[StoredAuditEvent]) -> tuple[str | None, int]:
    return (events[-1].hash, events[-1].record.seq) if events else (None, 0)


# --- hashing -------------------------------------------------------------------


def test_chain_hash_is_sha256_of_prev_hash_and_canonical_json() -> None:
    rec = record(2)
    prev = "ab" * 32
    expected = hashlib.sha256((prev + canonical_json(rec)).encode()).hexdigest()
    assert chain_hash(prev, rec) == expected
    assert len(expected) == 64


def test_first_event_hashes_canonical_json_alone() -> None:
    rec = record(1)
    assert chain_hash(None, rec) == hashlib.sha256(canonical_json(rec).encode()).hexdigest()


def test_hash_depends_on_the_previous_hash() -> None:
    rec = record(2)
    assert chain_hash("a" * 64, rec) != chain_hash("b" * 64, rec)


def test_canonical_json_is_compact_sorted_and_carries_every_field() -> None:
    text = canonical_json(record(3, detail={"z": 1, "a": [1, 2], "é": "ü"}))
    body = json.loads(text)
    assert body == {
        "action": "request.action3",
        "actorId": "actor-3",
        "at": "2025-03-01T12:03:00.123456+00:00",
        "detail": {"a": [1, 2], "z": 1, "é": "ü"},
        "requestId": "req-1",
        "seq": 3,
        "tenantId": "tenant-contoso",
    }
    assert text == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_canonical_json_does_not_depend_on_detail_key_order() -> None:
    a = record(1, detail={"x": 1, "y": {"b": 2, "a": 1}})
    b = record(1, detail={"y": {"a": 1, "b": 2}, "x": 1})
    assert canonical_json(a) == canonical_json(b)


@pytest.mark.parametrize(
    "offset",
    [timedelta(hours=2), timedelta(hours=-5), timedelta(hours=5, minutes=30), timedelta(hours=14)],
    ids=["+02:00", "-05:00", "+05:30", "+14:00"],
)
def test_same_instant_in_another_timezone_hashes_the_same(offset: timedelta) -> None:
    utc = record(1)
    shifted = record(1, at=utc.at.astimezone(timezone(offset)))
    assert shifted.at.utcoffset() == offset
    assert canonical_json(shifted) == canonical_json(utc)
    assert chain_hash(None, shifted) == chain_hash(None, utc)


def test_a_different_instant_hashes_differently() -> None:
    assert chain_hash(None, record(1)) != chain_hash(
        None, record(1, at=T0 + timedelta(minutes=1, microseconds=1))
    )


def test_null_actor_and_request_are_hashed_as_null() -> None:
    body = json.loads(canonical_json(record(1, actor_id=None, request_id=None)))
    assert body["actorId"] is None
    assert body["requestId"] is None


# --- verify_chain: intact ---------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5])
def test_intact_chain_verifies(n: int) -> None:
    events = build_chain(n)
    assert verify_chain(events, *head(events)) is None


def test_empty_chain_with_empty_head_verifies() -> None:
    assert verify_chain([], None, 0) is None


def test_verify_accepts_any_iterable() -> None:
    events = build_chain(3)
    assert verify_chain(iter(events), *head(events)) is None


# --- verify_chain: tampering --------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"action": "request.approved"}, id="action"),
        pytest.param({"detail": {"n": 3, "reason": "nothing to see"}}, id="detail"),
        pytest.param({"at": T0 + timedelta(days=1)}, id="at"),
        pytest.param({"actor_id": "someone-else"}, id="actor"),
        pytest.param({"actor_id": None}, id="actor-erased"),
        pytest.param({"request_id": "req-2"}, id="request"),
        pytest.param({"tenant_id": "tenant-fabrikam"}, id="tenant"),
    ],
)
def test_edited_field_is_caught_at_that_event(change: dict[str, object]) -> None:
    events = build_chain(5)
    h = head(events)
    events[2] = replace(events[2], record=replace(events[2].record, **change))  # type: ignore[arg-type]
    broken = verify_chain(events, *h)
    assert isinstance(broken, ChainBreak)
    assert (broken.event_id, broken.seq) == ("ev-3", 3)
    assert "hash" in broken.reason


def test_edit_with_recomputed_hash_is_caught_at_the_next_event() -> None:
    events = build_chain(5)
    h = head(events)
    forged = replace(events[1].record, detail={"n": 2, "reason": "rewritten"})
    events[1] = replace(events[1], record=forged, hash=chain_hash(events[0].hash, forged))
    broken = verify_chain(events, *h)
    assert broken is not None
    assert (broken.event_id, broken.seq) == ("ev-3", 3)
    assert "prevHash" in broken.reason


def test_edited_last_event_with_recomputed_hash_is_caught_by_the_head() -> None:
    events = build_chain(4)
    h = head(events)
    forged = replace(events[3].record, action="request.denied")
    events[3] = replace(events[3], record=forged, hash=chain_hash(events[2].hash, forged))
    broken = verify_chain(events, *h)
    assert broken is not None
    assert broken.event_id is None


def test_edited_stored_hash_is_caught() -> None:
    events = build_chain(3)
    h = head(events)
    events[0] = replace(events[0], hash="0" * 64)
    broken = verify_chain(events, *h)
    assert broken is not None
    assert broken.event_id == "ev-1"


def test_deleted_middle_event_is_caught_where_it_is_missing() -> None:
    events = build_chain(5)
    h = head(events)
    del events[2]
    broken = verify_chain(events, *h)
    assert broken is not None
    assert (broken.event_id, broken.seq) == ("ev-4", 4)
    assert "#3" in broken.reason


def test_deleted_first_event_is_caught() -> None:
    events = build_chain(3)
    h = head(events)
    broken = verify_chain(events[1:], *h)
    assert broken is not None
    assert broken.event_id == "ev-2"


def test_deleted_last_event_is_caught_by_the_head() -> None:
    events = build_chain(5)
    h = head(events)
    broken = verify_chain(events[:-1], *h)
    assert broken is not None
    assert broken.event_id is None
    assert broken.seq == 5
    assert "#4" in broken.reason and "#5" in broken.reason


def test_all_events_deleted_is_caught_by_the_head() -> None:
    events = build_chain(2)
    broken = verify_chain([], *head(events))
    assert broken is not None
    assert broken.seq == 1


def test_swapped_events_are_caught_at_the_first_out_of_place() -> None:
    events = build_chain(5)
    h = head(events)
    events[1], events[2] = events[2], events[1]
    broken = verify_chain(events, *h)
    assert broken is not None
    assert (broken.event_id, broken.seq) == ("ev-3", 3)


def test_swapped_events_with_renumbered_seqs_are_still_caught() -> None:
    events = build_chain(5)
    h = head(events)
    second, third = events[1], events[2]
    events[1] = replace(third, record=replace(third.record, seq=2))
    events[2] = replace(second, record=replace(second.record, seq=3))
    broken = verify_chain(events, *h)
    assert broken is not None
    assert broken.event_id == "ev-3"


def test_forged_prev_hash_is_caught() -> None:
    events = build_chain(4)
    h = head(events)
    fake_prev = "f" * 64
    events[2] = replace(
        events[2], prev_hash=fake_prev, hash=chain_hash(fake_prev, events[2].record)
    )
    broken = verify_chain(events, *h)
    assert broken is not None
    assert (broken.event_id, broken.seq) == ("ev-3", 3)
    assert "prevHash" in broken.reason


def test_first_event_claiming_a_predecessor_is_caught() -> None:
    events = build_chain(2)
    h = head(events)
    events[0] = replace(events[0], prev_hash="a" * 64)
    broken = verify_chain(events, *h)
    assert broken is not None
    assert broken.event_id == "ev-1"


def test_extra_event_beyond_the_head_is_caught() -> None:
    events = build_chain(3)
    h = head(events[:2])
    broken = verify_chain(events, *h)
    assert broken is not None
    assert broken.event_id is None
