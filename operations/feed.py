"""The billing system's feed (SPEC 2.8, 4.3): invoices, customers, accounts and
subscriptions, for the HTTP feed (api/routes/feed.py) and the CLI alike.

Customer, account and subscription writes are create-or-replace and idempotent: each
answers ``created``, ``replaced`` or ``unchanged`` (the same content again writes nothing
and no audit record). Each write, its checks and its audit record are one transaction
(SPEC 2.7), so a refusal leaves nothing behind. Invoices go through the ledger command of
``dunning invoice issue`` (operations/invoices.py: the customer's workflow records them).

Refusals of the input raise ``FeedRefused``, whose ``field`` names the input at fault as
the edge spells it (``class``, ``fee``, ``starts``...), so the API answers a 422 field error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from db.customers import (
    CustomerRefused,
    CustomerSpec,
    get_customer_for_update,
    get_customer_with_class,
    put_customer,
)
from db.errors import UnknownClass
from db.rows import AuditInfo, ClassRow, CustomerRow
from db.subscriptions import (
    AccountRow,
    AccountSpec,
    SubscriptionRefused,
    SubscriptionRow,
    SubscriptionSpec,
    get_account,
    get_subscription,
    put_account,
    put_subscription,
)
from domain.money import Currency, MoneyError, currency, format_amount, parse_amount
from domain.when import parse_when, zone_of
from operations.context import Context
from operations.errors import Conflict, NotFound, OperationError, Unavailable
from operations.invoices import IssueRequest, issue_invoice


class FeedRefused(OperationError):
    """The feed's input refused; nothing was written. ``field``: the input at fault."""


# The db layer names its dataclass fields; the edge (CLI options, JSON bodies) says these.
_EDGE_NAMES = {"class_name": "class"}


def _refused(err: CustomerRefused | SubscriptionRefused,
             names: dict[str, str] | None = None) -> FeedRefused:
    field = err.field
    mapping = {**_EDGE_NAMES, **(names or {})}
    return FeedRefused(str(err), mapping.get(field, field) if field else None)


# ------------------------------------------------------------------------------ invoices
async def post_invoice(ctx: Context, request: IssueRequest,
                       audit: AuditInfo) -> dict[str, Any]:
    """Issue an invoice as ``dunning invoice issue`` does; ``status`` is ``created`` or
    ``duplicate`` (the same invoice was issued before: nothing changed). Raises Conflict
    (same number, other content), FeedRefused (naming the field), Unavailable."""
    try:
        document = await issue_invoice(ctx, request, audit)
    except NotFound as err:
        raise FeedRefused(str(err), "customer_id") from None
    except (Conflict, Unavailable):
        raise
    except OperationError as err:
        raise FeedRefused(str(err), err.field) from None
    if document["status"] == "exists":
        document["status"] = "duplicate"
    return document


# ----------------------------------------------------------------------------- customers
@dataclass(frozen=True)
class CustomerChange:
    """``dunning customer set``: None keeps the stored value (a new customer needs name,
    email and class); ``direct`` makes it no reseller's, ``class_language`` drops its own
    language for the class default."""

    id: str
    name: str | None = None
    email: str | None = None
    class_name: str | None = None
    language: str | None = None
    reseller_id: str | None = None
    direct: bool = False
    class_language: bool = False


async def put_customer_record(ctx: Context, spec: CustomerSpec,
                              audit: AuditInfo) -> dict[str, Any]:
    """PUT /v1/customers/{id}: create or replace the whole record."""
    return await _put_customer(ctx, spec, audit, replace=True)


async def set_customer(ctx: Context, change: CustomerChange, audit: AuditInfo) -> dict[str, Any]:
    """``dunning customer set``: the stored record with the given values replaced, under
    the customer's lock so that nothing changes between the read and the write."""
    if change.direct and change.reseller_id is not None:
        raise FeedRefused("give either --reseller or --no-reseller, not both", "reseller")
    if change.class_language and change.language is not None:
        raise FeedRefused("give either --language or --class-language, not both", "language")
    async with ctx.conn.transaction():
        stored = await get_customer_for_update(ctx.conn, change.id)
        spec = _merged(stored, change)
        return await _put_customer(ctx, spec, audit, replace=True)


async def create_customer(ctx: Context, spec: CustomerSpec, audit: AuditInfo) -> dict[str, Any]:
    """``dunning customer add``: ``created``, or ``exists`` when the same record is stored.
    Raises Conflict for the same id with other data (nothing changed)."""
    result = await _put_customer(ctx, spec, audit, replace=False)
    if result["status"] == "conflict":
        raise Conflict(f"customer {spec.id!r} already exists with other data; nothing changed")
    if result["status"] == "unchanged":
        result = {**result, "status": "exists"}
    return result


def _merged(stored: CustomerRow | None, change: CustomerChange) -> CustomerSpec:
    def pick(given: str | None, name: str) -> str | None:
        return given if given is not None else getattr(stored, name, None)

    name, email, klass = (pick(change.name, "name"), pick(change.email, "email"),
                          pick(change.class_name, "class_name"))
    if name is None or email is None or klass is None:
        missing = [option for option, value in (("--name", name), ("--email", email),
                                                ("--class", klass)) if value is None]
        raise FeedRefused(f"customer {change.id} does not exist; to create it give "
                          f"{', '.join(missing)}", missing[0].lstrip("-"))
    language = None if change.class_language else pick(change.language, "language")
    reseller = None if change.direct else pick(change.reseller_id, "reseller_id")
    return CustomerSpec(id=change.id, name=name, email=email, class_name=klass,
                        language=language, reseller_id=reseller)


