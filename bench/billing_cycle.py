"""Benchmark 1: N invoices for N/2 customers, issued through operations.invoices.issue_invoice.

Done when every invoice_issued notification is `sent` in the outbox and every message is
in the sink. Baseline: N workflows that each run one local activity doing nothing.

    .venv/bin/python -m bench.billing_cycle --n 5000 [--processes 2] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.baseline import start_noops
from bench.common import (
    ADMIN,
    Result,
    Servers,
    baseline_worker,
    contexts,
    fresh_database,
    print_table,
    product_worker,
    run_concurrently,
    scalar,
    servers,
    until,
)
from db.customers import NewCustomer
from operations.classes import ClassChange, set_class
from operations.context import Context
from operations.customers import add
from operations.invoices import IssueRequest, issue_invoice


async def setup_customers(ctxs: list[Context], prefix: str, count: int, *,
                          class_name: str = "Bench", grace: str = "0d") -> list[str]:
    await set_class(ctxs[0], ClassChange(
        name=class_name, currency="USD", threshold="0.00", reminders="3d", grace=grace,
        warning="1d", from_address="billing@bench.test", from_name="Bench"), ADMIN)
    ids = [f"{prefix}{i:06d}" for i in range(count)]

    async def one(ctx: Context, cid: str) -> None:
        await add(ctx, NewCustomer(id=cid, name=f"Customer {cid}", email=f"{cid}@example.com",
                                   class_name=class_name), ADMIN)

    await run_concurrently(ids, ctxs, one)
    return ids


async def issue_many(ctxs: list[Context], requests: list[IssueRequest]
                     ) -> dict[tuple[str, str], datetime]:
    """Issue every request; returns the submit instant of each (customer, number)."""
    submitted: dict[tuple[str, str], datetime] = {}

    async def one(ctx: Context, req: IssueRequest) -> None:
        submitted[(req.customer_id, req.number)] = datetime.now(UTC)
        await issue_invoice(ctx, req, ADMIN)

    await run_concurrently(requests, ctxs, one)
    return submitted


def invoice_requests(customers: list[str], n: int, due: datetime) -> list[IssueRequest]:
    base = datetime.now(UTC) - timedelta(hours=1)
    return [IssueRequest(customer_id=customers[i % len(customers)], number=f"INV-{i:06d}",
                         charges="20.00", issued=(base + timedelta(milliseconds=i)).isoformat(),
                         due=due.isoformat()) for i in range(n)]


async def wait_for_mail(srv: Servers, ctx: Context, n: int, sink_before: int,
                        limit: float = 1800) -> float:
    async def done() -> bool:
        sent = await scalar(ctx.conn, "SELECT count(*) FROM notifications"
                            " WHERE kind = 'invoice_issued' AND status = 'sent'")
        return sent >= n and srv.sink_count - sink_before >= n

    return await until(done, limit, "invoice_issued mails")


async def run_product(srv: Servers, n: int, processes: int, concurrency: int,
                      due_in: timedelta = timedelta(days=60)) -> Result:
    tq = f"bench-{uuid.uuid4().hex[:8]}"
    with fresh_database(srv.admin_url, "billing") as url:
        settings = srv.settings(url, tq)
        async with contexts(settings, srv.client, concurrency) as ctxs, \
                product_worker(srv, settings, processes) as worker:
            customers = await setup_customers(ctxs, f"c{tq[-4:]}-", max(1, n // 2))
            requests = invoice_requests(customers, n, datetime.now(UTC) + due_in)
            sink_before = srv.sink_count
            t0 = time.monotonic()
            submitted = await issue_many(ctxs, requests)
            t1 = await wait_for_mail(srv, ctxs[0], n, sink_before)
            cur = await ctxs[0].conn.execute(
                "SELECT customer_id, invoice_number, sent_at FROM notifications"
                " WHERE kind = 'invoice_issued'")
            latencies = [(sent - submitted[(c, num)]).total_seconds()
                         for c, num, sent in await cur.fetchall()]
            return Result(f"product, {processes} worker process(es)", n, t1 - t0, latencies,
                          worker.peak_rss, note="issue -> mail sent (outbox sent_at)")


async def run_baseline(srv: Servers, n: int, concurrency: int) -> Result:
    tq = f"base-{uuid.uuid4().hex[:8]}"
    async with baseline_worker(srv, tq) as worker:
        seconds, latencies = await start_noops(srv.client, tq, n, concurrency)
        return Result("baseline: workflow + 1 local act.", n, seconds, latencies,
                      worker.peak_rss, note="start -> close")


async def main(n: int, processes: list[int], concurrency: int) -> None:
    async with servers() as srv:
        baseline = await run_baseline(srv, n, concurrency)
        rows = [baseline]
        for k in processes:
            rows.append(await run_product(srv, n, k, concurrency))
        print_table(rows, baseline, f"billing_cycle: {n} invoices, {max(1, n // 2)} customers, "
                    f"{concurrency} concurrent callers (target ratio >= 0.7)")


def cli(default_processes: tuple[int, ...] = (1,)) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--processes", type=int, nargs="+", default=list(default_processes),
                        help="worker processes; several values run one product pass each")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.processes, args.concurrency))


if __name__ == "__main__":
    cli()
