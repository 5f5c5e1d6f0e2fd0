"""The client examples work against a real server: the Python and Node
clients list, approve and stream; the dashboard is one self-contained page."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Live, World

EXAMPLES = Path(__file__).resolve().parents[2] / "client-examples"
PYTHON_CLIENT = [sys.executable, str(EXAMPLES / "python" / "watch_activity.py")]
NODE = shutil.which("node")
NODE_CLIENT = [
    NODE or "node",
    "--experimental-websocket",
    str(EXAMPLES / "node" / "watch_activity.mjs"),
]
CLIENTS = {
    "python": PYTHON_CLIENT,
    "node": NODE_CLIENT,
}
needs_node = pytest.mark.skipif(NODE is None, reason="node is not on PATH")
both_clients = pytest.mark.parametrize("client", ["python", pytest.param("node", marks=needs_node)])
TIMEOUT = 20

CREATE = """
mutation($input: CreateAccessRequestInput!) { createAccessRequest(input: $input) { id status } }
"""
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { id status } }"
AUTHORIZE = """
mutation($input: AuthorizeAccessInput!) {
  authorizeAccess(input: $input) { allowed reason event { id cursor } }
}
"""
STATUS = "query($id: ID!) { accessRequest(id: $id) { status decisionReason } }"
RESOURCE = "/subscriptions/contoso-prod/resourceGroups/rg-web"


async def create_request(live: Live, world: World) -> str:
    data = await live.http.data(
        world.token("engineer-alice"),
        CREATE,
        input={
            "ticketId": world.ticket("contoso"),
            "resources": [RESOURCE],
            "justification": "Reading web tier logs for the contoso ticket",
        },
    )
    assert data["createAccessRequest"]["status"] == "PENDING"
    return str(data["createAccessRequest"]["id"])


async def approved_request(live: Live, world: World) -> str:
    request_id = await create_request(live, world)
    await live.http.data(world.token("contoso-admin"), APPROVE, id=request_id)
    return request_id


async def authorize(live: Live, world: World, request_id: str, resource: str, action: str) -> Any:
    data = await live.http.data(
        world.token("engineer-alice"),
        AUTHORIZE,
        input={"requestId": request_id, "resource": resource, "action": action},
    )
    return data["authorizeAccess"]


async def run(
    command: list[str], *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run a client to completion: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Lines:
    """A running client whose stdout is read line by line, with a timeout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[str] = []

    async def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """The next line matching the regular expression `pattern`."""
        assert self.process.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen}")
            try:
                raw = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            except TimeoutError:
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen}") from None
            if not raw:
                assert self.process.stderr is not None
                err = (await self.process.stderr.read()).decode()
                raise AssertionError(f"client exited before {pattern!r}; saw {self.seen}; {err}")
            line = raw.decode().rstrip("\n")
            self.seen.append(line)
            if re.search(pattern, line):
                return line


@contextlib.asynccontextmanager
async def streaming(command: list[str], *args: str) -> AsyncIterator[Lines]:
    process = await asyncio.create_subprocess_exec(
        *command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield Lines(process)
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.communicate(), TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.communicate()


@both_clients
async def test_client_lists_pending_requests_and_approves_one(
    client: str, live: Live, world: World
) -> None:
    command = CLIENTS[client]
    request_id = await create_request(live, world)
    admin = world.token("contoso-admin")
    env = {"LOCKBOX_URL": live.server.http_url, "LOCKBOX_TOKEN": admin}

    code, out, err = await run(command, env=env)
    assert code == 0, err
    assert request_id in out
    assert "engineer-alice" in out
    assert RESOURCE in out
    assert "1 pending request(s)" in out

    code, out, err = await run(
        command,
        "--url",
        live.server.http_url,
        "--token",
        admin,
        "--approve",
        request_id,
        "--reason",
        "ticket checked",
    )
    assert code == 0, err
    assert f"{request_id} is now APPROVED" in out
    data = await live.http.data(admin, STATUS, id=request_id)
    assert data["accessRequest"] == {"status": "APPROVED", "decisionReason": "ticket checked"}

    code, out, err = await run(command, env=env)
    assert code == 0, err
    assert request_id not in out
    assert "0 pending request(s)" in out

    code, out, err = await run(command, "--approve", request_id, env=env)
    assert code == 1
    assert "INVALID_STATE" in err


@both_clients
async def test_client_watch_prints_replayed_and_live_events(
    client: str, live: Live, world: World
) -> None:
    command = CLIENTS[client]
    request_id = await approved_request(live, world)
    await authorize(live, world, request_id, f"{RESOURCE}/before", "read-before-watch")
    auditor = world.token("contoso-auditor")

    async with streaming(
        command, "--url", live.server.http_url, "--token", auditor, "--watch", request_id
    ) as watch:
        await watch.expect(r"^# watching")
        await watch.expect(r"ALLOWED\s+engineer-alice\s+read-before-watch\s")
        allowed = await authorize(live, world, request_id, f"{RESOURCE}/vm1", "read-live")
        assert allowed["allowed"] is True
        line = await watch.expect(r"read-live")
        assert "ALLOWED" in line
        assert f"cursor={allowed['event']['cursor']}" in line
        denied = await authorize(live, world, request_id, "/subscriptions/elsewhere", "peek")
        assert denied["allowed"] is False
        line = await watch.expect(r"\speek\s")
        assert "DENIED" in line
        assert f"reason={denied['reason']}" in line
    assert not any("read-before-watch" in seen for seen in watch.seen[2:]), watch.seen


@both_clients
async def test_client_watch_resumes_after_a_cursor(client: str, live: Live, world: World) -> None:
    command = CLIENTS[client]
    request_id = await approved_request(live, world)
    first = await authorize(live, world, request_id, f"{RESOURCE}/a", "first")
    await authorize(live, world, request_id, f"{RESOURCE}/b", "second")
    await authorize(live, world, request_id, f"{RESOURCE}/c", "third")

    code, out, err = await run(
        command,
        "--url",
        live.server.http_url,
        "--token",
        world.token("contoso-admin"),
        "--watch",
        request_id,
        "--after",
        first["event"]["cursor"],
        "--limit",
        "2",
    )
    assert code == 0, err
    events = [line for line in out.splitlines() if not line.startswith("#")]
    assert len(events) == 2, out
    assert " second " in events[0]
    assert " third " in events[1]


@both_clients
async def test_client_reports_a_refused_token(client: str, live: Live, world: World) -> None:
    command = CLIENTS[client]
    request_id = await approved_request(live, world)
    url = live.server.http_url

    code, _, err = await run(command, "--url", url, "--token", "lbx_not-a-real-token")
    assert code == 1
    assert "UNAUTHENTICATED" in err

    code, _, err = await run(
        command, "--url", url, "--token", "lbx_not-a-real-token", "--watch", request_id
    )
    assert code == 1
    assert "4403" in err

    code, _, err = await run(
        command, "--url", url, "--token", world.token("fabrikam-admin"), "--watch", request_id
    )
    assert code == 1
    assert "NOT_FOUND" in err


async def test_dashboard_is_one_self_contained_page(live: Live) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.get(f"{live.server.http_url}/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<script" in page
    assert re.search(r"https?://", page) is None, "the page must not reference external hosts"
    assert re.search(r"<script[^>]*\bsrc=", page) is None
    assert re.search(r"<link\b", page) is None
    assert "@import" not in page
    assert "graphql-transport-ws" in page
    assert "sessionStorage" in page
    assert "localStorage" not in page
    assert "innerHTML" not in page
