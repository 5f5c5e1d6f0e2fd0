"""A tenant's lockbox settings: their defaults and their validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from lockbox.domain.errors import BadUserInput
from lockbox.domain.notifications import clean_address_list

DAY = 24 * 3600
MAX_PENDING_TTL = 30 * DAY
MAX_ACCESS_CEILING = 14 * DAY
MAX_REQUIRED_APPROVALS = 5
EMERGENCY_FLOOR = 60
EMERGENCY_CEILING = 4 * 3600


@dataclass(frozen=True, slots=True)
class TenantSettings:
    pending_request_ttl_seconds: int = 4 * DAY
    default_access_seconds: int = 8 * 3600
    max_access_seconds: int = 8 * 3600
    # Addresses that receive the deciders' mails but cannot decide (0 to 50).
    notification_emails: tuple[str, ...] = ()
    # Approval policy (contract section 8): distinct deciders a request needs,
    # and break-glass access with its longest window.
    required_approvals: int = 1
    allow_emergency_access: bool = False
    emergency_max_seconds: int = 3600


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadUserInput(f"{name} must be a whole number of seconds from {low} to {high}")


def _check_count(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadUserInput(f"{name} must be a whole number from {low} to {high}")


def updated_settings(
    current: TenantSettings,
    *,
    pending_request_ttl_seconds: int | None = None,
    default_access_seconds: int | None = None,
    max_access_seconds: int | None = None,
    notification_emails: Sequence[str] | None = None,
    required_approvals: int | None = None,
    allow_emergency_access: bool | None = None,
    emergency_max_seconds: int | None = None,
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
        required_approvals=current.required_approvals
        if required_approvals is None
        else required_approvals,
        allow_emergency_access=current.allow_emergency_access
        if allow_emergency_access is None
        else allow_emergency_access,
        emergency_max_seconds=current.emergency_max_seconds
        if emergency_max_seconds is None
        else emergency_max_seconds,
    )
    if not isinstance(new.allow_emergency_access, bool):
        raise BadUserInput("allowEmergencyAccess must be true or false")
    _check_count("requiredApprovals", new.required_approvals, 1, MAX_REQUIRED_APPROVALS)
    _check_range(
        "emergencyMaxSeconds", new.emergency_max_seconds, EMERGENCY_FLOOR, EMERGENCY_CEILING
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


def emergency_duration(settings: TenantSettings, requested: int | None) -> int:
    """A break-glass window: as asked, but never past `emergencyMaxSeconds`
    (a longer or omitted duration is cut to it, not refused)."""
    if requested is None:
        return settings.emergency_max_seconds
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise BadUserInput("durationSeconds must be a whole number of seconds from 1")
    return min(requested, settings.emergency_max_seconds)
