"""The approval policy over the API (contract section 8), on a real server."""

from __future__ import annotations

from typing import Any

from tests.api.helpers import CREATE, DEV, JUSTIFICATION, PROD
from tests.conftest import Live, World
from tests.support import WsClient

POLICY = """
mutation($input: LockboxSettingsInput!) {
  updateLockboxSettings(input: $input) {
    settings { requiredApprovals allowEmergencyAccess emergencyMaxSeconds }
  }
}"""
APPROVE = """
mutation($id: ID!, $seconds: Int, $resources: [String!], $reason: String) {
  approveRequest(id: $id, reason: $reason, durationSeconds: $seconds, resources: $resources) {
    id status requiredApprovals resources grantedResources accessStartsAt accessEndsAt
    approvals { approver { name } at reason durationSeconds resources }
  }
}"""
REVIEW = """
mutation($id: ID!, $accepted: Boolean!, $note: String) {
  reviewEmergencyAccess(id: $id, accepted: $accepted, note: $note) {
    id status emergency emergencyReview { reviewer { name } accepted note }
  }
}"""
UPDATES = "subscription { accessRequestUpdates { id status emergency } }"


async def set_policy(live: Live, world: World, **settings: Any) -> dict[str, Any]:
    data = await live.http.data(world.token("contoso-admin"), POLICY, input=settings)
    result: dict[str, Any] = data["updateLockboxSettings"]["settings"]
    return result


async def create(live: Live, world: World, **extra: Any) -> dict[str, Any]:
    payload = {
        "ticketId": world.ticket("contoso"),
        "resources": extra.pop("resources", [PROD]),
        "justification": JUSTIFICATION,
        **extra,
    }
    data = await live.http.data(world.token("engineer-alice"), CREATE, input=payload)
    request: dict[str, Any] = data["createAccessRequest"]
    return request


async def test_policy_settings_default_and_change_within_their_ranges(
    live: Live, world: World
) -> None:
    assert await set_policy(live, world) == {
        "requiredApprovals": 1,
        "allowEmergencyAccess": False,
        "emergencyMaxSeconds": 3600,
    }
    changed = {"requiredApprovals": 5, "allowEmergencyAccess": True, "emergencyMaxSeconds": 60}
    assert await set_policy(live, world, **changed) == changed
    admin = world.token("contoso-admin")
    for bad in ({"requiredApprovals": 6}, {"emergencyMaxSeconds": 14_401}):
        assert await live.http.error_code(admin, POLICY, input=bad) == "BAD_USER_INPUT"
    assert await set_policy(live, world) == changed


async def test_an_approval_is_recorded_and_a_repeat_by_the_same_decider_is_invalid_state(
    live: Live, world: World
) -> None:
    await set_policy(live, world, requiredApprovals=2)
    request = await create(live, world, resources=[PROD, DEV], durationSeconds=3600)
    admin, prod = world.token("contoso-admin"), world.token("contoso-approver-prod")

    first = (
        await live.http.data(
            admin, APPROVE, id=request["id"], seconds=1200, resources=[PROD], reason="prod only"
        )
    )["approveRequest"]
    assert (first["status"], first["requiredApprovals"], first["grantedResources"]) == (
        "PENDING",
        2,
        None,
    )
    assert first["approvals"][0]["approver"] == {"name": "contoso-admin"}
    assert first["approvals"][0]["durationSeconds"] == 1200
    again = await live.http.error_code(admin, APPROVE, id=request["id"])
    assert again == "INVALID_STATE"
    # Approvers covering only part of the request are no deciders of it.
    for approver in (prod, world.token("contoso-approver-dev")):
        assert await live.http.error_code(approver, APPROVE, id=request["id"]) == "NOT_FOUND"
    still = await live.http.data(
        admin,
        "query($id: ID!) { accessRequest(id: $id) { status approvals { reason } } }",
        id=request["id"],
    )
    assert still["accessRequest"] == {"status": "PENDING", "approvals": [{"reason": "prod only"}]}


async def test_the_second_approver_opens_the_narrowest_window(live: Live, world: World) -> None:
    await set_policy(live, world, requiredApprovals=2)
    request = await create(live, world, durationSeconds=3600)
    admin, prod = world.token("contoso-admin"), world.token("contoso-approver-prod")
    await live.http.data(admin, APPROVE, id=request["id"], seconds=600)

    code = await live.http.error_code(prod, APPROVE, id=request["id"], resources=[DEV])
    assert code == "BAD_USER_INPUT"
    done = (await live.http.data(prod, APPROVE, id=request["id"], resources=[f"{PROD}/vm1"]))[
        "approveRequest"
    ]

    assert done["status"] == "APPROVED"
    assert done["resources"] == [PROD]
    assert done["grantedResources"] == [f"{PROD}/vm1"]
    assert [a["approver"]["name"] for a in done["approvals"]] == [
        "contoso-admin",
        "contoso-approver-prod",
    ]
    assert live.clock.now().isoformat() <= done["accessStartsAt"]
    audit = await live.http.data(
        admin, "{ auditLog(first: 200) { edges { node { action requestId } } } }"
    )
    actions = [
        e["node"]["action"]
        for e in audit["auditLog"]["edges"]
        if e["node"]["requestId"] == request["id"]
    ]
    assert actions == [
        "request.created",
        "request.approval_recorded",
        "request.approval_recorded",
        "request.approved",
    ]


async def test_break_glass_is_forbidden_when_off_and_announced_at_once_when_on(
    live: Live, world: World
) -> None:
    payload = {"ticketId": world.ticket("contoso"), "resources": [PROD]}
    body = await live.http.call(
        world.token("engineer-alice"),
        CREATE,
        input={**payload, "justification": JUSTIFICATION, "emergency": True},
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    await set_policy(live, world, allowEmergencyAccess=True, emergencyMaxSeconds=600)
    watcher = WsClient(live.ws_url)
    await watcher.connect(world.token("contoso-approver-prod"))
    try:
        await watcher.subscribe("u", UPDATES)
        warmup = await create(live, world)
        assert (await watcher.next_data())["accessRequestUpdates"]["id"] == warmup["id"]
        request = await create(live, world, emergency=True, durationSeconds=8 * 3600)
        update = (await watcher.next_data())["accessRequestUpdates"]
    finally:
        await watcher.close()

    assert (update["id"], update["status"], update["emergency"]) == (
        request["id"],
        "APPROVED",
        True,
    )
    assert request["status"] == "APPROVED"
    assert request["durationSeconds"] == 600
    reviewed = (
        await live.http.data(
            world.token("contoso-approver-prod"),
            REVIEW,
            id=request["id"],
            accepted=False,
            note="no incident",
        )
    )["reviewEmergencyAccess"]
    assert reviewed == {
        "id": request["id"],
        "status": "REVOKED",
        "emergency": True,
        "emergencyReview": {
            "reviewer": {"name": "contoso-approver-prod"},
            "accepted": False,
            "note": "no incident",
        },
    }
