"""The Mutation root. Each resolver authenticates, calls one service and wraps
the row; the service enforces who may act (see api.permissions for why the
roles declared here are descriptive)."""

from __future__ import annotations

import strawberry

from lockbox.api.inputs import (
    AuthorizeAccessInput,
    CreateAccessRequestInput,
    LockboxSettingsInput,
)
from lockbox.api.permissions import mutation
from lockbox.api.types import (
    AccessDecision,
    AccessRequestType,
    ActivityEventType,
    LockboxInfo,
    TenantType,
)
from lockbox.api.webhooks import CreateWebhookInput, WebhookCreated, WebhookType
from lockbox.domain.lifecycle import Action
from lockbox.domain.policy import Role
from lockbox.services import gate, tenants
from lockbox.services import requests as request_service
from lockbox.services import webhooks as webhook_service

ENGINEER = (Role.ENGINEER,)
OWN_ENGINEER = "the request's own engineer"
DECIDERS = (Role.TENANT_ADMIN, Role.APPROVER)
DECIDER = "a decider of the request: an admin of its tenant, or an approver covering it"
TENANT_ADMIN = (Role.TENANT_ADMIN,)
SUPPORT_MANAGER = (Role.SUPPORT_MANAGER,)
PROVIDER = "a support manager other than the request's engineer, while it awaits the provider"


async def _transition(
    info: LockboxInfo, id: strawberry.ID, action: Action, reason: str | None = None
) -> AccessRequestType:
    actor = await info.context.actor()
    row = await request_service.transition(info.context.deps, actor, id, action, reason)
    return AccessRequestType(row=row)


