"""The fuzzing tests' server, clients, log watch and database probe.

One real server (uvicorn, the demo world, a few requests in each state) per
test module, driven synchronously: hypothesis calls a plain function per
example, and that function speaks HTTP with `httpx.Client` and WebSocket
with `websockets.sync`. The server runs on its own event loop in a thread
(tests.support.LiveServer); the database probe on another, so nothing here
needs pytest-asyncio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import math
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from tortoise.context import _current_context

from lockbox.clock import ManualClock
from lockbox.realtime.broker import broker_from_url
from lockbox.realtime.hub import Hub
from lockbox.services import demo_world
from lockbox.services.deps import Deps
from lockbox.settings import Settings
from lockbox.store import config as db
from lockbox.store import models
from tests.conftest import Stack, start_server
from tests.support import LiveServer

T = TypeVar("T")

# The contract's codes (section 3), and those of a document that is not
# valid GraphQL. Anything else, INTERNAL_SERVER_ERROR above all, is a bug.
CONTRACT_CODES = frozenset(
    {
        "BAD_USER_INPUT",
        "NOT_FOUND",
        "FORBIDDEN",
        "INVALID_STATE",
        "UNAUTHENTICATED",
        "RATE_LIMITED",
        "GRAPHQL_VALIDATION_FAILED",
        "GRAPHQL_PARSE_FAILED",
        "PERSISTED_QUERY_NOT_FOUND",
    }
)

# The callers the properties act as (None: no token at all).
ROLES: tuple[str | None, ...] = (
    "contoso-admin",
    "contoso-approver-prod",
    "contoso-auditor",
    "engineer-alice",
    "support-manager",
    "fabrikam-admin",
    "operator-admin",
    None,
)

PROD = "/subscriptions/contoso-prod/resourceGroups/rg1"
NORTHWIND = "/subscriptions/northwind-prod/resourceGroups/rg1"

CREATE = """
mutation($ticket: ID!, $resources: [String!]!) {
  createAccessRequest(input: {ticketId: $ticket, resources: $resources,
                              justification: "fuzz fixture"}) { id status }
}"""


class LogWatch(logging.Handler):
    """Every record at WARNING and above, from any logger; `faults()` are
    those that a client's input must never cause: an ERROR, a traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def mark(self) -> int:
        with self._lock_records:
            return len(self.records)

    def faults(self, since: int = 0) -> list[str]:
        with self._lock_records:
            records = self.records[since:]
        found = []
        for record in records:
            message = record.getMessage()
            if (
                record.levelno >= logging.ERROR
                or record.exc_info
                or record.stack_info
                or "Traceback" in message
            ):
                found.append(f"{record.name} {record.levelname}: {message[:2000]}")
                if record.exc_info and record.exc_info[1] is not None:
                    error = record.exc_info[1]
                    found.append(f"  {type(error).__name__}: {str(error)[:500]}")
        return found


class LoopThread:
    """An event loop in a thread, for the test's own database connection."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class DatabaseProbe:
    """The test's own connection to the server's database: seeds the demo
    world and counts what is stored."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.loop = LoopThread()
        self._done: asyncio.Event | None = None
        self._context: Any = None
        self._holder: concurrent.futures.Future[None] | None = None

    def open(self) -> None:
        async def events() -> tuple[asyncio.Event, asyncio.Event]:
            return asyncio.Event(), asyncio.Event()

        opened, done = self.loop.run(events())
        self._done = done

        async def hold() -> None:
            # One task owns the tortoise context from enter to exit; other
            # coroutines bind it for themselves (as the app's middleware does).
            async with db.database(self.stack.database_url) as context:
                self._context = context
                opened.set()
                await done.wait()

        self._holder = asyncio.run_coroutine_threadsafe(hold(), self.loop.loop)
        self.loop.run(opened.wait())

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        async def bound() -> T:
            token = _current_context.set(self._context)
            try:
                return await coroutine
            finally:
                _current_context.reset(token)

        return self.loop.run(bound())

    def seed(self) -> dict[str, Any]:
        async def seeding() -> dict[str, Any]:
            deps = Deps(
                clock=ManualClock(), broker=broker_from_url(self.stack.broker_url), hub=Hub()
            )
            await deps.broker.start(deps.hub.deliver, deps.hub.resync_all)
            try:
                return await demo_world.seed(deps)
            finally:
                await deps.broker.close()

        return self.run(seeding())

    def counts(self) -> dict[str, Any]:
        """How many rows of each kind a client's call could have written,
        and the tenants' settings (which change in place)."""

        async def counting() -> dict[str, Any]:
            found: dict[str, Any] = {}
            for model in (
                models.AccessRequest,
                models.RequestResource,
                models.ActivityEvent,
                models.AuditEvent,
                models.Webhook,
                models.Notification,
                models.Principal,
                models.ApiToken,
                models.SupportTicket,
            ):
                found[model.__name__] = await model.all().count()
            tenants = await models.Tenant.all().order_by("name").values()
            found["Tenant"] = [sorted((k, str(v)) for k, v in row.items()) for row in tenants]
            requests = await models.AccessRequest.all().order_by("id").values_list("id", "status")
            found["statuses"] = [(str(i), str(s)) for i, s in requests]
            return found

        return self.run(counting())

    def close(self) -> None:
        if self._done is not None:
            self.loop.loop.call_soon_threadsafe(self._done.set)
        if self._holder is not None:
            with contextlib.suppress(Exception):
                self._holder.result(10)
        self.loop.close()


