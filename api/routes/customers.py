"""A customer's status document (SPEC 4.2), for every realm within its scope (SPEC 2.8, 4.3).

admin and system read every customer, a reseller its own customers, a customer itself.
Outside the scope the answer is the 404 of a missing customer, after the same database work
(see ``api.scopes``). Reads through the admin and reseller realms are audited, with
``on_behalf_of`` the customer, in the read's transaction (SPEC 2.7).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.deps import run_operation
from api.models import CustomerStatus, Printable, path_segment, problem
from api.scopes import ensure_in_scope, not_found, read_audit, reader
from db.errors import UnknownCustomer
from operations.context import Context
from operations.status import customer_status
from settings import ApiIdentity

router = APIRouter(tags=["customers"])


@router.get(
    "/v1/customers/{customer_id}", response_model=CustomerStatus,
    summary="Status document of a customer (admin and reseller reads audited)",
    description=(
        "Any realm, within its scope: `admin` and `system` every customer, `reseller` the "
        "customers of its reseller id, `customer` itself. A customer outside the token's "
        "scope answers the same 404 as one that does not exist. Reads through the admin "
        "and reseller realms write an audit record (`customer.read`, `on_behalf_of` the "
        "customer)."
    ),
    responses={
        401: problem("Missing or unknown bearer token", "missing or unknown bearer token"),
        404: problem("Unknown customer, or one outside the token's scope (the same answer)",
                     "unknown customer 'c9'"),
        503: problem("Database unreachable", "service temporarily unavailable; retry later"),
    },
)
async def get_customer(
    customer_id: Annotated[str, path_segment("the customer's id"), Printable],
    request: Request,
    identity: ApiIdentity = Depends(reader),
) -> dict[str, Any]:
    audit = read_audit(request, identity)  # None: this realm's reads are not audited

    async def read(ctx: Context) -> dict[str, Any]:
        # Scope check, read and audit record in one transaction (SPEC 2.7).
        async with ctx.conn.transaction():
            await ensure_in_scope(ctx.conn, identity, customer_id)
            return await customer_status(ctx, customer_id, audit=audit)

    try:
        return await run_operation(request, read)
    except UnknownCustomer:
        raise not_found(customer_id) from None
