"""The access request lifecycle: the transition table and time-based statuses."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lockbox.domain.errors import InvalidState
from lockbox.domain.lifecycle import (
    DEADLINES,
    INITIAL_STATUSES,
    TRANSITIONS,
    Action,
    Columns,
    Party,
    RequestState,
    Status,
    Step,
    due_action,
    effective_status,
    initial_status,
    next_status,
    transition_for,
)

# The contract's lifecycle, written out independently of the code under test.
ALLOWED: dict[tuple[Status, Action], Status] = {
    (Status.PENDING, Action.APPROVE): Status.APPROVED,
    (Status.PENDING, Action.AUTO_APPROVE): Status.APPROVED,
    (Status.PENDING, Action.EMERGENCY_APPROVE): Status.APPROVED,
    (Status.PENDING, Action.DENY): Status.DENIED,
    (Status.PENDING, Action.CANCEL): Status.CANCELED,
    (Status.PENDING, Action.EXPIRE): Status.EXPIRED,
    (Status.APPROVED, Action.REVOKE): Status.REVOKED,
    (Status.APPROVED, Action.RELEASE): Status.COMPLETED,
    (Status.APPROVED, Action.COMPLETE): Status.COMPLETED,
    # Contract section 8: AWAITING_PROVIDER_APPROVAL -> PENDING | DENIED | EXPIRED | CANCELED.
    (Status.AWAITING_PROVIDER_APPROVAL, Action.PROVIDER_APPROVE): Status.PENDING,
    (Status.AWAITING_PROVIDER_APPROVAL, Action.PROVIDER_DENY): Status.DENIED,
    (Status.AWAITING_PROVIDER_APPROVAL, Action.EXPIRE): Status.EXPIRED,
    (Status.AWAITING_PROVIDER_APPROVAL, Action.CANCEL): Status.CANCELED,
}
EXPECTED_TERMINAL = {
    Status.DENIED,
    Status.EXPIRED,
    Status.REVOKED,
    Status.COMPLETED,
    Status.CANCELED,
}
ALL_PAIRS = list(itertools.product(Status, Action))
FORBIDDEN_PAIRS = [pair for pair in ALL_PAIRS if pair not in ALLOWED]


def _pair_id(pair: tuple[Status, Action]) -> str:
    return f"{pair[0].value}-{pair[1].value}"


def test_statuses_are_exactly_the_contract_enum() -> None:
    assert [s.value for s in Status] == [
        "PENDING",
        "APPROVED",
        "DENIED",
        "EXPIRED",
        "REVOKED",
        "COMPLETED",
        "CANCELED",
        "AWAITING_PROVIDER_APPROVAL",
    ]


def test_the_table_covers_all_88_pairs_split_into_13_allowed_and_75_refused() -> None:
    assert len(ALL_PAIRS) == len(Status) * len(Action) == 8 * 11
    assert len(ALLOWED) == 13
    assert len(FORBIDDEN_PAIRS) == 75


def test_transition_table_matches_the_contract_exactly() -> None:
    flattened = {
        (status, action): transition.target
        for status, actions in TRANSITIONS.items()
        for action, transition in actions.items()
    }
    assert flattened == ALLOWED


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [(s, a, t) for (s, a), t in ALLOWED.items()],
    ids=[_pair_id(pair) for pair in ALLOWED],
)
def test_allowed_transition_leads_to_documented_status(
    status: Status, action: Action, target: Status
) -> None:
    assert next_status("42", status, action) is target


@pytest.mark.parametrize(("status", "action"), FORBIDDEN_PAIRS, ids=map(_pair_id, FORBIDDEN_PAIRS))
def test_every_other_transition_is_invalid_state_naming_request_and_status(
    status: Status, action: Action
) -> None:
    with pytest.raises(InvalidState) as caught:
        next_status("req-77", status, action)
    message = caught.value.message
    assert "req-77" in message
    assert status.value in message
    assert action.value in message
    assert caught.value.extensions == {"code": "INVALID_STATE"}


def test_invalid_state_message_reads_naturally() -> None:
    with pytest.raises(InvalidState, match=r"^cannot approve request 42: it is DENIED$"):
        next_status("42", Status.DENIED, Action.APPROVE)


def test_terminal_statuses_are_denied_expired_revoked_completed_canceled() -> None:
    terminal = set(Status) - TRANSITIONS.keys()
    assert terminal == EXPECTED_TERMINAL


@pytest.mark.parametrize("status", sorted(EXPECTED_TERMINAL), ids=str)
def test_terminal_status_allows_no_action_at_all(status: Status) -> None:
    for action in Action:
        with pytest.raises(InvalidState):
            next_status("1", status, action)


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_denied_request_never_reopens(action: Action) -> None:
    with pytest.raises(InvalidState, match="DENIED"):
        next_status("1", Status.DENIED, action)


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_revoked_request_never_reopens(action: Action) -> None:
    with pytest.raises(InvalidState, match="REVOKED"):
        next_status("1", Status.REVOKED, action)


def test_deny_beats_a_late_approve() -> None:
    after_deny = next_status("1", Status.PENDING, Action.DENY)
    with pytest.raises(InvalidState, match="cannot approve request 1: it is DENIED"):
        next_status("1", after_deny, Action.APPROVE)


def test_revoke_beats_a_reapproval() -> None:
    approved = next_status("1", Status.PENDING, Action.APPROVE)
    revoked = next_status("1", approved, Action.REVOKE)
    assert revoked is Status.REVOKED
    with pytest.raises(InvalidState, match="cannot approve request 1: it is REVOKED"):
        next_status("1", revoked, Action.APPROVE)


def test_approved_request_cannot_be_approved_twice() -> None:
    with pytest.raises(InvalidState, match="it is APPROVED"):
        next_status("1", Status.APPROVED, Action.APPROVE)


def test_engineer_cannot_cancel_once_approved_only_release() -> None:
    with pytest.raises(InvalidState, match="cannot cancel request 1: it is APPROVED"):
        next_status("1", Status.APPROVED, Action.CANCEL)
    assert next_status("1", Status.APPROVED, Action.RELEASE) is Status.COMPLETED


def test_no_sequence_of_actions_ever_returns_to_pending_or_reapproves() -> None:
    """Walk the whole graph from PENDING: APPROVED is reached only once, PENDING never
    (nor AWAITING_PROVIDER_APPROVAL, where a request can only start)."""
    reachable_via: dict[Status, set[Status]] = {}
    frontier = [Status.PENDING]
    seen = {Status.PENDING}
    while frontier:
        current = frontier.pop()
        for action in Action:
            try:
                target = next_status("1", current, action)
            except InvalidState:
                continue
            reachable_via.setdefault(target, set()).add(current)
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(Status) - {Status.AWAITING_PROVIDER_APPROVAL}
    assert Status.PENDING not in reachable_via
    assert reachable_via[Status.APPROVED] == {Status.PENDING}


def test_a_request_awaiting_the_provider_reaches_the_customer_only_as_pending() -> None:
    targets = {
        next_status("1", Status.AWAITING_PROVIDER_APPROVAL, action)
        for action in Action
        if (Status.AWAITING_PROVIDER_APPROVAL, action) in ALLOWED
    }
    assert targets == {Status.PENDING, Status.DENIED, Status.EXPIRED, Status.CANCELED}
    for action in (Action.APPROVE, Action.AUTO_APPROVE, Action.EMERGENCY_APPROVE, Action.DENY):
        with pytest.raises(InvalidState, match="it is AWAITING_PROVIDER_APPROVAL"):
            next_status("1", Status.AWAITING_PROVIDER_APPROVAL, action)


# --- effective_status -------------------------------------------------------

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EXPIRES = T0 + timedelta(days=4)
ENDS = T0 + timedelta(hours=8)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("stored", "now", "access_ends_at", "expected"),
    [
        pytest.param(Status.PENDING, EXPIRES - TICK, None, Status.PENDING, id="pending-before"),
        pytest.param(Status.PENDING, EXPIRES, None, Status.EXPIRED, id="pending-exactly-at"),
        pytest.param(Status.PENDING, EXPIRES + TICK, None, Status.EXPIRED, id="pending-after"),
        pytest.param(
            Status.PENDING, EXPIRES + timedelta(days=365), None, Status.EXPIRED, id="pending-long"
        ),
        pytest.param(Status.APPROVED, ENDS - TICK, ENDS, Status.APPROVED, id="approved-inside"),
        pytest.param(Status.APPROVED, ENDS, ENDS, Status.COMPLETED, id="approved-exactly-at-end"),
        pytest.param(Status.APPROVED, ENDS + TICK, ENDS, Status.COMPLETED, id="approved-after"),
        pytest.param(
            Status.APPROVED,
            EXPIRES + TICK,
            EXPIRES + timedelta(hours=8),
            Status.APPROVED,
            id="approved-past-pending-deadline-still-open",
        ),
    ],
)
def test_effective_status_applies_time_based_changes(
    stored: Status, now: datetime, access_ends_at: datetime | None, expected: Status
) -> None:
    assert effective_status(stored, now, EXPIRES, access_ends_at) is expected


@pytest.mark.parametrize("stored", sorted(EXPECTED_TERMINAL), ids=str)
def test_terminal_statuses_read_unchanged_whatever_the_time(stored: Status) -> None:
    far_future = EXPIRES + timedelta(days=1000)
    assert effective_status(stored, far_future, EXPIRES, ENDS) is stored
    assert effective_status(stored, T0, EXPIRES, None) is stored


def test_pending_request_ignores_access_end_even_if_passed() -> None:
    assert effective_status(Status.PENDING, ENDS + TICK, EXPIRES, ENDS) is Status.PENDING


def test_effective_status_compares_instants_not_wall_clocks() -> None:
    # 12:00 UTC expressed as 14:00 at +02:00 is exactly the deadline.
    plus_two = EXPIRES.astimezone(timezone(timedelta(hours=2)))
    assert effective_status(Status.PENDING, plus_two, EXPIRES, None) is Status.EXPIRED
    assert effective_status(Status.PENDING, plus_two - TICK, EXPIRES, None) is Status.PENDING


# --- the table's other columns: who acts, what is written, when the clock acts ---

REQUEST = RequestState("req-5", Status.PENDING, EXPIRES, None, 3600)
STEP = Step(actor_id="approver-1", reason="looks right", now=T0)


def test_people_take_the_actions_people_may_take_and_the_clock_the_rest() -> None:
    parties = {
        action: transition.by
        for actions in TRANSITIONS.values()
        for action, transition in actions.items()
    }
    assert parties == {
        Action.APPROVE: Party.DECIDER,
        Action.DENY: Party.DECIDER,
        Action.REVOKE: Party.DECIDER,
        Action.CANCEL: Party.ENGINEER,
        Action.RELEASE: Party.ENGINEER,
        Action.EXPIRE: Party.CLOCK,
        Action.COMPLETE: Party.CLOCK,
        Action.AUTO_APPROVE: Party.LOCKBOX,
        Action.EMERGENCY_APPROVE: Party.LOCKBOX,
        Action.PROVIDER_APPROVE: Party.PROVIDER,
        Action.PROVIDER_DENY: Party.PROVIDER,
    }


def test_every_clock_action_has_a_deadline_and_every_deadline_a_clock_action() -> None:
    clock = {
        (status, action)
        for status, actions in TRANSITIONS.items()
        for action, transition in actions.items()
        if transition.by is Party.CLOCK
    }
    assert {(d.status, d.action) for d in DEADLINES} == clock


# Audited under a name of their own: how the request got there matters.
OWN_AUDIT_NAMES = {
    Action.EMERGENCY_APPROVE: "request.emergency_approved",
    Action.PROVIDER_APPROVE: "request.provider_approved",
    Action.PROVIDER_DENY: "request.provider_denied",
}


def test_each_transition_is_audited_under_the_name_of_its_outcome() -> None:
    for actions in TRANSITIONS.values():
        for action, transition in actions.items():
            expected = OWN_AUDIT_NAMES.get(action, f"request.{transition.target.value.lower()}")
            assert (action, transition.audit.value) == (action, expected)


def test_approval_opens_a_window_of_the_requested_duration_and_records_the_decider() -> None:
    transition = transition_for(REQUEST, Action.APPROVE, T0)
    assert transition.writes(REQUEST, STEP) == Columns(
        decided_at=T0,
        decided_by_id="approver-1",
        decision_reason="looks right",
        access_starts_at=T0,
        access_ends_at=T0 + timedelta(hours=1),
        granted_resources=REQUEST.resources,
    )


def test_revocation_closes_the_window_now_and_keeps_the_approval_on_record() -> None:
    approved = replace(REQUEST, status=Status.APPROVED, access_ends_at=T0 + timedelta(hours=1))
    transition = transition_for(approved, Action.REVOKE, T0)
    unexplained = transition.writes(approved, replace(STEP, reason=None))
    assert unexplained == Columns(access_ends_at=T0)  # decided_* untouched


def test_people_act_on_the_status_the_clock_reads_the_clock_on_the_stored_one() -> None:
    late = EXPIRES + TICK
    with pytest.raises(InvalidState, match="cannot approve request req-5: it is EXPIRED"):
        transition_for(REQUEST, Action.APPROVE, late)
    assert transition_for(REQUEST, Action.EXPIRE, late).target is Status.EXPIRED


def test_the_clock_does_not_act_before_its_deadline() -> None:
    with pytest.raises(InvalidState, match="cannot expire request req-5: it is not due yet"):
        transition_for(REQUEST, Action.EXPIRE, EXPIRES - TICK)
    assert due_action(REQUEST, EXPIRES - TICK) is None
    assert due_action(REQUEST, EXPIRES) is Action.EXPIRE


def test_an_approval_opens_the_window_of_the_granted_duration_on_the_granted_resources() -> None:
    asked = replace(REQUEST, resources=("/s/a", "/s/b"))
    narrowed = replace(STEP, granted_seconds=600, granted_resources=("/s/a/x",))
    columns = transition_for(asked, Action.APPROVE, T0).writes(asked, narrowed)
    assert (columns.access_starts_at, columns.access_ends_at) == (T0, T0 + timedelta(minutes=10))
    assert columns.granted_resources == ("/s/a/x",)
    # Nobody narrowed: the grant is what was asked.
    plain = transition_for(asked, Action.APPROVE, T0).writes(asked, STEP)
    assert plain.granted_resources == ("/s/a", "/s/b")
    assert plain.access_ends_at == T0 + timedelta(hours=1)


AWAITING = replace(REQUEST, status=Status.AWAITING_PROVIDER_APPROVAL)


def test_a_provider_approval_restarts_the_customers_deadline_from_now() -> None:
    later = T0 + timedelta(hours=3)
    step = Step(actor_id="manager-1", reason=None, now=later, pending_ttl_seconds=7200)
    columns = transition_for(AWAITING, Action.PROVIDER_APPROVE, later).writes(AWAITING, step)
    assert columns == Columns(
        expires_at=later + timedelta(hours=2),
        provider_approved_at=later,
        provider_approved_by_id="manager-1",
    )


def test_a_request_awaiting_the_provider_expires_at_its_creation_deadline() -> None:
    assert effective_status(AWAITING.status, EXPIRES - TICK, EXPIRES, None) is (
        Status.AWAITING_PROVIDER_APPROVAL
    )
    assert effective_status(AWAITING.status, EXPIRES, EXPIRES, None) is Status.EXPIRED
    assert due_action(AWAITING, EXPIRES) is Action.EXPIRE
    with pytest.raises(InvalidState, match="it is EXPIRED"):
        transition_for(AWAITING, Action.PROVIDER_APPROVE, EXPIRES)


def test_a_request_starts_pending_or_awaiting_the_provider_and_nowhere_else() -> None:
    assert initial_status(provider_approval=False) is Status.PENDING
    assert initial_status(provider_approval=True) is Status.AWAITING_PROVIDER_APPROVAL
    assert {Status.PENDING, Status.AWAITING_PROVIDER_APPROVAL} == INITIAL_STATUSES
    # No transition leads back to the provider: the customer cannot lose a request.
    targets = {t.target for actions in TRANSITIONS.values() for t in actions.values()}
    assert Status.AWAITING_PROVIDER_APPROVAL not in targets
