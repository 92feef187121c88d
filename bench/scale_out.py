"""Benchmark 5: benchmark 1 (billing_cycle) with 1 and 2 worker processes, same server.

    .venv/bin/python -m bench.scale_out --n 5000 [--processes 1 2]
"""

from __future__ import annotations

from bench.billing_cycle import cli

if __name__ == "__main__":
    cli(default_processes=(1, 2))
