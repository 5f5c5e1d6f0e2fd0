"""The benchmark run: fresh databases, real servers, a separate load generator.

`python -m bench [--quick | --tiny] [--output PATH] [--backends sqlite,postgres]
[--client-cpu-limit PERCENT]`

Every scenario runs in rounds (Lockbox and its baseline in turns within each
round); bench.report turns them into medians, spreads and per-round ratios.
A run in which the load generator was the bottleneck exits with status 3 and
writes no results.
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
# Both groups of the 10,000-subscriber fanout are connected at once.
OPEN_FILES = 40_000


@dataclass(frozen=True)
class Sizes:
    mode: str
    rounds: int  # every figure is the median of this many rounds
    warmup: float  # seconds of load before measuring, per phase
    duration: float  # seconds measured per phase
    levels: tuple[int, ...]  # authorize concurrency levels on SQLite
    postgres_levels: tuple[int, ...]
    headline_concurrency: int
    trivial_duration: float  # seconds on the trivial endpoint
    fanouts: tuple[tuple[int, int], ...]  # (subscribers, events per round), SQLite
    fanout_budget: float  # seconds at most for the events of one round
    scaleout_watchers: int  # 0: skip two processes on PostgreSQL + Redis
    scaleout_events: int  # per round
    pending_requests: int
    event_timeout: float = 15.0
    approver_requests: int = 0  # 0: skip the approver-scope run (bench.approver_scope)


FULL = Sizes(
    mode="full",
    rounds=5,
    warmup=0.5,
    duration=3.0,
    levels=(1, 16, 64),
    postgres_levels=(16, 64),
    headline_concurrency=16,
    trivial_duration=3.0,
    fanouts=((1000, 40), (10_000, 20)),
    fanout_budget=90.0,
    scaleout_watchers=1000,
    scaleout_events=40,
    pending_requests=60,
    approver_requests=20_000,
)
QUICK = Sizes(
    mode="quick",
    rounds=5,
    warmup=0.3,
    duration=1.5,
    levels=(16,),
    postgres_levels=(16,),
    headline_concurrency=16,
    trivial_duration=1.5,
    fanouts=((1000, 10),),
    fanout_budget=30.0,
    scaleout_watchers=1000,
    scaleout_events=10,
    pending_requests=60,
    approver_requests=20_000,
)
TINY = Sizes(
    mode="tiny",
    rounds=5,
    warmup=0.1,
    duration=0.3,
    levels=(2,),
    postgres_levels=(2,),
    headline_concurrency=2,
    trivial_duration=0.3,
    fanouts=((4, 2),),
    fanout_budget=10.0,
    scaleout_watchers=4,
    scaleout_events=2,
    pending_requests=60,
    event_timeout=10.0,
)

PRODUCER_ID = {
    "lockbox": ["data", "authorizeAccess", "event", "id"],
    "baseline": ["event", "id"],
}
SUBSCRIBER_ID = ["payload", "data", "engineerActivity", "id"]

# A measured phase in which the load generator used this much of its core
# was paced by the client, not the server: its figures say nothing.
CLIENT_CPU_LIMIT = 90.0


@dataclass
class Plan:
    sizes: Sizes
    server_cpus: list[set[int]]
    client_cpus: set[int]
    client_cpu_limit: float = CLIENT_CPU_LIMIT

    def server_cpu(self, index: int = 0) -> set[int]:
        return self.server_cpus[index % len(self.server_cpus)]


class ClientBound(BenchError):
    """The load generator, not the server, set the pace of a measured phase."""


def check_client(plan: Plan, what: str, phases: list[dict[str, Any]]) -> None:
    """Fail the run loudly when the load generator was the bottleneck."""
    for phase in phases:
        used = phase.get("client_cpu_pct")
        if used is not None and used >= plan.client_cpu_limit:
            raise ClientBound(
                f"{what}: the load generator used {used}% of its CPU in "
                f"{phase.get('label') or 'a phase'} (round {phase.get('round')}), at or over "
                f"{plan.client_cpu_limit:g}%: the client, not the server, was the bottleneck, "
                "so this run's figures are void. Run on an idler machine (or give the load "
                "generator a CPU of its own), or raise --client-cpu-limit knowingly."
            )


# --- scenarios -------------------------------------------------------------------------


def authorize(
    plan: Plan,
    lockbox: Server,
    baseline: Server,
    world: World,
    request_id: str,
    levels: tuple[int, ...],
) -> dict[str, Any]:
    """Lockbox's gate and the naive endpoint in turns, round after round.

    Each round runs every level on both servers back to back (which goes
    first alternates), so each round's ratio compares figures from the same
    few seconds. The trivial endpoint is driven once per server first, to
    show the load generator's headroom."""
    sizes = plan.sizes
    token = world.token("engineer-alice")
    servers = {
        "lockbox": (
            lockbox,
            {"method": "POST", "path": "/graphql", "json": authorize_body(request_id)},
        ),
        "baseline": (
            baseline,
            {"method": "POST", "path": "/authorize", "json": baseline_authorize_body(request_id)},
        ),
    }
    phases: list[dict[str, Any]] = []
    for kind, (server, _) in servers.items():
        phases.append(
            {
                "label": f"{kind} trivial",
                "port": server.port,
                "server_pids": [server.pid],
                "request": {"method": "GET", "path": "/healthz"},
                "expect": '"ok"',
                "concurrency": max(levels),
                "warmup": sizes.warmup,
                "duration": sizes.trivial_duration,
            }
        )
    for index in range(sizes.rounds):
        order = ["lockbox", "baseline"] if index % 2 == 0 else ["baseline", "lockbox"]
        for level in levels:
            for kind in order:
                server, request = servers[kind]
                phases.append(
                    {
                        "label": kind,
                        "round": index,
                        "port": server.port,
                        "server_pids": [server.pid],
                        "request": {**request, "token": token},
                        "expect": '"allowed":true',
                        "concurrency": level,
                        "warmup": sizes.warmup,
                        "duration": sizes.duration,
                    }
                )
    spec = {"kind": "http", "host": HOST, "phases": phases}
    budget = sum(p["warmup"] + p["duration"] + 10 for p in phases) + 60
    result = run_loadgen(spec, plan.client_cpus, timeout=budget)
    done: list[dict[str, Any]] = result["phases"]
    check_client(plan, "authorize", done)
    trivial = {r["label"].split()[0]: r for r in done if r["round"] is None}
    out: dict[str, Any] = {"trivial": trivial, "levels": {}}
    for level in levels:
        rounds = []
        for index in range(sizes.rounds):
            pair = {
                r["label"]: r for r in done if r["round"] == index and r["concurrency"] == level
            }
            rounds.append(
                {"round": index, "lockbox": pair["lockbox"], "baseline": pair["baseline"]}
            )
        out["levels"][str(level)] = {"concurrency": level, "rounds": rounds}
    return out


