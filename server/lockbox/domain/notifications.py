"""Notifications: what is announced, to whom, how it is signed and retried.

Mail and webhook deliveries are rows of an outbox (store.models.Notification)
written in the transaction of the change that causes them; a delivery worker
in every process sends them afterwards. These are the rules they follow.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from lockbox.domain.errors import BadUserInput
from lockbox.domain.lifecycle import Status


class Channel(StrEnum):
    EMAIL = "EMAIL"
    WEBHOOK = "WEBHOOK"


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class Event(StrEnum):
    """Webhook event types (contract section 6); mails are sent on some of them."""

    REQUEST_CREATED = "access_request.created"
    REQUEST_APPROVED = "access_request.approved"
    REQUEST_DENIED = "access_request.denied"
    REQUEST_EXPIRED = "access_request.expired"
    REQUEST_REVOKED = "access_request.revoked"
    REQUEST_COMPLETED = "access_request.completed"
    REQUEST_CANCELED = "access_request.canceled"
    # Break-glass access was approved at once and waits for a decider's review.
    REQUEST_EMERGENCY = "access_request.emergency"
    ACTIVITY_DENIED = "activity.denied"


# The event a request's new status announces.
STATUS_EVENTS: dict[Status, Event] = {
    Status.PENDING: Event.REQUEST_CREATED,
    Status.APPROVED: Event.REQUEST_APPROVED,
    Status.DENIED: Event.REQUEST_DENIED,
    Status.EXPIRED: Event.REQUEST_EXPIRED,
    Status.REVOKED: Event.REQUEST_REVOKED,
    Status.COMPLETED: Event.REQUEST_COMPLETED,
    Status.CANCELED: Event.REQUEST_CANCELED,
}


class Audience(StrEnum):
    """Who a mail is written for; each has its own text."""

    DECIDER = "decider"  # a decision is needed: deciders and notificationEmails
    ADMIN = "admin"  # approved without a decision: tenant admins and notificationEmails
    ENGINEER = "engineer"  # the outcome of the engineer's own request
    EMERGENCY = "emergency"  # break-glass access is open: deciders and notificationEmails


# Outcomes the engineer is told of by mail.
ENGINEER_OUTCOMES = frozenset(
    {Event.REQUEST_APPROVED, Event.REQUEST_DENIED, Event.REQUEST_EXPIRED, Event.REQUEST_REVOKED}
)


def mail_audiences(event: Event, *, automatic: bool) -> list[Audience]:
    """Who is mailed when `event` happens (`automatic`: no decider was asked)."""
    audiences: list[Audience] = []
    if event is Event.REQUEST_CREATED:
        audiences.append(Audience.DECIDER)
    if event is Event.REQUEST_APPROVED and automatic:
        audiences.append(Audience.ADMIN)
    if event is Event.REQUEST_EMERGENCY:
        audiences.append(Audience.EMERGENCY)
    if event in ENGINEER_OUTCOMES:
        audiences.append(Audience.ENGINEER)
    return audiences


# --- addresses -------------------------------------------------------------------

MAX_NOTIFICATION_EMAILS = 50
MAX_ADDRESS = 320


def clean_address(address: str, what: str = "e-mail address") -> str:
    """A plausible mailbox `local@domain`, or BadUserInput naming it."""
    value = address.strip()
    local, at, domain = value.rpartition("@")
    valid = (
        at == "@"
        and 0 < len(value) <= MAX_ADDRESS
        and local
        and domain
        and "@" not in local
        and not domain.startswith(".")
        and not domain.endswith(".")
        and ".." not in domain
        and all(c.isprintable() and not c.isspace() and c not in '<>,;"()[]\\' for c in value)
    )
    if not valid:
        shown = value if len(value) <= 80 else value[:80] + "…"
        raise BadUserInput(f"{what} {shown!r} is not a valid e-mail address")
    return value


def clean_address_list(addresses: list[str]) -> list[str]:
    if len(addresses) > MAX_NOTIFICATION_EMAILS:
        raise BadUserInput(f"notificationEmails takes at most {MAX_NOTIFICATION_EMAILS} addresses")
    cleaned: list[str] = []
    for address in addresses:
        value = clean_address(address, "notificationEmails entry")
        if value.lower() not in (c.lower() for c in cleaned):
            cleaned.append(value)
    return cleaned


# --- webhooks ----------------------------------------------------------------------


def clean_events(events: list[str] | None) -> list[str]:
    """A webhook's event types; empty means every type."""
    if not events:
        return []
    known = {e.value for e in Event}
    unknown = [e for e in events if e not in known]
    if unknown:
        raise BadUserInput(f"unknown event type {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return sorted(set(events))


def wants(subscribed: list[str], event: Event) -> bool:
    return not subscribed or event.value in subscribed


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast and other
    non-global addresses: webhooks never reach into the provider's network."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Lockbox-Signature` header: HMAC-SHA256 over "<t>.<raw body>"."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


# --- retries -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, within a deadline."""

    first: timedelta = timedelta(seconds=10)
    longest: timedelta = timedelta(minutes=15)
    give_up_after: timedelta = timedelta(hours=24)

    def next_attempt(
        self, failed_attempts: int, created_at: datetime, now: datetime, jitter: float
    ) -> datetime | None:
        """When to try again after `failed_attempts` failures, or None to give up.

        `jitter` in [0, 1) spreads retries over the second half of the
        backoff, so deliveries that failed together do not retry together.
        """
        doublings = min(max(failed_attempts - 1, 0), 30)  # past the cap long before 2**30
        backoff = min(self.first * 2**doublings, self.longest)
        at = now + backoff * (0.5 + jitter / 2)
        return None if at > created_at + self.give_up_after else at


RETRY = RetryPolicy()


def message_id(notification_id: str, sender_domain: str) -> str:
    """A mail's Message-ID, derived from its notification: a resend is the same mail."""
    return f"<{notification_id}@{sender_domain or 'lockbox.invalid'}>"


# --- webhook targets and deliveries ---------------------------------------------------

MAX_WEBHOOK_URL = 2048
WEBHOOK_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A webhook URL, checked: where it points and on which port."""

    url: str
    host: str  # lower case, IPv6 literals without brackets
    port: int


def clean_webhook_url(url: str) -> WebhookTarget:
    """An absolute http(s) URL with a host, no credentials and nothing a
    parser could read two ways (whitespace, control characters, backslashes),
    or BadUserInput saying why. Where the host points is checked elsewhere:
    that takes a name lookup."""
    value = url.strip()
    shown = value if len(value) <= 80 else value[:80] + "…"

    def refuse(why: str) -> BadUserInput:
        return BadUserInput(f"url {shown!r} {why}")

    if not value or len(value) > MAX_WEBHOOK_URL:
        raise BadUserInput(f"url must be 1 to {MAX_WEBHOOK_URL} characters")
    if any(not c.isprintable() or c.isspace() or c == "\\" for c in value):
        raise refuse("contains whitespace, control characters or a backslash")
    parts = urlsplit(value)
    if parts.scheme.lower() not in WEBHOOK_SCHEMES or not value.lower().startswith(
        f"{parts.scheme.lower()}://"
    ):
        raise refuse("must be an absolute http:// or https:// URL")
    if "@" in parts.netloc:
        raise refuse("must not carry credentials")
    host = parts.hostname
    if not host:
        raise refuse("has no host")
    try:
        port = parts.port
    except ValueError:
        raise refuse("has an invalid port") from None
    if port == 0:
        raise refuse("has an invalid port")
    default_port = 443 if parts.scheme.lower() == "https" else 80
    return WebhookTarget(url=value, host=host, port=port or default_port)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (6to4, NAT64), if any."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public_target(address: str) -> bool:
    """Whether a webhook may be delivered to `address` (an IP address as the
    resolver gives it, an IPv6 zone allowed). Stricter than is_public_address:
    also refuses reserved and site-local addresses, IPv6 addresses carrying a
    non-public IPv4 one, and anything that is not an address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if not is_public_address(address) or ip.is_reserved or ip.is_unspecified:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public_target(str(embedded)):
            return False
    return True


def delivery_body(
    notification_id: str, event: str, occurred_at: datetime, tenant_id: str, data: dict[str, Any]
) -> bytes:
    """The raw body of a webhook delivery: compact UTF-8 JSON, signed as sent."""
    when = occurred_at if occurred_at.tzinfo is not None else occurred_at.replace(tzinfo=UTC)
    body = {
        "id": notification_id,
        "type": event,
        "occurredAt": when.astimezone(UTC).isoformat(),
        "tenantId": tenant_id,
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
