"""authorizeAccess: the gate in front of customer data."""

from __future__ import annotations

import json
import uuid
from typing import Any

from lockbox.domain import policy
from lockbox.domain.errors import BadUserInput, NotFound
from lockbox.domain.gate import GateFacts, denial_reason
from lockbox.domain.lifecycle import Status
from lockbox.domain.policy import Actor
from lockbox.domain.resources import parse_path
from lockbox.realtime.topics import activity_topic
from lockbox.services.deps import Deps
from lockbox.services.requests import facts_of, visible
from lockbox.store import queries as store
from lockbox.store.models import ActivityEvent

MAX_ACTION = 200
MAX_DETAIL_BYTES = 16 * 1024


def _validate(resource: str, action: str, detail: Any) -> str:
    parse_path(resource)
    action = action.strip()
    if not action or len(action) > MAX_ACTION:
        raise BadUserInput(f"action must be 1 to {MAX_ACTION} characters")
    if detail is not None and len(json.dumps(detail)) > MAX_DETAIL_BYTES:
        raise BadUserInput(f"detail is larger than {MAX_DETAIL_BYTES} bytes of JSON")
    return action


async def authorize(
    deps: Deps, actor: Actor, *, request_id: str, resource: str, action: str, detail: Any
) -> ActivityEvent:
    """Decide and record one engineer action, in one transaction.

    The request row is locked while deciding, so a revocation that has
    committed is always seen, and activity numbers follow commit order.
    """
    action = _validate(resource, action, detail)
    key = store.as_uuid(request_id)
    async with store.transaction():
        request = visible(actor, None if key is None else await store.lock_request(key))
        if request is None:
            raise NotFound(f"access request {request_id} not found")
        policy.require_own_engineer(actor, facts_of(request), "use")
        now = deps.clock.now()
        facts = GateFacts(
            request_id=str(request.id),
            status=Status(request.status),
            expires_at=request.expires_at,
            access_starts_at=request.access_starts_at,
            access_ends_at=request.access_ends_at,
            resources=tuple(request.resources),
        )
        reason = denial_reason(facts, resource, now)
        event = await store.append_activity(
            request,
            at=now,
            engineer_id=uuid.UUID(actor.id),
            resource=resource,
            action=action,
            allowed=reason is None,
            denial_reason=reason,
            detail=detail,
        )
    await deps.publish(activity_topic(request.id), {"seq": event.seq})
    return event
