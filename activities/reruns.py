"""Activities of the RerunWorkflow: page through customers, ask each CustomerWorkflow."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from workflows.customer import CustomerWorkflow
from workflows.payloads import (
    LIST_CUSTOMERS,
    REEVALUATE_VIA_WORKFLOW,
    CustomerWorkflowInput,
    ListCustomersInput,
    ListCustomersResult,
    ReevaluateInput,
    ReevaluateResult,
    ReevaluateViaWorkflowInput,
    customer_workflow_id,
)
from workflows.search_attributes import CUSTOMER_ID
from workflows.search_attributes import typed as sa_typed


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
    ) -> ReevaluateResult:
        """Through the customer's own workflow, so re-runs are serialised with payments."""
        start = WithStartWorkflowOperation(
            CustomerWorkflow.run,
            CustomerWorkflowInput(customer_id=input.customer_id),
            id=customer_workflow_id(input.customer_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=sa_typed((CUSTOMER_ID, input.customer_id)),
        )
        info = activity.info()
        return await self.client.execute_update_with_start_workflow(
            CustomerWorkflow.reevaluate,
            ReevaluateInput(dry_run=input.dry_run, actor=input.actor),
            start_workflow_operation=start,
            # One update per re-run and customer: a retried activity gets the same answer.
            id=f"rerun:{info.workflow_id}:{input.customer_id}",
        )
