"""Moving one customer's workflows forward in time, on a Temporal server that skips time.

For demos and end-to-end tests (`dunning clock advance`): a dunning story lasts weeks,
and the Temporal dev server can fast-forward a workflow's own clock when started with
``--dynamic-config-value frontend.WorkflowTimeSkippingEnabled=true`` (`dunning dev` does).
A production server refuses, and so does this.

Each workflow has its own virtual clock, and the customer's workflow stamps every
transaction with its clock. So all of one customer's workflows move together, from event
to event: find the earliest timer any of them waits for (an invoice's next step, the end
of a hold, a termination), move the customer's workflow there first (it records what the
invoices then ask), then its invoices, wait until all are idle, and go on. Nothing is
skipped past: every step happens at its own instant, as it would in real time.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import google.protobuf.field_mask_pb2
from temporalio.api.common.v1 import FastForwardConfig, TimeSkippingConfig, WorkflowExecution
from temporalio.api.enums.v1.time_skipping_pb2 import FastForwardPollingResult
from temporalio.api.workflow.v1 import WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    PollWorkflowExecutionTimeSkippingRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from domain.ids import customer_workflow_id
from workflows.collection.invoice import InvoiceWorkflow
from workflows.ledger.customer import CustomerWorkflow

# A move shorter than this is noise: virtual clocks run on in real time between moves.
_SLACK = timedelta(seconds=1)
_IDLE_POLL = 0.2
_IDLE_TIMEOUT = 60.0
_MAX_STOPS = 200


class ClockError(RuntimeError):
    """The server cannot move this customer's time (the message says why, for a person)."""


@dataclass(frozen=True)
class WorkflowClock:
    workflow_id: str
    now: datetime
    next_event: str | None = None
    next_event_at: datetime | None = None


@dataclass(frozen=True)
class Advance:
    """What one `clock advance` did: where the customer's clock is now, and each stop."""

    customer_id: str
    now: datetime
    stops: tuple[tuple[datetime, str], ...]


async def clocks(client: Client, customer_id: str) -> list[WorkflowClock]:
    """The customer's running workflows (its own first), each with its virtual time and
    the next timer it waits for."""
    return [await _clock(client, handle) for handle in await _running(client, customer_id)]


async def advance(client: Client, customer_id: str, target: datetime) -> Advance:
    """Move every running workflow of the customer to ``target`` (its own clock's time),
    stopping at each event on the way; returns the stops made."""
    stops: list[tuple[datetime, str]] = []
    for _ in range(_MAX_STOPS):
        handles = await _running(client, customer_id)
        now = [await _clock(client, h) for h in handles]
        latest = max(c.now for c in now)
        # An event at or before the latest clock happens in real time by itself.
        pending = sorted((c.next_event_at, c.next_event or "step", i) for i, c in enumerate(now)
                         if c.next_event_at is not None and latest < c.next_event_at <= target)
        stop_at, what, owner = pending[0] if pending else (target, "", None)
        for handle, clock in zip(handles, now, strict=True):
            if stop_at - clock.now >= _SLACK:
                await _fast_forward(client, handle, stop_at - clock.now)
        if owner is not None:
            # The timer fires just after its workflow's clock reaches it: wait for it to,
            # or the next move would take the others past what it then asks of them.
            await _passed(client, handles[owner], stop_at)
        await _idle(client, customer_id)
        if not pending:
            final = max(c.now for c in await clocks(client, customer_id))
            return Advance(customer_id, final, tuple(stops))
        stops.append((stop_at, what))
    raise ClockError(f"more than {_MAX_STOPS} events before {target.isoformat()}: move "
                     "the clock in smaller steps")


async def _running(client: Client, customer_id: str) -> list[WorkflowHandle]:
    own = customer_workflow_id(customer_id)
    handles: list[WorkflowHandle] = []
    query = f"CustomerId = '{_quoted(customer_id)}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id)
        # Visibility lags a little behind: a workflow that just ended may still be listed.
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            continue
        handles.insert(0, handle) if execution.id == own else handles.append(handle)
    if not handles or handles[0].id != own:
        raise ClockError(f"{customer_id} has no running customer workflow (no invoice or "
                         "payment yet?)")
    return handles


def _quoted(value: str) -> str:
    # Visibility queries take no parameters: a customer id is a value, never syntax.
    if "'" in value or "\\" in value:
        raise ClockError(f"cannot look up workflows of customer id {value!r}")
    return value


