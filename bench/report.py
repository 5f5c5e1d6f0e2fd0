"""Headline figures, targets and the printed tables.

`python -m bench.report [--markdown] [PATH]` re-prints a results file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# The targets of the benchmark issue (one server process, SQLite).
AUTHORIZE_RATIO_MIN = 0.8
AUTHORIZE_P99_RATIO_MAX = 1.5
FANOUT_RATIO_MAX = 1.5
MEMORY_KB_MAX = 50.0
APPROVER_RATIO_MAX = 2.0


class Log:
    """Progress lines on stderr, with the time since the run began."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def _level(section: dict[str, Any], concurrency: int) -> tuple[int, dict[str, Any]]:
    levels: dict[str, Any] = section["levels"]
    if str(concurrency) in levels:
        return concurrency, levels[str(concurrency)]
    nearest = min((int(k) for k in levels), key=lambda k: abs(k - concurrency))
    return nearest, levels[str(nearest)]


def _authorize_runs(backends: dict[str, Any]) -> list[dict[str, Any]]:
    runs = []
    for name, data in backends.items():
        for key, mine in data["lockbox"]["levels"].items():
            base = data["baseline"]["levels"].get(key, {})
            runs.append(
                {
                    "backend": name,
                    "concurrency": int(key),
                    "rps": mine["rps"],
                    "p50_ms": mine["p50_ms"],
                    "p99_ms": mine["p99_ms"],
                    "errors": mine["errors"],
                    "server_cpu_pct": mine["server_cpu_pct"],
                    "client_cpu_pct": mine["client_cpu_pct"],
                    "baseline_rps": base.get("rps"),
                    "baseline_p50_ms": base.get("p50_ms"),
                    "baseline_p99_ms": base.get("p99_ms"),
                    "baseline_errors": base.get("errors"),
                    "baseline_server_cpu_pct": base.get("server_cpu_pct"),
                    "ratio": _ratio(mine["rps"], base.get("rps")),
                    "p99_ratio": _ratio(mine["p99_ms"], base.get("p99_ms")),
                }
            )
    return runs


