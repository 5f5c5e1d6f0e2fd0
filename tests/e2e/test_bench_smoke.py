"""The benchmark harness still runs end to end, at toy sizes.

Benchmarks are not tests: nothing here asserts a timing. This only proves that
`python -m bench` starts real servers, drives them from its load generator,
loses no event and writes every key the benchmark issue asks for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

HEADLINE_KEYS = {
    "authorize": {"backend", "concurrency", "rps", "p50_ms", "p99_ms", "baseline_rps", "ratio"},
    "fanout": {
        "subscribers",
        "events",
        "p50_ms",
        "p99_ms",
        "missed",
        "duplicated",
        "baseline_p99_ms",
        "ratio",
    },
    "memory": {"subscribers", "kb_per_subscriber"},
    "query_cost": {"statements_first_5", "statements_first_50"},
}


def run_tiny_bench(output: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--tiny",
            "--backends",
            "sqlite",
            "--output",
            str(output),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results: dict[str, Any] = json.loads(output.read_text())
    return results


def test_tiny_bench_run_writes_every_headline_key_and_loses_no_event(tmp_path: Path) -> None:
    results = run_tiny_bench(tmp_path / "results.json")

    for section, keys in HEADLINE_KEYS.items():
        assert keys <= results[section].keys(), (section, results.get(section))

    assert results["authorize"]["backend"] == "sqlite"
    assert all(run["errors"] == 0 for run in results["authorize_runs"]), results["authorize_runs"]
    assert all(run["baseline_errors"] == 0 for run in results["authorize_runs"])

    fanout = results["fanout"]
    assert fanout["events"] == results["meta"]["sizes"]["fanout_events"]
    assert fanout["missed"] == 0
    assert fanout["duplicated"] == 0
    assert fanout["errors"] == 0
    for run in results["fanout_runs"]:
        assert run["connected"] == run["subscribers"], run
        assert run["missed"] == run["duplicated"] == 0, run
        assert run["baseline_missed"] == run["baseline_duplicated"] == 0, run

    assert results["query_cost"]["pending_requests"] >= 50
    assert {t["verdict"] for t in results["targets"]} <= {"met", "NOT met", "n/a"}
