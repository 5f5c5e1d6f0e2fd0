"""A tenant's lockbox settings: their defaults and their validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from lockbox.domain.errors import BadUserInput
from lockbox.domain.notifications import clean_address_list

DAY = 24 * 3600
MAX_PENDING_TTL = 30 * DAY
MAX_ACCESS_CEILING = 14 * DAY


@dataclass(frozen=True, slots=True)
class TenantSettings:
    pending_request_ttl_seconds: int = 4 * DAY
    default_access_seconds: int = 8 * 3600
    max_access_seconds: int = 8 * 3600
    # Addresses that receive the deciders' mails but cannot decide (0 to 50).
    notification_emails: tuple[str, ...] = ()


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadUserInput(f"{name} must be a whole number of seconds from {low} to {high}")


def updated_settings(
    current: TenantSettings,
    *,
    pending_request_ttl_seconds: int | None = None,
    default_access_seconds: int | None = None,
    max_access_seconds: int | None = None,
    notification_emails: Sequence[str] | None = None,
) -> TenantSettings:
    """Apply a partial update, validating the result as a whole.

    `notification_emails` replaces the whole list (an empty one clears it);
    addresses are trimmed and repeats, compared case-insensitively, dropped.
    """
    if isinstance(notification_emails, str):
        raise BadUserInput("notificationEmails must be a list of addresses")
    new = replace(
        current,
        pending_request_ttl_seconds=current.pending_request_ttl_seconds
        if pending_request_ttl_seconds is None
        else pending_request_ttl_seconds,
        default_access_seconds=current.default_access_seconds
        if default_access_seconds is None
        else default_access_seconds,
        max_access_seconds=current.max_access_seconds
        if max_access_seconds is None
        else max_access_seconds,
        notification_emails=current.notification_emails
        if notification_emails is None
        else tuple(clean_address_list(list(notification_emails))),
    )
    _check_range("pendingRequestTtlSeconds", new.pending_request_ttl_seconds, 1, MAX_PENDING_TTL)
    _check_range("maxAccessSeconds", new.max_access_seconds, 1, MAX_ACCESS_CEILING)
    _check_range("defaultAccessSeconds", new.default_access_seconds, 1, new.max_access_seconds)
    return new


def access_duration(settings: TenantSettings, requested: int | None) -> int:
    if requested is None:
        return settings.default_access_seconds
    _check_range("durationSeconds", requested, 1, settings.max_access_seconds)
    return requested
