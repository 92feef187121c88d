"""Subscription reads (SPEC 2.8, 4.3): a customer's consolidated view and the paginated list
of every subscription in the caller's scope.

Any realm, within its scope (``api.scopes``): a customer outside it answers the 404 of a
missing customer; the list only ever holds the scope's subscriptions. Reads through the
admin and reseller realms are audited ``on_behalf_of`` each customer read.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from api.deps import run_operation
from api.models import IDENTIFIER_PATTERN, MAX_IDENTIFIER, Printable, path_segment, problem
from api.scopes import Reader, ensure_in_scope, list_filter, not_found, read_audit
from db.errors import UnknownCustomer
from domain.subscriptions.charge import Month, SubscriptionInvalid
from operations.context import Context
from operations.subscriptions import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidCursor,
    Key,
    ListQuery,
    consolidated_view,
    decode_cursor,
    subscriptions_list,
)

router = APIRouter(tags=["subscriptions"])

ServiceState = Literal["active", "suspended", "terminated"]
MONTH_PATTERN = r"^[0-9]{4}-[0-9]{2}$"
MAX_CURSOR = 2048

_SUBSCRIPTION_EXAMPLE = {
    "subscription_id": "hbo", "customer_id": "john", "account_id": "john-2",
    "product": "HBO", "fee": "15.00", "expected_charge": "15.00", "charged_days": 30,
    "starts": "2026-01-01", "ends": None, "free_until": None, "status": "active",
    "service_state": "active",
}


# ------------------------------------------------------------------------------ models
class SubscriptionLine(BaseModel):
    subscription_id: str
    customer_id: str
    account_id: str
    product: str
    fee: str = Field(description="monthly fee, decimal string with the currency's exponent")
    expected_charge: str = Field(description="the month's expected charge (SPEC 2.8)")
    charged_days: int = Field(description="days of the month charged (in service, not free)")
    starts: date
    ends: date | None = Field(description="last day of service (inclusive)")
    free_until: date | None = Field(description="last free day (inclusive)")
    status: Literal["active", "closed"]
    service_state: ServiceState = Field(description="the customer's service state")


class AccountView(BaseModel):
    account_id: str
    name: str
    service_state: ServiceState
    subscriptions: list[SubscriptionLine]
    total: str


class SubscriptionsView(BaseModel):
    """The consolidated view of SPEC 2.8 (same as ``dunning subscriptions ID --json``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "john", "currency": "USD", "month": "2026-06",
        "service_state": "active",
        "accounts": [{"account_id": "john-2", "name": "John's phone",
                      "service_state": "active", "total": "35.00",
                      "subscriptions": [_SUBSCRIPTION_EXAMPLE | {
                          "subscription_id": "ess-2", "product": "Essentials",
                          "fee": "20.00", "expected_charge": "20.00"},
                          _SUBSCRIPTION_EXAMPLE]}],
        "total": "35.00",
    }]})

    customer_id: str
    currency: str
    month: str = Field(description="YYYY-MM, in the class's time zone")
    service_state: ServiceState
    accounts: list[AccountView]
    total: str


class ListedSubscription(SubscriptionLine):
    month: str = Field(description="the month of expected_charge (YYYY-MM)")


class CustomerTotal(BaseModel):
    customer_id: str
    currency: str
    month: str
    service_state: ServiceState
    total: str = Field(description="over all of the customer's subscriptions, on any page")


class SubscriptionsPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "month": "2026-06",
        "subscriptions": [_SUBSCRIPTION_EXAMPLE | {"month": "2026-06"}],
        "customers": [{"customer_id": "john", "currency": "USD", "month": "2026-06",
                       "service_state": "active", "total": "75.00"}],
        "next_cursor": "WyJqb2huIiwiam9obi0yIiwiaGJvIl0",
    }]})

    month: str | None = Field(description="as asked; null: each customer's current month")
    subscriptions: list[ListedSubscription]
    customers: list[CustomerTotal] = Field(
        description="each customer with a subscription on this page, with the month's total")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null: "
                                                "this is the last page")


