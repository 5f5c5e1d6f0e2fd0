"""A socket's identity is set once, on both sub-protocols: a second
connection_init never changes who its subscriptions run as."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from lockbox.api.client_address import client_address, parse_networks
from lockbox.api.sockets import SocketCount, SocketLimits
from lockbox.app import create_app, uvicorn_options
from lockbox.clock import ManualClock
from lockbox.settings import Settings
from tests.conftest import Live, Stack, World, start_server
from tests.support import LEGACY_WS, TRANSPORT_WS, LiveServer, WsClient

ME = "query { me { name } }"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_second_connection_init_is_refused_and_closes_the_socket(
    live: Live, world: World, protocol: str
) -> None:
    client = WsClient(live.ws_url, protocol)
    await client.connect(world.token("contoso-admin"))
    await client.send(
        {
            "type": "connection_init",
            "payload": {"authorization": f"Bearer {world.token('fabrikam-admin')}"},
        }
    )
    if protocol == LEGACY_WS:
        refusal = await client.receive()
        assert refusal["type"] == "connection_error"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429


async def test_after_a_refused_reinit_nothing_runs_as_the_second_token(
    live: Live, world: World
) -> None:
    """The legacy protocol used to accept the second token and stream the
    first tenant's events to whoever held the second one (and keep
    streaming them after the first token was revoked)."""
    client = WsClient(live.ws_url, LEGACY_WS)
    await client.connect(world.token("engineer-alice"))
    await client.send(
        {
            "type": "connection_init",
            "payload": {"authorization": f"Bearer {world.token('contoso-admin')}"},
        }
    )
    assert (await client.receive())["type"] == "connection_error"
    with pytest.raises(websockets.ConnectionClosed):
        await client.subscribe("1", "subscription { accessRequestUpdates { id } }")
        await client.receive()


@pytest.fixture
async def strict(world: World, database: Stack, clock: ManualClock) -> AsyncIterator[LiveServer]:
    """A server with a short connection_init deadline and a small body limit."""
    server = start_server(database, clock, ws_init_timeout_seconds=0.3, max_body_bytes=64 * 1024)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def test_a_socket_that_never_sends_connection_init_is_closed_on_both_protocols(
    strict: LiveServer,
) -> None:
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        async with websockets.connect(strict.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
            if protocol == LEGACY_WS:
                refusal = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert refusal["type"] == "connection_error"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408


async def test_an_oversized_body_is_refused_before_it_is_read_or_authenticated(
    strict: LiveServer,
) -> None:
    big = b'{"query": "' + b"x" * (128 * 1024) + b'"}'
    async with httpx.AsyncClient() as client:
        declared = await client.post(
            f"{strict.http_url}/graphql", content=big, headers={"content-type": "application/json"}
        )

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for start in range(0, len(big), 8192):
                yield big[start : start + 8192]

        streamed = await client.post(
            f"{strict.http_url}/graphql",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        small = await client.post(f"{strict.http_url}/graphql", json={"query": "{ me { name } }"})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert small.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_frame_over_64_kib_closes_the_socket_with_1009(live: Live, world: World) -> None:
    client = WsClient(live.ws_url, TRANSPORT_WS)
    await client.connect(world.token("contoso-admin"))
    await client.send({"id": "1", "type": "subscribe", "payload": {"query": "x" * 70_000}})
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


# --- Limits on sockets, clients and slow requests (contract section 10) ------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, text: str) -> list[logging.LogRecord]:
        return [r for r in self.records if text in r.getMessage()]

    def assert_no_traceback(self) -> None:
        faults = [r for r in self.records if r.exc_info or r.levelno >= logging.ERROR]
        assert not faults, [r.getMessage() for r in faults]


@contextmanager
def server_log() -> Iterator[_Records]:
    """What the server logs (lockbox, strawberry, uvicorn's error log, and
    asyncio's, where a task's unhandled exception lands). Entered after the
    server starts: uvicorn configures its loggers then."""
    handler = _Records()
    names = ("lockbox", "strawberry", "uvicorn.error", "asyncio")
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _close_error(closed: websockets.ConnectionClosed) -> dict[str, Any]:
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4429, closed.rcvd
    error: dict[str, Any] = json.loads(closed.rcvd.reason)
    return error


async def _refused(url: str, protocol: str, token: str | None) -> dict[str, Any]:
    """Open a socket, send connection_init if `token` is given, and return the
    error it is refused with: the close reason (graphql-transport-ws), or the
    connection_error's payload, then a 4429 close (legacy)."""
    async with websockets.connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        if token is not None:
            init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
            await ws.send(json.dumps(init))
        if protocol == LEGACY_WS:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "connection_error", message
            error: dict[str, Any] = message["payload"]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert _close_error(closed.value)["extensions"] == error["extensions"]
            return error
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        return _close_error(closed.value)


