"""Test doubles shared by the workflow-logic tests (activities replaced, real dev server).

``EffectActivities`` records what a CustomerWorkflow does with an outcome's effects
(reopen an invoice, provisioning, mail), registered under the real activity names;
``StubInvoiceWorkflow`` stands in for a running invoice workflow; ``commands_in_history``
lists what a workflow run asked the server for (activities, signals), in order.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from temporalio import activity, workflow
from temporalio.client import WorkflowHandle

with workflow.unsafe.imports_passed_through():
    # Passed through, so the sandbox's types are the host's: the signal's type hints
    # (InvoiceFacts.hold: Hold, with datetimes) resolve to the real classes, in modules
    # the sandbox knows by name.
    import domain.hold  # noqa: F401
    import domain.ledger.effects  # noqa: F401
    from workflows.collection.payloads import (
        APPLY_SERVICE_STATE,
        REOPEN_INVOICE,
        ApplyServiceStateInput,
        ApplyServiceStateResult,
        InvoiceReevaluatedSignal,
        ReopenInvoiceInput,
        ReopenInvoiceResult,
    )
    from workflows.notifications.payloads import (
        SEND_NOTIFICATION,
        SEND_NOTIFICATIONS,
        SendNotificationInput,
        SendNotificationResult,
        SendNotificationsInput,
        SendNotificationsResult,
    )


LOCAL_ACTIVITY = "core_local_activity"  # the SDK's marker name for a local activity


@workflow.defn(name="StubInvoice")
class StubInvoiceWorkflow:
    """Stands in for a running InvoiceWorkflow: keeps the signals it receives."""

    def __init__(self) -> None:
        self.received: list[InvoiceReevaluatedSignal] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def reevaluated(self, signal: InvoiceReevaluatedSignal) -> None:
        self.received.append(signal)

    @workflow.query
    def signals(self) -> list[InvoiceReevaluatedSignal]:
        return self.received


@dataclass
class EffectActivities:
    """The effect activities, recording each call."""

    # Keyword-only, so subclasses may add positional fields of their own.
    transitions: list[ApplyServiceStateInput] = field(default_factory=list, kw_only=True)
    reopened: list[str] = field(default_factory=list, kw_only=True)
    mails: list[SendNotificationInput] = field(default_factory=list, kw_only=True)

    @activity.defn(name=APPLY_SERVICE_STATE)
    async def apply_service_state(self, input: ApplyServiceStateInput
                                  ) -> ApplyServiceStateResult:
        self.transitions.append(input)
        return ApplyServiceStateResult(provisioned=True, detail="test")

    @activity.defn(name=REOPEN_INVOICE)
    async def reopen_invoice(self, input: ReopenInvoiceInput) -> ReopenInvoiceResult:
        self.reopened.append(input.invoice_number)
        return ReopenInvoiceResult(started=True)

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(self, input: SendNotificationInput) -> SendNotificationResult:
        self.mails.append(input)
        return SendNotificationResult(key=input.key, status="sent")

    @activity.defn(name=SEND_NOTIFICATIONS)
    async def send_notifications(self, input: SendNotificationsInput
                                 ) -> SendNotificationsResult:
        self.mails.extend(input.notifications)
        return SendNotificationsResult(results=[
            SendNotificationResult(key=n.key, status="sent") for n in input.notifications])

    def effects(self) -> list:
        return [self.apply_service_state, self.reopen_invoice, self.send_notification,
                self.send_notifications]


async def eventually(check, what: str) -> None:
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def commands_in_history(handle: WorkflowHandle) -> list[str]:
    """The activities this run scheduled or ran locally (their names) and the signals it sent to other
    workflows (``signal:<workflow id>``), in history order: what it did, not only what
    a fake happened to have recorded so far."""
    scheduled = "activity_task_scheduled_event_attributes"
    signalled = "signal_external_workflow_execution_initiated_event_attributes"
    marker = "marker_recorded_event_attributes"
    done = []
    for event in (await handle.fetch_history()).events:
        if event.HasField(scheduled):
            done.append(getattr(event, scheduled).activity_type.name)
        elif event.HasField(marker) and getattr(event, marker).marker_name == LOCAL_ACTIVITY:
            # A local activity is recorded as a marker once it completed; its details
            # hold the activity type as JSON.
            (data,) = getattr(event, marker).details["data"].payloads
            done.append(json.loads(data.data)["activity_type"])
        elif event.HasField(signalled):
            done.append(f"signal:{getattr(event, signalled).workflow_execution.workflow_id}")
    return done
