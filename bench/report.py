"""Headline figures, targets and the printed tables, from a results file.

Every timed figure is the median of the run's rounds, shown with its min..max;
a ratio is computed per round (Lockbox against the baseline measured in the
same round) and the median of those ratios is the figure.

`python -m bench.report [--markdown] [PATH]` re-prints a results file;
`python -m bench.report --update-doc BENCHMARKS.md [PATH]` writes its tables
into BENCHMARKS.md between the `bench:results` markers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The targets (each the median of the rounds; bench only, never timed tests).
FANOUT_RATIO_MAX = 1.2  # p99 against the raw broadcast, 1,000 and 10,000 subscribers
MEMORY_KB_MAX = 30.0  # per idle subscriber
MEMORY_RATIO_MAX = 1.25  # against a raw WebSocket in the same run
AUTHORIZE_RATIO_MIN = 1.3  # rps against the naive endpoint, concurrency 16
AUTHORIZE_P99_RATIO_MAX = 1.2  # p99 against the naive endpoint's
CROSS_PROCESS_P99_MAX_MS = 30.0  # gate response to a watcher on another process
CROSS_PROCESS_WATCHERS = 1000
APPROVER_RATIO_MAX = 2.0
HEADLINE_CONCURRENCY = 16

DOC_START = "<!-- bench:results:start -->"
DOC_END = "<!-- bench:results:end -->"


class Log:
    """Progress lines on stderr, with the time since the run began."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- statistics over rounds ------------------------------------------------------------


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Median, min, max and count of the values that exist."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": round(statistics.median(present), 3),
        "min": round(min(present), 3),
        "max": round(max(present), 3),
        "n": len(present),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def _per_round(
    rounds: list[dict[str, Any]], pick: Callable[[dict[str, Any]], float | None]
) -> dict[str, Any]:
    return spread([pick(r) for r in rounds])


# --- summaries ---------------------------------------------------------------------------


def _authorize_runs(backends: dict[str, Any]) -> list[dict[str, Any]]:
    runs = []
    for name, data in backends.items():
        for key, level in data["authorize"]["levels"].items():
            rounds = level["rounds"]
            mine = [r["lockbox"] for r in rounds]
            base = [r["baseline"] for r in rounds]
            ratio = _per_round(rounds, lambda r: _ratio(r["lockbox"]["rps"], r["baseline"]["rps"]))
            p99_ratio = _per_round(
                rounds, lambda r: _ratio(r["lockbox"]["p99_ms"], r["baseline"]["p99_ms"])
            )
            rps = spread([m["rps"] for m in mine])
            p99 = spread([m["p99_ms"] for m in mine])
            base_rps = spread([b["rps"] for b in base])
            base_p99 = spread([b["p99_ms"] for b in base])
            runs.append(
                {
                    "backend": name,
                    "concurrency": int(key),
                    "rounds": len(rounds),
                    "rps": rps["median"],
                    "rps_spread": rps,
                    "p50_ms": spread([m["p50_ms"] for m in mine])["median"],
                    "p99_ms": p99["median"],
                    "p99_spread": p99,
                    "errors": sum(m["errors"] for m in mine),
                    "server_cpu_pct": spread([m["server_cpu_pct"] for m in mine])["median"],
                    "client_cpu_pct_max": spread([m["client_cpu_pct"] for m in mine])["max"],
                    "baseline_rps": base_rps["median"],
                    "baseline_rps_spread": base_rps,
                    "baseline_p50_ms": spread([b["p50_ms"] for b in base])["median"],
                    "baseline_p99_ms": base_p99["median"],
                    "baseline_p99_spread": base_p99,
                    "baseline_errors": sum(b["errors"] for b in base),
                    "baseline_server_cpu_pct": spread([b["server_cpu_pct"] for b in base])[
                        "median"
                    ],
                    "ratio": ratio["median"],
                    "ratio_spread": ratio,
                    "p99_ratio": p99_ratio["median"],
                    "p99_ratio_spread": p99_ratio,
                }
            )
    return runs