# ------------------------------------------------------------------------------ params
MonthParam = Annotated[str | None, Query(
    description="YYYY-MM; default: the current month in the customer's class time zone",
    max_length=7, json_schema_extra={"pattern": MONTH_PATTERN}, examples=["2026-06"])]


def _query_error(field: str, error: Exception, value: object) -> RequestValidationError:
    """A refusal by the domain in FastAPI's 422 field-error shape, so clients parse one
    format."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", field),
                                    "msg": str(error), "input": value}])


def _month(text: str | None) -> Month | None:
    try:
        return None if text is None else Month.parse(text)
    except SubscriptionInvalid as err:
        raise _query_error("month", err, text) from None


def _after(cursor: str | None) -> Key | None:
    try:
        return None if cursor is None else decode_cursor(cursor)
    except InvalidCursor as err:
        raise _query_error("cursor", err, cursor) from None


_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem("Missing or unknown bearer token", "missing or unknown bearer token"),
    503: problem("Database unreachable", "service temporarily unavailable; retry later"),
}


# ------------------------------------------------------------------------------ routes
@router.get(
    "/v1/customers/{customer_id}/subscriptions", response_model=SubscriptionsView,
    summary="Consolidated view of a customer's subscriptions (admin and reseller reads "
            "audited)",
    description=(
        "Every account of the customer with each subscription, its monthly fee, expected "
        "charge for the month, status and the customer's service state; totals per account "
        "and for the customer. Any realm, within its scope; a customer outside the token's "
        "scope answers the same 404 as one that does not exist. Reads through the admin and "
        "reseller realms write an audit record (`subscriptions.read`, `on_behalf_of` the "
        "customer)."
    ),
    responses={**_READ_RESPONSES, 404: problem(
        "Unknown customer, or one outside the token's scope (the same answer)",
        "unknown customer 'c9'")},
)
async def get_customer_subscriptions(
    customer_id: Annotated[str, path_segment("the customer's id"), Printable],
    request: Request,
    identity: Reader,
    month: MonthParam = None,
) -> dict[str, Any]:
    wanted = _month(month)
    audit = read_audit(request, identity)  # None: this realm's reads are not audited

    async def read(ctx: Context) -> dict[str, Any]:
        # Scope check, read and audit record in one transaction (SPEC 2.7).
        async with ctx.conn.transaction():
            await ensure_in_scope(ctx.conn, identity, customer_id)
            return await consolidated_view(ctx, customer_id, month=wanted, audit=audit)

    try:
        return await run_operation(request, read)
    except UnknownCustomer:
        raise not_found(customer_id) from None


@router.get(
    "/v1/subscriptions", response_model=SubscriptionsPage,
    summary="Every subscription in the token's scope, paginated, with each customer's total",
    description=(
        "admin and system: every customer; reseller: its customers; customer: itself. "
        "Ordered by customer, account and subscription id; `next_cursor` continues after "
        "the last row, so a walk returns every subscription that exists throughout exactly "
        "once, whatever is added meanwhile. Each page lists the month's total of every "
        "customer on it. Reads through the admin and reseller realms write one audit "
        "record per customer on the page (`subscriptions.list`, `on_behalf_of` it)."
    ),
    responses=_READ_RESPONSES,
)
async def list_subscriptions(
    request: Request,
    identity: Reader,
    month: MonthParam = None,
    customer_id: Annotated[str | None, Query(
        description="only this customer (within the token's scope)", min_length=1,
        max_length=MAX_IDENTIFIER, json_schema_extra={"pattern": IDENTIFIER_PATTERN}),
        Printable] = None,
    cursor: Annotated[str | None, Query(
        description="`next_cursor` of the previous page", min_length=1,
        max_length=MAX_CURSOR)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT,
                                description="subscriptions per page")] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    reseller_id, scope_customer = list_filter(identity)
    query = ListQuery(reseller_id=reseller_id, scope_customer=scope_customer,
                      customer_id=customer_id, month=_month(month), after=_after(cursor),
                      limit=limit)
    audit = read_audit(request, identity)
    return await run_operation(request, lambda ctx: subscriptions_list(ctx, query, audit=audit))
