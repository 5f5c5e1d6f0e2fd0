"""Tenant lockbox settings and request durations: the contract's ranges."""

from __future__ import annotations

from typing import Any

import pytest

from lockbox.domain.errors import BadUserInput
from lockbox.domain.tenant_settings import TenantSettings, access_duration, updated_settings

HOUR = 3600
DAY = 24 * HOUR
DEFAULTS = TenantSettings()
# Room to move the default around without touching the max.
WIDE = TenantSettings(
    pending_request_ttl_seconds=4 * DAY, default_access_seconds=8 * HOUR, max_access_seconds=DAY
)


def test_defaults_are_four_day_pending_and_eight_hour_access() -> None:
    assert DEFAULTS.pending_request_ttl_seconds == 4 * DAY
    assert DEFAULTS.default_access_seconds == 8 * HOUR
    assert DEFAULTS.max_access_seconds == 8 * HOUR


def test_empty_update_changes_nothing() -> None:
    assert updated_settings(WIDE) == WIDE


def test_update_returns_new_settings_and_leaves_the_old_alone() -> None:
    new = updated_settings(WIDE, pending_request_ttl_seconds=DAY)
    assert new.pending_request_ttl_seconds == DAY
    assert new.default_access_seconds == WIDE.default_access_seconds
    assert new.max_access_seconds == WIDE.max_access_seconds
    assert WIDE.pending_request_ttl_seconds == 4 * DAY


@pytest.mark.parametrize("value", [1, HOUR, 30 * DAY], ids=["1s", "1h", "30d"])
def test_pending_ttl_accepts_one_second_to_thirty_days(value: int) -> None:
    new = updated_settings(WIDE, pending_request_ttl_seconds=value)
    assert new.pending_request_ttl_seconds == value


@pytest.mark.parametrize("value", [0, -1, 30 * DAY + 1], ids=["0", "-1", "30d+1"])
def test_pending_ttl_outside_range_is_refused_and_named(value: int) -> None:
    with pytest.raises(BadUserInput, match="pendingRequestTtlSeconds") as caught:
        updated_settings(WIDE, pending_request_ttl_seconds=value)
    assert caught.value.extensions == {"code": "BAD_USER_INPUT"}


@pytest.mark.parametrize("value", [8 * HOUR, DAY, 14 * DAY], ids=["8h", "1d", "14d"])
def test_max_access_accepts_up_to_fourteen_days(value: int) -> None:
    assert updated_settings(WIDE, max_access_seconds=value).max_access_seconds == value


def test_max_access_of_one_second_is_accepted_with_a_matching_default() -> None:
    new = updated_settings(WIDE, max_access_seconds=1, default_access_seconds=1)
    assert (new.max_access_seconds, new.default_access_seconds) == (1, 1)


@pytest.mark.parametrize("value", [0, -HOUR, 14 * DAY + 1], ids=["0", "-1h", "14d+1"])
def test_max_access_outside_range_is_refused_and_named(value: int) -> None:
    with pytest.raises(BadUserInput, match="maxAccessSeconds"):
        updated_settings(WIDE, max_access_seconds=value, default_access_seconds=1)


@pytest.mark.parametrize("value", [1, HOUR, DAY], ids=["1s", "1h", "equal-to-max"])
def test_default_access_accepts_one_second_up_to_max(value: int) -> None:
    assert updated_settings(WIDE, default_access_seconds=value).default_access_seconds == value


@pytest.mark.parametrize("value", [0, -1, DAY + 1], ids=["0", "-1", "max+1"])
def test_default_access_outside_range_is_refused_and_named(value: int) -> None:
    with pytest.raises(BadUserInput, match="defaultAccessSeconds"):
        updated_settings(WIDE, default_access_seconds=value)


@pytest.mark.parametrize(
    "field", ["pending_request_ttl_seconds", "default_access_seconds", "max_access_seconds"]
)
@pytest.mark.parametrize("value", [True, False, 3600.0, "3600"], ids=repr)
def test_non_integer_settings_are_refused_even_bools(field: str, value: Any) -> None:
    with pytest.raises(BadUserInput):
        updated_settings(WIDE, **{field: value})


def test_lowering_max_below_the_current_default_alone_is_refused() -> None:
    # Partial updates are validated as a whole: default 8h would exceed max 1h.
    with pytest.raises(BadUserInput, match="defaultAccessSeconds"):
        updated_settings(WIDE, max_access_seconds=HOUR)


def test_lowering_max_and_default_together_is_accepted() -> None:
    new = updated_settings(WIDE, max_access_seconds=HOUR, default_access_seconds=HOUR)
    assert (new.max_access_seconds, new.default_access_seconds) == (HOUR, HOUR)


