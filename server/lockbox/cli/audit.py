"""`lockbox audit`: checking the audit log from the shell.

With LOCKBOX_AUDIT_KEY set (the secret the server writes the chain with),
`verify` checks every link as an HMAC under it. `head` prints each tenant's
current head for keeping elsewhere; `verify --expect-head FILE` then checks
that nothing up to those heads has changed since.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lockbox.cli.common import CliError, print_result, with_database
from lockbox.domain.audit import HASHED_FIELDS, Anchor
from lockbox.domain.evidence import canonical
from lockbox.services import admin, audit, directory, evidence, signing
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


def _verifier(path: str | None) -> signing.Verifier | None:
    try:
        return None if path is None else signing.load_verifier(path)
    except signing.KeyFileError as exc:
        raise CliError(str(exc), 2) from None


def verify(args: argparse.Namespace, settings: Settings) -> None:
    """Check each tenant's hash chain, one line per tenant; exit 1 if any is broken."""
    expected = _read_heads(args.expect_head) if args.expect_head else None
    key = settings.audit_key_bytes
    verifier = _verifier(args.public_key)

    async def work() -> tuple[
        list[audit.TenantVerdict], list[evidence.EvidenceVerdict | None], list[str]
    ]:
        tenants = await _tenants(args.tenant)
        verdicts = [
            await audit.verify_tenant(
                t, key=key, expect=None if expected is None else expected.get(str(t.id))
            )
            for t in tenants
        ]
        # Decisions and activity build on an intact audit chain.
        proofs = [
            await evidence.verify_tenant_evidence(v.tenant.id, v.chain, key=key, verifier=verifier)
            if v.ok
            else None
            for v in verdicts
        ]
        missing: list[str] = []
        if expected is not None and not args.tenant:
            known = {str(t.id) for t in tenants}
            missing = [tenant_id for tenant_id in expected if tenant_id not in known]
        return verdicts, proofs, missing

    verdicts, proofs, missing = asyncio.run(
        with_database(settings.database_url, work, migrate=False)
    )
    for verdict, proof in zip(verdicts, proofs, strict=True):
        name = verdict.tenant.name
        if proof is not None and proof.problems:
            for problem in proof.problems[:SHOWN_MISMATCHES]:
                print(f"BROKEN  {name}: {problem}")
            hidden = len(proof.problems) - SHOWN_MISMATCHES
            if hidden > 0:
                print(f"BROKEN  {name}: and {hidden} more problem(s) with decisions or activity")
            continue
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
            if proof is not None:
                print(f"        {name}: {_proof_summary(proof, verifier)}")
    for tenant_id in missing:
        anchor = expected[tenant_id] if expected else None
        seq = "" if anchor is None else f" at #{anchor.seq}"
        print(f"BROKEN  tenant {tenant_id}: has a recorded head{seq} but is not in the database")
    broken = sum(
        1 for v, p in zip(verdicts, proofs, strict=True) if not v.ok or (p and p.problems)
    ) + len(missing)
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


def _proof_summary(proof: evidence.EvidenceVerdict, verifier: signing.Verifier | None) -> str:
    signed = proof.decisions - proof.unsigned
    if proof.decisions == 0:
        signatures = "no decisions"
    elif verifier is None:
        signatures = (
            f"{proof.decisions} decision(s), {signed} signed, signatures not checked "
            "(no --public-key)"
        )
        if proof.unsigned:
            signatures += f", {proof.unsigned} unsigned (no LOCKBOX_SIGNING_KEY when decided)"
    else:
        signatures = f"{proof.decisions} decision(s), every signature verifies"
    return f"{signatures}; {proof.activity} activity events, activity chains intact"


# --- export -----------------------------------------------------------------------

EXPORT_BATCH = 1000


def _moment(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{name} must be an ISO 8601 date-time, got {text!r}", 2) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def export(args: argparse.Namespace, settings: Settings) -> None:
    """Stream every audit event in chain order (tenant by tenant, by seq) to
    stdout: each line the event's id, hash, prevHash and exactly the fields
    its hash covers. A batch at a time: memory stays flat whatever the size."""
    since = _moment(args.since, "--since")
    until = _moment(args.until, "--until")
    out = sys.stdout
    writer = csv.writer(out, lineterminator="\n") if args.format == "csv" else None
    if writer is not None:
        writer.writerow(["id", "hash", "prevHash", *HASHED_FIELDS])

    def emit(line: dict[str, Any]) -> None:
        if writer is None:
            out.write(canonical(line) + "\n")
            return
        writer.writerow(
            [
                "" if line[name] is None else line[name]
                for name in ("id", "hash", "prevHash", *HASHED_FIELDS[:-1])
            ]
            + [canonical(line["detail"])]
        )

    async def work() -> None:
        for tenant in await _tenants(args.tenant):
            async for line in audit.export_lines(tenant.id, since, until, EXPORT_BATCH):
                emit(line)
            out.flush()

    try:
        asyncio.run(with_database(settings.database_url, work, migrate=False))
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None


# --- report -------------------------------------------------------------------------


def report(args: argparse.Namespace, settings: Settings) -> None:
    """One request's evidence as JSON, as accessReport serves it; exit 1 when
    it does not verify."""
    verifier = _verifier(args.public_key)
    if verifier is None and settings.signing_key is not None:
        try:
            verifier = signing.load_signer(settings.signing_key).verifier
        except signing.KeyFileError as exc:
            raise CliError(str(exc), 2) from None

    async def work() -> dict[str, Any]:
        request = await evidence.find_request(args.request_id)
        found = await evidence.build_report(
            request, key=settings.audit_key_bytes, verifier=verifier
        )
        return evidence.report_json(found)

    document = asyncio.run(with_database(settings.database_url, work, migrate=False))
    print(json.dumps(document, indent=2, ensure_ascii=False))
    if not document["verified"]:
        raise SystemExit(1)
