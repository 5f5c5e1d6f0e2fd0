"""Tenant isolation and roles (contract section 5, "Who sees what" and "Who decides").

Every operation of the contract is tried, over HTTP and WebSocket, by principals
that must not see or decide the request. Each must answer as if the request did
not exist (null, NOT_FOUND, absent from lists) or refuse by role (FORBIDDEN),
and must change nothing.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest

from lockbox.domain import policy
from lockbox.domain.lifecycle import Action
from lockbox.domain.notifications import Channel
from lockbox.domain.policy import Role
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from lockbox.store.models import Notification
from tests.api.helpers import (
    APPROVED_BY_ADMIN,
    AUDIT,
    DECIDER_OPERATIONS,
    DEV,
    FABRIKAM,
    NEEDS_APPROVED,
    OPERATIONS,
    POLICY_OPERATIONS,
    PROD,
    PROVIDER_OPERATIONS,
    act,
    allow_emergency,
    audit_events,
    create_request,
    my_tenant,
    seed_awaiting,
    seed_request,
    status,
    ws_errors,
)
from tests.conftest import Live, World
from tests.notify.webhook_support import NOWHERE, PRIVATE_WEBHOOKS
from tests.support import LEGACY_WS, TRANSPORT_WS, WsClient

OTHER_TENANT = ("fabrikam-admin", "fabrikam-approver")
OPERATOR_SIDE = ("support-manager", "operator-admin")

SEEN = """
query Seen($pending: ID!, $approved: ID!) {
  pending: accessRequest(id: $pending) { id }
  approved: accessRequest(id: $approved) { id }
  node(id: $pending) { id }
  nodes(ids: [$pending, $approved]) { id }
  pendingRequests(first: 200) { edges { node { id } } }
  accessRequests(first: 200) { edges { node { id } } }
}
"""

STATE = """
query State($pending: ID!, $approved: ID!) {
  pending: accessRequest(id: $pending) { status }
  approved: accessRequest(id: $approved) { status activity { edges { node { id } } } }
}
"""


@dataclass
class ContosoRequests:
    """Two of engineer-alice's contoso requests on contoso-prod."""

    pending: str
    approved: str

    def for_operation(self, operation: str) -> str:
        """The request on which `operation` would succeed for a rightful caller."""
        return self.approved if operation in NEEDS_APPROVED else self.pending

    @property
    def ids(self) -> dict[str, str]:
        return {"pending": self.pending, "approved": self.approved}


@pytest.fixture
async def contoso(deps: Deps, world: World) -> ContosoRequests:
    return ContosoRequests(
        pending=await seed_request(deps, world),
        approved=await seed_request(deps, world, then=APPROVED_BY_ADMIN),
    )


async def seen_by(live: Live, token: str, requests: ContosoRequests) -> dict[str, Any]:
    """What `token` can see: the two requests, by id and as nodes, and the
    ids in both lists."""
    data = await live.http.data(token, SEEN, **requests.ids)
    return {
        "pending": data["pending"],
        "approved": data["approved"],
        "node": data["node"],
        "nodes": data["nodes"],
        "pendingRequests": {e["node"]["id"] for e in data["pendingRequests"]["edges"]},
        "accessRequests": {e["node"]["id"] for e in data["accessRequests"]["edges"]},
    }


async def assert_untouched(live: Live, world: World, requests: ContosoRequests) -> None:
    """Still PENDING and APPROVED, and no activity was recorded."""
    data = await live.http.data(world.token("contoso-admin"), STATE, **requests.ids)
    assert data["pending"]["status"] == "PENDING"
    assert data["approved"]["status"] == "APPROVED"
    assert data["approved"]["activity"]["edges"] == []


async def attempt(live: Live, token: str, operation: str, request_id: str) -> dict[str, Any]:
    """The first error of an operation that must fail."""
    body = await act(live, token, operation, request_id, resource=PROD)
    assert body.get("errors"), f"{operation} succeeded: {body}"
    assert body["data"] is None
    error: dict[str, Any] = body["errors"][0]
    return error


# --- another tenant --------------------------------------------------------------


