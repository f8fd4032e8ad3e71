"""Benchmarks: `python -m bench.run_all` runs every phase and writes docs/benchmarks.md."""