@strawberry.type
class Mutation:
    @mutation(roles=ENGINEER, description="Ask for access to a tenant's resources.")
    async def create_access_request(
        self, info: LockboxInfo, input: CreateAccessRequestInput
    ) -> AccessRequestType:
        actor = await info.context.actor()
        row = await request_service.create(
            info.context.deps,
            actor,
            ticket_id=input.ticket_id,
            resources=input.resources,
            justification=input.justification,
            duration_seconds=input.duration_seconds,
            emergency=bool(input.emergency),
        )
        return AccessRequestType(row=row)

    @mutation(roles=ENGINEER, who=OWN_ENGINEER, description="Withdraw a pending request.")
    async def cancel_access_request(
        self, info: LockboxInfo, id: strawberry.ID
    ) -> AccessRequestType:
        return await _transition(info, id, Action.CANCEL)

    @mutation(roles=ENGINEER, who=OWN_ENGINEER, description="End an open access window early.")
    async def release_access(self, info: LockboxInfo, id: strawberry.ID) -> AccessRequestType:
        return await _transition(info, id, Action.RELEASE)

    @mutation(
        roles=DECIDERS,
        who=DECIDER,
        description=(
            "Approve a pending request, granting less than asked if given a shorter "
            "durationSeconds or narrower resources; the approval completing the tenant's "
            "quorum (requiredApprovals, from distinct deciders) opens the access window."
        ),
    )
    async def approve_request(
        self,
        info: LockboxInfo,
        id: strawberry.ID,
        reason: str | None = None,
        duration_seconds: int | None = None,
        resources: list[str] | None = None,
    ) -> AccessRequestType:
        actor = await info.context.actor()
        row = await request_service.approve(
            info.context.deps,
            actor,
            id,
            reason,
            duration_seconds=duration_seconds,
            resources=resources,
        )
        return AccessRequestType(row=row)

    @mutation(
        roles=DECIDERS,
        who=DECIDER,
        description=(
            "Review emergency (break-glass) access; not accepted, it is also revoked while "
            "its window is open."
        ),
    )
    async def review_emergency_access(
        self, info: LockboxInfo, id: strawberry.ID, accepted: bool, note: str | None = None
    ) -> AccessRequestType:
        actor = await info.context.actor()
        row = await request_service.review_emergency(
            info.context.deps, actor, id, accepted=accepted, note=note
        )
        return AccessRequestType(row=row)

    @mutation(
        roles=SUPPORT_MANAGER,
        who=PROVIDER,
        description="The provider's approval: the request goes to the customer (PENDING).",
    )
    async def provider_approve_request(
        self, info: LockboxInfo, id: strawberry.ID, reason: str | None = None
    ) -> AccessRequestType:
        actor = await info.context.actor()
        row = await request_service.provider_approve(info.context.deps, actor, id, reason)
        return AccessRequestType(row=row)

    @mutation(
        roles=SUPPORT_MANAGER,
        who=PROVIDER,
        description="The provider's denial: DENIED, and the customer never sees the request.",
    )
    async def provider_deny_request(
        self, info: LockboxInfo, id: strawberry.ID, reason: str | None = None
    ) -> AccessRequestType:
        return await _transition(info, id, Action.PROVIDER_DENY, reason)

    @mutation(roles=DECIDERS, who=DECIDER, description="Deny a pending request.")
    async def deny_request(
        self, info: LockboxInfo, id: strawberry.ID, reason: str | None = None
    ) -> AccessRequestType:
        return await _transition(info, id, Action.DENY, reason)

    @mutation(roles=DECIDERS, who=DECIDER, description="End an open access window now.")
    async def revoke_access(
        self, info: LockboxInfo, id: strawberry.ID, reason: str | None = None
    ) -> AccessRequestType:
        return await _transition(info, id, Action.REVOKE, reason)

    @mutation(
        roles=ENGINEER,
        who=OWN_ENGINEER,
        description="The gate: may the engineer do this now? Always recorded.",
    )
    async def authorize_access(
        self, info: LockboxInfo, input: AuthorizeAccessInput
    ) -> AccessDecision:
        actor = await info.context.actor()
        event = await gate.authorize(
            info.context.deps,
            actor,
            request_id=input.request_id,
            resource=input.resource,
            action=input.action,
            detail=input.detail,
        )
        return AccessDecision(
            allowed=event.allowed, reason=event.denial_reason, event=ActivityEventType(row=event)
        )

    @mutation(roles=TENANT_ADMIN, description="Turn lockbox on or off for the caller's tenant.")
    async def set_lockbox_enabled(self, info: LockboxInfo, enabled: bool) -> TenantType:
        actor = await info.context.actor()
        return TenantType(row=await tenants.set_lockbox_enabled(info.context.deps, actor, enabled))

    @mutation(
        roles=TENANT_ADMIN,
        description=(
            "Change the caller's tenant's expiry and access durations and its notification "
            "addresses."
        ),
    )
    async def update_lockbox_settings(
        self, info: LockboxInfo, input: LockboxSettingsInput
    ) -> TenantType:
        actor = await info.context.actor()
        row = await tenants.update_settings(
            info.context.deps,
            actor,
            pending_request_ttl_seconds=input.pending_request_ttl_seconds,
            default_access_seconds=input.default_access_seconds,
            max_access_seconds=input.max_access_seconds,
            notification_emails=input.notification_emails,
            required_approvals=input.required_approvals,
            allow_emergency_access=input.allow_emergency_access,
            emergency_max_seconds=input.emergency_max_seconds,
        )
        return TenantType(row=row)

    @mutation(
        roles=TENANT_ADMIN,
        description=(
            "Send the caller's tenant's events to an HTTP endpoint, signed with a secret "
            "that is shown only in this answer."
        ),
    )
    async def create_webhook(self, info: LockboxInfo, input: CreateWebhookInput) -> WebhookCreated:
        actor = await info.context.actor()
        row, secret = await webhook_service.create_webhook(
            info.context.deps, actor, input.url, input.events
        )
        return WebhookCreated(webhook=WebhookType(row=row), secret=secret)

    @mutation(
        roles=TENANT_ADMIN,
        description="Delete one of the caller's tenant's webhooks; undelivered events are dropped.",
    )
    async def delete_webhook(self, info: LockboxInfo, id: strawberry.ID) -> bool:
        actor = await info.context.actor()
        return await webhook_service.delete_webhook(info.context.deps, actor, id)