@pytest.mark.parametrize("principal", OTHER_TENANT)
async def test_other_tenant_can_neither_see_nor_act_on_a_request(
    live: Live, deps: Deps, world: World, contoso: ContosoRequests, principal: str
) -> None:
    own = await seed_request(deps, world, tenant="fabrikam")
    token = world.token(principal)

    assert await seen_by(live, token, contoso) == {
        "pending": None,
        "approved": None,
        "node": None,
        "nodes": [None, None],
        "pendingRequests": {own},
        "accessRequests": {own},
    }
    for operation in OPERATIONS:
        error = await attempt(live, token, operation, contoso.for_operation(operation))
        assert (operation, error["extensions"]["code"]) == (operation, "NOT_FOUND")
        assert error["path"] == [operation]
    # The audit log, where the role may read it at all, is fabrikam's alone.
    audit = await live.http.call(token, AUDIT)
    if audit.get("errors"):
        assert audit["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    else:
        assert "contoso" not in json.dumps(audit["data"])

    await assert_untouched(live, world, contoso)


@pytest.mark.parametrize(
    ("viewer", "own", "other"),
    [("fabrikam-admin", "fabrikam", "contoso"), ("contoso-auditor", "contoso", "fabrikam")],
)
async def test_audit_log_holds_only_the_callers_tenant(
    live: Live, deps: Deps, world: World, viewer: str, own: str, other: str
) -> None:
    mine = await seed_request(deps, world, tenant=own)
    theirs = await seed_request(
        deps, world, tenant=other, then=((Action.APPROVE, f"{other}-admin"),)
    )

    events = await audit_events(live, world.token(viewer))

    assert "request.created" in {e["action"] for e in events if e["requestId"] == mine}
    assert theirs not in {e["requestId"] for e in events}
    assert other not in json.dumps(events), "another tenant's names leaked into the audit log"
    # One unbroken chain, the tenant's own, from its first event.
    assert events[0]["prevHash"] is None
    for before, after in pairwise(events):
        assert after["prevHash"] == before["hash"]


# --- approver scopes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "approvers"),
    [
        pytest.param([PROD], ["contoso-approver-dev"], id="prod"),
        pytest.param([DEV], ["contoso-approver-prod"], id="dev"),
        pytest.param([PROD, DEV], ["contoso-approver-prod", "contoso-approver-dev"], id="both"),
    ],
)
async def test_approver_cannot_see_or_decide_outside_its_scopes(
    live: Live, deps: Deps, world: World, resources: list[str], approvers: list[str]
) -> None:
    request = await seed_request(deps, world, resources=resources)
    requests = ContosoRequests(pending=request, approved=request)

    for approver in approvers:
        seen = await seen_by(live, world.token(approver), requests)
        assert seen["pending"] is None, approver
        assert (seen["node"], seen["nodes"]) == (None, [None, None]), approver
        assert request not in seen["pendingRequests"] | seen["accessRequests"], approver
        for operation in ("approveRequest", "denyRequest"):
            error = await attempt(live, world.token(approver), operation, request)
            assert (approver, operation, error["extensions"]["code"]) == (
                approver,
                operation,
                "NOT_FOUND",
            )

    # Only the tenant admin decides it; once approved, the approver cannot revoke it.
    approved = await act(live, world.token("contoso-admin"), "approveRequest", request)
    assert approved["data"]["approveRequest"]["status"] == "APPROVED"
    for approver in approvers:
        error = await attempt(live, world.token(approver), "revokeAccess", request)
        assert (approver, error["extensions"]["code"]) == (approver, "NOT_FOUND")
    assert await status(live, world, request) == "APPROVED"


async def test_approvers_see_and_decide_requests_within_their_scopes(
    live: Live, deps: Deps, world: World
) -> None:
    prod = await seed_request(deps, world, resources=[PROD])
    dev = await seed_request(deps, world, resources=[DEV])

    for approver, request, operation, outcome in [
        ("contoso-approver-prod", prod, "approveRequest", "APPROVED"),
        ("contoso-approver-dev", dev, "denyRequest", "DENIED"),
    ]:
        seen = await seen_by(live, world.token(approver), ContosoRequests(request, request))
        assert seen["pendingRequests"] == {request}
        body = await act(live, world.token(approver), operation, request)
        assert body["data"][operation]["status"] == outcome


# --- auditor, engineers, operator side -------------------------------------------


