"""The error contract (section 3): every failure is a GraphQL error with one of
the contract's codes and a message that says what is wrong; a rejected call
changes nothing; unexpected faults are masked."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from lockbox.clock import ManualClock
from lockbox.domain.lifecycle import Action
from lockbox.services import admin, gate
from lockbox.services.deps import Deps
from lockbox.store import queries as store
from tests.api.helpers import (
    DECIDER_OPERATIONS,
    DEV,
    NORTHWIND,
    OPERATIONS,
    PROD,
    Steps,
    act,
    audit_events,
    create_request,
    my_tenant,
    read_request,
    seed_request,
    status,
    ws_errors,
)
from tests.conftest import Live, Stack, World, start_server
from tests.support import LEGACY_WS, TRANSPORT_WS, GraphQLHttp, WsClient

ME = "{ me { name } }"
DAY = 24 * 3600
HOUR = 3600

# --- UNAUTHENTICATED -----------------------------------------------------------------

UNAUTHENTICATED_HEADERS = [
    ("no Authorization header", None),
    ("an unknown token", "Bearer lbx_" + "A" * 43),
    ("a token that is not one of ours", "Bearer not-a-lockbox-token"),
    ("Basic credentials", "Basic x"),
    ("Bearer with nothing", "Bearer"),
    ("a valid secret without a scheme", "{token}"),
    ("a valid secret under another scheme", "Token {token}"),
]


async def post(live: Live, authorization: str | None, query: str) -> dict[str, Any]:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await live.http.client.post(live.http.url, json={"query": query}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


async def test_missing_unknown_or_malformed_tokens_are_unauthenticated(
    live: Live, world: World
) -> None:
    token = world.token("contoso-admin")
    for case, header in UNAUTHENTICATED_HEADERS:
        body = await post(live, header and header.format(token=token), ME)
        assert body.get("data") is None, case
        codes = [e["extensions"]["code"] for e in body["errors"]]
        assert codes == ["UNAUTHENTICATED"], (case, body)

    # The same secret, sent properly, works.
    assert (await live.http.data(token, ME))["me"]["name"] == "contoso-admin"


async def test_revoked_token_and_disabled_principal_are_unauthenticated(
    live: Live, deps: Deps, world: World
) -> None:
    admin_id = uuid.UUID(world.actors["contoso-admin"].id)
    (issued,) = await store.list_tokens(admin_id)
    await admin.revoke_token(deps, str(issued.id))
    await admin.disable_principal(deps, "contoso-auditor")

    for principal in ("contoso-admin", "contoso-auditor"):
        code = await live.http.error_code(world.token(principal), ME)
        assert (principal, code) == (principal, "UNAUTHENTICATED")
    assert (await live.http.data(world.token("contoso-approver-prod"), ME))["me"]


# --- BAD_USER_INPUT --------------------------------------------------------------------

BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("relative path", {"resources": ["subscriptions/contoso-prod/rg1"]}, "resource"),
    ("'..' segment", {"resources": ["/subscriptions/contoso-prod/../contoso-dev"]}, "resource"),
    ("'.' segment", {"resources": ["/subscriptions/contoso-prod/./rg1"]}, "resource"),
    ("empty segment", {"resources": ["/subscriptions//contoso-prod"]}, "resource"),
    ("trailing slash", {"resources": ["/subscriptions/contoso-prod/"]}, "resource"),
    ("sibling of a root", {"resources": ["/subscriptions/contoso-prod2/rg1"]}, "resource"),
    ("another tenant's root", {"resources": ["/subscriptions/fabrikam-prod/rg1"]}, "resource"),
    ("path over 1024 chars", {"resources": [PROD + "/" + "a" * 1024]}, "resource"),
    ("no resources", {"resources": []}, "resources"),
    ("21 resources", {"resources": [f"{PROD}/vm{i}" for i in range(21)]}, "resources"),
    ("zero duration", {"durationSeconds": 0}, "durationSeconds"),
    ("negative duration", {"durationSeconds": -60}, "durationSeconds"),
    ("duration over the maximum", {"durationSeconds": 8 * HOUR + 1}, "durationSeconds"),
    ("empty justification", {"justification": ""}, "justification"),
    ("blank justification", {"justification": "   \n\t"}, "justification"),
]

CREATE_ONLY_ID = """
mutation($input: CreateAccessRequestInput!) { createAccessRequest(input: $input) { id } }
"""


def request_input(world: World, **overrides: Any) -> dict[str, Any]:
    return {
        "ticketId": world.ticket("contoso"),
        "resources": [PROD],
        "justification": "investigating slow queries",
        **overrides,
    }


async def test_invalid_request_input_is_rejected_naming_the_field(live: Live, world: World) -> None:
    alice = world.token("engineer-alice")
    audit_before = await audit_events(live, world.token("contoso-admin"))

    for case, overrides, field in BAD_REQUESTS:
        error = await live.http.error(
            alice, CREATE_ONLY_ID, input=request_input(world, **overrides)
        )
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (case, error)
        assert field in error["message"], (case, error["message"])

    # Nothing was created, nothing was audited.
    assert (await live.http.data(alice, "{ accessRequests { edges { cursor } } }")) == {
        "accessRequests": {"edges": []}
    }
    assert await audit_events(live, world.token("contoso-admin")) == audit_before
    # The same input with valid values is accepted.
    assert (await live.http.data(alice, CREATE_ONLY_ID, input=request_input(world)))[
        "createAccessRequest"
    ]["id"]


async def test_request_on_a_closed_ticket_is_bad_input(
    live: Live, world: World, deps: Deps
) -> None:
    await admin.set_ticket_open(deps, world.ticket("contoso"), False)

    error = await live.http.error(
        world.token("engineer-alice"), CREATE_ONLY_ID, input=request_input(world)
    )

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "ticket" in error["message"]
    assert "closed" in error["message"]


BAD_PAGING = [
    ("pendingRequests", 'after: "not a cursor"', "cursor"),
    ("accessRequests", 'after: "%%%"', "cursor"),
    ("auditLog", 'after: "bm9wZQ"', "cursor"),
    ("pendingRequests", "first: 1, last: 1", "first or last"),
    ("accessRequests", "last: 201", "last"),
    ("accessRequests", "first: -1", "first"),
    ("auditLog", "first: 1000000", "first"),
]


async def test_invalid_cursor_or_page_size_is_bad_input(
    live: Live, deps: Deps, world: World
) -> None:
    token = world.token("contoso-admin")
    request = await seed_request(deps, world)
    audit = await live.http.data(token, "{ auditLog(first: 1) { pageInfo { endCursor } } }")
    audit_cursor = audit["auditLog"]["pageInfo"]["endCursor"]
    activity = '{ accessRequest(id: "%s") { activity(%s) { edges { cursor } } } }'
    cases = [
        *(
            (f"{{ {field}({arguments}) {{ edges {{ cursor }} }} }}", needle)
            for field, arguments, needle in BAD_PAGING
        ),
        # A real cursor, but of another list.
        (f'{{ pendingRequests(after: "{audit_cursor}") {{ edges {{ cursor }} }} }}', "cursor"),
        (activity % (request, f'after: "{audit_cursor}"'), "cursor"),
        (activity % (request, "last: -1"), "last"),
    ]

    for document, needle in cases:
        error = await live.http.error(token, document)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (document, error)
        assert needle in error["message"], (document, error["message"])


BAD_SETTINGS: list[tuple[dict[str, int], str]] = [
    ({"pendingRequestTtlSeconds": 0}, "pendingRequestTtlSeconds"),
    ({"pendingRequestTtlSeconds": 30 * DAY + 1}, "pendingRequestTtlSeconds"),
    ({"maxAccessSeconds": 0}, "maxAccessSeconds"),
    ({"maxAccessSeconds": 14 * DAY + 1}, "maxAccessSeconds"),
    ({"defaultAccessSeconds": 0}, "defaultAccessSeconds"),
    ({"defaultAccessSeconds": 8 * HOUR + 1}, "defaultAccessSeconds"),  # over the maximum
    # A valid change next to an invalid one is not applied either.
    ({"pendingRequestTtlSeconds": HOUR, "defaultAccessSeconds": -1}, "defaultAccessSeconds"),
]

UPDATE_SETTINGS = """
mutation($input: LockboxSettingsInput!) {
  updateLockboxSettings(input: $input) {
    settings { pendingRequestTtlSeconds defaultAccessSeconds maxAccessSeconds }
  }
}
"""


async def test_settings_out_of_range_are_rejected_and_change_nothing(
    live: Live, world: World
) -> None:
    token = world.token("contoso-admin")
    tenant_before = await my_tenant(live, world, "contoso-admin")
    audit_before = await audit_events(live, token)

    for values, field in BAD_SETTINGS:
        error = await live.http.error(token, UPDATE_SETTINGS, input=values)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (values, error)
        assert field in error["message"], (values, error["message"])

    assert await my_tenant(live, world, "contoso-admin") == tenant_before
    assert await audit_events(live, token) == audit_before

    # A valid change is applied and audited once.
    data = await live.http.data(token, UPDATE_SETTINGS, input={"pendingRequestTtlSeconds": HOUR})
    assert data["updateLockboxSettings"]["settings"]["pendingRequestTtlSeconds"] == HOUR
    audit_after = await audit_events(live, token)
    assert [e["action"] for e in audit_after[len(audit_before) :]] == ["tenant.settings_updated"]


# --- INVALID_STATE ---------------------------------------------------------------------

APPROVE = (Action.APPROVE, "contoso-admin")
DENY = (Action.DENY, "contoso-admin")
REVOKE = (Action.REVOKE, "contoso-admin")
CANCEL = (Action.CANCEL, "engineer-alice")
RELEASE = (Action.RELEASE, "engineer-alice")


def by(operation: str) -> str:
    return "contoso-admin" if operation in DECIDER_OPERATIONS else "engineer-alice"


# (what happened to the request, the operation then tried, the status it is in)
NOT_ALLOWED: list[tuple[Steps, str, str]] = [
    ((DENY,), "approveRequest", "DENIED"),
    ((), "revokeAccess", "PENDING"),
    ((), "releaseAccess", "PENDING"),
    ((APPROVE,), "denyRequest", "APPROVED"),
    ((APPROVE,), "cancelAccessRequest", "APPROVED"),
    ((CANCEL,), "approveRequest", "CANCELED"),
    ((APPROVE, REVOKE), "approveRequest", "REVOKED"),
    ((APPROVE, RELEASE), "revokeAccess", "COMPLETED"),
]


async def test_transition_not_allowed_from_the_current_status_is_invalid_state(
    live: Live, deps: Deps, world: World
) -> None:
    for history, operation, current in NOT_ALLOWED:
        case = f"{operation} on a {current} request"
        request = await seed_request(deps, world, then=history)

        body = await act(live, world.token(by(operation)), operation, request)

        (error,) = body["errors"]
        assert error["extensions"]["code"] == "INVALID_STATE", (case, error)
        assert current in error["message"], (case, error["message"])
        assert await status(live, world, request) == current, case


async def test_pending_request_past_its_deadline_reads_expired_and_cannot_be_approved(
    live: Live, deps: Deps, world: World
) -> None:
    request = await seed_request(deps, world)
    live.clock.advance(4 * DAY + 1)

    error = await live.http.error(
        world.token("contoso-admin"), OPERATIONS["approveRequest"], id=request
    )

    assert error["extensions"]["code"] == "INVALID_STATE"
    assert "EXPIRED" in error["message"]
    assert await status(live, world, request) == "EXPIRED"


async def test_approved_request_past_its_window_reads_completed_and_authorizes_nothing(
    live: Live, deps: Deps, world: World
) -> None:
    request = await seed_request(deps, world, then=(APPROVE,))
    live.clock.advance(8 * HOUR + 1)

    error = await live.http.error(
        world.token("contoso-admin"), OPERATIONS["revokeAccess"], id=request
    )
    decision = await act(live, world.token("engineer-alice"), "authorizeAccess", request)

    assert error["extensions"]["code"] == "INVALID_STATE"
    assert "COMPLETED" in error["message"]
    assert decision["data"]["authorizeAccess"]["allowed"] is False
    assert await status(live, world, request) == "COMPLETED"


# --- NOT_FOUND -------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["not-a-uuid", str(uuid.uuid4())], ids=["non-uuid", "random"])
async def test_unknown_ids_are_not_found(live: Live, world: World, missing: str) -> None:
    assert await read_request(live, world, missing) is None

    for operation in OPERATIONS:
        body = await act(live, world.token(by(operation)), operation, missing)
        (error,) = body["errors"]
        assert (operation, error["extensions"]["code"]) == (operation, "NOT_FOUND")

    error = await live.http.error(
        world.token("engineer-alice"),
        CREATE_ONLY_ID,
        input={**request_input(world), "ticketId": missing},
    )
    assert error["extensions"]["code"] == "NOT_FOUND"


# --- a tenant with lockbox disabled ---------------------------------------------------


async def test_request_on_a_disabled_tenant_is_approved_at_once_and_audited(
    live: Live, world: World
) -> None:
    request = await create_request(live, world, tenant="northwind", resources=[NORTHWIND])

    assert request["status"] == "APPROVED"
    assert "lockbox is disabled" in request["decisionReason"]
    starts = datetime.fromisoformat(request["accessStartsAt"])
    ends = datetime.fromisoformat(request["accessEndsAt"])
    assert starts == datetime.fromisoformat(request["createdAt"])
    assert ends - starts == timedelta(seconds=request["durationSeconds"])

    events = await audit_events(live, world.token("northwind-admin"))
    actions = [e["action"] for e in events if e["requestId"] == request["id"]]
    assert actions == ["request.created", "request.approved"]

    decision = await act(
        live, world.token("engineer-alice"), "authorizeAccess", request["id"], NORTHWIND
    )
    assert decision["data"]["authorizeAccess"]["allowed"] is True


# --- unexpected faults ---------------------------------------------------------------

LEAK = "SELECT token_hash FROM apitoken WHERE id = 42"


class BrokenClock(ManualClock):
    """A clock that fails, on demand, with a message that must never leak."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def now(self) -> datetime:
        if self.broken:
            raise RuntimeError(LEAK)
        return super().now()