async def _put_customer(ctx: Context, spec: CustomerSpec, audit: AuditInfo, *,
                        replace: bool) -> dict[str, Any]:
    try:
        result = await put_customer(ctx.conn, spec, audit, replace=replace)
    except CustomerRefused as err:
        raise _refused(err) from None
    except UnknownClass as err:
        raise FeedRefused(str(err), "class") from None
    return {"status": result.status, "customer": customer_document(result.after)}


def customer_document(row: CustomerRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "email": row.email, "class": row.class_name,
            "language": row.language, "reseller_id": row.reseller_id}


# ------------------------------------------------------------------------------ accounts
async def put_account_record(ctx: Context, spec: AccountSpec, audit: AuditInfo) -> dict[str, Any]:
    """PUT /v1/accounts/{id}, ``dunning account add``: create or replace an account."""
    try:
        result = await put_account(ctx.conn, spec, audit)
    except SubscriptionRefused as err:
        raise _refused(err) from None
    return {"status": result.status, "account": account_document(result.after)}


def account_document(row: AccountRow) -> dict[str, Any]:
    return {"id": row.id, "customer_id": row.customer_id, "name": row.name}


# ------------------------------------------------------------------------- subscriptions
@dataclass(frozen=True)
class SubscriptionInput:
    """A subscription as the edge gives it: the fee a decimal string of the class
    currency, dates as WHEN texts (SPEC 2.5; a date and time counts as its calendar day in
    the class time zone). The customer is the account's. ``starts`` None (CLI only): the
    stored start, else today in the class time zone. ``currency`` None: the class's."""

    id: str
    account_id: str
    product: str
    fee: str
    starts: str | None
    ends: str | None = None
    free_until: str | None = None
    status: str = "active"
    currency: str | None = None


# A subscription's customer is its account's: refusals about the customer are the account's.
_SUBSCRIPTION_NAMES = {"customer_id": "account_id"}


async def put_subscription_record(ctx: Context, given: SubscriptionInput, audit: AuditInfo,
                                  *, today: date | None = None) -> dict[str, Any]:
    """PUT /v1/subscriptions/{id}, ``dunning subscription set``: create or replace."""
    async with ctx.conn.transaction():
        account = await get_account(ctx.conn, given.account_id)
        if account is None:
            raise FeedRefused(f"account {given.account_id} not found", "account_id")
        found = await get_customer_with_class(ctx.conn, account.customer_id)
        assert found is not None  # accounts_customer_id_fkey
        klass = found[1]
        spec = await _subscription_spec(ctx, given, account, klass, today)
        try:
            result = await put_subscription(ctx.conn, spec, audit)
        except SubscriptionRefused as err:
            raise _refused(err, _SUBSCRIPTION_NAMES) from None
    return {"status": result.status, "subscription": subscription_document(result.after)}


async def _subscription_spec(ctx: Context, given: SubscriptionInput, account: AccountRow,
                             klass: ClassRow, today: date | None) -> SubscriptionSpec:
    code = given.currency if given.currency is not None else klass.currency
    try:
        cur = currency(code)
    except MoneyError as err:
        raise FeedRefused(str(err), "currency") from None
    starts = given.starts
    if starts is None:
        stored = await get_subscription(ctx.conn, given.id)
        first = stored.starts if stored is not None else (
            today or datetime.now(zone_of(klass.timezone)).date())
    else:
        first = calendar_day(starts, klass.timezone, "starts")
    spec = SubscriptionSpec(
        id=given.id, customer_id=account.customer_id, account_id=account.id,
        product=given.product, fee=parse_fee(given.fee, cur), currency=code, starts=first,
        status=given.status)  # type: ignore[arg-type]  # put_subscription checks it
    return replace(spec, **{name: calendar_day(value, klass.timezone, name)
                            for name, value in (("ends", given.ends),
                                                ("free_until", given.free_until))
                            if value is not None})


def parse_fee(text: str, cur: Currency) -> int:
    """A monthly fee in minor units; SPEC 2.1's rules, in words about a fee."""
    if isinstance(text, str) and text.strip().startswith("-"):
        raise FeedRefused(f"fee {text!r} must not be negative", "fee")
    try:
        return parse_amount(text, cur)
    except MoneyError as err:
        raise FeedRefused(f"fee: {err}", "fee") from None


def calendar_day(text: str, tz: str, field: str) -> date:
    """A WHEN text (SPEC 2.5) as the calendar day it falls on in the class's time zone."""
    try:
        return parse_when(text, tz, field).astimezone(zone_of(tz)).date()
    except ValueError as err:
        raise FeedRefused(str(err), field) from None
    except OverflowError:  # the first or last day of the calendar, in a zone off UTC
        raise FeedRefused(f"{field} {text!r} is out of range", field) from None


def subscription_document(row: SubscriptionRow) -> dict[str, Any]:
    cur = currency(row.currency)
    return {"id": row.id, "customer_id": row.customer_id, "account_id": row.account_id,
            "product": row.product, "fee": format_amount(row.fee, cur),
            "currency": row.currency, "starts": row.starts.isoformat(),
            "ends": row.ends.isoformat() if row.ends else None,
            "free_until": row.free_until.isoformat() if row.free_until else None,
            "status": row.status}