async def test_auditor_sees_requests_but_cannot_decide(
    live: Live, world: World, contoso: ContosoRequests
) -> None:
    token = world.token("contoso-auditor")
    seen = await seen_by(live, token, contoso)
    assert seen["pending"] == seen["node"] == {"id": contoso.pending}
    assert seen["nodes"] == [{"id": contoso.pending}, {"id": contoso.approved}]
    assert seen["accessRequests"] == {contoso.pending, contoso.approved}

    for operation in DECIDER_OPERATIONS:
        error = await attempt(live, token, operation, contoso.for_operation(operation))
        assert (operation, error["extensions"]["code"]) == (operation, "FORBIDDEN")

    await assert_untouched(live, world, contoso)


async def test_engineer_cannot_decide_its_own_request(
    live: Live, world: World, contoso: ContosoRequests
) -> None:
    token = world.token("engineer-alice")
    for operation in DECIDER_OPERATIONS:
        error = await attempt(live, token, operation, contoso.for_operation(operation))
        assert (operation, error["extensions"]["code"]) == (operation, "FORBIDDEN")

    await assert_untouched(live, world, contoso)


async def test_engineer_cannot_see_decide_or_use_another_engineers_request(
    live: Live, world: World, contoso: ContosoRequests
) -> None:
    bob = world.token("engineer-bob")
    assert await seen_by(live, bob, contoso) == {
        "pending": None,
        "approved": None,
        "node": None,
        "nodes": [None, None],
        "pendingRequests": set(),
        "accessRequests": set(),
    }

    for operation in OPERATIONS:
        error = await attempt(live, bob, operation, contoso.for_operation(operation))
        assert (operation, error["extensions"]["code"]) == (operation, "NOT_FOUND")

    await assert_untouched(live, world, contoso)


async def test_operator_side_never_decides(
    live: Live, world: World, contoso: ContosoRequests
) -> None:
    for principal in OPERATOR_SIDE:
        for operation in DECIDER_OPERATIONS:
            error = await attempt(
                live, world.token(principal), operation, contoso.for_operation(operation)
            )
            code = error["extensions"]["code"]
            assert code in ("FORBIDDEN", "NOT_FOUND"), (principal, operation, error)

    await assert_untouched(live, world, contoso)


# --- tenant-wide settings ---------------------------------------------------------

DISABLE = "mutation { setLockboxEnabled(enabled: false) { name lockboxEnabled } }"
SHORTEN = """
mutation { updateLockboxSettings(input: {pendingRequestTtlSeconds: 3600}) {
  name settings { pendingRequestTtlSeconds } } }
"""


async def test_tenant_admin_changes_only_its_own_tenant(live: Live, world: World) -> None:
    contoso_before = await my_tenant(live, world, "contoso-admin")
    admin = world.token("fabrikam-admin")

    disabled = await live.http.data(admin, DISABLE)
    shortened = await live.http.data(admin, SHORTEN)

    assert disabled["setLockboxEnabled"] == {"name": "fabrikam", "lockboxEnabled": False}
    assert shortened["updateLockboxSettings"] == {
        "name": "fabrikam",
        "settings": {"pendingRequestTtlSeconds": 3600},
    }
    assert await my_tenant(live, world, "contoso-admin") == contoso_before
    # What users notice: fabrikam now approves at once, contoso still asks.
    assert (await create_request(live, world, tenant="fabrikam"))["status"] == "APPROVED"
    assert (await create_request(live, world, tenant="contoso"))["status"] == "PENDING"


NOT_TENANT_ADMINS = (
    "contoso-approver-prod",
    "contoso-auditor",
    "engineer-alice",
    *OPERATOR_SIDE,
)


async def test_only_a_tenant_admin_changes_lockbox_settings(live: Live, world: World) -> None:
    before = await my_tenant(live, world, "contoso-admin")

    for principal in NOT_TENANT_ADMINS:
        for document in (DISABLE, SHORTEN):
            code = await live.http.error_code(world.token(principal), document)
            assert (principal, code) == (principal, "FORBIDDEN")

    assert await my_tenant(live, world, "contoso-admin") == before


# --- subscriptions -----------------------------------------------------------------

