#!/usr/bin/env python3
"""The engineer's side of Lockbox: ask for access, wait for the customer's
decision, then work through the gate.

    export LOCKBOX_URL=http://127.0.0.1:8000 LOCKBOX_TOKEN=lbx_...   # an engineer's token
    python engineer.py --ticket TICKET_ID \\
        --resource /subscriptions/contoso-prod/resourceGroups/rg-web \\
        --justification "Reading web tier logs for the ticket" [--duration 3600] \\
        --action "read logs" /subscriptions/contoso-prod/resourceGroups/rg-web/logs \\
        [--action ACTION RESOURCE ...] [--timeout SECONDS] [--release]
    python engineer.py --request REQUEST_ID --action ...   # use a request made earlier

1. createAccessRequest (skipped with --request);
2. wait for the customer's decision on accessRequestUpdates (graphql-transport-ws),
   printing each status change;
3. once APPROVED, authorizeAccess for each --action in order, printing each
   decision; stop if the access is revoked or its window closes;
4. with --release, end the access early with releaseAccess.

Exit status: 0 done (an action the gate refused, say out of scope, is printed,
not a failure); 1 an API or connection error; 2 bad arguments; 3 the request
ended without access (DENIED, EXPIRED, CANCELED, ...); 4 no decision within
--timeout (the request stays pending); 5 the access ended (revoked, window
closed) before every action had run.

Needs httpx and websockets. Every line is printed with control and format
characters removed, so a string from the server (an action, a reason) cannot
drive the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import unicodedata
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

# One selection of a request's fields, shared by every operation below.
REQUEST = """
fragment Request on AccessRequest {
  id status expiresAt decisionReason accessStartsAt accessEndsAt
  decidedBy { name } tenant { name }
}
"""

CREATE = (
    REQUEST
    + """
mutation Create($input: CreateAccessRequestInput!) {
  createAccessRequest(input: $input) { ...Request }
}
"""
)

READ = REQUEST + "query Read($id: ID!) { accessRequest(id: $id) { ...Request } }"

RELEASE = REQUEST + "mutation Release($id: ID!) { releaseAccess(id: $id) { ...Request } }"

UPDATES = REQUEST + "subscription Updates { accessRequestUpdates { ...Request } }"

AUTHORIZE = """
mutation Authorize($input: AuthorizeAccessInput!) {
  authorizeAccess(input: $input) { allowed reason event { cursor action resource } }
}
"""

APPROVED = "APPROVED"
# Where a request can go no further. Any other status but APPROVED (PENDING,
# or one a newer server adds before the decision) means: keep waiting.
FINAL = frozenset({"DENIED", "EXPIRED", "CANCELED", "REVOKED", "COMPLETED"})

# accessRequestUpdates has no replay, and graphql-transport-ws does not
# acknowledge a subscribe; re-reading the request this often while waiting
# makes sure no decision goes unseen however the stream fares.
RECHECK_SECONDS = 15.0
HANDSHAKE_SECONDS = 30.0

# Close codes after which reconnecting cannot help (graphql-transport-ws).
FATAL_CLOSE_CODES = {4400: "bad request", 4403: "token refused", 4409: "duplicate id"}

EXIT_ERROR, EXIT_NOT_APPROVED, EXIT_TIMEOUT, EXIT_ACCESS_ENDED = 1, 3, 4, 5

# Unicode categories never printed: controls (ESC starts terminal escape
# sequences, C1 controls too), format characters (U+202E turns text around),
# lone surrogates, and the line and paragraph separators.
UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class LockboxError(Exception):
    """A GraphQL error answered by the server, with its extensions.code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def first_error(errors: list[dict[str, Any]]) -> LockboxError:
    error = errors[0]
    code = str((error.get("extensions") or {}).get("code", "ERROR"))
    return LockboxError(code, str(error.get("message", "unknown error")))


def ws_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "/graphql"


def clean(text: str) -> str:
    """`text` safe for a terminal, on one line: tabs and line breaks become
    spaces, other control and format characters are dropped."""
    kept = []
    for char in text:
        if char in "\t\n\r":
            kept.append(" ")
        elif unicodedata.category(char) not in UNPRINTABLE:
            kept.append(char)
    return "".join(kept)


def say(line: str) -> None:
    print(clean(line), flush=True)


def complain(line: str) -> None:
    print(clean(line), file=sys.stderr, flush=True)


def describe(request: dict[str, Any]) -> str:
    """`<id> is <STATUS>`, with whoever decided, why, and the relevant time."""
    status = request["status"]
    line = f"{request['id']} is {status}"
    decider = (request.get("decidedBy") or {}).get("name")
    reason = request.get("decisionReason")
    if status in (APPROVED, "DENIED") and decider:
        line += f" by {decider}"
    if status in (APPROVED, "DENIED", "REVOKED") and reason:
        line += f": {reason}"
    if status == APPROVED:
        line += f" (access until {request['accessEndsAt']})"
    elif status == "COMPLETED":
        line += f" (access ended at {request['accessEndsAt']})"
    elif status == "EXPIRED":
        line += f" (nobody decided by {request['expiresAt']})"
    elif status not in FINAL:
        line += f" (decision due by {request['expiresAt']})"
    return line


