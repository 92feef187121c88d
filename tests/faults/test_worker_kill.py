"""A `dunning worker` killed with SIGKILL in the middle of a billing cycle (200 invoices)
and of a payment storm (200 payments), then started again: everything is processed exactly
once, no notification key is sent twice, nothing is stuck."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import psycopg
import pytest

from operations.context import Context
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment
from settings import Settings
from tests.faults.conftest import add_customers, process_env, unique
from tests.support.faults import (
    check_invariants,
    check_nothing_stuck,
    count,
    eventually,
    kill_process,
    quiet,
    utc_now,
)
from tests.support.processes import dunning_worker
from tests.support.stack import ADMIN, Stack, stack_settings

CUSTOMERS, INVOICES_EACH = 50, 4  # 200 invoices, then 200 payments


@asynccontextmanager
async def operations(settings: Settings, client) -> AsyncIterator[Callable]:
    """Run operations concurrently, each on its own connection (like many API requests)."""
    limit = asyncio.Semaphore(20)

    async def run(fn: Callable[..., Awaitable], *args):
        async with limit:
            for attempt in range(30):  # a processor retries until it gets an answer
                try:
                    async with await psycopg.AsyncConnection.connect(
                            settings.database_url, autocommit=True) as conn:
                        return await fn(Context(settings, conn, client), *args)
                except Exception:
                    if attempt == 29:
                        raise
                    await asyncio.sleep(1)

    yield run


async def kill_when(worker, predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    await eventually(predicate, timeout=120, what=what, every=0.1)
    kill_process(worker)


@pytest.mark.slow
async def test_sigkill_during_billing_cycle_and_payment_storm(dev_client, dev_server,
                                                              database_url, smtp_sink,
                                                              tmp_path) -> None:
    settings = stack_settings(database_url, smtp_sink.host, smtp_sink.port)
    env = process_env(database_url, dev_server, smtp_sink.host, smtp_sink.port,
                      settings.task_queue)
    ids = [unique(f"c{i:02d}") for i in range(CUSTOMERS)]
    setup = Stack(env=None, client=dev_client, settings=settings,  # type: ignore[arg-type]
                  conn=await psycopg.AsyncConnection.connect(database_url, autocommit=True))
    await add_customers(setup, ids)
    now = utc_now()

    # --- billing cycle: 200 invoices, all overdue at once (overdue mail + suspension) ---
    async with operations(settings, dev_client) as run:
        with dunning_worker(env, tmp_path / "worker-1.log") as worker:
            issuing = asyncio.gather(*(
                run(issue_invoice, IssueRequest(
                    customer_id=c, number=f"INV-{n}", charges="10.00",
                    issued=(now - timedelta(days=40 - n)).isoformat(),
                    due=(now - timedelta(days=10 - n)).isoformat()), ADMIN)
                for c in ids for n in range(INVOICES_EACH)))
            await kill_when(worker, lambda: _sent_at_least(database_url, 60),
                            "the billing cycle to be under way")
        with dunning_worker(env, tmp_path / "worker-2.log"):
            # Issuing goes through the customer's workflow: the commands still waiting at
            # the kill get their answer once a worker is back (nothing is lost meanwhile).
            await issuing
            expected = CUSTOMERS * INVOICES_EACH * 2 + CUSTOMERS
            await eventually(lambda: _all_sent(database_url, expected), timeout=240,
                             what=f"{expected} mails of the billing cycle")
            assert await count(database_url, "SELECT count(*) FROM customers"
                               " WHERE service_state = 'suspended'") == CUSTOMERS
            # No second copy even for the mails in flight at the kill (they end `unknown`).
            await check_invariants(database_url, smtp_sink.messages)
            await check_nothing_stuck(dev_client, settings.task_queue, database_url)

        # --- payment storm: 200 payments that pay everything ---------------------------
        with dunning_worker(env, tmp_path / "worker-3.log") as worker:
            paying = asyncio.gather(*(
                run(post_payment, PaymentRequest(
                    processor="acme", payment_id=f"{c}-pay-{n}", customer_id=c,
                    amount="10.00", currency="USD", received_at=None), None)
                for n in range(INVOICES_EACH) for c in ids))
            await kill_when(worker, lambda: _payments_at_least(database_url, 50),
                            "the payment storm to be under way")
            await asyncio.sleep(2)
            with dunning_worker(env, tmp_path / "worker-4.log"):
                results = await paying
                assert {r["status"] for r in results} <= {"accepted", "duplicate"}
                expected += CUSTOMERS * INVOICES_EACH + CUSTOMERS  # receipts, resumptions
                await eventually(lambda: _all_sent(database_url, expected), timeout=240,
                                 what=f"{expected} mails after the storm")
                await eventually(lambda: _all_invoice_workflows_done(dev_client, settings),
                                 timeout=60, what="the invoice workflows to end")
                await check_nothing_stuck(dev_client, settings.task_queue, database_url)
    assert await count(database_url, "SELECT count(*) FROM payments") == CUSTOMERS * INVOICES_EACH
    assert await count(database_url, "SELECT count(*) FROM invoices"
                       " WHERE payment_status <> 'paid'") == 0
    assert await count(database_url, "SELECT count(*) FROM customers"
                       " WHERE service_state <> 'active'") == 0
    await check_invariants(database_url, smtp_sink.messages)
    await setup.conn.close()


@pytest.mark.slow
async def test_crash_after_smtp_accepted_is_unknown_and_not_sent_again(dev_client, dev_server, database_url,
                                                     faulty_smtp, tmp_path) -> None:
    settings = stack_settings(database_url, faulty_smtp.host, faulty_smtp.port)
    env = process_env(database_url, dev_server, faulty_smtp.host, faulty_smtp.port,
                      settings.task_queue)
    customer_id = unique("c-crash")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await add_customers(Stack(None, dev_client, settings, conn), [customer_id])  # type: ignore[arg-type]
        with dunning_worker(env, tmp_path / "worker-1.log") as worker:
            # The server keeps the message, then the worker dies before it commits `sent`.
            faulty_smtp.on_accept = lambda: kill_process(worker)
            now = utc_now()
            # The customer's workflow may answer after the crash: wait for it below.
            issuing = asyncio.create_task(issue_invoice(
                Context(settings, conn, dev_client), IssueRequest(
                    customer_id=customer_id, number="INV-1", charges="10.00",
                    issued=now.isoformat(), due=(now + timedelta(days=30)).isoformat()),
                ADMIN))
            await eventually(lambda: _async(worker.poll() is not None), timeout=30,
                             what="the crash")
    faulty_smtp.on_accept = None
    with dunning_worker(env, tmp_path / "worker-2.log"):
        assert (await issuing)["status"] == "created"
        # The mail activity times out (60 s) and is retried by the new worker, which finds
        # the dead attempt's `sending` claim: `unknown`, not a second copy (SPEC 2.6).
        await eventually(lambda: _unknown_at_least(database_url, 1), timeout=120,
                         what="the retried mail to be marked unknown")
        await eventually(lambda: quiet(database_url), timeout=60, what="the other mails")
    assert await count(database_url, "SELECT count(*) FROM notifications WHERE kind ="
                       " 'invoice_issued' AND status = 'unknown' AND last_error LIKE"
                       " 'outcome unknown after a crash%%'") == 1
    assert len(faulty_smtp.messages) == 1
    await check_invariants(database_url, faulty_smtp.messages)


async def _async(value: bool) -> bool:
    return value


async def _sent_at_least(database_url: str, n: int) -> bool:
    return await count(database_url,
                       "SELECT count(*) FROM notifications WHERE status = 'sent'") >= n


async def _payments_at_least(database_url: str, n: int) -> bool:
    return await count(database_url, "SELECT count(*) FROM payments") >= n


async def _unknown_at_least(database_url: str, n: int) -> bool:
    return await count(database_url,
                       "SELECT count(*) FROM notifications WHERE status = 'unknown'") >= n


async def _all_sent(database_url: str, n: int) -> bool:
    # Mails in flight at a SIGKILL end `unknown` (never resent, SPEC 2.6): settled too.
    settled = await count(database_url, "SELECT count(*) FROM notifications"
                          " WHERE status IN ('sent', 'unknown')")
    return await quiet(database_url) and settled >= n


async def _all_invoice_workflows_done(client, settings: Settings) -> bool:
    running = [e async for e in client.list_workflows(
        f"TaskQueue = '{settings.task_queue}' AND ExecutionStatus = 'Running'"
        " AND WorkflowType = 'InvoiceWorkflow'")]
    return not running
