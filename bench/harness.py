"""The benchmark run: fresh databases, real servers, a separate load generator.

`python -m bench [--quick | --tiny] [--output PATH] [--backends sqlite,postgres]`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from bench import report
from bench.baseline_app import uvicorn_options
from bench.measure import raise_open_files_limit
from bench.servers import (
    HOST,
    REPO,
    BenchError,
    Fleet,
    Server,
    cpu_plan,
    fleet_in,
    postgres_database,
    postgres_reachable,
    redis_channel_url,
    redis_reachable,
    run_loadgen,
    run_module,
    running,
    seed_demo,
)
from bench.world import (
    ACTIVITY,
    RESOURCE,
    World,
    approved_request,
    authorize_body,
    baseline_authorize_body,
)

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
OPEN_FILES = 20_000


@dataclass(frozen=True)
class Sizes:
    mode: str
    warmup: float  # seconds of load before measuring
    duration: float  # seconds measured per concurrency level
    levels: tuple[int, ...]  # authorize concurrency levels on SQLite
    postgres_levels: tuple[int, ...]
    headline_concurrency: int
    trivial_duration: float  # seconds on the trivial endpoint
    fanout_subscribers: int
    fanout_events: int
    fanout_budget: float  # seconds at most for the events of one fanout run
    big_subscribers: int  # 0: skip the large fanout
    big_events: int
    big_budget: float
    scaleout_subscribers: int  # 0: skip two processes on PostgreSQL + Redis
    scaleout_events: int
    pending_requests: int
    event_timeout: float = 15.0
    approver_requests: int = 0  # 0: skip the approver-scope run (bench.approver_scope)


FULL = Sizes(
    mode="full",
    warmup=1.5,
    duration=6.0,
    levels=(1, 16, 64),
    postgres_levels=(1, 16, 64),
    headline_concurrency=16,
    trivial_duration=4.0,
    fanout_subscribers=1000,
    fanout_events=100,
    fanout_budget=90.0,
    big_subscribers=5000,
    big_events=100,
    big_budget=120.0,
    scaleout_subscribers=1000,
    scaleout_events=100,
    pending_requests=60,
    approver_requests=20_000,
)
QUICK = Sizes(
    mode="quick",
    warmup=0.5,
    duration=3.0,
    levels=(1, 16, 64),
    postgres_levels=(16,),
    headline_concurrency=16,
    trivial_duration=2.0,
    fanout_subscribers=1000,
    fanout_events=30,
    fanout_budget=30.0,
    big_subscribers=0,
    big_events=0,
    big_budget=0.0,
    scaleout_subscribers=0,
    scaleout_events=0,
    pending_requests=60,
    approver_requests=20_000,
)
TINY = Sizes(
    mode="tiny",
    warmup=0.2,
    duration=0.6,
    levels=(2,),
    postgres_levels=(2,),
    headline_concurrency=2,
    trivial_duration=0.5,
    fanout_subscribers=4,
    fanout_events=3,
    fanout_budget=10.0,
    big_subscribers=0,
    big_events=0,
    big_budget=0.0,
    scaleout_subscribers=4,
    scaleout_events=3,
    pending_requests=60,
    event_timeout=10.0,
)

PRODUCER_ID = {
    "lockbox": ["data", "authorizeAccess", "event", "id"],
    "baseline": ["event", "id"],
}
SUBSCRIBER_ID = ["payload", "data", "engineerActivity", "id"]


@dataclass
class Plan:
    sizes: Sizes
    server_cpus: list[set[int]]
    client_cpus: set[int]

    def server_cpu(self, index: int = 0) -> set[int]:
        return self.server_cpus[index % len(self.server_cpus)]


# --- scenarios -------------------------------------------------------------------------


def _http_phases(
    plan: Plan, server: Server, request: dict[str, Any], expect: str, levels: tuple[int, ...]
) -> dict[str, Any]:
    """The trivial endpoint first (load generator headroom), then each level."""
    sizes = plan.sizes
    trivial = {
        "request": {"method": "GET", "path": "/healthz"},
        "expect": '"ok"',
        "concurrency": max(levels),
        "warmup": sizes.warmup,
        "duration": sizes.trivial_duration,
    }
    phases = [trivial] + [
        {
            "request": request,
            "expect": expect,
            "concurrency": level,
            "warmup": sizes.warmup,
            "duration": sizes.duration,
        }
        for level in levels
    ]
    spec = {
        "kind": "http",
        "host": HOST,
        "port": server.port,
        "server_pids": [server.pid],
        "phases": phases,
    }
    budget = sum(p["warmup"] + p["duration"] + 30 for p in phases) + 30  # type: ignore[operator]
    result = run_loadgen(spec, plan.client_cpus, timeout=budget)
    trivial_result, *level_results = result["phases"]
    return {
        "trivial": trivial_result,
        "levels": {str(r["concurrency"]): r for r in level_results},
    }


def lockbox_authorize(
    plan: Plan, server: Server, world: World, request_id: str, levels: tuple[int, ...]
) -> dict[str, Any]:
    request = {
        "method": "POST",
        "path": "/graphql",
        "json": authorize_body(request_id),
        "token": world.token("engineer-alice"),
    }
    return _http_phases(plan, server, request, '"allowed":true', levels)


def baseline_authorize(
    plan: Plan, server: Server, world: World, request_id: str, levels: tuple[int, ...]
) -> dict[str, Any]:
    request = {
        "method": "POST",
        "path": "/authorize",
        "json": baseline_authorize_body(request_id),
        "token": world.token("engineer-alice"),
    }
    return _http_phases(plan, server, request, '"allowed":true', levels)


def fanout(
    plan: Plan,
    kind: str,
    targets: list[Server],
    world: World,
    *,
    request_id: str | None,
    subscribers: int,
    events: int,
    memory: bool,
    budget: float | None = None,
) -> dict[str, Any]:
    sizes = plan.sizes
    budget = sizes.fanout_budget if budget is None else budget
    producer = targets[0]
    if kind == "lockbox":
        assert request_id is not None
        produce: dict[str, Any] = {
            "method": "POST",
            "path": "/graphql",
            "json": authorize_body(request_id),
            "token": world.token("engineer-alice"),
        }
        variables = {"id": request_id}
    else:
        produce = {"method": "POST", "path": "/broadcast", "json": {"resource": RESOURCE}}
        variables = {"id": request_id or "baseline"}
    spec = {
        "kind": "fanout",
        "targets": [{"host": HOST, "port": t.port, "path": "/graphql"} for t in targets],
        "token": world.token("contoso-admin"),
        "query": ACTIVITY,
        "variables": variables,
        "subscribers": subscribers,
        "events": events,
        "budget_seconds": budget,
        "event_timeout": sizes.event_timeout,
        "producer": {"host": HOST, "port": producer.port, "request": produce},
        "producer_id_path": PRODUCER_ID[kind],
        "subscriber_id_path": SUBSCRIBER_ID,
        "memory_pids": [t.pid for t in targets] if memory else [],
        "server_pids": [t.pid for t in targets],
        "open_files": OPEN_FILES,
    }
    timeout = budget + 3 * sizes.event_timeout + subscribers / 10 + 120
    result = run_loadgen(spec, plan.client_cpus, timeout=timeout)
    result["processes"] = len(targets)
    return result


# --- one backend -------------------------------------------------------------------------


def run_backend(
    plan: Plan,
    fleet: Fleet,
    backend: str,
    database_url: str,
    redis_url: str | None,
    log: report.Log,
) -> dict[str, Any]:
    sizes = plan.sizes
    sqlite = backend == "sqlite"
    levels = sizes.levels if sqlite else sizes.postgres_levels
    out: dict[str, Any] = {"backend": backend, "fanout": []}
    log(f"[{backend}] seeding a fresh database")
    world = World(seed_demo(database_url))

    log(f"[{backend}] query cost: {sizes.pending_requests} pending requests, first 5 and 50")
    out["query_cost"] = run_module(
        "bench.query_cost",
        {
            "database_url": database_url,
            "world": world.raw,
            "pending": sizes.pending_requests,
            "pages": [5, 50],
        },
        set(),
        timeout=300,
    )

    fanouts: list[tuple[int, int, float]] = []  # subscribers, events, time budget
    if sqlite:
        fanouts.append((sizes.fanout_subscribers, sizes.fanout_events, sizes.fanout_budget))
        if sizes.big_subscribers:
            fanouts.append((sizes.big_subscribers, sizes.big_events, sizes.big_budget))
    scaleout = (not sqlite) and redis_url is not None and sizes.scaleout_subscribers > 0

    server = fleet.start_lockbox(database_url, "memory://", plan.server_cpu())
    with running(fleet, server):
        auth_request = approved_request(server.http_url, world, "authorize")
        fan_requests = [
            approved_request(server.http_url, world, f"fanout {n}") for n, _, _ in fanouts
        ]
        log(f"[{backend}] lockbox: authorize at concurrency {', '.join(map(str, levels))}")
        out["lockbox"] = lockbox_authorize(plan, server, world, auth_request, levels)
        for (subscribers, events, budget), request_id in zip(fanouts, fan_requests, strict=True):
            log(f"[{backend}] lockbox: fanout to {subscribers} subscribers, {events} events")
            result = fanout(
                plan,
                "lockbox",
                [server],
                world,
                request_id=request_id,
                subscribers=subscribers,
                events=events,
                memory=True,
                budget=budget,
            )
            out["fanout"].append({"label": "1 process", "kind": "lockbox", **result})

    baseline = fleet.start_baseline(database_url, plan.server_cpu())
    with running(fleet, baseline):
        log(f"[{backend}] baseline: authorize at concurrency {', '.join(map(str, levels))}")
        out["baseline"] = baseline_authorize(plan, baseline, world, auth_request, levels)
        base_sizes = {n: e for n, e, _ in fanouts}
        if scaleout:
            base_sizes.setdefault(sizes.scaleout_subscribers, sizes.scaleout_events)
        for subscribers, events in base_sizes.items():
            log(f"[{backend}] baseline: fanout to {subscribers} sockets, {events} events")
            result = fanout(
                plan,
                "baseline",
                [baseline],
                world,
                request_id=None,
                subscribers=subscribers,
                events=events,
                memory=True,
            )
            out["fanout"].append({"label": "baseline", "kind": "baseline", **result})

    if scaleout:
        assert redis_url is not None
        broker = redis_channel_url(redis_url)
        servers = [fleet.start_lockbox(database_url, broker, plan.server_cpu(i)) for i in range(2)]
        try:
            for each in servers:
                fleet.wait_ready(each, path="/readyz")
            request_id = approved_request(servers[0].http_url, world, "fanout scale-out")
            n, events = sizes.scaleout_subscribers, sizes.scaleout_events
            log(f"[{backend}] lockbox x2 + Redis: fanout to {n} subscribers, {events} events")
            result = fanout(
                plan,
                "lockbox",
                servers,
                world,
                request_id=request_id,
                subscribers=n,
                events=events,
                memory=False,
            )
            out["fanout"].append({"label": "2 processes + Redis", "kind": "lockbox", **result})
        finally:
            for each in servers:
                fleet.stop(each)

    if sizes.approver_requests:
        # Last: its many pending requests stay out of the other runs' database.
        n = sizes.approver_requests
        log(f"[{backend}] approver scope: pendingRequests(first: 50) at {n} requests")
        out["approver_scope"] = run_module(
            "bench.approver_scope",
            {"database_url": database_url, "world": world.raw, "requests": n, "repeats": 5},
            set(),
            timeout=300,
        )
    return out


# --- the whole run -------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def code_under_test() -> dict[str, Any]:
    """Which Lockbox ran: where it was imported from, and the commit of this checkout."""
    info: dict[str, Any] = {}
    try:
        import lockbox

        info["lockbox_path"] = str(Path(lockbox.__file__).resolve().parent)
    except ImportError:
        info["lockbox_path"] = None
    git = shutil.which("git")
    if git is not None:
        for key, argv in (
            ("commit", ["rev-parse", "HEAD"]),
            ("uncommitted_server_changes", ["status", "--porcelain", "--", "server"]),
        ):
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                [git, "-C", str(REPO), *argv], capture_output=True, text=True, check=False
            )
            value = done.stdout.strip() if done.returncode == 0 else None
            info[key] = value if key == "commit" else (None if value is None else bool(value))
    return info


def _terminate(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Lockbox against baselines measured in the same run.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a shorter run (under 2 minutes)")
    size.add_argument("--tiny", action="store_true", help="toy sizes, for the smoke test")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON path")
    parser.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres (skipped when unreachable)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LOCKBOX_BENCH_POSTGRES_URL")
        or os.environ.get("LOCKBOX_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES,
        help="an existing database to connect to; the run creates and drops its own",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("LOCKBOX_BENCH_REDIS_URL")
        or os.environ.get("LOCKBOX_TEST_REDIS_URL")
        or DEFAULT_REDIS,
    )
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(wanted) - {"sqlite", "postgres"}
    if unknown:
        raise SystemExit(f"unknown backend(s): {', '.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, _terminate)
    raise_open_files_limit(OPEN_FILES)
    server_cpus, client_cpus = cpu_plan()
    plan = Plan(sizes, server_cpus, client_cpus)
    log = report.Log()
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "mode": sizes.mode,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "code": code_under_test(),
            "server_cpus": [sorted(c) for c in server_cpus],
            "loadgen_cpus": sorted(client_cpus),
            "uvicorn_options": uvicorn_options(),
            "sizes": asdict(sizes),
        },
        "backends": {},
    }
    backends: list[tuple[str, str | None]] = []
    if "sqlite" in wanted:
        backends.append(("sqlite", None))
    if "postgres" in wanted:
        if postgres_reachable(args.postgres_url):
            redis = args.redis_url if redis_reachable(args.redis_url) else None
            backends.append(("postgres", redis))
        else:
            results["meta"]["postgres"] = "unreachable: skipped"
    try:
        with (
            tempfile.TemporaryDirectory(prefix="lockbox-bench-") as scratch,
            fleet_in(Path(scratch)) as fleet,
        ):
            for backend, redis in backends:
                if backend == "sqlite":
                    url = f"sqlite://{Path(scratch) / 'bench.db'}"
                    results["backends"][backend] = run_backend(plan, fleet, backend, url, None, log)
                else:
                    with postgres_database(args.postgres_url) as url:
                        results["backends"][backend] = run_backend(
                            plan, fleet, backend, url, redis, log
                        )
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    report.summarise(results, sizes.headline_concurrency)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    temporary.replace(args.output)
    print(report.render(results, markdown=args.markdown))
    print(f"\nwrote {args.output} in {results['meta']['elapsed_s']} s")