ENGINEER_ACTIVITY = "subscription($id: ID!) { engineerActivity(requestId: $id) { id } }"
REQUEST_UPDATES = "subscription { accessRequestUpdates { id status tenant { name } } }"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_activity_subscription_to_a_request_out_of_sight_is_not_found(
    live: Live, world: World, contoso: ContosoRequests, protocol: str
) -> None:
    # Another tenant, an approver of other scopes, another engineer.
    for principal in (*OTHER_TENANT, "contoso-approver-dev", "engineer-bob"):
        client = WsClient(live.ws_url, protocol)
        await client.connect(world.token(principal))
        try:
            await client.subscribe("1", ENGINEER_ACTIVITY, id=contoso.approved)
            errors = ws_errors(await client.receive())
        finally:
            await client.close()

        assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"], (principal, errors)


async def test_request_updates_never_carry_another_tenants_changes(
    live: Live, world: World
) -> None:
    fabrikam = WsClient(live.ws_url)
    contoso = WsClient(live.ws_url)
    await fabrikam.connect(world.token("fabrikam-admin"))
    await contoso.connect(world.token("contoso-admin"))
    try:
        await fabrikam.subscribe("f", REQUEST_UPDATES)
        await contoso.subscribe("c", REQUEST_UPDATES)
        # Both streams are live before the changes that matter.
        first = await create_request(live, world, tenant="fabrikam")
        assert (await fabrikam.next_data())["accessRequestUpdates"]["id"] == first["id"]
        warmup = await create_request(live, world, tenant="contoso")
        assert (await contoso.next_data())["accessRequestUpdates"]["id"] == warmup["id"]

        hidden = await create_request(live, world, tenant="contoso", resources=[DEV])
        await act(live, world.token("contoso-admin"), "approveRequest", hidden["id"])
        second = await create_request(live, world, tenant="fabrikam", resources=[FABRIKAM])

        # The contoso changes were published: contoso's subscriber got both...
        seen = [(await contoso.next_data())["accessRequestUpdates"] for _ in range(2)]
        assert [(u["id"], u["status"]) for u in seen] == [
            (hidden["id"], "PENDING"),
            (hidden["id"], "APPROVED"),
        ]
        # ...yet fabrikam's next update is its own, later change.
        update = (await fabrikam.next_data())["accessRequestUpdates"]
        assert (update["id"], update["tenant"]["name"]) == (second["id"], "fabrikam")
    finally:
        await fabrikam.close()
        await contoso.close()


# --- notification log and notification addresses ------------------------------------

TENANTS = ("contoso", "fabrikam", "northwind")
NOTIFICATION_LOG = """
query($after: String) {
  notifications(first: 200, after: $after) {
    edges { cursor node { id recipient } } pageInfo { endCursor }
  }
}
"""


async def test_notifications_are_each_admins_own_and_nobody_elses(live: Live, world: World) -> None:
    rows: dict[str, set[str]] = {}
    for tenant in TENANTS:
        written = [
            Notification(
                tenant_id=uuid.UUID(world.tenant(tenant)),
                channel=Channel.EMAIL,
                event="access_request.created",
                recipient=f"watcher{i}@{tenant}.example",
                next_attempt_at=live.clock.now(),
                created_at=live.clock.now(),
            )
            for i in range(3)
        ]
        await store.insert_notifications(written)
        rows[tenant] = {str(row.id) for row in written}

    for principal in world.raw["principals"]:
        token = world.token(principal)
        role = world.actors[principal].role
        if role is not Role.TENANT_ADMIN:
            code = await live.http.error_code(token, NOTIFICATION_LOG)
            assert (principal, code) == (principal, "FORBIDDEN")
            continue
        own = principal.removesuffix("-admin")
        page = (await live.http.data(token, NOTIFICATION_LOG))["notifications"]
        seen = [edge["node"] for edge in page["edges"]]
        assert {n["id"] for n in seen} == rows[own], principal
        assert all(n["recipient"].endswith(f"@{own}.example") for n in seen), principal

    # A cursor is a position, not a key: another tenant's cursor reads the
    # caller's own rows from that position, never the other tenant's.
    contoso = await live.http.data(world.token("contoso-admin"), NOTIFICATION_LOG)
    cursor = contoso["notifications"]["edges"][0]["cursor"]
    page = await live.http.data(world.token("fabrikam-admin"), NOTIFICATION_LOG, after=cursor)
    assert {e["node"]["id"] for e in page["notifications"]["edges"]} <= rows["fabrikam"]


