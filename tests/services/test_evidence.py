"""Compliance evidence in the services: signed decisions written with the
change they record, the activity hash chain written by the gate's group
commit, and each kind of tampering found and named."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from lockbox.domain.evidence import (
    ActivityHead,
    activity_hash,
    canonical,
    digest,
    verify_activity,
)
from lockbox.domain.lifecycle import Action
from lockbox.services import audit, evidence, gate, requests, signing, tenants
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from lockbox.store.models import AccessRequest
from tests.conftest import Stack, World
from tests.e2e.cli_support import Sql

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"


async def _request(deps: Deps, world: World) -> AccessRequest:
    return await requests.create(
        deps,
        world.actors["engineer-alice"],
        ticket_id=world.ticket("contoso"),
        resources=[PROD],
        justification="evidence",
        duration_seconds=3600,
    )


async def _approved(deps: Deps, world: World) -> AccessRequest:
    request = await _request(deps, world)
    return await requests.transition(
        deps, world.actors["contoso-admin"], str(request.id), Action.APPROVE, "ok"
    )


async def _use(deps: Deps, world: World, request: AccessRequest, count: int) -> None:
    alice = world.actors["engineer-alice"]
    await asyncio.gather(
        *(
            gate.authorize(
                deps,
                alice,
                request_id=str(request.id),
                resource=f"{PROD}/vm{n}",
                action="read",
                detail={"n": n, "note": "é"},
            )
            for n in range(count)
        )
    )


async def _tenant_evidence(
    deps: Deps, world: World, verifier: signing.Verifier | None
) -> list[str]:
    tenant = await store.get_tenant(world.tenant("contoso"))
    assert tenant is not None
    verdict = await audit.verify_tenant(tenant, key=deps.audit_key)
    assert verdict.ok, verdict
    proof = await evidence.verify_tenant_evidence(
        tenant.id, verdict.chain, key=deps.audit_key, verifier=verifier
    )
    return proof.problems


@pytest.fixture
def signer(tmp_path: Path, deps: Deps) -> signing.Signer:
    deps.signer = signing.generate(str(tmp_path / "signing.pem"))
    return deps.signer


def test_a_generated_key_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    signer = signing.generate(str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert signing.load_signer(str(path)).key_id == signer.key_id
    with pytest.raises(signing.KeyFileError, match="already exists"):
        signing.generate(str(path))


@pytest.mark.parametrize(
    ("action", "then"),
    [(Action.APPROVE, None), (Action.DENY, None), (Action.APPROVE, Action.REVOKE)],
)
async def test_each_decision_is_signed_over_its_canonical_payload(
    deps: Deps, world: World, signer: signing.Signer, action: Action, then: Action | None
) -> None:
    request = await _request(deps, world)
    admin = world.actors["contoso-admin"]
    await requests.transition(deps, admin, str(request.id), action, "why")
    if then is not None:
        deps.clock.advance(60)  # type: ignore[attr-defined]
        await requests.transition(deps, admin, str(request.id), then, "enough")
    decisions = await evidence.decisions_of(request)
    recorded_as = {
        Action.APPROVE: "request.approved",
        Action.DENY: "request.denied",
        Action.REVOKE: "request.revoked",
    }
    # An approval is recorded as one of the quorum, then as the approval it completes.
    expected = (["request.approval_recorded"] if action is Action.APPROVE else []) + [
        recorded_as[action]
    ]
    expected += [recorded_as[then]] if then else []
    assert [d.action for d in decisions] == expected
    public = load_pem_public_key(signer.verifier.public_pem)
    latest = await store.get_request(request.id)
    assert latest is not None
    for row in decisions:
        payload = evidence.payload_of(row)
        assert row.payload == canonical(payload)  # stored exactly as signed
        assert payload["requestId"] == str(request.id)
        assert payload["tenantId"] == world.tenant("contoso")
        assert payload["deciderId"] == admin.id
        assert payload["action"] == row.action
        assert payload["resources"] == [PROD]
        assert payload["contentHash"] == audit.content_hash_of(latest)
        assert row.key_id == signer.key_id
        # Anyone can check it with the public key and the standard library's json.
        message = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        public.verify(base64.b64decode(row.signature or ""), message.encode())  # type: ignore[union-attr]
    if action is Action.APPROVE:
        assert evidence.payload_of(decisions[0])["accessEndsAt"] is None  # not yet open
        assert evidence.payload_of(decisions[1])["accessEndsAt"] is not None
    # The audit event that records each decision carries its digest.
    events = await store.audit_of_request(request.tenant_id, request.id)
    marked = [e.detail.get("decisionHash") for e in events if "decisionHash" in e.detail]
    assert marked == [digest(evidence.payload_of(d)) for d in decisions]
    assert await _tenant_evidence(deps, world, signer.verifier) == []


async def test_without_a_key_decisions_are_unsigned_and_the_engineer_s_own_actions_are_none(
    deps: Deps, world: World
) -> None:
    request = await _request(deps, world)
    await requests.transition(deps, world.actors["engineer-alice"], str(request.id), Action.CANCEL)
    approved = await _approved(deps, world)
    await requests.transition(
        deps, world.actors["engineer-alice"], str(approved.id), Action.RELEASE
    )
    assert await evidence.decisions_of(request) == []
    decisions = await evidence.decisions_of(approved)
    assert [d.action for d in decisions] == ["request.approval_recorded", "request.approved"]
    assert all(d.signature is None and d.key_id is None for d in decisions)
    assert await _tenant_evidence(deps, world, None) == []


async def test_the_gate_chains_activity_in_its_group_commit_and_the_end_anchors_it(
    deps: Deps, world: World
) -> None:
    request = await _approved(deps, world)
    await _use(deps, world, request, 12)
    rows = await store.activity_of(request.id)
    assert [r.seq for r in rows] == list(range(1, 13))
    assert rows[0].prev_hash is None
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    latest = await store.get_request(request.id)
    assert latest is not None
    assert (latest.activity_seq, latest.activity_head) == (12, rows[-1].hash)

    await requests.transition(deps, world.actors["contoso-admin"], str(request.id), Action.REVOKE)
    events = await store.audit_of_request(request.tenant_id, request.id)
    assert events[-1].action == "request.revoked"
    assert events[-1].detail["activityHead"] == {"seq": 12, "hash": rows[-1].hash}
    assert "activityHead" not in events[-2].detail  # only the final event carries it
    assert await _tenant_evidence(deps, world, None) == []


async def test_keyed_activity_links_are_hmacs(deps: Deps, world: World) -> None:
    deps.audit_key = b"a secret outside the database"
    request = await _approved(deps, world)
    await _use(deps, world, request, 3)
    rows = await store.activity_of(request.id)
    records = [evidence.stored_activity(r) for r in rows]
    assert activity_hash(None, records[0].record) != rows[0].hash
    assert activity_hash(None, records[0].record, deps.audit_key) == rows[0].hash
    head = ActivityHead(3, rows[-1].hash)
    assert verify_activity(str(request.id), records, head, None, key=deps.audit_key) == []
    (problem,) = verify_activity(str(request.id), records, head, None)
    assert "activity #1" in problem and "hash does not match" in problem


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder"])
async def test_tampered_activity_is_found_and_named(
    deps: Deps, world: World, database: Stack, tamper: str
) -> None:
    request = await _approved(deps, world)
    await _use(deps, world, request, 5)
    await requests.transition(deps, world.actors["contoso-admin"], str(request.id), Action.REVOKE)
    rows = await store.activity_of(request.id)
    third = rows[2]
    sql = Sql(database.database_url)
    if tamper == "edit":
        await sql.execute(
            f"UPDATE activity_event SET resource = '/elsewhere' WHERE id = {third.id}"
        )
        named = f"activity #3 (id {third.id}): hash does not match"
    elif tamper == "delete":
        await sql.execute(f"DELETE FROM activity_event WHERE id = {third.id}")
        named = "expected activity #3 here"
    else:
        await sql.execute(
            f"UPDATE activity_event SET seq = -1 WHERE id = {rows[1].id}",
            f"UPDATE activity_event SET seq = 2 WHERE id = {third.id}",
            f"UPDATE activity_event SET seq = 3 WHERE id = {rows[1].id}",
        )
        named = f"activity #2 (id {third.id}): prevHash does not match"
    problems = await _tenant_evidence(deps, world, None)
    assert len(problems) == 1, problems
    assert str(request.id) in problems[0] and named in problems[0], problems


async def test_deleting_the_tail_and_the_row_head_together_is_caught_by_the_audit_chain(
    deps: Deps, world: World, database: Stack
) -> None:
    request = await _approved(deps, world)
    await _use(deps, world, request, 4)
    await requests.transition(deps, world.actors["contoso-admin"], str(request.id), Action.REVOKE)
    rows = await store.activity_of(request.id)
    await Sql(database.database_url).execute(
        f"DELETE FROM activity_event WHERE id = {rows[-1].id}",
        f"UPDATE access_request SET activity_seq = 3, activity_head = '{rows[-2].hash}' "
        f"WHERE id = '{request.id}'",
    )
    problems = await _tenant_evidence(deps, world, None)
    assert problems == [
        f"request {request.id}: activity ends at #3 but the audit chain recorded #4 with hash "
        f"{(rows[-1].hash or '')[:16]} when the request ended"
    ]


async def test_tampered_decisions_are_found_and_named(
    deps: Deps, world: World, database: Stack, signer: signing.Signer, tmp_path: Path
) -> None:
    flipped = await _approved(deps, world)
    forged = await _approved(deps, world)
    deleted = await _approved(deps, world)
    rows = {
        r.id: next(d for d in await evidence.decisions_of(r) if d.action == "request.approved")
        for r in (flipped, forged, deleted)
    }
    other = signing.generate(str(tmp_path / "other.pem"))
    sql = Sql(database.database_url)
    # A flipped byte in a payload (the window made one second longer).
    payload = rows[flipped.id].payload
    ends = evidence.payload_of(rows[flipped.id])["accessEndsAt"]
    later = ends.replace(ends[18], str((int(ends[18]) + 1) % 10), 1)
    edited = payload.replace(ends, later)
    assert edited != payload
    # A signature from another key, over the very same payload.
    signature = other.sign(evidence.payload_of(rows[forged.id]))
    await sql.execute(
        f"UPDATE decision SET payload = '{edited}' WHERE id = {rows[flipped.id].id}",
        f"UPDATE decision SET signature = '{signature}' WHERE id = {rows[forged.id].id}",
        f"DELETE FROM decision WHERE id = {rows[deleted.id].id}",
    )
    problems = await _tenant_evidence(deps, world, signer.verifier)
    by_request = {r: [p for p in problems if str(r.id) in p] for r in (flipped, forged, deleted)}
    assert len(problems) == 4, problems

    def named(request: AccessRequest) -> str:
        return f"decision {rows[request.id].id} (request.approved on request {request.id}): "

    assert by_request[flipped] == [
        named(flipped) + "payload is not the one the audit chain recorded (edited)",
        named(flipped) + f"signature does not verify under key {signer.key_id}",
    ]
    assert by_request[forged] == [
        named(forged) + f"signature does not verify under key {signer.key_id}"
    ]
    (gone,) = by_request[deleted]
    assert "approved decision recorded by audit event #" in gone or "request.approved" in gone
    assert gone.endswith("is missing (deleted)")
    # Without the public key, the digests in the audit chain still catch two of them.
    assert len(await _tenant_evidence(deps, world, None)) == 2


# --- every kind of decision (contract sections 8 and 9) ------------------------------------


async def _signed_kinds(
    deps: Deps, request: AccessRequest, verifier: signing.Verifier
) -> list[str]:
    """The actions of a request's decisions, each checked against its signature."""
    rows = await evidence.decisions_of(request)
    for row in rows:
        assert row.signature is not None
        assert verifier.verifies(evidence.payload_of(row), row.signature)
    return [row.action for row in rows]


