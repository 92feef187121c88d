"""InvoiceWorkflow: one invoice's collection lifecycle (SPEC 2.5, 3).

Sleeps on timers until each step, re-checks the facts in the database at each step and
acts only when the invoice is ``collect`` with something remaining; reacts at once to the
re-evaluation signal sent by the CustomerWorkflow; ends when the invoice is paid.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.collection.evaluation import drives_dunning
    from domain.collection.schedule import Step, StepDecision, decide_steps
    from domain.hold import held_step
    from domain.ledger.commands import ChargeLateFee, ReachSuspension, SuspensionReached

    # By name, so the sandbox knows the module: it resolves InvoiceFacts' type hints
    # (``hold: Hold | None``) in it.
    from domain.ledger.effects import InvoiceFacts as _InvoiceFacts  # noqa: F401
    from domain.notifications.catalog import STEP_TABLE, StepKind, invoice_notification_key
    from workflows import policies
    from workflows import search_attributes as sa
    from workflows.collection.payloads import (
        CHECK_INVOICE,
        REACH_SUSPENSION,
        REQUEST_LATE_FEE,
        CheckInvoiceInput,
        InvoiceFacts,
        InvoiceReevaluatedSignal,
        InvoiceStatusQueryResult,
        InvoiceWorkflowInput,
        InvoiceWorkflowResult,
        LateFeeRequested,
    )
    from workflows.notifications.notify import deliver
    from workflows.notifications.payloads import SendNotificationInput

# Versioning marker: the step check became a regular activity (histories recorded before
# replay the local activity). A local activity retrying through a database outage spans
# workflow tasks, and a signal arriving meanwhile was ordered differently on replay than
# when it ran; an activity's completion is an event, so the order is the history's.
CHECK_AS_ACTIVITY = "check-invoice-as-activity"


@workflow.defn
class InvoiceWorkflow:
    @workflow.init
    def __init__(self, input: InvoiceWorkflowInput) -> None:
        self.input = input
        self.facts: InvoiceFacts = input.facts
        self.pending: list[Step] = [
            Step(kind=StepKind(s.kind), key=s.key, at=s.at)
            for s in sorted(input.steps, key=lambda s: s.at)
        ]
        # Steps working time moved (SPEC 2.10), computed where the invoice was issued and
        # carried by the input: their nominal time and why, for the query and the UI.
        self.moved: dict[str, tuple[datetime, str]] = {
            s.key: (s.nominal_at, s.why) for s in input.steps
            if s.nominal_at is not None and s.why
        }
        self.outcomes: dict[str, str] = {}
        self.changed = False
        self.reason = "just issued"
        self.mails: list[asyncio.Task[None]] = []
        # Only "terminated" changes what a starting workflow does (SPEC 2.9).
        self.service_state: str | None = (
            "terminated" if input.service_state == "terminated" else None)
        self.signals = 0  # re-evaluations received, to tell a check overtaken by one
        # Set once facts carrying a hold arrive (SPEC 2.11): from then on OnHold is kept
        # current; histories recorded before holds never set it, so their commands stay.
        self.hold_seen = input.facts.hold is not None

    # --- handlers ----------------------------------------------------------------------

    @workflow.signal
    def reevaluated(self, signal: InvoiceReevaluatedSignal) -> None:
        self.facts = signal.facts
        self.hold_seen = self.hold_seen or signal.facts.hold is not None
        self.signals += 1
        if signal.service_state:
            self.service_state = signal.service_state
        self.changed = True

    @workflow.query
    def status(self) -> InvoiceStatusQueryResult:
        nxt = self.pending[0] if self.pending else None
        return InvoiceStatusQueryResult(
            state=self._state(),
            remaining=self.facts.remaining,
            currency=self.input.currency,
            collection_status=self.facts.collection_status,
            payment_status=self.facts.payment_status,
            next_step=nxt.key if nxt else None,
            next_step_at=nxt.at if nxt else None,
            reason=self.reason,
            steps=dict(self.outcomes),
            next_step_nominal_at=self.moved[nxt.key][0] if nxt and nxt.key in self.moved
            else None,
            next_step_why=self.moved[nxt.key][1] if nxt and nxt.key in self.moved else None,
            moved={key: why for key, (_, why) in self.moved.items()},
            hold=self.facts.hold.describe() if self.facts.hold is not None else None,
        )

    # --- main loop ---------------------------------------------------------------------

    @workflow.run
    async def run(self, input: InvoiceWorkflowInput) -> InvoiceWorkflowResult:
        self._send("invoice_issued", self._key("invoice_issued"))
        # Steps already behind us when the workflow starts (an invoice entered late).
        if not self._finished():
            await self._process_due(reached_until=None)
        while True:
            await self._follow_until_finished()
            self._publish()
            # A mail still retrying must finish (or fail) before the workflow closes; a
            # reversal that opens the invoice meanwhile takes the lifecycle up again.
            await asyncio.gather(*self.mails)
            if self._finished():
                break
        return InvoiceWorkflowResult(
            number=input.invoice_number, outcome="paid" if self.facts.paid else "terminated",
            steps=dict(self.outcomes))

    async def _follow_until_finished(self) -> None:
        while not self._finished():
            self._publish()
            nxt = self.pending[0] if self.pending else None
            if nxt is None:
                await workflow.wait_condition(lambda: self.changed)
            else:
                delay = max(nxt.at - workflow.now(), timedelta(0))
                try:
                    await workflow.wait_condition(
                        lambda: self.changed, timeout=delay, timeout_summary=nxt.key
                    )
                except TimeoutError:
                    await self._process_due(reached_until=nxt.at)
                    continue
            await self._on_reevaluated()

    async def _on_reevaluated(self) -> None:
        self.changed = False
        self.reason = (
            f"re-evaluated: remaining {self.facts.remaining}, {self.facts.collection_status}"
        )
        if self.facts.hold is not None:  # SPEC 2.11: say why the next steps are held
            self.reason += f"; steps held: {self.facts.hold.describe()}"

    async def _process_due(self, reached_until: datetime | None) -> None:
        decisions = decide_steps(self.pending, workflow.now(), reached_until)
        if not decisions:
            return
        facts: InvoiceFacts | None = None
        for step, decision in decisions:
            self.pending.remove(step)
            rule = STEP_TABLE[step.kind]
            if step.kind is StepKind.LATE_FEE:
                # Only in inputs planned for a class with a fee (SPEC 2.9): histories
                # recorded before have no such step, so their commands are unchanged.
                if decision is StepDecision.SKIP:
                    self.outcomes[step.key] = "skipped: its time had passed"
                else:
                    # The ledger decides, with the hold it holds (SPEC 2.11: no fee then).
                    await self._request_late_fee(step.at)
                    held = held_step(self.facts.hold, step.kind)
                    self.outcomes[step.key] = "requested" if held is None else (
                        f"requested, not charged: {held}")
                continue
            if rule.mail is None:  # the suspension itself
                # Recorded whatever the status: a later reversal or re-run that makes the
                # invoice `collect` must suspend at once (SPEC 2.4).
                await self._reach_suspension()
                held = held_step(self.facts.hold, "suspension")
                self.outcomes[step.key] = "reached" if held is None else f"reached, {held}"
                continue
            if decision is StepDecision.SKIP:
                self.outcomes[step.key] = "skipped: its time had passed"
                continue
            if facts is None:
                facts = await self._check()
            held = held_step(facts.hold, step.kind)
            if facts.paid:
                self.outcomes[step.key] = "skipped: paid"
            elif held is not None:  # SPEC 2.11: not sent, and not sent late either
                self.outcomes[step.key] = held
            elif not drives_dunning(facts.collection_status, facts.remaining):
                self.outcomes[step.key] = f"skipped: {facts.collection_status}"
            else:
                self._send(rule.mail, self._key(step.key))
                self.outcomes[step.key] = "sent"
        self.reason = "; ".join(f"{k} {v}" for k, v in self.outcomes.items())

    # --- helpers -----------------------------------------------------------------------

    async def _check(self) -> InvoiceFacts:
        check = CheckInvoiceInput(self.input.customer_id, self.input.invoice_number)
        if not workflow.patched(CHECK_AS_ACTIVITY):
            self.facts = await workflow.execute_local_activity(
                CHECK_INVOICE, check, result_type=InvoiceFacts,
                start_to_close_timeout=policies.LEDGER_TIMEOUT,
                retry_policy=policies.LEDGER_RETRY,
            )
            return self.facts
        seen = self.signals
        facts = await workflow.execute_activity(
            CHECK_INVOICE, check, result_type=InvoiceFacts,
            start_to_close_timeout=policies.LEDGER_TIMEOUT,
            retry_policy=policies.LEDGER_RETRY,
        )
        # A re-evaluation that arrived while the check ran was sent after a commit the
        # check may have read before; it wins, and any later commit sends another one.
        if self.signals == seen:
            self.facts = facts
        return self.facts

    async def _reach_suspension(self) -> None:
        await workflow.execute_activity(
            REACH_SUSPENSION,
            ReachSuspension(self.input.customer_id, self.input.invoice_number,
                            workflow.now()),
            result_type=SuspensionReached,
            start_to_close_timeout=policies.LEDGER_TIMEOUT,
            retry_policy=policies.LEDGER_RETRY,
        )

    async def _request_late_fee(self, at: datetime) -> None:
        # The customer's ledger decides (collect with remaining > 0, once per invoice) and
        # charges it as of ``at``; this invoice hears of its new remaining by the signal.
        await workflow.execute_activity(
            REQUEST_LATE_FEE,
            ChargeLateFee(self.input.customer_id, self.input.invoice_number,
                          charged_at=at),
            result_type=LateFeeRequested,
            start_to_close_timeout=policies.LEDGER_TIMEOUT,
            retry_policy=policies.LEDGER_RETRY,
        )

    def _send(self, kind: str, key: str) -> None:
        notification = SendNotificationInput(
            key=key, kind=kind, customer_id=self.input.customer_id,
            invoice_number=self.input.invoice_number, at=workflow.now(),
        )
        self.mails.append(asyncio.create_task(deliver(notification)))

    def _key(self, step: str) -> str:
        return invoice_notification_key(self.input.customer_id, self.input.invoice_number, step)

    def _finished(self) -> bool:
        # SPEC 2.9: a terminated customer's invoices end their dunning (payments are still
        # applied by the customer's ledger; finance's reactivation starts them again).
        return self.facts.paid or self.service_state == "terminated"

    def _state(self) -> str:
        if self.facts.paid:
            return "paid"
        if self.service_state == "terminated":
            return "terminated"
        return "waiting" if self.pending else "waiting for payment"

    def _publish(self) -> None:
        """Keep the UI current: search attributes and what the workflow waits for."""
        updates = [sa.COLLECTION_STATUS.value_set(self.facts.collection_status)]
        if self.service_state:
            updates.append(sa.SERVICE_STATE.value_set(self.service_state))
        if self.hold_seen:
            updates.append(sa.ON_HOLD.value_set(self.facts.hold is not None))
        workflow.upsert_search_attributes(updates)
        nxt = self.pending[0] if self.pending else None
        waiting = (
            f"next: **{nxt.key}** at {nxt.at.isoformat()}" if nxt else "next: payment"
        )
        if nxt is not None and nxt.key in self.moved:
            nominal, why = self.moved[nxt.key]
            waiting += f" (moved from {nominal.isoformat()}: {why})"
        workflow.set_current_details(
            f"Invoice {self.input.invoice_number} of {self.input.customer_id}: "
            f"{self.facts.payment_status}, remaining {self.facts.remaining} "
            f"{self.input.currency} (minor units), {self.facts.collection_status}.\n"
            f"{waiting}\nwhy: {self.reason}"
            + (f"\nheld: {self.facts.hold.describe()}" if self.facts.hold is not None else "")
        )

