"""The load generator: a separate process that drives servers over loopback.

Run as `python -m bench.loadgen`: reads one JSON scenario on stdin, prints one
JSON result on stdout. Two kinds:

- `http`: closed-loop load; `concurrency` keep-alive connections each send the
  same pre-encoded request, wait for the answer and send again, for `warmup`
  seconds (discarded) and then `duration` seconds (measured).
  Each phase may name its own `port`, `request` and `server_pids`, so one
  process drives Lockbox and its baseline in turns, round after round.
- `fanout`: for each of `groups` (Lockbox, its baseline), `subscribers`
  WebSockets subscribe (graphql-transport-ws), split across the group's
  `targets`; then, for `rounds` rounds, each group's producer in turn
  triggers `events` events, each after the previous one reached every
  subscriber (or timed out).
  Latency is from the producer's response to each subscriber's receipt, both
  read with `time.monotonic()` in this process. Server memory is read before
  and after the subscribers connect. See `bench.fanout`.

Every loop is bounded by a count and a deadline.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench import fanout
from bench.measure import (
    latency_summary,
    own_cpu_seconds,
    processes_cpu_seconds,
    raise_open_files_limit,
)
from bench.wire import HttpConnection, http_request

MAX_REQUESTS_PER_PHASE = 5_000_000
ERROR_SAMPLES = 3


def _raw_request(spec: dict[str, Any], host: str, port: int) -> bytes:
    headers = {}
    if spec.get("token"):
        headers["Authorization"] = f"Bearer {spec['token']}"
    body = b""
    if spec.get("json") is not None:
        body = json.dumps(spec["json"]).encode()
        headers["Content-Type"] = "application/json"
    return http_request(
        spec.get("method", "GET"), spec["path"], host, port, body=body, headers=headers
    )


# --- http ----------------------------------------------------------------------


@dataclass
class _HttpTally:
    start: float
    end: float
    latencies: list[float] = field(default_factory=list)
    completed: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)


async def _http_worker(
    host: str, port: int, raw: bytes, expect: bytes, warm_until: float, tally: _HttpTally
) -> None:
    connection = await HttpConnection.open(host, port)
    try:
        for _ in range(MAX_REQUESTS_PER_PHASE):
            sent = time.monotonic()
            if sent >= tally.end:
                break
            try:
                response = await connection.request(raw, wait_s=30)
            except (OSError, TimeoutError) as exc:
                tally.errors += 1
                if len(tally.samples) < ERROR_SAMPLES:
                    tally.samples.append(repr(exc))
                connection.close()
                connection = await HttpConnection.open(host, port)
                continue
            done = response.received_at
            if sent < warm_until or done > tally.end:
                continue
            ok = response.status == 200 and expect in response.body
            if ok:
                tally.completed += 1
                tally.latencies.append(done - sent)
            else:
                tally.errors += 1
                if len(tally.samples) < ERROR_SAMPLES:
                    tally.samples.append(f"{response.status} {response.body[:300]!r}")
    finally:
        connection.close()


async def run_http(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    raw = _raw_request(spec["request"], host, port)
    expect = str(spec.get("expect", "")).encode()
    concurrency = int(spec["concurrency"])
    warmup, duration = float(spec["warmup"]), float(spec["duration"])
    pids = [int(p) for p in spec.get("server_pids", [])]
    now = time.monotonic()
    warm_until = now + warmup
    tally = _HttpTally(start=warm_until, end=warm_until + duration)
    workers = [
        asyncio.create_task(_http_worker(host, port, raw, expect, warm_until, tally))
        for _ in range(concurrency)
    ]
    await asyncio.sleep(max(0.0, warm_until - time.monotonic()))
    cpu0, server0 = own_cpu_seconds(), processes_cpu_seconds(pids)
    await asyncio.sleep(max(0.0, tally.end - time.monotonic()))
    cpu1, server1 = own_cpu_seconds(), processes_cpu_seconds(pids)
    results = await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), timeout=60)
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    return {
        "label": spec.get("label"),
        "round": spec.get("round"),
        "concurrency": concurrency,
        "duration_s": duration,
        "requests": tally.completed,
        "rps": round(tally.completed / duration, 1),
        **latency_summary(tally.latencies),
        "errors": tally.errors + len(failures),
        "error_samples": (tally.samples + failures)[:ERROR_SAMPLES],
        "client_cpu_pct": round(100 * (cpu1 - cpu0) / duration, 1),
        "server_cpu_pct": round(100 * (server1 - server0) / duration, 1) if pids else None,
    }


async def run_phases(spec: dict[str, Any]) -> dict[str, Any]:
    return {"phases": [await run_http({**spec, **phase}) for phase in spec["phases"]]}


def main() -> None:
    spec = json.loads(sys.stdin.read())
    raise_open_files_limit(int(spec.get("open_files", 4096)))
    if spec["kind"] == "http":
        result = asyncio.run(run_phases(spec))
    elif spec["kind"] == "fanout":
        result = fanout.run(spec)
    else:
        raise ValueError(f"unknown scenario kind {spec['kind']!r}")
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
