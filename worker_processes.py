"""Run the worker in K operating-system processes (`dunning worker --processes K`).

One Python process runs workflow code and activities on one core (the GIL); K processes
polling the same task queue use K cores. Each process is a complete worker
(``worker.main``: its own Temporal client, connection pool and SMTP mailer), so settings
come from the environment exactly as for a single worker. SIGTERM/SIGINT are forwarded to
every process; when one process ends on its own, the others are stopped too and the exit
status is that process's, so a supervisor (systemd, Kubernetes) restarts the whole set.

Metrics: every process counts its own events (mail sent, suspensions) and runs its own
Temporal SDK runtime, so each serves its own `/metrics`: with ``--metrics-port N``,
process i listens on N + i (scrape N .. N+K-1). Only one process serving would hide what
the other K-1 did.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from multiprocessing.connection import wait
from types import FrameType

import worker


def metrics_ports(base: int | None, k: int) -> list[int | None]:
    """The metrics port of each of the K processes: base, base + 1, ... (or none)."""
    if base is None:
        return [None] * k
    if base + k - 1 > 65535:
        raise ValueError(f"--metrics-port {base} with {k} processes goes past port 65535")
    return [base + i for i in range(k)]


def run_worker_processes(k: int, metrics_port: int | None = None) -> None:
    if k < 1:
        raise ValueError("--processes must be at least 1")
    ports = metrics_ports(metrics_port, k)
    if k == 1:
        worker.main(metrics_port=ports[0])
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=worker.main, name=f"dunning-worker-{i}",
                         kwargs={"metrics_port": port})
             for i, port in enumerate(ports)]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: FrameType | None) -> None:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    first = wait([p.sentinel for p in procs])[0]
    ended = next(p for p in procs if p.sentinel == first)
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.join()
    if ended.exitcode:
        sys.exit(ended.exitcode if ended.exitcode > 0 else 1)
