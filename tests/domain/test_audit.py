"""The tamper-evident audit chain."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lockbox.domain.audit import (
    Anchor,
    AuditRecord,
    ChainBreak,
    MalformedEvent,
    RequestLedger,
    RequestRow,
    StoredAuditEvent,
    canonical_json,
    chain_hash,
    decided_fields,
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


# --- the audit key (LOCKBOX_AUDIT_KEY) ------------------------------------------------

KEY = b"kept outside the database"


def build_keyed_chain(n: int, key: bytes | None) -> list[StoredAuditEvent]:
    events: list[StoredAuditEvent] = []
    prev: str | None = None
    for seq in range(1, n + 1):
        rec = record(seq)
        digest = chain_hash(prev, rec, key)
        events.append(StoredAuditEvent(id=f"ev-{seq}", record=rec, prev_hash=prev, hash=digest))
        prev = digest
    return events


def test_a_keyed_link_is_hmac_sha256_of_prev_hash_and_canonical_json() -> None:
    rec = record(2)
    prev = "ab" * 32
    expected = hmac.new(KEY, (prev + canonical_json(rec)).encode(), hashlib.sha256).hexdigest()
    assert chain_hash(prev, rec, KEY) == expected
    assert chain_hash(prev, rec, None) == chain_hash(prev, rec)  # no key: as before


def test_a_keyed_chain_verifies_only_under_its_key() -> None:
    events = build_keyed_chain(4, KEY)
    assert verify_chain(events, *head(events), key=KEY) is None
    for wrong in (None, b"another key"):
        broken = verify_chain(events, *head(events), key=wrong)
        assert broken is not None
        assert (broken.event_id, broken.seq) == ("ev-1", 1)
        assert "audit key does not match" in broken.reason


def test_an_unkeyed_chain_verified_with_a_key_says_the_key_does_not_match() -> None:
    events = build_keyed_chain(3, None)
    broken = verify_chain(events, *head(events), key=KEY)
    assert broken is not None
    assert (broken.event_id, broken.seq) == ("ev-1", 1)
    assert "audit key does not match" in broken.reason


@pytest.mark.parametrize("forger", [None, b"guessed"], ids=["plain", "guessed-key"])
def test_recomputing_the_chain_without_the_key_is_caught_at_the_edit(forger: bytes | None) -> None:
    events = build_keyed_chain(5, KEY)
    h = head(events)
    prev = events[1].hash
    for i in range(2, 5):
        rec = events[i].record
        if i == 2:
            rec = replace(rec, detail={"n": 3, "reason": "nothing to see"})
        digest = chain_hash(prev, rec, forger)
        events[i] = replace(events[i], record=rec, prev_hash=prev, hash=digest)
        prev = digest
    forged_head = (prev, h[1])
    broken = verify_chain(events, *forged_head, key=KEY)
    assert broken is not None
    assert (broken.event_id, broken.seq) == ("ev-3", 3)
    assert "hash" in broken.reason


# --- malformed rows and anchored heads ------------------------------------------------


def test_a_malformed_row_is_a_break_naming_it() -> None:
    events: list[StoredAuditEvent | MalformedEvent] = list(build_chain(3))
    events[1] = MalformedEvent("ev-2", 2, "at is not a date-time")
    broken = verify_chain(events, None, 3)
    assert broken is not None
    assert (broken.event_id, broken.seq) == ("ev-2", 2)
    assert "malformed" in broken.reason and "at" in broken.reason
    events[1] = MalformedEvent("ev-2", None, "seq is not a whole number")
    broken = verify_chain(events, None, 3)
    assert broken is not None and (broken.event_id, broken.seq) == ("ev-2", 2)


def test_an_anchor_holds_while_the_chain_grows() -> None:
    events = build_chain(5)
    assert verify_chain(events, *head(events), expect=Anchor(3, events[2].hash)) is None
    assert verify_chain(events, *head(events), expect=Anchor(0, None)) is None


def test_a_chain_reset_below_its_anchor_is_caught() -> None:
    events = build_chain(5)
    anchor = Anchor(5, events[4].hash)
    assert verify_chain([], None, 0) is None
    broken = verify_chain([], None, 0, expect=anchor)
    assert broken is not None and broken.seq == 5
    broken = verify_chain(events[:3], *head(events[:3]), expect=anchor)
    assert broken is not None and broken.seq == 5


def test_a_chain_rewritten_up_to_its_anchor_is_caught() -> None:
    events = build_chain(4)
    anchor = Anchor(3, events[2].hash)
    rewritten: list[StoredAuditEvent] = []
    prev: str | None = None
    for event in events:
        rec = event.record
        if rec.seq == 2:
            rec = replace(rec, detail={"forged": True})
        digest = chain_hash(prev, rec)
        rewritten.append(replace(event, record=rec, prev_hash=prev, hash=digest))
        prev = digest
    assert verify_chain(rewritten, *head(rewritten)) is None
    broken = verify_chain(rewritten, *head(rewritten), expect=anchor)
    assert broken is not None and (broken.event_id, broken.seq) == ("ev-3", 3)


# --- request rows the chain vouches for ------------------------------------------------

REQ = "11111111-1111-1111-1111-111111111111"
ENGINEER = "22222222-2222-2222-2222-222222222222"
TICKET = "33333333-3333-3333-3333-333333333333"
DECIDER = "44444444-4444-4444-4444-444444444444"
START = T0 + timedelta(hours=1)
END = START + timedelta(hours=2)


def request_events(decided: bool = True) -> list[AuditRecord]:
    created = AuditRecord(
        "t", 1, T0, "request.created", ENGINEER, REQ,
        {"ticketId": TICKET, "engineer": "alice", "resources": ["/a/b"], "durationSeconds": 7200},
    )  # fmt: skip
    detail: dict[str, object] = {"from": "PENDING", "to": "APPROVED", "by": "decider"}
    if decided:
        detail.update(
            decided_fields(
                resources=["/a/b"],
                duration_seconds=7200,
                decided_by=DECIDER,
                access_starts_at=START,
                access_ends_at=END,
            )
        )
    return [created, AuditRecord("t", 2, START, "request.approved", DECIDER, REQ, detail)]


def row(**changes: object) -> RequestRow:
    values: dict[str, object] = {
        "resources": ["/a/b"],
        "duration_seconds": 7200,
        "decided_by": DECIDER,
        "access_starts_at": START,
        "access_ends_at": END,
    }
    status = str(changes.pop("status", "APPROVED"))
    engineer = str(changes.pop("engineer", ENGINEER))
    values.update(changes)
    return RequestRow(REQ, engineer, TICKET, status, decided_fields(**values))  # type: ignore[arg-type]


def ledger_of(records: list[AuditRecord]) -> RequestLedger:
    ledger = RequestLedger()
    for rec in records:
        ledger.add(rec)
    return ledger


def test_a_request_row_as_decided_matches_its_chain() -> None:
    assert ledger_of(request_events()).mismatches([row()]) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"resources": ["/a"]}, "resources"),
        ({"access_ends_at": END + timedelta(days=1)}, "accessEndsAt"),
        ({"access_starts_at": T0}, "accessStartsAt"),
        ({"decided_by": ENGINEER}, "decidedBy"),
        ({"duration_seconds": 86400}, "durationSeconds"),
        ({"status": "PENDING"}, "status"),
        ({"engineer": DECIDER}, "engineer"),
    ],
)
def test_a_widened_or_reattributed_row_is_named(change: dict[str, object], named: str) -> None:
    (mismatch,) = ledger_of(request_events()).mismatches([row(**change)])
    assert mismatch.request_id == REQ and mismatch.seq == 2
    assert named in mismatch.reason


def test_rows_without_a_chain_and_chains_without_a_row_are_named() -> None:
    (orphan,) = ledger_of([]).mismatches([row()])
    assert orphan.request_id == REQ and "no request.created" in orphan.reason
    (gone,) = ledger_of(request_events()).mismatches([])
    assert gone.request_id == REQ and "row is gone" in gone.reason


def test_events_written_before_they_carried_the_decision_check_what_they_can() -> None:
    ledger = ledger_of(request_events(decided=False))
    assert ledger.mismatches([row(access_ends_at=END + timedelta(days=1))]) == []
    (mismatch,) = ledger.mismatches([row(resources=["/a"])])
    assert "resources" in mismatch.reason
