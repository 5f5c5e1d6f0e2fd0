"""The Lockbox benchmark harness: `python -m bench` (see BENCHMARKS.md)."""
