"""Finance adds customers (SPEC 4.2 `dunning customer add`)."""

from __future__ import annotations

from db.customers import AddCustomerResult, NewCustomer, add_customer
from db.rows import AuditInfo
from operations.context import Context
from operations.errors import Conflict


async def add(ctx: Context, new: NewCustomer, audit: AuditInfo) -> AddCustomerResult:
    result = await add_customer(ctx.conn, new, audit)
    if result.status == "conflict":
        raise Conflict(f"customer {new.id!r} already exists with other data; nothing changed")
    return result
