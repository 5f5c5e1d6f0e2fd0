"""Names of the wake-up topics."""

from __future__ import annotations

# Every access request status change: {"id", "tenant", "engineer", "status"}.
REQUESTS_TOPIC = "requests"

# New deliveries in the outbox: {} (the delivery workers look for due rows).
OUTBOX_TOPIC = "outbox"


def activity_topic(request_id: object) -> str:
    """New activity on a request: {"seq"}."""
    return f"activity:{request_id}"


def principal_topic(principal_id: object) -> str:
    """A principal's token was revoked or the principal disabled."""
    return f"principal:{principal_id}"
