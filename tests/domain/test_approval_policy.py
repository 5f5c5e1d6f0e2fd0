"""The approval policy's rules without a database (contract section 8):
quorum, narrowing, break-glass durations, the provider's pre-approval."""

from __future__ import annotations

import pytest

from lockbox.domain.errors import BadUserInput, Forbidden, InvalidState
from lockbox.domain.lifecycle import Party
from lockbox.domain.policy import (
    Actor,
    ApprovalFacts,
    Grant,
    RequestFacts,
    Role,
    can_decide,
    can_see,
    grant_of,
    narrowed,
    require_new_approver,
    require_party,
)
from lockbox.domain.tenant_settings import TenantSettings, emergency_duration, updated_settings

A = "/subscriptions/acme/rg-a"
B = "/subscriptions/acme/rg-b"
ASKED = (A, B)
HOUR = 3600


def approval(who: str, seconds: int | None = None, *resources: str) -> ApprovalFacts:
    return ApprovalFacts(who, seconds, tuple(resources) if resources else None)


# --- narrowing ----------------------------------------------------------------


def test_nobody_narrowing_grants_what_was_asked() -> None:
    assert grant_of(HOUR, ASKED, [approval("x"), approval("y")]) == Grant(HOUR, ASKED)


def test_the_shortest_duration_wins_whatever_the_order() -> None:
    for order in ([600, 1800], [1800, 600]):
        approvals = [approval(str(i), s) for i, s in enumerate(order)]
        assert grant_of(HOUR, ASKED, approvals).seconds == 600


def test_the_last_approver_who_narrowed_resources_sets_them() -> None:
    approvals = [approval("x", None, A), approval("y"), approval("z", None, f"{A}/vm1")]
    assert grant_of(HOUR, ASKED, approvals).resources == (f"{A}/vm1",)


@pytest.mark.parametrize("seconds", [0, -1, HOUR + 1, True])
def test_a_duration_outside_1_to_the_requested_one_is_bad_input(seconds: int) -> None:
    with pytest.raises(BadUserInput, match="durationSeconds"):
        narrowed("r1", HOUR, Grant(HOUR, ASKED), seconds, None)


def test_resources_must_lie_within_what_is_granted_so_far_segment_wise() -> None:
    so_far = Grant(HOUR, (A,))
    assert narrowed("r1", HOUR, so_far, 60, [f"{A}/vm1", A]) == (60, (f"{A}/vm1", A))
    for wider in ([B], [f"{A}2"], ["/subscriptions/acme"], []):
        with pytest.raises(BadUserInput):
            narrowed("r1", HOUR, so_far, None, wider)


def test_malformed_resources_are_bad_input() -> None:
    with pytest.raises(BadUserInput):
        narrowed("r1", HOUR, Grant(HOUR, ASKED), None, [f"{A}/../rg-b"])


def test_a_decider_approves_once() -> None:
    require_new_approver("r1", "y", [approval("x")])
    with pytest.raises(InvalidState, match="already approved by you"):
        require_new_approver("r1", "x", [approval("x")])


# --- who decides, who sees ----------------------------------------------------

FACTS = RequestFacts(id="r1", tenant_id="t1", engineer_id="eng", resources=(A,))
HIDDEN = RequestFacts(
    id="r1", tenant_id="t1", engineer_id="eng", resources=(A,), customer_visible=False
)
ADMIN = Actor("adm", "admin", Role.TENANT_ADMIN, "t1")
AUDITOR = Actor("aud", "auditor", Role.AUDITOR, "t1")
APPROVER = Actor("apr", "approver", Role.APPROVER, "t1", ("/subscriptions/acme",))
ENGINEER = Actor("eng", "engineer", Role.ENGINEER, None)
MANAGER = Actor("mgr", "manager", Role.SUPPORT_MANAGER, None)
OPERATOR = Actor("op", "operator", Role.OPERATOR_ADMIN, None)


def test_a_request_awaiting_the_provider_does_not_exist_for_the_customer() -> None:
    for customer in (ADMIN, AUDITOR, APPROVER):
        assert can_see(customer, FACTS)
        assert not can_see(customer, HIDDEN)
        assert not can_decide(customer, HIDDEN)
    for provider_side in (ENGINEER, MANAGER, OPERATOR):
        assert can_see(provider_side, HIDDEN)


def test_only_a_support_manager_other_than_the_requester_approves_for_the_provider() -> None:
    require_party(MANAGER, HIDDEN, Party.PROVIDER, "provider-approve")
    for other in (ADMIN, APPROVER, ENGINEER, OPERATOR, None):
        with pytest.raises(Forbidden):
            require_party(other, HIDDEN, Party.PROVIDER, "provider-approve")
    own = RequestFacts(id="r2", tenant_id="t1", engineer_id="mgr", resources=(A,))
    with pytest.raises(Forbidden, match="their own"):
        require_party(MANAGER, own, Party.PROVIDER, "provider-approve")


# --- settings -----------------------------------------------------------------


def test_policy_settings_default_to_one_approval_and_no_break_glass() -> None:
    defaults = TenantSettings()
    assert (defaults.required_approvals, defaults.allow_emergency_access) == (1, False)
    assert defaults.emergency_max_seconds == 3600


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"required_approvals": 0}, "requiredApprovals"),
        ({"required_approvals": 6}, "requiredApprovals"),
        ({"emergency_max_seconds": 59}, "emergencyMaxSeconds"),
        ({"emergency_max_seconds": 14_401}, "emergencyMaxSeconds"),
    ],
)
def test_policy_settings_out_of_range_are_bad_input(change: dict[str, int], message: str) -> None:
    with pytest.raises(BadUserInput, match=message):
        updated_settings(TenantSettings(), **change)  # type: ignore[arg-type]


def test_policy_settings_at_their_bounds_are_accepted() -> None:
    low = updated_settings(TenantSettings(), required_approvals=1, emergency_max_seconds=60)
    high = updated_settings(
        TenantSettings(),
        required_approvals=5,
        emergency_max_seconds=14_400,
        allow_emergency_access=True,
    )
    assert (low.required_approvals, low.emergency_max_seconds) == (1, 60)
    assert (high.required_approvals, high.emergency_max_seconds, high.allow_emergency_access) == (
        5,
        14_400,
        True,
    )


def test_a_break_glass_window_is_cut_to_the_maximum_not_refused() -> None:
    settings = TenantSettings(emergency_max_seconds=900)
    assert emergency_duration(settings, None) == 900
    assert emergency_duration(settings, 8 * HOUR) == 900
    assert emergency_duration(settings, 300) == 300
    with pytest.raises(BadUserInput):
        emergency_duration(settings, 0)
