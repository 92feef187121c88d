"""No command fails because the search attributes are not registered yet (SPEC 3).

A fresh `temporal server start-dev` without our search attributes: the first command that
starts a workflow registers them and succeeds at once. Issuing an invoice goes through the
customer's workflow (issue 10), so a worker runs, in this process, with a client that
registers nothing (unlike `dunning worker`, which checks them at start).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.worker import Worker

from activities.collection.invoices import InvoiceActivities
from activities.ledger.transactions import LedgerActivities
from client.connect import is_missing_search_attribute, registering
from client.invoices import start_invoice_workflow
from db.pool import open_pool
from db.rows import ClassRow, InvoiceRow
from domain.ids import invoice_workflow_id
from tests.support.processes import dunning, dunning_json, temporal_dev_server
from workflows import search_attributes as sa
from workflows.collection.invoice import InvoiceWorkflow
from workflows.ledger.customer import CustomerWorkflow


@pytest.fixture
def bare_server() -> Iterator[str]:
    with temporal_dev_server(register=False) as address:
        yield address


async def registered(client: Client) -> set[str]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace))
    return set(listed.custom_attributes)


async def test_first_invoice_on_a_bare_server_starts_its_workflow(
    bare_server: str, database_url: str
) -> None:
    client = await Client.connect(bare_server)
    assert not {k.name for k in sa.ALL} & await registered(client)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update({"DUNNING_DATABASE_URL": database_url, "DUNNING_TEMPORAL_ADDRESS": bare_server,
                "DUNNING_TASK_QUEUE": "bare", "DUNNING_ACTOR": "e2e-finance"})
    dunning(env, "class", "set", "Residential", "--currency", "USD", "--threshold", "10.00",
            "--timezone", "America/Sao_Paulo")
    dunning(env, "customer", "add", "c1", "--name", "Ana", "--email", "ana@example.com",
            "--class", "Residential")
    pool = open_pool(database_url, max_size=2)
    await pool.open()
    ledger = LedgerActivities(pool)
    invoices = InvoiceActivities(pool, client, "bare")
    try:
        async with Worker(client, task_queue="bare",
                          workflows=[CustomerWorkflow, InvoiceWorkflow],
                          activities=[ledger.issue_invoice, invoices.start_invoice]):
            issued = await asyncio.to_thread(
                dunning_json, env, "invoice", "issue", "--customer", "c1", "--number",
                "INV-05", "--charges", "20.00", "--issued", "2026-05-01", "--due",
                "2026-05-21")
    finally:
        await pool.close()
    assert (issued["status"], issued["workflow"]) == ("created", "started")
    assert {k.name for k in sa.ALL} <= await registered(client)
    description = await client.get_workflow_handle(issued["workflow_id"]).describe()
    attributes = description.typed_search_attributes
    assert attributes.get(sa.CUSTOMER_ID) == "c1"
    assert attributes.get(sa.DUE_DATE) == datetime(2026, 5, 22, 3, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT issued_at FROM invoices WHERE number = 'INV-05'").fetchone()
    assert row == (datetime(2026, 5, 1, 3, tzinfo=UTC),)  # midnight in Sao Paulo


async def test_a_start_refused_for_a_missing_attribute_registers_them_and_retries(
    bare_server: str
) -> None:
    # A client made elsewhere (not by client.connect): nothing registered the attributes.
    client = await Client.connect(bare_server)
    now = datetime.now(UTC)
    invoice = InvoiceRow(**{
        **{f: None for f in InvoiceRow.__dataclass_fields__},
        "customer_id": "k:x", "number": "1 50%", "new_charges": 100, "previous_balance": 0,
        "amount_due": 100, "remaining": 100, "collection_status": "collect",
        "payment_status": "unpaid", "issued_at": now, "overdue_at": now, "suspend_at": now,
    })
    klass = ClassRow(**{**{f: None for f in ClassRow.__dataclass_fields__},
                        "name": "Residential", "currency": "USD", "reminders_seconds": (),
                        "working_days": (1, 2, 3, 4, 5, 6, 7), "holidays": ()})
    started = await start_invoice_workflow(client, "no-worker", invoice, klass, "active", [])
    assert started == "started"
    assert {k.name for k in sa.ALL} <= await registered(client)
    handle = client.get_workflow_handle(invoice_workflow_id("k:x", "1 50%"))
    assert (await handle.describe()).typed_search_attributes.get(sa.CUSTOMER_ID) == "k:x"

    # Anything else the server refuses is not retried, and not taken for this case.
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        await client.start_workflow("Nope", id=handle.id, task_queue="no-worker")

    with pytest.raises(Exception) as already:
        await registering(client, refused)
    assert calls == 1 and not is_missing_search_attribute(already.value)