async def _clock(client: Client, handle: WorkflowHandle) -> WorkflowClock:
    description = await handle.describe()
    info = description.raw_description.workflow_extended_info
    now = (info.time_skipping_info.current_time.ToDatetime().replace(tzinfo=UTC)
           if info.HasField("time_skipping_info") else datetime.now(UTC))
    if description.workflow_type == CustomerWorkflow.__name__:
        state = await client.get_workflow_handle_for(CustomerWorkflow.run, handle.id).query(
            CustomerWorkflow.state)
        events = [(at, name) for at, name in ((state.hold_until, "hold ends"),
                                               (state.terminate_at, "termination"))
                  if at is not None]
        at, name = min(events) if events else (None, None)
        return WorkflowClock(handle.id, now, name, at)
    if description.workflow_type == InvoiceWorkflow.__name__:
        status = await client.get_workflow_handle_for(InvoiceWorkflow.run, handle.id).query(
            InvoiceWorkflow.status)
        if status.next_step_at is not None:
            return WorkflowClock(handle.id, now, f"{handle.id}: {status.next_step}",
                                 status.next_step_at)
    return WorkflowClock(handle.id, now)


async def _fast_forward(client: Client, handle: WorkflowHandle, by: timedelta) -> None:
    forward_id = uuid.uuid4().hex
    config = TimeSkippingConfig(enabled=True, fast_forward_config=FastForwardConfig(
        id=forward_id))
    config.fast_forward_config.duration.FromTimedelta(by)
    execution = WorkflowExecution(workflow_id=handle.id)
    try:
        await client.workflow_service.update_workflow_execution_options(
            UpdateWorkflowExecutionOptionsRequest(
                namespace=client.namespace, workflow_execution=execution,
                workflow_execution_options=WorkflowExecutionOptions(
                    time_skipping_config=config),
                update_mask=google.protobuf.field_mask_pb2.FieldMask(
                    paths=["time_skipping_config"]),
                identity=client.identity))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND or (
                await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return  # it ended meanwhile (a paid invoice): nothing left to move
        if err.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.PERMISSION_DENIED,
                          RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.FAILED_PRECONDITION):
            raise ClockError(
                "this Temporal server does not skip time: start it with --dynamic-config-value "
                "frontend.WorkflowTimeSkippingEnabled=true (`dunning dev` does) "
                f"[{err.message}]") from None
        raise
    poll = PollWorkflowExecutionTimeSkippingRequest(
        namespace=client.namespace, workflow_execution=execution, fast_forward_id=forward_id)
    while True:
        answer = await client.workflow_service.poll_workflow_execution_time_skipping(
            poll, retry=True)
        done = answer.fast_forward_polling_result
        if done == FastForwardPollingResult.FAST_FORWARD_POLLING_RESULT_FAST_FORWARD_COMPLETED:
            return
        if done == FastForwardPollingResult.FAST_FORWARD_POLLING_RESULT_FAST_FORWARD_FAILED:
            return  # the workflow ended on the way (a paid invoice): nothing left to move


async def _passed(client: Client, handle: WorkflowHandle, event_at: datetime) -> None:
    deadline = asyncio.get_running_loop().time() + _IDLE_TIMEOUT
    while True:
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return
        if (await _clock(client, handle)).next_event_at != event_at:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise ClockError(f"{handle.id} did not act on its event at {event_at.isoformat()}"
                             f" within {_IDLE_TIMEOUT:.0f}s (is the worker running?)")
        await asyncio.sleep(_IDLE_POLL)


async def _idle(client: Client, customer_id: str) -> None:
    """Until none of the customer's workflows has a task or an activity in flight, twice
    in a row (a signal from one wakes another; an event may start a new one)."""
    deadline = asyncio.get_running_loop().time() + _IDLE_TIMEOUT
    quiet = 0
    while quiet < 2:
        busy = False
        for handle in await _running(client, customer_id):
            d = (await handle.describe()).raw_description
            if d.HasField("pending_workflow_task") or len(d.pending_activities):
                busy = True
                break
        quiet = 0 if busy else quiet + 1
        if asyncio.get_running_loop().time() > deadline:
            raise ClockError("the customer's workflows did not settle within "
                             f"{_IDLE_TIMEOUT:.0f}s (is the worker running?)")
        await asyncio.sleep(_IDLE_POLL)
