"""Approval policy (contract section 8): the tenant's quorum and break-glass
settings; each request's quorum, granted resources, emergency review and
provider pre-approval; one row per approval (request_approval). The status
column widens for AWAITING_PROVIDER_APPROVAL.

Requests approved before this have no granted_resources: the gate then
checks their resources, which is what they were granted."""

import functools
from json import dumps, loads
from typing import Any

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from lockbox.domain.lifecycle import Status

STATUS_DESCRIPTION = "\n".join(f"{s.value}: {s.value}" for s in Status)


class WidenOnPostgres(ops.AlterField):
    """A wider VARCHAR, altered where the length is enforced (PostgreSQL).
    SQLite ignores VARCHAR lengths, and altering a column there rebuilds the
    table: dropping the old access_request would cascade to request_resource."""

    async def database_forward(
        self,
        app_label: str,
        old_state: Any,
        new_state: Any,
        state_editor: Any = None,
    ) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect == "postgres":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(
        self,
        app_label: str,
        old_state: Any,
        new_state: Any,
        state_editor: Any = None,
    ) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect == "postgres":
            await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [("models", "0004_request_resource")]

    initial = False

    operations = [
        ops.CreateModel(
            name="RequestApproval",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "request",
                    fields.ForeignKeyField(
                        "models.AccessRequest",
                        source_field="request_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="approvals",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "approver",
                    fields.ForeignKeyField(
                        "models.Principal",
                        source_field="approver_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="approvals",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("reason", fields.TextField(null=True, unique=False)),
                ("duration_seconds", fields.IntField(null=True)),
                (
                    "resources",
                    fields.JSONField(
                        null=True,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
            ],
            options={
                "table": "request_approval",
                "app": "models",
                "unique_together": (("request", "approver"),),
                "pk_attr": "id",
                "table_description": (
                    "One decider's approval of a request (a quorum is several of these)."
                ),
            },
            bases=["Model"],
        ),
        WidenOnPostgres(
            model_name="AccessRequest",
            name="status",
            field=fields.CharEnumField(
                default=Status.PENDING,
                db_index=True,
                description=STATUS_DESCRIPTION,
                enum_type=Status,
                max_length=32,
            ),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="emergency",
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="emergency_review_accepted",
            field=fields.BooleanField(null=True),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="emergency_review_note",
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="emergency_reviewed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="emergency_reviewed_by_id",
            field=fields.UUIDField(null=True),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="granted_resources",
            field=fields.JSONField(
                null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
            ),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="needs_provider_approval",
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="provider_approved_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="provider_approved_by_id",
            field=fields.UUIDField(null=True),
        ),
        ops.AddField(
            model_name="AccessRequest",
            name="required_approvals",
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name="Tenant",
            name="allow_emergency_access",
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name="Tenant",
            name="emergency_max_seconds",
            field=fields.IntField(default=3600, db_default=3600),
        ),
        ops.AddField(
            model_name="Tenant",
            name="required_approvals",
            field=fields.IntField(default=1, db_default=1),
        ),
    ]
