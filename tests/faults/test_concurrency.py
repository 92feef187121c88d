"""Races (SPEC 2.2, 2.4, 4.3): one payment through three doors at once, 100 concurrent
payments of one customer, payments racing the suspension step."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from client.customers import start_operation
from domain.ids import payment_update_id
from operations.context import Context
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment
from tests.api.conftest import Api, api_settings, payment_body, serve
from tests.faults.conftest import add_customers, process_env, unique
from tests.support.faults import (
    check_invariants,
    check_nothing_stuck,
    count,
    eventually,
    quiet,
    utc_now,
)
from tests.support.processes import BIN
from tests.support.stack import ADMIN, Stack
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import PostPaymentInput

# Races under load on purpose: run alone (`make test`'s second, one-process phase), where a
# neighbour's CPU cannot turn the race into workflow-task timeouts.
pytestmark = pytest.mark.serial

RECEIVED = "2026-07-02T09:30:00+00:00"


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async for served in serve(create_app(api_settings(stack.settings), client=stack.client)):
        yield served


async def customer_owing(stack: Stack, charges: str = "100.00", **class_options) -> str:
    customer_id = unique("c-race")
    await add_customers(stack, [customer_id], class_name=unique("k"), **class_options)
    now = utc_now()
    await stack.call(issue_invoice, IssueRequest(
        customer_id=customer_id, number="INV-1", charges=charges,
        issued=(now - timedelta(days=5)).isoformat(),
        due=(now + timedelta(days=30)).isoformat()), ADMIN)
    return customer_id


async def cli_post(stack: Stack, dev_server: str, *args: str) -> tuple[int, str, str]:
    env = process_env(stack.settings.database_url, dev_server, stack.settings.smtp_host,
                      stack.settings.smtp_port, stack.settings.task_queue)
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "dunning"), "payment", "post", *args, "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def temporal_post(stack: Stack, customer_id: str, payment_id: str, amount: str,
                        delivery: str | None = None) -> str:
    """What a processor does with its own Temporal client (no body hash: it cannot know ours).
    Its update id is its own choice: one per payment, or one per call."""
    result = await stack.client.execute_update_with_start_workflow(
        CustomerWorkflow.post_payment,
        PostPaymentInput(processor="acme", payment_id=payment_id, amount=amount,
                         currency="USD", received_at=datetime.fromisoformat(RECEIVED)),
        start_workflow_operation=start_operation(customer_id, stack.settings.task_queue),
        id=payment_update_id("acme", payment_id, delivery=delivery))
    return result.status


async def update_with_start(stack: Stack, customer_id: str, payment_id: str) -> str:
    """The product's own update-with-start (operations.payments), on its own connection."""
    async with await psycopg.AsyncConnection.connect(stack.settings.database_url,
                                                     autocommit=True) as conn:
        result = await post_payment(Context(stack.settings, conn, stack.client), PaymentRequest(
            processor="acme", payment_id=payment_id, customer_id=customer_id, amount="15.00",
            currency="USD", received_at=RECEIVED, source="temporal"), None)
    return str(result["status"])


async def settle(stack: Stack) -> None:
    await eventually(lambda: quiet(stack.settings.database_url), timeout=30, what="the mails")
    await check_invariants(stack.settings.database_url)
    await check_nothing_stuck(stack.client, stack.settings.task_queue,
                              stack.settings.database_url)


async def test_same_payment_through_webhook_cli_and_update_at_once(stack, api, dev_server,
                                                                   smtp_sink) -> None:
    """SPEC 4.3: one payment through every door at once (webhook deliveries, the CLI, the
    product's update-with-start, a processor's own Temporal client): exactly one caller
    hears `accepted`, every other one `duplicate`."""
    customer_id = await customer_owing(stack)
    payment_id = unique("pay")
    body = payment_body(customer_id, payment_id=payment_id, amount="15.00",
                        received_at=RECEIVED)

    async def webhook() -> str:
        answer = await api.pay(body)
        status = answer.json().get("status")
        assert (answer.status_code, status) in ((202, "accepted"), (200, "duplicate")), \
            answer.text
        return str(status)

    async def cli() -> str:
        code, out, err = await cli_post(
            stack, dev_server, "--customer", customer_id, "--amount", "15.00",
            "--payment-id", payment_id, "--processor", "acme", "--received-at", RECEIVED)
        assert code == 0, err
        return str(json.loads(out)["status"])

    # 4 webhook deliveries + 3 direct updates + 1 product update: under the 10 updates a
    # workflow admits in flight, so every caller gets its answer without a retry. One
    # direct update uses the per-payment id (the product's own id before issue 9): it must
    # not be merged with any product delivery.
    answers = await asyncio.gather(
        *(webhook() for _ in range(4)), cli(), update_with_start(stack, customer_id, payment_id),
        temporal_post(stack, customer_id, payment_id, "15.00"),
        *(temporal_post(stack, customer_id, payment_id, "15.00", delivery=uuid.uuid4().hex)
          for _ in range(2)),
    )
    assert sorted(answers) == ["accepted"] + ["duplicate"] * (len(answers) - 1), answers
    assert await count(stack.settings.database_url,
                       "SELECT count(*) FROM payments WHERE customer_id = %s", customer_id) == 1
    rows = await stack.query_rows("SELECT remaining FROM invoices WHERE customer_id = %s",
                                  customer_id)
    assert rows == [(8500,)]
    await settle(stack)
    receipts = [k for k, kind, _ in await stack.notifications(customer_id)
                if kind == "payment_received"]
    assert len(receipts) == 1
    await check_invariants(stack.settings.database_url, smtp_sink.messages)


