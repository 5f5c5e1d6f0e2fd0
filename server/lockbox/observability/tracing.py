"""OpenTelemetry traces, when the `otel` extra is installed and
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set.

A span per GraphQL operation, named as OpenTelemetry's GraphQL conventions
say (`mutation approveRequest`: the operation type, then the operation's
name, or its first root field when it has none), and a `lockbox.gate` span
per authorizeAccess call inside it. The exporter is OTLP over HTTP,
configured by the standard OTEL_* variables (endpoint, headers,
OTEL_SERVICE_NAME, which defaults to `lockbox` here).

strawberry's own OpenTelemetryExtension was not used: it records the whole
document and every resolver's arguments as span attributes (justifications,
reasons, webhook URLs would leave with each trace), names every operation
"GraphQL Query", and opens a span per resolved field, which makes every
field asynchronous and costs far more than the operation span we want.

Nothing here imports opentelemetry until tracing is asked for: Lockbox runs
without the extra.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from graphql import FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from lockbox.observability.logs import current_request_id

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


class Tracing:
    """The app's tracer. `provider` is an opentelemetry TracerProvider (typed
    loosely: the package is optional)."""

    def __init__(self, provider: Any, *, owned: bool = False) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("lockbox")
        self._owned = owned

    def span(self, name: str, **attributes: str) -> AbstractContextManager[Any]:
        span: AbstractContextManager[Any] = self.tracer.start_as_current_span(
            name, attributes=attributes
        )
        return span

    def shutdown(self) -> None:
        """Flush and stop the exporter this app made (not one it was given)."""
        if self._owned:
            self.provider.shutdown()


def from_env(provider: Any = None) -> Tracing | None:
    """`provider` if given; else an OTLP exporter when an endpoint is set and
    the packages are installed; else None (no tracing)."""
    if provider is not None:
        return Tracing(provider)
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
            "(pip install 'lockbox[otel]'): no traces are sent"
        )
        return None
    service = os.environ.get("OTEL_SERVICE_NAME") or "lockbox"
    made = TracerProvider(resource=Resource.create({"service.name": service}))
    made.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing(made, owned=True)


def _operation(extension: SchemaExtension) -> OperationDefinitionNode | None:
    context = extension.execution_context
    document = context.graphql_document
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if context.operation_name is None:
        return operations[0] if len(operations) == 1 else None
    for operation in operations:
        if operation.name is not None and operation.name.value == context.operation_name:
            return operation
    return None


def operation_label(extension: SchemaExtension) -> tuple[str, str | None]:
    """The operation's type, and its name or else its first root field."""
    operation = _operation(extension)
    if operation is None:
        return "operation", extension.execution_context.operation_name
    kind = operation.operation.value
    if operation.name is not None:
        return kind, operation.name.value
    first = operation.selection_set.selections[0] if operation.selection_set.selections else None
    return kind, first.name.value if isinstance(first, FieldNode) else None


def tracing_extension(tracing: Tracing) -> type[SchemaExtension]:
    """A schema extension: one span per operation, current while it runs."""
    from opentelemetry import trace

    tracer = tracing.tracer

    class OperationSpans(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            with tracer.start_as_current_span("graphql", kind=trace.SpanKind.SERVER) as span:
                request_id = current_request_id()
                if request_id is not None:
                    span.set_attribute("lockbox.request_id", request_id)
                yield
                kind, name = operation_label(self)
                span.update_name(f"{kind} {name}" if name else kind)
                span.set_attribute("graphql.operation.type", kind)
                if name:
                    span.set_attribute("graphql.operation.name", name)
                result = self.execution_context.result
                if result is not None and result.errors:
                    span.set_attribute("graphql.errors", len(result.errors))

    return OperationSpans