SETTINGS = "settings { notificationEmails }"
EVERY_TENANT_PATH = f"""
{{
  me {{ tenant {{ name {SETTINGS} }} }}
  accessRequests(first: 200) {{ edges {{ node {{
    tenant {{ name {SETTINGS} }}
    ticket {{ tenant {{ name {SETTINGS} }} }}
    decidedBy {{ tenant {{ name {SETTINGS} }} }}
  }} }} }}
}}
"""


def tenants_seen(data: Any) -> list[tuple[str, list[str]]]:
    """Every (tenant name, notificationEmails) anywhere in a response."""
    found: list[tuple[str, list[str]]] = []
    if isinstance(data, dict):
        if "settings" in data and "name" in data:
            found.append((data["name"], data["settings"]["notificationEmails"]))
        for value in data.values():
            found.extend(tenants_seen(value))
    elif isinstance(data, list):
        for item in data:
            found.extend(tenants_seen(item))
    return found


async def test_only_a_tenants_own_admins_read_its_notification_emails(
    live: Live, deps: Deps, world: World
) -> None:
    addresses = {tenant: [f"security@{tenant}.example"] for tenant in TENANTS}
    for tenant in TENANTS:
        data = await live.http.data(
            world.token(f"{tenant}-admin"),
            "mutation($emails: [String!]) { updateLockboxSettings("
            "input: {notificationEmails: $emails}) { settings { notificationEmails } } }",
            emails=addresses[tenant],
        )
        assert data["updateLockboxSettings"]["settings"]["notificationEmails"] == addresses[tenant]
        # A request in each tenant, decided by its admin (northwind approves
        # itself); bob's is fabrikam's, alice's the others.
        then = () if tenant == "northwind" else ((Action.APPROVE, f"{tenant}-admin"),)
        engineer = "engineer-bob" if tenant == "fabrikam" else "engineer-alice"
        await seed_request(deps, world, engineer=engineer, tenant=tenant, then=then)

    for principal in world.raw["principals"]:
        seen = tenants_seen(await live.http.data(world.token(principal), EVERY_TENANT_PATH))
        assert seen, principal  # every principal reaches some tenant
        actor = world.actors[principal]
        for name, emails in seen:
            own_admin = actor.role is Role.TENANT_ADMIN and actor.tenant_id == world.tenant(name)
            expected = addresses[name] if own_admin else []
            assert (principal, name, emails) == (principal, name, expected)
    # The operator side, which sees every request, reached every tenant.
    seen_by_manager = tenants_seen(
        await live.http.data(world.token("support-manager"), EVERY_TENANT_PATH)
    )
    assert {name for name, _ in seen_by_manager} == set(TENANTS)


SET_ADDRESSES = """
mutation { updateLockboxSettings(input: {notificationEmails: ["evil@attacker.example"]}) {
  name } }
"""


async def test_only_a_tenant_admin_sets_notification_emails(live: Live, world: World) -> None:
    admin = world.token("contoso-admin")
    before = await live.http.data(admin, "{ me { tenant { settings { notificationEmails } } } }")

    for principal in NOT_TENANT_ADMINS:
        code = await live.http.error_code(world.token(principal), SET_ADDRESSES)
        assert (principal, code) == (principal, "FORBIDDEN")
    # fabrikam's admin sets fabrikam's, never contoso's.
    await live.http.data(world.token("fabrikam-admin"), SET_ADDRESSES)

    after = await live.http.data(admin, "{ me { tenant { settings { notificationEmails } } } }")
    assert after == before


# --- webhooks (TENANT_ADMIN of their own tenant only) ------------------------------

WEBHOOK_FIELDS = "id url events enabled createdAt lastDeliveryAt lastError"
CREATE_WEBHOOK = f"""
mutation($url: String!) {{
  createWebhook(input: {{url: $url, events: ["access_request.created"]}}) {{
    webhook {{ {WEBHOOK_FIELDS} }} secret
  }}
}}
"""
LIST_WEBHOOKS = f"{{ webhooks {{ {WEBHOOK_FIELDS} }} }}"
DELETE_WEBHOOK = "mutation($id: ID!) { deleteWebhook(id: $id) }"


