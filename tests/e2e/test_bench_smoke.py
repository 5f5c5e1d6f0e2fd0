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
    "authorize": {
        "backend",
        "concurrency",
        "rounds",
        "rps",
        "p50_ms",
        "p99_ms",
        "baseline_rps",
        "ratio",
        "ratio_spread",
        "p99_ratio",
    },
    "fanout": {
        "rounds",
        "ratio_spread",
        "subscribers",
        "events",
        "p50_ms",
        "p99_ms",
        "missed",
        "duplicated",
        "baseline_p99_ms",
        "ratio",
    },
    "memory": {"subscribers", "kb_per_subscriber", "kb_spread", "kb_ratio"},
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
    rounds = results["meta"]["sizes"]["rounds"]
    assert rounds >= 5
    assert fanout["rounds"] == rounds
    assert fanout["events"] == rounds * results["meta"]["sizes"]["fanouts"][0][1]
    assert fanout["missed"] == 0
    assert fanout["duplicated"] == 0
    assert fanout["errors"] == 0
    assert fanout["ratio_spread"]["n"] == rounds
    for run in results["fanout_runs"]:
        assert run["connected"] == run["subscribers"], run
        assert run["missed"] == run["duplicated"] == 0, run
        assert run["baseline_missed"] == run["baseline_duplicated"] == 0, run
    for run in results["authorize_runs"]:
        assert run["rounds"] == rounds
        assert run["ratio_spread"]["n"] == rounds
        assert run["ratio_spread"]["min"] <= run["ratio"] <= run["ratio_spread"]["max"]

    assert results["query_cost"]["pending_requests"] >= 50
    assert {t["verdict"] for t in results["targets"]} <= {"met", "NOT met", "n/a"}


def test_a_client_bound_run_fails_loudly_and_writes_nothing(tmp_path: Path) -> None:
    """With the client-CPU ceiling at 0 % every measured phase trips it."""
    output = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--tiny",
            "--backends",
            "sqlite",
            "--client-cpu-limit",
            "0",
            "--output",
            str(output),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 3, done.stderr[-3000:]
    assert "the client, not the server, was the bottleneck" in done.stderr
    assert not output.exists()
