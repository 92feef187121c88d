"""InvoiceWorkflow under working time (SPEC 2.10) with its activities replaced: the steps
wait for their moved times, the suspension is reached at S', and the query says what moved
and why. The issue's policy: America/Sao_Paulo, mon-fri 09:00-18:00, grace 8d."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from temporalio import activity

from domain.collection.policy import ClassPolicy
from domain.collection.schedule import Policy
from domain.collection.timeline import working_steps
from domain.collection.working_time import WorkingTime, parse_working_days
from domain.when import overdue_instant
from tests.support.histories import HISTORIES, record_history
from tests.support.workers import workers
from tests.workflows.test_invoice_logic import COLLECT, PAID, FakeActivities, fresh_queue, start
from workflows.collection.invoice import InvoiceWorkflow
from workflows.collection.payloads import (
    CHECK_INVOICE,
    CheckInvoiceInput,
    InvoiceFacts,
    InvoiceReevaluatedSignal,
    InvoiceWorkflowInput,
    PlannedStep,
)

ZONE = "America/Sao_Paulo"
POLICY = ClassPolicy(schedule=Policy(grace=timedelta(days=8)), timezone=ZONE,
                     working=WorkingTime(days=parse_working_days("mon-fri"),
                                         start_minute=9 * 60, end_minute=18 * 60))


def next_thursday(at_least: timedelta) -> date:
    day = (datetime.now(UTC) + at_least).astimezone(ZoneInfo(ZONE)).date()
    return day + timedelta(days=(3 - day.weekday()) % 7)


def local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


async def test_steps_wait_for_working_time_and_the_query_says_why(temporal_env) -> None:
    client = temporal_env.client
    due = next_thursday(timedelta(days=7))
    d = overdue_instant(due, ZONE)  # Friday 00:00
    planned = working_steps(POLICY, d)
    steps = [PlannedStep(kind=s.kind, key=s.key, at=s.at,
                         nominal_at=s.nominal if s.moved else None, why=s.why)
             for s in planned]
    s_prime = local(due + timedelta(days=11), 9)  # Monday 09:00
    warning_at = local(due + timedelta(days=8), 9)  # the Friday before, 09:00
    assert [(s.key, s.at) for s in planned] == [
        ("due_reminder:3d", local(due - timedelta(days=2), 9)),  # Tuesday 00:00 -> 09:00
        ("overdue", local(due + timedelta(days=1), 9)),  # Friday 00:00 -> 09:00
        ("suspension_warning", warning_at), ("suspension", s_prime)]

    fake = FakeActivities(COLLECT)
    checks = 0
    in_warning_check, release = asyncio.Event(), asyncio.Event()

    @activity.defn(name=CHECK_INVOICE)
    async def check(input: CheckInvoiceInput) -> InvoiceFacts:
        nonlocal checks
        checks += 1
        if checks == 3:  # the warning's check: hold it to look at what comes next
            in_warning_check.set()
            await release.wait()
        return fake.facts

    queue = fresh_queue()
    customer_id = f"c-wt-{uuid.uuid4().hex[:6]}"
    async with workers(client, task_queue=queue, workflows=[InvoiceWorkflow],
                      activities=[check, fake.reach_suspension, fake.send_notification]):
        handle = await start(client, queue, InvoiceWorkflowInput(
            customer_id=customer_id, invoice_number="INV-06", currency="BRL", steps=steps,
            facts=COLLECT))
        await asyncio.wait_for(in_warning_check.wait(), 20)
        status = await handle.query(InvoiceWorkflow.status)
        assert status.next_step == "suspension"
        assert status.next_step_at == s_prime
        assert status.next_step_nominal_at == local(due + timedelta(days=9), 0)  # Saturday
        assert status.next_step_why is not None
        assert status.next_step_why.startswith(
            f"S Saturday {due + timedelta(days=9)} 00:00 is outside working days mon-fri; "
            "moved to the next start of working time, Monday")
        assert set(status.moved) == {"due_reminder:3d", "overdue", "suspension_warning",
                                     "suspension"}
        assert "which is outside working days mon-fri" in status.moved["suspension_warning"]
        release.set()

        for _ in range(400):
            if fake.suspension_reached:
                break
            await asyncio.sleep(0.05)
        fake.facts = PAID
        await handle.signal(InvoiceWorkflow.reevaluated, InvoiceReevaluatedSignal(PAID))
        result = await asyncio.wait_for(handle.result(), 20)
        await record_history(client, handle.id, "invoice_working_time")

    assert result.outcome == "paid"
    assert result.steps == {"due_reminder:3d": "sent", "overdue": "sent",
                            "suspension_warning": "sent", "suspension": "reached"}
    expected = {m.kind: m.at for m in fake.mails[1:]}
    for kind, at in {"due_reminder": planned[0].at, "overdue": planned[1].at,
                     "suspension_warning": warning_at}.items():
        assert expected[kind] is not None
        assert timedelta(0) <= expected[kind] - at < timedelta(minutes=1), (kind, expected)
    assert len(fake.suspension_reached) == 1
    assert timedelta(0) <= fake.suspension_reached[0] - s_prime < timedelta(minutes=1)


def test_the_recorded_history_carries_moved_steps() -> None:
    """The replay guard (test_replay) covers inputs with moved steps, not only inputs
    recorded before working time existed."""
    history = json.loads((HISTORIES / "invoice_working_time.json").read_text())
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    from base64 import b64decode
    payload = json.loads(b64decode(started["input"]["payloads"][0]["data"]))
    whys = {s["key"]: s["why"] for s in payload["steps"]}
    assert whys["suspension"].startswith("S Saturday")
    assert all(s["nominal_at"] for s in payload["steps"])
