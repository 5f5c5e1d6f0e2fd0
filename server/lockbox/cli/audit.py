"""`lockbox audit`: checking the audit log from the shell."""

from __future__ import annotations

import argparse
import asyncio

from lockbox.cli.common import with_database
from lockbox.services import admin, audit, directory
from lockbox.settings import Settings


def verify(args: argparse.Namespace, settings: Settings) -> None:
    """Check each tenant's hash chain, one line per tenant; exit 1 if any is broken."""

    async def work() -> list[audit.TenantVerdict]:
        if args.tenant:
            tenants = [await admin.find_tenant(args.tenant)]
        else:
            tenants = await directory.list_tenants()
        return [await audit.verify_tenant(t) for t in tenants]

    verdicts = asyncio.run(with_database(settings.database_url, work, migrate=False))
    for verdict in verdicts:
        if verdict.broken is None:
            print(f"ok      {verdict.tenant.name}: {verdict.events} events, chain intact")
        else:
            where = (
                f"event #{verdict.broken.seq} (id {verdict.broken.event_id})"
                if verdict.broken.event_id
                else "the end of the chain"
            )
            print(f"BROKEN  {verdict.tenant.name}: at {where}: {verdict.broken.reason}")
    broken = sum(1 for v in verdicts if v.broken is not None)
    total = sum(v.events for v in verdicts)
    print(f"{len(verdicts)} tenant(s), {total} events, {broken} broken chain(s)")
    if broken:
        raise SystemExit(1)
