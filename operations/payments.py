"""Payments from processors, the CLI and finance: post, reverse, unmatched, assign.

Every change goes through the customer's workflow (its single writer) by update-with-start,
so the caller's answer means the payment is durably recorded. Payments for unknown
customers are stored as unmatched for finance, never dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import uuid4

from temporalio.client import Client

from client import customers
from client.customers import UpdateRefused
from db.customers import get_customer_with_class
from db.ledger import transactions as ledger
from db.ledger.payments import get_payment
from db.ledger.unmatched import RecordUnmatched, get_unmatched, record_unmatched
from db.ledger.unmatched import list_unmatched as db_list_unmatched
from db.rows import AuditInfo
from domain.ledger.payments import ApplyPayment, PaymentOutcome
from domain.money import currency, format_amount
from operations.context import Context, actor_of
from operations.errors import Conflict, NotFound, OperationError
from workflows.ledger.payloads import Actor, AssignPayment, ReversePayment


@dataclass(frozen=True)
class PaymentRequest:
    """The CLI's (and tests') raw input; the webhook passes its PaymentIn, same fields."""

    processor: str
    payment_id: str
    customer_id: str
    amount: str
    currency: str | None  # None (CLI): the class currency
    received_at: str | datetime | None
    source: str = "api"


class PaymentInput(Protocol):
    """HTTP or CLI input: the raw values ApplyPayment.build validates."""

    @property
    def processor(self) -> str: ...
    @property
    def payment_id(self) -> str: ...
    @property
    def customer_id(self) -> str: ...
    @property
    def amount(self) -> str: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def received_at(self) -> str | datetime | None: ...


def _build(request: PaymentInput, source: str, class_currency: str, class_name: str,
           tz: str, actor: Actor | None) -> ApplyPayment:
    """Raises InvalidPayment (a MoneyError: SPEC 2.1's refusal, ``field`` set)."""
    return ApplyPayment.build(
        processor=request.processor, payment_id=request.payment_id,
        customer_id=request.customer_id, amount=request.amount,
        currency=request.currency, class_currency=class_currency, class_name=class_name,
        received_at=request.received_at, tz=tz,
        source=source, actor=actor)  # type: ignore[arg-type]


def _conflict(command: ApplyPayment) -> Conflict:
    return Conflict(f"payment {command.processor}:{command.payment_id} was already "
                    "received with other details; nothing changed")


def answer(command: ApplyPayment, outcome: PaymentOutcome) -> dict[str, Any]:
    """The outcome as the API and the CLI answer it (balance as a decimal string)."""
    if outcome.status == "conflict":
        raise _conflict(command)
    return {"status": outcome.status, "processor": command.processor,
            "payment_id": command.payment_id, "customer_id": command.customer_id,
            "service_state": outcome.service_state,
            "balance": format_amount(outcome.balance, currency(command.currency))}


async def post_payment(ctx: Context, request: PaymentInput, audit: AuditInfo | None,
                       *, source: str | None = None, client: Client | None = None
                       ) -> dict[str, Any]:
    """Returns {"status": accepted|duplicate|unmatched, ...}; raises Conflict (same id, other
    body) and OperationError/InvalidPayment (invalid request, nothing recorded). ``source``:
    the edge (default: the request's own, else "api")."""
    source = source or getattr(request, "source", "api")
    found = await get_customer_with_class(ctx.conn, request.customer_id)
    if found is None:
        return await _unmatched(ctx, request, source, audit)
    customer, klass = found
    command = _build(request, source, klass.currency, klass.name, klass.timezone,
                     actor_of(audit, customer.id))

    # An update id of its own for each delivery: with one id per payment, Temporal handed
    # every concurrent delivery the first one's "accepted" (SPEC 4.3 wants one accepted,
    # the rest duplicate). The ledger transaction decides instead, by payment id and body.
    delivery = uuid4().hex
    async with _one_delivery_at_a_time(command.processor, command.payment_id):
        # Deliveries sent at once to this process go one after the other: a workflow
        # admits only ~10 updates in flight, and a storm of one payment must not use them
        # all. Whether it is a duplicate is decided once, by the ledger transaction under
        # the payment's lock (db/ledger/transactions.known_payment), for every delivery of
        # every process alike.
        client = client or await ctx.client()
        try:
            outcome = await customers.post_payment(client, ctx.settings.task_queue, command,
                                                   delivery=delivery)
        except UpdateRefused as err:
            raise OperationError(str(err)) from None
    return answer(command, outcome)


# (processor, payment_id) -> its lock and how many callers hold or wait for it.
_deliveries: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}


