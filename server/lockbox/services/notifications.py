"""What the outbox is told when something happens.

Called from inside a change (services.writing), so the rows commit or roll
back with the change that causes them; the delivery worker (services.outbox)
sends them afterwards. A change that writes a row wakes the workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from lockbox.domain import cursors, policy
from lockbox.domain.nodes import Numbered, numbered_id
from lockbox.domain.notifications import (
    Audience,
    Channel,
    Event,
    mail_audiences,
    wants,
)
from lockbox.domain.policy import Role
from lockbox.realtime.topics import OUTBOX_TOPIC
from lockbox.services.auth import actor_of
from lockbox.services.writing import Change
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest, ActivityEvent, Notification, Principal, Tenant


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


async def request_event(
    change: Change,
    request: AccessRequest,
    event: Event,
    *,
    automatic: bool = False,
    mail: bool = True,
) -> None:
    """Stage the mails and webhook deliveries of one request event.

    `automatic`: the request was approved without a decision (lockbox
    disabled). `mail`: False for a creation that is approved at once, whose
    mails are those of the approval.
    """
    tenant = await store.get_tenant(request.tenant_id)
    assert tenant is not None  # a request's tenant is a foreign key
    # A request the provider has not approved (or denied) does not exist for
    # the customer: no webhook of theirs, no mail but the engineer's.
    hidden = request.needs_provider_approval
    webhooks = [
        w
        for w in ([] if hidden else await store.enabled_webhooks([tenant.id]))
        if wants(w.events, event)
    ]
    mailing = mail and change.deps.mail_enabled
    audiences = mail_audiences(event, automatic=automatic) if mailing else []
    if hidden:
        audiences = [a for a in audiences if a is Audience.ENGINEER]
    if not webhooks and not audiences:
        return
    data = await _request_data(request, tenant, automatic)
    rows = [
        _row(change, tenant.id, request.id, event, data, webhook_id=webhook.id)
        for webhook in webhooks
    ]
    for audience in audiences:
        for address in await _recipients(audience, request, tenant):
            payload = {**data, "audience": audience.value}
            rows.append(_row(change, tenant.id, request.id, event, payload, recipient=address))
    await _stage(change, rows)


async def activity_denied(change: Change, denied: Iterable[ActivityEvent]) -> None:
    """Stage `activity.denied` deliveries for refused gate calls, for the
    tenants whose webhooks ask for them (one query; nothing for allowed calls)."""
    by_request = await store.get_requests(list({event.request_id for event in denied}))
    tenant_of = {request.id: request.tenant_id for request in by_request}
    webhooks = await store.enabled_webhooks(list(set(tenant_of.values())))
    wanted = [w for w in webhooks if wants(w.events, Event.ACTIVITY_DENIED)]
    if not wanted:
        return
    engineers = {p.id: p for p in await store.get_principals([e.engineer_id for e in denied])}
    rows: list[Notification] = []
    for activity in denied:
        tenant_id = tenant_of[activity.request_id]
        engineer = engineers.get(activity.engineer_id)
        data = {
            "requestId": str(activity.request_id),
            # The ActivityEvent's id as the API serves it (domain.nodes).
            "activityId": str(numbered_id(Numbered.ACTIVITY, activity.id)),
            "seq": activity.seq,
            # A receiver may resume engineerActivity from the attempt it was told of.
            "cursor": cursors.encode_int(cursors.ACTIVITY, activity.seq),
            "at": _iso(activity.at),
            "engineerId": str(activity.engineer_id),
            "engineer": None if engineer is None else engineer.name,
            "resource": activity.resource,
            "action": activity.action,
            "denialReason": activity.denial_reason,
        }
        rows.extend(
            _row(
                change,
                tenant_id,
                activity.request_id,
                Event.ACTIVITY_DENIED,
                data,
                webhook_id=webhook.id,
            )
            for webhook in wanted
            if webhook.tenant_id == tenant_id
        )
    await _stage(change, rows)


async def _stage(change: Change, rows: list[Notification]) -> None:
    if rows:
        await store.insert_notifications(rows)
        change.announce(OUTBOX_TOPIC, {})


def _row(
    change: Change,
    tenant_id: Any,
    request_id: Any,
    event: Event,
    payload: dict[str, Any],
    *,
    recipient: str | None = None,
    webhook_id: Any = None,
) -> Notification:
    return Notification(
        tenant_id=tenant_id,
        request_id=request_id,
        channel=Channel.EMAIL if recipient is not None else Channel.WEBHOOK,
        event=event.value,
        recipient=recipient,
        webhook_id=webhook_id,
        payload=payload,
        next_attempt_at=change.now,
        created_at=change.now,
    )


async def _request_data(request: AccessRequest, tenant: Tenant, automatic: bool) -> dict[str, Any]:
    """The facts of a request event, as webhook `data` and mail content."""
    ticket = await store.get_ticket(request.ticket_id)
    people = {
        p.id: p
        for p in await store.get_principals(
            [i for i in (request.engineer_id, request.decided_by_id) if i is not None]
        )
    }
    engineer = people.get(request.engineer_id)
    decider = None if request.decided_by_id is None else people.get(request.decided_by_id)
    return {
        "requestId": str(request.id),
        "tenantId": str(tenant.id),
        "tenantName": tenant.name,
        "ticketId": str(request.ticket_id),
        "ticketTitle": None if ticket is None else ticket.title,
        "engineerId": str(request.engineer_id),
        "engineer": None if engineer is None else engineer.name,
        "resources": list(request.resources),
        "justification": request.justification,
        "durationSeconds": request.duration_seconds,
        "status": request.status.value,
        "createdAt": _iso(request.created_at),
        "expiresAt": _iso(request.expires_at),
        "decidedAt": _iso(request.decided_at),
        "decidedBy": None if decider is None else decider.name,
        "decisionReason": request.decision_reason,
        "accessStartsAt": _iso(request.access_starts_at),
        "accessEndsAt": _iso(request.access_ends_at),
        "automatic": automatic,
        "emergency": request.emergency,
        "requiredApprovals": request.required_approvals,
        "grantedResources": request.granted_resources,
    }


async def _recipients(audience: Audience, request: AccessRequest, tenant: Tenant) -> list[str]:
    """The addresses one audience of a request event is mailed at, each once."""
    people: list[Principal] = []
    extra: list[str] = []
    if audience is Audience.ENGINEER:
        engineer = await store.get_principal(request.engineer_id)
        people = [] if engineer is None or engineer.disabled_at is not None else [engineer]
    else:
        facts = policy.RequestFacts(
            id=str(request.id),
            tenant_id=str(request.tenant_id),
            engineer_id=str(request.engineer_id),
            resources=tuple(request.resources),
        )
        candidates = await store.deciders_with_email(tenant.id)
        if audience in (Audience.DECIDER, Audience.EMERGENCY):
            people = [p for p in candidates if policy.can_decide(actor_of(p), facts)]
        else:
            people = [p for p in candidates if p.role is Role.TENANT_ADMIN]
        extra = list(tenant.notification_emails)
    addresses: dict[str, str] = {}
    for address in [p.email for p in people if p.email] + extra:
        addresses.setdefault(address.lower(), address)
    return list(addresses.values())
