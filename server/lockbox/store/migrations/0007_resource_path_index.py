"""An index on request_resource.path, in byte order, so that an approver's
listing can start from the few resources within its scopes (see
store.queries._TouchesScopes) rather than walk the tenant's requests.

PostgreSQL's default collation depends on the database; the queries compare
paths COLLATE "C" and the index must use the same collation to serve them.
SQLite's default (BINARY) collation is already byte order."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

INDEX = "idx_request_resource_path"


async def create_index(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    collate = ' COLLATE "C"' if client.capabilities.dialect == "postgres" else ""
    await client.execute_script(
        f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "request_resource" ("path"{collate})'
    )


async def drop_index(apps: Any, schema_editor: Any) -> None:
    await schema_editor.client.execute_script(f'DROP INDEX IF EXISTS "{INDEX}"')


class Migration(migrations.Migration):
    dependencies = [("models", "0006_evidence")]

    initial = False

    operations = [
        ops.RunPython(create_index, drop_index),
    ]
