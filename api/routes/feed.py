"""The billing system's feed (SPEC 2.8, 4.3): invoices, customers, accounts, subscriptions.

Realms ``system`` and ``admin`` only; every other realm gets 403 before the body is looked
at. Bodies are validated here (422 field errors); what needs the database (the class
currency and time zone, whether the account exists) is checked by operations/feed.py,
whose refusals come back in the same 422 shape, naming the field. Each write is one
transaction with its audit record (SPEC 2.7); a refusal writes nothing.

PUTs create or replace and are idempotent: ``created`` answers 201, ``replaced`` and
``unchanged`` (the same body again: nothing written, no audit record) 200.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

from api.deps import audit_info, invalid, run_operation, unavailable
from api.models import (
    Identifier,
    Printable,
    Reason,
    WhenText,
    path_segment,
    problem,
    validation,
)
from api.scopes import FeedCaller
from db.customers import EMAIL_PATTERN, CustomerSpec
from db.errors import DbError
from db.rows import AuditInfo
from db.subscriptions import AccountSpec
from domain.money import MoneyError
from operations.context import Context
from operations.errors import Conflict, OperationError, Unavailable
from operations.feed import (
    SubscriptionInput,
    post_invoice,
    put_account_record,
    put_customer_record,
    put_subscription_record,
)
from operations.invoices import IssueRequest
from settings import ApiIdentity

router = APIRouter(tags=["feed"])

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control(value: str) -> str:
    # An account name may be empty, so Printable (one visible character) is too strict.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs...)")
    return value


Amount = Annotated[StrictStr, Field(
    min_length=1, max_length=40,
    description="Decimal string with at most the class currency's decimals, e.g. \"20.00\" "
                "(USD), \"2000\" (JPY); >= 0 and <= 10^12.")]
Currency = Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$",
                                      description="ISO 4217 code, upper case")]
Day = Annotated[WhenText, Field(
    description="A date (2026-06-01), or a date and time with offset (its calendar day in "
                "the class time zone)", examples=["2026-06-01"])]


class _Body(BaseModel):
    # A misspelt optional field ("free_untill") must not be silently dropped.
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------ invoices
class InvoiceIn(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "customer_id": "c1", "number": "INV-06", "charges": "10.00",
        "issued": "2026-06-01", "due": "2026-06-30"}]})

    customer_id: Identifier
    number: Identifier = Field(description="unique per customer")
    charges: Amount
    issued: Annotated[WhenText, Field(
        description="A date (the start of that day in the class time zone) or an ISO 8601 "
                    "date-time with offset", examples=["2026-06-01", "2026-06-01T09:30:00Z"])]
    due: Annotated[WhenText, Field(
        description="A date (overdue from the next midnight in the class time zone) or an "
                    "ISO 8601 date-time with offset (overdue from that instant)",
        examples=["2026-06-30"])]
    reason: Reason | None = None


class InvoiceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "created", "customer_id": "c1", "number": "INV-06", "currency": "USD",
        "new_charges": "10.00", "previous_balance": "10.00", "amount_due": "20.00",
        "remaining": "20.00", "collection_status": "collect", "payment_status": "unpaid",
        "overdue_at": "2026-07-01T00:00:00+00:00", "suspend_at": "2026-07-01T00:00:00+00:00",
        "workflow_id": "invoice-c1-INV-06", "workflow": "started"}]})

    status: Literal["created", "duplicate"] = Field(
        description="duplicate: this invoice was issued before with the same content")
    customer_id: str
    number: str
    currency: str
    new_charges: str
    previous_balance: str
    amount_due: str
    remaining: str
    collection_status: Literal["collect", "do_not_collect"]
    payment_status: Literal["unpaid", "partially_paid", "paid"]
    overdue_at: str
    suspend_at: str
    workflow_id: str
    workflow: str


# ---------------------------------------------------------------------------- customers
class CustomerIn(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "John Example", "email": "john@example.com", "class": "residential",
        "language": "en", "reseller_id": "r-rita"}]})

    name: Annotated[StrictStr, Field(min_length=1, max_length=200), Printable]
    email: Annotated[StrictStr, Field(max_length=254, pattern=EMAIL_PATTERN), Printable]
    class_name: Identifier = Field(alias="class", description="the customer class")
    language: Literal["en", "es", "pt-BR"] | None = Field(
        default=None, description="absent or null: the class default")
    reseller_id: Identifier | None = Field(
        default=None, description="absent or null: a direct customer (admins only see it)")
    reason: Reason | None = None


class CustomerDoc(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    email: str
    class_name: str = Field(alias="class")
    language: str | None
    reseller_id: str | None


class CustomerOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "created", "customer": {
            "id": "c1", "name": "John Example", "email": "john@example.com",
            "class": "residential", "language": "en", "reseller_id": "r-rita"}}]})

    status: Literal["created", "replaced", "unchanged"]
    customer: CustomerDoc


# ----------------------------------------------------------------------------- accounts
class AccountIn(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "customer_id": "c1", "name": "John's phone"}]})

    customer_id: Identifier = Field(description="an account never moves to another customer")
    name: Annotated[StrictStr, Field(max_length=200), AfterValidator(_no_control)] = ""
    reason: Reason | None = None


class AccountDoc(BaseModel):
    id: str
    customer_id: str
    name: str


class AccountOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "created", "account": {"id": "a1", "customer_id": "c1",
                                         "name": "John's phone"}}]})

    status: Literal["created", "replaced", "unchanged"]
    account: AccountDoc


# ------------------------------------------------------------------------ subscriptions
class SubscriptionIn(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "account_id": "a1", "product": "Essentials", "fee": "20.00", "currency": "USD",
        "starts": "2026-06-01", "ends": None, "free_until": None, "status": "active"}]})

    account_id: Identifier = Field(description="the customer is the account's")
    product: Identifier
    fee: Amount
    currency: Currency | None = Field(
        default=None, description="must be the class currency; absent: the class currency")
    starts: Day
    ends: Day | None = Field(default=None, description="last day of service (inclusive)")
    free_until: Day | None = Field(default=None,
                                   description="last free day (inclusive): charges 0 until")
    status: Literal["active", "closed"] = Field(
        default="active", description="closed needs an end")
    reason: Reason | None = None


class SubscriptionDoc(BaseModel):
    id: str
    customer_id: str
    account_id: str
    product: str
    fee: str = Field(description="monthly, decimal string of the class currency")
    currency: str
    starts: str
    ends: str | None
    free_until: str | None
    status: Literal["active", "closed"]


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "created", "subscription": {
            "id": "s1", "customer_id": "c1", "account_id": "a1", "product": "Essentials",
            "fee": "20.00", "currency": "USD", "starts": "2026-06-01", "ends": None,
            "free_until": None, "status": "active"}}]})

    status: Literal["created", "replaced", "unchanged"]
    subscription: SubscriptionDoc


# ------------------------------------------------------------------------------ routes
_REALMS = ("Realms `system` and `admin`; any other realm gets 403 whatever the body. "
           "Audited (SPEC 2.7).")
_COMMON: dict[int | str, dict[str, Any]] = {
    401: problem("Missing or unknown bearer token", "missing or unknown bearer token"),
    403: problem("The token's realm is neither system nor admin",
                 "realm 'reseller' may not do this"),
    413: problem("Body larger than 64 KiB", "Content Too Large"),
    422: validation("Invalid body: field errors, or a value the customer's class or the "
                    "stored data refuses (the field is named; nothing written)"),
    503: problem("Database or Temporal unreachable; nothing was written, retry later",
                 "service temporarily unavailable; retry later"),
}


def _put_responses(model: type[BaseModel], what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": model, "description": f"The {what} was replaced (`replaced`), or "
              "was stored with this content already (`unchanged`: nothing written)"},
        201: {"model": model, "description": f"The {what} was created"},
        **_COMMON,
    }


AccountId = Annotated[str, path_segment("the account's id"), Printable]
CustomerId = Annotated[str, path_segment("the customer's id"), Printable]
SubscriptionId = Annotated[str, path_segment("the subscription's id"), Printable]


@router.post(
    "/v1/invoices", status_code=status.HTTP_201_CREATED, response_model=InvoiceOut,
    summary="Issue an invoice (the billing system's feed)",
    description=f"The `dunning invoice issue` of SPEC 4.2: recorded by the customer's "
                f"workflow, which starts the invoice's collection. {_REALMS}",
    responses={
        200: {"model": InvoiceOut, "description": "The same invoice was issued before "
              "(`duplicate`): nothing changed"},
        201: {"description": "Issued, and its collection workflow started"},
        409: problem("The number was issued before with other content; nothing changed",
                     "invoice INV-06 of c1 already exists with other new_charges; nothing "
                     "changed"),
        **_COMMON,
    },
)
async def post_invoice_route(body: InvoiceIn, request: Request, response: Response,
                             identity: FeedCaller) -> dict[str, Any]:
    issue = IssueRequest(customer_id=body.customer_id, number=body.number,
                         charges=body.charges, issued=body.issued, due=body.due)
    audit = audit_info(request, identity, body.reason)
    try:
        document = await run_operation(request, lambda ctx: post_invoice(ctx, issue, audit))
    except Conflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(err)) from None
    except Unavailable:
        raise unavailable() from None
    except (OperationError, MoneyError, DbError) as err:
        raise invalid(err) from None
    if document["status"] == "duplicate":
        response.status_code = status.HTTP_200_OK
    return document


@router.put(
    "/v1/customers/{customer_id}", response_model=CustomerOut, response_model_by_alias=True,
    summary="Create or replace a customer (the billing system's feed)",
    description=f"The whole record: an absent `language` is the class default, an absent "
                f"`reseller_id` a direct customer. Moving to a class of another currency is "
                f"refused once the customer has invoices, payments or subscriptions. "
                f"Audited as `customer.create` / `customer.replace`. {_REALMS}",
    responses=_put_responses(CustomerOut, "customer"),
)
async def put_customer_route(customer_id: CustomerId, body: CustomerIn, request: Request,
                             response: Response, identity: FeedCaller) -> dict[str, Any]:
    spec = CustomerSpec(id=customer_id, name=body.name, email=body.email,
                        class_name=body.class_name, language=body.language,
                        reseller_id=body.reseller_id)
    return await _put(request, response, identity, body.reason,
                      lambda ctx, audit: put_customer_record(ctx, spec, audit))


@router.put(
    "/v1/accounts/{account_id}", response_model=AccountOut,
    summary="Create or replace an account (the billing system's feed)",
    description=f"An account belongs to one customer for good. Audited as `account.put`. "
                f"{_REALMS}",
    responses=_put_responses(AccountOut, "account"),
)
async def put_account_route(account_id: AccountId, body: AccountIn, request: Request,
                            response: Response, identity: FeedCaller) -> dict[str, Any]:
    spec = AccountSpec(id=account_id, customer_id=body.customer_id, name=body.name)
    return await _put(request, response, identity, body.reason,
                      lambda ctx, audit: put_account_record(ctx, spec, audit))


@router.put(
    "/v1/subscriptions/{subscription_id}", response_model=SubscriptionOut,
    summary="Create or replace a subscription (the billing system's feed)",
    description=f"The fee is monthly, in the class currency; `ends` and `free_until` are "
                f"inclusive last days. Audited as `subscription.put`. {_REALMS}",
    responses=_put_responses(SubscriptionOut, "subscription"),
)
async def put_subscription_route(subscription_id: SubscriptionId, body: SubscriptionIn,
                                 request: Request, response: Response,
                                 identity: FeedCaller) -> dict[str, Any]:
    given = SubscriptionInput(id=subscription_id, account_id=body.account_id,
                              product=body.product, fee=body.fee, starts=body.starts,
                              ends=body.ends, free_until=body.free_until, status=body.status,
                              currency=body.currency)
    return await _put(request, response, identity, body.reason,
                      lambda ctx, audit: put_subscription_record(ctx, given, audit))


Write = Callable[[Context, AuditInfo], Awaitable[dict[str, Any]]]


async def _put(request: Request, response: Response, identity: ApiIdentity,
               reason: str | None, write: Write) -> dict[str, Any]:
    """Run a create-or-replace; 201 when it created, 422 naming the field it refused."""
    audit = audit_info(request, identity, reason)
    try:
        document = await run_operation(request, lambda ctx: write(ctx, audit))
    except (OperationError, MoneyError, DbError) as err:
        raise invalid(err) from None
    if document["status"] == "created":
        response.status_code = status.HTTP_201_CREATED
    return document
