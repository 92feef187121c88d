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
from typing import Any
from uuid import uuid4

from temporalio.client import Client

from client import customers
from client.customers import UpdateRefused
from db import ledger
from db.customers import get_customer_with_class
from db.payments import get_payment
from db.rows import AuditInfo
from db.unmatched import RecordUnmatched, get_unmatched, record_unmatched
from db.unmatched import list_unmatched as db_list_unmatched
from domain.money import currency, format_amount, parse_amount
from domain.schedule import parse_when
from operations.context import Context
from operations.errors import Conflict, NotFound, OperationError
from workflows.payloads import (
    Actor,
    AssignPaymentInput,
    PostPaymentInput,
    ReversePaymentInput,
)


@dataclass(frozen=True)
class PaymentRequest:
    processor: str
    payment_id: str
    customer_id: str
    amount: str
    currency: str | None  # None (CLI): the class currency
    received_at: str | datetime | None
    source: str = "api"


def _actor(audit: AuditInfo | None, on_behalf_of: str | None = None) -> Actor | None:
    if audit is None:
        return None
    return Actor(name=audit.actor, realm=audit.realm, reason=audit.reason,
                 request_id=audit.request_id, on_behalf_of=on_behalf_of)


def _hash(request: PaymentRequest, code: str) -> str:
    return ledger.payment_hash(request.processor, request.payment_id, request.customer_id,
                               parse_amount(request.amount, currency(code), allow_zero=False),
                               code)


def _received_at(value: str | datetime | None, tz: str = "UTC") -> datetime | None:
    """``tz``: the customer's class time zone, where a date alone starts its day."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise OperationError("received_at needs a UTC offset")
        return value.astimezone(UTC)
    try:
        return parse_when(value, tz, "received_at")
    except ValueError as err:
        raise OperationError(str(err)) from None


async def post_payment(ctx: Context, request: PaymentRequest, audit: AuditInfo | None,
                       *, client: Client | None = None) -> dict[str, Any]:
    """Returns {"status": accepted|duplicate|unmatched, ...}; raises Conflict (same id, other
    body) and OperationError/MoneyError (invalid request, nothing recorded)."""
    if not request.processor.strip() or not request.payment_id.strip():
        raise OperationError("processor and payment id must not be empty")
    received_at = _received_at(request.received_at)
    found = await get_customer_with_class(ctx.conn, request.customer_id)
    if found is None:
        return await _unmatched(ctx, request, received_at, audit)
    customer, klass = found
    received_at = _received_at(request.received_at, klass.timezone)
    code = request.currency or klass.currency
    if code != klass.currency:
        raise OperationError(f"currency {code} does not match currency {klass.currency} of "
                             f"class '{klass.name}'")
    amount = parse_amount(request.amount, currency(code), allow_zero=False)
    body_hash = _hash(request, code)

    # The cheap answer to a payment sent again later: no lock, no Temporal.
    existing = await get_payment(ctx.conn, request.processor, request.payment_id)
    if existing is not None:
        return _known(existing.body_hash, body_hash, request, existing.customer_id)

    client = client or await ctx.client()
    payment = PostPaymentInput(
        processor=request.processor, payment_id=request.payment_id,
        amount=format_amount(amount, currency(code)), currency=code, received_at=received_at,
        body_hash=body_hash, source=request.source, actor=_actor(audit, customer.id),
    )
    # An update id of its own for each delivery: with one id per payment, Temporal handed
    # every concurrent delivery the first one's "accepted" (SPEC 4.3 wants one accepted,
    # the rest duplicate). The ledger transaction decides instead, by payment id and body.
    delivery = uuid4().hex
    async with _one_delivery_at_a_time(request.processor, request.payment_id):
        # Deliveries sent at once to this process wait for the first one's answer, then
        # find its payment committed: a storm costs one workflow update, not one each (a
        # workflow admits only ~10 in flight). Other processes' deliveries still reach the
        # workflow, whose ledger transaction answers them the same way.
        existing = await get_payment(ctx.conn, request.processor, request.payment_id)
        if existing is not None:
            return _known(existing.body_hash, body_hash, request, existing.customer_id)
        try:
            result = await customers.post_payment(client, ctx.settings.task_queue, customer.id,
                                                  payment, delivery=delivery)
        except UpdateRefused as err:
            raise OperationError(str(err)) from None
    if result.status == "conflict":
        raise Conflict(f"payment {request.processor}:{request.payment_id} was already "
                       "received with other details; nothing changed")
    return {"status": result.status, "processor": request.processor,
            "payment_id": request.payment_id, "customer_id": customer.id,
            "service_state": result.service_state,
            "balance": format_amount(result.balance, currency(code))}


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


def _known(stored_hash: str, body_hash: str, request: PaymentRequest,
           customer_id: str) -> dict[str, Any]:
    if stored_hash != body_hash:
        raise Conflict(f"payment {request.processor}:{request.payment_id} was already "
                       "received with other details; nothing changed")
    return {"status": "duplicate", "processor": request.processor,
            "payment_id": request.payment_id, "customer_id": customer_id}


async def _unmatched(ctx: Context, request: PaymentRequest, received_at: datetime | None,
                     audit: AuditInfo | None) -> dict[str, Any]:
    """``audit``: a payment posted by hand is audited with its row (SPEC 2.7); the webhook
    passes none, as for the payments it applies (a processor is not a person)."""
    code = request.currency
    if code is None:
        raise NotFound(f"unknown customer {request.customer_id!r} (give --currency to record "
                       "the payment as unmatched)")
    received = received_at or datetime.now(UTC)
    # Parses the amount too: the money rules hold even for a customer nobody knows.
    body_hash = _hash(request, code)
    result = await record_unmatched(ctx.conn, RecordUnmatched(
        processor=request.processor, payment_id=request.payment_id,
        customer_ref=request.customer_id, amount=request.amount, currency=code,
        received_at=received, body={
            "processor": request.processor, "payment_id": request.payment_id,
            "customer_id": request.customer_id, "amount": request.amount, "currency": code,
            "received_at": received.isoformat()},
        body_hash=body_hash, audit=audit,
    ))
    if result.status == "conflict":
        raise Conflict(f"payment {request.processor}:{request.payment_id} was already "
                       "received with other details; nothing changed")
    return {"status": result.status, "processor": request.processor,
            "payment_id": request.payment_id, "customer_id": request.customer_id}


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
            client, ctx.settings.task_queue, payment.customer_id,
            ReversePaymentInput(processor=processor, payment_id=payment_id,
                                actor=_actor(audit, payment.customer_id)))
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
            client, ctx.settings.task_queue, customer_id,
            AssignPaymentInput(processor=row.processor, payment_id=row.payment_id,
                               actor=_actor(audit, customer_id)))
    except UpdateRefused as err:
        raise OperationError(str(err)) from None
    return {"status": result.status, "processor": row.processor, "payment_id": payment_id,
            "customer_id": customer_id, "service_state": result.service_state}
