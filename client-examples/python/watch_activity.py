#!/usr/bin/env python3
"""A small Lockbox client: list pending requests, approve or deny one, or
watch a request's engineer activity live.

    LOCKBOX_URL=http://127.0.0.1:8000 LOCKBOX_TOKEN=lbx_... python watch_activity.py
    python watch_activity.py --approve REQUEST_ID --reason "ticket checked"
    python watch_activity.py --watch REQUEST_ID [--after CURSOR]

Needs httpx and websockets. Queries and mutations go over HTTP; the activity
stream uses the graphql-transport-ws WebSocket protocol and reconnects with
the last cursor it printed, so no event is missed or printed twice.
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

PENDING = """
query Pending($after: String) {
  pendingRequests(first: 100, after: $after) {
    edges { node {
      id status expiresAt justification resources
      tenant { name } ticket { title } engineer { name }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

DECIDE = """
mutation Decide($id: ID!, $reason: String) {
  %s(id: $id, reason: $reason) { id status decisionReason accessStartsAt accessEndsAt }
}
"""

ACTIVITY = """
subscription Activity($requestId: ID!, $after: String) {
  engineerActivity(requestId: $requestId, after: $after) {
    id cursor at resource action allowed denialReason detail engineer { name }
  }
}
"""

# Close codes after which reconnecting cannot help (graphql-transport-ws).
FATAL_CLOSE_CODES = {4400: "bad request", 4403: "token refused", 4409: "duplicate id"}


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


# Server text is printed, and a terminal obeys control characters in it:
# tabs and line breaks become spaces, other control and format characters go.
UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def clean(text: str) -> str:
    return "".join(
        " " if char in "\t\n\r" else char
        for char in text
        if char in "\t\n\r" or unicodedata.category(char) not in UNPRINTABLE
    )


def say(line: str) -> None:
    print(clean(line), flush=True)


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


async def list_pending(client: httpx.AsyncClient) -> None:
    after: str | None = None
    count = 0
    while True:
        page = (await graphql(client, PENDING, {"after": after}))["pendingRequests"]
        for edge in page["edges"]:
            r = edge["node"]
            count += 1
            say(
                f"{r['id']}  {r['status']}  tenant={r['tenant']['name']}  "
                f"engineer={r['engineer']['name']}  expires={r['expiresAt']}"
            )
            say(f"    ticket: {r['ticket']['title']}")
            say(f"    why:    {r['justification']}")
            for resource in r["resources"]:
                say(f"    - {resource}")
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    say(f"{count} pending request(s)")


async def decide(
    client: httpx.AsyncClient, mutation: str, request_id: str, reason: str | None
) -> None:
    data = await graphql(client, DECIDE % mutation, {"id": request_id, "reason": reason})
    r = data[mutation]
    line = f"{r['id']} is now {r['status']}"
    if r.get("accessEndsAt"):
        line += f" (access until {r['accessEndsAt']})"
    say(line)


def format_event(event: dict[str, Any]) -> str:
    verdict = "ALLOWED" if event["allowed"] else "DENIED "
    line = (
        f"{event['at']}  {verdict}  {event['engineer']['name']}  "
        f"{event['action']}  {event['resource']}"
    )
    if not event["allowed"]:
        line += f"  reason={event.get('denialReason') or '?'}"
    if event.get("detail") is not None:
        line += f"  detail={json.dumps(event['detail'], separators=(',', ':'))}"
    return line + f"  cursor={event['cursor']}"


async def watch(
    url: str, token: str, request_id: str, after: str | None, limit: int | None
) -> None:
    """Print the request's activity until interrupted (or `limit` events)."""
    printed = 0
    delay = 1.0
    while True:
        try:
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
                await ws.send(json.dumps(init))
                variables = {"requestId": request_id, "after": after}
                async for raw in ws:
                    message = json.loads(raw)
                    kind = message.get("type")
                    if kind == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                    elif kind == "connection_ack":
                        delay = 1.0
                        say(f"# watching {request_id}" + (f" after {after}" if after else ""))
                        payload = {"query": ACTIVITY, "variables": variables}
                        await ws.send(
                            json.dumps({"id": "activity", "type": "subscribe", "payload": payload})
                        )
                    elif kind == "next":
                        payload = message["payload"]
                        if payload.get("errors"):
                            raise first_error(payload["errors"])
                        event = payload["data"]["engineerActivity"]
                        say(format_event(event))
                        after = event["cursor"]
                        printed += 1
                        if limit is not None and printed >= limit:
                            return
                    elif kind == "error":
                        raise first_error(message["payload"])
                    elif kind == "complete":
                        say("# the server ended the stream")
                        return
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            if code in FATAL_CLOSE_CODES:
                raise LockboxError(f"CLOSED {code}", FATAL_CLOSE_CODES[code]) from None
            say(f"# connection lost (code {code}); reconnecting in {delay:.0f}s after {after}")
        except OSError as exc:
            say(f"# cannot connect ({exc}); retrying in {delay:.0f}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("LOCKBOX_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("LOCKBOX_TOKEN"), help="or LOCKBOX_TOKEN")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--watch", metavar="REQUEST_ID", help="stream the request's activity")
    action.add_argument("--approve", metavar="REQUEST_ID", help="approve a pending request")
    action.add_argument("--deny", metavar="REQUEST_ID", help="deny a pending request")
    action.add_argument("--revoke", metavar="REQUEST_ID", help="end an approved request's access")
    parser.add_argument("--reason", help="reason recorded with --approve/--deny/--revoke")
    parser.add_argument("--after", metavar="CURSOR", help="with --watch: start after this cursor")
    parser.add_argument("--limit", type=int, help="with --watch: stop after this many events")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required: --token or LOCKBOX_TOKEN")
    return args


async def run(args: argparse.Namespace) -> None:
    if args.watch:
        await watch(ws_url(args.url), args.token, args.watch, args.after, args.limit)
        return
    headers = {"Authorization": f"Bearer {args.token}"}
    async with httpx.AsyncClient(
        base_url=args.url.rstrip("/"), headers=headers, timeout=30
    ) as client:
        if args.approve:
            await decide(client, "approveRequest", args.approve, args.reason)
        elif args.deny:
            await decide(client, "denyRequest", args.deny, args.reason)
        elif args.revoke:
            await decide(client, "revokeAccess", args.revoke, args.reason)
        else:
            await list_pending(client)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except LockboxError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    except httpx.HTTPError as error:
        print(f"error: cannot reach {args.url}: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
