"""Every interaction with a customer's workflow (SPEC 3): one function each.

The CustomerWorkflow is the customer's single writer, so everything reaches it by
update-with-start or signal-with-start: it need not be running yet. Each call builds the
one start operation (the id of ``domain.ids``, USE_EXISTING, the CustomerId search
attribute) afresh and goes through ``registering``, so no call fails because the search
attributes are not registered yet. Update ids come from ``domain.ids`` too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from client.connect import registering
from domain.ids import (
    assignment_update_id,
    customer_workflow_id,
    fee_waiver_update_id,
    hold_update_id,
    invoice_update_id,
    payment_update_id,
    reactivation_update_id,
    rerun_child_workflow_id,
    reversal_update_id,
)
from workflows import search_attributes as sa
from workflows.ledger.customer import CustomerWorkflow
from workflows.ledger.payloads import (
    ApplyPayment,
    AssignmentOutcome,
    AssignPayment,
    ChargeLateFee,
    CustomerWorkflowInput,
    EvaluateService,
    HoldOutcome,
    IssueInvoice,
    IssueOutcome,
    PaymentOutcome,
    PlaceHold,
    ReactivateCustomer,
    Reevaluate,
    ReevaluationOutcome,
    ReleaseHold,
    ReversalOutcome,
    ReversePayment,
    TerminationOutcome,
    WaiveLateFee,
    WaiverOutcome,
)

T = TypeVar("T")


class UpdateRefused(Exception):
    """The customer's workflow refused an update (its validator or handler failed); the
    message is the workflow's own reason, fit for the caller."""