def closed_error(closed: websockets.ConnectionClosed) -> LockboxError | None:
    """The error to stop with when the server closed the socket for good."""
    code = closed.rcvd.code if closed.rcvd else None
    if code in FATAL_CLOSE_CODES:
        return LockboxError(f"CLOSED {code}", FATAL_CLOSE_CODES[code])
    return None


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    try:
        body = response.json()
    except ValueError:
        raise LockboxError(f"HTTP {response.status_code}", response.text[:200]) from None
    if body.get("errors"):
        raise first_error(body["errors"])
    data: dict[str, Any] = body["data"]
    return data


async def read_request(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    request: dict[str, Any] | None = (await graphql(client, READ, {"id": request_id}))[
        "accessRequest"
    ]
    if request is None:
        raise LockboxError("NOT_FOUND", f"no request {request_id} visible to this token")
    return request


class RequestUpdates:
    """This principal's accessRequestUpdates over graphql-transport-ws,
    reconnected (with backoff) when the connection drops."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.ws: websockets.ClientConnection | None = None
        self.delay = 1.0

    async def open(self) -> None:
        """Connect, authenticate, wait for the ack, and subscribe."""
        ws = await websockets.connect(self.url, subprotocols=[Subprotocol("graphql-transport-ws")])
        try:
            async with asyncio.timeout(HANDSHAKE_SECONDS):
                init = {
                    "type": "connection_init",
                    "payload": {"authorization": f"Bearer {self.token}"},
                }
                await ws.send(json.dumps(init))
                while True:
                    kind = json.loads(await ws.recv()).get("type")
                    if kind == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                    elif kind == "connection_ack":
                        break
            subscribe = {"id": "updates", "type": "subscribe", "payload": {"query": UPDATES}}
            await ws.send(json.dumps(subscribe))
        except websockets.ConnectionClosed as closed:
            await ws.close()
            raise closed_error(closed) or closed from None
        except TimeoutError:
            await ws.close()
            raise OSError(f"no connection_ack within {HANDSHAKE_SECONDS:g}s") from None
        except BaseException:
            await ws.close()
            raise
        self.ws = ws
        self.delay = 1.0

    async def reconnect(self) -> None:
        await self.close()
        while True:
            say(f"# reconnecting in {self.delay:.0f}s")
            await asyncio.sleep(self.delay)
            self.delay = min(self.delay * 2, 30.0)
            try:
                await self.open()
                return
            except (OSError, websockets.WebSocketException) as exc:
                say(f"# cannot connect ({exc})")

    async def next(self, seconds: float) -> dict[str, Any] | None:
        """The next request the stream announces, or None when `seconds` pass
        first or the connection had to be re-established (either way the
        caller re-reads the request: the stream has no replay)."""
        if self.ws is None:
            await self.reconnect()
            return None
        ws = self.ws
        try:
            async with asyncio.timeout(seconds):
                while True:
                    message = json.loads(await ws.recv())
                    kind = message.get("type")
                    if kind == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                    elif kind in ("next", "error"):
                        payload = message["payload"]
                        errors = payload if kind == "error" else payload.get("errors")
                        if not errors:
                            update: dict[str, Any] = payload["data"]["accessRequestUpdates"]
                            return update
                        error = first_error(errors)
                        if error.code != "RATE_LIMITED":
                            raise error
                        # Refused for now, or ended because it fell behind:
                        # subscribe again after a pause.
                        say(f"# {error}")
                        break
                    elif kind == "complete":
                        raise LockboxError("COMPLETE", "the server ended accessRequestUpdates")
        except TimeoutError:
            return None
        except websockets.ConnectionClosed as closed:
            fatal = closed_error(closed)
            if fatal is not None:
                raise fatal from None
            code = closed.rcvd.code if closed.rcvd else None
            say(f"# connection lost (code {code})")
        await self.reconnect()
        return None

    async def close(self) -> None:
        if self.ws is not None:
            ws, self.ws = self.ws, None
            await ws.close()


async def reread(client: httpx.AsyncClient, request_id: str) -> dict[str, Any] | None:
    """The request as it is now, or None while the server cannot be reached
    (a restart, say: the stream reconnects meanwhile, and the next quiet spell
    re-reads again)."""
    try:
        return await read_request(client, request_id)
    except httpx.TransportError as exc:
        say(f"# cannot re-read {request_id} ({exc})")
        return None


async def wait_for_decision(
    client: httpx.AsyncClient, updates: RequestUpdates, request: dict[str, Any]
) -> dict[str, Any]:
    """The request once it is APPROVED or final, printing each status change."""
    request_id = request["id"]
    # Re-read first: the decision may have come before the server registered
    # the subscription (see run()).
    update = await reread(client, request_id)
    announced = False
    while True:
        if update is not None and update["id"] == request_id:
            if update["status"] != request["status"]:
                say(f"status: {describe(update)}")
            request = update
        if request["status"] == APPROVED or request["status"] in FINAL:
            return request
        if not announced:
            say("# waiting for the customer's decision")
            announced = True
        # An update about another of this engineer's requests is skipped;
        # None (quiet for a while, or reconnected) means: re-read ours.
        update = await updates.next(RECHECK_SECONDS)
        if update is None:
            update = await reread(client, request_id)


async def work(client: httpx.AsyncClient, request_id: str, actions: list[tuple[str, str]]) -> bool:
    """Each action through the gate, in order; False when the access ended first."""
    for done, (action, resource) in enumerate(actions, start=1):
        variables = {"input": {"requestId": request_id, "resource": resource, "action": action}}
        decision = (await graphql(client, AUTHORIZE, variables))["authorizeAccess"]
        event = decision["event"]
        if decision["allowed"]:
            say(f"ALLOWED  {event['action']}  {event['resource']}  cursor={event['cursor']}")
            continue
        say(f"DENIED   {event['action']}  {event['resource']}  reason={decision['reason']}")
        # A refusal is about this action (a resource outside the request) or
        # about the access itself (revoked, window closed): the status says which.
        current = await read_request(client, request_id)
        if current["status"] != APPROVED:
            say(f"status: {describe(current)}")
            complain(
                f"access ended: {describe(current)}; {len(actions) - done} action(s) not attempted"
            )
            return False
    return True


def request_input(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ticketId": args.ticket,
        "resources": args.resources,
        "justification": args.justification,
    }
    if args.duration is not None:
        fields["durationSeconds"] = args.duration
    return fields


async def run(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.token}"}
    async with httpx.AsyncClient(
        base_url=args.url.rstrip("/"), headers=headers, timeout=30
    ) as client:
        updates = RequestUpdates(ws_url(args.url), args.token)
        # Subscribe before creating the request, so that a decision made the
        # moment it exists is announced to us. graphql-transport-ws does not
        # acknowledge a subscribe, though: the server may register it a moment
        # after createAccessRequest returns. So wait_for_decision re-reads the
        # request once the subscription is sent and the request exists, and
        # again whenever the stream is quiet or reconnects; between the stream
        # and the re-reads, no decision goes unseen.
        await updates.open()
        request: dict[str, Any] | None = None
        try:
            if args.request:
                request = await read_request(client, args.request)
                say(f"request: {describe(request)}")
            else:
                data = await graphql(client, CREATE, {"input": request_input(args)})
                request = data["createAccessRequest"]
                say(f"requested: {describe(request)}")
            async with asyncio.timeout(args.timeout):
                request = await wait_for_decision(client, updates, request)
        except TimeoutError:
            assert request is not None
            complain(
                f"no decision within {args.timeout:g}s: {request['id']} is still "
                f"{request['status']}; wait again with --request {request['id']}"
            )
            return EXIT_TIMEOUT
        except asyncio.CancelledError:  # Ctrl+C
            if request is not None and request["status"] not in FINAL:
                complain(f"stopped waiting: {describe(request)}")
            raise
        finally:
            await updates.close()

        assert request is not None
        if request["status"] != APPROVED:
            complain(f"no access: {describe(request)}")
            return EXIT_NOT_APPROVED
        if not await work(client, request["id"], args.actions):
            return EXIT_ACCESS_ENDED
        if args.release:
            released = (await graphql(client, RELEASE, {"id": request["id"]}))["releaseAccess"]
            say(f"released: {describe(released)}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("LOCKBOX_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("LOCKBOX_TOKEN"), help="or LOCKBOX_TOKEN")
    new = parser.add_argument_group("the request to make")
    new.add_argument("--ticket", metavar="TICKET_ID", help="the customer's support ticket")
    new.add_argument(
        "--resource",
        dest="resources",
        metavar="PATH",
        action="append",
        help="a resource to ask for (repeat for several)",
    )
    new.add_argument("--justification", metavar="TEXT", help="why, for the customer's approvers")
    new.add_argument("--duration", metavar="SECONDS", type=int, help="length of the access window")
    parser.add_argument(
        "--request", metavar="REQUEST_ID", help="use this existing request instead of making one"
    )
    parser.add_argument(
        "--action",
        dest="actions",
        nargs=2,
        metavar=("ACTION", "RESOURCE"),
        action="append",
        default=[],
        help="once approved, ask the gate for ACTION on RESOURCE (repeat; run in order)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        help="stop waiting for a decision after this long (default: until it is decided)",
    )
    parser.add_argument("--release", action="store_true", help="release the access when done")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required: --token or LOCKBOX_TOKEN")
    making = [args.ticket, args.resources, args.justification, args.duration]
    if args.request and any(value is not None for value in making):
        parser.error("--request uses an existing request: drop --ticket, --resource, ...")
    if not args.request and not (args.ticket and args.resources and args.justification):
        parser.error("a new request needs --ticket, --resource and --justification")
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")
    args.actions = [(action, resource) for action, resource in args.actions]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except LockboxError as error:
        complain(f"error: {error}")
    except httpx.HTTPError as error:
        complain(f"error: cannot reach {args.url}: {error}")
    except (OSError, websockets.WebSocketException) as error:
        complain(f"error: WebSocket to {ws_url(args.url)}: {error}")
    except KeyboardInterrupt:
        return 130
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
