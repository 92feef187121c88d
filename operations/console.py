"""What the finance console reads (SPEC 4.6): search, the customer page, and the lists of
unmatched payments, notifications and audit records, one page each.

The console's actions are the operations the CLI and the API already use (post and
reverse a payment, resend, re-run, assign, waive a late fee): ``api/console`` calls those
directly. This module only adds the reads the console needs and no other interface had. Amounts stay
integer minor units here (the console formats them in the reader's locale); scope checks
are the caller's (``api.scopes``); reads given an ``audit`` write their record
``on_behalf_of`` the customer in the reading transaction (SPEC 2.7).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from client.invoices import invoice_status, planned_steps
from client.reruns import rerun_result
from db import console as queries
from db.classes import get_class
from db.console import (
    AuditFilter,
    FoundCustomer,
    InvoiceFee,
    NotificationLine,
    TimelineEvent,
    TimelineKey,
)
from db.customers import get_customer_with_class
from db.errors import UnknownCustomer
from db.rows import AuditInfo, AuditRecord, ClassRow, CustomerRow, InvoiceRow, UnmatchedRow
from db.subscriptions import customer_subscriptions, view_customers
from operations.context import Context, record_read
from operations.reruns import rerun_document, start_rerun
from operations.subscriptions import current_month, view_document

PAGE = 50
TIMELINE_PAGE = 50
INVOICE_PAGE = 24  # two years of monthly invoices
# Statuses in the order finance works through them: what needs a person first.
NOTIFICATION_STATUSES = ("failed", "unknown", "sending", "pending", "sent")
CONSOLE_READ = "customer.read"
SEARCH_READ = "customers.search"
NOTIFICATIONS_READ = "notifications.list"

# A check the caller runs inside the page's transaction (its scope check); raises to refuse.
Check = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True)
class Page:
    """One page of a list and the cursor of the next (None: this is the last)."""

    items: list[Any]
    next: str | None


# ------------------------------------------------------------------------------- search
async def search(ctx: Context, text: str, *, reseller_id: str | None,
                 customer_id: str | None, audit: AuditInfo | None, after: str | None = None,
                 limit: int = PAGE) -> Page:
    """Customers by id, name, email or invoice number (prefix, any case), in the scope
    given by ``reseller_id`` / ``customer_id`` (``api.scopes.list_filter``). With
    ``audit``, each customer shown is a read on its behalf (as ``GET /v1/subscriptions``
    audits each customer it lists), recorded with the read."""
    async with ctx.conn.transaction():
        rows: list[FoundCustomer] = await queries.search_customers(
            ctx.conn, text, reseller_id=reseller_id, customer_id=customer_id, after=after,
            limit=limit)
        more = len(rows) > limit
        rows = rows[:limit]
        for row in rows:
            await record_read(ctx, audit, row.id, SEARCH_READ)
    return Page(rows, rows[-1].id if more else None)


# ------------------------------------------------------------------------ customer page
@dataclass(frozen=True)
class NextStep:
    """An open invoice's next step, as its workflow answers it (or as planned, when it
    does not answer: then ``live`` is False)."""

    step: str | None
    at: datetime | None
    why: str
    live: bool


@dataclass
class CustomerPage:
    customer: CustomerRow
    klass: ClassRow
    invoices: list[InvoiceRow]  # newest first, one page
    invoices_next: str | None  # the cursor of older invoices (``invoice_cursor``)
    next_steps: dict[str, NextStep]
    timeline: list[TimelineEvent]
    timeline_next: str | None  # the cursor of older events (``timeline_cursor``)
    subscriptions: dict[str, Any]
    overdue: dict[str, bool] = field(default_factory=dict)
    # Each shown invoice's late fee by number, waived ones too (SPEC 2.9); none: no fee.
    fees: dict[str, InvoiceFee] = field(default_factory=dict)


async def customer_page(ctx: Context, customer_id: str, *, audit: AuditInfo | None,
                        check: Check | None = None, timeline_before: TimelineKey | None = None,
                        invoices_before: tuple[datetime, str] | None = None,
                        now: datetime | None = None) -> CustomerPage:
    """Everything the customer page shows, read in one snapshot, with the read's audit
    record (``customer.read``, on behalf of the customer) in the same transaction; then
    each open invoice's workflow is asked for its next step (no connection held meanwhile
    is needed: the rows are read). ``check`` runs first in that transaction (the caller's
    scope check, so that the customer cannot change hands between it and the read).
    Raises UnknownCustomer."""
    now = now or datetime.now(UTC)
    outermost = ctx.conn.info.transaction_status == TransactionStatus.IDLE
    async with ctx.conn.transaction():
        if outermost:  # one snapshot for every part of the page
            await ctx.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if check is not None:
            await check(ctx.conn)
        found = await get_customer_with_class(ctx.conn, customer_id)
        if found is None:
            raise UnknownCustomer(customer_id)
        customer, klass = found
        invoices = await queries.invoices_page(ctx.conn, customer_id, before=invoices_before,
                                               limit=INVOICE_PAGE)
        events = await queries.customer_timeline(ctx.conn, customer_id,
                                                 before=timeline_before, limit=TIMELINE_PAGE)
        fees = await queries.invoice_fees(ctx.conn, [i.id for i in invoices])
        viewed = (await view_customers(ctx.conn, [customer_id]))[customer_id]
        accounts = await customer_subscriptions(ctx.conn, customer_id)
        await record_read(ctx, audit, customer_id, CONSOLE_READ)
    more = len(events) > TIMELINE_PAGE
    events = events[:TIMELINE_PAGE]
    more_invoices = len(invoices) > INVOICE_PAGE
    invoices = invoices[:INVOICE_PAGE]
    open_invoices = [i for i in invoices if i.remaining > 0]
    steps = await asyncio.gather(*(_next_step(ctx, klass, i) for i in open_invoices))
    return CustomerPage(
        customer=customer, klass=klass, invoices=invoices,
        invoices_next=(f"{invoices[-1].issued_at.isoformat()}|{invoices[-1].number}"
                       if more_invoices else None),
        next_steps={i.number: s for i, s in zip(open_invoices, steps, strict=True)},
        timeline=events,
        timeline_next=_timeline_cursor(events[-1]) if more else None,
        subscriptions=view_document(viewed, accounts, current_month(viewed, now)),
        overdue={i.number: now >= i.overdue_at and i.remaining > 0 for i in invoices},
        fees={i.number: fees[i.id] for i in invoices if i.id in fees})


def _timeline_cursor(event: TimelineEvent) -> str:
    return f"{event.at.isoformat()}|{event.kind}|{event.key}"


def invoice_cursor(text: str) -> tuple[datetime, str]:
    """A customer page's ``invoices_next`` back as its key; ValueError otherwise."""
    at, sep, number = text.partition("|")
    instant = datetime.fromisoformat(at)
    if not sep or not number or instant.tzinfo is None:
        raise ValueError("not a cursor of these invoices")
    return instant, number


