"""OpenTelemetry: a span per GraphQL operation, named after it, with the gate
call inside; and Lockbox without the optional packages."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lockbox.app import create_app
from lockbox.clock import ManualClock
from lockbox.observability import tracing
from lockbox.settings import Settings
from tests.api.helpers import PROD, create_request
from tests.conftest import Live, Stack, World
from tests.support import GraphQLHttp, LiveServer

PENDING = "query Pending { pendingRequests(first: 5) { edges { node { id } } } }"
APPROVE = "mutation($id: ID!) { approveRequest(id: $id) { status } }"
GATE = """
mutation Gate($id: ID!, $resource: String!) {
  authorizeAccess(input: {requestId: $id, resource: $resource, action: "read"}) { allowed }
}
"""


class Traced:
    def __init__(self, live: Live, spans: InMemorySpanExporter) -> None:
        self.live = live
        self.spans = spans

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())


@pytest.fixture
async def traced(world: World, database: Stack, clock: ManualClock) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(
        Settings(database_url=database.database_url, broker_url=database.broker_url),
        clock=clock,
        tracer_provider=provider,
    )
    server = LiveServer(app).start()
    http = GraphQLHttp(server.http_url)
    try:
        yield Traced(Live(server=server, http=http, clock=clock, stack=database), exporter)
    finally:
        await http.aclose()
        await asyncio.to_thread(server.stop)
        provider.shutdown()


async def test_each_operation_is_a_span_named_after_it_with_the_gate_inside(
    traced: Traced, world: World
) -> None:
    live = traced.live
    admin, alice = world.token("contoso-admin"), world.token("engineer-alice")
    request = await create_request(live, world)  # "mutation Create"
    await live.http.data(admin, PENDING)
    await live.http.data(admin, APPROVE, id=request["id"])  # anonymous: its root field
    response = await live.http.client.post(
        live.http.url,
        json={"query": GATE, "variables": {"id": request["id"], "resource": PROD}},
        headers={"Authorization": f"Bearer {alice}"},
    )
    assert response.json()["data"]["authorizeAccess"]["allowed"] is True

    spans = traced.finished()
    by_name = {span.name: span for span in spans}
    assert {"mutation Create", "query Pending", "mutation approveRequest", "mutation Gate"} <= (
        by_name.keys()
    )
    gate_operation = by_name["mutation Gate"]
    assert gate_operation.attributes is not None
    assert gate_operation.attributes["graphql.operation.type"] == "mutation"
    assert gate_operation.attributes["graphql.operation.name"] == "Gate"
    # The span carries the request id the response (and the log) carries.
    assert gate_operation.attributes["lockbox.request_id"] == response.headers["x-request-id"]
    # The gate call is a child of its operation's span.
    (gate,) = [span for span in spans if span.name == "lockbox.gate"]
    assert gate.parent is not None and gate_operation.context is not None
    assert gate.parent.span_id == gate_operation.context.span_id
    assert gate.context is not None
    assert gate.context.trace_id == gate_operation.context.trace_id
    # No document text and no argument values leave with a span.
    for span in spans:
        attributes = dict(span.attributes or {})
        assert not any(PROD in str(value) for value in attributes.values()), span.name


def test_an_otlp_endpoint_turns_tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert tracing.from_env() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9/")
    made = tracing.from_env()
    assert made is not None
    resource = made.provider.resource.attributes
    assert resource["service.name"] == "lockbox"
    made.shutdown()


def test_lockbox_runs_without_the_opentelemetry_packages(tmp_path: os.PathLike[str]) -> None:
    """With `opentelemetry` unimportable, the app is built and serves without
    tracing, even with an endpoint set (one warning says why)."""
    script = textwrap.dedent(
        """
        import sys, logging
        class NoOpenTelemetry:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None
        sys.meta_path.insert(0, NoOpenTelemetry())
        logging.basicConfig(level=logging.WARNING)
        from lockbox.app import create_app
        from lockbox.settings import Settings
        app = create_app(Settings(database_url="sqlite://:memory:"))
        assert app.state.deps.tracing is None
        assert not any(name.startswith("opentelemetry") for name in sys.modules)
        print("ok")
        """
    )
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9/"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "OpenTelemetry is not installed" in done.stderr


async def test_spans_reach_an_otlp_http_collector(
    world: World, database: Stack, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT alone: the server exports its spans over
    OTLP/HTTP to a collector (here a small one of our own), at the latest as
    it shuts down."""
    received: list[bytes] = []

    async def collect(request: Request) -> Response:
        received.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")

    collector = LiveServer(Starlette(routes=[Route("/v1/traces", collect, methods=["POST"])]))
    collector.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.http_url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "lockbox-under-test")
    app = create_app(
        Settings(database_url=database.database_url, broker_url=database.broker_url), clock=clock
    )
    server = LiveServer(app).start()
    http = GraphQLHttp(server.http_url)
    try:
        await http.data(world.token("contoso-admin"), PENDING)
    finally:
        await http.aclose()
        await asyncio.to_thread(server.stop)  # flushes the exporter
        await asyncio.to_thread(collector.stop)

    assert received, "no OTLP request reached the collector"
    names, services = [], []
    for body in received:
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            services += [
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            ]
            for scope_spans in resource_spans.scope_spans:
                names += [span.name for span in scope_spans.spans]
    assert "query Pending" in names
    assert set(services) == {"lockbox-under-test"}
