"""Servers going away mid-scenario: PostgreSQL down for 20 s (activities retry, nothing is
half-written), the Temporal dev server restarted on its file database (workflows go on)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from temporalio.client import Client

from db.migrate import migrate
from domain.ids import customer_workflow_id
from operations.context import Context
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment
from tests.conftest import with_database
from tests.faults.conftest import add_customers, process_env, real_time_stack, unique
from tests.support.faults import (
    RestartablePostgres,
    check_invariants,
    check_nothing_stuck,
    count,
    eventually,
    quiet,
    restartable_temporal,
)
from tests.support.processes import dunning_worker
from tests.support.stack import ADMIN, Stack, stack_settings
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import CustomerWorkflowInput, PostPaymentInput

CUSTOMERS = 10


@pytest.fixture
def own_postgres(tmp_path) -> Iterator[tuple[RestartablePostgres, str]]:
    server = RestartablePostgres(tmp_path / "pg")
    try:
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE dunning_outage"))
        url = with_database(server.admin_url, "dunning_outage")
        migrate(url)
        yield server, url
    finally:
        server.cleanup()


async def issue_all(stack: Stack, ids: list[str], due: datetime) -> None:
    for customer_id in ids:
        for n in range(2):
            await stack.call(issue_invoice, IssueRequest(
                customer_id=customer_id, number=f"INV-{n}", charges="10.00",
                issued=(due - timedelta(days=30 - n)).isoformat(), due=due.isoformat()), ADMIN)


async def signal_payment(client: Client, task_queue: str, customer_id: str) -> None:
    """A processor's own Temporal client: signal-with-start, no database needed."""
    await client.start_workflow(
        CustomerWorkflow.run, CustomerWorkflowInput(customer_id=customer_id),
        id=customer_workflow_id(customer_id), task_queue=task_queue,
        start_signal="payment_posted",
        start_signal_args=[PostPaymentInput(processor="bank", payment_id=f"{customer_id}-p",
                                            amount="20.00", currency="USD")])


@pytest.mark.slow
async def test_postgres_down_for_20_seconds(dev_client, own_postgres, smtp_sink) -> None:
    server, url = own_postgres
    ids = [unique(f"c{i}-pg") for i in range(CUSTOMERS)]
    async for stack in real_time_stack(dev_client, url, smtp_sink.host, smtp_sink.port):
        await add_customers(stack, ids)
        due = datetime.now(UTC) + timedelta(seconds=8)
        await issue_all(stack, ids, due)
        server.stop()  # suspension times pass and payments arrive while it is down
        for customer_id in ids[: CUSTOMERS // 2]:
            await signal_payment(stack.client, stack.settings.task_queue, customer_id)
        await asyncio.sleep(20)
        server.start()
        await eventually(lambda: _settled(url, CUSTOMERS // 2), timeout=120,
                         what="suspensions and payments after the outage")
        await eventually(lambda: quiet(url), timeout=60, what="the mails")
        assert await count(url, "SELECT count(*) FROM payments") == CUSTOMERS // 2
        # A mail accepted by SMTP whose `sent` commit was cut by the outage is sent again
        # (bug 1 of docs/reliability.md): at most one per mail in flight (SMTP pool of 2).
        await check_invariants(url, smtp_sink.messages, crash_window_duplicates=2)
        await check_nothing_stuck(stack.client, stack.settings.task_queue, url)


async def _settled(url: str, suspended: int) -> bool:
    return (await count(url, "SELECT count(*) FROM customers WHERE service_state"
                        " = 'suspended'") == suspended
            and await count(url, "SELECT count(*) FROM payments") == CUSTOMERS // 2)


@pytest.mark.slow
async def test_temporal_restarted_on_its_file_database(database_url, smtp_sink,
                                                       tmp_path) -> None:
    ids = [unique(f"c{i}-tr") for i in range(CUSTOMERS)]
    with restartable_temporal(tmp_path) as temporal:
        client = await Client.connect(temporal.address)
        settings = stack_settings(database_url, smtp_sink.host, smtp_sink.port)
        env = process_env(database_url, temporal.address, smtp_sink.host, smtp_sink.port,
                          settings.task_queue)
        async with await psycopg.AsyncConnection.connect(database_url,
                                                         autocommit=True) as conn:
            stack = Stack(None, client, settings, conn)  # type: ignore[arg-type]
            await add_customers(stack, ids)
            with dunning_worker(env, tmp_path / "worker.log"):
                due = datetime.now(UTC) + timedelta(seconds=15)
                await issue_all(stack, ids, due)
                await eventually(lambda: _sent_at_least(database_url, 2 * CUSTOMERS),
                                 timeout=30, what="the invoice_issued mails")
                temporal.stop()
                await asyncio.sleep(5)
                temporal.start()  # same port, same file: the timers are still there
                await eventually(lambda: _suspended(database_url, CUSTOMERS), timeout=90,
                                 what="the suspensions after the restart")
                for customer_id in ids[: CUSTOMERS // 2]:
                    paid = await post_payment(Context(settings, conn, client), PaymentRequest(
                        processor="bank", payment_id=f"{customer_id}-p",
                        customer_id=customer_id, amount="20.00", currency="USD",
                        received_at=None), None)
                    assert paid["service_state"] == "active"
                await eventually(lambda: quiet(database_url), timeout=60, what="the mails")
                await check_invariants(database_url, smtp_sink.messages)
                await check_nothing_stuck(client, settings.task_queue, database_url)


async def _sent_at_least(url: str, n: int) -> bool:
    return await count(url, "SELECT count(*) FROM notifications WHERE status = 'sent'") >= n


async def _suspended(url: str, n: int) -> bool:
    return await count(url, "SELECT count(*) FROM customers"
                       " WHERE service_state = 'suspended'") >= n
