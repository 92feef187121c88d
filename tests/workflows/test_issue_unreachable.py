"""Issuing while Temporal cannot be reached: the command fails and nothing is recorded
(issue 10: the ledger is written only by the customer's workflow)."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from activities import metrics
from db.customers import NewCustomer
from operations.classes import ClassChange, set_class
from operations.context import open_context
from operations.customers import add
from operations.errors import OperationError
from operations.invoices import IssueRequest, issue_invoice
from settings import load_settings
from tests.support.ports import free_port
from tests.support.stack import ADMIN

REQUEST = IssueRequest(customer_id="c-away", number="A-1", charges="5.00",
                       issued="2026-05-01T00:00:00+00:00", due="2026-06-01")


async def invoice_rows(ctx) -> list[tuple]:
    cur = await ctx.conn.execute("SELECT number FROM invoices WHERE customer_id = 'c-away'")
    return await cur.fetchall()


async def test_nothing_is_recorded_when_temporal_is_not_reachable(database_url: str) -> None:
    settings = load_settings(database_url=database_url,
                             temporal_address=f"127.0.0.1:{free_port()}")  # nobody there
    async with open_context(settings) as ctx:
        await set_class(ctx, ClassChange(name="Plain", currency="USD", threshold="1.00"), ADMIN)
        await add(ctx, NewCustomer(id="c-away", name="Al", email="al@example.com",
                                   class_name="Plain"), ADMIN)
        before = metrics.WORKFLOW_START_FAILURES._value.get()
        # The context's own client cannot connect ...
        with pytest.raises(OperationError, match="not recorded: Temporal is not reachable"):
            await issue_invoice(ctx, REQUEST, ADMIN)
        # ... nor can a client made elsewhere, pointed at a closed port.
        closed = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
        with pytest.raises(OperationError, match="not recorded"):
            await issue_invoice(ctx, REQUEST, ADMIN, client=closed)
        assert await invoice_rows(ctx) == []
        assert metrics.WORKFLOW_START_FAILURES._value.get() == before + 2
