"""Benchmark 3: N notifications through the outbox (outbox.record + outbox.deliver with the
pooled SmtpMailer) vs. raw aiosmtplib sending one pre-built message N times over one
connection. No Temporal here: this isolates rendering + outbox + SMTP (no worker; the peak
RSS column is the bench process itself).

    .venv/bin/python -m bench.mail --n 5000 [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

import aiosmtplib
import psutil

from activities.notifications import outbox
from activities.notifications.mailer import SmtpConfig, SmtpMailer
from activities.notifications.message import Sender
from activities.notifications.render import build_context
from bench.billing_cycle import setup_customers
from bench.common import (
    Result,
    contexts,
    fresh_database,
    print_table,
    run_concurrently,
    servers,
)
from db.pool import open_pool

SENDER = Sender(address="billing@bench.test", name="Bench Billing", reply_to=None)


def draft(key: str, customer: str) -> outbox.NotificationDraft:
    now = datetime.now(UTC)
    context = build_context(
        language="en", currency_code="USD", customer_id=customer,
        customer_name=f"Customer {customer}", company_name="Bench Billing",
        contact_email="billing@bench.test", invoice_number="INV-1", issued_at=now,
        overdue_at=now + timedelta(days=30), suspend_at=now + timedelta(days=32),
        new_charges=2000, amount_due=2000, remaining=2000)
    return outbox.NotificationDraft(key=key, kind="invoice_issued", customer_id=customer,
                                    language="en", to_address=f"{customer}@example.com",
                                    sender=SENDER, context=context)


def rss() -> int:
    return psutil.Process().memory_info().rss


async def main(n: int, concurrency: int) -> None:
    async with servers() as srv:
        with fresh_database(srv.admin_url, "mail") as url:
            settings = srv.settings(url, "unused")
            async with contexts(settings, srv.client, concurrency) as ctxs:
                customer = (await setup_customers(ctxs, "m-", 1))[0]
                pool = open_pool(url, max_size=concurrency + 2)
                await pool.open(wait=True)
                mailer = SmtpMailer(SmtpConfig.from_settings(settings))
                rows: list[Result] = []

                # Baseline: one message built once, sent N times over one connection.
                message = outbox.compose(await outbox.record(ctxs[0].conn,
                                                             draft("prebuilt", customer)))
                smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=srv.smtp_port)
                await smtp.connect()
                lats: list[float] = []
                t0 = time.monotonic()
                for _ in range(n):
                    began = time.monotonic()
                    await smtp.send_message(message)
                    lats.append(time.monotonic() - began)
                baseline = Result("baseline: raw aiosmtplib, 1 conn", n,
                                  time.monotonic() - t0, lats, rss())
                await smtp.quit()
                rows.append(baseline)

                for label, width in (("sequential", 1), (f"{concurrency} concurrent", concurrency)):
                    lats = []

                    async def one(ctx, i: int, label: str = label, lats: list = lats) -> None:
                        began = time.monotonic()
                        key = f"bench:{label}:{i}"
                        await outbox.record(ctx.conn, draft(key, customer))
                        result = await outbox.deliver(pool, key, mailer)
                        assert result.status == "sent", result
                        lats.append(time.monotonic() - began)

                    before = srv.sink_count
                    t0 = time.monotonic()
                    await run_concurrently(range(n), ctxs[:width], one)
                    seconds = time.monotonic() - t0
                    await asyncio.sleep(0.2)
                    assert srv.sink_count - before == n, (srv.sink_count, before)
                    rows.append(Result(f"outbox record+deliver, {label}", n, seconds, lats,
                                       rss(), note="render + 3 SQL round trips + SMTP"))
                await mailer.close()
                await pool.close()
        print_table(rows, baseline, f"mail: {n} notifications (target ratio >= 0.8)",
                    rss_where="the bench process itself (no worker involved)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.concurrency))