@dataclass
class Answer:
    status: int
    body: Any  # the decoded JSON, or the raw text when it is not JSON
    is_json: bool

    def codes(self) -> list[str]:
        if not self.is_json or not isinstance(self.body, dict):
            return []
        errors = self.body.get("errors") or []
        return [str((e.get("extensions") or {}).get("code")) for e in errors]


@dataclass
class FuzzServer:
    server: LiveServer
    probe: DatabaseProbe
    logs: LogWatch
    world: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    @property
    def url(self) -> str:
        return f"{self.server.http_url}/graphql"

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    def token(self, principal: str) -> str:
        return str(self.world["principals"][principal]["token"])

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.token(role)}"}

    def post(
        self,
        role: str | None,
        body: bytes | str | dict[str, Any],
        content_type: str = "application/json",
    ) -> Answer:
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogatepass")
        response = self.client.post(
            self.url, content=body, headers={**self.headers(role), "Content-Type": content_type}
        )
        return _answer(response)

    def get(self, role: str | None, params: dict[str, str]) -> Answer:
        response = self.client.get(
            self.url, params=params, headers={**self.headers(role), "Accept": "application/json"}
        )
        return _answer(response)

    def data(self, role: str | None, query: str, **variables: Any) -> dict[str, Any]:
        answer = self.post(role, {"query": query, "variables": variables})
        assert answer.status == 200 and not answer.body.get("errors"), answer
        data: dict[str, Any] = answer.body["data"]
        return data

    def healthy(self) -> bool:
        response = self.client.get(f"{self.server.http_url}/healthz", timeout=10)
        return response.status_code == 200 and response.json().get("status") == "ok"

    def known_ids(self) -> list[str]:
        """Ids of real objects of every kind: requests in each state, tickets,
        tenants, principals."""
        found = list(self.ids.values())
        found += [str(t["id"]) for t in self.world["tickets"].values()]
        found += [str(t["id"]) for t in self.world["tenants"].values()]
        found += [str(p["id"]) for p in self.world["principals"].values()]
        return found


def _answer(response: httpx.Response) -> Answer:
    try:
        return Answer(response.status_code, response.json(), True)
    except ValueError:
        return Answer(response.status_code, response.text, False)


def _requests_in_each_state(fuzz: FuzzServer) -> None:
    contoso = str(fuzz.world["tickets"]["contoso-ticket"]["id"])
    northwind = str(fuzz.world["tickets"]["northwind-ticket"]["id"])

    def create(engineer: str, ticket: str, resource: str) -> str:
        data = fuzz.data(engineer, CREATE, ticket=ticket, resources=[resource])
        return str(data["createAccessRequest"]["id"])

    approve = "mutation($id: ID!) { approveRequest(id: $id) { status } }"
    deny = "mutation($id: ID!) { denyRequest(id: $id, reason: 'no') { status } }".replace("'", '"')
    fuzz.ids["pending"] = create("engineer-alice", contoso, PROD)
    fuzz.ids["pending-bob"] = create("engineer-bob", contoso, PROD)
    fuzz.ids["approved"] = create("engineer-alice", contoso, PROD)
    fuzz.data("contoso-admin", approve, id=fuzz.ids["approved"])
    fuzz.ids["denied"] = create("engineer-alice", contoso, PROD)
    fuzz.data("contoso-admin", deny, id=fuzz.ids["denied"])
    fuzz.ids["northwind"] = create("engineer-alice", northwind, NORTHWIND)  # auto-approved


@contextlib.contextmanager
def fuzz_server(stack: Stack) -> Iterator[FuzzServer]:
    """The demo world and a few requests, served; the log watched from the
    server's start to its stop."""
    probe = DatabaseProbe(stack)
    probe.open()
    logs = LogWatch()
    server: LiveServer | None = None
    fuzz: FuzzServer | None = None
    try:
        world = probe.seed()
        # Anonymous calls are fuzzed too: with the failed-authentication
        # limit on, all but the first 20 would only see RATE_LIMITED.
        known = {f.name for f in dataclasses.fields(Settings)}
        limits = {"auth_failures_per_minute": 0} if "auth_failures_per_minute" in known else {}
        server = start_server(stack, ManualClock(), **limits)
        # After the server's start: uvicorn's logging config replaces the
        # handlers of its own loggers, which do not propagate to the root.
        for name in ("", "uvicorn"):
            logging.getLogger(name).addHandler(logs)
        fuzz = FuzzServer(server=server, probe=probe, logs=logs, world=world)
        _requests_in_each_state(fuzz)
        yield fuzz
    finally:
        if fuzz is not None:
            fuzz.client.close()
        if server is not None:
            server.stop()
        for name in ("", "uvicorn"):
            logging.getLogger(name).removeHandler(logs)
        probe.close()


class Raw(str):
    """A JSON token written as is (NaN, Infinity, 1e400, 5,000 digits)."""


def to_json(value: Any) -> str:
    """JSON text for `value`, with Raw tokens verbatim and lone surrogates
    escaped (`\\ud800`), as a hostile client may write it."""
    if isinstance(value, Raw):
        return str(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_json(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    raise TypeError(type(value))
