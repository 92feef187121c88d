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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import TimeSkipper

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
    return [await _clock(client, h, d) for h, d in await _running(client, customer_id)]


async def advance(client: Client, customer_id: str, target: datetime) -> Advance:
    """Move every running workflow of the customer to ``target`` (its own clock's time),
    stopping at each event on the way; returns the stops made."""
    # The SDK's fast-forward: it asks the server to skip and waits until it has.
    skipper = TimeSkipper(client)
    stops: list[tuple[datetime, str]] = []
    for _ in range(_MAX_STOPS):
        running = await _running(client, customer_id)
        now = [await _clock(client, h, d) for h, d in running]
        latest = max(c.now for c in now)
        # An event at or before the latest clock happens in real time by itself.
        pending = sorted((c.next_event_at, c.next_event or "step", i) for i, c in enumerate(now)
                         if c.next_event_at is not None and latest < c.next_event_at <= target)
        stop_at, what, owner = pending[0] if pending else (target, "", None)
        for (handle, _), clock in zip(running, now, strict=True):
            if stop_at - clock.now >= _SLACK:
                await _fast_forward(skipper, handle, stop_at - clock.now)
        if owner is not None:
            # The timer fires just after its workflow's clock reaches it: wait for it to,
            # or the next move would take the others past what it then asks of them.
            await _passed(client, running[owner][0], stop_at)
        await _idle(client, customer_id)
        if not pending:
            final = max(c.now for c in await clocks(client, customer_id))
            return Advance(customer_id, final, tuple(stops))
        stops.append((stop_at, what))
    raise ClockError(f"more than {_MAX_STOPS} events before {target.isoformat()}: move "
                     "the clock in smaller steps")


Running = list[tuple[WorkflowHandle, WorkflowExecutionDescription]]


async def _running(client: Client, customer_id: str) -> Running:
    """Each running workflow of the customer with its description, its own first."""
    own = customer_workflow_id(customer_id)
    running: Running = []
    query = f"CustomerId = '{_quoted(customer_id)}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id)
        description = await handle.describe()
        # Visibility lags a little behind: a workflow that just ended may still be listed.
        if description.status != WorkflowExecutionStatus.RUNNING:
            continue
        running.insert(0, (handle, description)) if execution.id == own else running.append(
            (handle, description))
    if not running or running[0][0].id != own:
        raise ClockError(f"{customer_id} has no running customer workflow (no invoice or "
                         "payment yet?)")
    return running


def _quoted(value: str) -> str:
    # Visibility queries take no parameters: a customer id is a value, never syntax.
    if "'" in value or "\\" in value:
        raise ClockError(f"cannot look up workflows of customer id {value!r}")
    return value


async def _clock(client: Client, handle: WorkflowHandle,
                 description: WorkflowExecutionDescription) -> WorkflowClock:
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


async def _fast_forward(skipper: TimeSkipper, handle: WorkflowHandle, by: timedelta) -> None:
    """A workflow that ends on the way (a paid invoice) leaves nothing to move."""
    try:
        await skipper.fast_forward(handle, by)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND or (
                await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        if err.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.PERMISSION_DENIED,
                          RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.FAILED_PRECONDITION):
            raise ClockError(
                "this Temporal server does not skip time: start it with --dynamic-config-value "
                "frontend.WorkflowTimeSkippingEnabled=true (`dunning dev` does) "
                f"[{err.message}]") from None
        raise


async def _passed(client: Client, handle: WorkflowHandle, event_at: datetime) -> None:
    deadline = asyncio.get_running_loop().time() + _IDLE_TIMEOUT
    while True:
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return
        if (await _clock(client, handle, description)).next_event_at != event_at:
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
        busy = any(d.raw_description.HasField("pending_workflow_task")
                   or len(d.raw_description.pending_activities)
                   for _, d in await _running(client, customer_id))
        quiet = 0 if busy else quiet + 1
        if asyncio.get_running_loop().time() > deadline:
            raise ClockError("the customer's workflows did not settle within "
                             f"{_IDLE_TIMEOUT:.0f}s (is the worker running?)")
        await asyncio.sleep(_IDLE_POLL)
