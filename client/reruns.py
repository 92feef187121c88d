"""Starting a finance re-run (SPEC 2.3): the RerunWorkflow's id, search attributes, start."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client, WorkflowHandle

from client.connect import registering
from workflows import search_attributes as sa
from workflows.collection.payloads import RerunInput, RerunProgress
from workflows.collection.rerun import RerunWorkflow


def _scope(class_name: str | None, customer_id: str | None) -> str:
    return f"class-{class_name}" if class_name else f"customer-{customer_id}"


def rerun_workflow_id(class_name: str | None, customer_id: str | None, dry_run: bool,
                      now: datetime | None = None) -> str:
    """A new id for each re-run (``rerun-class-Mobile-dry-20261125T193425552999Z``)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"rerun-{_scope(class_name, customer_id)}-{'dry-' if dry_run else ''}{stamp}"


async def start_rerun(client: Client, task_queue: str, workflow_id: str,
                      rerun: RerunInput) -> WorkflowHandle[RerunWorkflow, RerunProgress]:
    """Start the re-run's workflow, found in the UI by its class or its customer."""
    attribute = ((sa.CUSTOMER_CLASS, rerun.class_name) if rerun.class_name
                 else (sa.CUSTOMER_ID, rerun.customer_id))
    scope = _scope(rerun.class_name, rerun.customer_id)
    return await registering(client, lambda: client.start_workflow(
        RerunWorkflow.run, rerun,
        id=workflow_id, task_queue=task_queue,
        search_attributes=sa.typed(attribute),
        static_summary=f"{'Dry run' if rerun.dry_run else 'Re-run'} of {scope}",
    ))


async def rerun_result(client: Client, workflow_id: str) -> RerunProgress:
    """Wait for a re-run to finish; its final progress (the results of every customer)."""
    return await client.get_workflow_handle_for(RerunWorkflow.run, workflow_id).result()