def start_operation(customer_id: str, task_queue: str) -> WithStartWorkflowOperation:
    """The customer's workflow, started unless it runs. Single use: build one per call."""
    return WithStartWorkflowOperation(
        CustomerWorkflow.run,
        CustomerWorkflowInput(customer_id=customer_id),
        id=customer_workflow_id(customer_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=sa.typed((sa.CUSTOMER_ID, customer_id)),
    )


def refusal_message(err: WorkflowUpdateFailedError) -> str:
    """The reason the workflow gave (its ApplicationError), else the SDK's message."""
    cause = err.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    return cause.message if cause is not None else str(err)


async def issue_invoice(client: Client, task_queue: str, command: IssueInvoice, *,
                        delivery: str) -> IssueOutcome:
    """Record an invoice and start its workflow; the answer comes once both are done
    (``conflict`` is an answer too). ``delivery``: this call's own id, so a second call
    gets the ledger's ``exists`` or ``conflict``. Raises UpdateRefused."""
    update_id = invoice_update_id(command.customer_id, command.number, delivery=delivery)
    return await _update(client, task_queue, CustomerWorkflow.issue_invoice, command,
                         command.customer_id, update_id)


async def post_payment(client: Client, task_queue: str, command: ApplyPayment, *,
                       delivery: str) -> PaymentOutcome:
    """One delivery of a payment (``delivery``: its own id, so every delivery gets its own
    answer; the ledger decides which is ``accepted``). Raises UpdateRefused."""
    update_id = payment_update_id(command.processor, command.payment_id, delivery=delivery)
    return await _update(client, task_queue, CustomerWorkflow.post_payment, command,
                         command.customer_id, update_id)


async def reverse_payment(client: Client, task_queue: str,
                          command: ReversePayment) -> ReversalOutcome:
    """Reverse a payment of the customer (one update per payment). Raises UpdateRefused."""
    return await _update(client, task_queue, CustomerWorkflow.reverse_payment, command,
                         command.customer_id,
                         reversal_update_id(command.processor, command.payment_id))


async def assign_payment(client: Client, task_queue: str,
                         command: AssignPayment) -> AssignmentOutcome:
    """Apply an unmatched payment to the customer (one update per payment). Raises
    UpdateRefused."""
    return await _update(client, task_queue, CustomerWorkflow.assign_payment, command,
                         command.customer_id,
                         assignment_update_id(command.processor, command.payment_id))


async def reevaluate(client: Client, task_queue: str, command: Reevaluate, *,
                     rerun_workflow_id: str) -> ReevaluationOutcome:
    """Re-evaluate the customer for a re-run: one update per re-run and customer, so a
    retried activity gets the first answer. A refused update is raised as the SDK's
    WorkflowUpdateFailedError (the activity's retry policy decides)."""
    return await _update_with_start(
        client, task_queue, CustomerWorkflow.reevaluate, command, command.customer_id,
        rerun_child_workflow_id(rerun_workflow_id, command.customer_id))


async def waive_late_fee(client: Client, task_queue: str, command: WaiveLateFee, *,
                         delivery: str) -> WaiverOutcome:
    """Waive an invoice's late fee through its customer's workflow (the single writer);
    ``delivery``: this request's own id. Raises UpdateRefused."""
    return await _update(client, task_queue, CustomerWorkflow.waive_late_fee, command,
                         command.customer_id,
                         fee_waiver_update_id(command.customer_id, command.invoice_number,
                                              delivery))


async def place_hold(client: Client, task_queue: str, command: PlaceHold, *,
                     delivery: str) -> HoldOutcome:
    """Put the customer on hold through its workflow (SPEC 2.11). Raises UpdateRefused."""
    return await _update(client, task_queue, CustomerWorkflow.place_hold, command,
                         command.customer_id,
                         hold_update_id(command.customer_id, "place", delivery))


async def release_hold(client: Client, task_queue: str, command: ReleaseHold, *,
                       delivery: str) -> HoldOutcome:
    """Release the customer's hold through its workflow (SPEC 2.11). Raises UpdateRefused."""
    return await _update(client, task_queue, CustomerWorkflow.release_hold, command,
                         command.customer_id,
                         hold_update_id(command.customer_id, "release", delivery))


async def reactivate(client: Client, task_queue: str, command: ReactivateCustomer, *,
                     delivery: str) -> TerminationOutcome:
    """Reactivate a terminated customer through its workflow (SPEC 2.9). Raises
    UpdateRefused."""
    return await _update(client, task_queue, CustomerWorkflow.reactivate, command,
                         command.customer_id, reactivation_update_id(command.customer_id,
                                                                     delivery))


async def request_late_fee(client: Client, task_queue: str, command: ChargeLateFee) -> None:
    """Ask the customer's workflow to charge an invoice's late fee if it is due (signal-
    with-start, like ``wake_for_service_evaluation``); its ledger decides."""
    await registering(client, lambda: client.start_workflow(
        CustomerWorkflow.run,
        CustomerWorkflowInput(customer_id=command.customer_id),
        id=customer_workflow_id(command.customer_id),
        task_queue=task_queue,
        start_signal="charge_late_fee",
        start_signal_args=[command],
        search_attributes=sa.typed((sa.CUSTOMER_ID, command.customer_id)),
    ))


async def wake_for_service_evaluation(client: Client, task_queue: str,
                                      command: EvaluateService) -> None:
    """Ask the customer's workflow to decide the service state again (signal-with-start:
    works whether or not it is running)."""
    await registering(client, lambda: client.start_workflow(
        CustomerWorkflow.run,
        CustomerWorkflowInput(customer_id=command.customer_id),
        id=customer_workflow_id(command.customer_id),
        task_queue=task_queue,
        start_signal="evaluate_service",
        start_signal_args=[command],
        search_attributes=sa.typed((sa.CUSTOMER_ID, command.customer_id)),
    ))


async def _update(client: Client, task_queue: str, update: Any, command: Any,
                  customer_id: str, update_id: str) -> Any:
    """Update-with-start of the customer's workflow; its refusal raised as UpdateRefused."""
    try:
        return await _update_with_start(client, task_queue, update, command, customer_id,
                                        update_id)
    except WorkflowUpdateFailedError as err:
        raise UpdateRefused(refusal_message(err)) from None


async def _update_with_start(client: Client, task_queue: str, update: Any, command: Any,
                             customer_id: str, update_id: str) -> Any:
    """The update, with the customer's workflow started unless it runs: sent again if
    the server aborted it, or refused the start for an unregistered search attribute."""
    operations: list[WithStartWorkflowOperation] = []

    def send() -> Awaitable[Any]:
        operation = start_operation(customer_id, task_queue)  # single use: one per send
        operations.append(operation)
        return client.execute_update_with_start_workflow(
            update, command, start_workflow_operation=operation, id=update_id)

    try:
        return await _resent_if_aborted(lambda: registering(client, send))
    finally:
        for operation in operations:
            # A send that failed left its error on its start operation too; take it, so
            # it is not reported as never retrieved (bounded: every send settles it).
            with suppress(Exception):
                await asyncio.wait_for(operation.workflow_handle(), 1)


# The server aborts an update that was handed to a workflow task which then failed (for
# example: its completion was refused because a signal came in meanwhile, as happens when
# the workflow continues as new). The update was never accepted; the caller is to send it
# again, under the same id, so the ledger's token (domain.ids.transaction_token) answers a
# transaction that did commit with its first result.
_NOT_READY = b"WorkflowNotReadyFailure"
ABORTED_UPDATE_RESENDS = 5


def is_aborted_update(err: BaseException) -> bool:
    return isinstance(err, RPCError) and _NOT_READY in err.raw_grpc_status


async def _resent_if_aborted(attempt: Callable[[], Awaitable[T]]) -> T:
    for resend in range(ABORTED_UPDATE_RESENDS):
        try:
            return await attempt()
        except RPCError as err:
            if not is_aborted_update(err):
                raise
            await asyncio.sleep(0.05 * 2 ** resend)
    return await attempt()