def _lockbox_group(
    world: World, name: str, watchers: list[Server], producer: Server, request_id: str, memory: bool
) -> dict[str, Any]:
    return {
        "name": name,
        "targets": [{"host": HOST, "port": t.port, "path": "/graphql"} for t in watchers],
        "variables": {"id": request_id},
        "producer": {
            "host": HOST,
            "port": producer.port,
            "request": {
                "method": "POST",
                "path": "/graphql",
                "json": authorize_body(request_id),
                "token": world.token("engineer-alice"),
            },
        },
        "producer_id_path": PRODUCER_ID["lockbox"],
        "memory_pids": [t.pid for t in watchers] if memory else [],
        "server_pids": sorted({t.pid for t in [*watchers, producer]}),
    }


def _baseline_group(server: Server) -> dict[str, Any]:
    return {
        "name": "baseline",
        "targets": [{"host": HOST, "port": server.port, "path": "/graphql"}],
        "variables": {"id": "baseline"},
        "producer": {
            "host": HOST,
            "port": server.port,
            "request": {"method": "POST", "path": "/broadcast", "json": {"resource": RESOURCE}},
        },
        "producer_id_path": PRODUCER_ID["baseline"],
        "memory_pids": [server.pid],
        "server_pids": [server.pid],
    }


def fanout(
    plan: Plan,
    world: World,
    groups: list[dict[str, Any]],
    *,
    subscribers: int,
    events: int,
) -> dict[str, Any]:
    """One load-generator run: the groups connect, then take turns, round after round."""
    sizes = plan.sizes
    spec = {
        "kind": "fanout",
        "groups": groups,
        "token": world.token("contoso-admin"),
        "query": ACTIVITY,
        "subscribers": subscribers,
        "events": events,
        "rounds": sizes.rounds,
        "budget_seconds": sizes.fanout_budget,
        "event_timeout": sizes.event_timeout,
        "subscriber_id_path": SUBSCRIBER_ID,
        "open_files": OPEN_FILES,
    }
    per_group = subscribers / 10 + sizes.rounds * (sizes.fanout_budget + sizes.event_timeout)
    timeout = len(groups) * (per_group + 3 * sizes.event_timeout + 120)
    result = run_loadgen(spec, plan.client_cpus, timeout=timeout)
    for group in result["groups"]:
        check_client(
            plan,
            f"fanout to {subscribers} ({group['name']})",
            [{**r, "label": group["name"]} for r in group["rounds"]],
        )
    return {
        "subscribers": subscribers,
        "groups_together": result["groups_together"],
        "groups": {g["name"]: g for g in result["groups"]},
    }


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
    out: dict[str, Any] = {"backend": backend, "rounds": sizes.rounds, "fanout": []}
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

    fanouts = sizes.fanouts if sqlite else ()
    scaleout = (not sqlite) and redis_url is not None and sizes.scaleout_watchers > 0

    # Lockbox and its baseline run side by side on the same CPU and take
    # turns: while one is measured, the other is idle.
    server = fleet.start_lockbox(database_url, "memory://", plan.server_cpu())
    baseline = fleet.start_baseline(database_url, plan.server_cpu())
    with running(fleet, server), running(fleet, baseline):
        auth_request = approved_request(server.http_url, world, "authorize")
        log(
            f"[{backend}] authorize at concurrency {', '.join(map(str, levels))}: "
            f"{sizes.rounds} rounds, Lockbox and baseline in turns"
        )
        out["authorize"] = authorize(plan, server, baseline, world, auth_request, levels)
        for subscribers, events in fanouts:
            request_id = approved_request(server.http_url, world, f"fanout {subscribers}")
            log(
                f"[{backend}] fanout to {subscribers} subscribers: {sizes.rounds} rounds "
                f"of {events} events, Lockbox and baseline in turns"
            )
            groups = [
                _lockbox_group(world, "lockbox", [server], server, request_id, memory=True),
                _baseline_group(baseline),
            ]
            result = fanout(plan, world, groups, subscribers=subscribers, events=events)
            out["fanout"].append({"label": "1 process", **result})

    if scaleout:
        assert redis_url is not None
        broker = redis_channel_url(redis_url)
        servers = [fleet.start_lockbox(database_url, broker, plan.server_cpu(i)) for i in range(2)]
        try:
            for each in servers:
                fleet.wait_ready(each, path="/readyz")
            request_id = approved_request(servers[0].http_url, world, "fanout scale-out")
            n, events = sizes.scaleout_watchers, sizes.scaleout_events
            log(
                f"[{backend}] lockbox x2 + Redis: gate on one process, {n} watchers on the "
                f"other: {sizes.rounds} rounds of {events} events"
            )
            groups = [
                _lockbox_group(world, "lockbox", [servers[1]], servers[0], request_id, memory=False)
            ]
            result = fanout(plan, world, groups, subscribers=n, events=events)
            out["fanout"].append({"label": "2 processes + Redis", **result})
        finally:
            for each in servers:
                fleet.stop(each)

    if sizes.approver_requests:
        # Last: its many pending requests stay out of the other runs' database.
        n = sizes.approver_requests
        log(f"[{backend}] approver scope: pendingRequests(first: 50) at {n} requests")
        out["approver_scope"] = run_module(
            "bench.approver_scope",
            {
                "database_url": database_url,
                "world": world.raw,
                "requests": n,
                "repeats": max(5, sizes.rounds),
            },
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
    parser.add_argument(
        "--client-cpu-limit",
        type=float,
        default=CLIENT_CPU_LIMIT,
        help="fail when the load generator uses this much of its CPU in a measured phase",
    )
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
    plan = Plan(sizes, server_cpus, client_cpus, args.client_cpu_limit)
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
    except ClientBound as exc:
        print(f"bench: CLIENT-BOUND RUN, NO FIGURES WRITTEN: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
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
