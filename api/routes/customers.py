"""A customer's status document (SPEC 4.2), for every realm within its scope (SPEC 2.8, 4.3).

admin and system read every customer, a reseller its own customers, a customer itself.
Outside the scope the answer is the 404 of a missing customer, after the same database work
(see ``api.scopes``). Reads through the admin and reseller realms are audited, with
``on_behalf_of`` the customer, in the read's transaction (SPEC 2.7).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status

from api.deps import audit_info, invalid, run_operation, unavailable
from api.models import (
    CustomerStatus,
    FeeWaiverIn,
    FeeWaiverOut,
    HoldIn,
    HoldOut,
    HoldReleaseIn,
    Printable,
    path_segment,
    problem,
)
from api.scopes import admin_only, ensure_in_scope, not_found, read_audit, reader
from db.errors import UnknownCustomer
from operations.context import Context
from operations.errors import NotFound, OperationError, Unavailable
from operations.fees import waive_fee
from operations.holds import place_hold, release_hold
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


@router.post(
    "/v1/customers/{customer_id}/invoices/{number}/fee-waiver", response_model=FeeWaiverOut,
    summary="Waive an invoice's late fee (finance; realm admin)",
    description=(
        "SPEC 2.9: the ledger is then exactly as if the fee had never been charged, and the "
        "customer is re-evaluated (service may resume). Realm `admin` only, else 403. "
        "Audited (`fee.waive`, `on_behalf_of` the customer). `not_charged` and "
        "`already_waived` are answers too; nothing changes then."
    ),
    responses={
        401: problem("Missing or unknown bearer token", "missing or unknown bearer token"),
        403: problem("The token's realm is not admin", "realm 'reseller' may not do this"),
        404: problem("Unknown customer or invoice", "unknown customer 'c9'"),
        503: problem("Database or Temporal unreachable",
                     "service temporarily unavailable; retry later"),
    },
)
async def post_fee_waiver(
    customer_id: Annotated[str, path_segment("the customer's id"), Printable],
    number: Annotated[str, path_segment("the invoice's number"), Printable],
    body: FeeWaiverIn, request: Request, identity: ApiIdentity = Depends(admin_only),
) -> dict[str, Any]:
    audit = audit_info(request, identity, body.reason)
    try:
        return await run_operation(request, lambda ctx: waive_fee(ctx, customer_id, number,
                                                                  audit))
    except NotFound as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from None
    except Unavailable:
        raise unavailable() from None
    except OperationError as err:
        raise invalid(err) from None



_HOLD_RESPONSES = {
    401: problem("Missing or unknown bearer token", "missing or unknown bearer token"),
    403: problem("The token's realm is not admin", "realm 'reseller' may not do this"),
    404: problem("Unknown customer", "unknown customer 'c9'"),
    422: problem("Invalid body (the field is named)", "until: --until '2026-13-01' is not a "
                 "valid date or date and time"),
    503: problem("Database or Temporal unreachable",
                 "service temporarily unavailable; retry later"),
}


@router.put(
    "/v1/customers/{customer_id}/hold", response_model=HoldOut,
    summary="Put a customer on hold (finance; realm admin)",
    description=(
        "SPEC 2.11: until `until` or until released, with a reason. While on hold: no "
        "reminder, overdue or warning mails, no late fees, no suspension, no termination; "
        "invoices, payments and reversals work as usual. A suspended customer stays "
        "suspended unless `resume` (then it resumes at once, reason \"hold\"). A hold in "
        "force is replaced. Realm `admin` only, else 403. Audited (`customer.hold`)."
    ),
    responses=_HOLD_RESPONSES,
)
async def put_hold(
    customer_id: Annotated[str, path_segment("the customer's id"), Printable],
    body: HoldIn, request: Request, identity: ApiIdentity = Depends(admin_only),
) -> dict[str, Any]:
    audit = audit_info(request, identity, body.reason)
    return await _hold_operation(request, lambda ctx: place_hold(
        ctx, customer_id, audit, until=body.until, resume=body.resume))


@router.delete(
    "/v1/customers/{customer_id}/hold", response_model=HoldOut,
    summary="Release a customer's hold (finance; realm admin)",
    description=(
        "SPEC 2.11: the invoices' steps continue from now (passed mails are not sent late; "
        "a suspension that is due happens at once). `not_held` changes nothing. Realm "
        "`admin` only, else 403. Audited (`customer.hold_release`). The body is optional."
    ),
    responses=_HOLD_RESPONSES,
)
async def delete_hold(
    customer_id: Annotated[str, path_segment("the customer's id"), Printable],
    request: Request, body: HoldReleaseIn | None = None,
    identity: ApiIdentity = Depends(admin_only),
) -> dict[str, Any]:
    audit = audit_info(request, identity, body.reason if body is not None else None)
    return await _hold_operation(request, lambda ctx: release_hold(ctx, customer_id, audit))


async def _hold_operation(request: Request, operation: Any) -> dict[str, Any]:
    try:
        return await run_operation(request, operation)
    except NotFound as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(err)) from None
    except Unavailable:
        raise unavailable() from None
    except OperationError as err:
        raise invalid(err) from None
