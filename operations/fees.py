"""Finance waives a late fee (SPEC 2.9, 4.2 `dunning fee waive`).

The waiver is a ledger change, so it goes to the customer's workflow (the single writer),
whose transaction refolds without the fee, re-evaluates the customer and audits it.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from temporalio.service import RPCError

from client import customers
from client.customers import UpdateRefused
from db.collection.invoice_rows import get_invoice
from db.customers import get_customer_with_class
from db.rows import AuditInfo
from domain.ledger.commands import WaiveLateFee
from domain.money import currency, format_amount
from operations.context import Context, actor_of
from operations.errors import NotFound, OperationError, Unavailable


async def waive_fee(ctx: Context, customer_id: str, number: str,
                    audit: AuditInfo) -> dict[str, Any]:
    """``waived``; ``not_charged`` and ``already_waived`` are answers too (nothing changed)."""
    found = await get_customer_with_class(ctx.conn, customer_id)
    if found is None:
        raise NotFound(f"unknown customer {customer_id!r}")
    customer, klass = found
    if await get_invoice(ctx.conn, customer.id, number) is None:
        raise NotFound(f"customer {customer.id!r} has no invoice {number!r}")
    command = WaiveLateFee(customer.id, number, actor=actor_of(audit, customer.id))
    try:
        outcome = await customers.waive_late_fee(await ctx.client(), ctx.settings.task_queue,
                                                 command, delivery=uuid4().hex)
    except UpdateRefused as err:
        raise OperationError(str(err), "invoice") from None
    except (RPCError, RuntimeError) as err:
        raise Unavailable(f"the fee of invoice {number} is not waived: Temporal is not "
                          f"reachable ({err}); run the same command again") from None
    cur = currency(klass.currency)
    return {"status": outcome.status, "customer_id": customer.id, "invoice": number,
            "fee": format_amount(outcome.amount, cur), "currency": klass.currency,
            "balance": format_amount(outcome.balance, cur),
            "service_state": outcome.service_state}