def _loadgen_checks(backends: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for name, data in backends.items():
        for kind in ("lockbox", "baseline"):
            trivial = data[kind]["trivial"]
            best = max(r["rps"] for r in data[kind]["levels"].values())
            checks.append(
                {
                    "backend": name,
                    "server": kind,
                    "endpoint": "GET /healthz",
                    "concurrency": trivial["concurrency"],
                    "rps": trivial["rps"],
                    "client_cpu_pct": trivial["client_cpu_pct"],
                    "server_cpu_pct": trivial["server_cpu_pct"],
                    "best_measured_rps": best,
                    "headroom": _ratio(trivial["rps"], best),
                }
            )
    return checks


def _fanout_runs(backends: dict[str, Any]) -> list[dict[str, Any]]:
    runs = []
    for name, data in backends.items():
        baselines = {r["subscribers"]: r for r in data["fanout"] if r["kind"] == "baseline"}
        for run in data["fanout"]:
            if run["kind"] != "lockbox":
                continue
            base = baselines.get(run["subscribers"], {})
            memory = run.get("memory") or {}
            base_memory = base.get("memory") or {}
            runs.append(
                {
                    "backend": name,
                    "label": run["label"],
                    "processes": run["processes"],
                    "subscribers": run["subscribers"],
                    "connected": run.get("connected"),
                    "events": run.get("events"),
                    "p50_ms": run.get("p50_ms"),
                    "p99_ms": run.get("p99_ms"),
                    "max_ms": run.get("max_ms"),
                    "event_complete_p50_ms": run.get("event_complete_p50_ms"),
                    "missed": run.get("missed"),
                    "duplicated": run.get("duplicated"),
                    "errors": run.get("errors"),
                    "event_timeouts": run.get("event_timeouts"),
                    "server_cpu_pct": run.get("server_cpu_pct"),
                    "client_cpu_pct": run.get("client_cpu_pct"),
                    "baseline_p50_ms": base.get("p50_ms"),
                    "baseline_p99_ms": base.get("p99_ms"),
                    "baseline_missed": base.get("missed"),
                    "baseline_duplicated": base.get("duplicated"),
                    "baseline_server_cpu_pct": base.get("server_cpu_pct"),
                    "baseline_client_cpu_pct": base.get("client_cpu_pct"),
                    "ratio": _ratio(run.get("p99_ms"), base.get("p99_ms")),
                    "kb_per_subscriber": memory.get("kb_per_subscriber"),
                    "baseline_kb_per_subscriber": base_memory.get("kb_per_subscriber"),
                }
            )
    return runs


def summarise(results: dict[str, Any], headline_concurrency: int) -> None:
    """Add the headline keys of the issue and the target verdicts to `results`."""
    backends: dict[str, Any] = results["backends"]
    if not backends:
        return
    primary = "sqlite" if "sqlite" in backends else next(iter(backends))
    data = backends[primary]

    concurrency, mine = _level(data["lockbox"], headline_concurrency)
    _, base = _level(data["baseline"], concurrency)
    results["authorize"] = {
        "backend": primary,
        "concurrency": concurrency,
        "rps": mine["rps"],
        "p50_ms": mine["p50_ms"],
        "p99_ms": mine["p99_ms"],
        "errors": mine["errors"],
        "baseline_rps": base["rps"],
        "baseline_p50_ms": base["p50_ms"],
        "baseline_p99_ms": base["p99_ms"],
        "ratio": _ratio(mine["rps"], base["rps"]),
        "p99_ratio": _ratio(mine["p99_ms"], base["p99_ms"]),
        "loadgen_trivial_rps": data["lockbox"]["trivial"]["rps"],
    }
    results["authorize_runs"] = _authorize_runs(backends)
    results["loadgen_check"] = _loadgen_checks(backends)

    fanout_runs = _fanout_runs(backends)
    results["fanout_runs"] = fanout_runs
    mine_runs = [r for r in fanout_runs if r["backend"] == primary] or fanout_runs
    if mine_runs:
        run = mine_runs[0]
        results["fanout"] = {
            "backend": run["backend"],
            "processes": run["processes"],
            "subscribers": run["subscribers"],
            "events": run["events"],
            "p50_ms": run["p50_ms"],
            "p99_ms": run["p99_ms"],
            "missed": run["missed"],
            "duplicated": run["duplicated"],
            "errors": run["errors"],
            "baseline_p50_ms": run["baseline_p50_ms"],
            "baseline_p99_ms": run["baseline_p99_ms"],
            "ratio": run["ratio"],
        }
        results["memory"] = {
            "backend": run["backend"],
            "subscribers": run["subscribers"],
            "kb_per_subscriber": run["kb_per_subscriber"],
            "baseline_kb_per_subscriber": run["baseline_kb_per_subscriber"],
            "ratio": _ratio(run["kb_per_subscriber"], run["baseline_kb_per_subscriber"]),
        }
    cost = data["query_cost"]
    results["query_cost"] = {
        "backend": primary,
        "pending_requests": cost["pending_requests"],
        "statements_first_5": cost["statements_first_5"],
        "statements_first_50": cost["statements_first_50"],
        "by_backend": {
            name: {
                "statements_first_5": d["query_cost"]["statements_first_5"],
                "statements_first_50": d["query_cost"]["statements_first_50"],
            }
            for name, d in backends.items()
        },
    }
    scoped = {name: d["approver_scope"] for name, d in backends.items() if "approver_scope" in d}
    if scoped:
        results["approver_scope"] = scoped
    results["targets"] = _targets(results)


def _verdict(value: float | None, ok: bool) -> str:
    return "n/a" if value is None else "met" if ok else "NOT met"


def _targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    auth = results["authorize"]
    ratio = auth["ratio"]
    targets.append(
        {
            "target": f"authorize ratio >= {AUTHORIZE_RATIO_MIN} at concurrency "
            f"{auth['concurrency']} ({auth['backend']})",
            "value": ratio,
            "verdict": _verdict(ratio, ratio is not None and ratio >= AUTHORIZE_RATIO_MIN),
        }
    )
    p99 = auth["p99_ratio"]
    targets.append(
        {
            "target": f"authorize p99 <= {AUTHORIZE_P99_RATIO_MAX}x baseline p99",
            "value": p99,
            "verdict": _verdict(p99, p99 is not None and p99 <= AUTHORIZE_P99_RATIO_MAX),
        }
    )
    fan = results.get("fanout")
    if fan:
        ok = (
            fan["ratio"] is not None
            and fan["ratio"] <= FANOUT_RATIO_MAX
            and fan["missed"] == 0
            and fan["duplicated"] == 0
        )
        targets.append(
            {
                "target": f"fanout p99 ratio <= {FANOUT_RATIO_MAX}, 0 missed, 0 duplicated "
                f"({fan['subscribers']} subscribers)",
                "value": fan["ratio"],
                "verdict": _verdict(fan["ratio"], ok),
            }
        )
    memory = results.get("memory")
    if memory:
        kb = memory["kb_per_subscriber"]
        targets.append(
            {
                "target": f"memory < {MEMORY_KB_MAX:g} KB per idle subscriber",
                "value": kb,
                "verdict": _verdict(kb, kb is not None and kb < MEMORY_KB_MAX),
            }
        )
    cost = results["query_cost"]
    equal = cost["statements_first_5"] == cost["statements_first_50"]
    targets.append(
        {
            "target": "query_cost: same statement count for first 5 and first 50",
            "value": f"{cost['statements_first_5']} vs {cost['statements_first_50']}",
            "verdict": "met" if equal else "NOT met",
        }
    )
    for backend, scope in (results.get("approver_scope") or {}).items():
        ratio = scope["contoso-approver-prod"]["ratio"]
        targets.append(
            {
                "target": f"approver pendingRequests(first: 50) at {scope['requests']} requests "
                f"<= {APPROVER_RATIO_MAX:g}x the admin's ({backend})",
                "value": ratio,
                "verdict": _verdict(ratio, ratio is not None and ratio <= APPROVER_RATIO_MAX),
            }
        )
    return targets


# --- rendering ---------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _pair(a: float | None, b: float | None) -> str:
    return f"{_cell(a)} / {_cell(b)}"


def table(headers: list[str], rows: list[list[Any]], markdown: bool) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def render(results: dict[str, Any], *, markdown: bool = False) -> str:
    meta = results["meta"]
    m = meta["machine"]
    heading = "### " if markdown else "== "
    parts = [
        f"Lockbox benchmark ({meta['mode']}): {m['nproc']} CPUs ({m['cpu_model']}), "
        f"Python {m['python']}; servers on CPUs {meta['server_cpus']}, "
        f"load generator on CPUs {meta['loadgen_cpus']}; load average at start "
        f"{m['loadavg_at_start']}",
    ]
    if "authorize_runs" not in results:
        return parts[0] + "\n(no results)"
    parts.append(f"\n{heading}authorize: closed loop, one engineer, one approved request")
    parts.append(
        table(
            [
                "backend",
                "conc",
                "rps",
                "p50 ms",
                "p99 ms",
                "srv cpu%",
                "base rps",
                "base p50",
                "base p99",
                "base srv cpu%",
                "ratio",
                "p99 x",
                "errors",
            ],
            [
                [
                    r["backend"],
                    r["concurrency"],
                    r["rps"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["server_cpu_pct"],
                    r["baseline_rps"],
                    r["baseline_p50_ms"],
                    r["baseline_p99_ms"],
                    r["baseline_server_cpu_pct"],
                    r["ratio"],
                    r["p99_ratio"],
                    (r["errors"] or 0) + (r["baseline_errors"] or 0),
                ]
                for r in results["authorize_runs"]
            ],
            markdown,
        )
    )
    parts.append(f"\n{heading}load generator headroom: the trivial endpoint, same client")
    parts.append(
        table(
            ["backend", "server", "endpoint", "conc", "rps", "client cpu%", "vs best measured"],
            [
                [
                    c["backend"],
                    c["server"],
                    c["endpoint"],
                    c["concurrency"],
                    c["rps"],
                    c["client_cpu_pct"],
                    f"{c['headroom']:.1f}x" if c["headroom"] else "-",
                ]
                for c in results["loadgen_check"]
            ],
            markdown,
        )
    )
    if results.get("fanout_runs"):
        parts.append(f"\n{heading}fanout: engineerActivity, latency from authorizeAccess response")
        parts.append(
            table(
                [
                    "backend",
                    "servers",
                    "subs",
                    "events",
                    "p50 ms",
                    "p99 ms",
                    "missed",
                    "dup",
                    "base p50",
                    "base p99",
                    "ratio",
                    "srv/cli cpu%",
                    "base srv/cli cpu%",
                ],
                [
                    [
                        r["backend"],
                        r["label"],
                        r["subscribers"],
                        r["events"],
                        r["p50_ms"],
                        r["p99_ms"],
                        r["missed"],
                        r["duplicated"],
                        r["baseline_p50_ms"],
                        r["baseline_p99_ms"],
                        r["ratio"],
                        _pair(r["server_cpu_pct"], r["client_cpu_pct"]),
                        _pair(r["baseline_server_cpu_pct"], r["baseline_client_cpu_pct"]),
                    ]
                    for r in results["fanout_runs"]
                ],
                markdown,
            )
        )
        memory_rows = [r for r in results["fanout_runs"] if r["kb_per_subscriber"] is not None]
        if memory_rows:
            parts.append(f"\n{heading}memory: server RSS growth per idle subscriber (VmRSS)")
            parts.append(
                table(
                    ["backend", "subscribers", "KB/subscriber", "raw WebSocket KB/socket", "ratio"],
                    [
                        [
                            r["backend"],
                            r["subscribers"],
                            r["kb_per_subscriber"],
                            r["baseline_kb_per_subscriber"],
                            _ratio(r["kb_per_subscriber"], r["baseline_kb_per_subscriber"]),
                        ]
                        for r in memory_rows
                    ],
                    markdown,
                )
            )
    cost = results["query_cost"]
    parts.append(f"\n{heading}query cost: pendingRequests with nested ticket, engineer, tenant")
    parts.append(
        table(
            ["backend", "pending", "statements first 5", "statements first 50"],
            [
                [name, cost["pending_requests"], c["statements_first_5"], c["statements_first_50"]]
                for name, c in cost["by_backend"].items()
            ],
            markdown,
        )
    )
    scoped = results.get("approver_scope") or {}
    if scoped:
        parts.append(
            f"\n{heading}approver scope: pendingRequests(first: 50), median of 5, in-process"
        )
        parts.append(
            table(
                ["backend", "requests", "caller", "sees", "ms", "vs admin"],
                [
                    [
                        name,
                        s["requests"],
                        caller,
                        who,
                        s[caller]["median_ms"],
                        s[caller].get("ratio"),
                    ]
                    for name, s in scoped.items()
                    for caller, who in (
                        ("contoso-admin", "all"),
                        ("contoso-approver-prod", "all but the last 50"),
                        ("contoso-approver-dev", "the last 50 only"),
                    )
                ],
                markdown,
            )
        )
    parts.append(f"\n{heading}targets")
    parts.append(
        table(
            ["target", "value", "verdict"],
            [[t["target"], t["value"], t["verdict"]] for t in results["targets"]],
            markdown,
        )
    )
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument(
        "path", nargs="?", type=Path, default=Path(__file__).parent / "results.json"
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    results = json.loads(args.path.read_text())
    summarise(results, int(results["meta"]["sizes"]["headline_concurrency"]))
    print(render(results, markdown=args.markdown))


if __name__ == "__main__":
    main()