def test_raising_default_above_the_current_max_alone_is_refused() -> None:
    with pytest.raises(BadUserInput, match="defaultAccessSeconds"):
        updated_settings(DEFAULTS, default_access_seconds=12 * HOUR)


def test_raising_default_and_max_together_is_accepted() -> None:
    new = updated_settings(DEFAULTS, default_access_seconds=12 * HOUR, max_access_seconds=DAY)
    assert (new.default_access_seconds, new.max_access_seconds) == (12 * HOUR, DAY)


def test_a_refused_update_is_all_or_nothing() -> None:
    before = WIDE
    with pytest.raises(BadUserInput):
        updated_settings(before, pending_request_ttl_seconds=DAY, max_access_seconds=0)
    assert before == WIDE


# --- access_duration ----------------------------------------------------------


def test_omitted_duration_uses_the_tenant_default() -> None:
    assert access_duration(DEFAULTS, None) == 8 * HOUR
    assert access_duration(WIDE, None) == WIDE.default_access_seconds
    custom = TenantSettings(4 * DAY, 90, 120)
    assert access_duration(custom, None) == 90


@pytest.mark.parametrize("value", [1, HOUR, 8 * HOUR], ids=["1s", "1h", "max"])
def test_duration_from_one_second_to_max_is_accepted(value: int) -> None:
    assert access_duration(DEFAULTS, value) == value


@pytest.mark.parametrize("value", [0, -1, 8 * HOUR + 1, True, False, 60.0, "60"], ids=repr)
def test_duration_outside_range_or_not_an_int_is_refused(value: Any) -> None:
    with pytest.raises(BadUserInput, match="durationSeconds"):
        access_duration(DEFAULTS, value)


def test_duration_limit_follows_the_tenants_max() -> None:
    long = updated_settings(DEFAULTS, max_access_seconds=14 * DAY)
    assert access_duration(long, 14 * DAY) == 14 * DAY
    with pytest.raises(BadUserInput):
        access_duration(long, 14 * DAY + 1)


# --- notification_emails ------------------------------------------------------


def addresses(count: int) -> list[str]:
    return [f"watcher{i}@contoso.example" for i in range(count)]


def test_notification_emails_default_to_empty_and_stay_when_omitted() -> None:
    assert DEFAULTS.notification_emails == ()
    with_list = updated_settings(WIDE, notification_emails=["sec@contoso.example"])
    assert updated_settings(with_list, max_access_seconds=HOUR, default_access_seconds=HOUR) == (
        TenantSettings(4 * DAY, HOUR, HOUR, ("sec@contoso.example",))
    )


def test_notification_emails_replace_the_whole_list_and_empty_clears_it() -> None:
    first = updated_settings(WIDE, notification_emails=["a@contoso.example", "b@contoso.example"])
    second = updated_settings(first, notification_emails=["c@contoso.example"])
    assert second.notification_emails == ("c@contoso.example",)
    assert updated_settings(second, notification_emails=[]).notification_emails == ()


def test_notification_emails_are_trimmed_and_repeats_dropped_keeping_the_first_spelling() -> None:
    new = updated_settings(
        WIDE,
        notification_emails=[" Sec@Contoso.example ", "sec@contoso.example", "ops@contoso.example"],
    )
    assert new.notification_emails == ("Sec@Contoso.example", "ops@contoso.example")


def test_fifty_notification_emails_are_accepted_fifty_one_are_not() -> None:
    assert len(updated_settings(WIDE, notification_emails=addresses(50)).notification_emails) == 50
    with pytest.raises(BadUserInput, match="notificationEmails takes at most 50"):
        updated_settings(WIDE, notification_emails=addresses(51))


@pytest.mark.parametrize(
    "bad",
    ["", "no-at-sign", "@contoso.example", "sec@", "two words@contoso.example", "a@b..c", "a@.b"],
    ids=repr,
)
def test_a_bad_notification_email_is_refused_and_named(bad: str) -> None:
    with pytest.raises(BadUserInput, match="notificationEmails entry") as caught:
        updated_settings(WIDE, notification_emails=["ok@contoso.example", bad])
    assert caught.value.extensions == {"code": "BAD_USER_INPUT"}


def test_a_bare_string_is_not_a_list_of_addresses() -> None:
    with pytest.raises(BadUserInput, match="notificationEmails"):
        updated_settings(WIDE, notification_emails="sec@contoso.example")


def test_a_bad_address_refuses_the_whole_update() -> None:
    with pytest.raises(BadUserInput):
        updated_settings(WIDE, pending_request_ttl_seconds=DAY, notification_emails=["nope"])
    # ...and a bad duration refuses good addresses with it.
    with pytest.raises(BadUserInput, match="maxAccessSeconds"):
        updated_settings(WIDE, max_access_seconds=0, notification_emails=["ok@contoso.example"])
