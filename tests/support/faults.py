"""Fault injection and invariant checks for the reliability tests (tests/faults/).

- ``check_invariants``: the database agrees with SPEC 2.2-2.4 and 2.6 for every customer
  (ledger recomputed with ``domain.ledger.allocation.build_ledger``, money conservation, service
  state, at most one mail per notification key).
- ``check_nothing_stuck``: every customer workflow has an empty queue, every invoice
  workflow of a paid invoice has ended.
- ``FaultySmtp``: an SMTP server whose answers a test scripts (4xx, 5xx, dropped
  connection during DATA) and that can be stopped and started again.
- ``restartable_temporal`` / ``RestartablePostgres``: servers a test can take down.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import psycopg
from aiosmtpd.controller import Controller
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from devstack.temporal import healthy_client
from domain.ids import invoice_workflow_id
from domain.ledger.allocation import InvoiceEntry, PaymentEntry, build_ledger
from tests.support.ports import free_port
from tests.support.processes import BIN, SEARCH_ATTRIBUTES, stop, wait_for_port
from workflows.ledger.payloads import CustomerStateQueryResult

# ----------------------------------------------------------------------------- invariants


async def _rows(conn: psycopg.AsyncConnection, query: str, *params: Any) -> list[tuple]:
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return await cur.fetchall()


async def check_invariants(database_url: str, sink_messages: list[EmailMessage] | None = None,
                           *, crash_window_duplicates: int = 0) -> dict[str, int]:
    """Assert SPEC 2.2-2.4 and 2.6 hold in the database; returns a few totals for reports.

    ``sink_messages``: everything the SMTP server accepted during the test (to prove no
    notification key was sent twice and every ``sent`` row really went out once).
    ``crash_window_duplicates``: how many second copies a test that kills the worker
    tolerates (the known bug of tests/faults/test_worker_kill.py::test_crash_after_smtp_
    accepted_sends_twice: a crash between SMTP acceptance and the outbox commit resends).
    """
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        customers = await _rows(conn, "SELECT c.id, c.balance, c.credit, c.service_state,"
                                " k.threshold FROM customers c JOIN customer_classes k"
                                " ON k.name = c.class_name ORDER BY c.id")
        totals = Counter[str]()
        for customer_id, balance, credit, service_state, threshold in customers:
            await _check_customer(conn, customer_id, balance, credit, service_state, threshold,
                                  totals)
        await _check_outbox(conn, sink_messages, totals, crash_window_duplicates)
    return dict(totals)


async def _check_customer(conn: psycopg.AsyncConnection, customer_id: str, balance: int,
                          credit: int, service_state: str, threshold: int,
                          totals: Counter[str]) -> None:
    who = f"customer {customer_id!r}"
    invoices = await _rows(
        conn, "SELECT number, issued_at, new_charges, amount_due, open_amount, remaining,"
        " collection_status, payment_status, suspension_reached_at FROM invoices"
        " WHERE customer_id = %s", customer_id)
    payments = await _rows(
        conn, "SELECT id, processor, payment_id, received_at, amount, status FROM payments"
        " WHERE customer_id = %s ORDER BY id", customer_id)
    applied = [p for p in payments if p[5] == "applied"]
    ledger = build_ledger(
        [InvoiceEntry(number, issued_at, charges) for number, issued_at, charges, *_ in invoices],
        [PaymentEntry(f"{p[1]}:{p[2]}", p[3], p[4]) for p in applied],
    )
    # SPEC 2.2: every stored invoice is exactly what the fold says.
    for number, _, _, amount_due, open_amount, remaining, status, pay_status, _ in invoices:
        expected = next(b for b in ledger.invoices if b.number == number)
        assert (amount_due, open_amount, remaining) == (
            expected.amount_due, expected.open_amount, expected.remaining), \
            f"{who} invoice {number!r}: stored (due, open, remaining) = " \
            f"{(amount_due, open_amount, remaining)}, fold says {expected}"
        # SPEC 2.3: collect exactly when remaining > T.
        assert status == ("collect" if remaining > threshold else "do_not_collect"), \
            f"{who} invoice {number!r}: {status} with remaining {remaining}, threshold {threshold}"
        assert (pay_status == "paid") == (remaining == 0), f"{who} invoice {number!r}"
    assert (balance, credit) == (ledger.balance, ledger.credit), \
        f"{who}: stored balance/credit {(balance, credit)}, fold {(ledger.balance, ledger.credit)}"

    # Money is conserved: payments = allocations + unapplied credit + reversed payments.
    allocated = await _rows(
        conn, "SELECT p.processor || ':' || p.payment_id, sum(a.amount) FROM allocations a"
        " JOIN payments p ON p.id = a.payment_row_id WHERE a.customer_id = %s GROUP BY 1",
        customer_id)
    stored_allocations = {key: int(amount) for key, amount in allocated}
    fold_allocations = Counter[str]()
    for allocation in ledger.allocations:
        fold_allocations[allocation.payment_key] += allocation.amount
    assert stored_allocations == dict(fold_allocations), f"{who}: allocations differ from fold"
    reversed_total = sum(p[4] for p in payments if p[5] == "reversed")
    assert sum(p[4] for p in payments) == sum(stored_allocations.values()) + credit \
        + reversed_total, f"{who}: payments != allocations + credit + reversed"

    # SPEC 2.4: suspended exactly when an invoice past its suspension time is `collect`.
    overdue_collect = [i[0] for i in invoices if i[8] is not None and i[6] == "collect"]
    expected_state = "suspended" if overdue_collect else "active"
    assert service_state == expected_state, \
        f"{who}: service {service_state}, but invoices past S with collect: {overdue_collect}"
    events = await _rows(conn, "SELECT state FROM service_events WHERE customer_id = %s"
                         " ORDER BY id", customer_id)
    states = [e[0] for e in events]
    assert all(a != b for a, b in zip(states, states[1:], strict=False)), \
        f"{who}: service events not alternating (not idempotent): {states}"
    if states:
        assert states[-1] == service_state, f"{who}: last service event {states[-1]}"
    totals["customers"] += 1
    totals["invoices"] += len(invoices)
    totals["payments"] += len(payments)
    totals["suspensions"] += states.count("suspended")


async def _check_outbox(conn: psycopg.AsyncConnection, sink_messages: list[EmailMessage] | None,
                        totals: Counter[str], tolerated: int = 0) -> None:
    rows = await _rows(conn, "SELECT key, message_id, status FROM notifications")
    totals["notifications"] = len(rows)
    totals["sent"] = sum(1 for r in rows if r[2] == "sent")
    if sink_messages is None:
        return
    received = Counter(_mid(m["Message-ID"]) for m in sink_messages)
    twice = {mid: n for mid, n in received.items() if n > 1}
    by_mid = {_mid(mid): key for key, mid, _ in rows}
    totals["duplicates"] = sum(n - 1 for n in twice.values())
    assert totals["duplicates"] <= tolerated, "sent twice: " + ", ".join(f"{by_mid.get(m, m)} x{n}"
                                                 for m, n in twice.items())
    unknown = set(received) - set(by_mid)
    assert not unknown, f"mails without an outbox row: {sorted(unknown)[:5]}"
    sent = {_mid(mid) for _, mid, status in rows if status == "sent"}
    assert sent <= set(received), f"outbox says sent, SMTP never got: {sorted(sent - set(received))[:5]}"
    failed_but_received = {_mid(mid) for _, mid, s in rows if s == "failed"} & set(received)
    assert not failed_but_received, f"failed rows that were delivered: {failed_but_received}"


def _mid(value: object) -> str:
    return str(value).strip().strip("<>")


async def check_nothing_stuck(client: Client, task_queue: str, database_url: str) -> None:
    """Customer workflows have nothing queued; invoice workflows of paid invoices ended."""
    async for execution in client.list_workflows(
            f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"):
        if execution.workflow_type == "CustomerWorkflow":
            handle = client.get_workflow_handle(execution.id)

            async def drained(h=handle) -> bool:
                # After a worker died, a query may first go to its sticky queue (RPCError,
                # asked again); a queue may wait behind an activity still backing off.
                state = await h.query("state", result_type=CustomerStateQueryResult)
                return (state.queued, state.followups) == (0, 0)

            await eventually(drained, timeout=60, what=f"{execution.id} to drain its queue")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        paid = await _rows(conn, "SELECT customer_id, number FROM invoices"
                           " WHERE payment_status = 'paid'")
    for customer_id, number in paid:
        handle = client.get_workflow_handle(invoice_workflow_id(customer_id, number))

        async def completed(h=handle) -> bool:
            return (await h.describe()).status == WorkflowExecutionStatus.COMPLETED

        # The workflow ends a moment after the payment's signal reached it.
        await eventually(completed, timeout=30,
                         what=f"the workflow of paid invoice {customer_id}/{number} to end")


async def eventually(predicate: Callable[[], Awaitable[object]], *, timeout: float,
                     what: str, every: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = await predicate()
        except (RPCError, psycopg.OperationalError) as err:  # a server coming back
            last = err
        else:
            if last:
                return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


async def count(database_url: str, query: str, *params: Any) -> int:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        rows = await _rows(conn, query, *params)
    return int(rows[0][0])


async def quiet(database_url: str) -> bool:
    """No notification waits for delivery or is in flight (each sent, failed or unknown)."""
    return await count(database_url, "SELECT count(*) FROM notifications"
                       " WHERE status IN ('pending', 'sending')") == 0


# ----------------------------------------------------------------------------- SMTP


@dataclass
class FaultySmtp:
    """An SMTP server whose replies are scripted per recipient.

    ``script[address]`` is a list of actions consumed one per DATA (or RCPT for ``rcpt:``
    actions): ``"451 ..."``/``"550 ..."`` answer that reply, ``"drop"`` closes the
    connection in the middle of DATA; when the list is empty the message is accepted.
    """

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    script: dict[str, list[str]] = field(default_factory=dict)
    messages: list[EmailMessage] = field(default_factory=list)
    data_attempts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None
    on_accept: Callable[[], None] | None = None  # runs after a message is kept, before 250

    def start(self) -> None:
        self.controller = Controller(_ScriptedHandler(self), hostname=self.host, port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def next_action(self, address: str, stage: str) -> str | None:
        with self.lock:
            actions = self.script.get(address) or []
            if actions and actions[0].startswith("rcpt:") == (stage == "rcpt"):
                return actions.pop(0).removeprefix("rcpt:")
        return None


class _ScriptedHandler:
    def __init__(self, smtp: FaultySmtp) -> None:
        self.smtp = smtp

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        action = self.smtp.next_action(address, "rcpt")
        if action is not None:
            return action
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        rcpt = envelope.rcpt_tos[0]
        with self.smtp.lock:
            self.smtp.data_attempts[rcpt] += 1
        action = self.smtp.next_action(rcpt, "data")
        if action == "drop":
            server.transport.abort()  # the connection dies before the server answers
            return "421 gone"
        if action is not None:
            return action
        data = envelope.original_content or envelope.content
        with self.smtp.lock:
            self.smtp.messages.append(BytesParser(policy=policy.default).parsebytes(data))
        if self.smtp.on_accept is not None:
            self.smtp.on_accept()
        return "250 2.0.0 OK queued"


# ----------------------------------------------------------------------------- servers


@dataclass
class TemporalServer:
    """`temporal server start-dev` on a file database: it can be stopped and started again
    on the same port with the same state."""

    db_file: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[Any] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip",
                "127.0.0.1", "--port", str(self.port), "--log-level", "error",
                "--db-filename", str(self.db_file)]
        if not self.db_file.exists():  # attributes are kept in the file after the first run
            for attribute in SEARCH_ATTRIBUTES:
                args += ["--search-attribute", attribute]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(self.port)
        # An open port is not a serving server: right after a restart a client connecting
        # then is refused with "Frontend is not healthy yet" (make test-faults, issue 9).
        wait_until_healthy(self.address, exited=self.process.poll)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


def wait_until_healthy(address: str, *, exited: Callable[[], int | None],
                       timeout: float = 60.0) -> None:
    """Block until the Temporal server at ``address`` passes its health check and knows
    its namespace (devstack's own readiness probe), or fail after ``timeout``."""

    async def probe() -> None:
        deadline = time.monotonic() + timeout
        while await healthy_client(address) is None:
            if (code := exited()) is not None:
                raise RuntimeError(f"the Temporal server at {address} exited with {code}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Temporal at {address} not healthy after {timeout}s")
            await asyncio.sleep(0.2)

    # Called from async tests too: probe on a loop of its own, in a thread of its own.
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(probe())
        except BaseException as err:  # re-raised in the caller's thread
            failure.append(err)

    thread = threading.Thread(target=run, name="temporal-health", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


@contextmanager
def restartable_temporal(tmp: Path) -> Iterator[TemporalServer]:
    server = TemporalServer(db_file=tmp / "temporal.db")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RestartablePostgres:
    """An embedded PostgreSQL of our own (pgserver): the machine's server is never touched."""

    def __init__(self, datadir: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(datadir, cleanup_mode="delete")
        self.pgdata = Path(datadir)

    @property
    def admin_url(self) -> str:
        from tests.conftest import socket_url

        return socket_url(self.server.get_uri("postgres"))

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=30)

    def stop(self) -> None:
        # Immediate: connections die like in a crash or a network cut.
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def start(self) -> None:
        info = self.server.get_postmaster_info()
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {info.socket_dir}",
                     "-l", str(self.pgdata / "log"), "start")

    def cleanup(self) -> None:
        self.server.cleanup()


def kill_process(process: subprocess.Popen[Any]) -> None:
    """SIGKILL a process group started with start_new_session (a crash, no clean-up)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def utc_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC).replace(microsecond=0)
