"""RerunWorkflow: finance re-evaluates a class or one customer, e.g. after a threshold change.

Pages through the customers and asks each CustomerWorkflow to re-evaluate, so every change
still goes through the customer's single writer. Progress is visible in the UI (current
details) and through the ``progress`` query.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.hold import Hold  # noqa: F401 (known to the sandbox: type hints)
    from domain.ledger.commands import ReevaluationOutcome
    from domain.ledger.effects import InvoiceFacts  # noqa: F401 (known to the sandbox)
    from workflows import policies
    from workflows import search_attributes as sa
    from workflows.collection.payloads import (
        LIST_CUSTOMERS,
        REEVALUATE_VIA_WORKFLOW,
        ListCustomersInput,
        ListCustomersResult,
        ReevaluateViaWorkflowInput,
        RerunInput,
        RerunProgress,
    )

# A customer workflow may have to be started first; leave it time.
_REEVALUATE_TIMEOUT = timedelta(minutes=2)


@workflow.defn
class RerunWorkflow:
    @workflow.init
    def __init__(self, input: RerunInput) -> None:
        self.input = input
        self.progress = RerunProgress(scanned=0, changed_customers=0, done=False)

    @workflow.query
    def status(self) -> RerunProgress:
        return self.progress

    @workflow.run
    async def run(self, input: RerunInput) -> RerunProgress:
        if input.class_name:
            workflow.upsert_search_attributes([sa.CUSTOMER_CLASS.value_set(input.class_name)])
        if input.customer_id:
            workflow.upsert_search_attributes([sa.CUSTOMER_ID.value_set(input.customer_id)])
        after: str | None = None
        while True:
            page = await workflow.execute_activity(
                LIST_CUSTOMERS,
                ListCustomersInput(input.class_name, input.customer_id, after, input.page_size),
                result_type=ListCustomersResult,
                start_to_close_timeout=policies.LEDGER_TIMEOUT,
                retry_policy=policies.LEDGER_RETRY,
            )
            for customer_id in page.customer_ids:
                result = await workflow.execute_activity(
                    REEVALUATE_VIA_WORKFLOW,
                    ReevaluateViaWorkflowInput(customer_id, input.dry_run, input.actor),
                    result_type=ReevaluationOutcome,
                    start_to_close_timeout=_REEVALUATE_TIMEOUT,
                    retry_policy=policies.LEDGER_RETRY,
                )
                self._record(result)
            if len(page.customer_ids) < input.page_size:
                break
            after = page.customer_ids[-1]
        self.progress.done = True
        self._publish()
        return self.progress

    def _record(self, result: ReevaluationOutcome) -> None:
        self.progress.scanned += 1
        if result.changes or result.service_before != result.service_after:
            self.progress.changed_customers += 1
            # Keep the result small: only customers where something changes.
            self.progress.results.append(result)
        self._publish()

    def _publish(self) -> None:
        mode = "dry run" if self.input.dry_run else "re-run"
        scope = (f"class {self.input.class_name}" if self.input.class_name
                 else f"customer {self.input.customer_id}")
        state = "done" if self.progress.done else "in progress"
        workflow.set_current_details(
            f"{mode} of {scope}: {state}; {self.progress.scanned} customers scanned, "
            f"{self.progress.changed_customers} with changes"
        )
