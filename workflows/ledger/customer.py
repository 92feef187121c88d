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
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from domain.hold import Hold  # noqa: F401 (known to the sandbox: its type hints)
    from domain.ids import invoice_workflow_id, update_transaction_id

    # Imported here by name, not only through the payload modules: the sandbox resolves a
    # payload's type hints in the modules it was told of.
    from domain.ledger.commands import (
        AssignmentOutcome,
        AssignPayment,
        ChargeLateFee,
        EvaluateService,
        HoldOutcome,
        IssueInvoice,
        IssueOutcome,
        LateFeeOutcome,
        PlaceHold,
        ReactivateCustomer,
        Reevaluate,
        ReevaluationOutcome,
        ReleaseHold,
        ReversalOutcome,
        ReversePayment,
        ServiceOutcome,
        TerminateCustomer,
        TerminationOutcome,
        WaiveLateFee,
        WaiverOutcome,
    )
    from domain.ledger.effects import (
        Effect,
        Provision,
        SendMail,
        SignalInvoice,
        effects_of,
        needs_followup,
    )
    from domain.ledger.payments import ApplyPayment, PaymentOutcome
    from domain.notifications.catalog import payment_receipt_key
    from workflows import policies
    from workflows import search_attributes as sa
    from workflows.collection.payloads import (
        APPLY_SERVICE_STATE,
        REOPEN_INVOICE,
        START_INVOICE_WORKFLOW,
        ApplyServiceStateInput,
        ApplyServiceStateResult,
        InvoiceReevaluatedSignal,
        ReopenInvoiceInput,
        ReopenInvoiceResult,
        StartInvoiceWorkflowInput,
        StartInvoiceWorkflowResult,
    )
    from workflows.ledger.payloads import (
        APPLY_PAYMENT,
        ASSIGN_UNMATCHED,
        CHARGE_LATE_FEE,
        EVALUATE_SERVICE,
        ISSUE_INVOICE,
        PLACE_HOLD,
        REACTIVATE_CUSTOMER,
        REEVALUATE_CUSTOMER,
        RELEASE_HOLD,
        REVERSE_PAYMENT,
        TERMINATE_CUSTOMER,
        WAIVE_LATE_FEE,
        CustomerOperation,
        CustomerState,
        CustomerStateQueryResult,
        CustomerWorkflowInput,
        Followup,
        PostPaymentInput,
    )
    from workflows.notifications.notify import deliver_together, effects_queue
    from workflows.notifications.payloads import SendNotificationInput

T = TypeVar("T")
OutcomeT = TypeVar("OutcomeT", bound="LedgerOutcome")
LedgerOutcome = (PaymentOutcome | IssueOutcome | ReversalOutcome | AssignmentOutcome
                 | ReevaluationOutcome | ServiceOutcome | LateFeeOutcome | WaiverOutcome
                 | HoldOutcome | TerminationOutcome)

# Patch ids: a change of commands that running histories must still replay past.
DRY_RUN_KEEPS_PUBLISHED_STATE = "dry-run-keeps-published-state"
# Ledger transactions (and the start of an issued invoice's workflow) run as local
# activities: the caller's update completes in the workflow task that accepted it, with no
# activity task round trip through the server (issue 11; histories before it replay the
# regular activities).
LOCAL_LEDGER = "ledger-as-local-activity"
EFFECTS_AT_ONCE = "effects-of-an-outcome-at-once"


