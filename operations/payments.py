"""Payments from processors, the CLI and finance: post, reverse, unmatched, assign.

Every change goes through the customer's workflow (its single writer) by update-with-start,
so the caller's answer means the payment is durably recorded. Payments for unknown
customers are stored as unmatched for finance, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from db import ledger
from db.customers import get_customer_with_class
from db.payments import get_payment
from db.rows import AuditInfo
from db.unmatched import RecordUnmatched, get_unmatched, record_unmatched
from db.unmatched import list_unmatched as db_list_unmatched
from domain.money import currency, format_amount, parse_amount
from operations.context import Context
from operations.errors import Conflict, NotFound, OperationError
from operations.invoices import parse_instant
from workflows.customer import CustomerWorkflow
from workflows.payloads import (
    Actor,
    AssignPaymentInput,
    CustomerWorkflowInput,
    PostPaymentInput,
    ReversePaymentInput,
    customer_workflow_id,
    payment_update_id,
)
from workflows.search_attributes import CUSTOMER_ID
from workflows.search_attributes import typed as sa_typed


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


def _start(customer_id: str, task_queue: str) -> WithStartWorkflowOperation:
    return WithStartWorkflowOperation(
        CustomerWorkflow.run,
        CustomerWorkflowInput(customer_id=customer_id),
        id=customer_workflow_id(customer_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=sa_typed((CUSTOMER_ID, customer_id)),
    )


def _hash(request: PaymentRequest, code: str) -> str:
    return ledger.payment_hash(request.processor, request.payment_id, request.customer_id,
                               parse_amount(request.amount, currency(code), allow_zero=False),
                               code)


def _received_at(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise OperationError("received_at needs a UTC offset")
        return value.astimezone(UTC)
    return parse_instant(value, "received_at")


async def post_payment(ctx: Context, request: PaymentRequest, audit: AuditInfo | None,
                       *, client: Client | None = None) -> dict[str, Any]:
    """Returns {"status": accepted|duplicate|unmatched, ...}; raises Conflict (same id, other
    body) and OperationError/MoneyError (invalid request, nothing recorded)."""
    if not request.processor.strip() or not request.payment_id.strip():
        raise OperationError("processor and payment id must not be empty")
    received_at = _received_at(request.received_at)
    found = await get_customer_with_class(ctx.conn, request.customer_id)
    if found is None:
        return await _unmatched(ctx, request, received_at)
    customer, klass = found
    code = request.currency or klass.currency
    if code != klass.currency:
        raise OperationError(f"currency {code} does not match currency {klass.currency} of "
                             f"class '{klass.name}'")
    amount = parse_amount(request.amount, currency(code), allow_zero=False)
    body_hash = _hash(request, code)

    existing = await get_payment(ctx.conn, request.processor, request.payment_id)
    if existing is not None:
        return _known(existing.body_hash, body_hash, request, existing.customer_id)

    client = client or await ctx.client()
    payment = PostPaymentInput(
        processor=request.processor, payment_id=request.payment_id,
        amount=format_amount(amount, currency(code)), currency=code, received_at=received_at,
        body_hash=body_hash, source=request.source, actor=_actor(audit, customer.id),
    )
    try:
        result = await client.execute_update_with_start_workflow(
            CustomerWorkflow.post_payment, payment,
            start_workflow_operation=_start(customer.id, ctx.settings.task_queue),
            id=payment_update_id(request.processor, request.payment_id),
        )
    except WorkflowUpdateFailedError as err:
        raise OperationError(_cause(err)) from None
    if result.status == "conflict":
        raise Conflict(f"payment {request.processor}:{request.payment_id} was already "
                       "received with other details; nothing changed")
    # The update id deduplicates concurrent deliveries; make sure ours is the stored one.
    stored = await get_payment(ctx.conn, request.processor, request.payment_id)
    if stored is not None and stored.body_hash != body_hash:
        raise Conflict(f"payment {request.processor}:{request.payment_id} was already "
                       "received with other details; nothing changed")
    return {"status": result.status, "processor": request.processor,
            "payment_id": request.payment_id, "customer_id": customer.id,
            "service_state": result.service_state,
            "balance": format_amount(result.balance, currency(code))}


def _known(stored_hash: str, body_hash: str, request: PaymentRequest,
           customer_id: str) -> dict[str, Any]:
    if stored_hash != body_hash:
        raise Conflict(f"payment {request.processor}:{request.payment_id} was already "
                       "received with other details; nothing changed")
    return {"status": "duplicate", "processor": request.processor,
            "payment_id": request.payment_id, "customer_id": customer_id}


async def _unmatched(ctx: Context, request: PaymentRequest,
                     received_at: datetime | None) -> dict[str, Any]:
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
        body_hash=body_hash,
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
        result = await client.execute_update_with_start_workflow(
            CustomerWorkflow.reverse_payment,
            ReversePaymentInput(processor=processor, payment_id=payment_id,
                                actor=_actor(audit, payment.customer_id)),
            start_workflow_operation=_start(payment.customer_id, ctx.settings.task_queue),
            id=f"reversal:{processor}:{payment_id}",
        )
    except WorkflowUpdateFailedError as err:
        raise OperationError(_cause(err)) from None
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
        result = await client.execute_update_with_start_workflow(
            CustomerWorkflow.assign_payment,
            AssignPaymentInput(processor=row.processor, payment_id=row.payment_id,
                               actor=_actor(audit, customer_id)),
            start_workflow_operation=_start(customer_id, ctx.settings.task_queue),
            id=f"assign:{row.processor}:{row.payment_id}",
        )
    except WorkflowUpdateFailedError as err:
        raise OperationError(_cause(err)) from None
    return {"status": result.status, "processor": row.processor, "payment_id": payment_id,
            "customer_id": customer_id, "service_state": result.service_state}


def _cause(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    return cause.message if cause is not None else str(err)
