"""The client examples work against a real server: the Python and Node
clients list, approve and stream; the dashboard loads nothing from elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
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


CONSOLE = Path(__file__).resolve().parents[2] / "server" / "lockbox" / "static" / "console"
MEDIA = {".js": "text/javascript", ".css": "text/css"}


async def test_dashboard_loads_nothing_from_elsewhere(live: Live) -> None:
    """The console is our own files, served by Lockbox: the page and every
    script and stylesheet it pulls in (module imports followed), with no
    other host, no inline script or style, and no HTML built from strings."""
    base = httpx.URL(f"{live.server.http_url}/dashboard")
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.get(base)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "'unsafe-inline'" not in response.headers["content-security-policy"]
        page = response.text
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
        assert scripts, "the page has no script"
        assert all("src=" in attrs and not body.strip() for attrs, body in scripts), scripts
        assert re.search(r"<style\b|\sstyle=|\son[a-z]+=", page, re.I) is None

        references = re.findall(r"\b(?:src|href)=\"([^\"#]+)\"", page)
        assert references, "the page loads nothing"
        queue = [base.join(ref) for ref in references if ref != "data:,"]
        texts = {"/dashboard": page}
        while queue:
            url = queue.pop()
            if url.path in texts:
                continue
            assert (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            suffix = Path(url.path).suffix
            assert asset.headers["content-type"].startswith(MEDIA[suffix]), url
            texts[url.path] = asset.text
            if suffix == ".js":
                imports = re.findall(
                    r"\bfrom\s+\"([^\"]+)\"|\bimport\s*\(\s*\"([^\"]+)\"", asset.text
                )
                queue += [url.join(a or b) for a, b in imports]

        # Everything in the console's folder is what the page uses, and the
        # asset route serves that list and nothing else.
        served = {path.rsplit("/", 1)[1] for path in texts if path != "/dashboard"}
        assert served == {f.name for f in CONSOLE.iterdir()} - {"index.html"}
        for name in ("index.html", "..%2Fapp.py", "nothing.js", "console.js.map"):
            refused = await client.get(f"{live.server.http_url}/dashboard/assets/{name}")
            assert refused.status_code == 404, name

    everything = "\n".join(texts.values())
    assert re.search(r"https?://|wss?://|//[a-z0-9.-]+\.[a-z]{2,}/", everything, re.I) is None
    assert "@import" not in everything
    code = "\n".join(text for path, text in texts.items() if path.endswith(".js"))
    assert "graphql-transport-ws" in code
    assert "sessionStorage" in code
    assert "localStorage" not in code
    for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert unsafe not in code, unsafe
    assert re.search(r"\.style\b|cssText|setAttribute\(\s*\"style", code) is None


# --- engineer.py: the engineer's side -----------------------------------------

ENGINEER_CLIENT = [sys.executable, str(EXAMPLES / "python" / "engineer.py")]
DENY = "mutation($id: ID!, $reason: String) { denyRequest(id: $id, reason: $reason) { status } }"
REVOKE = "mutation($id: ID!, $reason: String) { revokeAccess(id: $id, reason: $reason) { status } }"
ACTIVITY = """
query($id: ID!) {
  accessRequest(id: $id) {
    status
    activity(first: 50) { edges { node { action resource allowed denialReason } } }
  }
}
"""
OUT_OF_SCOPE = "/subscriptions/contoso-dev/resourceGroups/rg-other"


def engineer_args(live: Live, world: World, *extra: str) -> list[str]:
    """engineer.py as engineer-alice, asking for RESOURCE on the contoso ticket."""
    return [
        "--url",
        live.server.http_url,
        "--token",
        world.token("engineer-alice"),
        "--ticket",
        world.ticket("contoso"),
        "--resource",
        RESOURCE,
        "--justification",
        "Reading web tier logs for the contoso ticket",
        "--timeout",
        str(TIMEOUT),
        *extra,
    ]


async def requested_id(engineer: Lines) -> str:
    """The id of the request engineer.py made, from its first line."""
    line = await engineer.expect(r"^requested: ")
    found = re.match(r"^requested: (\S+) is PENDING", line)
    assert found, line
    return found.group(1)


async def finished(engineer: Lines) -> tuple[int, str, str]:
    """Wait for the client to exit: (exit code, all of stdout, stderr)."""
    out, err = await asyncio.wait_for(engineer.process.communicate(), TIMEOUT)
    engineer.seen.extend(out.decode().splitlines())
    assert engineer.process.returncode is not None
    return engineer.process.returncode, "\n".join(engineer.seen), err.decode()


async def activity_of(live: Live, world: World, request_id: str) -> tuple[str, list[Any]]:
    data = await live.http.data(world.token("contoso-admin"), ACTIVITY, id=request_id)
    request = data["accessRequest"]
    return request["status"], [edge["node"] for edge in request["activity"]["edges"]]


async def test_engineer_waits_for_approval_then_works_through_the_gate(
    live: Live, world: World
) -> None:
    args = engineer_args(
        live,
        world,
        "--duration",
        "3600",
        "--action",
        "read logs",
        f"{RESOURCE}/logs",
        "--action",
        "peek",
        OUT_OF_SCOPE,
        "--release",
    )
    async with streaming(ENGINEER_CLIENT, *args) as engineer:
        request_id = await requested_id(engineer)
        # Approved as soon as it exists: the tool must not miss the decision
        # even if it lands before its subscription is registered.
        await live.http.data(world.token("contoso-admin"), APPROVE, id=request_id)
        line = await engineer.expect(r"^status: ")
        assert f"{request_id} is APPROVED by contoso-admin" in line
        line = await engineer.expect(r"^ALLOWED ")
        assert f"read logs  {RESOURCE}/logs" in line
        line = await engineer.expect(r"^DENIED ")
        assert f"peek  {OUT_OF_SCOPE}" in line
        assert "is outside the resources of request" in line
        code, out, err = await finished(engineer)

    assert code == 0, (out, err)
    assert f"released: {request_id} is COMPLETED" in out
    status, events = await activity_of(live, world, request_id)
    assert status == "COMPLETED"
    assert [(e["action"], e["resource"], e["allowed"]) for e in events] == [
        ("read logs", f"{RESOURCE}/logs", True),
        ("peek", OUT_OF_SCOPE, False),
    ]
    assert "outside the resources" in events[1]["denialReason"]


async def test_engineer_exits_non_zero_with_the_reason_when_denied(
    live: Live, world: World
) -> None:
    args = engineer_args(live, world, "--action", "read logs", f"{RESOURCE}/logs")
    async with streaming(ENGINEER_CLIENT, *args) as engineer:
        request_id = await requested_id(engineer)
        reason = "ask for rg-web/logs only\n\tsee the ticket"
        await live.http.data(world.token("contoso-admin"), DENY, id=request_id, reason=reason)
        code, out, err = await finished(engineer)

    assert code == 3, (out, err)
    # The reason's line break and tab are printed as spaces: one line per fact.
    said = "DENIED by contoso-admin: ask for rg-web/logs only  see the ticket"
    assert f"status: {request_id} is {said}" in out.splitlines()
    assert f"no access: {request_id} is {said}" in err.splitlines()
    assert "ALLOWED" not in out
    status, events = await activity_of(live, world, request_id)
    assert status == "DENIED"
    assert events == []


async def test_engineer_stops_when_access_is_revoked(live: Live, world: World) -> None:
    request_id = await create_request(live, world)
    args = [
        "--url",
        live.server.http_url,
        "--token",
        world.token("engineer-alice"),
        "--request",
        request_id,
        "--action",
        "read logs",
        f"{RESOURCE}/logs",
        "--action",
        "read more",
        f"{RESOURCE}/more",
        "--release",
    ]
    async with streaming(ENGINEER_CLIENT, *args) as engineer:
        await engineer.expect(r"^# waiting for the customer's decision")
        # Approved and revoked at once: the stream still announces APPROVED
        # first, the gate then refuses, and the tool sees why.
        admin = world.token("contoso-admin")
        await live.http.data(admin, APPROVE, id=request_id)
        await live.http.data(admin, REVOKE, id=request_id, reason="enough for today")
        code, out, err = await finished(engineer)

    assert code == 5, (out, err)
    assert f"DENIED   read logs  {RESOURCE}/logs  reason=request {request_id} is REVOKED" in out
    assert f"access ended: {request_id} is REVOKED: enough for today" in err
    assert "1 action(s) not attempted" in err
    assert "released:" not in out
    status, events = await activity_of(live, world, request_id)
    assert status == "REVOKED"
    assert [(e["action"], e["allowed"]) for e in events] == [("read logs", False)]


def test_engineer_prints_server_text_without_control_characters() -> None:
    spec = importlib.util.spec_from_file_location("engineer", EXAMPLES / "python" / "engineer.py")
    assert spec is not None and spec.loader is not None
    engineer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engineer)
    clean = engineer.clean
    assert clean("read\x1b[2J logs\x1b]0;title\x07") == "read[2J logs]0;title"
    assert clean("C1 \x9b31m and DEL \x7f") == "C1 31m and DEL "
    assert clean("right\u202eto-left, zero\u200bwidth") == "rightto-left, zerowidth"
    assert clean("one\ntwo\tthree\r\u2028four") == "one two three four"
    assert clean("lone \ud800 surrogate") == "lone  surrogate"
    assert clean("naïve café ✓ /subscriptions/a-b_c") == "naïve café ✓ /subscriptions/a-b_c"


async def test_engineer_times_out_then_resumes_the_request(live: Live, world: World) -> None:
    # The later --timeout wins over the one engineer_args sets.
    code, out, err = await run(ENGINEER_CLIENT, *engineer_args(live, world, "--timeout", "0.5"))
    assert code == 4, (out, err)
    found = re.match(r"^requested: (\S+) is PENDING", out)
    assert found, out
    request_id = found.group(1)
    assert (
        f"no decision within 0.5s: {request_id} is still PENDING; "
        f"wait again with --request {request_id}"
    ) in err
    assert (await activity_of(live, world, request_id))[0] == "PENDING"

    await live.http.data(world.token("contoso-admin"), APPROVE, id=request_id)
    code, out, err = await run(
        ENGINEER_CLIENT,
        "--url",
        live.server.http_url,
        "--token",
        world.token("engineer-alice"),
        "--request",
        request_id,
        "--action",
        "read logs",
        f"{RESOURCE}/logs",
    )
    assert code == 0, (out, err)
    assert out.splitlines()[0].startswith(f"request: {request_id} is APPROVED by contoso-admin")
    assert f"ALLOWED  read logs  {RESOURCE}/logs" in out
    status, events = await activity_of(live, world, request_id)
    assert status == "APPROVED"
    assert [(e["action"], e["allowed"]) for e in events] == [("read logs", True)]
