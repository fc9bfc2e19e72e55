"""Benchmarks: side-by-side measurements, never timed unit tests (see bench/README.md)."""
