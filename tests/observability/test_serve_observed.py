"""`lockbox serve` as an operator runs it: LOCKBOX_LOG_FORMAT=json and
LOCKBOX_METRICS=1 in the environment of a real child process."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack
from tests.e2e.cli_support import ServerProcess, free_port


def serve(tmp_path: Path, stack: Stack, **env: str) -> ServerProcess:
    port = free_port()
    args = ["serve", "--port", str(port), "--database-url", stack.database_url]
    return ServerProcess(tmp_path, [*args, "--broker-url", stack.broker_url], port, env=env)


async def test_serve_writes_json_lines_and_serves_metrics(tmp_path: Path, database: Stack) -> None:
    with serve(
        tmp_path,
        database,
        LOCKBOX_LOG_FORMAT="json",
        LOCKBOX_LOG_LEVEL="INFO",
        LOCKBOX_METRICS="1",
        # The second bad token from one address is refused with a log line.
        LOCKBOX_AUTH_FAILURES_PER_MINUTE="1",
    ) as server:
        await asyncio.to_thread(server.wait_healthy)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            for probe in ("probe-1", "probe-2"):
                answer = await client.post(
                    "/graphql",
                    json={"query": "{ me { name } }"},
                    headers={"X-Request-Id": probe, "Authorization": "Bearer lbx_not-a-token"},
                )
                assert answer.headers["x-request-id"] == probe
            scraped = await client.get("/metrics")
        assert scraped.status_code == 200
        names = {family.name for family in text_string_to_metric_families(scraped.text)}
        assert {"lockbox_gate_decisions", "lockbox_websockets_open", "lockbox_broker_up"} <= names
        assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0

    lines = [line for line in server.stderr.splitlines() if line]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    # uvicorn's own lines go through the same handler.
    assert any(entry["logger"].startswith("uvicorn") for entry in entries), server.stderr
    # The refused token's log line has the request id, and not the token.
    refused = [entry for entry in entries if entry.get("requestId") == "probe-2"]
    assert refused, server.stderr
    assert "lbx_not-a-token" not in server.stderr
    assert any("LOCKBOX_SMTP_URL is not set" in entry["message"] for entry in entries)
    assert not any("color_message" in entry for entry in entries)


async def test_serve_refuses_an_unknown_log_format(tmp_path: Path, database: Stack) -> None:
    with serve(tmp_path, database, LOCKBOX_LOG_FORMAT="yaml") as server:
        assert server.process is not None
        code = await asyncio.to_thread(server.process.wait, 20)
    assert code == 2
    assert "LOCKBOX_LOG_FORMAT must be text or json" in server.stderr
