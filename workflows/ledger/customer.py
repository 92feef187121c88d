"""CustomerWorkflow: the single writer of one customer's ledger (SPEC 2.2-2.4, 3).

Invoices, payments, reversals and re-evaluations arrive by update (callers get an answer
once the database transaction committed) or by signal (fire-and-forget); a lock runs them
one at a time. The transaction itself decides suspension and resumption, so the service
state is right the moment it commits; the effects (re-evaluation signals to the invoice
workflows, provisioning, mails) follow in order from the main loop without delaying the
caller. Issuing an invoice also starts the invoice's workflow before answering.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from domain.ledger.effects import (
        Effect,
        Provision,
        SendMail,
        SignalInvoice,
        effects_of,
        needs_followup,
    )

    # Imported here by name, not only through workflows.payloads: the sandbox resolves a
    # payload's type hints in the modules it was told of.
    from domain.ledger.payments import ApplyPayment, PaymentOutcome
    from domain.notifications.catalog import payment_receipt_key
    from workflows import policies
    from workflows import search_attributes as sa
    from workflows.notifications.notify import deliver
    from workflows.payloads import (
        APPLY_PAYMENT,
        APPLY_SERVICE_STATE,
        ASSIGN_UNMATCHED,
        EVALUATE_SERVICE,
        ISSUE_INVOICE,
        REEVALUATE_CUSTOMER,
        REOPEN_INVOICE,
        REVERSE_PAYMENT,
        START_INVOICE_WORKFLOW,
        ApplyServiceStateInput,
        ApplyServiceStateResult,
        AssignPaymentInput,
        CustomerOperation,
        CustomerState,
        CustomerStateQueryResult,
        CustomerWorkflowInput,
        EvaluateServiceSignal,
        Followup,
        InvoiceReevaluatedSignal,
        IssueInvoiceInput,
        IssueInvoiceResult,
        LedgerActivityInput,
        LedgerActivityResult,
        PostPaymentInput,
        PostPaymentResult,
        ReevaluateInput,
        ReevaluateResult,
        ReopenInvoiceInput,
        ReopenInvoiceResult,
        ReversePaymentInput,
        ReversePaymentResult,
        SendNotificationInput,
        StartInvoiceWorkflowInput,
        StartInvoiceWorkflowResult,
        invoice_workflow_id,
    )

T = TypeVar("T")


@workflow.defn
class CustomerWorkflow:
    @workflow.init
    def __init__(self, input: CustomerWorkflowInput) -> None:
        # All of this customer's state, in one dataclass handed whole to the next run.
        self.entity: CustomerState = input.initial_state()
        self.lock = asyncio.Lock()
        # The mails this run started, with their tasks: those still running at
        # continue-as-new go to the next run in ``entity.mails``.
        self.sending: list[tuple[asyncio.Task[None], SendNotificationInput]] = []

    # --- updates: the caller waits for the committed transaction -----------------------

    @workflow.update
    async def issue_invoice(self, input: IssueInvoiceInput) -> IssueInvoiceResult:
        """Record the invoice, then start its workflow before answering (so no invoice is
        left without one). A back-dated invoice that moved money between invoices has the
        service decided again at once, in the same turn of the lock, and its changes
        followed up like any other (the invoices hear of it; a paid one open again gets
        its lifecycle back)."""
        async with self.lock:
            result = await self._ledger(ISSUE_INVOICE, LedgerActivityInput(
                self.entity.customer_id, now=workflow.now(),
                reason=f"invoice {input.number} issued", issue=input, actor=input.actor))
            service = None
            if result.changed:
                service = await self._ledger(EVALUATE_SERVICE, LedgerActivityInput(
                    self.entity.customer_id, now=workflow.now(),
                    reason=f"back-dated invoice {input.number} issued"))
        invoice = result.invoice
        if invoice is None:
            raise ApplicationError(f"invoice {input.number}: the ledger gave no invoice",
                                   non_retryable=True)
        if service is not None:
            followup = Followup(changed=result.changed, transition=service.transition,
                                service_state=service.service_state)
            if needs_followup(followup):
                self.entity.followups.append(followup)
        started = None
        if result.status != "conflict":
            started = (await self._start_invoice_workflow(input.number)).workflow
        return IssueInvoiceResult(
            status=result.status, conflict_fields=result.conflict_fields, invoice=invoice,
            service_state=(service or result).service_state, workflow=started)

    @issue_invoice.validator
    def _validate_invoice(self, input: IssueInvoiceInput) -> None:
        if not input.number.strip():
            raise ValueError("invoice number must not be empty")
        if input.new_charges < 0:
            raise ValueError("new charges must not be negative")

    @workflow.update
    async def post_payment(self, input: ApplyPayment | PostPaymentInput) -> PaymentOutcome:
        """``input``: the command built at the edge; a processor's own Temporal client (and
        histories recorded before the command) send a PostPaymentInput instead."""
        return await self._apply_payment(self._command(input))

    @post_payment.validator
    def _validate_payment(self, input: ApplyPayment | PostPaymentInput) -> None:
        self._command(input)  # refused before anything is written to history

    @workflow.update
    async def reverse_payment(self, input: ReversePaymentInput) -> ReversePaymentResult:
        result = await self._transact(
            REVERSE_PAYMENT, f"reversal of {input.processor}:{input.payment_id}",
            reversal=input, actor=input.actor)
        self._follow(result)
        return ReversePaymentResult(status=result.status, service_state=result.service_state,
                                    balance=result.balance)

    @workflow.update
    async def assign_payment(self, input: AssignPaymentInput) -> PostPaymentResult:
        result = await self._transact(
            ASSIGN_UNMATCHED, f"assignment of {input.processor}:{input.payment_id}",
            assignment=input, actor=input.actor)
        self._follow_payment(result, input.processor, input.payment_id,
                             accepted=result.status == "assigned")
        return PostPaymentResult(
            status=result.status, processor=input.processor, payment_id=input.payment_id,
            service_state=result.service_state, balance=result.balance,
        )

    @workflow.update
    async def reevaluate(self, input: ReevaluateInput) -> ReevaluateResult:
        result = await self._transact(REEVALUATE_CUSTOMER, "re-run", dry_run=input.dry_run,
                                      actor=input.actor)
        if not input.dry_run:
            self._follow(result)
        return ReevaluateResult(
            customer_id=self.entity.customer_id, dry_run=input.dry_run, changes=result.changes,
            service_before=result.service_before, service_after=result.service_state,
        )

    # --- signals: fire-and-forget, queued ----------------------------------------------

    @workflow.signal
    def payment_posted(self, input: ApplyPayment | PostPaymentInput) -> None:
        try:
            command = self._command(input)
        except ValueError as err:
            workflow.logger.warning(f"ignoring malformed payment signal: {err}")
            return
        self.entity.queue.append(CustomerOperation(kind="payment", payment=command))

    @workflow.signal
    def evaluate_service(self, signal: EvaluateServiceSignal) -> None:
        self.entity.queue.append(CustomerOperation(kind="evaluate_service", evaluate=signal))

    @workflow.query
    def state(self) -> CustomerStateQueryResult:
        return CustomerStateQueryResult(
            customer_id=self.entity.customer_id, service_state=self.entity.service_state,
            queued=len(self.entity.queue), followups=len(self.entity.followups),
            last_operation=self.entity.last_operation,
        )

    # --- main loop ---------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CustomerWorkflowInput) -> None:
        workflow.upsert_search_attributes([sa.CUSTOMER_ID.value_set(self.entity.customer_id)])
        for notification in self.entity.mails:
            self._send(notification)  # the outbox keeps them to one delivery each
        while True:
            await workflow.wait_condition(
                lambda: bool(self.entity.queue or self.entity.followups) or self._history_is_long()
            )
            if self.entity.followups:
                await self._carry_out(self.entity.followups.pop(0))
            elif self.entity.queue:
                await self._run_queued(self.entity.queue.pop(0))
            else:
                break
        # Let running updates finish, then hand over what they queued and the mails still
        # in flight (a mail retrying for days must not hold up this customer's payments).
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.entity.mails = [n for task, n in self.sending if not task.done()]
        workflow.continue_as_new(
            CustomerWorkflowInput(self.entity.customer_id, state=self.entity)
        )

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() >= self.entity.max_history_events
            or info.is_continue_as_new_suggested()
        )

    async def _run_queued(self, op: CustomerOperation) -> None:
        try:
            if op.kind == "payment" and op.payment is not None:
                await self._apply_payment(self._command(op.payment))
            elif op.kind == "evaluate_service" and op.evaluate is not None:
                result = await self._transact(EVALUATE_SERVICE, op.evaluate.reason)
                self._follow(result)
        except ApplicationError as err:
            # Bad input on the fire-and-forget path has nobody to answer to: log it.
            workflow.logger.warning(f"operation {op.kind} rejected: {err}")

    def _command(self, payment: ApplyPayment | PostPaymentInput) -> ApplyPayment:
        """The command itself, or the one ApplyPayment.build makes of a processor's
        PostPaymentInput (its currency is the one the ledger's schema then holds to the
        class's). Raises ValueError with SPEC 2.1's message."""
        if isinstance(payment, ApplyPayment):
            if payment.customer_id != self.entity.customer_id:
                raise ValueError(f"payment for customer {payment.customer_id!r} sent to "
                                 f"the workflow of {self.entity.customer_id!r}")
            return payment
        return ApplyPayment.build(
            processor=payment.processor, payment_id=payment.payment_id,
            customer_id=self.entity.customer_id, amount=payment.amount,
            currency=payment.currency, class_currency=payment.currency,
            class_name=self.entity.class_name or "", received_at=payment.received_at,
            source=payment.source,  # type: ignore[arg-type]
            actor=payment.actor)

    async def _apply_payment(self, payment: ApplyPayment) -> PaymentOutcome:
        # Stamped here, deterministically, so a replay sees the same instant.
        command = payment.at(workflow.now())
        reason = f"payment {command.processor}:{command.payment_id}"
        async with self.lock:
            self.entity.last_operation = f"{APPLY_PAYMENT}: {reason}"
            result = await self._activity(APPLY_PAYMENT, [command],
                                          PaymentOutcome)
            self._publish(result)
        self._follow_payment(result, command.processor, command.payment_id,
                             accepted=result.status == "accepted")
        return result

    def _follow_payment(self, result: LedgerActivityResult | PaymentOutcome, processor: str,
                        payment_id: str, *, accepted: bool) -> None:
        if not accepted:
            return
        receipt = None
        if result.payment_receipts:
            receipt = payment_receipt_key(processor, payment_id)
        self._follow(result, receipt_key=receipt, processor=processor, payment_id=payment_id)

    async def _transact(self, activity: str, reason: str, **fields: Any) -> LedgerActivityResult:
        """One ledger transaction at a time for this customer (the lock), at this instant."""
        async with self.lock:
            return await self._ledger(activity, LedgerActivityInput(
                self.entity.customer_id, now=workflow.now(), reason=reason, **fields))

    async def _ledger(self, activity: str, input: LedgerActivityInput) -> LedgerActivityResult:
        self.entity.last_operation = f"{activity}: {input.reason}"
        result = await self._activity(activity, [input], LedgerActivityResult)
        self._publish(result)
        return result

    async def _activity(self, activity: str, args: list[Any], result_type: type[T]) -> T:
        try:
            return await workflow.execute_activity(
                activity, args=args, result_type=result_type,
                start_to_close_timeout=policies.LEDGER_TIMEOUT,
                retry_policy=policies.LEDGER_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                # Fails only this update (or queued operation), never the workflow.
                raise ApplicationError(cause.message, type=cause.type,
                                       non_retryable=True) from None
            raise

    async def _start_invoice_workflow(self, number: str) -> StartInvoiceWorkflowResult:
        return await self._activity(
            START_INVOICE_WORKFLOW, [StartInvoiceWorkflowInput(self.entity.customer_id, number)],
            StartInvoiceWorkflowResult)

    def _follow(self, result: LedgerActivityResult | PaymentOutcome, *,
                receipt_key: str | None = None, processor: str | None = None,
                payment_id: str | None = None) -> None:
        followup = Followup(changed=result.changed, transition=result.transition,
                            receipt_key=receipt_key, service_state=result.service_state,
                            processor=processor, payment_id=payment_id)
        if needs_followup(followup):
            self.entity.followups.append(followup)

    async def _carry_out(self, followup: Followup) -> None:
        for effect in effects_of(self.entity.customer_id, followup):
            await self._do(effect)

    async def _do(self, effect: Effect) -> None:
        customer_id = self.entity.customer_id
        if isinstance(effect, SignalInvoice):
            facts = effect.facts
            handle = workflow.get_external_workflow_handle(
                invoice_workflow_id(customer_id, facts.number))
            try:
                await handle.signal("reevaluated", InvoiceReevaluatedSignal(
                    facts=facts, service_state=effect.service_state))
            except FailureError as err:
                workflow.logger.info(f"invoice {facts.number} not signalled: {err}")
                # Its workflow ended when the invoice was paid; a reversal that opens it
                # again needs its lifecycle back (suspension step included).
                if effect.reopen_if_ended and workflow.patched("reopen-invoices"):
                    await workflow.execute_activity(
                        REOPEN_INVOICE, ReopenInvoiceInput(customer_id, facts.number),
                        result_type=ReopenInvoiceResult,
                        start_to_close_timeout=policies.LEDGER_TIMEOUT,
                        retry_policy=policies.LEDGER_RETRY,
                    )
        elif isinstance(effect, Provision):
            transition = effect.transition
            await workflow.execute_activity(
                APPLY_SERVICE_STATE,
                ApplyServiceStateInput(customer_id, transition.state, transition.causes,
                                       transition.event_id),
                result_type=ApplyServiceStateResult,
                start_to_close_timeout=policies.PROVISIONING_TIMEOUT,
                retry_policy=policies.PROVISIONING_RETRY,
            )
        elif isinstance(effect, SendMail):
            self._send(SendNotificationInput(
                key=effect.key, kind=effect.kind, customer_id=customer_id,
                invoice_number=effect.invoice_number,
                service_event_id=effect.service_event_id, processor=effect.processor,
                payment_id=effect.payment_id, payment_ref=effect.payment_ref,
                at=workflow.now(),
            ))

    def _send(self, notification: SendNotificationInput) -> None:
        self.sending = [(t, n) for t, n in self.sending if not t.done()]
        self.sending.append((asyncio.create_task(deliver(notification)), notification))

    def _publish(self, result: LedgerActivityResult | PaymentOutcome) -> None:
        self.entity.service_state = result.service_state
        updates = [sa.SERVICE_STATE.value_set(result.service_state)]
        if result.class_name and result.class_name != self.entity.class_name:
            self.entity.class_name = result.class_name
            updates.append(sa.CUSTOMER_CLASS.value_set(result.class_name))
        workflow.upsert_search_attributes(updates)
        workflow.set_current_details(
            f"Customer {self.entity.customer_id}: service **{result.service_state}**, "
            f"balance {result.balance} (minor units).\nlast: {self.entity.last_operation}\n"
            "waiting for: payments, reversals, re-runs and suspension times of its invoices"
        )