def _rate_limited(error: dict[str, Any]) -> int:
    assert error["extensions"]["code"] == "RATE_LIMITED", error
    seconds = error["extensions"]["retryAfterSeconds"]
    assert isinstance(seconds, int) and seconds >= 1, error
    return seconds


@pytest.mark.parametrize(
    "live", [{"rate_limit_per_second": 0.01, "rate_limit_burst": 1}], indirect=True
)
async def test_a_rate_limited_connect_is_closed_4429_with_retry_after_and_one_log_line(
    live: Live, world: World
) -> None:
    """It used to be an unhandled exception: 1006 for the client and a
    traceback per refusal in the log."""
    with server_log() as logged:
        for protocol, principal in ((TRANSPORT_WS, "contoso-admin"), (LEGACY_WS, "fabrikam-admin")):
            first = WsClient(live.ws_url, protocol)
            await first.connect(world.token(principal))  # the one call the bucket holds
            error = await _refused(live.ws_url, protocol, world.token(principal))
            assert _rate_limited(error) == 100  # one call back at 0.01/s
            await first.close()
    assert len(logged.lines("rate limited")) == 2
    logged.assert_no_traceback()


@pytest.mark.parametrize("live", [{"auth_failures_per_minute": 3}], indirect=True)
async def test_failed_authentications_per_address_become_rate_limited(
    live: Live, world: World
) -> None:
    bad = "lbx_" + "A" * 43
    with server_log() as logged:
        # One request with three root fields is one failure, answered once.
        body = await live.http.call(bad, "{ a: me { name } b: me { name } c: me { name } }")
        assert {e["extensions"]["code"] for e in body["errors"]} == {"UNAUTHENTICATED"}
        assert await live.http.error_code(None, ME) == "UNAUTHENTICATED"
        assert await live.http.error_code("not-a-token", ME) == "UNAUTHENTICATED"
        # The fourth failure from this address in a minute: RATE_LIMITED.
        _rate_limited(await live.http.error(bad, ME))
        # At connection_init too, on both sub-protocols.
        for protocol in (TRANSPORT_WS, LEGACY_WS):
            assert _rate_limited(await _refused(live.ws_url, protocol, bad)) == 20  # 60 s / 3
        # Only failures count: a valid token still works, over HTTP and WebSocket.
        assert (await live.http.data(world.token("contoso-admin"), ME))["me"]
        client = WsClient(live.ws_url, TRANSPORT_WS)
        await client.connect(world.token("contoso-admin"))
        await client.close()
    assert len(logged.lines("too many failed authentications")) == 3
    logged.assert_no_traceback()


@pytest.mark.parametrize(
    "live",
    [{"auth_failures_per_minute": 1, "trusted_proxies": ("127.0.0.1", "10.0.0.0/8")}],
    indirect=True,
)
async def test_behind_a_trusted_proxy_failures_count_per_forwarded_client(live: Live) -> None:
    async def code(forwarded_for: str) -> str:
        response = await live.http.client.post(
            live.http.url, json={"query": ME}, headers={"X-Forwarded-For": forwarded_for}
        )
        return str(response.json()["errors"][0]["extensions"]["code"])

    assert await code("203.0.113.7") == "UNAUTHENTICATED"
    # The same client through a second proxy of ours; whatever it claims on the left.
    assert await code("198.51.100.1, 203.0.113.7, 10.1.2.3") == "RATE_LIMITED"
    assert await code("203.0.113.8") == "UNAUTHENTICATED"  # another client


@pytest.mark.parametrize("live", [{"auth_failures_per_minute": 1}], indirect=True)
async def test_without_trusted_proxies_x_forwarded_for_is_ignored(live: Live) -> None:
    codes = []
    for forwarded_for in ("203.0.113.7", "203.0.113.8"):
        response = await live.http.client.post(
            live.http.url, json={"query": ME}, headers={"X-Forwarded-For": forwarded_for}
        )
        codes.append(response.json()["errors"][0]["extensions"]["code"])
    assert codes == ["UNAUTHENTICATED", "RATE_LIMITED"]  # one client: the socket's peer


