"""Benchmarks, run by hand (see docs/performance.md); never collected by pytest."""
