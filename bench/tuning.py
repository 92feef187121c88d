"""Benchmark 7: worker tuning, measured against each other in one run (issue 11, step 4).

Each variant is the product worker with some DUNNING_WORKER_* settings, on the same
servers: it sets up its own customers (half suspended, as in payment_storm), then takes a
storm of 2 payments per customer; the row's rate is the storm's, done when every payment
is applied and every resumption recorded. The raw baseline (update-with-start to trivial
entity workflows) runs once, first, for the ratio. Variants run in the order given, so
run it twice with the order reversed to see drift (``--reverse``).

    .venv/bin/python -m bench.tuning --n 500 [--variants default,pollers10,...] [--reverse]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from bench.baseline import update_entities
from bench.common import (
    Result,
    baseline_worker,
    contexts,
    fresh_database,
    print_table,
    product_worker,
    servers,
)
from bench.payment_storm import drained, setup, storm

# name -> the settings it changes (environment variables of the worker process).
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "wft-pollers-2": {"DUNNING_WORKER_WORKFLOW_TASK_POLLERS": "2"},
    "wft-pollers-10": {"DUNNING_WORKER_WORKFLOW_TASK_POLLERS": "10"},
    "wft-slots-10": {"DUNNING_WORKER_WORKFLOW_TASK_SLOTS": "10"},
    "activity-pollers-2": {"DUNNING_WORKER_ACTIVITY_TASK_POLLERS": "2"},
    "activity-slots-20": {"DUNNING_WORKER_ACTIVITY_SLOTS": "20"},
    "cache-2000": {"DUNNING_WORKER_CACHE_SIZE": "2000"},
    "cache-200": {"DUNNING_WORKER_CACHE_SIZE": "200"},
    "no-sandbox": {"DUNNING_WORKER_SANDBOX": "false"},
}


@contextmanager
def environment(changes: dict[str, str]) -> Iterator[None]:
    """The worker process inherits this process's environment (bench.common)."""
    before = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def main(n: int, names: list[str], concurrency: int) -> None:
    m = max(2, n // 2)
    rows: list[Result] = []
    async with servers() as srv:
        tq = f"bench-{uuid.uuid4().hex[:8]}"
        async with baseline_worker(srv, f"base-{tq}") as bworker:
            seconds, lats = await update_entities(srv.client, f"base-{tq}", 2 * m, m,
                                                  concurrency)
            baseline = Result("baseline: update-with-start", 2 * m, seconds, lats,
                              bworker.peak_rss, note=f"{m} entity workflows")
        for i, name in enumerate(names):
            rows.append(await variant(srv, name, f"{tq}-{i}", m, concurrency))
            print(f"{name}: {rows[-1].rate:.1f} payments/s", flush=True)
    print_table([baseline, *rows], baseline,
                f"tuning: storm of {2 * m} payments per variant, {concurrency} concurrent "
                "callers, one worker process")


async def variant(srv, name: str, tq: str, m: int, concurrency: int) -> Result:
    """One variant on a database and task queue of its own."""
    with fresh_database(srv.admin_url, "tuning") as url, environment(VARIANTS[name]):
        settings = srv.settings(url, tq)
        async with contexts(settings, srv.client, concurrency) as ctxs, \
                product_worker(srv, settings) as worker:
            t = time.monotonic()
            strict, lenient, _ = await setup(ctxs, tq[-6:], m, 0)
            took = time.monotonic() - t
            count, seconds, lats = await storm(ctxs, strict, lenient)
            await drained(ctxs[0])
            changed = " ".join(f"{k[15:].lower()}={v}" for k, v in VARIANTS[name].items())
            return Result(name, count, seconds, lats, worker.peak_rss,
                          note=f"{changed or 'SDK defaults'}; setup {took:.0f}s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--reverse", action="store_true")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    asyncio.run(main(args.n, chosen[::-1] if args.reverse else chosen, args.concurrency))
