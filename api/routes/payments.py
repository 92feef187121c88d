"""The payment webhook and reversals (SPEC 4.3), signed by the processor.

The answer is sent only after operations returned, i.e. once the payment is durably
recorded (applied by the customer's workflow, or stored as unmatched).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response, status

from activities.metrics import PAYMENTS
from api.auth import SignedRoute, require_signer, signed
from api.deps import audit_info, invalid, run_operation
from api.models import (
    PaymentIn,
    PaymentOut,
    Printable,
    ReversalIn,
    ReversalOut,
    path_segment,
    problem,
    validation,
)
from db.errors import DbError, UnknownPayment
from domain.money import MoneyError
from operations.errors import Conflict, NotFound, OperationError
from operations.payments import post_payment, reverse_payment
from settings import ApiIdentity

router = APIRouter(route_class=SignedRoute, dependencies=signed, tags=["payments"])

_UNAUTHORIZED = problem("Missing, malformed, stale (> 300 s) or wrong signature, or the "
                        "processor named is not the one that signed", "invalid or missing "
                        "signature")
_TOO_LARGE = problem("Body larger than 64 KiB", "Content Too Large")
_UNAVAILABLE = problem("Database or Temporal unreachable; nothing was recorded, retry later",
                       "service temporarily unavailable; retry later")

Processor = Annotated[str, path_segment("the processor that received the payment"), Printable]
PaymentId = Annotated[str, path_segment("the processor's payment id"), Printable]


@router.post(
    "/v1/payments", status_code=status.HTTP_202_ACCEPTED, response_model=PaymentOut,
    summary="Payment webhook",
    responses={
        200: {"model": PaymentOut, "description": "The same payment was received before, "
              "or by another delivery at the same time (same id and body): nothing changed; "
              "answered only once that delivery's payment is recorded",
              "content": {"application/json": {"example": {
                  "status": "duplicate", "processor": "acme-pay", "payment_id": "pay_01J9Z3"}}}},
        202: {"description": "Applied to the customer's ledger (`accepted`), or the customer "
              "is unknown and the payment is stored for finance (`unmatched`)"},
        401: _UNAUTHORIZED,
        409: problem("The payment id was already received with another body; nothing "
                     "changed", "payment acme-pay:pay_01J9Z3 was already received with "
                     "other details; nothing changed"),
        413: _TOO_LARGE,
        422: validation("Invalid body: field errors, or an amount/currency the customer's "
                        "class refuses (nothing recorded)"),
        503: _UNAVAILABLE,
    },
)
async def payment_webhook(payment: PaymentIn, request: Request,
                          response: Response) -> dict[str, Any]:
    require_signer(request, payment.processor)
    try:
        # No audit: a processor is not a person; the payment row (or the unmatched row,
        # for a customer nobody knows) is the record. By hand (CLI) both are audited.
        result = await run_operation(
            request, lambda ctx: post_payment(ctx, payment, None, source="api"))
    except Conflict as err:
        PAYMENTS.labels("conflict").inc()
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(err)) from None
    except (OperationError, MoneyError, DbError) as err:
        raise invalid(err) from None  # counted as rejected by the 422 handler
    outcome = str(result["status"])
    PAYMENTS.labels(outcome).inc()
    if outcome == "duplicate":
        response.status_code = status.HTTP_200_OK
    # The operation's answer itself; PaymentOut (response_model) is its HTTP schema.
    return result


@router.post(
    "/v1/payments/{processor}/{payment_id}/reversal", response_model=ReversalOut,
    summary="Reverse a payment (refund, chargeback)",
    responses={
        200: {"description": "`reversed` now, or `already_reversed` before (nothing changed)"},
        401: _UNAUTHORIZED,
        404: problem("No applied payment with this id from this processor",
                     "unknown payment acme-pay:pay_01J9Z3"),
        413: _TOO_LARGE,
        422: validation("Invalid path or body"),
        503: _UNAVAILABLE,
    },
)
async def reversal_webhook(processor: Processor, payment_id: PaymentId, request: Request,
                           body: ReversalIn | None = None) -> ReversalOut:
    require_signer(request, processor)
    reason = (body.reason if body else None) or "reversal reported by the processor"
    # Reversals are audited (SPEC 2.7); the processor acts as a system actor.
    audit = audit_info(request, ApiIdentity(f"processor:{processor}", "system"), reason)
    try:
        result = await run_operation(
            request, lambda ctx: reverse_payment(ctx, processor, payment_id, audit))
    except (NotFound, UnknownPayment) as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from None
    except (OperationError, DbError) as err:
        raise invalid(err) from None
    return ReversalOut(status=result["status"], processor=processor, payment_id=payment_id)
