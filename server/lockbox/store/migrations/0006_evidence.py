"""Compliance evidence: signed decisions, the per-request activity hash chain,
and indexes for auditLog's filters (one request, some actions, a time range).

Activity written before this migration keeps a null hash; `audit verify`
accepts such events only before a request's first chained one."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0005_approval_policy")]

    initial = False

    operations = [
        ops.AddField(
            model_name="AccessRequest",
            name="activity_head",
            field=fields.CharField(max_length=64, null=True),
        ),
        ops.AddField(
            model_name="ActivityEvent",
            name="prev_hash",
            field=fields.CharField(max_length=64, null=True),
        ),
        ops.AddField(
            model_name="ActivityEvent",
            name="hash",
            field=fields.CharField(max_length=64, null=True),
        ),
        ops.AddIndex(
            model_name="AuditEvent",
            index=Index(fields=["tenant_id", "request_id", "seq"]),
        ),
        ops.AddIndex(
            model_name="AuditEvent",
            index=Index(fields=["tenant_id", "action", "seq"]),
        ),
        ops.AddIndex(
            model_name="AuditEvent",
            index=Index(fields=["tenant_id", "at"]),
        ),
        ops.CreateModel(
            name="Decision",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "tenant",
                    fields.ForeignKeyField(
                        "models.Tenant",
                        source_field="tenant_id",
                        db_index=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="decisions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "request",
                    fields.ForeignKeyField(
                        "models.AccessRequest",
                        source_field="request_id",
                        db_index=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="decisions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("action", fields.CharField(max_length=64)),
                ("decider_id", fields.UUIDField()),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("payload", fields.TextField(unique=False)),
                ("signature", fields.CharField(null=True, max_length=128)),
                ("key_id", fields.CharField(null=True, max_length=64)),
            ],
            options={
                "table": "decision",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A decision on a request (approval, denial, revocation...), as signed",
            },
            bases=["Model"],
        ),
    ]
