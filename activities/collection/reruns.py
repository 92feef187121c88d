"""Activities of the RerunWorkflow: page through customers, ask each CustomerWorkflow."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.client import Client

from client import customers
from domain.ledger.commands import Reevaluate, ReevaluationOutcome
from workflows.collection.payloads import (
    LIST_CUSTOMERS,
    REEVALUATE_VIA_WORKFLOW,
    ListCustomersInput,
    ListCustomersResult,
    ReevaluateViaWorkflowInput,
)


class RerunActivities:
    def __init__(self, pool: AsyncConnectionPool, client: Client, task_queue: str) -> None:
        self.pool = pool
        self.client = client
        self.task_queue = task_queue

    @activity.defn(name=LIST_CUSTOMERS)
    async def list_customers_page(self, input: ListCustomersInput) -> ListCustomersResult:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """
                SELECT id FROM customers
                 WHERE (%(cls)s::text IS NULL OR class_name = %(cls)s)
                   AND (%(id)s::text IS NULL OR id = %(id)s)
                   AND (%(after)s::text IS NULL OR id > %(after)s)
                 ORDER BY id LIMIT %(limit)s
                """,
                {"cls": input.class_name, "id": input.customer_id, "after": input.after,
                 "limit": input.limit},
            )
            return ListCustomersResult(customer_ids=[row[0] for row in await cur.fetchall()])

    @activity.defn(name=REEVALUATE_VIA_WORKFLOW)
    async def reevaluate_via_customer_workflow(
        self, input: ReevaluateViaWorkflowInput
    ) -> ReevaluationOutcome:
        """Through the customer's own workflow, so re-runs are serialised with payments."""
        # One update per re-run and customer: a retried activity gets the same answer.
        return await customers.reevaluate(
            self.client, self.task_queue,
            Reevaluate(customer_id=input.customer_id, dry_run=input.dry_run,
                       actor=input.actor),
            rerun_workflow_id=activity.info().workflow_id)