async def webhook_ids(live: Live, world: World, principal: str) -> set[str]:
    data = await live.http.data(world.token(principal), LIST_WEBHOOKS)
    return {hook["id"] for hook in data["webhooks"]}


async def new_webhook(live: Live, world: World, principal: str) -> dict[str, Any]:
    data = await live.http.data(world.token(principal), CREATE_WEBHOOK, url=NOWHERE)
    made: dict[str, Any] = data["createWebhook"]
    return made


# Webhooks pointing at loopback (NOWHERE: nothing listens, nothing leaves the machine).
@pytest.mark.parametrize("live", [PRIVATE_WEBHOOKS], indirect=True, ids=["private-webhooks"])
async def test_webhooks_are_for_the_tenant_admin_of_their_own_tenant(
    live: Live, world: World
) -> None:
    contoso = (await new_webhook(live, world, "contoso-admin"))["webhook"]["id"]
    fabrikam = (await new_webhook(live, world, "fabrikam-admin"))["webhook"]["id"]
    own = {"contoso-admin": {contoso}, "fabrikam-admin": {fabrikam}, "northwind-admin": set()}

    for principal, actor in world.actors.items():
        token = world.token(principal)
        if actor.role is Role.TENANT_ADMIN:
            # Its own tenant's webhooks only; another tenant's do not exist for it.
            assert (principal, await webhook_ids(live, world, principal)) == (
                principal,
                own[principal],
            )
            for other in {contoso, fabrikam} - own[principal]:
                code = await live.http.error_code(token, DELETE_WEBHOOK, id=other)
                assert (principal, code) == (principal, "NOT_FOUND")
            continue
        for document, variables in (
            (LIST_WEBHOOKS, {}),
            (CREATE_WEBHOOK, {"url": NOWHERE}),
            (DELETE_WEBHOOK, {"id": contoso}),
        ):
            code = await live.http.error_code(token, document, **variables)
            assert (principal, document, code) == (principal, document, "FORBIDDEN")

    # Nothing changed: each tenant still has exactly its own webhook.
    assert await webhook_ids(live, world, "contoso-admin") == {contoso}
    assert await webhook_ids(live, world, "fabrikam-admin") == {fabrikam}
    for missing in ("not-a-webhook", str(uuid.uuid4())):
        code = await live.http.error_code(world.token("contoso-admin"), DELETE_WEBHOOK, id=missing)
        assert code == "NOT_FOUND"
    # The rightful admin deletes its own.
    deleted = await live.http.data(world.token("fabrikam-admin"), DELETE_WEBHOOK, id=fabrikam)
    assert deleted == {"deleteWebhook": True}
    assert await webhook_ids(live, world, "fabrikam-admin") == set()
    assert await webhook_ids(live, world, "contoso-admin") == {contoso}


@pytest.mark.parametrize("live", [PRIVATE_WEBHOOKS], indirect=True, ids=["private-webhooks"])
async def test_a_webhooks_secret_is_shown_once_and_never_again(live: Live, world: World) -> None:
    admin = world.token("contoso-admin")
    made = await new_webhook(live, world, "contoso-admin")
    secret, hook = made["secret"], made["webhook"]
    assert len(secret) >= 40
    assert hook["url"] == NOWHERE
    assert hook["events"] == ["access_request.created"]
    assert hook["enabled"] is True
    assert (await new_webhook(live, world, "contoso-admin"))["secret"] != secret

    listed = await live.http.data(admin, LIST_WEBHOOKS)
    assert hook in listed["webhooks"]
    await live.http.data(admin, DELETE_WEBHOOK, id=hook["id"])

    events = await audit_events(live, admin)
    created = [e for e in events if e["action"] == "webhook.created"]
    deleted = [e for e in events if e["action"] == "webhook.deleted"]
    assert created[0]["detail"] == {
        "webhookId": hook["id"],
        "url": NOWHERE,
        "events": ["access_request.created"],
    }
    assert deleted[0]["detail"]["webhookId"] == hook["id"]
    assert created[0]["actor"] == {"name": "contoso-admin"}
    for seen_by_auditor in (False, True):
        token = world.token("contoso-auditor") if seen_by_auditor else admin
        audit = await live.http.data(token, AUDIT)
        assert secret not in json.dumps(audit)
    assert secret not in json.dumps(listed)


