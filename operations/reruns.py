"""Finance re-runs (SPEC 2.3): re-evaluate a class or a customer through a RerunWorkflow."""

from __future__ import annotations

import dataclasses
from typing import Any

from client.reruns import rerun_workflow_id
from client.reruns import start_rerun as start_rerun_workflow
from db.audit import class_target, customer_target, record_audit
from db.classes import get_class
from db.customers import get_customer
from db.rows import AuditEntry, AuditInfo
from operations.context import Context, actor_of
from operations.errors import NotFound
from workflows.collection.payloads import RerunInput, RerunProgress


async def start_rerun(ctx: Context, class_name: str | None, customer_id: str | None,
                      dry_run: bool, audit: AuditInfo, *, wait: bool) -> dict[str, Any]:
    if class_name is not None and await get_class(ctx.conn, class_name) is None:
        raise NotFound(f"unknown class {class_name!r}")
    if customer_id is not None and await get_customer(ctx.conn, customer_id) is None:
        raise NotFound(f"unknown customer {customer_id!r}")
    workflow_id = rerun_workflow_id(class_name, customer_id, dry_run)
    actor = actor_of(audit, customer_id)
    if not dry_run:
        # The request itself is audited; each customer's changes are audited by its
        # own transaction as the workflow goes.
        async with ctx.conn.transaction():
            await record_audit(ctx.conn, AuditEntry.of(
                audit, "rerun.start",
                class_target(class_name) if class_name else customer_target(str(customer_id)),
                on_behalf_of=customer_id, after={"workflow_id": workflow_id}))
    handle = await start_rerun_workflow(
        await ctx.client(), ctx.settings.task_queue, workflow_id,
        RerunInput(class_name=class_name, customer_id=customer_id, dry_run=dry_run,
                   actor=actor))
    if not wait:
        return {"workflow_id": workflow_id, "dry_run": dry_run, "scanned": 0,
                "changed_customers": 0, "results": [], "done": False}
    return rerun_document(workflow_id, dry_run, await handle.result())


def rerun_document(workflow_id: str, dry_run: bool, progress: RerunProgress) -> dict[str, Any]:
    """A re-run's progress as the API and the CLI answer it (amounts in minor units)."""
    return {
        "workflow_id": workflow_id, "dry_run": dry_run,
        "scanned": progress.scanned, "changed_customers": progress.changed_customers,
        "done": progress.done,
        "results": [{"customer_id": r.customer_id, "dry_run": r.dry_run,
                     "changes": [dataclasses.asdict(c) for c in r.changes],
                     "service_before": r.service_before, "service_after": r.service_after}
                    for r in progress.results],
    }
