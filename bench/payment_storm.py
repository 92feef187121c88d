"""Benchmark 2: N payments by update-with-start (operations.payments.post_payment).

Setup (through the product): N/2 customers with one overdue `collect` invoice of 20.00;
half of them are in a class without grace and are suspended. The storm posts two payments
of 10.00 per customer; it is done when every payment is applied and every due resumption is
in service_events. Baseline: N update-with-start calls to N/2 trivial entity workflows.
Then a paced run: --paced suspended customers each pay in full at --rate payments/s;
latency = submit -> the caller has `accepted` (the service state is read right after).

    .venv/bin/python -m bench.payment_storm --n 5000 [--paced 400 --rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.baseline import update_entities
from bench.billing_cycle import issue_many, setup_customers
from bench.common import (
    Result,
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
from operations.context import Context
from operations.invoices import IssueRequest
from operations.payments import PaymentRequest, post_payment


def overdue_invoices(customers: list[str]) -> list[IssueRequest]:
    now = datetime.now(UTC)
    return [IssueRequest(customer_id=c, number="INV-1", charges="20.00",
                         issued=(now - timedelta(days=10)).isoformat(),
                         due=(now - timedelta(days=2)).isoformat()) for c in customers]


async def setup(ctxs: list[Context], prefix: str, m: int, paced: int
                ) -> tuple[list[str], list[str], list[str]]:
    strict = await setup_customers(ctxs, f"{prefix}s-", m // 2, class_name="Strict")
    lenient = await setup_customers(ctxs, f"{prefix}l-", m - m // 2, class_name="Lenient",
                                    grace="60d")
    pacers = await setup_customers(ctxs, f"{prefix}p-", paced, class_name="Strict")
    everyone = strict + lenient + pacers
    await issue_many(ctxs, overdue_invoices(everyone))
    suspended = len(strict) + len(pacers)
    # invoice_issued + overdue for each, service_suspended for the suspended ones.
    mails = 2 * len(everyone) + suspended

    async def settled() -> bool:
        got = await scalar(ctxs[0].conn,
                           "SELECT count(*) FROM customers WHERE service_state = 'suspended'")
        sent = await scalar(ctxs[0].conn,
                            "SELECT count(*) FROM notifications WHERE status = 'sent'")
        return got >= suspended and sent >= mails

    await until(settled, 1800, "suspensions and their mails", interval=1.0)
    return strict, lenient, pacers


def pay(customer: str, payment_id: str, amount: str) -> PaymentRequest:
    return PaymentRequest(processor="card", payment_id=payment_id, customer_id=customer,
                          amount=amount, currency="USD", received_at=None)


async def storm(ctxs: list[Context], strict: list[str], lenient: list[str]
                ) -> tuple[int, float, list[float]]:
    customers = strict + lenient
    payments = [pay(c, f"{c}-{k}", "10.00") for k in (1, 2) for c in customers]
    latencies: list[float] = []

    async def one(ctx: Context, request: PaymentRequest) -> None:
        began = time.monotonic()
        result = await post_payment(ctx, request, None)
        latencies.append(time.monotonic() - began)
        assert result["status"] == "accepted", result

    t0 = time.monotonic()
    await run_concurrently(payments, ctxs, one)

    async def done() -> bool:
        applied = await scalar(ctxs[0].conn,
                               "SELECT count(*) FROM payments WHERE status = 'applied'")
        resumed = await scalar(ctxs[0].conn,
                               "SELECT count(*) FROM service_events WHERE state = 'active'")
        return applied >= len(payments) and resumed >= len(strict)

    t1 = await until(done, 600, "payments applied and resumptions recorded", interval=0.05)
    return len(payments), t1 - t0, latencies


async def drained(ctx: Context, quiet: float = 3.0) -> float:
    """Wait until the storm's follow-ups (receipts, resumption mails) are all sent and no new
    notification appeared for `quiet` seconds; returns the seconds waited."""
    t0 = time.monotonic()
    last, stable_since = -1, time.monotonic()
    while True:
        total = await scalar(ctx.conn, "SELECT count(*) FROM notifications")
        unsent = await scalar(ctx.conn,
                              "SELECT count(*) FROM notifications WHERE status <> 'sent'")
        if total != last or unsent:
            last, stable_since = total, time.monotonic()
        elif time.monotonic() - stable_since >= quiet:
            return time.monotonic() - t0 - quiet
        await asyncio.sleep(0.5)


async def paced_run(ctxs: list[Context], pacers: list[str], rate: float
                    ) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    active = 0
    t0 = time.monotonic()

    async def one(i: int, customer: str) -> None:
        nonlocal active
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        began = time.monotonic()
        ctx = ctxs[i % len(ctxs)]
        result = await post_payment(ctx, pay(customer, f"{customer}-full", "20.00"), None)
        latencies.append(time.monotonic() - began)
        state = await scalar(ctx.conn, "SELECT service_state FROM customers WHERE id = %s",
                             customer)
        active += result["status"] == "accepted" and state == "active"

    await asyncio.gather(*(one(i, c) for i, c in enumerate(pacers)))
    return time.monotonic() - t0, latencies, active


async def main(n: int, paced: int, rate: float, concurrency: int) -> None:
    m = max(2, n // 2)
    async with servers() as srv:
        tq = f"bench-{uuid.uuid4().hex[:8]}"
        with fresh_database(srv.admin_url, "payments") as url:
            settings = srv.settings(url, tq)
            async with contexts(settings, srv.client, concurrency) as ctxs:
                async with product_worker(srv, settings) as worker:
                    t = time.monotonic()
                    strict, lenient, pacers = await setup(ctxs, tq[-4:], m, paced)
                    print(f"setup: {m + paced} customers, {len(strict) + len(pacers)} "
                          f"suspended, in {time.monotonic() - t:.0f}s", flush=True)
                async with baseline_worker(srv, f"base-{tq}") as bworker:
                    seconds, lats = await update_entities(srv.client, f"base-{tq}", 2 * m, m,
                                                          concurrency)
                    baseline = Result("baseline: update-with-start", 2 * m, seconds, lats,
                                      bworker.peak_rss, note=f"{m} entity workflows")
                async with product_worker(srv, settings) as worker:
                    count, seconds, lats = await storm(ctxs, strict, lenient)
                    product = Result("product: post_payment storm", count, seconds, lats,
                                     worker.peak_rss,
                                     note=f"{m} customers, {len(strict)} resumed")
                    drain = await drained(ctxs[0])
                    print(f"storm follow-ups drained {drain:.0f}s after the last payment "
                          "was applied", flush=True)
                    seconds, lats, active = await paced_run(ctxs, pacers, rate)
                    paced_row = Result(f"product: paced {rate:g}/s, resuming", len(pacers),
                                       seconds, lats, worker.peak_rss,
                                       note=f"submit->accepted; active at accept: "
                                            f"{active}/{len(pacers)}")
        print_table([baseline, product, paced_row], baseline,
                    f"payment_storm: {2 * m} payments, {concurrency} concurrent callers "
                    "(target ratio >= 0.5; paced p99 < 1 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--paced", type=int, default=400)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.paced, args.rate, args.concurrency))