# --- approval policy: break-glass review and the provider's pre-approval ------------

CUSTOMER_ROLES = (Role.TENANT_ADMIN, Role.APPROVER, Role.AUDITOR)
POLICY_SEEN = """
query Seen($id: ID!) {
  accessRequest(id: $id) { id }
  pendingRequests(first: 200) { edges { node { id } } }
  accessRequests(first: 200) { edges { node { id } } }
  emergencyAccessToReview(first: 200) { edges { node { id } } }
}
"""


async def policy_seen(live: Live, token: str, request_id: str) -> set[str]:
    """Where `token` finds the request: the fields (and lists) that hold it."""
    data = await live.http.data(token, POLICY_SEEN, id=request_id)
    found = {"accessRequest"} if data["accessRequest"] else set()
    for name in ("pendingRequests", "accessRequests", "emergencyAccessToReview"):
        if request_id in {e["node"]["id"] for e in data[name]["edges"]}:
            found.add(name)
    return found


def expected_code(sees: bool, may: bool) -> str | None:
    """What a principal gets: success, NOT_FOUND where it cannot see, else FORBIDDEN."""
    if may:
        return None
    return "FORBIDDEN" if sees else "NOT_FOUND"


async def test_every_principal_reviews_emergency_access_only_as_a_decider_of_it(
    live: Live, deps: Deps, world: World
) -> None:
    await allow_emergency(world.tenant("contoso"))
    deciders = {"contoso-admin", "contoso-approver-prod"}
    seers = deciders | {"contoso-auditor", "engineer-alice", *OPERATOR_SIDE}
    for principal in world.actors:
        # A fresh break-glass request each time: a review happens once.
        request = await seed_request(deps, world, emergency=True)
        body = await act(live, world.token(principal), "reviewEmergencyAccess", request)
        code = body["errors"][0]["extensions"]["code"] if body.get("errors") else None
        want = expected_code(principal in seers, principal in deciders)
        assert (principal, code) == (principal, want), body
        listed = "emergencyAccessToReview" in await policy_seen(
            live, world.token("contoso-admin"), request
        )
        assert (principal, listed) == (principal, principal not in deciders)


async def test_every_principal_takes_the_providers_decision_only_as_a_support_manager(
    live: Live, deps: Deps, world: World
) -> None:
    for operation in PROVIDER_OPERATIONS:
        for principal, actor in world.actors.items():
            request = await seed_awaiting(deps, world, engineer="engineer-bob")
            body = await act(live, world.token(principal), operation, request)
            code = body["errors"][0]["extensions"]["code"] if body.get("errors") else None
            # Customers cannot see it at all; bob, its engineer, sees it, alice does not.
            sees = actor.role in policy.OPERATOR_OVERSIGHT or principal == "engineer-bob"
            may = actor.role is Role.SUPPORT_MANAGER
            assert (operation, principal, code) == (
                operation,
                principal,
                expected_code(sees, may),
            ), body
            if may:
                status_after = body["data"][operation]["status"]
                expected = "PENDING" if operation == "providerApproveRequest" else "DENIED"
                assert status_after == expected


async def test_a_request_awaiting_the_provider_exists_for_no_customer_principal(
    live: Live, deps: Deps, world: World
) -> None:
    awaiting = await seed_awaiting(deps, world)
    denied = await seed_awaiting(deps, world)
    await live.http.data(
        world.token("support-manager"), POLICY_OPERATIONS["providerDenyRequest"], id=denied
    )
    customer = [p for p, a in world.actors.items() if a.role in CUSTOMER_ROLES]
    for request in (awaiting, denied):
        for principal in customer:
            token = world.token(principal)
            assert (principal, await policy_seen(live, token, request)) == (principal, set())
            for operation in ("approveRequest", "denyRequest", "revokeAccess"):
                error = await attempt(live, token, operation, request)
                assert (principal, operation, error["extensions"]["code"]) == (
                    principal,
                    operation,
                    "NOT_FOUND",
                )
        # The provider side sees it, with its status.
        for principal in ("engineer-alice", *OPERATOR_SIDE):
            assert "accessRequest" in await policy_seen(live, world.token(principal), request)
    assert await status(live, world, awaiting, viewer="support-manager") == (
        "AWAITING_PROVIDER_APPROVAL"
    )
    # Nor can a customer subscribe to its activity.
    client = WsClient(live.ws_url)
    await client.connect(world.token("contoso-admin"))
    try:
        await client.subscribe("1", ENGINEER_ACTIVITY, id=awaiting)
        errors = ws_errors(await client.receive())
    finally:
        await client.close()
    assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"]
    # The tenant's audit log, which only customers read, leaves them out.
    for reader in ("contoso-admin", "contoso-auditor"):
        logged = {e["requestId"] for e in await audit_events(live, world.token(reader))}
        assert (reader, logged & {awaiting, denied}) == (reader, set())
    # Nothing was sent to the customer: no decider's mail, no webhook.
    rows = await Notification.filter(request_id__in=[awaiting, denied])
    assert {row.recipient for row in rows} <= {None, "engineer-alice@example.com"}
    assert all(row.webhook_id is None for row in rows)