def timeline_cursor(text: str) -> TimelineKey:
    """A customer page's ``timeline_next`` back as its key; ValueError otherwise."""
    at, _, rest = text.partition("|")
    kind, sep, key = rest.partition("|")
    instant = datetime.fromisoformat(at)
    if not sep or instant.tzinfo is None:
        raise ValueError("not a cursor of this timeline")
    return instant, kind, key


async def _next_step(ctx: Context, klass: ClassRow, invoice: InvoiceRow) -> NextStep:
    try:
        answer = await invoice_status(await ctx.client(), invoice.customer_id, invoice.number)
    except RuntimeError:  # no Temporal connection: show the plan instead
        answer = None
    if answer is not None:
        return NextStep(answer.next_step, answer.next_step_at, answer.reason, live=True)
    # No running workflow answered: say what the class's policy plans, marked as such.
    upcoming = [s for s in planned_steps(invoice, klass) if s.at > datetime.now(UTC)]
    if not upcoming:
        return NextStep(None, None, "no running workflow answered, and no step is planned "
                        "after now", live=False)
    first = upcoming[0]
    return NextStep(first.kind, first.at, "planned by the class's policy (its workflow did "
                    "not answer)", live=False)


# -------------------------------------------------------------------------------- lists
async def unmatched(ctx: Context, *, include_assigned: bool, after: int | None = None,
                    limit: int = PAGE) -> Page:
    rows: list[UnmatchedRow] = await queries.unmatched_page(
        ctx.conn, status=None if include_assigned else "unmatched", after=after, limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, str(rows[-1].id) if more else None)


