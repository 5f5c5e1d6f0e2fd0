"""Both WebSocket sub-protocols as stock clients speak them (contract sections
2, 10 and 11): queries, mutations and subscriptions on graphql-transport-ws
and on the legacy graphql-ws, under the rules HTTP has, and a coded answer
(an `error` frame, or the protocol's close code) for everything a client can
get wrong, never silence, never a traceback in the server's log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets

from tests.conformance.ws_support import ACTIVITY, PROD, approved_request, authorize, http_errors
from tests.conftest import Live, World
from tests.security.test_auth_and_sockets import server_log
from tests.support import LEGACY_WS, TRANSPORT_WS

PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]
ME = "{ me { name } }"
LOCKBOX = "{ me { tenant { lockboxEnabled } } }"
SET_LOCKBOX = "mutation($on: Boolean!) { setLockboxEnabled(enabled: $on) { lockboxEnabled } }"
UPDATES = "subscription { accessRequestUpdates { id status } }"


class Socket:
    """A raw client of one sub-protocol: frames as they are on the wire."""

    def __init__(self, ws: websockets.ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        legacy = protocol == LEGACY_WS
        self.start, self.stop, self.result = (
            ("start", "stop", "data") if legacy else ("subscribe", "complete", "next")
        )

    async def send(self, message: object) -> None:
        await self.ws.send(json.dumps(message))

    def send_in_one_write(self, *messages: object) -> None:
        """Several frames in one TCP write, so the server reads them together."""
        for message in messages:
            self.ws.protocol.send_text(json.dumps(message).encode())
        self.ws.transport.write(b"".join(self.ws.protocol.data_to_send()))

    async def init(self, token: str) -> None:
        await self.send(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        )
        ack = await self.receive()
        assert ack["type"] == "connection_ack", ack

    async def operation(self, op_id: str, query: str, **payload: Any) -> None:
        await self.send({"type": self.start, "id": op_id, "payload": {"query": query, **payload}})

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] != "ka":  # the legacy protocol's keep-alive
                return message

    async def closed(self, timeout: float = 10) -> websockets.frames.Close:
        """The close frame the server sent (every frame before it is skipped)."""
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        assert closed.value.rcvd is not None, "closed without a close frame"
        return closed.value.rcvd

    async def result_of(self, op_id: str, query: str, **payload: Any) -> dict[str, Any]:
        """A single-result operation: its one result frame, then `complete`."""
        await self.operation(op_id, query, **payload)
        result = await self.receive()
        assert result["type"] == self.result and result["id"] == op_id, result
        assert await self.receive() == {"type": "complete", "id": op_id}
        payload_: dict[str, Any] = result["payload"]
        return payload_

    async def error_of(self, op_id: str, query: str, **payload: Any) -> dict[str, Any]:
        """The operation's `error` frame, as one error (the legacy protocol
        carries one; graphql-transport-ws a list)."""
        await self.operation(op_id, query, **payload)
        frame = await self.receive()
        assert frame["type"] == "error" and frame["id"] == op_id, frame
        errors = frame["payload"] if self.protocol == TRANSPORT_WS else [frame["payload"]]
        assert errors and all(e["extensions"]["code"] for e in errors), frame
        error: dict[str, Any] = errors[0]
        return error

    async def still_answers(self, principal: str) -> None:
        """The socket took what came before in its stride: it runs a query."""
        payload = await self.result_of("probe", ME)
        assert payload == {"data": {"me": {"name": principal}}}


@asynccontextmanager
async def socket(live: Live, protocol: str, principal: str | None = None) -> AsyncIterator[Socket]:
    async with websockets.connect(live.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        client = Socket(ws, protocol)
        if principal is not None:
            await client.init(principal)
        yield client


# --- queries and mutations on both protocols ----------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_queries_and_mutations_run_on_both_protocols(
    live: Live, world: World, protocol: str
) -> None:
    """The legacy protocol refused every query and mutation (an app on
    Apollo's legacy WebSocketLink failed on each); now both are one result
    frame, then `complete`, as each protocol allows."""
    admin = world.token("contoso-admin")
    with server_log() as logged:
        async with socket(live, protocol) as client:
            await client.init(admin)
            assert await client.result_of("1", ME) == {"data": {"me": {"name": "contoso-admin"}}}
            changed = await client.result_of("2", SET_LOCKBOX, variables={"on": False})
            assert changed == {"data": {"setLockboxEnabled": {"lockboxEnabled": False}}}
            # The change is the service's, not the socket's: HTTP sees it.
            seen = await live.http.data(admin, LOCKBOX)
            assert seen == {"me": {"tenant": {"lockboxEnabled": False}}}
            again = await client.result_of("3", LOCKBOX, operationName=None)
            assert again == {"data": seen}
    logged.assert_no_traceback()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscription_and_queries_share_one_socket(
    live: Live, world: World, protocol: str
) -> None:
    """Apollo multiplexes every operation on one socket: a query answered
    while a subscription runs leaves it running, and its events come."""
    request_id = await approved_request(live, world)
    first = await authorize(live, world, request_id, f"{PROD}/vm1")
    async with socket(live, protocol, world.token("contoso-admin")) as client:
        await client.operation("live", ACTIVITY, variables={"id": request_id})
        replayed = await client.receive()  # the subscription is registered
        assert replayed["id"] == "live", replayed
        assert replayed["payload"]["data"]["engineerActivity"]["cursor"] == first
        assert (await client.result_of("q", ME))["data"] == {"me": {"name": "contoso-admin"}}
        second = await authorize(live, world, request_id, f"{PROD}/vm2")
        event = await client.receive()
        assert event["type"] == client.result and event["id"] == "live", event
        assert event["payload"]["data"]["engineerActivity"]["cursor"] == second
        await client.send({"type": client.stop, "id": "live"})
        if protocol == LEGACY_WS:  # the legacy protocol confirms a stop
            assert await client.receive() == {"type": "complete", "id": "live"}
        await client.still_answers("contoso-admin")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_operation_runs_as_the_sockets_identity_with_the_answers_of_http(
    live: Live, world: World, protocol: str
) -> None:
    """The connection_init token is the caller, as the Authorization header
    is over HTTP, and refusals carry the codes HTTP gives."""
    engineer = world.token("engineer-alice")
    async with socket(live, protocol, engineer) as client:
        assert (await client.result_of("1", ME))["data"] == {"me": {"name": "engineer-alice"}}
        refused = await client.result_of("2", SET_LOCKBOX, variables={"on": False})
    over_http = await http_errors(
        live, engineer, {"query": SET_LOCKBOX, "variables": {"on": False}}
    )
    assert refused["data"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    assert [e["message"] for e in refused["errors"]] == [e["message"] for e in over_http]


@pytest.mark.parametrize(
    "live", [{"rate_limit_per_second": 0.001, "rate_limit_burst": 3}], indirect=True
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_each_operation_counts_once_against_the_rate_limit_as_a_request_does(
    live: Live, world: World, protocol: str
) -> None:
    """connection_init is one call, each operation another, however many
    root fields it has (they share one authentication, as an HTTP request's
    do); past the burst, RATE_LIMITED with retryAfterSeconds."""
    async with socket(live, protocol, world.token("contoso-admin")) as client:  # 1
        two_roots = "{ me { name } webhooks { id } }"
        assert (await client.result_of("1", two_roots))["data"]["me"]  # 2
        assert (await client.result_of("2", ME))["data"]  # 3
        limited = await client.result_of("3", ME)
    (error,) = limited["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED", error
    assert error["extensions"]["retryAfterSeconds"] >= 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_document_limits_refuse_as_over_http(
    live: Live, world: World, protocol: str
) -> None:
    """Query cost, depth and list sizes are the schema's: refused before
    anything runs, with HTTP's code and message, in an `error` frame."""
    token = world.token("contoso-admin")
    costly = (
        "{ accessRequests(first: 100) { edges { node {"
        " activity(first: 200) { edges { node { id } } } } } } }"
    )
    too_many = (
        "query($s: [AccessRequestStatus!]) { accessRequests(status: $s) { edges { node { id } } } }"
    )
    statuses = {"s": ["PENDING"] * 101}
    async with socket(live, protocol, token) as client:
        cost = await client.error_of("1", costly)
        listed = await client.result_of("2", too_many, variables=statuses)
        await client.still_answers("contoso-admin")
    assert cost["extensions"]["code"] == "BAD_USER_INPUT" and "costs 20100" in cost["message"]
    assert cost["message"] == (await http_errors(live, token, {"query": costly}))[0]["message"]
    (list_error,) = listed["errors"]
    assert list_error["extensions"]["code"] == "BAD_USER_INPUT"
    over_http = await http_errors(live, token, {"query": too_many, "variables": statuses})
    assert list_error["message"] == over_http[0]["message"]


# --- documents a client gets wrong ----------------------------------------------------------

WITH_ID = "query($id: ID!) { accessRequest(id: $id) { id } }"
DOCUMENTS: dict[str, tuple[dict[str, Any], str]] = {
    "syntax error": ({"query": "query {"}, "GRAPHQL_PARSE_FAILED"),
    "subscription syntax error": ({"query": "subscription {"}, "GRAPHQL_PARSE_FAILED"),
    "unknown field": ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    "unknown subscription field": ({"query": "subscription { nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    "unknown argument": ({"query": "{ me(x: 1) { name } }"}, "GRAPHQL_VALIDATION_FAILED"),
    "missing argument": ({"query": "{ accessRequest { id } }"}, "GRAPHQL_VALIDATION_FAILED"),
    "missing variable": ({"query": WITH_ID}, "BAD_USER_INPUT"),
    "wrong variable type": ({"query": WITH_ID, "variables": {"id": {"a": 1}}}, "BAD_USER_INPUT"),
    "unknown operationName": (
        {"query": "query A { me { name } }", "operationName": "B"},
        "BAD_USER_INPUT",
    ),
    "several operations without operationName": (
        {"query": "query A { me { name } } query B { me { role } }"},
        "BAD_USER_INPUT",
    ),
}


@pytest.mark.parametrize("case", sorted(DOCUMENTS))
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_bad_document_is_an_error_frame_with_a_code_and_the_socket_lives_on(
    live: Live, world: World, protocol: str, case: str
) -> None:
    """A syntax error closed a graphql-transport-ws socket (4400, no code),
    ending every other operation on it; a query with several operations ran
    the first. Each now gets an `error` frame with the code HTTP gives."""
    payload, code = DOCUMENTS[case]
    with server_log() as logged:
        async with socket(live, protocol, world.token("contoso-admin")) as client:
            error = await client.error_of("1", **payload)
            await client.still_answers("contoso-admin")
    assert error["extensions"]["code"] == code, error
    if not payload["query"].startswith("subscription"):  # HTTP runs no subscription
        over_http = await http_errors(live, world.token("contoso-admin"), payload)
        assert [e["extensions"]["code"] for e in over_http] == [code], over_http
    logged.assert_no_traceback()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_query_with_several_operations_runs_the_one_named(
    live: Live, world: World, protocol: str
) -> None:
    document = "query A { me { name } } query B { me { role } }"
    async with socket(live, protocol, world.token("contoso-admin")) as client:
        answer = await client.result_of("1", document, operationName="B")
    assert answer == {"data": {"me": {"role": "TENANT_ADMIN"}}}


# --- messages a client gets wrong -------------------------------------------------------------

TRANSPORT_BAD_REQUEST = 4400


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "START", "id": "1", "payload": "x"},
        {"type": "START", "id": "1", "payload": None},
        {"type": "START", "id": "1", "payload": []},
        {"type": "START", "id": "1", "payload": {"query": ME, "variables": "x"}},
        {"type": "START", "id": "1", "payload": {"query": ME, "operationName": 1}},
        {"type": "START", "id": 1, "payload": {"query": ME}},
        {"type": "START", "payload": {"query": ME}},
        {"type": "STOP", "id": ["1"]},
        {"type": "no-such-type"},
        {"id": "1"},
        [],
        "text",
        None,
    ],
    ids=[
        "string-payload",
        "null-payload",
        "list-payload",
        "string-variables",
        "number-operationName",
        "number-id",
        "no-id",
        "list-id-stop",
        "unknown-type",
        "no-type",
        "list-frame",
        "string-frame",
        "null-frame",
    ],
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_malformed_message_is_refused_with_a_code(
    live: Live, world: World, protocol: str, frame: Any
) -> None:
    """graphql-transport-ws closes with 4400, as its protocol says; the
    legacy protocol, which has no such code, answers an `error` frame with
    BAD_USER_INPUT (it ignored frames that were not JSON objects, and
    messages of an unknown type: the client waited for ever)."""
    with server_log() as logged:
        async with socket(live, protocol, world.token("contoso-admin")) as client:
            text = json.dumps(frame).replace("START", client.start).replace("STOP", client.stop)
            await client.ws.send(text)
            if protocol == TRANSPORT_WS:
                close = await client.closed()
                assert close.code == TRANSPORT_BAD_REQUEST, close
            else:
                refusal = await client.receive()
                assert refusal["type"] == "error", refusal
                assert refusal["payload"]["extensions"]["code"] == "BAD_USER_INPUT", refusal
                await client.still_answers("contoso-admin")
    logged.assert_no_traceback()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_frame_that_is_not_json_is_refused(live: Live, world: World, protocol: str) -> None:
    with server_log() as logged:
        async with socket(live, protocol, world.token("contoso-admin")) as client:
            await client.ws.send("{not json")
            if protocol == TRANSPORT_WS:
                assert (await client.closed()).code == TRANSPORT_BAD_REQUEST
            else:
                refusal = await client.receive()
                assert refusal["type"] == "error", refusal
                assert refusal["payload"]["extensions"]["code"] == "BAD_USER_INPUT"
                await client.still_answers("contoso-admin")
    logged.assert_no_traceback()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_binary_frame_closes_the_socket(live: Live, world: World, protocol: str) -> None:
    """Both protocols are text: graphql-transport-ws closes with 4400, the
    legacy protocol with 1002 (a protocol error; it has no codes of its own)."""
    with server_log() as logged:
        async with socket(live, protocol, world.token("contoso-admin")) as client:
            await client.ws.send(json.dumps({"type": "ping"}).encode())
            close = await client.closed()
    assert close.code == (TRANSPORT_BAD_REQUEST if protocol == TRANSPORT_WS else 1002), close
    logged.assert_no_traceback()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_operation_before_connection_init_is_unauthenticated(
    live: Live, protocol: str
) -> None:
    """graphql-transport-ws closes with 4401 (Unauthorized); the legacy
    protocol says UNAUTHENTICATED in an `error` frame first."""
    with server_log() as logged:
        async with socket(live, protocol) as client:
            await client.operation("1", ME)
            if protocol == LEGACY_WS:
                refusal = await client.receive()
                assert refusal["type"] == "error" and refusal["id"] == "1", refusal
                assert refusal["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
            close = await client.closed()
    assert close.code == 4401, close
    logged.assert_no_traceback()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_bad_token_is_refused_at_connection_init_with_its_code(
    live: Live, protocol: str
) -> None:
    """graphql-transport-ws closes with 4403; the legacy protocol's
    connection_error says UNAUTHENTICATED (it had a message only)."""
    with server_log() as logged:
        async with socket(live, protocol) as client:
            await client.send(
                {"type": "connection_init", "payload": {"authorization": "Bearer lbx_nope"}}
            )
            if protocol == LEGACY_WS:
                refusal = await client.receive()
                assert refusal["type"] == "connection_error", refusal
                assert refusal["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
            close = await client.closed()
    assert close.code == (4403 if protocol == TRANSPORT_WS else 1011), close
    logged.assert_no_traceback()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_connection_init_without_an_object_payload_is_refused(
    live: Live, protocol: str
) -> None:
    with server_log() as logged:
        async with socket(live, protocol) as client:
            await client.send({"type": "connection_init", "payload": ["Bearer x"]})
            if protocol == LEGACY_WS:
                refusal = await client.receive()
                assert refusal["type"] == "connection_error", refusal
                assert refusal["payload"]["extensions"]["code"] == "BAD_USER_INPUT"
            close = await client.closed()
    assert close.code == TRANSPORT_BAD_REQUEST, close
    logged.assert_no_traceback()


async def test_a_duplicate_id_closes_a_graphql_transport_ws_socket_with_4409(
    live: Live, world: World
) -> None:
    with server_log() as logged:
        async with socket(live, TRANSPORT_WS, world.token("contoso-admin")) as client:
            await client.operation("1", UPDATES)
            await client.operation("1", UPDATES)
            close = await client.closed()
    assert close.code == 4409 and "1" in close.reason, close
    logged.assert_no_traceback()


async def test_a_duplicate_id_replaces_the_operation_on_the_legacy_protocol(
    live: Live, world: World
) -> None:
    """As subscriptions-transport-ws has it: the running operation with that
    id is completed and the new one runs under it."""
    request_id = await approved_request(live, world)
    await authorize(live, world, request_id, f"{PROD}/vm1")
    with server_log() as logged:
        async with socket(live, LEGACY_WS, world.token("contoso-admin")) as client:
            await client.operation("1", ACTIVITY, variables={"id": request_id})
            assert (await client.receive())["type"] == "data"  # running: its replay came
            await client.operation("1", ME)
            assert await client.receive() == {"type": "complete", "id": "1"}  # the subscription
            answer = await client.receive()
            assert answer == {
                "type": "data",
                "id": "1",
                "payload": {"data": {"me": {"name": "contoso-admin"}}},
            }
            assert await client.receive() == {"type": "complete", "id": "1"}  # the query
    logged.assert_no_traceback()


async def test_a_stop_read_with_its_start_is_confirmed_on_the_legacy_protocol(
    live: Live, world: World
) -> None:
    """Read in one go, the start's task is cancelled before it first runs,
    so it never reaches its own handlers: the `complete` must not depend on them."""
    with server_log() as logged:
        async with socket(live, LEGACY_WS, world.token("contoso-admin")) as client:
            for op_id in ("1", "2", "3"):
                client.send_in_one_write(
                    {"id": op_id, "type": "start", "payload": {"query": UPDATES}},
                    {"id": op_id, "type": "stop"},
                )
                assert await client.receive() == {"type": "complete", "id": op_id}
            await client.still_answers("contoso-admin")
    logged.assert_no_traceback()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_stopping_an_unknown_id_is_harmless(live: Live, world: World, protocol: str) -> None:
    """graphql-transport-ws ignores a `complete` for an operation that is
    over, as its protocol says (the two ends may cross); the legacy protocol
    confirms every `stop` with `complete`."""
    with server_log() as logged:
        async with socket(live, protocol, world.token("contoso-admin")) as client:
            await client.send({"type": client.stop, "id": "never-started"})
            if protocol == LEGACY_WS:
                assert await client.receive() == {"type": "complete", "id": "never-started"}
            else:  # still open, and nothing came for the unknown id
                await client.send({"type": "ping"})
                assert (await client.receive())["type"] == "pong"
            await client.still_answers("contoso-admin")
    logged.assert_no_traceback()