WATCH_ACTIVITY = """
subscription($id: ID!) { engineerActivity(requestId: $id) { id request { status } } }
"""


async def test_unexpected_fault_is_masked_and_logged(
    database: Stack, deps: Deps, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    pending = await seed_request(deps, world, resources=[DEV])
    watched = await seed_request(deps, world, then=(APPROVE,))
    await gate.authorize(
        deps,
        world.actors["engineer-alice"],
        request_id=watched,
        resource=PROD,
        action="read",
        detail=None,
    )
    clock = BrokenClock()
    server = start_server(database, clock, sweep_interval_seconds=3600)
    http = GraphQLHttp(server.http_url)
    token = world.token("contoso-admin")
    try:
        clock.broken = True
        with caplog.at_level(logging.ERROR):
            responses = [
                await http.client.post(http.url, json={"query": query}, headers=auth(token))
                for query in (
                    "{ accessRequests { edges { node { id status } } } }",
                    f'mutation {{ approveRequest(id: "{pending}") {{ status }} }}',
                )
            ]
            streamed = []
            for protocol in (TRANSPORT_WS, LEGACY_WS):
                client = WsClient(server.ws_url, protocol)
                await client.connect(token)
                try:
                    await client.subscribe("1", WATCH_ACTIVITY, id=watched)
                    streamed.append(await client.receive())
                finally:
                    await client.close()
        clock.broken = False
        after = await http.data(token, f'{{ accessRequest(id: "{pending}") {{ status }} }}')
    finally:
        await http.aclose()
        await asyncio.to_thread(server.stop)

    answers = [(r.text, r.json()["errors"]) for r in responses]
    answers += [(json.dumps(m), ws_errors(m)) for m in streamed]
    for text, errors in answers:
        (error,) = errors
        assert error["message"] == "Unexpected error."
        # The code, and the request id its log line carries (lockbox.observability.logs).
        assert error["extensions"].keys() == {"code", "requestId"}
        assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        for secret in (LEAK, "RuntimeError", "Traceback", "SELECT", 'File "'):
            assert secret not in text
    # The failed approval changed nothing, and the server is still serving.
    assert after == {"accessRequest": {"status": "PENDING"}}
    # The fault itself is in the server's log, with its traceback.
    logged = [r for r in caplog.records if r.exc_info and LEAK in str(r.exc_info[1])]
    assert len(logged) >= len(answers), "a masked fault was not logged server-side"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