def test_client_address_believes_x_forwarded_for_only_from_trusted_peers() -> None:
    proxies = parse_networks(["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"])
    # No trusted proxies, or an untrusted peer: the peer, whatever the header says.
    assert client_address("198.51.100.9", ["203.0.113.7"], ()) == "198.51.100.9"
    assert client_address("198.51.100.9", ["203.0.113.7"], proxies) == "198.51.100.9"
    # A trusted peer: the right-most address that is not one of ours.
    assert client_address("10.0.0.5", ["203.0.113.7"], proxies) == "203.0.113.7"
    assert client_address("10.0.0.5", ["1.1.1.1, 203.0.113.7, 192.0.2.1"], proxies) == (
        "203.0.113.7"
    )
    assert client_address("10.0.0.5", ["1.1.1.1", "203.0.113.7"], proxies) == "203.0.113.7"
    assert client_address("10.0.0.5", ["203.0.113.7:4711"], proxies) == "203.0.113.7"
    assert client_address("10.0.0.5", ["[2001:db9::1]:443"], proxies) == "2001:db9::1"
    # No header, or only our own hops: the request started inside.
    assert client_address("10.0.0.5", [], proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", ["10.9.9.9, 192.0.2.1"], proxies) == "10.9.9.9"
    # Garbage ends the trust at the hop that handed it over.
    assert client_address("10.0.0.5", ["203.0.113.7, nonsense"], proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", ["nonsense, 10.2.2.2"], proxies) == "10.2.2.2"
    assert client_address(None, ["203.0.113.7"], proxies) == "unknown"
    with pytest.raises(ValueError, match="LOCKBOX_TRUSTED_PROXIES"):
        parse_networks(["10.0.0.0/8", "proxy.example"])


def _released(
    monkeypatch: pytest.MonkeyPatch, count: SocketCount, key: str, down_to: int
) -> threading.Event:
    """Set once `count` has given back slots for `key` down to `down_to` open."""
    done = threading.Event()
    release = count.release

    def counted_release(released_key: str) -> None:
        release(released_key)
        if count.open(key) <= down_to:
            done.set()

    monkeypatch.setattr(count, "release", counted_release)
    return done


async def _wait(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 10), "the server did not release the sockets"


@pytest.mark.parametrize(
    "live", [{"max_sockets_per_address": 3, "max_sockets_per_principal": 0}], indirect=True
)
async def test_open_sockets_per_address_are_limited_and_given_back_however_they_end(
    live: Live, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sockets: SocketLimits = live.server.app.state.sockets
    with server_log() as logged:
        acked = WsClient(live.ws_url, TRANSPORT_WS)
        await acked.connect(world.token("contoso-admin"))
        legacy = WsClient(live.ws_url, LEGACY_WS)
        await legacy.connect(world.token("fabrikam-admin"))
        silent = await websockets.connect(live.ws_url, subprotocols=[TRANSPORT_WS])  # type: ignore[list-item]
        # A fourth socket from this address is refused as it opens, before connection_init.
        for protocol in (TRANSPORT_WS, LEGACY_WS):
            assert _rate_limited(await _refused(live.ws_url, protocol, None)) >= 1
        assert sockets.per_address.open("127.0.0.1") == 3
        # Three ways to end: the client closes, the connection drops, the server refuses.
        all_back = _released(monkeypatch, sockets.per_address, "127.0.0.1", 0)
        await acked.close()
        legacy.ws.transport.abort()
        await silent.send(json.dumps({"type": "connection_init", "payload": {}}))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(silent.recv(), 10)
        assert silent.close_code == 4403
        await _wait(all_back)
        # Three more work.
        again = [WsClient(live.ws_url, p) for p in (TRANSPORT_WS, LEGACY_WS, TRANSPORT_WS)]
        for client, principal in zip(
            again, ("contoso-admin", "fabrikam-admin", "engineer-alice"), strict=True
        ):
            await client.connect(world.token(principal))
        for client in again:
            await client.close()
    assert len(logged.lines("too many open sockets")) == 2
    logged.assert_no_traceback()


@pytest.mark.parametrize(
    "live", [{"max_sockets_per_address": 0, "max_sockets_per_principal": 2}], indirect=True
)
async def test_open_sockets_per_principal_are_limited_at_connection_init(
    live: Live, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sockets: SocketLimits = live.server.app.state.sockets
    admin = world.actors["contoso-admin"].id
    with server_log() as logged:
        first, second = WsClient(live.ws_url, TRANSPORT_WS), WsClient(live.ws_url, LEGACY_WS)
        await first.connect(world.token("contoso-admin"))
        await second.connect(world.token("contoso-admin"))
        for protocol in (TRANSPORT_WS, LEGACY_WS):
            error = await _refused(live.ws_url, protocol, world.token("contoso-admin"))
            assert _rate_limited(error) >= 1
        # Another principal from the same address is not affected.
        other = WsClient(live.ws_url, TRANSPORT_WS)
        await other.connect(world.token("fabrikam-admin"))
        one_back = _released(monkeypatch, sockets.per_principal, admin, 1)
        await first.close()
        await _wait(one_back)
        third = WsClient(live.ws_url, TRANSPORT_WS)
        await third.connect(world.token("contoso-admin"))
        for client in (second, other, third):
            await client.close()
    assert len(logged.lines("too many open sockets")) == 2
    logged.assert_no_traceback()


SUBSCRIPTION = "subscription { accessRequestUpdates { id } }"


@pytest.mark.parametrize("live", [{"ws_max_subscriptions": 2}], indirect=True)
@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_subscription_over_the_per_socket_limit_is_bad_user_input(
    live: Live, world: World, protocol: str
) -> None:
    client = WsClient(live.ws_url, protocol)
    await client.connect(world.token("contoso-admin"))
    with server_log() as logged:
        for op_id in ("1", "2", "3"):
            await client.subscribe(op_id, SUBSCRIPTION)
        refusal = await client.receive(timeout=5)
    assert refusal["type"] == "error" and refusal["id"] == "3", refusal
    errors = refusal["payload"] if protocol == TRANSPORT_WS else [refusal["payload"]]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    # The two within the limit run on.
    await client.send({"id": "1", "type": "complete" if protocol == TRANSPORT_WS else "stop"})
    await client.subscribe("4", SUBSCRIPTION)  # a slot again: no error for it
    if protocol == LEGACY_WS:  # the legacy protocol confirms the stop
        assert (await client.receive(timeout=5)) == {"type": "complete", "id": "1"}
    await client.close()
    assert len(logged.lines("refused a subscription")) == 1
    logged.assert_no_traceback()


class _TunedServer(LiveServer):
    """A LiveServer run with `uvicorn_options(settings)`, as `lockbox serve` runs."""

    def __init__(self, settings: Settings, clock: ManualClock) -> None:
        app = create_app(settings, clock=clock)
        super().__init__(app)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", **uvicorn_options(settings)
        )
        self.server = uvicorn.Server(config)


READ_TIMEOUT = 0.5


@pytest.fixture
async def slow_reader(database: Stack, clock: ManualClock) -> AsyncIterator[LiveServer]:
    settings = Settings(
        database_url=database.database_url,
        broker_url=database.broker_url,
        header_timeout_seconds=READ_TIMEOUT,
        body_timeout_seconds=READ_TIMEOUT,
    )
    server = _TunedServer(settings, clock).start()
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_slow_request_headers_and_bodies_are_cut_off(slow_reader: LiveServer) -> None:
    """300 of 300 slowloris connections were still open after 35 s."""
    margin = READ_TIMEOUT + 5
    opened = [await asyncio.open_connection("127.0.0.1", slow_reader.port) for _ in range(4)]
    with server_log() as logged:
        (silent_r, _), (partial_r, partial_w), (body_r, body_w), (kept_r, kept_w) = opened
        partial_w.write(b"POST /graphql HTTP/1.1\r\nHost: lockbox\r\nContent-Type: appl")
        body_w.write(
            b"POST /graphql HTTP/1.1\r\nHost: lockbox\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"query": "'
        )
        # A kept-alive connection: a whole request is answered, then the next
        # request's headers have the same deadline.
        kept_w.write(b"GET /healthz HTTP/1.1\r\nHost: lockbox\r\n\r\n")
        assert (await asyncio.wait_for(kept_r.readuntil(b'{"status":"ok"}'), 5)).startswith(
            b"HTTP/1.1 200"
        )
        kept_w.write(b"GET /healthz HTTP/1.1\r\n")
        assert await _closed_within(silent_r, margin) == b""
        assert await _closed_within(partial_r, margin) == b""
        assert await _closed_within(kept_r, margin) == b""
        answer = await _closed_within(body_r, margin)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"BAD_USER_INPUT" in answer
    for _, writer in opened:
        writer.close()
    assert len(logged.lines("no complete request headers")) == 3
    assert len(logged.lines("request body not received")) == 1
    logged.assert_no_traceback()
    # A prompt request is untouched.
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{slow_reader.http_url}/graphql", json={"query": ME})
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_absurd_content_length_is_refused_not_a_server_error(
    strict: LiveServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", strict.port)
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: lockbox\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n{}"
    )
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith((b"HTTP/1.1 413", b"HTTP/1.1 400")), answer[:80]
