"""`lockbox audit`: checking the audit log from the shell.

With LOCKBOX_AUDIT_KEY set (the secret the server writes the chain with),
`verify` checks every link as an HMAC under it. `head` prints each tenant's
current head for keeping elsewhere; `verify --expect-head FILE` then checks
that nothing up to those heads has changed since.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from lockbox.cli.common import CliError, print_result, with_database
from lockbox.domain.audit import Anchor
from lockbox.services import admin, audit, directory
from lockbox.settings import Settings
from lockbox.store.models import Tenant

# How many request mismatches to list per tenant before summing up the rest.
SHOWN_MISMATCHES = 20


async def _tenants(ref: str | None) -> list[Tenant]:
    return [await admin.find_tenant(ref)] if ref else await directory.list_tenants()


def _read_heads(path: str) -> dict[str, Anchor]:
    """The heads `audit head --json` wrote, by tenant id."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", 2) from None
    except ValueError:
        raise CliError(
            f"{path} is not JSON (write it with 'lockbox audit head --json')", 2
        ) from None
    heads: dict[str, Anchor] = {}
    entries = data if isinstance(data, list) else [data]
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("tenantId"), str)
            and isinstance(entry.get("seq"), int)
            and not isinstance(entry.get("seq"), bool)
            and entry["seq"] >= 0
            and (entry.get("hash") is None or isinstance(entry.get("hash"), str))
        ):
            raise CliError(
                f"{path} is not a list of heads as 'lockbox audit head --json' writes them", 2
            )
        heads[entry["tenantId"]] = Anchor(seq=entry["seq"], hash=entry.get("hash"))
    return heads


def verify(args: argparse.Namespace, settings: Settings) -> None:
    """Check each tenant's hash chain, one line per tenant; exit 1 if any is broken."""
    expected = _read_heads(args.expect_head) if args.expect_head else None
    key = settings.audit_key_bytes

    async def work() -> tuple[list[audit.TenantVerdict], list[str]]:
        tenants = await _tenants(args.tenant)
        verdicts = [
            await audit.verify_tenant(
                t, key=key, expect=None if expected is None else expected.get(str(t.id))
            )
            for t in tenants
        ]
        missing: list[str] = []
        if expected is not None and not args.tenant:
            known = {str(t.id) for t in tenants}
            missing = [tenant_id for tenant_id in expected if tenant_id not in known]
        return verdicts, missing

    verdicts, missing = asyncio.run(with_database(settings.database_url, work, migrate=False))
    for verdict in verdicts:
        name = verdict.tenant.name
        if verdict.broken is not None:
            where = (
                f"event #{verdict.broken.seq} (id {verdict.broken.event_id})"
                if verdict.broken.event_id
                else f"the end of the chain (#{verdict.broken.seq})"
            )
            print(f"BROKEN  {name}: at {where}: {verdict.broken.reason}")
        elif verdict.requests:
            for mismatch in verdict.requests[:SHOWN_MISMATCHES]:
                event = "" if mismatch.seq is None else f" (chain event #{mismatch.seq})"
                print(f"BROKEN  {name}: request {mismatch.request_id}{event}: {mismatch.reason}")
            hidden = len(verdict.requests) - SHOWN_MISMATCHES
            if hidden > 0:
                print(f"BROKEN  {name}: and {hidden} more request(s) that differ from the chain")
        else:
            anchored = ""
            if expected is not None:
                recorded = str(verdict.tenant.id) in expected
                anchored = ", recorded head matches" if recorded else ", no recorded head"
            print(f"ok      {name}: {verdict.events} events, chain intact{anchored}")
    for tenant_id in missing:
        anchor = expected[tenant_id] if expected else None
        seq = "" if anchor is None else f" at #{anchor.seq}"
        print(f"BROKEN  tenant {tenant_id}: has a recorded head{seq} but is not in the database")
    broken = sum(1 for v in verdicts if not v.ok) + len(missing)
    total = sum(v.events for v in verdicts)
    print(f"{len(verdicts)} tenant(s), {total} events, {broken} broken chain(s)")
    if broken:
        raise SystemExit(1)


def head(args: argparse.Namespace, settings: Settings) -> None:
    """Print each tenant's current audit head (tenant id, name, seq, hash)."""

    async def work() -> list[audit.Head]:
        return [audit.head_of(t) for t in await _tenants(args.tenant)]

    heads = asyncio.run(with_database(settings.database_url, work, migrate=False))
    text = "\n".join(f"{h.tenant_id}  {h.name}  #{h.seq}  {h.hash or '-'}" for h in heads)
    print_result([h.as_json() for h in heads], args.json, text)