@pytest.mark.parametrize("live", [{"provider_approval": True}], indirect=True, ids=["provider"])
async def test_request_updates_carry_an_awaiting_request_only_once_the_provider_approves(
    live: Live, world: World
) -> None:
    admin = WsClient(live.ws_url)
    manager = WsClient(live.ws_url)
    await admin.connect(world.token("contoso-admin"))
    await manager.connect(world.token("support-manager"))
    provider_approve = POLICY_OPERATIONS["providerApproveRequest"]
    try:
        await admin.subscribe("a", REQUEST_UPDATES)
        await manager.subscribe("m", REQUEST_UPDATES)
        # Both streams are live: the manager sees a request arrive, the admin
        # once the manager has approved it.
        warmup = await create_request(live, world, tenant="contoso")
        assert warmup["status"] == "AWAITING_PROVIDER_APPROVAL"
        assert (await manager.next_data())["accessRequestUpdates"]["id"] == warmup["id"]
        await live.http.data(world.token("support-manager"), provider_approve, id=warmup["id"])
        update = (await admin.next_data())["accessRequestUpdates"]
        assert (update["id"], update["status"]) == (warmup["id"], "PENDING")

        hidden = (await create_request(live, world, tenant="contoso"))["id"]
        seen = [(await manager.next_data())["accessRequestUpdates"] for _ in range(2)]
        assert [(u["id"], u["status"]) for u in seen] == [
            (warmup["id"], "PENDING"),
            (hidden, "AWAITING_PROVIDER_APPROVAL"),
        ]
        await live.http.data(world.token("support-manager"), provider_approve, id=hidden)

        # The admin's next update is the request arriving, PENDING: nothing before it.
        update = (await admin.next_data())["accessRequestUpdates"]
        assert (update["id"], update["status"]) == (hidden, "PENDING")
    finally:
        await admin.close()
        await manager.close()


async def test_emergency_access_to_review_holds_what_each_caller_sees(
    live: Live, deps: Deps, world: World
) -> None:
    for tenant in ("contoso", "fabrikam"):
        await allow_emergency(world.tenant(tenant))
    prod = await seed_request(deps, world, emergency=True)
    dev = await seed_request(deps, world, emergency=True, resources=[DEV])
    fabrikam = await seed_request(deps, world, emergency=True, tenant="fabrikam")
    not_emergency = await seed_request(deps, world)
    expected = {
        "contoso-admin": {prod, dev},
        "contoso-auditor": {prod, dev},
        "contoso-approver-prod": {prod},
        "contoso-approver-dev": {dev},
        "fabrikam-admin": {fabrikam},
        "fabrikam-approver": {fabrikam},
        "northwind-admin": set(),
        "engineer-alice": {prod, dev, fabrikam},
        "engineer-bob": set(),
        "support-manager": {prod, dev, fabrikam},
        "operator-admin": {prod, dev, fabrikam},
    }
    query = "{ emergencyAccessToReview(first: 200) { edges { node { id emergency } } } }"
    for principal, want in expected.items():
        data = await live.http.data(world.token(principal), query)
        edges = data["emergencyAccessToReview"]["edges"]
        assert (principal, {e["node"]["id"] for e in edges}) == (principal, want)
        assert not_emergency not in {e["node"]["id"] for e in edges}