@asynccontextmanager
async def _one_delivery_at_a_time(processor: str, payment_id: str) -> AsyncIterator[None]:
    """In-process only, and no database lock: a database transaction held across the wait
    for Temporal would break callers that share one connection among tasks."""
    key = (processor, payment_id)
    lock, users = _deliveries.setdefault(key, (asyncio.Lock(), [0]))
    users[0] += 1
    try:
        async with lock:
            yield
    finally:
        users[0] -= 1
        if users[0] == 0:  # forget the key: the registry stays as small as the traffic
            del _deliveries[key]


async def _unmatched(ctx: Context, request: PaymentInput, source: str,
                     audit: AuditInfo | None) -> dict[str, Any]:
    """``audit``: a payment posted by hand is audited with its row (SPEC 2.7); the webhook
    passes none, as for the payments it applies (a processor is not a person)."""
    code = request.currency
    if code is None:
        raise NotFound(f"unknown customer {request.customer_id!r} (give --currency to record "
                       "the payment as unmatched)")
    # Built too: the money rules hold even for a customer nobody knows (its currency is
    # the only one there is to hold it to).
    command = _build(request, source, code, "unknown", "UTC", None)
    received = command.received_at or datetime.now(UTC)
    result = await record_unmatched(ctx.conn, RecordUnmatched(
        processor=command.processor, payment_id=command.payment_id,
        customer_ref=command.customer_id, amount=request.amount, currency=code,
        received_at=received, body={
            "processor": command.processor, "payment_id": command.payment_id,
            "customer_id": command.customer_id, "amount": request.amount, "currency": code,
            "received_at": received.isoformat()},
        body_hash=ledger.fingerprint(command), audit=audit,
    ))
    if result.status == "conflict":
        raise _conflict(command)
    return {"status": result.status, "processor": command.processor,
            "payment_id": command.payment_id, "customer_id": command.customer_id}


async def reverse_payment(ctx: Context, processor: str, payment_id: str,
                          audit: AuditInfo | None, *, client: Client | None = None
                          ) -> dict[str, Any]:
    payment = await get_payment(ctx.conn, processor, payment_id)
    if payment is None:
        raise NotFound(f"unknown payment {processor}:{payment_id}")
    if payment.status == "reversed":
        customer = await get_customer_with_class(ctx.conn, payment.customer_id)
        return {"status": "already_reversed", "processor": processor, "payment_id": payment_id,
                "customer_id": payment.customer_id,
                "service_state": customer[0].service_state if customer else None}
    client = client or await ctx.client()
    try:
        result = await customers.reverse_payment(
            client, ctx.settings.task_queue,
            ReversePayment(customer_id=payment.customer_id, processor=processor,
                           payment_id=payment_id, actor=actor_of(audit, payment.customer_id)))
    except UpdateRefused as err:
        raise OperationError(str(err)) from None
    return {"status": result.status, "processor": processor, "payment_id": payment_id,
            "customer_id": payment.customer_id, "service_state": result.service_state}


async def list_unmatched(ctx: Context) -> list[dict[str, Any]]:
    rows = await db_list_unmatched(ctx.conn)
    return [{"processor": r.processor, "payment_id": r.payment_id,
             "customer_ref": r.customer_ref, "amount": r.amount, "currency": r.currency,
             "received_at": r.received_at.isoformat(), "status": r.status,
             "assigned_customer": r.assigned_customer} for r in rows]


async def assign_unmatched(ctx: Context, processor: str | None, payment_id: str,
                           customer_id: str, audit: AuditInfo, *,
                           client: Client | None = None) -> dict[str, Any]:
    if processor is not None:
        found = await get_unmatched(ctx.conn, processor, payment_id)
        rows = [found] if found is not None else []
    else:  # finance may not know which processor sent it
        rows = [r for r in await db_list_unmatched(ctx.conn) if r.payment_id == payment_id]
    if not rows:
        raise NotFound(f"no unmatched payment {payment_id!r}")
    if len(rows) > 1:
        raise OperationError(f"several processors sent {payment_id!r}: give --processor")
    row = rows[0]
    if await get_customer_with_class(ctx.conn, customer_id) is None:
        raise NotFound(f"unknown customer {customer_id!r}")
    client = client or await ctx.client()
    try:
        result = await customers.assign_payment(
            client, ctx.settings.task_queue,
            AssignPayment(customer_id=customer_id, processor=row.processor,
                          payment_id=row.payment_id, actor=actor_of(audit, customer_id)))
    except UpdateRefused as err:
        raise OperationError(str(err)) from None
    return {"status": result.status, "processor": row.processor, "payment_id": payment_id,
            "customer_id": customer_id, "service_state": result.service_state}
