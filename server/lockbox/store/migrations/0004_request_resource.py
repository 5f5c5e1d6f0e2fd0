"""request_resource: one row per resource of a request, so that an approver's
scopes are filtered in SQL. Created, then filled from the existing requests.
And an index for listing a tenant's requests of one status in keyset order."""

import json
from typing import Any

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

BATCH = 500


async def backfill(apps: Any, schema_editor: Any) -> None:
    """Copy every request's `resources` into request_resource (idempotent:
    requests that already have rows are skipped)."""
    client = schema_editor.client
    dialect = client.capabilities.dialect
    mark = (lambda n: f"${n}") if dialect == "postgres" else (lambda n: "?")
    rows = await client.execute_query_dict(
        "SELECT r.id, r.resources FROM access_request r WHERE NOT EXISTS "
        "(SELECT 1 FROM request_resource rr WHERE rr.request_id = r.id)"
    )
    values: list[list[Any]] = []
    for row in rows:
        resources = row["resources"]
        if isinstance(resources, (str, bytes)):
            resources = json.loads(resources)
        for path in dict.fromkeys(resources or []):
            values.append([row["id"], path])
    insert = f"INSERT INTO request_resource (request_id, path) VALUES ({mark(1)}, {mark(2)})"
    for start in range(0, len(values), BATCH):
        await client.execute_many(insert, values[start : start + BATCH])


class Migration(migrations.Migration):
    dependencies = [("models", "0003_notifications")]

    initial = False

    operations = [
        ops.CreateModel(
            name="RequestResource",
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
                        db_index=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="resource_rows",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("path", fields.CharField(max_length=1024)),
            ],
            options={
                "table": "request_resource",
                "app": "models",
                "pk_attr": "id",
                "table_description": "One resource of a request, written with it: lets the store filter an",
            },
            bases=["Model"],
        ),
        ops.AddIndex(
            model_name="AccessRequest",
            index=Index(fields=["tenant_id", "status", "created_at", "id"]),
        ),
        ops.RunPython(backfill, ops.RunPython.noop),
    ]