async def test_approvals_and_emergency_reviews_are_signed(
    deps: Deps, world: World, signer: signing.Signer
) -> None:
    admin = world.actors["contoso-admin"]
    approved = await _request(deps, world)
    await requests.approve(deps, admin, str(approved.id), "looks right")
    assert await _signed_kinds(deps, approved, signer.verifier) == [
        "request.approval_recorded",
        "request.approved",
    ]
    await tenants.update_settings(
        deps,
        admin,
        pending_request_ttl_seconds=None,
        default_access_seconds=None,
        max_access_seconds=None,
        allow_emergency_access=True,
    )
    emergency = await requests.create(
        deps,
        world.actors["engineer-alice"],
        ticket_id=world.ticket("contoso"),
        resources=[PROD],
        justification="outage",
        duration_seconds=600,
        emergency=True,
    )
    assert await evidence.decisions_of(emergency) == []  # nobody decided: break-glass
    await requests.review_emergency(deps, admin, str(emergency.id), accepted=False, note="no")
    assert await _signed_kinds(deps, emergency, signer.verifier) == [
        "request.emergency_reviewed",
        "request.revoked",
    ]
    assert await _tenant_evidence(deps, world, signer.verifier) == []


@pytest.mark.parametrize("action", [Action.PROVIDER_APPROVE, Action.PROVIDER_DENY])
async def test_provider_decisions_are_signed(
    deps: Deps, world: World, signer: signing.Signer, action: Action
) -> None:
    deps.provider_approval = True
    request = await _request(deps, world)
    manager = world.actors["support-manager"]
    if action is Action.PROVIDER_APPROVE:
        await requests.provider_approve(deps, manager, str(request.id), "fine")
    else:
        await requests.transition(deps, manager, str(request.id), action, "not this one")
    expected = {
        Action.PROVIDER_APPROVE: "request.provider_approved",
        Action.PROVIDER_DENY: "request.provider_denied",
    }
    assert await _signed_kinds(deps, request, signer.verifier) == [expected[action]]
    (row,) = await evidence.decisions_of(request)
    assert evidence.payload_of(row)["deciderId"] == manager.id
    assert await _tenant_evidence(deps, world, signer.verifier) == []