def _loadgen_checks(backends: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for name, data in backends.items():
        levels = data["authorize"]["levels"].values()
        for kind, trivial in data["authorize"]["trivial"].items():
            best = max(r[kind]["rps"] for level in levels for r in level["rounds"])
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


def _round_p99(group: dict[str, Any], index: int) -> float | None:
    for r in group["rounds"]:
        if r["round"] == index and r.get("deliveries"):
            return float(r["p99_ms"])
    return None


def _fanout_runs(backends: dict[str, Any]) -> list[dict[str, Any]]:
    runs = []
    for name, data in backends.items():
        for run in data["fanout"]:
            mine = run["groups"]["lockbox"]
            base = run["groups"].get("baseline")
            rounds = mine["rounds"]
            p99 = _per_round(rounds, lambda r: r["p99_ms"] if r.get("deliveries") else None)
            p50 = _per_round(rounds, lambda r: r["p50_ms"] if r.get("deliveries") else None)
            complete = _per_round(rounds, lambda r: r["event_complete_p50_ms"])
            row: dict[str, Any] = {
                "backend": name,
                "label": run["label"],
                "subscribers": run["subscribers"],
                # False: the open-files limit made Lockbox and the baseline
                # run their rounds one after the other, not in turns.
                "interleaved": run.get("groups_together", True),
                "connected": mine.get("connected"),
                "rounds": len(rounds),
                "events": mine.get("events"),
                "p50_ms": p50["median"],
                "p99_ms": p99["median"],
                "p99_spread": p99,
                "event_complete_p50_ms": complete["median"],
                "missed": mine.get("missed"),
                "duplicated": mine.get("duplicated"),
                "errors": mine.get("errors"),
                "error_samples": mine.get("error_samples"),
                "event_timeouts": sum(r["event_timeouts"] for r in rounds),
                "server_cpu_pct": spread([r["server_cpu_pct"] for r in rounds])["median"],
                "client_cpu_pct_max": spread([r["client_cpu_pct"] for r in rounds])["max"],
            }
            memory = mine.get("memory") or {}
            if memory:
                kb = spread([m["kb_per_subscriber"] for m in memory["rounds"]])
                row["kb_per_subscriber"] = kb["median"]
                row["kb_spread"] = kb
            if base is not None:
                base_rounds = base["rounds"]
                base_p99 = _per_round(
                    base_rounds, lambda r: r["p99_ms"] if r.get("deliveries") else None
                )
                ratio = spread(
                    [
                        _ratio(_round_p99(mine, r["round"]), _round_p99(base, r["round"]))
                        for r in rounds
                    ]
                )
                row.update(
                    {
                        "baseline_connected": base.get("connected"),
                        "baseline_p50_ms": _per_round(
                            base_rounds, lambda r: r["p50_ms"] if r.get("deliveries") else None
                        )["median"],
                        "baseline_p99_ms": base_p99["median"],
                        "baseline_p99_spread": base_p99,
                        "baseline_event_complete_p50_ms": _per_round(
                            base_rounds, lambda r: r["event_complete_p50_ms"]
                        )["median"],
                        "baseline_missed": base.get("missed"),
                        "baseline_duplicated": base.get("duplicated"),
                        "baseline_errors": base.get("errors"),
                        "baseline_server_cpu_pct": spread(
                            [r["server_cpu_pct"] for r in base_rounds]
                        )["median"],
                        "baseline_client_cpu_pct_max": spread(
                            [r["client_cpu_pct"] for r in base_rounds]
                        )["max"],
                        "ratio": ratio["median"],
                        "ratio_spread": ratio,
                    }
                )
                base_memory = base.get("memory") or {}
                if memory and base_memory:
                    pairs = zip(memory["rounds"], base_memory["rounds"], strict=False)
                    kb_ratio = spread(
                        [_ratio(m["kb_per_subscriber"], b["kb_per_subscriber"]) for m, b in pairs]
                    )
                    base_kb = spread([b["kb_per_subscriber"] for b in base_memory["rounds"]])
                    row["baseline_kb_per_subscriber"] = base_kb["median"]
                    row["baseline_kb_spread"] = base_kb
                    row["kb_ratio"] = kb_ratio["median"]
                    row["kb_ratio_spread"] = kb_ratio
            runs.append(row)
    return runs


def summarise(results: dict[str, Any], headline_concurrency: int = HEADLINE_CONCURRENCY) -> None:
    """Add the headline keys and the target verdicts to `results`."""
    backends: dict[str, Any] = results["backends"]
    if not backends:
        return
    primary = "sqlite" if "sqlite" in backends else next(iter(backends))
    runs = _authorize_runs(backends)
    results["authorize_runs"] = runs
    results["loadgen_check"] = _loadgen_checks(backends)
    mine = [r for r in runs if r["backend"] == primary]
    head = min(mine, key=lambda r: abs(r["concurrency"] - headline_concurrency))
    results["authorize"] = {
        key: head[key]
        for key in (
            "backend",
            "concurrency",
            "rounds",
            "rps",
            "p50_ms",
            "p99_ms",
            "errors",
            "baseline_rps",
            "baseline_p50_ms",
            "baseline_p99_ms",
            "ratio",
            "ratio_spread",
            "p99_ratio",
            "p99_ratio_spread",
        )
    }
    fanout_runs = _fanout_runs(backends)
    results["fanout_runs"] = fanout_runs
    local = [r for r in fanout_runs if r["backend"] == primary and "ratio" in r]
    if local:
        run = local[0]
        results["fanout"] = {
            key: run.get(key)
            for key in (
                "backend",
                "subscribers",
                "rounds",
                "events",
                "p50_ms",
                "p99_ms",
                "missed",
                "duplicated",
                "errors",
                "baseline_p50_ms",
                "baseline_p99_ms",
                "ratio",
                "ratio_spread",
            )
        }
        results["memory"] = {
            key: run.get(key)
            for key in (
                "backend",
                "subscribers",
                "kb_per_subscriber",
                "kb_spread",
                "baseline_kb_per_subscriber",
                "kb_ratio",
                "kb_ratio_spread",
            )
        }
    cost = backends[primary]["query_cost"]
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


# --- targets -----------------------------------------------------------------------------


def _verdict(value: float | None, ok: bool) -> str:
    return "n/a" if value is None else "met" if ok else "NOT met"


def _span(s: dict[str, Any] | None) -> str:
    if not s or s.get("median") is None:
        return "-"
    return f"{_cell(s['min'])}..{_cell(s['max'])}"


def _target(
    what: str, value: float | None, ok: bool, spread_of: dict[str, Any] | None, rounds: Any
) -> dict[str, Any]:
    return {
        "target": what,
        "value": value,
        "spread": _span(spread_of),
        "rounds": rounds,
        "verdict": _verdict(value, ok),
    }


def _targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    for run in results.get("fanout_runs", []):
        if run["label"] != "1 process" or "ratio" not in run:
            continue
        ratio = run["ratio"]
        clean = run["missed"] == 0 and run["duplicated"] == 0 and run["errors"] == 0
        targets.append(
            _target(
                f"fanout p99 <= {FANOUT_RATIO_MAX}x the raw broadcast, {run['subscribers']:,} "
                f"subscribers ({run['backend']}); missed {run['missed']}, "
                f"duplicated {run['duplicated']}",
                ratio,
                ratio is not None and ratio <= FANOUT_RATIO_MAX and clean,
                run.get("ratio_spread"),
                run["rounds"],
            )
        )
    for run in results.get("fanout_runs", []):
        if run.get("kb_per_subscriber") is None:
            continue
        kb, kb_ratio = run["kb_per_subscriber"], run.get("kb_ratio")
        targets.append(
            _target(
                f"memory <= {MEMORY_KB_MAX:g} KB per idle subscriber, {run['subscribers']:,} "
                f"subscribers ({run['backend']})",
                kb,
                kb is not None and kb <= MEMORY_KB_MAX,
                run.get("kb_spread"),
                (run.get("kb_spread") or {}).get("n"),
            )
        )
        targets.append(
            _target(
                f"memory <= {MEMORY_RATIO_MAX}x a raw WebSocket, {run['subscribers']:,} "
                f"subscribers ({run['backend']})",
                kb_ratio,
                kb_ratio is not None and kb_ratio <= MEMORY_RATIO_MAX,
                run.get("kb_ratio_spread"),
                (run.get("kb_ratio_spread") or {}).get("n"),
            )
        )
    headline = results["authorize"]["concurrency"]
    for run in results.get("authorize_runs", []):
        if run["concurrency"] != headline:
            continue
        ratio, p99 = run["ratio"], run["p99_ratio"]
        targets.append(
            _target(
                f"gate >= {AUTHORIZE_RATIO_MIN}x the naive endpoint's rps, concurrency "
                f"{run['concurrency']} ({run['backend']})",
                ratio,
                ratio is not None and ratio >= AUTHORIZE_RATIO_MIN and run["errors"] == 0,
                run["ratio_spread"],
                run["rounds"],
            )
        )
        targets.append(
            _target(
                f"gate p99 <= {AUTHORIZE_P99_RATIO_MAX}x the naive endpoint's, concurrency "
                f"{run['concurrency']} ({run['backend']})",
                p99,
                p99 is not None and p99 <= AUTHORIZE_P99_RATIO_MAX,
                run["p99_ratio_spread"],
                run["rounds"],
            )
        )
    for run in results.get("fanout_runs", []):
        if run["label"] != "2 processes + Redis":
            continue
        p99 = run["p99_ms"]
        clean = run["missed"] == 0 and run["duplicated"] == 0 and run["errors"] == 0
        targets.append(
            _target(
                f"gate response to a watcher on another process p99 < "
                f"{CROSS_PROCESS_P99_MAX_MS:g} ms, {run['subscribers']:,} watchers "
                f"({run['backend']} + Redis)",
                p99,
                p99 is not None
                and p99 < CROSS_PROCESS_P99_MAX_MS
                and clean
                and run["subscribers"] >= CROSS_PROCESS_WATCHERS,
                run["p99_spread"],
                run["rounds"],
            )
        )
    cost = results["query_cost"]
    for name, c in cost["by_backend"].items():
        equal = c["statements_first_5"] == c["statements_first_50"]
        targets.append(
            {
                "target": f"statements for pendingRequests first 5 = first 50 ({name})",
                "value": f"{c['statements_first_5']} vs {c['statements_first_50']}",
                "spread": "-",
                "rounds": 1,
                "verdict": "met" if equal else "NOT met",
            }
        )
    for backend, scope in (results.get("approver_scope") or {}).items():
        worst = scope["contoso-approver-dev"]
        ratio = worst.get("ratio")
        targets.append(
            _target(
                f"approver pendingRequests(first: 50), worst case (50 of "
                f"{scope['requests']:,} in scope) <= {APPROVER_RATIO_MAX:g}x the admin's "
                f"({backend})",
                ratio,
                ratio is not None and ratio <= APPROVER_RATIO_MAX,
                None,
                scope.get("repeats"),
            )
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


def _with_span(median: Any, s: dict[str, Any] | None) -> str:
    return f"{_cell(median)} ({_span(s)})" if s and s.get("n") else _cell(median)


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


def _growth(results: dict[str, Any]) -> list[list[Any]]:
    """How cost grows from the smallest to the largest single-process fanout."""
    runs = [r for r in results.get("fanout_runs", []) if r["label"] == "1 process"]
    rows: list[list[Any]] = []
    for r in runs:
        subs = r["subscribers"]
        per_delivery = (
            None
            if r["event_complete_p50_ms"] is None
            else round(1000 * r["event_complete_p50_ms"] / subs, 2)
        )
        base_per_delivery = (
            None
            if r.get("baseline_event_complete_p50_ms") is None
            else round(1000 * r["baseline_event_complete_p50_ms"] / subs, 2)
        )
        rows.append(
            [
                r["backend"],
                subs,
                r["p50_ms"],
                r["p99_ms"],
                r.get("baseline_p99_ms"),
                r["event_complete_p50_ms"],
                _pair(per_delivery, base_per_delivery),
                _pair(r.get("kb_per_subscriber"), r.get("baseline_kb_per_subscriber")),
                _pair(r["server_cpu_pct"], r.get("baseline_server_cpu_pct")),
            ]
        )
    if len(runs) >= 2:
        small, large = runs[0], runs[-1]
        factor = large["subscribers"] / small["subscribers"]

        def grow(key: str) -> str:
            a, b = small.get(key), large.get(key)
            return "-" if not a or b is None else f"{b / a:.1f}x"

        rows.append(
            [
                "growth",
                f"{factor:g}x",
                grow("p50_ms"),
                grow("p99_ms"),
                grow("baseline_p99_ms"),
                grow("event_complete_p50_ms"),
                "-",
                "-",
                "-",
            ]
        )
    return rows


def render(results: dict[str, Any], *, markdown: bool = False) -> str:
    meta = results["meta"]
    m = meta["machine"]
    heading = "### " if markdown else "== "
    code = meta.get("code", {})
    parts = [
        f"Lockbox benchmark ({meta['mode']}, {meta['sizes'].get('rounds', 1)} rounds, "
        f"{meta.get('started_at', '?')}, {meta.get('elapsed_s', '?')} s, commit "
        f"{str(code.get('commit') or '?')[:8]}"
        f"{' with uncommitted server changes' if code.get('uncommitted_server_changes') else ''}"
        f"): {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}; servers on CPUs "
        f"{meta['server_cpus']}, load generator on CPUs {meta['loadgen_cpus']}; load average "
        f"at start {m['loadavg_at_start']}",
    ]
    if "authorize_runs" not in results:
        return parts[0] + "\n(no results)"
    parts.append(
        f"\n{heading}targets: each value the median of the rounds (per-round ratios), with min..max"
    )
    parts.append(
        table(
            ["target", "median", "spread (min..max)", "rounds", "verdict"],
            [
                [t["target"], t["value"], t["spread"], t["rounds"], t["verdict"]]
                for t in results["targets"]
            ],
            markdown,
        )
    )
    growth = _growth(results)
    if growth:
        parts.append(f"\n{heading}fanout: how cost grows with the number of watchers (medians)")
        parts.append(
            table(
                [
                    "backend",
                    "subscribers",
                    "p50 ms",
                    "p99 ms",
                    "raw p99 ms",
                    "event to all, ms",
                    "µs per delivery (raw)",
                    "KB/subscriber (raw)",
                    "server cpu% (raw)",
                ],
                growth,
                markdown,
            )
        )
    parts.append(f"\n{heading}authorize: closed loop, one engineer, one approved request")
    parts.append(
        table(
            [
                "backend",
                "conc",
                "rps",
                "p99 ms",
                "naive rps",
                "naive p99 ms",
                "ratio",
                "p99 x",
                "srv cpu% (naive)",
                "cli cpu% max",
                "errors",
            ],
            [
                [
                    r["backend"],
                    r["concurrency"],
                    _with_span(r["rps"], r["rps_spread"]),
                    _with_span(r["p99_ms"], r["p99_spread"]),
                    _with_span(r["baseline_rps"], r["baseline_rps_spread"]),
                    _with_span(r["baseline_p99_ms"], r["baseline_p99_spread"]),
                    _with_span(r["ratio"], r["ratio_spread"]),
                    _with_span(r["p99_ratio"], r["p99_ratio_spread"]),
                    _pair(r["server_cpu_pct"], r["baseline_server_cpu_pct"]),
                    r["client_cpu_pct_max"],
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
                    "raw p99 ms",
                    "ratio",
                    "missed",
                    "dup",
                    "srv cpu% (raw)",
                    "cli cpu% max (raw)",
                ],
                [
                    [
                        r["backend"],
                        r["label"],
                        r["subscribers"],
                        r["events"],
                        r["p50_ms"],
                        _with_span(r["p99_ms"], r["p99_spread"]),
                        _with_span(r.get("baseline_p99_ms"), r.get("baseline_p99_spread")),
                        _with_span(r.get("ratio"), r.get("ratio_spread")),
                        r["missed"],
                        r["duplicated"],
                        _pair(r["server_cpu_pct"], r.get("baseline_server_cpu_pct")),
                        _pair(r["client_cpu_pct_max"], r.get("baseline_client_cpu_pct_max")),
                    ]
                    for r in results["fanout_runs"]
                ],
                markdown,
            )
        )
        memory_rows = [r for r in results["fanout_runs"] if r.get("kb_per_subscriber") is not None]
        if memory_rows:
            parts.append(
                f"\n{heading}memory: server RSS growth per idle subscriber (VmRSS), "
                "one round per connection step"
            )
            parts.append(
                table(
                    ["backend", "subscribers", "KB/subscriber", "raw WebSocket KB", "ratio"],
                    [
                        [
                            r["backend"],
                            r["subscribers"],
                            _with_span(r["kb_per_subscriber"], r.get("kb_spread")),
                            _with_span(
                                r.get("baseline_kb_per_subscriber"), r.get("baseline_kb_spread")
                            ),
                            _with_span(r.get("kb_ratio"), r.get("kb_ratio_spread")),
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
            f"\n{heading}approver scope: pendingRequests(first: 50), median of "
            f"{next(iter(scoped.values())).get('repeats', 5)}, in-process"
        )
        rows = []
        for name, s in scoped.items():
            for caller, who in (
                ("contoso-admin", "all"),
                ("contoso-approver-prod", "all but the last 50"),
                ("contoso-approver-dev", "the last 50 only"),
            ):
                before = (s.get("before_analyze") or {}).get(caller, {})
                rows.append(
                    [
                        name,
                        s["requests"],
                        caller,
                        who,
                        f"{_cell(s[caller]['median_ms'])} "
                        f"({_cell(s[caller].get('min_ms'))}..{_cell(s[caller].get('max_ms'))})",
                        s[caller].get("ratio"),
                        before.get("ratio") if before else "-",
                    ]
                )
        parts.append(
            table(
                [
                    "backend",
                    "requests",
                    "caller",
                    "sees",
                    "ms (min..max)",
                    "vs admin",
                    "before ANALYZE",
                ],
                rows,
                markdown,
            )
        )
    return "\n".join(parts)


def update_doc(doc: Path, results: dict[str, Any]) -> None:
    """Replace the text between the bench:results markers with the tables."""
    text = doc.read_text()
    start, end = text.find(DOC_START), text.find(DOC_END)
    if start < 0 or end < start:
        raise SystemExit(f"{doc}: no {DOC_START} ... {DOC_END} section to fill")
    body = render(results, markdown=True)
    doc.write_text(text[: start + len(DOC_START)] + "\n\n" + body + "\n\n" + text[end:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument(
        "path", nargs="?", type=Path, default=Path(__file__).parent / "results.json"
    )
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--update-doc",
        type=Path,
        metavar="BENCHMARKS.md",
        help="write the tables into this file, between its bench:results markers",
    )
    args = parser.parse_args(argv)
    results = json.loads(args.path.read_text())
    summarise(results, int(results["meta"]["sizes"].get("headline_concurrency", 16)))
    if args.update_doc is not None:
        update_doc(args.update_doc, results)
        print(f"wrote the tables of {args.path} into {args.update_doc}")
        return
    print(render(results, markdown=args.markdown))


if __name__ == "__main__":
    main()