@workflow.defn
class CustomerWorkflow:
    @workflow.init
    def __init__(self, input: CustomerWorkflowInput) -> None:
        # All of this customer's state, in one dataclass handed whole to the next run.
        self.entity: CustomerState = input.initial_state()
        self.lock = asyncio.Lock()
        # The mails this run started, with their tasks: those still running at
        # continue-as-new go to the next run in ``entity.mails``.
        self.sending: list[tuple[asyncio.Task[None], list[SendNotificationInput]]] = []

    # --- updates: the caller waits for the committed transaction -----------------------

    @workflow.update
    async def issue_invoice(self, command: IssueInvoice) -> IssueOutcome:
        """Record the invoice, then start its workflow before answering (so no invoice is
        left without one). A back-dated invoice that moved money between invoices has the
        service decided again at once, in the same turn of the lock, and its changes
        followed up like any other (the invoices hear of it; a paid one open again gets
        its lifecycle back)."""
        async with self.lock:
            outcome = await self._ledger(ISSUE_INVOICE, f"invoice {command.number} issued",
                                         command, IssueOutcome)
            if outcome.changed:
                service = await self._ledger(
                    EVALUATE_SERVICE, f"back-dated invoice {command.number} issued",
                    EvaluateService(self.entity.customer_id,
                                    reason=f"back-dated invoice {command.number} issued"
                                    ).at(workflow.now()),
                    ServiceOutcome)
                outcome = replace(outcome, service_state=service.service_state,
                                  transition=service.transition)
                self._follow(outcome)
        if outcome.status == "conflict":
            return outcome
        started = await self._transaction(
            START_INVOICE_WORKFLOW,
            StartInvoiceWorkflowInput(self.entity.customer_id, command.number),
            StartInvoiceWorkflowResult)
        return replace(outcome, workflow=started.workflow)

    @issue_invoice.validator
    def _validate_invoice(self, command: IssueInvoice) -> None:
        self._mine(command.customer_id)
        if not command.number.strip():
            raise ValueError("invoice number must not be empty")
        if command.new_charges < 0:
            raise ValueError("new charges must not be negative")

    @workflow.update
    async def post_payment(self, input: ApplyPayment | PostPaymentInput) -> PaymentOutcome:
        """``input``: the command built at the edge; a processor's own Temporal client
        sends a PostPaymentInput instead."""
        return await self._apply_payment(self._command(input))

    @post_payment.validator
    def _validate_payment(self, input: ApplyPayment | PostPaymentInput) -> None:
        self._command(input)  # refused before anything is written to history

    @workflow.update
    async def reverse_payment(self, command: ReversePayment) -> ReversalOutcome:
        outcome = await self._transact(
            REVERSE_PAYMENT, f"reversal of {command.processor}:{command.payment_id}",
            command.at(workflow.now()), ReversalOutcome)
        self._follow(outcome)
        return outcome

    @reverse_payment.validator
    def _validate_reversal(self, command: ReversePayment) -> None:
        self._mine(command.customer_id)

    @workflow.update
    async def assign_payment(self, command: AssignPayment) -> AssignmentOutcome:
        outcome = await self._transact(
            ASSIGN_UNMATCHED, f"assignment of {command.processor}:{command.payment_id}",
            command.at(workflow.now()), AssignmentOutcome)
        if outcome.status == "assigned":
            self._follow_payment(outcome, command.processor, command.payment_id)
        return outcome

    @assign_payment.validator
    def _validate_assignment(self, command: AssignPayment) -> None:
        self._mine(command.customer_id)

    @workflow.update
    async def reevaluate(self, command: Reevaluate) -> ReevaluationOutcome:
        # A dry run changes nothing, so it must not publish its would-be service state.
        # Histories recorded before this rule published it; the patch keeps them replaying.
        publish = not (command.dry_run and workflow.patched(DRY_RUN_KEEPS_PUBLISHED_STATE))
        outcome = await self._transact(REEVALUATE_CUSTOMER, command.reason,
                                       command.at(workflow.now()), ReevaluationOutcome,
                                       publish=publish)
        if not command.dry_run:
            self._follow(outcome)
        return outcome

    @reevaluate.validator
    def _validate_reevaluation(self, command: Reevaluate) -> None:
        self._mine(command.customer_id)

    @workflow.update
    async def waive_late_fee(self, command: WaiveLateFee) -> WaiverOutcome:
        """Finance waives an invoice's late fee (SPEC 2.9); audited by the transaction."""
        outcome = await self._transact(
            WAIVE_LATE_FEE, f"late fee of invoice {command.invoice_number} waived",
            command.at(workflow.now()), WaiverOutcome)
        self._follow(outcome)
        return outcome

    @waive_late_fee.validator
    def _validate_waiver(self, command: WaiveLateFee) -> None:
        self._mine(command.customer_id)

    @workflow.update
    async def place_hold(self, command: PlaceHold) -> HoldOutcome:
        """Finance puts the customer on hold (SPEC 2.11); audited by the transaction. With
        an ``until``, this workflow's timer ends the hold then."""
        outcome = await self._transact(
            PLACE_HOLD, "customer put on hold", command.at(workflow.now()), HoldOutcome)
        self._follow(outcome)
        return outcome

    @place_hold.validator
    def _validate_hold(self, command: PlaceHold) -> None:
        self._mine(command.customer_id)
        if not command.reason.strip():
            raise ValueError("a hold needs a reason")

    @workflow.update
    async def release_hold(self, command: ReleaseHold) -> HoldOutcome:
        """Finance releases the hold: steps continue from now by SPEC 2.3's rule (a
        suspension that is due happens at once)."""
        outcome = await self._transact(
            RELEASE_HOLD, "hold released", command.at(workflow.now()), HoldOutcome)
        self._follow(outcome)
        return outcome

    @release_hold.validator
    def _validate_release(self, command: ReleaseHold) -> None:
        self._mine(command.customer_id)

    @workflow.update
    async def reactivate(self, command: ReactivateCustomer) -> TerminationOutcome:
        """Finance brings a terminated customer back (SPEC 2.9): SPEC 2.4 applies again,
        its open invoices get their lifecycles back."""
        outcome = await self._transact(
            REACTIVATE_CUSTOMER, "customer reactivated", command.at(workflow.now()),
            TerminationOutcome)
        self._follow(outcome)
        return outcome

    @reactivate.validator
    def _validate_reactivation(self, command: ReactivateCustomer) -> None:
        self._mine(command.customer_id)

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
    def evaluate_service(self, command: EvaluateService) -> None:
        try:
            self._mine(command.customer_id)
        except ValueError as err:
            workflow.logger.warning(f"ignoring service evaluation signal: {err}")
            return
        self.entity.queue.append(CustomerOperation(kind="evaluate_service", evaluate=command))

    @workflow.signal
    def charge_late_fee(self, command: ChargeLateFee) -> None:
        """From the invoice's workflow at D + late-fee-after (SPEC 2.9): queued like a
        payment; the ledger decides whether the fee is due."""
        try:
            self._mine(command.customer_id)
        except ValueError as err:
            workflow.logger.warning(f"ignoring late fee signal: {err}")
            return
        self.entity.queue.append(CustomerOperation(kind="late_fee", fee=command))

    @workflow.query
    def state(self) -> CustomerStateQueryResult:
        return CustomerStateQueryResult(
            customer_id=self.entity.customer_id, service_state=self.entity.service_state,
            queued=len(self.entity.queue), followups=len(self.entity.followups),
            last_operation=self.entity.last_operation, on_hold=self.entity.on_hold,
            hold_until=self.entity.hold_until, terminate_at=self.entity.terminate_at,
        )

    # --- main loop ---------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CustomerWorkflowInput) -> None:
        workflow.upsert_search_attributes([sa.CUSTOMER_ID.value_set(self.entity.customer_id)])
        for notification in self.entity.mails:
            self._send([notification])  # the outbox keeps them to one delivery each
        while True:
            await self._wait_for_work()
            if self.entity.followups:
                await self._carry_out(self.entity.followups.pop(0))
            elif self.entity.queue:
                await self._run_queued(self.entity.queue.pop(0))
            elif self._history_is_long():
                break
            # else: a timer's deadline changed (a hold placed or released): wait again
        # Let running updates finish, then hand over what they queued and the mails still
        # in flight (a mail retrying for days must not hold up this customer's payments).
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.entity.mails = [n for task, batch in self.sending if not task.done()
                             for n in batch]
        workflow.continue_as_new(
            CustomerWorkflowInput(self.entity.customer_id, state=self.entity)
        )

    async def _wait_for_work(self) -> None:
        """Until there is work; a hold with an ``until`` (SPEC 2.11) and a suspension's
        terminate-after (SPEC 2.9) are timers. Without them the wait is the one histories
        recorded before both have."""
        until, terminate_at = self.entity.hold_until, self.entity.terminate_at

        def ready() -> bool:
            return (bool(self.entity.queue or self.entity.followups)
                    or self._history_is_long()
                    or (self.entity.hold_until, self.entity.terminate_at) != (until,
                                                                               terminate_at))

        deadlines = [t for t in (until, terminate_at) if t is not None]
        if not deadlines:
            await workflow.wait_condition(ready)
            return
        delay = min(deadlines) - workflow.now()
        if delay > timedelta(0):
            summary = "hold ends" if min(deadlines) == until else "termination due"
            try:
                await workflow.wait_condition(ready, timeout=delay, timeout_summary=summary)
                return
            except TimeoutError:
                pass
        now = workflow.now()
        # The time has come: each goes to the ledger like any queued operation, once.
        if until is not None and now >= until:
            self.entity.hold_until = None
            self.entity.queue.append(CustomerOperation(kind="end_hold", end_hold=ReleaseHold(
                self.entity.customer_id, expired=True, until=until)))
        if terminate_at is not None and now >= terminate_at:
            self.entity.terminate_at = None
            self.entity.queue.append(CustomerOperation(
                kind="terminate", terminate=TerminateCustomer(self.entity.customer_id)))

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
                outcome = await self._transact(EVALUATE_SERVICE, op.evaluate.reason,
                                               op.evaluate.at(workflow.now()), ServiceOutcome)
                self._follow(outcome)
            elif op.kind == "late_fee" and op.fee is not None:
                fee = await self._transact(
                    CHARGE_LATE_FEE, f"late fee of invoice {op.fee.invoice_number}",
                    op.fee.at(workflow.now()), LateFeeOutcome)
                self._follow(fee, fee_invoice=fee.invoice_number
                             if fee.status == "charged" else None)
            elif op.kind == "end_hold" and op.end_hold is not None:
                ended = await self._transact(RELEASE_HOLD, "hold ended",
                                             op.end_hold.at(workflow.now()), HoldOutcome)
                self._follow(ended)
            elif op.kind == "terminate" and op.terminate is not None:
                terminated = await self._transact(
                    TERMINATE_CUSTOMER, "suspension's terminate-after reached",
                    op.terminate.at(workflow.now()), TerminationOutcome)
                self._follow(terminated)
        except ApplicationError as err:
            # Bad input on the fire-and-forget path has nobody to answer to: log it.
            workflow.logger.warning(f"operation {op.kind} rejected: {err}")

    def _command(self, payment: ApplyPayment | PostPaymentInput) -> ApplyPayment:
        """The command itself, or the one ApplyPayment.build makes of a processor's
        PostPaymentInput (its currency is the one the ledger's schema then holds to the
        class's). Raises ValueError with SPEC 2.1's message."""
        if isinstance(payment, ApplyPayment):
            self._mine(payment.customer_id)
            return payment
        return ApplyPayment.build(
            processor=payment.processor, payment_id=payment.payment_id,
            customer_id=self.entity.customer_id, amount=payment.amount,
            currency=payment.currency, class_currency=payment.currency,
            class_name=self.entity.class_name or "", received_at=payment.received_at,
            source=payment.source,  # type: ignore[arg-type]
            actor=payment.actor)

    def _mine(self, customer_id: str) -> None:
        if customer_id != self.entity.customer_id:
            raise ValueError(f"a command for customer {customer_id!r} sent to the workflow "
                             f"of {self.entity.customer_id!r}")

    async def _apply_payment(self, payment: ApplyPayment) -> PaymentOutcome:
        # Stamped here, deterministically, so a replay sees the same instant.
        command = payment.at(workflow.now())
        outcome = await self._transact(
            APPLY_PAYMENT, f"payment {command.processor}:{command.payment_id}", command,
            PaymentOutcome)
        if outcome.status == "accepted":
            self._follow_payment(outcome, command.processor, command.payment_id)
        return outcome

    def _follow_payment(self, outcome: PaymentOutcome | AssignmentOutcome, processor: str,
                        payment_id: str) -> None:
        receipt = payment_receipt_key(processor, payment_id) if outcome.payment_receipts else None
        self._follow(outcome, receipt_key=receipt, processor=processor, payment_id=payment_id)

    async def _transact(self, activity: str, reason: str, command: Any,
                        outcome_type: type[OutcomeT], *, publish: bool = True) -> OutcomeT:
        """One ledger transaction at a time for this customer (the lock)."""
        async with self.lock:
            return await self._ledger(activity, reason, command, outcome_type,
                                      publish=publish)

    async def _ledger(self, activity: str, reason: str, command: Any,
                      outcome_type: type[OutcomeT], *, publish: bool = True) -> OutcomeT:
        self.entity.last_operation = f"{activity}: {reason}"
        outcome = await self._transaction(activity, command, outcome_type)
        if publish:
            self._publish(outcome)
        return outcome

    async def _transaction(self, activity: str, arg: Any, result_type: type[T]) -> T:
        """One short database transaction, idempotent by its activity's token."""
        try:
            if not workflow.patched(LOCAL_LEDGER):
                return await workflow.execute_activity(
                    activity, arg, result_type=result_type,
                    start_to_close_timeout=policies.LEDGER_TIMEOUT,
                    retry_policy=policies.LEDGER_RETRY,
                )
            return await workflow.execute_local_activity(
                activity, arg, result_type=result_type,
                start_to_close_timeout=policies.LEDGER_TIMEOUT,
                retry_policy=policies.LEDGER_RETRY,
                activity_id=self._transaction_id(activity),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                # Fails only this update (or queued operation), never the workflow.
                raise ApplicationError(cause.message, type=cause.type,
                                       non_retryable=True) from None
            raise

    @staticmethod
    def _transaction_id(activity: str) -> str | None:
        """The activity id, and so the ledger token, of a transaction run for an update:
        the update's own id. A local activity's result enters history only with the
        workflow task that ran it. If that task is lost (a worker crash; or the server
        refused its completion because a signal came in), the update is handed again, or
        retried by its caller, possibly after other work or in the next run: a sequence
        number could differ there and the committed payment would answer "duplicate".
        The update id does not change, so the retry finds the first result. Queued
        operations (signals) are in history already: the SDK's sequence id is stable."""
        update = workflow.current_update_info()
        return None if update is None else update_transaction_id(update.id, activity)

    def _follow(self, result: LedgerOutcome, *,
                receipt_key: str | None = None, processor: str | None = None,
                payment_id: str | None = None, fee_invoice: str | None = None) -> None:
        followup = Followup(changed=result.changed, transition=result.transition,
                            receipt_key=receipt_key, service_state=result.service_state,
                            processor=processor, payment_id=payment_id,
                            fee_invoice=fee_invoice)
        if needs_followup(followup):
            self.entity.followups.append(followup)

    async def _carry_out(self, followup: Followup) -> None:
        """One outcome's effects, all at once: its signals, provisioning and mails go out
        in one workflow task (they do not depend on each other), its mails in one
        activity. Outcomes still follow one another: a suspension's provisioning is done
        before a resumption's starts."""
        effects = effects_of(self.entity.customer_id, followup)
        if not workflow.patched(EFFECTS_AT_ONCE):
            for effect in effects:  # histories recorded before: one after the other
                await self._do(effect)
            return
        others = asyncio.gather(*(self._do(e) for e in effects if not isinstance(e, SendMail)))
        mails = [self._notification(e) for e in effects if isinstance(e, SendMail)]
        if mails:
            self._send(mails)
        await others

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
                task_queue=effects_queue(),
                start_to_close_timeout=policies.PROVISIONING_TIMEOUT,
                retry_policy=policies.PROVISIONING_RETRY,
            )
        elif isinstance(effect, SendMail):
            self._send([self._notification(effect)])

    def _notification(self, mail: SendMail) -> SendNotificationInput:
        return SendNotificationInput(
            key=mail.key, kind=mail.kind, customer_id=self.entity.customer_id,
            invoice_number=mail.invoice_number, service_event_id=mail.service_event_id,
            processor=mail.processor, payment_id=mail.payment_id,
            payment_ref=mail.payment_ref, at=workflow.now(),
        )

    def _send(self, notifications: list[SendNotificationInput]) -> None:
        """Start the delivery of mails that go together (one outcome's); the main loop
        does not wait for it (SPEC 2.6: mail never blocks a lifecycle)."""
        self.sending = [(t, batch) for t, batch in self.sending if not t.done()]
        self.sending.append((asyncio.create_task(deliver_together(notifications)),
                             notifications))

    def _publish(self, result: LedgerOutcome) -> None:
        self.entity.service_state = result.service_state
        updates = [sa.SERVICE_STATE.value_set(result.service_state)]
        if isinstance(result, HoldOutcome):  # only hold outcomes: older commands unchanged
            self.entity.on_hold = result.hold is not None
            self.entity.hold_until = result.hold.until if result.hold is not None else None
            updates.append(sa.ON_HOLD.value_set(self.entity.on_hold))
        # SPEC 2.9: a suspension's termination time, while it lasts (histories recorded
        # before have none: no timer, no command of theirs changes).
        transition = result.transition
        if transition is not None:
            self.entity.terminate_at = transition.terminate_at
        if isinstance(result, HoldOutcome | TerminationOutcome) and result.terminate_at:
            self.entity.terminate_at = result.terminate_at
        if result.class_name and result.class_name != self.entity.class_name:
            self.entity.class_name = result.class_name
            updates.append(sa.CUSTOMER_CLASS.value_set(result.class_name))
        workflow.upsert_search_attributes(updates)
        workflow.set_current_details(
            f"Customer {self.entity.customer_id}: service **{result.service_state}**, "
            f"balance {result.balance} (minor units).\nlast: {self.entity.last_operation}\n"
            "waiting for: payments, reversals, re-runs and suspension times of its invoices"
        )

