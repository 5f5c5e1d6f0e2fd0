"""What an operator sees of a running Lockbox: Prometheus metrics (metrics),
log lines with request ids, as text or JSON (logs), and OpenTelemetry traces
(tracing, with the optional `otel` extra).

Kept free of imports: the request-id helpers are used on every request, and
importing this package must not pull in the store or the optional packages.
"""
