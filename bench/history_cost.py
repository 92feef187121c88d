"""What one business operation costs the Temporal server: history events, workflow tasks,
activity tasks and local activities, counted from the workflows' histories.

Rates swing with whatever else the machine runs; these counts do not (the same code gives
the same counts), so they show what a change removed even on a busy machine. One customer
of a class without grace, then one at a time, each followed until it is quiet:

1. issue an overdue invoice of 20.00 (invoice_issued, overdue, suspension);
2. a partial payment of 5.00 (stays suspended; receipt);
3. a payment of the rest, 15.00 (resumes: receipt, resumption mail, provisioning; the
   invoice's workflow ends).

Baseline row: one update of a trivial entity workflow (bench.baseline.EntityWorkflow).

    .venv/bin/python -m bench.history_cost
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.baseline import update_entities
from bench.billing_cycle import setup_customers
from bench.common import ADMIN, baseline_worker, contexts, fresh_database, product_worker, servers
from domain.ids import customer_workflow_id, invoice_workflow_id
from operations.context import Context
from operations.invoices import IssueRequest, issue_invoice
from operations.payments import PaymentRequest, post_payment
from operations.status import customer_status

LOCAL_ACTIVITY_MARKER = "core_local_activity"
E = EventType


@dataclass(frozen=True)
class Cost:
    events: int = 0
    workflow_tasks: int = 0
    activity_tasks: int = 0
    local_activities: int = 0
    signals_out: int = 0

    def __sub__(self, other: Cost) -> Cost:
        return Cost(*(a - b for a, b in zip(self.row(), other.row(), strict=True)))

    def row(self) -> tuple[int, ...]:
        return (self.events, self.workflow_tasks, self.activity_tasks,
                self.local_activities, self.signals_out)


async def cost(client: Client, workflow_id: str) -> Cost:
    """Totals over every run of the workflow (continue-as-new included)."""
    total = Cost()
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        history = await client.get_workflow_handle(
            workflow_id, run_id=execution.run_id).fetch_history()
        kinds = Counter(e.event_type for e in history.events)
        markers = sum(1 for e in history.events
                      if e.event_type == E.EVENT_TYPE_MARKER_RECORDED
                      and e.marker_recorded_event_attributes.marker_name
                      == LOCAL_ACTIVITY_MARKER)
        total = Cost(*(a + b for a, b in zip(total.row(), Cost(
            events=len(history.events),
            workflow_tasks=kinds[E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
            activity_tasks=kinds[E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
            local_activities=markers,
            signals_out=kinds[E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED],
        ).row(), strict=True)))
    return total


async def quiet(read: Callable[[], Awaitable[tuple[Cost, ...]]], settle: float = 2.0
                ) -> tuple[Cost, ...]:
    """The counts once they stopped moving for ``settle`` seconds (mails, signals and
    provisioning follow an operation's answer)."""
    last = await read()
    while True:
        await asyncio.sleep(settle)
        now = await read()
        if now == last:
            return now
        last = now


async def measure(ctx: Context, client: Client, customer: str
                  ) -> list[tuple[str, Cost, Cost]]:
    workflows = [customer_workflow_id(customer), invoice_workflow_id(customer, "INV-1")]

    async def read() -> tuple[Cost, ...]:
        return tuple([await cost(client, w) for w in workflows])

    now = datetime.now(UTC)
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("issue (overdue, suspends)", lambda: issue_invoice(ctx, IssueRequest(
            customer_id=customer, number="INV-1", charges="20.00",
            issued=(now - timedelta(days=10)).isoformat(),
            due=(now - timedelta(days=2)).isoformat()), ADMIN)),
        ("partial payment 5.00", lambda: post_payment(ctx, pay(customer, "p1", "5.00"), None)),
        ("payment 15.00 (resumes)", lambda: post_payment(ctx, pay(customer, "p2", "15.00"),
                                                         None)),
    ]
    rows = []
    before = (Cost(), Cost())
    for name, step in steps:
        await step()
        after = await quiet(read)
        rows.append((name, after[0] - before[0], after[1] - before[1]))
        before = after
    status = await customer_status(ctx, customer, audit=None)
    assert status["service_state"] == "active", status
    return rows


def pay(customer: str, payment_id: str, amount: str) -> PaymentRequest:
    return PaymentRequest(processor="card", payment_id=payment_id, customer_id=customer,
                          amount=amount, currency="USD", received_at=None)


async def main() -> None:
    async with servers() as srv:
        tq = f"bench-{uuid.uuid4().hex[:8]}"
        with fresh_database(srv.admin_url, "history") as url:
            settings = srv.settings(url, tq)
            async with contexts(settings, srv.client, 1) as ctxs, \
                    product_worker(srv, settings):
                (customer,) = await setup_customers(ctxs, "h-", 1, class_name="Strict")
                rows = await measure(ctxs[0], srv.client, customer)
            async with baseline_worker(srv, f"base-{tq}"):
                await update_entities(srv.client, f"base-{tq}", 2, 1, 1)
                (base,) = [await cost(srv.client, wid) async for wid in _entities(srv.client,
                                                                                 f"base-{tq}")]
    print("\nhistory_cost: events and tasks per operation (customer workflow | invoice workflow)")
    header = (f"{'operation':<28}{'events':>8}{'WFTs':>6}{'acts':>6}{'local':>6}{'sig':>5}"
              f"   |{'events':>8}{'WFTs':>6}{'acts':>6}")
    print(header)
    print("-" * len(header))
    for name, c, i in rows:
        print(f"{name:<28}{c.events:>8}{c.workflow_tasks:>6}{c.activity_tasks:>6}"
              f"{c.local_activities:>6}{c.signals_out:>5}   |{i.events:>8}"
              f"{i.workflow_tasks:>6}{i.activity_tasks:>6}")
    per_update = Cost(*(v // 2 for v in base.row()))
    print(f"{'baseline: 1 update (of 2)':<28}{per_update.events:>8}"
          f"{per_update.workflow_tasks:>6}{per_update.activity_tasks:>6}"
          f"{per_update.local_activities:>6}{per_update.signals_out:>5}   |")


async def _entities(client: Client, task_queue: str):
    async for execution in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        yield execution.id


if __name__ == "__main__":
    asyncio.run(main())
