"""SMTP faults (SPEC 2.6): transient errors retry, permanent ones fail with the server's
reply and are not retried, a connection dropped during DATA is `unknown` (never resent), and
suspension and resumption never wait for mail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment
from tests.faults.conftest import add_customers, real_time_stack, unique
from tests.support.faults import (
    FaultySmtp,
    check_invariants,
    check_nothing_stuck,
    eventually,
    quiet,
    utc_now,
)
from tests.support.stack import ADMIN, Stack


@pytest.fixture
async def smtp_stack(dev_client, database_url, faulty_smtp) -> AsyncIterator[Stack]:
    async for s in real_time_stack(dev_client, database_url, faulty_smtp.host, faulty_smtp.port):
        yield s


async def issue(stack: Stack, customer_id: str, number: str, *, due_in: timedelta,
                charges: str = "20.00") -> dict:
    now = utc_now()
    return await stack.call(issue_invoice, IssueRequest(
        customer_id=customer_id, number=number, charges=charges,
        issued=(now - timedelta(days=1)).isoformat(), due=(now + due_in).isoformat()), ADMIN)


async def invoice_mail(stack: Stack, smtp: FaultySmtp, script: list[str]) -> tuple[str, str]:
    """A customer whose `invoice_issued` mail meets ``script``; returns (customer, key)."""
    customer_id = unique("c-smtp")
    await add_customers(stack, [customer_id])
    smtp.script[f"{customer_id.replace('-', '')}@example.com"] = list(script)
    await issue(stack, customer_id, "INV-1", due_in=timedelta(days=30))
    return customer_id, f"invoice:{customer_id}:INV-1:invoice_issued"


async def outbox_row(stack: Stack, key: str) -> tuple[str, int, str | None]:
    rows = await stack.query_rows(
        "SELECT status, attempts, last_error FROM notifications WHERE key = %s", key)
    return rows[0] if rows else ("absent", 0, None)


async def settled(stack: Stack, key: str) -> tuple[str, int, str | None] | None:
    row = await outbox_row(stack, key)
    return row if row[0] in ("sent", "failed", "unknown") else None


async def test_4xx_then_success_is_retried_and_sent_once(smtp_stack, faulty_smtp) -> None:
    customer_id, key = await invoice_mail(smtp_stack, faulty_smtp, ["451 4.3.0 try again later"])
    status, attempts, error = await eventually(lambda: settled(smtp_stack, key), timeout=20,
                                               what="the retried mail")
    assert (status, attempts) == ("sent", 2)
    assert error is not None and "451 4.3.0 try again later" in error
    assert len(faulty_smtp.to(f"{customer_id.replace('-', '')}@example.com")) == 1
    await check_invariants(smtp_stack.settings.database_url, faulty_smtp.messages)


@pytest.mark.parametrize("script, reply", [
    (["550 5.7.1 rejected by policy"], "550 5.7.1 rejected by policy"),
    (["rcpt:550 5.1.1 user unknown"], "550 5.1.1 user unknown"),
], ids=["data-550", "recipient-550"])
async def test_5xx_is_failed_with_the_reply_and_not_retried(smtp_stack, faulty_smtp, script,
                                                            reply) -> None:
    customer_id, key = await invoice_mail(smtp_stack, faulty_smtp, script)
    status, attempts, error = await eventually(lambda: settled(smtp_stack, key), timeout=20,
                                               what="the refused mail")
    assert (status, attempts) == ("failed", 1)
    assert reply in (error or "")
    await asyncio.sleep(5)  # longer than the first retry interval (2 s): nothing more happens
    assert await outbox_row(smtp_stack, key) == (status, attempts, error)
    address = f"{customer_id.replace('-', '')}@example.com"
    assert faulty_smtp.data_attempts[address] == (1 if script[0].startswith("550") else 0)
    assert faulty_smtp.to(address) == []
    await check_invariants(smtp_stack.settings.database_url, faulty_smtp.messages)


async def test_connection_dropped_during_data_is_unknown_not_resent(smtp_stack,
                                                                    faulty_smtp) -> None:
    # The server had the whole message when the connection died: it may have queued it, so
    # sending again could duplicate it (SPEC 2.6 at most once): `unknown`, for finance.
    customer_id, key = await invoice_mail(smtp_stack, faulty_smtp, ["drop"])
    status, attempts, error = await eventually(lambda: settled(smtp_stack, key), timeout=20,
                                               what="the mail after the drop")
    assert (status, attempts) == ("unknown", 1), error
    address = f"{customer_id.replace('-', '')}@example.com"
    assert faulty_smtp.data_attempts[address] == 1
    await check_invariants(smtp_stack.settings.database_url, faulty_smtp.messages)


async def suspend_and_resume_without_smtp(stack: Stack, smtp: FaultySmtp) -> str:
    """With the SMTP server down: an overdue invoice suspends, a payment resumes."""
    customer_id = unique("c-nosmtp")
    await add_customers(stack, [customer_id], class_name=unique("k"))
    smtp.stop()
    await issue(stack, customer_id, "INV-1", due_in=-timedelta(days=2))
    await eventually(lambda: _state_is(stack, customer_id, "suspended"), timeout=15,
                     what="suspension while SMTP is down")
    paid = await stack.call(post_payment, PaymentRequest(
        processor="acme", payment_id=unique("p"), customer_id=customer_id, amount="20.00",
        currency="USD", received_at=None), None)
    assert paid["service_state"] == "active"  # at once, in the update's answer
    assert await stack.service_state(customer_id) == "active"
    assert await stack.query_rows(
        "SELECT count(*) FROM notifications WHERE customer_id = %s AND status = 'sent'",
        customer_id) == [(0,)]
    return customer_id


async def _state_is(stack: Stack, customer_id: str, state: str) -> bool:
    return await stack.service_state(customer_id) == state


async def test_suspension_and_resumption_do_not_wait_for_mail(smtp_stack, faulty_smtp) -> None:
    customer_id = await suspend_and_resume_without_smtp(smtp_stack, faulty_smtp)
    faulty_smtp.start()  # back after a few seconds: the retries deliver everything once
    await eventually(lambda: quiet(smtp_stack.settings.database_url), timeout=45,
                     what="the mails once SMTP is back")
    kinds = {k for _, k, s in await smtp_stack.notifications(customer_id) if s == "sent"}
    assert {"invoice_issued", "overdue", "service_suspended", "payment_received",
            "service_resumed"} <= kinds
    await check_invariants(smtp_stack.settings.database_url, faulty_smtp.messages)
    await check_nothing_stuck(smtp_stack.client, smtp_stack.settings.task_queue,
                              smtp_stack.settings.database_url)


@pytest.mark.slow
async def test_smtp_down_for_a_minute(smtp_stack, faulty_smtp) -> None:
    customer_id = await suspend_and_resume_without_smtp(smtp_stack, faulty_smtp)
    await asyncio.sleep(60)
    pending = await smtp_stack.query_rows(
        "SELECT count(*) FROM notifications WHERE customer_id = %s AND status = 'pending'",
        customer_id)
    assert pending[0][0] >= 5  # still waiting, nothing failed for good
    faulty_smtp.start()
    # Retries back off to at most 10 minutes; after a minute down the next one is < ~70 s.
    await eventually(lambda: quiet(smtp_stack.settings.database_url), timeout=150,
                     what="the mails once SMTP is back")
    statuses = {s for _, _, s in await smtp_stack.notifications(customer_id)}
    assert statuses == {"sent"}
    await check_invariants(smtp_stack.settings.database_url, faulty_smtp.messages)
    await check_nothing_stuck(smtp_stack.client, smtp_stack.settings.task_queue,
                              smtp_stack.settings.database_url)