async def notifications(ctx: Context, status: str, *, reseller_id: str | None,
                        customer_id: str | None, audit: AuditInfo | None,
                        after: tuple[datetime, str] | None = None,
                        limit: int = PAGE) -> tuple[Page, dict[str, int]]:
    """One page of the notifications of ``status`` in the scope, and how many of each
    unsent status there are (for the tabs, failed and unknown first). With ``audit``,
    each customer on the page is a read on its behalf."""
    if status not in NOTIFICATION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(NOTIFICATION_STATUSES)}")
    async with ctx.conn.transaction():
        rows: list[NotificationLine] = await queries.notifications_page(
            ctx.conn, status=status, reseller_id=reseller_id, customer_id=customer_id,
            after=after, limit=limit)
        counts = await queries.notification_counts(
            ctx.conn, reseller_id=reseller_id, customer_id=customer_id,
            statuses=NOTIFICATION_STATUSES)
        more = len(rows) > limit
        rows = rows[:limit]
        for shown in dict.fromkeys(row.customer_id for row in rows):
            await record_read(ctx, audit, shown, NOTIFICATIONS_READ)
    cursor = f"{rows[-1].created_at.isoformat()}|{rows[-1].key}" if more else None
    return Page(rows, cursor), counts


def notification_cursor(text: str) -> tuple[datetime, str]:
    """The ``next`` of a notifications page back as its key; ValueError otherwise."""
    at, sep, key = text.partition("|")
    if not sep or not key:
        raise ValueError("not a cursor of this list")
    instant = datetime.fromisoformat(at)
    if instant.tzinfo is None:
        raise ValueError("not a cursor of this list")
    return instant, key


async def notification_customer(ctx: Context, key: str) -> str | None:
    return await queries.notification_customer(ctx.conn, key)


async def audit_log(ctx: Context, where: AuditFilter, *, before: int | None = None,
                    limit: int = PAGE) -> tuple[Page, list[str]]:
    """One page of audit records (newest first) and the actions to filter by."""
    rows: list[AuditRecord] = await queries.audit_page(ctx.conn, where, before=before,
                                                      limit=limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, str(rows[-1].id) if more else None), await queries.audit_actions(ctx.conn)


async def class_names(ctx: Context) -> list[str]:
    return await queries.class_names(ctx.conn)


# ------------------------------------------------------------------------------ re-runs
async def dry_run(ctx: Context, class_name: str | None, customer_id: str | None,
                  audit: AuditInfo, *, wait_seconds: float) -> dict[str, Any]:
    """Start a dry run (it changes nothing) and wait up to ``wait_seconds`` for its
    results; ``done`` False when it is still running (then follow its workflow id)."""
    started = await start_rerun(ctx, class_name, customer_id, True, audit, wait=False)
    # Results carry minor units of the class's currency (one class, one currency).
    if class_name is not None:
        klass = await get_class(ctx.conn, class_name)
    else:
        found = await get_customer_with_class(ctx.conn, str(customer_id))
        klass = found[1] if found else None
    code = klass.currency if klass else "XXX"
    try:
        progress = await asyncio.wait_for(
            rerun_result(await ctx.client(), started["workflow_id"]), wait_seconds)
    except TimeoutError:
        return {**started, "currency": code}
    return {**rerun_document(started["workflow_id"], True, progress), "currency": code}


__all__ = ["NOTIFICATION_STATUSES", "AuditFilter", "CustomerPage", "NextStep", "Page",
           "audit_log", "class_names", "customer_page", "dry_run", "invoice_cursor",
           "notification_cursor", "notification_customer", "notifications", "search",
           "timeline_cursor", "unmatched"]
