"""Tortoise models. Everything Lockbox keeps lives in these tables."""

from __future__ import annotations

import uuid
from typing import Any

from tortoise import fields
from tortoise.models import Model

from lockbox.domain.lifecycle import INITIAL, Status
from lockbox.domain.notifications import Channel, DeliveryStatus
from lockbox.domain.policy import Role
from lockbox.domain.tenant_settings import TenantSettings

DEFAULTS = TenantSettings()


class Tenant(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    name = fields.CharField(max_length=200, unique=True)
    lockbox_enabled = fields.BooleanField(default=True)
    resource_roots: fields.Field[list[str]] = fields.JSONField(default=list)
    pending_request_ttl_seconds = fields.IntField(default=DEFAULTS.pending_request_ttl_seconds)
    default_access_seconds = fields.IntField(default=DEFAULTS.default_access_seconds)
    max_access_seconds = fields.IntField(default=DEFAULTS.max_access_seconds)
    # Head of the tenant's audit hash chain. Appending locks this row, which
    # serialises the chain across processes.
    audit_seq = fields.BigIntField(default=0)
    audit_head = fields.CharField(max_length=64, null=True)
    # Addresses that receive the deciders' mails without being able to decide.
    notification_emails: fields.Field[list[str]] = fields.JSONField(default=list)
    # Approval policy: approvals a request needs, and break-glass access. The
    # database defaults let existing rows take the new columns on migration.
    required_approvals = fields.IntField(
        default=DEFAULTS.required_approvals, db_default=DEFAULTS.required_approvals
    )
    allow_emergency_access = fields.BooleanField(
        default=DEFAULTS.allow_emergency_access, db_default=DEFAULTS.allow_emergency_access
    )
    emergency_max_seconds = fields.IntField(
        default=DEFAULTS.emergency_max_seconds, db_default=DEFAULTS.emergency_max_seconds
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tenant"


class Principal(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    name = fields.CharField(max_length=200, unique=True)
    email = fields.CharField(max_length=320, null=True)
    role = fields.CharEnumField(Role, max_length=32)
    tenant: fields.ForeignKeyNullableRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="principals", null=True, on_delete=fields.RESTRICT
    )
    scopes: fields.Field[list[str]] = fields.JSONField(default=list)
    disabled_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    tenant_id: uuid.UUID | None

    class Meta:
        table = "principal"


class ApiToken(Model):
    """An API token. Only the SHA-256 of the secret is kept."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    principal: fields.ForeignKeyRelation[Principal] = fields.ForeignKeyField(
        "models.Principal", related_name="tokens", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    label = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)

    principal_id: uuid.UUID

    class Meta:
        table = "api_token"


class SupportTicket(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="tickets", on_delete=fields.RESTRICT
    )
    title = fields.CharField(max_length=500)
    is_open = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    tenant_id: uuid.UUID

    class Meta:
        table = "support_ticket"


class AccessRequest(Model):
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="requests", on_delete=fields.RESTRICT
    )
    ticket: fields.ForeignKeyRelation[SupportTicket] = fields.ForeignKeyField(
        "models.SupportTicket", related_name="requests", on_delete=fields.RESTRICT
    )
    engineer: fields.ForeignKeyRelation[Principal] = fields.ForeignKeyField(
        "models.Principal", related_name="requests", on_delete=fields.RESTRICT
    )
    resources: fields.Field[list[str]] = fields.JSONField(default=list)
    justification = fields.TextField()
    duration_seconds = fields.IntField()
    status = fields.CharEnumField(Status, max_length=32, db_index=True, default=INITIAL)
    created_at = fields.DatetimeField(db_index=True)
    expires_at = fields.DatetimeField()
    decided_at = fields.DatetimeField(null=True)
    decided_by: fields.ForeignKeyNullableRelation[Principal] = fields.ForeignKeyField(
        "models.Principal", related_name="decisions", null=True, on_delete=fields.RESTRICT
    )
    decision_reason = fields.TextField(null=True)
    access_starts_at = fields.DatetimeField(null=True)
    access_ends_at = fields.DatetimeField(null=True)
    # Approval policy. The tenant's requiredApprovals when the request was made;
    # what the approval granted (the gate checks these; null until approved).
    required_approvals = fields.IntField(default=1, db_default=1)
    granted_resources: fields.Field[list[str] | None] = fields.JSONField(null=True)
    # Break-glass: approved at once, listed for review until a decider reviews it.
    emergency = fields.BooleanField(default=False, db_default=False)
    emergency_reviewed_at = fields.DatetimeField(null=True)
    emergency_reviewed_by_id = fields.UUIDField(null=True)
    emergency_review_accepted = fields.BooleanField(null=True)
    emergency_review_note = fields.TextField(null=True)
    # Provider pre-approval: while it is needed (and for good once the
    # provider denied it) the request does not exist for the customer; the
    # provider's approval clears it.
    needs_provider_approval = fields.BooleanField(default=False, db_default=False)
    provider_approved_at = fields.DatetimeField(null=True)
    provider_approved_by_id = fields.UUIDField(null=True)
    # When the status last changed (or the request was created); lets a
    # subscriber catch up on changes after a broker outage.
    updated_at = fields.DatetimeField(null=True, db_index=True)
    # Activity events of this request are numbered 1, 2, 3… Taking the next
    # number locks this row, so numbers are handed out in commit order.
    activity_seq = fields.BigIntField(default=0)
    # Hash of the newest activity event (the head of the request's activity
    # chain), read with the row lock the gate takes anyway.
    activity_head = fields.CharField(max_length=64, null=True)

    tenant_id: uuid.UUID
    ticket_id: uuid.UUID
    engineer_id: uuid.UUID
    decided_by_id: uuid.UUID | None

    class Meta:
        table = "access_request"
        # Lists walk a tenant's requests of one status in keyset order and
        # stop at the page's end (instead of sorting every match).
        indexes = (("tenant_id", "status", "created_at", "id"),)


class RequestApproval(Model):
    """One decider's approval of a request (a quorum is several of these).

    `duration_seconds`/`resources` are the approver's narrowing (null: none);
    no semicolon above: the first line becomes the table's SQL comment."""

    id = fields.BigIntField(primary_key=True)
    request: fields.ForeignKeyRelation[AccessRequest] = fields.ForeignKeyField(
        "models.AccessRequest", related_name="approvals", on_delete=fields.RESTRICT
    )
    approver: fields.ForeignKeyRelation[Principal] = fields.ForeignKeyField(
        "models.Principal", related_name="approvals", on_delete=fields.RESTRICT
    )
    at = fields.DatetimeField()
    reason = fields.TextField(null=True)
    duration_seconds = fields.IntField(null=True)
    resources: fields.Field[list[str] | None] = fields.JSONField(null=True)

    request_id: uuid.UUID
    approver_id: uuid.UUID

    class Meta:
        table = "request_approval"
        # One approval per decider: a second one cannot count twice.
        unique_together = (("request", "approver"),)


class RequestResource(Model):
    """One resource of a request, written with it: lets the store filter an
    approver's scopes in SQL (each resource must lie within one of them)."""

    id = fields.BigIntField(primary_key=True)
    request: fields.ForeignKeyRelation[AccessRequest] = fields.ForeignKeyField(
        "models.AccessRequest",
        related_name="resource_rows",
        on_delete=fields.CASCADE,
        db_index=True,
    )
    path = fields.CharField(max_length=1024)

    request_id: uuid.UUID

    class Meta:
        table = "request_resource"


class ActivityEvent(Model):
    id = fields.BigIntField(primary_key=True)
    request: fields.ForeignKeyRelation[AccessRequest] = fields.ForeignKeyField(
        "models.AccessRequest", related_name="activity", on_delete=fields.RESTRICT
    )
    seq = fields.BigIntField()
    at = fields.DatetimeField()
    engineer: fields.ForeignKeyRelation[Principal] = fields.ForeignKeyField(
        "models.Principal", related_name="activity", on_delete=fields.RESTRICT
    )
    resource = fields.CharField(max_length=1024)
    action = fields.CharField(max_length=200)
    allowed = fields.BooleanField()
    denial_reason = fields.TextField(null=True)
    detail: fields.Field[Any] = fields.JSONField(null=True)
    # The request's activity hash chain (domain.evidence); null on events
    # written before it existed.
    prev_hash = fields.CharField(max_length=64, null=True)
    hash = fields.CharField(max_length=64, null=True)

    request_id: uuid.UUID
    engineer_id: uuid.UUID

    class Meta:
        table = "activity_event"
        unique_together = (("request", "seq"),)


class AuditEvent(Model):
    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="audit_events", on_delete=fields.RESTRICT
    )
    seq = fields.BigIntField()
    at = fields.DatetimeField()
    action = fields.CharField(max_length=100)
    actor_id = fields.UUIDField(null=True)
    request_id = fields.UUIDField(null=True)
    detail: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    prev_hash = fields.CharField(max_length=64, null=True)
    hash = fields.CharField(max_length=64)

    tenant_id: uuid.UUID

    class Meta:
        table = "audit_event"
        unique_together = (("tenant", "seq"),)
        # auditLog's filters: one request's events, some actions, a time range.
        indexes = (
            ("tenant_id", "request_id", "seq"),
            ("tenant_id", "action", "seq"),
            ("tenant_id", "at"),
        )


class Decision(Model):
    """A decision on a request (approval, denial, revocation...), as signed
    with LOCKBOX_SIGNING_KEY: `payload` is the canonical JSON text the
    signature is over, kept byte for byte."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="decisions", on_delete=fields.RESTRICT, db_index=True
    )
    request: fields.ForeignKeyRelation[AccessRequest] = fields.ForeignKeyField(
        "models.AccessRequest", related_name="decisions", on_delete=fields.RESTRICT, db_index=True
    )
    action = fields.CharField(max_length=64)
    decider_id = fields.UUIDField()
    at = fields.DatetimeField()
    payload = fields.TextField()
    signature = fields.CharField(max_length=128, null=True)
    key_id = fields.CharField(max_length=64, null=True)

    tenant_id: uuid.UUID
    request_id: uuid.UUID

    class Meta:
        table = "decision"


class Webhook(Model):
    """A tenant's HTTP endpoint for events. The secret signs deliveries and is
    never served back (it is shown once, when the webhook is created)."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="webhooks", on_delete=fields.RESTRICT
    )
    url = fields.CharField(max_length=2048)
    events: fields.Field[list[str]] = fields.JSONField(default=list)  # empty: every event
    secret = fields.CharField(max_length=128)
    enabled = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    last_delivery_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)

    tenant_id: uuid.UUID

    class Meta:
        table = "webhook"


class Notification(Model):
    """The outbox: one mail or webhook delivery, written in the transaction of
    the change that causes it and sent by a delivery worker afterwards."""

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="notifications", on_delete=fields.RESTRICT
    )
    request_id = fields.UUIDField(null=True)
    channel = fields.CharEnumField(Channel, max_length=16)
    event = fields.CharField(max_length=64)
    recipient = fields.CharField(max_length=320, null=True)  # the address, for mail
    webhook: fields.ForeignKeyNullableRelation[Webhook] = fields.ForeignKeyField(
        "models.Webhook", related_name="deliveries", null=True, on_delete=fields.SET_NULL
    )
    payload: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    # A worker that claims a row owns it until then; a claim left by a
    # process that died runs out and the row is claimed again.
    claimed_until = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(db_index=True)
    sent_at = fields.DatetimeField(null=True)

    tenant_id: uuid.UUID
    webhook_id: uuid.UUID | None

    class Meta:
        table = "notification"
