"""A customer's status document (SPEC 4.2), read by admins and systems; every read audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status

from api.auth import admin_or_system
from api.deps import audit_info, run_operation
from api.models import CustomerStatus, Printable, path_segment, problem
from db.errors import UnknownCustomer
from operations.status import customer_status
from settings import ApiIdentity

router = APIRouter(tags=["customers"])

READ_REASON = "api read"


@router.get(
    "/v1/customers/{customer_id}", response_model=CustomerStatus,
    summary="Status document of a customer (audited read)",
    responses={
        401: problem("Missing or unknown bearer token", "missing or unknown bearer token"),
        403: problem("The token's realm may not read customers (reseller: no ownership "
                     "model yet)", "realm 'reseller' may not do this"),
        404: problem("Unknown customer", "unknown customer 'c9'"),
        503: problem("Database unreachable", "service temporarily unavailable; retry later"),
    },
)
async def get_customer(
    customer_id: Annotated[str, path_segment("the customer's id"), Printable],
    request: Request,
    identity: ApiIdentity = Depends(admin_or_system),
) -> dict[str, Any]:
    audit = audit_info(request, identity, READ_REASON)
    try:
        # The read and its audit record commit in one transaction (SPEC 2.7).
        return await run_operation(
            request, lambda ctx: customer_status(ctx, customer_id, audit=audit))
    except UnknownCustomer as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from None
