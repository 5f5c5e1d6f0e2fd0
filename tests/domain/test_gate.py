"""The lockbox gate: whether an engineer may touch a resource right now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lockbox.domain.gate import GateFacts, denial_reason
from lockbox.domain.lifecycle import Status

CREATED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
EXPIRES = CREATED + timedelta(days=4)
STARTS = CREATED + timedelta(hours=1)
ENDS = STARTS + timedelta(hours=8)
TICK = timedelta(microseconds=1)
RG1 = "/subscriptions/contoso-prod/resourceGroups/rg1"
VM = "/subscriptions/contoso-dev/resourceGroups/rg2/virtualMachines/vm1"

OPEN = GateFacts(
    request_id="req-9",
    status=Status.APPROVED,
    expires_at=EXPIRES,
    access_starts_at=STARTS,
    access_ends_at=ENDS,
    resources=(RG1, VM),
)
INSIDE = STARTS + timedelta(hours=2)


@pytest.mark.parametrize(
    "resource",
    [RG1, f"{RG1}/providers/storage/blob", VM, f"{VM}/disks/os"],
)
def test_approved_request_inside_window_allows_its_resources(resource: str) -> None:
    assert denial_reason(OPEN, resource, INSIDE) is None


@pytest.mark.parametrize(
    "now",
    [STARTS, ENDS - TICK],
    ids=["exactly-at-start", "last-microsecond"],
)
def test_window_is_inclusive_at_start(now: datetime) -> None:
    assert denial_reason(OPEN, RG1, now) is None


def test_window_is_closed_exactly_at_its_end() -> None:
    reason = denial_reason(OPEN, RG1, ENDS)
    assert reason is not None
    assert "COMPLETED" in reason
    assert "req-9" in reason


def test_before_the_window_opens_access_is_denied() -> None:
    reason = denial_reason(OPEN, RG1, STARTS - TICK)
    assert reason is not None
    assert "not started" in reason


def test_approved_without_a_window_start_is_denied() -> None:
    facts = GateFacts("req-9", Status.APPROVED, EXPIRES, None, ENDS, (RG1,))
    assert denial_reason(facts, RG1, INSIDE) is not None


def test_window_that_outlives_the_pending_deadline_still_allows() -> None:
    late = GateFacts(
        "req-9",
        Status.APPROVED,
        EXPIRES,
        EXPIRES - timedelta(minutes=1),
        EXPIRES + timedelta(hours=8),
        (RG1,),
    )
    assert denial_reason(late, RG1, EXPIRES + timedelta(hours=1)) is None


@pytest.mark.parametrize(
    "resource",
    [
        "/subscriptions/contoso-prod/resourceGroups/rg10",
        "/subscriptions/contoso-prod/resourceGroups/rg1x/vm",
        "/subscriptions/contoso-prod/resourceGroups",
        "/subscriptions/contoso-prod",
        "/subscriptions/contoso-dev/resourceGroups/rg2",
        "/subscriptions/fabrikam-prod/resourceGroups/rg1",
    ],
)
def test_resource_outside_the_requests_resources_is_denied_naming_it(resource: str) -> None:
    reason = denial_reason(OPEN, resource, INSIDE)
    assert reason is not None
    assert resource in reason
    assert "outside" in reason


@pytest.mark.parametrize(
    "status",
    [
        Status.PENDING,
        Status.DENIED,
        Status.EXPIRED,
        Status.REVOKED,
        Status.COMPLETED,
        Status.CANCELED,
    ],
    ids=str,
)
def test_any_status_but_approved_is_denied_naming_the_status(status: Status) -> None:
    facts = GateFacts("req-9", status, EXPIRES, STARTS, ENDS, (RG1,))
    reason = denial_reason(facts, RG1, INSIDE)
    assert reason is not None
    assert status.value in reason
    assert "req-9" in reason


def test_revoked_request_denies_even_inside_its_former_window() -> None:
    facts = GateFacts("req-9", Status.REVOKED, EXPIRES, STARTS, ENDS, (RG1,))
    assert denial_reason(facts, RG1, STARTS) == "request req-9 is REVOKED"


def test_pending_request_past_its_deadline_reads_as_expired() -> None:
    facts = GateFacts("req-9", Status.PENDING, EXPIRES, None, None, (RG1,))
    reason = denial_reason(facts, RG1, EXPIRES)
    assert reason == "request req-9 is EXPIRED"