async def test_same_payment_by_temporal_then_webhook_is_a_duplicate(stack, api) -> None:
    customer_id = await customer_owing(stack)
    payment_id = unique("pay")
    assert await temporal_post(stack, customer_id, payment_id, "15.00") == "accepted"
    again = await api.pay(payment_body(customer_id, payment_id=payment_id, amount="15.00",
                                       received_at=RECEIVED))
    assert (again.status_code, again.json().get("status")) == (200, "duplicate"), again.text


async def test_workflow_answers_duplicate_and_conflict_for_an_applied_payment(stack) -> None:
    """The update path itself (no pre-check in front of it) tells a payment seen before:
    same body -> duplicate, other body -> conflict; nothing more is recorded."""
    customer_id = await customer_owing(stack)
    payment_id = unique("pay")
    assert await update_with_start(stack, customer_id, payment_id) == "accepted"
    again = [await temporal_post(stack, customer_id, payment_id, amount,
                                 delivery=uuid.uuid4().hex) for amount in ("15.00", "16.00")]
    assert again == ["duplicate", "conflict"]
    assert await stack.query_rows("SELECT amount FROM payments WHERE customer_id = %s",
                                  customer_id) == [(1500,)]


async def test_100_concurrent_payments_of_one_customer(stack, smtp_sink) -> None:
    customer_id = await customer_owing(stack, charges="100.00")
    settings = stack.settings
    connections = asyncio.Semaphore(40)  # the embedded test PostgreSQL allows ~100 clients

    refused = 0

    async def pay(n: int) -> dict:
        nonlocal refused
        request = PaymentRequest(processor="acme", payment_id=f"{customer_id}-{n}",
                                 customer_id=customer_id, amount="1.50", currency="USD",
                                 received_at=None)
        while True:
            async with connections, await psycopg.AsyncConnection.connect(
                    settings.database_url, autocommit=True) as conn:
                try:
                    return await post_payment(Context(settings, conn, stack.client), request,
                                              None)
                except RPCError as err:
                    # Temporal admits 10 in-flight updates per workflow; the API answers
                    # 503 + Retry-After and the processor retries, as here.
                    if err.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                        raise
                    refused += 1
            await asyncio.sleep(0.5)

    results = await asyncio.gather(*(pay(n) for n in range(100)))
    assert {r["status"] for r in results} <= {"accepted", "duplicate"}
    rows = await stack.query_rows("SELECT balance, credit FROM customers WHERE id = %s",
                                  customer_id)
    assert rows == [(-5000, 5000)]  # 150.00 paid on 100.00 owed
    assert await count(settings.database_url, "SELECT count(*) FROM payments"
                       " WHERE customer_id = %s", customer_id) == 100
    await settle(stack)
    await check_invariants(settings.database_url, smtp_sink.messages)


async def test_payments_racing_the_suspension_step(stack, smtp_sink) -> None:
    """Each customer pays in full around its invoice's suspension time (S = D, grace 0)."""
    ids = [unique("c-susp") for _ in range(8)]
    await add_customers(stack, ids, class_name=unique("k"))
    due = datetime.now(UTC) + timedelta(seconds=4)
    for customer_id in ids:
        await stack.call(issue_invoice, IssueRequest(
            customer_id=customer_id, number="INV-1", charges="30.00",
            issued=(due - timedelta(days=3)).isoformat(), due=due.isoformat()), ADMIN)

    async def pay_at(customer_id: str, offset: float) -> dict:
        delay = (due - datetime.now(UTC)).total_seconds() + offset
        await asyncio.sleep(max(delay, 0))
        return await stack.call(post_payment, PaymentRequest(
            processor="acme", payment_id=f"{customer_id}-p", customer_id=customer_id,
            amount="30.00", currency="USD", received_at=None), None)

    offsets = [-0.3, -0.1, -0.05, 0.0, 0.02, 0.05, 0.1, 0.3]
    results = await asyncio.gather(*(pay_at(c, o) for c, o in zip(ids, offsets, strict=True)))
    assert {r["status"] for r in results} == {"accepted"}
    await eventually(lambda: _invoices_workflows_ended(stack), timeout=30,
                     what="the invoice workflows")
    await settle(stack)
    for customer_id in ids:
        assert await stack.service_state(customer_id) == "active"
        kinds = [k for _, k, _ in await stack.notifications(customer_id)]
        # Each transition, if any, has exactly one mail; resumption follows a suspension.
        assert kinds.count("service_suspended") == kinds.count("service_resumed") <= 1, kinds
    await check_invariants(stack.settings.database_url, smtp_sink.messages)


async def _invoices_workflows_ended(stack: Stack) -> bool:
    running = [e async for e in stack.client.list_workflows(
        f"TaskQueue = '{stack.settings.task_queue}' AND ExecutionStatus = 'Running'"
        " AND WorkflowType = 'InvoiceWorkflow'")]
    return not running
