"""Benchmark 4: many open invoice workflows sleeping on timers (due a year ahead).

Issues up to --n invoices (2 per customer) through the product within --budget seconds,
waits for their invoice_issued mails, then reports worker RSS with the default workflow
cache, database bytes per invoice, and the time to answer InvoiceWorkflow.status (query;
most workflows are evicted from the cache, so a query replays) and the `dunning status`
document (operations.status, and the real CLI). Baseline: as many SleeperWorkflows (a
timer and a query), worker RSS and query time.

    .venv/bin/python -m bench.long_lived --n 20000 [--budget 600]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from temporalio.service import RPCError

from bench.baseline import SleeperWorkflow, start_sleeper
from bench.billing_cycle import invoice_requests, setup_customers, wait_for_mail
from bench.common import (
    ADMIN,
    Result,
    baseline_worker,
    contexts,
    fresh_database,
    print_table,
    product_worker,
    run_concurrently,
    scalar,
    servers,
)
from domain.ids import invoice_workflow_id
from operations.invoices import issue_invoice
from operations.status import customer_status
from workflows.collection.invoice import InvoiceWorkflow

SAMPLES = 200


def temporal_server_rss() -> int:
    return sum(p.memory_info().rss for p in psutil.Process().children(recursive=True)
               if p.name() == "temporal")


async def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        began = time.monotonic()
        await fn(item)
        out.append(time.monotonic() - began)
    return out


async def idle(worker, limit: float = 900) -> None:
    """The worker runs behind the starts: wait until its process tree is idle (< 5% CPU)."""
    deadline = time.monotonic() + limit
    procs = [psutil.Process(worker.proc.pid)]
    procs += procs[0].children(recursive=True)
    while time.monotonic() < deadline:
        for p in procs:
            p.cpu_percent(None)
        await asyncio.sleep(2)
        if sum(p.cpu_percent(None) for p in procs) < 5:
            return


async def query_times(client, ids, query) -> tuple[list[float], int]:
    lats, failed = [], 0
    for wid in ids:
        began = time.monotonic()
        try:
            await client.get_workflow_handle(wid).query(query,
                                                        rpc_timeout=timedelta(seconds=10))
            lats.append(time.monotonic() - began)
        except RPCError:
            failed += 1
    return lats, failed


async def baseline(srv, n: int, budget: float, concurrency: int) -> Result:
    tq = f"base-{uuid.uuid4().hex[:8]}"
    async with baseline_worker(srv, tq) as worker:
        started: list[str] = []
        deadline = time.monotonic() + budget
        t0 = time.monotonic()

        async def start(_: object, i: int) -> None:
            if time.monotonic() < deadline:
                started.append(await start_sleeper(srv.client, tq, i))

        await run_concurrently(range(n), [None] * concurrency, start)
        seconds = time.monotonic() - t0
        await idle(worker)
        picks = random.sample(started, min(SAMPLES, len(started)))
        lats, failed = await query_times(srv.client, picks, SleeperWorkflow.status)
        return Result("baseline: SleeperWorkflow", len(started), seconds, lats,
                      worker.peak_rss, note=f"query ({failed} timed out); worker RSS at end "
                                            f"{worker.rss() / 2**20:.0f} MB")


async def main(n: int, budget: float, concurrency: int) -> None:
    async with servers() as srv:
        rows = [await baseline(srv, n, budget, concurrency)]
        base_server_rss = temporal_server_rss()
        tq = f"bench-{uuid.uuid4().hex[:8]}"
        with fresh_database(srv.admin_url, "longlived") as url:
            settings = srv.settings(url, tq)
            async with contexts(settings, srv.client, concurrency) as ctxs, \
                    product_worker(srv, settings) as worker:
                customers = await setup_customers(ctxs, f"l{tq[-4:]}-", n // 2)
                requests = invoice_requests(customers, n, datetime.now(UTC) + timedelta(days=365))
                issued: list[tuple[str, str]] = []
                deadline = time.monotonic() + budget
                t0 = time.monotonic()

                async def one(ctx, req) -> None:
                    if time.monotonic() < deadline:
                        await issue_invoice(ctx, req, ADMIN)
                        issued.append((req.customer_id, req.number))

                await run_concurrently(requests, ctxs, one)
                await wait_for_mail(srv, ctxs[0], len(issued), 0)
                seconds = time.monotonic() - t0
                await idle(worker)
                rss_end = worker.rss()
                conn = ctxs[0].conn
                db_bytes = await scalar(conn, "SELECT sum(pg_total_relation_size(c.oid))"
                                        " FROM pg_class c JOIN pg_namespace s"
                                        " ON s.oid = c.relnamespace"
                                        " WHERE s.nspname = 'public' AND c.relkind = 'r'")
                invoices = await scalar(conn, "SELECT count(*) FROM invoices")
                running = (await srv.client.count_workflows(
                    f"TaskQueue = '{tq}' AND ExecutionStatus = 'Running'")).count
                picks = random.sample(issued, min(SAMPLES, len(issued)))
                q_lats, q_failed = await query_times(
                    srv.client, [invoice_workflow_id(*k) for k in picks], InvoiceWorkflow.status)
                s_lats = await timed(lambda k: customer_status(ctxs[0], k[0], audit=None),
                                     picks)
                cli_lats = await asyncio.to_thread(cli_status, srv.env(settings),
                                                   [c for c, _ in picks[:10]])
                rows += [
                    Result("product: InvoiceWorkflow (issue)", len(issued), seconds, [],
                           worker.peak_rss,
                           note=f"{running} running; worker RSS at end {rss_end / 2**20:.0f}"
                                f" MB; DB {db_bytes / invoices:.0f} B/invoice"),
                    Result("  status query (replay)", len(q_lats), sum(q_lats), q_lats,
                           note=f"{q_failed} timed out"),
                    Result("  status document (operations)", len(s_lats), sum(s_lats), s_lats),
                    Result("  `dunning status --json` (CLI)", len(cli_lats), sum(cli_lats),
                           cli_lats, note="includes process start"),
                ]
                print(f"temporal dev server RSS: {base_server_rss / 2**20:.0f} MB after "
                      f"baseline, {temporal_server_rss() / 2**20:.0f} MB after product")
        print_table(rows, rows[0], f"long_lived: {n} requested, budget {budget:.0f}s "
                    "(target worker RSS < 400 MB)")


def cli_status(env: dict[str, str], customers: list[str]) -> list[float]:
    exe = str(Path(sys.executable).parent / "dunning")
    out = []
    for cid in customers:
        began = time.monotonic()
        subprocess.run([exe, "status", cid, "--json"], env=env, check=True,
                       capture_output=True)
        out.append(time.monotonic() - began)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--budget", type=float, default=600.0,
                        help="seconds of issuing per side before stopping (time box)")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.budget, args.concurrency))
