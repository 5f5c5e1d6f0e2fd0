"""Tenant-wide lockbox switch and settings, changed by a TENANT_ADMIN."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from lockbox.domain import policy
from lockbox.domain.audit import AuditAction
from lockbox.domain.errors import Forbidden, NotFound
from lockbox.domain.policy import Actor, Role
from lockbox.domain.tenant_settings import TenantSettings, updated_settings
from lockbox.services.deps import Deps
from lockbox.services.writing import changing
from lockbox.store import queries as store
from lockbox.store.models import Tenant


def settings_of(tenant: Tenant) -> TenantSettings:
    return TenantSettings(
        pending_request_ttl_seconds=tenant.pending_request_ttl_seconds,
        default_access_seconds=tenant.default_access_seconds,
        max_access_seconds=tenant.max_access_seconds,
        notification_emails=tuple(tenant.notification_emails or ()),
        required_approvals=tenant.required_approvals,
        allow_emergency_access=tenant.allow_emergency_access,
        emergency_max_seconds=tenant.emergency_max_seconds,
    )


def settings_seen_by(actor: Actor, tenant: Tenant) -> TenantSettings:
    """A tenant's settings as `actor` may read them.

    Only the tenant's own TENANT_ADMINs (who set them) read
    notificationEmails; everyone else who can reach the tenant (its approvers
    and auditors, engineers and operator-side principals through a request or
    a ticket) reads an empty list: customer addresses never reach the
    operator side (contract section 10).
    """
    settings = settings_of(tenant)
    if actor.role is Role.TENANT_ADMIN and actor.tenant_id == str(tenant.id):
        return settings
    return replace(settings, notification_emails=())


def _own_tenant_id(actor: Actor, what: str) -> uuid.UUID:
    policy.require_role(actor, {Role.TENANT_ADMIN}, what)
    if actor.tenant_id is None:  # a TENANT_ADMIN always has a tenant
        raise Forbidden(f"{actor.name} belongs to no tenant")
    return uuid.UUID(actor.tenant_id)


async def set_lockbox_enabled(deps: Deps, actor: Actor, enabled: bool) -> Tenant:
    tenant_id = _own_tenant_id(actor, "setLockboxEnabled")
    async with changing(deps) as change:
        tenant = await store.lock_tenant(tenant_id)
        if tenant.lockbox_enabled != enabled:
            tenant.lockbox_enabled = enabled
            await store.save_tenant(tenant, ["lockbox_enabled"])
            await change.audit(
                tenant_id,
                AuditAction.TENANT_LOCKBOX_ENABLED
                if enabled
                else AuditAction.TENANT_LOCKBOX_DISABLED,
                actor_id=actor.id,
                detail={"lockboxEnabled": enabled},
            )
    return await _reload(tenant_id)


async def update_settings(
    deps: Deps,
    actor: Actor,
    *,
    pending_request_ttl_seconds: int | None,
    default_access_seconds: int | None,
    max_access_seconds: int | None,
    notification_emails: Sequence[str] | None = None,
    required_approvals: int | None = None,
    allow_emergency_access: bool | None = None,
    emergency_max_seconds: int | None = None,
) -> Tenant:
    """Change the caller's tenant's settings; fields left None stay as they are.

    Audited with the whole new settings, notificationEmails included (the
    audit log is read only inside the tenant)."""
    tenant_id = _own_tenant_id(actor, "updateLockboxSettings")
    async with changing(deps) as change:
        tenant = await store.lock_tenant(tenant_id)
        before = settings_of(tenant)
        after = updated_settings(
            before,
            pending_request_ttl_seconds=pending_request_ttl_seconds,
            default_access_seconds=default_access_seconds,
            max_access_seconds=max_access_seconds,
            notification_emails=notification_emails,
            required_approvals=required_approvals,
            allow_emergency_access=allow_emergency_access,
            emergency_max_seconds=emergency_max_seconds,
        )
        if after != before:
            tenant.pending_request_ttl_seconds = after.pending_request_ttl_seconds
            tenant.default_access_seconds = after.default_access_seconds
            tenant.max_access_seconds = after.max_access_seconds
            tenant.notification_emails = list(after.notification_emails)
            tenant.required_approvals = after.required_approvals
            tenant.allow_emergency_access = after.allow_emergency_access
            tenant.emergency_max_seconds = after.emergency_max_seconds
            await store.save_tenant(
                tenant,
                [
                    "pending_request_ttl_seconds",
                    "default_access_seconds",
                    "max_access_seconds",
                    "notification_emails",
                    "required_approvals",
                    "allow_emergency_access",
                    "emergency_max_seconds",
                ],
            )
            await change.audit(
                tenant_id,
                AuditAction.TENANT_SETTINGS_UPDATED,
                actor_id=actor.id,
                detail={
                    "pendingRequestTtlSeconds": after.pending_request_ttl_seconds,
                    "defaultAccessSeconds": after.default_access_seconds,
                    "maxAccessSeconds": after.max_access_seconds,
                    "notificationEmails": list(after.notification_emails),
                    "requiredApprovals": after.required_approvals,
                    "allowEmergencyAccess": after.allow_emergency_access,
                    "emergencyMaxSeconds": after.emergency_max_seconds,
                },
            )
    return await _reload(tenant_id)


async def _reload(tenant_id: uuid.UUID) -> Tenant:
    tenant = await store.get_tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant
